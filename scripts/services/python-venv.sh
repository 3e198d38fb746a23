#!/usr/bin/env bash
# The Python venv holding the object storage emulators (gcp-storage-emulator, moto[s3]); prints its path.
# Created on first use (~50 s); `ZENML_SERVICES_VENV` overrides where it lives.
set -euo pipefail
VENV="${ZENML_SERVICES_VENV:-${HOME}/.cache/zenml-run/services-venv}"
if [ ! -x "$VENV/bin/gcp-storage-emulator" ] || [ ! -x "$VENV/bin/moto_server" ]; then
    echo "python-venv.sh: installing gcp-storage-emulator and moto[s3] into $VENV (~50 s the first time)" >&2
    python3 -m venv "$VENV" >&2
    "$VENV/bin/pip" install -q gcp-storage-emulator 'moto[s3]' flask flask-cors >&2 \
        || { echo "python-venv.sh: error: pip install failed (no network?)" >&2; exit 1; }
fi
echo "$VENV"
