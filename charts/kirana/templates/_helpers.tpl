{{/* Name of the ShopRelease, and prefix of what the operator makes for it (<name>-api, ...). */}}
{{- define "kirana.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- end }}

{{- define "kirana.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of what the chart itself renders. */}}
{{- define "kirana.labels" -}}
helm.sh/chart: {{ include "kirana.chart" . }}
app.kubernetes.io/name: kirana
app.kubernetes.io/instance: {{ include "kirana.fullname" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kirana
{{- end }}

{{/* prometheus-operator objects: our labels plus the ones the SRE's Prometheus selects on. */}}
{{- define "kirana.monitoringLabels" -}}
{{ include "kirana.labels" . }}
{{- with .Values.monitoring.labels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Pods of one component, as the operator labels them (kirana.operator.plan.resources). */}}
{{- define "kirana.podSelector" -}}
app.kubernetes.io/name: kirana
app.kubernetes.io/instance: {{ include "kirana.fullname" .root }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{- define "kirana.backupClaim" -}}
{{- default (printf "%s-backups" (include "kirana.fullname" .)) .Values.backup.pvc.claimName }}
{{- end }}

{{/* One Alertmanager matcher string (name="v", name=~"v", name!="v", name!~"v") as an object. */}}
{{- define "kirana.matcher" -}}
{{- $op := regexFind "(=~|!~|!=|=)" . -}}
{{- $parts := splitn $op 2 . -}}
name: {{ $parts._0 | trim | quote }}
value: {{ $parts._1 | trim | trimPrefix "\"" | trimSuffix "\"" | quote }}
matchType: {{ $op | quote }}
{{- end }}

{{/* A `*_file` path of monitoring/alertmanager as a key of the receivers' Secret. */}}
{{- define "kirana.secretRef" -}}
name: {{ .root.Values.monitoring.alertmanagerConfig.secretName }}
key: {{ base .path }}
{{- end }}

{{/* An Alertmanager (snake_case) key as the AlertmanagerConfig (camelCase) one. */}}
{{- define "kirana.amKey" -}}
{{- $special := dict "api_url" "apiURL" "group_by" "groupBy" -}}
{{- if hasKey $special . }}{{ get $special . }}{{ else }}{{ camelcase . | untitle }}{{ end }}
{{- end }}

{{/* One receiver integration (slack_configs item, ...): `*_file` secrets become secret
references, header maps become lists, PagerDuty links become pagerDutyLinkConfigs. */}}
{{- define "kirana.amIntegration" -}}
{{- $root := .root -}}
{{- range $k, $v := .config }}
{{- if hasSuffix "_file" $k }}
{{ include "kirana.amKey" (trimSuffix "_file" $k) }}:
  {{- include "kirana.secretRef" (dict "root" $root "path" $v) | nindent 2 }}
{{- else if eq $k "headers" }}
headers:
{{- range $hk, $hv := $v }}
  - key: {{ $hk | quote }}
    value: {{ $hv | quote }}
{{- end }}
{{- else if eq $k "links" }}
pagerDutyLinkConfigs:
{{- range $v }}
  - href: {{ .href | quote }}
    alt: {{ .text | quote }}
{{- end }}
{{- else }}
{{ include "kirana.amKey" $k }}: {{ toJson $v }}
{{- end }}
{{- end }}
{{- end }}

{{/* A route and its child routes; matcher strings become matcher objects. */}}
{{- define "kirana.amRoute" -}}
{{- $root := .root -}}
{{- range $k, $v := .route }}
{{- if eq $k "matchers" }}
matchers:
{{- range $v }}
  - {{- include "kirana.matcher" . | nindent 4 }}
{{- end }}
{{- else if eq $k "routes" }}
routes:
{{- range $v }}
  - {{- include "kirana.amRoute" (dict "root" $root "route" .) | trim | nindent 4 }}
{{- end }}
{{- else }}
{{ include "kirana.amKey" $k }}: {{ toJson $v }}
{{- end }}
{{- end }}
{{- end }}

{{/* "HH:MM" in a fixed-offset location as "HH:MM" UTC (v1alpha1 time intervals have no location). */}}
{{- define "kirana.utcTime" -}}
{{- $offsets := dict "UTC" 0 "Asia/Kolkata" 330 -}}
{{- if not (hasKey $offsets .location) }}{{ fail (printf "time interval location %s: add its fixed UTC offset to kirana.utcTime" .location) }}{{ end -}}
{{- $parts := splitList ":" .time -}}
{{- $minutes := sub (add (mul (atoi (index $parts 0)) 60) (atoi (index $parts 1))) (get $offsets .location) -}}
{{- if or (lt $minutes 0) (gt $minutes 1440) }}{{ fail (printf "time %s in %s crosses midnight UTC: split the interval" .time .location) }}{{ end -}}
{{- printf "%02d:%02d" (div $minutes 60) (mod $minutes 60) -}}
{{- end }}
