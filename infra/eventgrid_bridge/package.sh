#!/usr/bin/env bash
# Assemble the Function app in DEST (default infra/eventgrid_bridge/dist), ready for
# `func azure functionapp publish <app> --python` from that folder (or zip deploy).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="${1:-$here/dist}"
mkdir -p "$dest"
cp "$here/function_app.py" "$here/bridge.py" "$here/host.json" "$here/requirements.txt" "$dest/"
cp "$here/../../tasks/events/blob.py" "$dest/blob_events.py"
echo "$dest"
