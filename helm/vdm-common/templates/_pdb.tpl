{{/*
The PodDisruptionBudget, when podDisruptionBudget.enabled: minAvailable when
set, else maxUnavailable (which never blocks a drain of a one-replica
Deployment, unlike minAvailable: 1).
*/}}
{{- define "vdm-common.pdb" -}}
{{- if .Values.podDisruptionBudget.enabled -}}
{{- $p := .Values.podDisruptionBudget -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "vdm-common.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "vdm-common.labels" . | nindent 4 }}
spec:
  {{- if hasKey $p "minAvailable" }}
  minAvailable: {{ $p.minAvailable }}
  {{- else }}
  maxUnavailable: {{ $p.maxUnavailable }}
  {{- end }}
  # Evict pods that are not ready anyway, so a crash-looping pod cannot
  # block a node drain.
  unhealthyPodEvictionPolicy: AlwaysAllow
  selector:
    matchLabels:
      {{- include "vdm-common.selectorLabels" . | nindent 6 }}
{{- end -}}
{{- end -}}
