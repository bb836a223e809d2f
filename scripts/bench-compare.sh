#!/usr/bin/env bash
# Compares a criterion benchmark of the working tree with the same
# benchmark at another commit. The two builds run in turn, so that both
# see the same swings in machine load. For every benchmark, the script
# prints the median over the rounds of each build and their ratio.
#
# Usage: scripts/bench-compare.sh BASE BENCH [ROUNDS] [FILTER]
#   BASE    the commit to compare with, such as HEAD~1
#   BENCH   the bench target: classify or hot_path
#   ROUNDS  runs of each build (default 5)
#   FILTER  a criterion filter, such as real/1KB (default: every benchmark)
#
# BENCH_FLAGS replaces the criterion flags (default: --warm-up-time 1
# --measurement-time 1). TRIAGE_BENCH_PROMPTS reaches the classify bench.
# The base build keeps its own target directory, target/bench-compare,
# so a second comparison rebuilds the triage crate but not its
# dependencies.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

usage() {
    echo "usage: $0 BASE BENCH [ROUNDS] [FILTER]" >&2
    exit 2
}

[[ $# -ge 2 && $# -le 4 ]] || usage
base=$1
bench=$2
rounds=${3:-5}
filter=${4:-}
read -r -a flags <<<"${BENCH_FLAGS:---warm-up-time 1 --measurement-time 1}"

if ! base_commit=$(git rev-parse --verify --quiet "$base^{commit}"); then
    echo "error: '$base' is not a commit in this repository; give a commit such as HEAD~1" >&2
    exit 2
fi
if [[ ! -f "benches/$bench.rs" ]]; then
    echo "error: no bench target '$bench'; the targets are: $(basename -s .rs benches/*.rs | tr '\n' ' ')" >&2
    exit 2
fi
if ! [[ $rounds =~ ^[1-9][0-9]*$ ]]; then
    echo "error: ROUNDS must be a positive whole number, not '$rounds'" >&2
    exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Builds the bench in the current directory and copies its executable to $1.
build() {
    local out=$1
    local executable
    executable=$(cargo bench --locked --bench "$bench" --no-run --message-format=json |
        python3 -c '
import json, sys
for line in sys.stdin:
    message = json.loads(line)
    if message.get("reason") == "compiler-artifact" and message.get("executable") \
            and message["target"]["kind"] == ["bench"]:
        print(message["executable"])
')
    cp "$executable" "$out"
}

echo "== building $bench at $(git rev-parse --short "$base_commit") (base)" >&2
mkdir "$work/base"
# -m gives the files the current time rather than the commit's, so cargo
# rebuilds the crate even when target/bench-compare contains a build of
# another commit made after this one. The rebuild also compiles this
# directory into env!("CARGO_MANIFEST_DIR"), which the benches read.
git archive "$base_commit" | tar -x -m -C "$work/base"
(cd "$work/base" && CARGO_TARGET_DIR="$ROOT/target/bench-compare" build "$work/base.bin")
echo "== building $bench in the working tree (new)" >&2
build "$work/new.bin"

for round in $(seq "$rounds"); do
    echo "== round $round of $rounds" >&2
    for side in base new; do
        if ! "$work/$side.bin" --bench --output-format bencher "${flags[@]}" ${filter:+"$filter"} \
            >"$work/$side.$round" 2>"$work/$side.log"; then
            echo "error: the $side build failed in round $round; its last output:" >&2
            tail -n 20 "$work/$side.log" >&2
            exit 1
        fi
    done
done

python3 - "$work" "$rounds" <<'PY'
import re
import statistics
import sys

work, rounds = sys.argv[1], int(sys.argv[2])
line = re.compile(r"^test (\S+) \.\.\. bench:\s+([\d,]+) ns/iter")
times = {}
for side in ("base", "new"):
    for round in range(1, rounds + 1):
        with open(f"{work}/{side}.{round}") as output:
            for match in filter(None, map(line.match, output)):
                name, nanos = match.group(1), int(match.group(2).replace(",", ""))
                times.setdefault(name, {}).setdefault(side, []).append(nanos)
if not times:
    sys.exit("error: no benchmark matched; check FILTER")
print(f"{'benchmark':40} {'base ns':>10} {'new ns':>10} {'new/base':>9}   (medians of {rounds} rounds)")
for name, sides in times.items():
    base = statistics.median(sides.get("base", [0]))
    new = statistics.median(sides.get("new", [0]))
    ratio = f"{new / base:.3f}" if base and new else "-"
    print(f"{name:40} {base:>10.0f} {new:>10.0f} {ratio:>9}")
PY
