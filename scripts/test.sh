#!/usr/bin/env bash
# Set up (see setup.sh) and run the whole test suite. Offline: no test reaches the network
# except the MCP Inspector test, which fetches the Inspector CLI from npm (skipped without npx).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
pytest -q "$@"
