{{/* The service's Deployment. */}}
{{- define "vdm-common.deployment" -}}
{{- include "vdm-common.checkTermination" . -}}
{{- $fullname := include "vdm-common.fullname" . -}}
{{- $adminPort := include "vdm-common.adminPortName" . -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $fullname }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "vdm-common.labels" . | nindent 4 }}
spec:
  {{- if not .Values.autoscaling.enabled }}
  replicas: {{ .Values.replicaCount }}
  {{- end }}
  revisionHistoryLimit: {{ .Values.revisionHistoryLimit }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      # Start a new pod before stopping an old one: capacity never drops.
      maxSurge: 25%
      maxUnavailable: 0
  selector:
    matchLabels:
      {{- include "vdm-common.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "vdm-common.labels" . | nindent 8 }}
        {{- with .Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- $annotations := include "vdm-common.checksumAnnotations" . | fromYaml | default dict }}
      {{- $annotations = merge $annotations (.Values.podAnnotations | default dict) }}
      {{- with $annotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      {{- include "vdm-common.podSpecCommon" . | trim | nindent 6 }}
      {{- with .Values.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      # preStop sleep (endpoints and load balancers forget the pod) + the
      # binary's drain after SIGTERM (readiness off, in-flight requests
      # finish, exit within ~20 s) must fit in the grace period; the chart
      # refuses values where they do not.
      terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
      containers:
        - name: {{ include "vdm-common.component" . }}
          image: {{ include "vdm-common.image" . | quote }}
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          args:
            - {{ include "vdm-common.subcommand" . | quote }}
          ports:
            {{- include "vdm-common.containerPorts" . | trim | nindent 12 }}
          env:
            {{- include "vdm-common.env" . | nindent 12 }}
            {{- with include "vdm-common.operatorCredentialsEnv" . | trim }}
            {{- . | nindent 12 }}
            {{- end }}
          startupProbe:
            httpGet:
              path: /health
              port: {{ $adminPort }}
            {{- toYaml .Values.probes.startup | nindent 12 }}
          livenessProbe:
            httpGet:
              path: /health
              port: {{ $adminPort }}
            {{- toYaml .Values.probes.liveness | nindent 12 }}
          readinessProbe:
            httpGet:
              path: /ready
              port: {{ $adminPort }}
            {{- toYaml .Values.probes.readiness | nindent 12 }}
          {{- if gt (int .Values.preStopSleepSeconds) 0 }}
          lifecycle:
            preStop:
              sleep:
                seconds: {{ .Values.preStopSleepSeconds }}
          {{- end }}
          resources:
            {{- toYaml .Values.resources | nindent 12 }}
          securityContext:
            {{- toYaml .Values.securityContext | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- with include "vdm-common.operatorCredentialsMount" . | trim }}
            {{- . | nindent 12 }}
            {{- end }}
      volumes:
        {{- include "vdm-common.tmpVolume" . | nindent 8 }}
        {{- with include "vdm-common.operatorCredentialsVolume" . | trim }}
        {{- . | nindent 8 }}
        {{- end }}
      {{- with .Values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- if .Values.topologySpread.enabled }}
      topologySpreadConstraints:
        {{- range .Values.topologySpread.topologyKeys }}
        - maxSkew: 1
          topologyKey: {{ . }}
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- include "vdm-common.selectorLabels" $ | nindent 14 }}
        {{- end }}
      {{- end }}
{{- end -}}
