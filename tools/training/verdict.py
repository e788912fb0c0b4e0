"""The verdict a training or evaluation result carries: did the model learn, did it forget, can it be trusted,
and what to call next.

An agent reading a finished job used to find no accuracy, no forgetting figure and no next step
in the result; they sat in list_models and a resource (issue 22). This module reads the compact
closed-book summary (graphtune.tools.training.knowledge_report.summary_of) and returns:

- `accuracy`: closed-book accuracy base vs tuned, overall and per fact type, with the gain in points;
- `general` / `forgetting`: the general-ability figures when the summary has them (keys `general`
  = {base, tuned, drop_points}, `forgetting`, `held_out_families`); missing keys are reported as
  unknown, never guessed;
- `trust`: `trust` or `do_not_trust`, with the reasons (no probes evaluated, no gain over the
  base, forgetting, answers that do not end) and what is unknown;
- `next_steps`: tool calls with their arguments (ask_model, evaluate_model, promote_model,
  merge_adapter as the export, or a dry run to retrain when the result is not to be trusted).

It only reads dicts (no torch): the train and evaluate jobs call it once each.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_GENERAL_DROP_POINTS", "verdict"]

MAX_GENERAL_DROP_POINTS = 5.0  # general ability may drop this much before a result counts as forgetting
MIN_ENDED_CLEANLY = 0.5  # below this share of tuned answers that end their turn, answers run on


def _points(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 1)


def _accuracy(summary: dict[str, Any]) -> dict[str, Any]:
    base, tuned = summary.get("base_accuracy"), summary.get("tuned_accuracy")
    base_types, tuned_types = summary.get("base_by_fact_type") or {}, summary.get("tuned_by_fact_type") or {}
    return {"probes": summary.get("probes"), "base": base, "tuned": tuned,
            "gain_points": None if base is None or tuned is None else round(100 * (tuned - base), 1),
            "by_fact_type": {t: {"base": base_types.get(t), "tuned": tuned_types.get(t)}
                             for t in sorted(set(base_types) | set(tuned_types))}}


def _forgetting(summary: dict[str, Any]) -> tuple[bool | None, dict[str, Any] | None]:
    """(forgetting, general figures): the summary's own flag when present, else the general drop."""
    general = summary.get("general")
    if "forgetting" in summary and summary["forgetting"] is not None:
        return bool(summary["forgetting"]), general
    if isinstance(general, dict) and general.get("drop_points") is not None:
        return general["drop_points"] > MAX_GENERAL_DROP_POINTS, general
    return None, general


def _trust(summary: dict[str, Any] | None, accuracy: dict[str, Any] | None, forgetting: bool | None
           ) -> dict[str, Any]:
    reasons, unknown = [], []
    if not summary or not summary.get("probes"):
        reasons.append("no closed-book probes were evaluated, so nothing shows the model learned the facts "
                       "(train on a dataset built with objective='knowledge', or run evaluate_model)")
    else:
        if accuracy and accuracy["gain_points"] is not None and accuracy["gain_points"] <= 0:
            reasons.append(f"the tuned model is no better than its base on the probes "
                           f"({_points(accuracy['tuned'])} % vs {_points(accuracy['base'])} %)")
        if accuracy and accuracy["base"] is None:
            unknown.append("the base model's accuracy (include_base=false)")
        ended = summary.get("ended_cleanly")
        if isinstance(ended, (int, float)) and not isinstance(ended, bool) and ended < MIN_ENDED_CLEANLY:
            reasons.append(f"only {_points(ended)} % of the tuned answers end their turn (they run on)")
    if forgetting:
        reasons.append("the model forgot general ability (forgetting); its everyday answers got worse")
    elif forgetting is None:
        unknown.append("general ability / forgetting (not measured in this result)")
    return {"verdict": "do_not_trust" if reasons else "trust", "reasons": reasons, "unknown": unknown}


def _next_steps(model: str | None, trusted: bool, summary: dict[str, Any] | None, *, dataset: str | None,
                base_model: str | None, available: frozenset[str]) -> list[dict[str, Any]]:
    if not model:
        return []
    example = next((e.get("question") for e in (summary or {}).get("examples") or [] if e.get("question")), None)
    steps = [{"tool": "ask_model", "arguments": {"model": model, "compare": True,
                                                  "prompt": example or "Where is <a function of the code base> defined?"},
              "why": "see one answer beside the base model's"},
             {"tool": "evaluate_model", "arguments": {"model_name": model},
              "why": "score it again on more probes, or on a newer dataset (dataset_name)"}]
    if trusted:
        steps.append({"tool": "promote_model", "arguments": {"model_name": model, "alias": "current"},
                      "why": "make it the model `current` points at"})
        export = "export_model" if "export_model" in available else "merge_adapter"
        steps.append({"tool": export, "arguments": {"model_name": model},
                      "why": "a standalone model folder for serving stacks without PEFT"})
    elif dataset and base_model:
        steps.append({"tool": "start_fine_tuning", "arguments": {"dataset_name": dataset, "base_model": base_model,
                                                                 "dry_run": True},
                      "why": "plan another run (e.g. more num_epochs, or a larger lora_rank) before trusting a model"})
    return steps


def verdict(summary: dict[str, Any] | None, *, model: str | None, dataset: str | None = None,
            base_model: str | None = None, available: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The verdict of a result whose closed-book summary is `summary` (None: no probes were evaluated)."""
    accuracy = _accuracy(summary) if summary else None
    forgetting, general = _forgetting(summary or {})
    trust = _trust(summary, accuracy, forgetting)
    return {"accuracy": accuracy, "general": general, "forgetting": forgetting,
            "held_out_families": (summary or {}).get("held_out_families"), "trust": trust,
            "next_steps": _next_steps(model, trust["verdict"] == "trust", summary, dataset=dataset,
                                      base_model=base_model, available=available)}
