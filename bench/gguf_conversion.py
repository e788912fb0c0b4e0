"""How long does a first job wait for its GGUF base model to be converted? (issue 21, items 1 and 3)

A knowledge job on a built-in base (a GGUF file) first dequantizes it into a cached Hugging Face
folder (gguf_cache.convert_gguf); on the H200 that took ~30 s of the first `email` job's 266 s.
This converts the same built-in into fresh data dirs, each round in a fresh process (as a first
job's worker is), alternating graphtune's path with the same path without `memoized_gguf_reads`
(transformers reading the file three times and rebuilding gguf's tensor-name map per sub-module),
and checks that both wrote byte-identical weights and tokenizer files.

    python bench/gguf_conversion.py [--rounds 3] [--base smollm2-135m-instruct]

One JSON row per conversion, then a summary row with the medians and their ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

COMPARED = ("model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json", "config.json")


def convert_once(base: str, home: Path, memoized: bool) -> dict[str, Any]:
    """One conversion in this process (run in a child: the first conversion of a process)."""
    import contextlib

    from graphtune.server.settings import Settings
    from graphtune.tools.training import gguf_cache
    from graphtune.tools.training.base_models import BUILTINS

    if not memoized:
        gguf_cache.memoized_gguf_reads = contextlib.nullcontext  # the code before it
    settings = Settings(home=home)
    started = time.perf_counter()
    folder = gguf_cache.convert_gguf(BUILTINS[base].source(), settings)
    seconds = time.perf_counter() - started
    digests = {name: hashlib.sha256((folder / name).read_bytes()).hexdigest()[:16] for name in COMPARED
               if (folder / name).is_file()}
    return {"memoized": memoized, "seconds": round(seconds, 2), "digests": digests}


def _child(base: str, memoized: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="gguf-conv-") as home:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
        out = subprocess.run([sys.executable, __file__, "--child", base, "--memoized", str(int(memoized)),
                              "--home", home], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--base", default="smollm2-135m-instruct")
    parser.add_argument("--child")
    parser.add_argument("--memoized", type=int, default=1)
    parser.add_argument("--home")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(convert_once(args.child, Path(args.home), bool(args.memoized))), flush=True)
        return 0
    rows: list[dict[str, Any]] = []
    for index in range(args.rounds):
        for memoized in ((True, False) if index % 2 else (False, True)):  # alternate which goes first
            row = {**_child(args.base, memoized), "round": index, "load": round(os.getloadavg()[0], 2)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    medians = {m: statistics.median(r["seconds"] for r in rows if r["memoized"] is m) for m in (True, False)}
    identical = len({json.dumps(r["digests"], sort_keys=True) for r in rows}) == 1
    print(json.dumps({"summary": True, "base": args.base, "median_s_memoized": medians[True],
                      "median_s_before": medians[False], "ratio": round(medians[True] / medians[False], 3),
                      "byte_identical": identical, "rounds": args.rounds}), flush=True)
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
