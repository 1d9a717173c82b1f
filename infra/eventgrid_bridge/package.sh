#!/usr/bin/env bash
# Assemble the Function app in DEST (default infra/eventgrid_bridge/dist), ready for
# `func azure functionapp publish <app> --python` from that folder (or zip deploy).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="${1:-$here/dist}"
mkdir -p "$dest"
cp "$here/function_app.py" "$here/bridge.py" "$here/host.json" "$here/requirements.txt" "$dest/"
# The event contract ships as the pipeline's own files, at the same package paths, so the bridge
# and the polling sensor cannot drift apart. Each is standard library only.
root="$here/../.."
for module in tasks/__init__.py tasks/events/__init__.py tasks/events/blob.py \
    tasks/storage/__init__.py tasks/storage/blob_address.py; do
    mkdir -p "$dest/$(dirname "$module")"
    cp "$root/$module" "$dest/$module"
done
echo "$dest"
