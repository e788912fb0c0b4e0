"""How closed-book results are stored and shown: registry metrics, job results, answers file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graphtune.tools.dataset.jsonl import write_jsonl


def knowledge_metrics(report: dict[str, Any] | None) -> dict[str, Any]:
    """The few numbers list_models shows (registry row `metrics`)."""
    if not report:
        return {}
    return {"knowledge_accuracy": (report.get("tuned") or {}).get("accuracy"),
            "base_knowledge_accuracy": (report.get("base") or {}).get("accuracy"),
            "knowledge_dataset": report.get("dataset"),
            "retention_rise": (report.get("retention") or {}).get("relative_rise")}


def summary_of(report: dict[str, Any]) -> dict[str, Any]:
    """Compact form for job results: accuracy per fact type, base vs tuned."""
    def per_type(side: str) -> dict[str, float]:
        return {k: v["accuracy"] for k, v in ((report.get(side) or {}).get("by_fact_type") or {}).items()}

    return {"probes": report.get("probes"), "base_accuracy": (report.get("base") or {}).get("accuracy"),
            "tuned_accuracy": (report.get("tuned") or {}).get("accuracy"),
            "ended_cleanly": (report.get("tuned") or {}).get("ended_cleanly"),
            "base_by_fact_type": per_type("base"), "tuned_by_fact_type": per_type("tuned"),
            "retention": report.get("retention"), "examples": report.get("examples", [])[:2],
            **({"tuned_by_status": report["tuned"]["by_status"]} if (report.get("tuned") or {}).get("by_status")
               else {})}


def write_probe_answers(path: Path, rows: list[dict[str, Any]]) -> None:
    write_jsonl(path, rows)
