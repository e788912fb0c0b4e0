"""A real llama.cpp for tests and benchmarks: npm `node-llama-cpp` (pinned; its prebuilt Linux x64
binary installs from the registry, no compiler) answering questions from a GGUF file with the
file's own chat template. `install()` returns None when node/npm is missing or the install fails,
so callers can skip."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

PIN = "node-llama-cpp@3.21.1"
HERE = Path(__file__).parent
DEFAULT_DIR = Path(os.environ.get("GRAPHTUNE_NODE_LLAMA_DIR", Path.home() / ".cache" / "graphtune" / "node-llama-cpp-3.21.1"))


def install(folder: Path = DEFAULT_DIR) -> Path | None:
    """The folder holding node_modules/node-llama-cpp (installed once), or None if it cannot be.
    An already installed folder needs only `node` (the GPU machine gets one staged, with no npm)."""
    if shutil.which("node") is None:
        return None
    if not (folder / "node_modules" / "node-llama-cpp" / "package.json").is_file():
        if shutil.which("npm") is None:
            return None
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "package.json").write_text('{"name": "graphtune-llama-check", "private": true}\n')
        try:
            done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "-E", PIN], cwd=folder,
                                  capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if done.returncode != 0:
            return None
    shutil.copyfile(HERE / "llama_chat.mjs", folder / "llama_chat.mjs")  # ESM resolves packages beside the script
    return folder


def ask(folder: Path, gguf: Path, questions: list[str | dict[str, Any]], *, max_tokens: int = 64, threads: int | None = None,
        timeout: float = 900, restarts: int = 3) -> dict[str, Any]:
    """{"load_s", "answers": [{"text", "stop_reason" ("eogToken" = ended the turn), "seconds"}], "restarts"}.
    A question is a string or {"text", "max_tokens"} (its own token budget).

    node-llama-cpp 3.21.1 sometimes aborts inside llama.cpp's tokenizer (`llama_vocab::byte_to_token`:
    std::out_of_range) on a question it answers fine when asked again: seen once in 600 probes on a
    16-core machine, never reproduced on 2 cores, so a race rather than the file. A crash keeps the
    answers streamed before it and the rest are asked in a fresh process, at most `restarts` times;
    `restarts` in the result says how many were needed (a crash on the same question twice is raised)."""
    answers: list[dict[str, Any]] = []
    load_s, used, last_failed = 0.0, 0, -1
    while len(answers) < len(questions):
        done, lines = _run_chat(folder, gguf, questions[len(answers):], max_tokens, threads, timeout)
        answers += [row for row in lines if "index" in row]
        load_s = load_s or next((row["load_s"] for row in lines if "load_s" in row), 0.0)
        if done.returncode == 0:
            break
        if used >= restarts or last_failed == len(answers):
            raise RuntimeError(f"node-llama-cpp failed ({done.returncode}) at question {len(answers)}: "
                               f"{done.stderr[-2000:]}")
        used, last_failed = used + 1, len(answers)
    return {"load_s": load_s, "answers": [{k: a[k] for k in ("text", "stop_reason", "seconds")} for a in answers],
            "restarts": used}


def _run_chat(folder: Path, gguf: Path, questions: list[str | dict[str, Any]], max_tokens: int, threads: int | None,
              timeout: float) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    request = {"model": str(gguf), "questions": questions, "max_tokens": max_tokens,
               "threads": threads or os.cpu_count() or 2}
    done = subprocess.run(["node", str(folder / "llama_chat.mjs")], input=json.dumps(request), cwd=folder,
                          capture_output=True, text=True, timeout=timeout)
    lines = []
    for line in done.stdout.splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut off by the crash
    return done, lines
