#!/usr/bin/env bash
# One device call: graphtune's engine and the plain Trainer+PEFT baseline, same machine, same run.
# Needs .whl/ (liger-kernel, bitsandbytes) and .devcarry/hf_lora_baseline.py (copied from ../shared/bench).
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
mkdir -p /tmp/gt/graphtune && ln -sfn "$PWD/server" /tmp/gt/graphtune/server && ln -sfn "$PWD/tools" /tmp/gt/graphtune/tools
export PYTHONPATH=/tmp/gt:/tmp/site PYTHONUNBUFFERED=1 OUT=${OUT:-/tmp}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 bench/train_throughput.py 2>&1 | tee "$OUT/graphtune.log" | grep -v Warning
if [ "${BASELINE:-1}" = 1 ]; then
  VARIANTS=hf-default python3 .devcarry/hf_lora_baseline.py 2>&1 | tee "$OUT/baseline.log" | grep -v Warning | tail -4
fi
