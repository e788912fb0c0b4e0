"""How closed-book results are stored and shown: registry metrics, job results, answers file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graphtune.tools.dataset.jsonl import write_jsonl


def _side(report: dict[str, Any], side: str, group: str, key: str = "core_accuracy") -> float | None:
    return (((report.get(side) or {}).get(group)) or {}).get(key)


def general_of(report: dict[str, Any]) -> dict[str, Any] | None:
    """General ability base vs tuned in points, and whether the model is `forgetting`."""
    general = report.get("general")
    if not general:
        return None
    return {"base": (general.get("base") or {}).get("accuracy"), "tuned": (general.get("tuned") or {}).get("accuracy"),
            "drop_points": general.get("drop_points"), "questions": general.get("questions")}


def knowledge_metrics(report: dict[str, Any] | None) -> dict[str, Any]:
    """The few numbers list_models shows (registry row `metrics`): held-out templates, held-out
    style families, general ability and retention, and the `forgetting` flag."""
    if not report:
        return {}
    general = general_of(report) or {}
    return {"knowledge_accuracy": (report.get("tuned") or {}).get("accuracy"),
            "base_knowledge_accuracy": (report.get("base") or {}).get("accuracy"),
            "held_out_templates_core": _side(report, "tuned", "held_out_templates"),
            "held_out_families_core": _side(report, "tuned", "held_out_families"),
            "general_ability": general.get("tuned"), "base_general_ability": general.get("base"),
            "general_drop_points": general.get("drop_points"),
            "forgetting": bool((report.get("general") or {}).get("forgetting")),
            "knowledge_dataset": report.get("dataset"),
            "retention_rise": (report.get("retention") or {}).get("relative_rise")}


def summary_of(report: dict[str, Any]) -> dict[str, Any]:
    """Compact form for job results: accuracy per fact type, base vs tuned."""
    def per_type(side: str) -> dict[str, float]:
        return {k: v["accuracy"] for k, v in ((report.get(side) or {}).get("by_fact_type") or {}).items()}

    def groups(side: str) -> dict[str, Any]:
        return {group: _side(report, side, group) for group in ("held_out_templates", "held_out_families")}

    return {"probes": report.get("probes"), "base_accuracy": (report.get("base") or {}).get("accuracy"),
            "tuned_accuracy": (report.get("tuned") or {}).get("accuracy"),
            "ended_cleanly": (report.get("tuned") or {}).get("ended_cleanly"),
            "base_core": groups("base"), "tuned_core": groups("tuned"),
            "held_out_families": ((report.get("tuned") or {}).get("held_out_families") or {}).get("by_family"),
            "base_by_fact_type": per_type("base"), "tuned_by_fact_type": per_type("tuned"),
            "general": general_of(report), "forgetting": bool((report.get("general") or {}).get("forgetting")),
            "retention": report.get("retention"), "examples": report.get("examples", [])[:2],
            **({"tuned_by_status": report["tuned"]["by_status"]} if (report.get("tuned") or {}).get("by_status")
               else {})}


def write_probe_answers(path: Path, rows: list[dict[str, Any]]) -> None:
    write_jsonl(path, rows)
