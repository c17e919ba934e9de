{{/* Full name: release-chart, unless the release name already contains the chart name. */}}
{{- define "kirana-load.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 55 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 55 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "kirana-load.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kirana
{{- end }}

{{- define "kirana-load.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The pod settings master and workers share: image, environment, a writable /tmp only. */}}
{{- define "kirana-load.pod" -}}
automountServiceAccountToken: false
enableServiceLinks: false
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  runAsGroup: 10001
  seccompProfile:
    type: RuntimeDefault
volumes:
  - name: tmp
    emptyDir: {}
  {{- if .Values.thresholds }}
  - name: thresholds
    configMap:
      name: {{ include "kirana-load.fullname" . }}
  {{- end }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- end }}

{{- define "kirana-load.container" -}}
image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
imagePullPolicy: {{ .Values.image.pullPolicy }}
env:
  - name: KIRANA_LOAD_SHAPE
    value: {{ .Values.shape | quote }}
  - name: KIRANA_LOAD_USERS
    value: {{ .Values.users | quote }}
  - name: KIRANA_LOAD_DURATION_S
    value: {{ .Values.durationSeconds | quote }}
  - name: KIRANA_LOAD_OUT
    value: /tmp/out
  {{- with .Values.razorpayUrl }}
  - name: KIRANA_LOAD_RAZORPAY_URL
    value: {{ . | quote }}
  {{- end }}
  {{- with .Values.smsUrl }}
  - name: KIRANA_LOAD_SMS_URL
    value: {{ . | quote }}
  {{- end }}
  {{- with .Values.ownerSecret }}
  - name: KIRANA_LOAD_OWNER
    valueFrom: {secretKeyRef: {name: {{ . | quote }}, key: identifier}}
  - name: KIRANA_LOAD_OWNER_PASSWORD
    valueFrom: {secretKeyRef: {name: {{ . | quote }}, key: password}}
  - name: KIRANA_LOAD_OWNER_PHONE
    valueFrom: {secretKeyRef: {name: {{ . | quote }}, key: phone, optional: true}}
  {{- end }}
  {{- if .Values.thresholds }}
  - name: KIRANA_LOAD_THRESHOLDS
    value: /etc/kirana-load/thresholds.toml
  {{- end }}
volumeMounts:
  - name: tmp
    mountPath: /tmp
  {{- if .Values.thresholds }}
  - name: thresholds
    mountPath: /etc/kirana-load
    readOnly: true
  {{- end }}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: [ALL]
{{- end }}
