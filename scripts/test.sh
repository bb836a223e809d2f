#!/usr/bin/env bash
# Runs the project's tests: the Rust unit and integration tests, then the
# built sidecar called by clients this project did not write (Python grpcio
# and grpcurl) over its Unix socket and TCP port. Installs what it needs:
# a Python virtual environment in .venv with pinned packages.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source scripts/lib/sidecar.sh

echo "== cargo test"
cargo test --locked --all-targets

echo "== external clients against the built sidecar"
setup_python
cargo build --locked --bin triage
start_sidecar target/debug/triage --policy tests/fixtures/policy.yaml
trap 'kill "$SIDECAR_PID" 2>/dev/null || true' EXIT

"$PYTHON" tests/python/router_client.py smoke --uds "$GRPC_SOCKET" --tcp "$GRPC_ADDR"
"$PYTHON" tests/python/router_client.py prompts --uds "$GRPC_SOCKET" --tcp "$GRPC_ADDR" tests/fixtures/prompts.jsonl
scripts/grpcurl-check.sh "$GRPCURL" "$GRPC_SOCKET" "$GRPC_ADDR"

stop_sidecar
trap - EXIT
echo "all tests passed"
