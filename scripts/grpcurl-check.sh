#!/usr/bin/env bash
# Calls a running sidecar with grpcurl over its Unix socket and TCP port:
# reflection listing, health check and a Decide call.
#   grpcurl-check.sh GRPCURL SOCKET HOST:PORT
set -euo pipefail
grpcurl=$1 socket=$2 addr=$3
passed=0 failed=0

expect() {
  local what=$1 needle=$2 output
  shift 2
  if output=$("$@" 2>&1) && grep -q -- "$needle" <<<"$output"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: $what: expected '$needle' in:" >&2
    echo "$output" >&2
  fi
}

# grpcurl puts the socket path in the HTTP/2 :authority header, which the
# server repairs; -authority, which sets a host name instead, works too.
uds=(-plaintext -unix "$socket")
uds_authority=(-plaintext -unix -authority localhost "$socket")
tcp=(-plaintext "$addr")
request='{"request_id": "grpcurl-1", "prompt": "Translate good morning into French.", "tenant": "legal"}'

for target in uds uds_authority tcp; do
  declare -n args=$target
  expect "$target list" triage.v1.Router "$grpcurl" "${args[@]}" list
  expect "$target health" SERVING "$grpcurl" "${args[@]}" grpc.health.v1.Health/Check
  expect "$target describe" latency_budget_ms "$grpcurl" "${args[@]}" describe triage.v1.DecideRequest
  expect "$target decide" '"model": "alpha-large"' "$grpcurl" -d "$request" "${args[@]}" triage.v1.Router/Decide
  expect "$target receipt" PATH_RULE "$grpcurl" -d "$request" "${args[@]}" triage.v1.Router/Decide
done

echo "grpcurl: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
