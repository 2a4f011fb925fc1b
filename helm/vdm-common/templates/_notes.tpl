{{/* The NOTES.txt body of a service chart installed on its own. */}}
{{- define "vdm-common.notes" -}}
{{- $fullname := include "vdm-common.fullname" . -}}
{{- $component := include "vdm-common.component" . -}}
{{ $fullname }} ({{ include "vdm-common.image" . }}, `vdm {{ include "vdm-common.subcommand" . }}`) is installed in namespace {{ .Release.Namespace }}.
{{- if (.Values.migration | default dict).enabled }}

The schema migration (`vdm migrate {{ $component }}`) ran as Job {{ $fullname }}-migrate before the pods
started; a failed migration fails the install or upgrade and keeps its Job:
  kubectl -n {{ .Release.Namespace }} logs job/{{ $fullname }}-migrate
{{- end }}

Credentials are read from Secret {{ include "vdm-common.secretName" . }}{{ if .Values.secret.create }} (made from secret.values; `helm uninstall` leaves it behind){{ end }}, keys: {{ values .Values.secret.keys | sortAlpha | join ", " }}.
{{- if not (or .Values.secret.create .Values.secret.existingSecret) }}
Create it before the pods can start, e.g.
  kubectl -n {{ .Release.Namespace }} create secret generic {{ include "vdm-common.secretName" . }} {{ if hasKey .Values.secret.keys "databaseUrl" }}--from-literal=DATABASE_URL='postgres://...'{{ end }}{{ if include "vdm-common.isGateway" . }}--from-literal=VDM_JWT_SECRET='...' --from-literal=VDM_ADMIN_TOKEN='...'{{ end }}{{ if hasKey .Values.secret.keys "llmApiKey" }} [--from-literal=VDM_LLM_API_KEY='...']{{ end }}
{{- end }}

Watch the rollout:
  kubectl -n {{ .Release.Namespace }} rollout status deployment/{{ $fullname }}
{{- if include "vdm-common.isGateway" . }}

Try the gateway:
  kubectl -n {{ .Release.Namespace }} port-forward service/{{ $fullname }} 8080:{{ .Values.service.httpPort }}
  curl -s localhost:8080/ready
{{ include "vdm-common.gatewayNotes" . }}
{{- else }}

gRPC: {{ $fullname }}.{{ .Release.Namespace }}.svc:{{ .Values.service.grpcPort }}; /health, /ready and /metrics on port {{ .Values.service.metricsPort }}.
{{- end }}
{{- range $name, $url := (.Values.upstreams | default dict) }}
It calls {{ $name }} at {{ tpl ($url | default (printf "http://%s:50051" (include "vdm-common.fullnameFor" (dict "release" $.Release.Name "name" (printf "vdm-%s" $name))))) $ }}.
{{- end }}
{{- with .Values.llm }}
Retellings are rewritten by {{ if .url }}{{ .model }} at {{ .url }} (the built-in transformer when it fails or is slow){{ else }}the built-in transformer (set llm.url for a model){{ end }}.
{{- end }}
{{- if .Values.autoscaling.enabled }}

Replicas: {{ .Values.autoscaling.minReplicas }}-{{ .Values.autoscaling.maxReplicas }} (HorizontalPodAutoscaler).
{{- else }}

Replicas: {{ .Values.replicaCount }}; scale with --set replicaCount=N or autoscaling.enabled=true.
{{- end }}
{{- end -}}


{{/* What the gateway takes as a client's address, and its operator credentials. */}}
{{- define "vdm-common.gatewayNotes" -}}
Client addresses (per-address rate limits): {{ with .Values.config.trustedProxies }}the right-most X-Forwarded-For hop outside {{ join ", " . }}{{ else }}the TCP peer. Behind an Ingress, set config.trustedProxies to the controller's pod CIDR, or every client shares the controller's address{{ end }}.
Operator credentials: VDM_ADMIN_TOKEN (named admin){{ with .Values.operatorCredentials }}{{ if .existingSecret }} and the `name token` lines of Secret {{ .existingSecret }}, key {{ .key }}, re-read when the Secret changes{{ end }}{{ end }}.
{{- end -}}
