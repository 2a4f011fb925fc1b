{{/*
The `helm test` Pod, when tests.enabled: it asks the service's /ready (the
gateway's on its HTTP port, a gRPC service's on its admin port) through the
Service, and fails unless the answer is 2xx (/ready answers 200 or 503).
The vdm image is distroless (no shell, no HTTP client), so the check runs
busybox's wget from tests.image, with the pods' securityContext (non-root,
read-only root filesystem, no capabilities, RuntimeDefault seccomp). Helm
deletes the Pod before the next run and after a success; a failed one stays
for `kubectl logs`.
*/}}
{{- define "vdm-common.testPod" -}}
{{- if .Values.tests.enabled -}}
{{- $fullname := include "vdm-common.fullname" . -}}
{{- $port := ternary .Values.service.httpPort .Values.service.metricsPort (eq (include "vdm-common.isGateway" .) "true") -}}
apiVersion: v1
kind: Pod
metadata:
  name: {{ printf "%s-test-ready" $fullname | trunc 63 | trimSuffix "-" }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "vdm-common.labelsFor" (dict "ctx" . "component" "test") | nindent 4 }}
  annotations:
    helm.sh/hook: test
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  {{- include "vdm-common.podSpecCommon" . | trim | nindent 2 }}
  restartPolicy: Never
  containers:
    - name: ready
      image: {{ .Values.tests.image | quote }}
      imagePullPolicy: IfNotPresent
      # -T: give up after 5 s; busybox wget exits 1 on any non-2xx answer.
      command:
        - wget
        - -q
        - -T
        - "5"
        - -O
        - /dev/null
        - {{ printf "http://%s:%d/ready" $fullname (int $port) | quote }}
      resources:
        {{- toYaml .Values.tests.resources | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
{{- end -}}
{{- end -}}
