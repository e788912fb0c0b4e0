"""Closed-book evaluation: answer a knowledge dataset's probes with the base and the tuned model.

Loss on eval examples measures answer templates, not facts (it fell in every run that taught
nothing), so the measure that counts is whether greedy answers to *held-out phrasings* name
the right module, parameters, bases and methods (probe_scoring). A retention figure (loss on
general text outside the code base, base vs tuned) shows what the fine-tune cost elsewhere.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from graphtune.tools.dataset.phrasings import CORE_FACT_TYPES
from graphtune.tools.dataset.probe_scoring import score_answer, summarize
from graphtune.tools.dataset.styles import TEMPLATES_FAMILY

EXAMPLES_SHOWN = 6
MIN_NEW_TOKENS = 48
MAX_NEW_TOKENS = 384


def read_probes(folder: Path) -> list[dict[str, Any]]:
    path = folder / "probes.jsonl"
    if not path.is_file():
        return []
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def select_probes(probes: list[dict[str, Any]], limit: int, seed: int = 0) -> list[dict[str, Any]]:
    """At most `limit` probes, taken round-robin across fact types and across held-out templates
    vs held-out style families, so rare types and both figures stay measured."""
    if len(probes) <= limit:
        return probes
    by_type: dict[tuple[bool, str], list[dict[str, Any]]] = defaultdict(list)
    for probe in probes:
        by_type[(probe.get("family", TEMPLATES_FAMILY) == TEMPLATES_FAMILY, probe["fact_type"])].append(probe)
    rng = random.Random(seed)
    for group in by_type.values():
        rng.shuffle(group)
    chosen: list[dict[str, Any]] = []
    queues = [by_type[k] for k in sorted(by_type)]
    while len(chosen) < limit:
        for queue in queues:
            if queue and len(chosen) < limit:
                chosen.append(queue.pop())
    return chosen


def reference_lengths(tokenizer: Any, probes: list[dict[str, Any]]) -> list[int]:
    """Tokens of each probe's reference answer (computed once, shared by base and tuned runs)."""
    return [len(tokenizer(p["reference"], add_special_tokens=False)["input_ids"]) for p in probes]


def answer_budget(longest_reference: int) -> int:
    """max_new_tokens: room for the longest reference answer plus a margin, so a right answer
    is never cut off (and an answer that runs on past it is visible as not ending cleanly)."""
    return max(MIN_NEW_TOKENS, min(MAX_NEW_TOKENS, int(longest_reference * 1.25) + 16))


def probe_budgets(lengths: list[int], batch_size: int) -> list[int]:
    """max_new_tokens of each probe: probes sorted by reference length (`lengths`) form groups of
    `batch_size`, and each group may generate `answer_budget` of its own longest reference, so a
    base model that rambles does not run every probe to the longest budget (it is cut where a
    right answer would have ended)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    budgets = [0] * len(lengths)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        budget = answer_budget(max(lengths[i] for i in chunk))
        for i in chunk:
            budgets[i] = budget
    return budgets


@dataclass
class _Request:
    """Questions for one generate call: the conversations, each one's token budget, and how the
    answers (Generation or None where a deadline cut it) become scored rows."""

    conversations: list[list[dict[str, str]]]
    budgets: list[int]
    rows: Callable[[list[Any]], list[dict[str, Any]]]


def _probe_request(probes: list[dict[str, Any]], lengths: list[int], batch_size: int) -> _Request:
    def rows(answers: list[Any]) -> list[dict[str, Any]]:
        out = []
        for probe, generation in zip(probes, answers, strict=True):
            text = generation.text if generation else ""
            correct, recall = score_answer(text, probe["gold"])
            out.append({"id": probe["id"], "fact_type": probe["fact_type"],
                        "family": probe.get("family", TEMPLATES_FAMILY), "question": probe["question"],
                        "answer": text, "correct": correct, "recall": round(recall, 3),
                        "ended": bool(generation and generation.ended_cleanly), "answered": generation is not None})
        return out

    conversations = [[{"role": "user", "content": p["question"]}] for p in probes]
    return _Request(conversations, probe_budgets(lengths, batch_size), rows)


def _general_request(questions: list[dict[str, Any]]) -> _Request:
    from graphtune.tools.training.general_ability import score_general

    def rows(answers: list[Any]) -> list[dict[str, Any]]:
        return [{"id": q["id"], "category": q["category"], "question": q["question"], "answer": g.text if g else "",
                 "correct": bool(g) and score_general(g.text, q["gold"]), "ended": bool(g and g.ended_cleanly),
                 "answered": g is not None} for q, g in zip(questions, answers, strict=True)]

    conversations = [[{"role": "user", "content": q["question"]}] for q in questions]
    return _Request(conversations, [GENERAL_MAX_NEW_TOKENS] * len(questions), rows)


def _answer_requests(model: Any, tokenizer: Any, requests: list[_Request], *, disable_adapter: bool,
                     deadline: float | None, generation_batch: int | None) -> list[list[dict[str, Any]]]:
    """Every request's rows from ONE generate call. Why one: on a GPU a small model's decode step
    costs about the same for 200 rows as for 800 (kernel launches, not arithmetic), so a batch runs
    as many steps as its longest answer; the general questions (128 tokens at most) ride along in the
    probes' steps instead of adding their own (H200: ~5 s of a ~17 s tuned side). Each row stops at
    its own budget, so the answers are those of separate calls."""
    from graphtune.tools.errors import GenerationTimeout
    from graphtune.tools.training.generation import generate_chat_detailed

    conversations = [c for r in requests for c in r.conversations]
    answers: list[Any]
    try:
        answers = generate_chat_detailed(model, tokenizer, conversations, max_new_tokens=[b for r in requests
                                                                                          for b in r.budgets],
                                         batch_size=generation_batch, deadline=deadline,
                                         disable_adapter=disable_adapter) if conversations else []
    except GenerationTimeout as exc:  # score what finished; the rest count as unanswered
        answers = exc.partial
    out, start = [], 0
    for request in requests:
        out.append(request.rows(answers[start:start + len(request.conversations)]))
        start += len(request.conversations)
    return out


def run_probes(model: Any, tokenizer: Any, probes: list[dict[str, Any]], *, disable_adapter: bool, batch_size: int,
               lengths: list[int], deadline: float | None, generation_batch: int | None = None) -> list[dict[str, Any]]:
    """Greedy answers with per-probe budgets (`probe_budgets` over groups of `batch_size`; `lengths`
    from reference_lengths). The generation itself batches `generation_batch` rows (None: sized by
    memory on CUDA), each row stopping at its own budget: the answers are those of generating each
    group on its own with its budget."""
    [rows] = _answer_requests(model, tokenizer, [_probe_request(probes, lengths, batch_size)],
                              disable_adapter=disable_adapter, deadline=deadline, generation_batch=generation_batch)
    return rows


def retention_loss(model: Any, tokenizer: Any, device: str, *, disable_adapter: bool) -> float | None:
    """Mean answer-token loss on general chat text unrelated to any code base (bundled file)."""
    import contextlib

    from graphtune.tools.training.engine import evaluate_loss
    from graphtune.tools.training.tokenize import encode_all

    text = resources.files("graphtune.tools.training").joinpath("retention.jsonl").read_text(encoding="utf-8")
    conversations = [json.loads(line)["messages"] for line in text.splitlines() if line.strip()]
    examples, _ = encode_all(tokenizer, conversations, 512)
    batches = [examples[i:i + 8] for i in range(0, len(examples), 8)]
    scope = model.disable_adapter() if disable_adapter and hasattr(model, "disable_adapter") \
        else contextlib.nullcontext()
    with scope:
        return evaluate_loss(model, batches, packing=True, pad_id=tokenizer.pad_token_id or 0, device=device)


FORGETTING_POINTS = 5.0  # general ability lost (percentage points) that flags a model `forgetting`
GENERAL_MAX_NEW_TOKENS = 128
GENERAL_EXAMPLES_SHOWN = 3
# Off CUDA a greedy answer costs seconds: ask 8 questions per category (48) instead of all 180, so a CPU
# knowledge job does not spend longer on general questions than on training; the report says how many.
CPU_GENERAL_PER_CATEGORY = 8


def _core(rows: list[dict[str, Any]]) -> float | None:
    core = [r for r in rows if r["fact_type"] in CORE_FACT_TYPES]
    return round(sum(r["correct"] for r in core) / len(core), 4) if core else None


def _slice(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy of one group of probes (held-out templates, or held-out style families)."""
    return {**summarize(rows), "core_accuracy": _core(rows)} if rows else {"probes": 0}


def summarize_probe_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """All probes, plus the two figures that matter apart: held-out templates in the trained
    style, and held-out question style families never trained on (per family too)."""
    out = summarize(rows)
    out["core_accuracy"] = _core(rows)
    templates = [r for r in rows if r.get("family", TEMPLATES_FAMILY) == TEMPLATES_FAMILY]
    families = [r for r in rows if r.get("family", TEMPLATES_FAMILY) != TEMPLATES_FAMILY]
    out["held_out_templates"] = _slice(templates)
    out["held_out_families"] = _slice(families)
    if families:
        names = sorted({r["family"] for r in families})
        out["held_out_families"]["by_family"] = {
            name: summarize([r for r in families if r["family"] == name])["accuracy"] for name in names}
    return out


def _probes_payload(probes: list[dict[str, Any]], batch_size: int) -> dict[str, Any]:
    return {"probes": [[p["id"], p["question"], p["reference"]] for p in probes], "batch_size": batch_size,
            "decoding": "greedy-v1"}


def _general_payload(questions: list[dict[str, Any]], batch_size: int) -> dict[str, Any]:
    return {"questions": [[q["id"], q["question"]] for q in questions], "batch_size": batch_size,
            "max_new_tokens": GENERAL_MAX_NEW_TOKENS, "decoding": "greedy-v1"}


def _answer_side(model: Any, tokenizer: Any, parts: dict[str, tuple[_Request, dict[str, Any]]], *, base: bool,
                 cache: Any, deadline: float | None, generation_batch: int | None = None
                 ) -> dict[str, list[dict[str, Any]]]:
    """Rows of each part ("probes", "general": (request, cache payload)) answered by one model in one
    generate call; the base model's parts are served from / saved to the answer cache (a part is
    saved only when every row was answered)."""
    use_cache = base and cache is not None
    cached = {kind: cache.get(kind, payload) for kind, (_, payload) in parts.items()} if use_cache else {}
    missing = [kind for kind in parts if cached.get(kind) is None]
    answered = _answer_requests(model, tokenizer, [parts[kind][0] for kind in missing], disable_adapter=base,
                                deadline=deadline, generation_batch=generation_batch)
    out = {kind: cached[kind] for kind in parts if kind not in missing}
    for kind, rows in zip(missing, answered, strict=True):
        out[kind] = rows
        if use_cache and all(r["answered"] for r in rows):
            cache.put(kind, parts[kind][1], rows)
    return out


def general_questions(per_category: int | None = None) -> list[dict[str, Any]]:
    """The held-out general questions, all of them or the first `per_category` of each category."""
    from graphtune.tools.training.general_ability import read_general_eval

    questions = read_general_eval()
    if per_category is None:
        return questions
    taken: dict[str, int] = defaultdict(int)
    chosen = []
    for question in questions:
        if taken[question["category"]] < per_category:
            taken[question["category"]] += 1
            chosen.append(question)
    return chosen


def answer_general(model: Any, tokenizer: Any, *, disable_adapter: bool, batch_size: int, cache: Any = None,
                   deadline: float | None = None, per_category: int | None = None,
                   generation_batch: int | None = None) -> list[dict[str, Any]]:
    """The held-out general questions (general_eval.jsonl), answered greedily and scored.
    `batch_size` names the settings in the cache key (kept for the cached answers); the rows
    are generated `generation_batch` at a time (None: sized by memory on CUDA)."""
    questions = general_questions(per_category)
    parts = {"general": (_general_request(questions), _general_payload(questions, batch_size))}
    return _answer_side(model, tokenizer, parts, base=disable_adapter, cache=cache, deadline=deadline,
                        generation_batch=generation_batch)["general"]


def general_report(base_rows: list[dict[str, Any]] | None, tuned_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """General ability base vs tuned, the drop in points, and the `forgetting` verdict."""
    from graphtune.tools.training.general_ability import summarize_general

    tuned = summarize_general(tuned_rows)
    base = summarize_general(base_rows) if base_rows is not None else None
    drop = round(100 * (base["accuracy"] - tuned["accuracy"]), 1) \
        if base and base.get("accuracy") is not None and tuned.get("accuracy") is not None else None
    answers = [{"id": r["id"], "category": r["category"], "question": r["question"],
                "tuned": {"answer": r["answer"], "correct": r["correct"], "ended": r["ended"]},
                **({"base": {"answer": base_rows[i]["answer"], "correct": base_rows[i]["correct"]}} if base_rows else {})}
               for i, r in enumerate(tuned_rows)]
    shown = sorted(answers, key=lambda a: (a["category"] != "python", a["id"]))[:GENERAL_EXAMPLES_SHOWN]
    return {"questions": tuned.get("questions"), "base": base, "tuned": tuned, "drop_points": drop,
            "forgetting": drop is not None and drop > FORGETTING_POINTS, "forgetting_threshold_points": FORGETTING_POINTS,
            "examples": shown, "answers": answers}


def _generate_calls(probes: list[dict[str, Any]], lengths: list[int], questions: list[dict[str, Any]] | None,
                    batch_size: int, device: str) -> list[dict[str, tuple[_Request, dict[str, Any]]]]:
    """The parts each model answers, grouped by generate call. One call on CUDA (a batch there is
    sized by memory and holds them all); off CUDA a batch is CPU_BATCH rows, every row of a batch
    runs as long as its longest and the cost grows with rows, so probes and general questions
    (budget 128) keep batches of their own."""
    parts = {"probes": (_probe_request(probes, lengths, batch_size), _probes_payload(probes, batch_size))}
    if questions is not None:  # None: no general questions asked
        parts["general"] = (_general_request(questions), _general_payload(questions, batch_size))
    return [parts] if device == "cuda" else [{kind: part} for kind, part in parts.items()]


def evaluate_knowledge(model: Any, tokenizer: Any, probes: list[dict[str, Any]], device: str, *, include_base: bool,
                       time_limit_s: float | None = None, progress: Any = None, cache: Any = None,
                       general: bool = True) -> tuple[dict[str, Any], list[dict]]:
    """(report, per-probe rows) for the tuned model under `model` (a PEFT model) and its base.

    Beside the probes: general ability on held-out everyday questions (base vs tuned, the figure
    that says whether the model is still an assistant) and the retention loss. `cache` (an
    AnswerCache for the base model) serves the base model's answers from earlier jobs."""
    started = time.perf_counter()
    deadline = time.time() + time_limit_s if time_limit_s else None
    lengths = reference_lengths(tokenizer, probes)
    budget = answer_budget(max(lengths, default=0))
    batch_size = 128 if device == "cuda" else 16
    was_training = model.training
    model.eval()
    report: dict[str, Any] = {"probes": len(probes), "max_new_tokens": budget}
    rows_by_model: dict[str, list[dict[str, Any]]] = {}
    general_rows: dict[str, list[dict[str, Any]]] = {}
    from graphtune.tools.training.compiled_layers import sdpa_attention

    with sdpa_attention(model):  # flex_attention's inference kernels do not always compile
        questions = general_questions(None if device == "cuda" else CPU_GENERAL_PER_CATEGORY) if general else None
        calls = _generate_calls(probes, lengths, questions, batch_size, device)
        for label in (["base"] if include_base else []) + ["tuned"]:
            if progress:
                progress(f"answering {len(probes)} probes" + (f" and {len(questions)} general questions"
                                                               if questions is not None else "") + f" with the {label} model")
            answered: dict[str, list[dict[str, Any]]] = {}
            for group in calls:
                answered |= _answer_side(model, tokenizer, group, base=label == "base", cache=cache, deadline=deadline)
            rows = answered["probes"]
            rows_by_model[label] = rows
            report[label] = summarize_probe_rows(rows)
            if any(p.get("status") for p in probes):  # a delta dataset: new/changed vs unchanged facts
                report[label]["by_status"] = _by_status(probes, rows)
            if general:
                general_rows[label] = answered["general"]
        base_loss = retention_loss(model, tokenizer, device, disable_adapter=True) if include_base else None
        tuned_loss = retention_loss(model, tokenizer, device, disable_adapter=False)
    if was_training:
        model.train()
    report["retention"] = {"base_loss": _round(base_loss), "tuned_loss": _round(tuned_loss),
                           "relative_rise": _round((tuned_loss - base_loss) / base_loss)
                           if base_loss and tuned_loss is not None else None,
                           "text": "32 general chat answers outside any code base (tools/training/retention.jsonl)"}
    if general_rows:
        report["general"] = general_report(general_rows.get("base"), general_rows["tuned"])
    report["examples"] = _examples(probes, rows_by_model)
    report["seconds"] = round(time.perf_counter() - started, 2)
    merged = [{**row, **{f"{label}_answer": rows_by_model[label][i]["answer"] for label in rows_by_model},
               **{f"{label}_correct": rows_by_model[label][i]["correct"] for label in rows_by_model}}
              for i, row in enumerate(rows_by_model["tuned"])]
    for row in merged:
        row.pop("answer", None)
        row.pop("correct", None)
    return report, merged


def _by_status(probes: list[dict[str, Any]], rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[bool]] = defaultdict(list)
    for probe, row in zip(probes, rows, strict=True):
        groups[probe.get("status") or "unmarked"].append(bool(row["correct"]))
    return {k: {"probes": len(v), "accuracy": round(sum(v) / len(v), 4)} for k, v in sorted(groups.items())}


def _examples(probes: list[dict[str, Any]], rows: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """A few probes, one per fact type first, with base and tuned answers side by side."""
    seen, picked = set(), []
    for i, probe in enumerate(probes):
        if probe["fact_type"] not in seen:
            seen.add(probe["fact_type"])
            picked.append(i)
    for i in range(len(probes)):
        if len(picked) >= EXAMPLES_SHOWN:
            break
        if i not in picked:
            picked.append(i)
    return [{"question": probes[i]["question"], "fact_type": probes[i]["fact_type"],
             **{label: {"answer": r[i]["answer"], "correct": r[i]["correct"]} for label, r in rows.items()}}
            for i in picked[:EXAMPLES_SHOWN]]


def _round(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 4)


def accuracy_table(report: dict[str, Any]) -> list[str]:
    """Markdown rows: fact type | base | tuned (for the model card and the CLI)."""
    base, tuned = report.get("base") or {}, report.get("tuned") or {}
    lines = ["| fact type | probes | base | tuned |", "| --- | ---: | ---: | ---: |"]
    for fact_type, stats in (tuned.get("by_fact_type") or {}).items():
        before = (base.get("by_fact_type") or {}).get(fact_type, {}).get("accuracy")
        lines.append(f"| {fact_type} | {stats['probes']} | {_pct(before)} | {_pct(stats['accuracy'])} |")
    lines.append(f"| **all** | {tuned.get('probes', 0)} | {_pct(base.get('accuracy'))} | "
                 f"{_pct(tuned.get('accuracy'))} |")
    for group, label in (("held_out_templates", "core, held-out templates"),
                         ("held_out_families", "core, held-out question styles")):
        if (tuned.get(group) or {}).get("probes"):
            lines.append(f"| **{label}** | {tuned[group]['probes']} | "
                         f"{_pct((base.get(group) or {}).get('core_accuracy'))} | {_pct(tuned[group]['core_accuracy'])} |")
    general = report.get("general") or {}
    if general.get("tuned"):
        lines.append(f"| **general ability** (everyday questions) | {general.get('questions')} | "
                     f"{_pct((general.get('base') or {}).get('accuracy'))} | {_pct(general['tuned'].get('accuracy'))}"
                     f"{' (forgetting)' if general.get('forgetting') else ''} |")
    return lines


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"
