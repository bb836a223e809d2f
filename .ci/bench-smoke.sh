#!/usr/bin/env bash
# Keeps the benchmarks working: compiles the criterion benches and runs the
# load generator briefly in release mode. Fails on any error, including a
# request that failed during the load run (triage bench exits non-zero).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo bench --no-run
cargo build --release --bin triage
./target/release/triage bench --seconds 1 --warmup 200
./target/release/triage bench --seconds 1 --warmup 200 --connections 4 --in-flight 4 --json >/dev/null
