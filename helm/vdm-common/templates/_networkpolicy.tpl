{{/*
The service's NetworkPolicy, when networkPolicy.enabled. It selects the
service's pods (the Deployment's selector labels) and restricts ingress only:

- a gRPC service's gRPC port: pods of this release that are part of vdm (the
  gateway and the other services, labelled app.kubernetes.io/instance and
  app.kubernetes.io/part-of by labelsFor), plus networkPolicy.grpcFrom (e.g.
  a gateway installed as another release);
- its admin port (/health, /ready, /metrics): any pod of the namespace (the
  metrics service scrapes it, `helm test` calls /ready), plus
  networkPolicy.metricsFrom (e.g. Prometheus in another namespace);
- the gateway's HTTP port, the public edge: from anywhere, or, when
  networkPolicy.ingressFrom is set, from those peers plus the namespace and
  metricsFrom (the same port serves /ready and /metrics).

Egress is not restricted (policyTypes lists Ingress only): Postgres, Redis,
the OTLP collector and the LLM upstream are external addresses that differ
per installation, and an egress list that misses one fails at runtime, not
at install. The kubelet's probes are not subject to NetworkPolicy.
*/}}
{{- define "vdm-common.networkPolicy" -}}
{{- if .Values.networkPolicy.enabled -}}
{{- $np := .Values.networkPolicy -}}
{{- $namespace := list (dict "podSelector" dict) -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "vdm-common.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "vdm-common.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "vdm-common.selectorLabels" . | nindent 6 }}
  policyTypes:
    - Ingress
  ingress:
    {{- if include "vdm-common.isGateway" . }}
    - ports:
        - port: {{ .Values.service.httpPort }}
          protocol: TCP
      {{- with $np.ingressFrom }}
      from:
        {{- toYaml (concat $namespace . ($np.metricsFrom | default list)) | nindent 8 }}
      {{- end }}
    {{- else }}
    - ports:
        - port: {{ .Values.service.grpcPort }}
          protocol: TCP
      from:
        - podSelector:
            matchLabels:
              app.kubernetes.io/instance: {{ .Release.Name }}
              app.kubernetes.io/part-of: vdm
        {{- with $np.grpcFrom }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    - ports:
        - port: {{ .Values.service.metricsPort }}
          protocol: TCP
      from:
        {{- toYaml (concat $namespace ($np.metricsFrom | default list)) | nindent 8 }}
    {{- end }}
{{- end -}}
{{- end -}}
