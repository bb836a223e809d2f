#!/usr/bin/env bash
# Sends every prompt of a JSONL file through a built sidecar, serving its
# embedded policy, over both the Unix socket and TCP, and fails unless every
# decision is valid and carries a receipt.
#   prompts-check.sh BINARY FILE.jsonl
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
binary=$1 prompts=$2
source "$ROOT/scripts/lib/sidecar.sh"

setup_python
start_sidecar "$binary"
trap 'kill "$SIDECAR_PID" 2>/dev/null || true' EXIT
"$PYTHON" "$ROOT/tests/python/router_client.py" prompts --uds "$GRPC_SOCKET" --tcp "$GRPC_ADDR" "$prompts"
stop_sidecar
trap - EXIT
