#!/usr/bin/env bash
# Cross-validates the classifier on the shared data sets and fails when a
# figure falls below its target. Usage: .ci/classifier-cv.sh DATA_DIR
#
# Targets: task head macro-F1 >= 0.85 in 5-fold cross-validation, and
# difficulty head CPT(50%) <= 0.33 on GSM8K and on MMLU in 5-fold
# cross-validation. Takes about a minute on 2 cores after the build.
set -euo pipefail

# The task head's macro-F1 target is 0.85. MIN_MACRO_F1 can lower the bar
# the script enforces while that target is not met, so a regression still
# fails; the figure printed is always the measured one.
min_macro_f1=${MIN_MACRO_F1:-0.85}

data=${1:?usage: $0 DATA_DIR (the directory with prompts/ and routing_eval/)}
cd "$(dirname "$0")/.."

cargo build --release --quiet
triage=target/release/triage
models=(--strong gpt-4-1106-preview --weak mistralai/Mixtral-8x7B-Instruct-v0.1)
status=0

# Prints the value of a numeric field of a one-line JSON object.
field() {
    python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

# Fails the run unless "$value $op $target" holds; op is >= or <=.
check() {
    local name=$1 value=$2 op=$3 target=$4
    if python3 -c "import sys; sys.exit(0 if $value $op $target else 1)"; then
        echo "ok    $name = $value ($op $target)"
    else
        echo "FAIL  $name = $value (target $op $target)"
        status=1
    fi
}

tasks=$("$triage" eval --cv 5 --tasks "$data/prompts/labeled_prompts_unified.jsonl" --json)
check "task macro-F1 (5-fold)" "$(field macro_f1 <<<"$tasks")" ">=" "$min_macro_f1"
echo "      task accuracy (5-fold) = $(field accuracy <<<"$tasks")"

gsm8k=$("$triage" eval --cv 5 --routing "$data/routing_eval/routellm_gsm8k_responses.csv" "${models[@]}" --json)
check "GSM8K CPT(50%) (5-fold)" "$(field cpt50 <<<"$gsm8k")" "<=" 0.33
echo "      GSM8K APGR (5-fold) = $(field apgr <<<"$gsm8k")"

mmlu=$("$triage" eval --cv 5 --routing "$data"/routing_eval/routellm_mmlu/*.csv "${models[@]}" --json)
check "MMLU CPT(50%) (5-fold)" "$(field cpt50 <<<"$mmlu")" "<=" 0.33
echo "      MMLU APGR (5-fold) = $(field apgr <<<"$mmlu")"

exit "$status"
