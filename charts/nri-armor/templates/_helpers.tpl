{{/* The chart's name, and the prefix of every object's name. */}}
{{- define "nri-armor.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "nri-armor.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "nri-armor.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "nri-armor.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "nri-armor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/*
What selects the agent's pods, and only them: the NetworkPolicy must not
reach the webhook's pods (the API server calls those).
*/}}
{{- define "nri-armor.agentSelector" -}}
app.kubernetes.io/name: {{ include "nri-armor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: agent
{{- end -}}

{{- define "nri-armor.webhookSelector" -}}
app.kubernetes.io/name: {{ include "nri-armor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhook
{{- end -}}

{{- define "nri-armor.webhookService" -}}
{{- printf "%s-webhook" (include "nri-armor.fullname" .) -}}
{{- end -}}

{{/* The cert-manager Certificate's name, and the Secret it fills. */}}
{{- define "nri-armor.webhookCert" -}}
{{- printf "%s-webhook-tls" (include "nri-armor.fullname" .) -}}
{{- end -}}

{{/*
The keys the agent's pod spec depends on: the host mounts are made for these
paths, so values cannot move them.
*/}}
{{- define "nri-armor.fixedConfig" -}}
socket: /var/run/nri/nri.sock
policyDirs:
  - /etc/nri-armor/policies
metricsAddress: {{ printf ":%d" (int .Values.agent.metricsPort) | quote }}
bpffs: /sys/fs/bpf/nri-armor
stateDir: /run/nri-armor/state
seccompProfileRoot: {{ .Values.agent.kubeletSeccompRoot }}
{{- end -}}
