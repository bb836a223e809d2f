{{/* The base name of every object the chart creates. */}}
{{- define "triage.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "triage.webhookName" -}}
{{- printf "%s-webhook" (include "triage.fullname" .) -}}
{{- end -}}

{{- define "triage.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "triage.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhook
{{- end -}}

{{- define "triage.webhookImage" -}}
{{- printf "%s:%s" .Values.webhook.image.repository (.Values.webhook.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/*
The sidecar template the webhook reads: files/sidecar.yaml, shared with
the triage binary, with the chart values applied. With default values it
is the same template the binary has built in, which .ci/kube-checks.sh
verifies.
*/}}
{{- define "triage.sidecarTemplate" -}}
{{- $template := .Files.Get "files/sidecar.yaml" | fromYaml -}}
{{- $container := $template.container -}}
{{- $image := printf "%s:%s" .Values.sidecar.image.repository (.Values.sidecar.image.tag | default .Chart.AppVersion) -}}
{{- $_ := set $container "image" $image -}}
{{- $_ := set $container "imagePullPolicy" .Values.sidecar.image.pullPolicy -}}
{{- $_ := set $container "resources" .Values.sidecar.resources -}}
{{- range $container.env -}}
{{- if eq .name "TRIAGE_LOG_LEVEL" -}}
{{- $_ := set . "value" $.Values.sidecar.logLevel -}}
{{- end -}}
{{- end -}}
{{- range $template.volumes -}}
{{- if eq .name "triage-policy" -}}
{{- $_ := set .configMap "name" $.Values.policy.configMapName -}}
{{- end -}}
{{- end -}}
{{- toYaml $template -}}
{{- end -}}
