#!/usr/bin/env bash
# Set up (see setup.sh) and run graphtune's main job end to end on the embedded graph:
# validate -> ingest a real code base -> extract a dataset -> fine-tune a tiny model on CPU -> show it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1
exec graphtune --home "${GRAPHTUNE_HOME:-./demo-home}" demo "$@"
