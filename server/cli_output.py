"""What the CLI prints: readable lines by default, today's JSON with `--json`, CLI names in hints.

Results are the MCP tools' pydantic models; people get one line per job, model, dataset, check or
change, scripts get `--json` (indented JSON, unchanged). Hints written for agents name MCP tools
(`list_datasets`, `device='auto'`); the CLI rewrites them to commands and flags (`graphtune
datasets`, `--device auto`).
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

__all__ = ["cli_wording", "emit", "human"]

TOOL_COMMANDS = {
    "validate_environment": "graphtune validate", "get_training_status": "graphtune status",
    "list_jobs": "graphtune jobs", "cancel_job": "graphtune cancel", "ingest_codebase": "graphtune ingest",
    "extract_training_data": "graphtune extract-data", "list_datasets": "graphtune datasets",
    "preview_dataset": "graphtune datasets NAME", "start_fine_tuning": "graphtune train",
    "resume_fine_tuning": "graphtune resume", "list_models": "graphtune models", "evaluate_model": "graphtune evaluate",
    "list_base_models": "graphtune base-models", "ask_model": "graphtune ask", "compare_models": "graphtune compare",
    "merge_adapter": "graphtune merge", "export_model": "graphtune export",
}
_STATUS_CALL = re.compile(r"get_training_status\(job_id='([^']+)'(?:, detail=true)?\)")
_TOOL = re.compile(r"\b(" + "|".join(TOOL_COMMANDS) + r")\b(?:\(\))?")
_ASSIGN = re.compile(r"(?<![`\w])([a-z][a-z_]*[a-z])=('([^']*)'|true|false|[\w.+-]+)")


@functools.cache
def _positionals() -> frozenset[str]:
    """Arguments the CLI takes by position (a hint shows just their value)."""
    from graphtune.tools import requests

    models = [getattr(requests, name) for name in requests.__all__ if name.endswith("Request")]
    return frozenset({"job_id", *(name for model in models for name in model.positional)})


def _flag(match: re.Match[str]) -> str:
    name, value, quoted = match.group(1), match.group(2), match.group(3)
    shown = quoted if quoted is not None else value
    if name in _positionals() and value not in ("true", "false"):
        return shown
    flag = "--" + name.replace("_", "-")
    if value == "true":
        return flag
    if value == "false":
        return f"no {flag}"
    return f"{flag} {shown}"


# Marks a line of the user's own data (a dataset record): cli_wording leaves it as written, since code
# holds `name=value` (`def f(lo=0)`) and tool names that are no hints.
VERBATIM = "\x1e"


def cli_wording(text: str) -> str:
    """Tool names and `name=value` arguments in a hint, as CLI commands and flags; lines marked
    VERBATIM are printed as they are."""
    return "\n".join(line.replace(VERBATIM, "", 1) if line.lstrip(" ").startswith(VERBATIM) else _reworded(line)
                     for line in text.split("\n"))


def _reworded(text: str) -> str:
    text = _STATUS_CALL.sub(lambda m: f"graphtune status {m.group(1)}", text)
    text = _TOOL.sub(lambda m: TOOL_COMMANDS[m.group(1)], text)
    return _ASSIGN.sub(_flag, text)


def emit(result: Any, *, as_json: bool) -> None:
    """Print a tool result: JSON for scripts; for people, readable lines that name CLI commands."""
    if hasattr(result, "model_dump"):
        result = result.model_dump(mode="json", exclude_none=True)
    print(json.dumps(result, indent=2, default=str) if as_json else cli_wording(human(result)))


def _scalar(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value):
        return ", ".join(map(str, value)) or "-"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(", ", ": "), default=str)
    return str(value)


# The fields that identify an item, in the order shown: a job, model, dataset, base model, a diff's
# change (`added  class  p.Store  p/store.py`) or graph version; any other item shows its first scalars.
_ITEM_KEYS = ("job_id", "name", "version", "change", "kind", "entity", "status", "created_at", "objective",
              "base_model", "examples", "file")


def _item_line(item: dict[str, Any]) -> str:
    """One line for a job, model, dataset or check."""
    if "ok" in item and "name" in item:  # a validate_environment check
        mark = "ok  " if item["ok"] else ("warn" if item.get("required") is False else "FAIL")
        fix = f"  fix: {item['fix']}" if item.get("fix") and not item["ok"] else ""
        return f"{mark} {item['name']}: {item.get('detail', '')}{fix}"
    if isinstance(item.get("messages"), list):  # a dataset record (chat format)
        text = " | ".join(f"{m.get('role')}: {m.get('content')}" for m in item["messages"] if isinstance(m, dict))
        return VERBATIM + text.replace("\n", "\n" + VERBATIM)
    keys = [k for k in _ITEM_KEYS if item.get(k) is not None]
    keys = keys or [k for k, v in item.items() if not isinstance(v, (dict, list))][:5]
    if not keys:  # nothing scalar to pick: the item itself rather than an empty line
        return _scalar(item)
    exports = [f"{e['output_type']} {(e.get('size_bytes') or 0) / 1e6:.0f} MB" for e in item.get("exports") or []]
    offline = "  (not usable offline)" if item.get("usable_offline") is False else ""
    return "  ".join(_scalar(item[k]) for k in keys) + (f"  gguf: {', '.join(exports)}" if exports else "") + offline


def _is_sourced(value: Any) -> bool:
    """A mapping of setting -> {value, source} (the plan of a dry run)."""
    return isinstance(value, dict) and bool(value) and all(
        isinstance(v, dict) and v.keys() == {"value", "source"} for v in value.values())


def _lines(data: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, value in data.items():
        if _is_sourced(value):  # a dry run's resolved settings: one line each, with where it came from
            out += [f"{prefix}{key}.{name}: {_scalar(s['value'])}  ({s['source']})" for name, s in value.items()]
        elif isinstance(value, dict) and value and len(value) <= 12:
            out += _lines(value, f"{prefix}{key}.")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            out.append(f"{prefix}{key}:")
            out += [f"  {_item_line(v)}" for v in value]
        else:
            out.append(f"{prefix}{key}: {_scalar(value)}")
    return out


def _job_lines(view: dict[str, Any]) -> list[str]:
    dry = view["status"] == "dry_run"  # answered at once: no job id, nothing queued
    head = f"{view['kind']} dry run" if dry else f"{view['kind']} job {view['job_id']}: {view['status']}"
    progress = (view.get("progress") or {}).get("message")
    lines = [head + (f" ({progress})" if progress else "")]
    if view.get("error"):
        error = view["error"]
        lines.append(f"error: [{error.get('code')}] {error.get('message')}"
                     + (f" Hint: {error['hint']}" if error.get("hint") else ""))
    if view.get("result"):
        lines += [f"  {line}" for line in _lines(view["result"])]
    if view["status"] in ("queued", "running"):
        lines.append(f"follow it: graphtune status {view['job_id']} --follow")
    return lines


def human(result: Any) -> str:
    """Readable lines for any tool result (a job view, a listing, a report or a plain object)."""
    if not isinstance(result, dict):
        return _scalar(result)
    if {"job_id", "kind", "status"} <= result.keys() or ({"kind", "status"} <= result.keys()
                                                       and result["status"] == "dry_run"):
        return "\n".join(_job_lines(result))
    text = "\n".join(_lines({k: v for k, v in result.items() if k != "next_step"}))
    if result.get("next_step"):
        text += f"\nnext: {result['next_step']}"
    return text
