{{/*
The migration Job: `vdm migrate <component>`, run by Helm before install and
before every upgrade, so new pods start on a migrated schema (the charts set
VDM_MIGRATE_ON_START=false). Helm waits for it; a failed Job fails the
install or upgrade and is kept for `kubectl logs` until the next attempt.
*/}}
{{- define "vdm-common.migrationJob" -}}
{{- if (.Values.migration | default dict).enabled -}}
{{- $component := include "vdm-common.component" . -}}
{{- $m := .Values.migration -}}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ printf "%s-migrate" (include "vdm-common.fullname" .) | trunc 63 | trimSuffix "-" }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "vdm-common.labelsFor" (dict "ctx" . "component" "migration") | nindent 4 }}
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "0"
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  backoffLimit: {{ $m.backoffLimit }}
  activeDeadlineSeconds: {{ $m.activeDeadlineSeconds }}
  template:
    metadata:
      labels:
        {{- include "vdm-common.labelsFor" (dict "ctx" . "component" "migration") | nindent 8 }}
      {{- with .Values.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      {{- include "vdm-common.podSpecCommon" . | trim | nindent 6 }}
      restartPolicy: Never
      containers:
        - name: migrate
          image: {{ include "vdm-common.image" . | quote }}
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          args:
            - migrate
            - {{ $component | quote }}
          env:
            {{- include "vdm-common.env" . | nindent 12 }}
          resources:
            {{- toYaml ($m.resources | default .Values.resources) | nindent 12 }}
          securityContext:
            {{- toYaml .Values.securityContext | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
      volumes:
        {{- include "vdm-common.tmpVolume" . | nindent 8 }}
{{- end -}}
{{- end -}}
