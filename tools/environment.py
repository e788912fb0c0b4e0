"""Environment checks behind `validate_environment`: cheap, bounded in time, never hanging.

Package versions come from metadata (no imports). Torch devices and bitsandbytes are probed
in a subprocess with a timeout, so the server never imports torch and a broken CUDA driver
cannot wedge it. Neo4j is contacted only when configured, within `neo4j_timeout_s`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import anyio
from graphtune.tools.checks import Check
from pydantic import BaseModel

REQUIRED_PACKAGES = ["mcp", "pydantic", "anyio", "sqlite-utils", "ladybug", "neo4j", "torch", "transformers",
                     "peft", "accelerate", "tokenizers", "gguf"]
OPTIONAL_PACKAGES = {"bitsandbytes": "QLoRA (4-bit)", "liger-kernel": "fused GPU kernels"}
MIN_FREE_GIB = 2.0

_TORCH_PROBE = r"""
import json, importlib.util
out = {}
import torch
out["torch"] = torch.__version__
out["cuda"] = torch.cuda.is_available()
out["gpus"] = [{"name": torch.cuda.get_device_name(i),
                "memory_gib": round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1)}
               for i in range(torch.cuda.device_count())] if out["cuda"] else []
out["mps"] = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
out["bnb"] = importlib.util.find_spec("bitsandbytes") is not None
out["triton"] = importlib.util.find_spec("triton") is not None
print(json.dumps(out))
"""


class CodeBase(BaseModel):
    name: str
    root: str
    files: int
    nodes: int  # code nodes of all kinds (files, classes, functions, methods, parameters, patterns)
    last_ingest: str | None = None  # UTC, ISO 8601
    # its last ingest stopped part-way (graph/unfinished.py): the counts are partial, readers refuse it
    # (codebase_incomplete) and the next ingest_codebase of it rebuilds it whole
    incomplete: bool = False


class BaseModelBrief(BaseModel):
    base_model: str
    kind: str
    size: str | None = None
    usable_offline: bool


class EnvironmentReport(BaseModel):
    ok: bool  # every required check passed; optional ones (`required: false`, e.g. qlora) only warn
    checks: list[Check]
    device: str  # the device `device=auto` training would use
    summary: str
    codebases: list[CodeBase] | None = None  # of the embedded graph; None when it does not exist yet or a
    # writer holds it right now (the graph:embedded check says so)
    base_models: list[BaseModelBrief] = []  # compact; list_base_models has the detail


def base_model_check(settings: Any) -> tuple[Check, list[BaseModelBrief]]:
    """Which base models load here (compact); never fails the report, but says how to get one."""
    from graphtune.tools.training.base_model_inventory import inventory

    entries = inventory(settings)
    briefs = [BaseModelBrief(base_model=e.base_model, kind=e.kind, size=e.size, usable_offline=e.usable_offline)
              for e in entries[:20]]
    offline = [e.base_model for e in entries if e.usable_offline]
    missing = [e for e in entries if e.kind == "builtin" and not e.installed]
    detail = (f"{len(offline)} usable offline: {', '.join(offline[:5])}{' ...' if len(offline) > 5 else ''}"
              if offline else "no base model is available offline")
    fix = ("Built-in models not installed: " + "; ".join(f"{e.base_model}: {_install(e.base_model)}" for e in missing)
           if missing else None)
    return Check(name="base_models", ok=True, detail=detail, fix=fix), briefs


def _install(builtin: str) -> str:
    from graphtune.tools.training.base_models import BUILTINS

    return BUILTINS[builtin].install


def package_checks() -> list[Check]:
    checks = [Check(name="python", ok=sys.version_info >= (3, 11), detail=sys.version.split()[0],
                    fix="graphtune needs Python 3.11 or newer.")]
    for name in REQUIRED_PACKAGES:
        try:
            checks.append(Check(name=f"package:{name}", ok=True, detail=version(name)))
        except PackageNotFoundError:
            checks.append(Check(name=f"package:{name}", ok=False, detail="not installed",
                                fix=f"pip install {name} (or reinstall graphtune)"))
    for name, purpose in OPTIONAL_PACKAGES.items():
        try:
            checks.append(Check(name=f"optional:{name}", ok=True, detail=f"{version(name)} ({purpose})",
                                required=False))
        except PackageNotFoundError:  # not installed is not ok; being optional, it only warns
            checks.append(Check(name=f"optional:{name}", ok=False, required=False,
                                detail=f"not installed; {purpose} unavailable",
                                fix=f"pip install 'graphtune[{'qlora' if name == 'bitsandbytes' else 'fast'}]' "
                                "on a CUDA machine"))
    return checks


def probe_torch(timeout_s: float = 20.0) -> dict[str, Any]:
    """Ask a fresh interpreter what torch sees; {'error': ...} if it fails or takes too long."""
    try:
        proc = subprocess.run([sys.executable, "-c", _TORCH_PROBE], capture_output=True, text=True,
                              timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"error": f"torch probe did not answer within {timeout_s:.0f}s"}
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["unknown error"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def device_checks(probe: dict[str, Any]) -> tuple[list[Check], str]:
    if "error" in probe:
        return [Check(name="torch", ok=False, detail=probe["error"],
                      fix="pip install torch (CPU machines: pip install torch==2.13.0 or the CPU index)")], "cpu"
    checks = [Check(name="torch", ok=True, detail=probe["torch"])]
    if probe["cuda"]:
        gpus = ", ".join(f"{g['name']} ({g['memory_gib']} GiB)" for g in probe["gpus"])
        checks.append(Check(name="device:cuda", ok=True, detail=gpus))
        device = "cuda"
    else:
        checks.append(Check(name="device:cuda", ok=False, required=False,
                            detail="no CUDA GPU; training runs on MPS or CPU (slow)",
                            fix="train small models here (smollm2-135m-instruct), or use a machine with an NVIDIA GPU"))
        device = "mps" if probe["mps"] else "cpu"
    checks.append(Check(name="device:mps", ok=bool(probe["mps"]), required=False,
                        detail="available" if probe["mps"] else "not available (Apple silicon only)"))
    qlora_ok = probe["cuda"] and probe["bnb"]
    detail = "available (CUDA + bitsandbytes)" if qlora_ok else (
        "needs CUDA" if not probe["cuda"] else "bitsandbytes not installed")
    checks.append(Check(name="qlora", ok=qlora_ok, detail=detail, required=False,
                        fix=None if qlora_ok else "use method=lora here; QLoRA needs a CUDA GPU and bitsandbytes"))
    return checks, device


def folder_check(name: str, folder: Path) -> Check:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
        free_gib = shutil.disk_usage(folder).free / 2**30
    except OSError as exc:
        return Check(name=f"folder:{name}", ok=False, detail=f"{folder}: {exc}",
                     fix="Set GRAPHTUNE_HOME to a writable folder.")
    ok = free_gib >= MIN_FREE_GIB
    return Check(name=f"folder:{name}", ok=ok, detail=f"{folder} writable, {free_gib:.1f} GiB free",
                 fix=None if ok else f"Free disk space: at least {MIN_FREE_GIB} GiB is advised for models.")


async def validate(settings: Any, *, probe_timeout_s: float = 20.0) -> EnvironmentReport:
    from graphtune.tools.graph.sources import check_graph_source  # lazy: graph drivers load on use

    checks = package_checks()
    probe = await anyio.to_thread.run_sync(probe_torch, probe_timeout_s)
    device_list, device = device_checks(probe)
    checks += device_list
    for name, folder in (("datasets", settings.datasets_dir), ("models", settings.models_dir),
                         ("state", settings.db_path.parent)):
        checks.append(folder_check(name, folder))
    graph_checks, codebases = await check_graph_source(settings)
    checks += graph_checks
    models_check, briefs = await anyio.to_thread.run_sync(base_model_check, settings)
    checks.append(models_check)
    failed = [c.name for c in checks if not c.ok and c.required]
    warnings = [c.name for c in checks if not c.ok and not c.required]
    summary = (f"{len(failed)} check(s) failed: {', '.join(failed)}" if failed
               else "all required checks passed" if warnings else "all checks passed")
    if warnings:  # e.g. qlora without CUDA (LoRA still works), a code base whose ingest stopped part-way
        summary += f"; warnings (optional checks not passed): {', '.join(warnings)}"
    return EnvironmentReport(ok=not failed, checks=checks, device=device, summary=summary, base_models=briefs,
                             codebases=None if codebases is None else [CodeBase(**c) for c in codebases])
