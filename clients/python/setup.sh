#!/usr/bin/env bash
# Sets up the Python example: a virtual environment with the pinned grpcio packages, and stubs
# generated from proto/ by grpcio-tools into clients/python/gen/ (not committed).
#
#   bash clients/python/setup.sh [VENV_DIR]      (default: .tmp/venv at the repository root)
#   VENV_DIR/bin/python clients/python/extract_sender_jid.py --help
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${1:-$root/.tmp/venv}

if [[ ! -x $venv/bin/python ]]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/clients/python/requirements.txt"

gen=$root/clients/python/gen
rm -rf "$gen"
mkdir -p "$gen"
"$venv/bin/python" -m grpc_tools.protoc \
  --proto_path="$root/proto" \
  --python_out="$gen" --pyi_out="$gen" --grpc_python_out="$gen" \
  "$root/proto/mongooseim/mam/v1/sender_jid.proto"
echo "clients/python: stubs in $gen, interpreter $venv/bin/python"
