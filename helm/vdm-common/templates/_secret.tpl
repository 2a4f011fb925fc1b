{{/*
The Secret made from secret.values, when secret.create (for trying the chart
out; production names an existing Secret). It is a pre-install/pre-upgrade
hook ordered before the migration Job, because that Job runs before the
release's ordinary objects exist and needs DATABASE_URL. Being a hook, it is
not deleted by `helm uninstall`.
*/}}
{{- define "vdm-common.secret" -}}
{{- if .Values.secret.create -}}
{{- $secretEnv := include "vdm-common.secretEnvJson" . | fromJson -}}
apiVersion: v1
kind: Secret
metadata:
  name: {{ include "vdm-common.secretName" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "vdm-common.labels" . | nindent 4 }}
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "-10"
    helm.sh/hook-delete-policy: before-hook-creation
type: Opaque
stringData:
  {{- range $id, $key := .Values.secret.keys }}
  {{- $spec := get $secretEnv $id }}
  {{- $value := get ($.Values.secret.values | default dict) $id }}
  {{- if $value }}
  {{ $key }}: {{ $value | quote }}
  {{- else if not $spec.optional }}
  {{- fail (printf "secret.values.%s is required when secret.create is true (it becomes %s)" $id $spec.env) }}
  {{- end }}
  {{- end }}
{{- end -}}
{{- end -}}
