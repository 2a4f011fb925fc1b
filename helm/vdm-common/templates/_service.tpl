{{/* The service's ClusterIP Service. */}}
{{- define "vdm-common.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "vdm-common.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "vdm-common.labels" . | nindent 4 }}
  {{- with .Values.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ .Values.service.type }}
  selector:
    {{- include "vdm-common.selectorLabels" . | nindent 4 }}
  ports:
    {{- if include "vdm-common.isGateway" . }}
    - name: http
      port: {{ .Values.service.httpPort }}
      targetPort: http
      protocol: TCP
      appProtocol: http
    {{- else }}
    - name: grpc
      port: {{ .Values.service.grpcPort }}
      targetPort: grpc
      protocol: TCP
      appProtocol: grpc
    - name: metrics
      port: {{ .Values.service.metricsPort }}
      targetPort: metrics
      protocol: TCP
      appProtocol: http
    {{- end }}
{{- end -}}
