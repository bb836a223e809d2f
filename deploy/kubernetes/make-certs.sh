#!/usr/bin/env bash
# Creates the webhook's TLS Secret and sets the caBundle of its
# MutatingWebhookConfiguration, for the plain manifests in triage.yaml.
# Needs openssl and kubectl with access to the cluster. Run it again to
# rotate the certificate; the webhook reloads it without a restart.
set -euo pipefail

namespace=triage-system
service=triage-webhook
days="${TRIAGE_CERT_DAYS:-3650}"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT

openssl req -x509 -newkey rsa:2048 -nodes -days "$days" \
  -keyout "$dir/ca.key" -out "$dir/ca.crt" -subj "/CN=${service}-ca" 2>/dev/null

cat > "$dir/ext.cnf" <<CNF
subjectAltName = DNS:${service}, DNS:${service}.${namespace}, DNS:${service}.${namespace}.svc, DNS:${service}.${namespace}.svc.cluster.local
extendedKeyUsage = serverAuth
CNF
openssl req -newkey rsa:2048 -nodes -keyout "$dir/tls.key" -out "$dir/tls.csr" \
  -subj "/CN=${service}.${namespace}.svc" 2>/dev/null
openssl x509 -req -in "$dir/tls.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
  -CAcreateserial -days "$days" -extfile "$dir/ext.cnf" -out "$dir/tls.crt" 2>/dev/null

kubectl -n "$namespace" create secret generic "${service}-tls" --type=kubernetes.io/tls \
  --from-file=ca.crt="$dir/ca.crt" --from-file=tls.crt="$dir/tls.crt" \
  --from-file=tls.key="$dir/tls.key" --dry-run=client -o yaml | kubectl apply -f -

ca_bundle="$(base64 < "$dir/ca.crt" | tr -d '\n')"
for index in 0 1; do
  kubectl patch mutatingwebhookconfiguration triage --type=json \
    -p "[{\"op\":\"add\",\"path\":\"/webhooks/${index}/clientConfig/caBundle\",\"value\":\"${ca_bundle}\"}]"
done
echo "created secret ${namespace}/${service}-tls and set the webhook caBundle"
