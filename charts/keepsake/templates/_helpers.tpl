{{/*
keepsake.image is the keepsake image reference the operator runs and passes
to the Jobs it creates.
*/}}
{{- define "keepsake.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/*
keepsake.selectorLabels select the operator's pods.
*/}}
{{- define "keepsake.selectorLabels" -}}
app.kubernetes.io/name: keepsake
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/*
keepsake.labels go on every object the chart makes.
*/}}
{{- define "keepsake.labels" -}}
{{ include "keepsake.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}
