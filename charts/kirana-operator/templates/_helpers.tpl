{{/* Chart name, truncated to the 63 characters a label allows. */}}
{{- define "kirana-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart, unless the release name already contains the chart name. */}}
{{- define "kirana-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "kirana-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kirana-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kirana-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kirana-operator.labels" -}}
helm.sh/chart: {{ include "kirana-operator.chart" . }}
{{ include "kirana-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kirana
{{- end }}

{{- define "kirana-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kirana-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kirana-operator.peeringName" -}}
{{- default (include "kirana-operator.fullname" .) .Values.peeringName }}
{{- end }}
