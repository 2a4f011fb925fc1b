{{/*
The Prometheus Operator ServiceMonitor, when serviceMonitor.enabled (needs
the monitoring.coreos.com CRDs in the cluster).
*/}}
{{- define "vdm-common.serviceMonitor" -}}
{{- if .Values.serviceMonitor.enabled -}}
{{- $s := .Values.serviceMonitor -}}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "vdm-common.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "vdm-common.labels" . | nindent 4 }}
    {{- with $s.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "vdm-common.selectorLabels" . | nindent 6 }}
  namespaceSelector:
    matchNames:
      - {{ .Release.Namespace }}
  endpoints:
    - port: {{ include "vdm-common.adminPortName" . }}
      path: /metrics
      interval: {{ $s.interval }}
      scrapeTimeout: {{ $s.scrapeTimeout }}
{{- end -}}
{{- end -}}
