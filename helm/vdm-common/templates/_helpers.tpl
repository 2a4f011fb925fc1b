{{/*
vdm-common: named templates shared by every vdm service chart.

Each service chart (vdm-gateway, vdm-quest, ...) is a thin chart whose
templates/ files only include the templates below with the chart's root
context, so one change here reaches every service. What differs between
services comes from the including chart:

- the component ("quest") is the chart name without its "vdm-" prefix; it is
  the subcommand (`vdm quest`), the migration target (`vdm migrate quest`),
  the default database schema and the app.kubernetes.io/component label;
- the chart named vdm-gateway is the HTTP gateway (one public HTTP port that
  also serves /health, /ready and /metrics); every other chart is a gRPC
  service (gRPC port plus the admin port with /health, /ready and /metrics);
- `.Values.secret.keys` lists which Secret entries the service reads,
  `.Values.upstreams` (the gateway, and a service that calls another, as
  vdm-npc calls vdm-world) which services it calls, and the values named in
  settingsEnvJson (vdm-rumor's llm, pipeline and ticker) the settings only
  that service has;
- `.Values.scrape` (vdm-metrics only) configures the backend stats scraper
  (VDM_METRICS_*) and the budgets file (VDM_BUDGETS_FILE).
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "vdm-common.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The name of a chart's objects in a release, from a dict with "release" and
"name". A release named like the chart, or whose name the chart name already
starts with (release "vdm", chart "vdm-quest"), is not repeated, so release
"vdm" gives vdm-quest and release "prod" gives prod-vdm-quest. The gateway
uses this to find a service of the same release.
*/}}
{{- define "vdm-common.fullnameFor" -}}
{{- $release := .release -}}
{{- $name := .name -}}
{{- if contains $name $release -}}
{{- $release | trunc 63 | trimSuffix "-" -}}
{{- else if hasPrefix (printf "%s-" $release) $name -}}
{{- $name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" $release $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The name of this chart's objects: fullnameOverride, or fullnameFor. */}}
{{- define "vdm-common.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- include "vdm-common.fullnameFor" (dict "release" .Release.Name "name" (include "vdm-common.name" .)) -}}
{{- end -}}
{{- end -}}

{{/* The service this chart runs: "quest" for vdm-quest. */}}
{{- define "vdm-common.component" -}}
{{- .Chart.Name | trimPrefix "vdm-" -}}
{{- end -}}

{{/* "true" when this chart is the HTTP gateway, else "". */}}
{{- define "vdm-common.isGateway" -}}
{{- if eq (include "vdm-common.component" .) "gateway" -}}true{{- end -}}
{{- end -}}

{{/* The `vdm` subcommand the Deployment runs. */}}
{{- define "vdm-common.subcommand" -}}
{{- .Values.subcommand | default (include "vdm-common.component" .) -}}
{{- end -}}

{{/* The global.vdm values of an umbrella release (an empty dict when none). */}}
{{- define "vdm-common.globalJson" -}}
{{- $global := .Values.global | default dict -}}
{{- get $global "vdm" | default dict | toJson -}}
{{- end -}}

{{/* The image tag: image.tag, then global.vdm.image.tag, then appVersion. */}}
{{- define "vdm-common.imageTag" -}}
{{- $g := include "vdm-common.globalJson" . | fromJson -}}
{{- $gImage := get $g "image" | default dict -}}
{{- .Values.image.tag | default (get $gImage "tag") | default .Chart.AppVersion | toString -}}
{{- end -}}

{{/* The image reference; image.digest, when set, wins over the tag. */}}
{{- define "vdm-common.image" -}}
{{- $g := include "vdm-common.globalJson" . | fromJson -}}
{{- $gImage := get $g "image" | default dict -}}
{{- $repository := .Values.image.repository | default (get $gImage "repository") | default "vdm" -}}
{{- $digest := .Values.image.digest | default (get $gImage "digest") -}}
{{- if $digest -}}
{{- printf "%s@%s" $repository $digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (include "vdm-common.imageTag" .) -}}
{{- end -}}
{{- end -}}

{{/*
The deployment environment name (VDM_ENV, and deployment.environment.name on
traces): config.environment, then global.vdm.environment, then the release
namespace (the binary's own default, "local", would mislabel a cluster).
*/}}
{{- define "vdm-common.environment" -}}
{{- $g := include "vdm-common.globalJson" . | fromJson -}}
{{- .Values.config.environment | default (get $g "environment") | default .Release.Namespace -}}
{{- end -}}

{{/* Selector labels for a component: a dict with "ctx" and "component". */}}
{{- define "vdm-common.selectorLabelsFor" -}}
app.kubernetes.io/name: {{ include "vdm-common.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* All labels for a component: a dict with "ctx" and "component". */}}
{{- define "vdm-common.labelsFor" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "vdm-common.selectorLabelsFor" . }}
app.kubernetes.io/version: {{ regexReplaceAll "[^-A-Za-z0-9_.]" (include "vdm-common.imageTag" .ctx) "_" | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/part-of: vdm
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- end -}}

{{/* Selector labels of the service's pods. */}}
{{- define "vdm-common.selectorLabels" -}}
{{- include "vdm-common.selectorLabelsFor" (dict "ctx" . "component" (include "vdm-common.component" .)) -}}
{{- end -}}

{{/* Labels of the service's objects. */}}
{{- define "vdm-common.labels" -}}
{{- include "vdm-common.labelsFor" (dict "ctx" . "component" (include "vdm-common.component" .)) -}}
{{- end -}}

{{/*
The Secret the pods read DATABASE_URL, REDIS_URL and the gateway's secrets
from: the chart's own when secret.create, else secret.existingSecret, else
global.vdm.existingSecret, else one named like the chart's objects, which the
operator creates (docs/DEPLOY.md).
*/}}
{{- define "vdm-common.secretName" -}}
{{- $g := include "vdm-common.globalJson" . | fromJson -}}
{{- if and .Values.secret.create .Values.secret.existingSecret -}}
{{- fail "secret.create and secret.existingSecret exclude each other: create the Secret or name an existing one" -}}
{{- end -}}
{{- if .Values.secret.create -}}
{{- include "vdm-common.fullname" . -}}
{{- else -}}
{{- .Values.secret.existingSecret | default (get $g "existingSecret") | default (include "vdm-common.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/*
Secret entries a chart may list under secret.keys: the environment variable
each one feeds, and whether the process starts without it.
*/}}
{{- define "vdm-common.secretEnvJson" -}}
{{- dict
  "databaseUrl" (dict "env" "DATABASE_URL" "optional" false)
  "redisUrl" (dict "env" "REDIS_URL" "optional" true)
  "jwtSecret" (dict "env" "VDM_JWT_SECRET" "optional" false)
  "adminToken" (dict "env" "VDM_ADMIN_TOKEN" "optional" false)
  "llmApiKey" (dict "env" "VDM_LLM_API_KEY" "optional" true)
  | toJson -}}
{{- end -}}

{{/*
Settings only some services have, as [value path, environment variable]: a
chart opts in by having the value (the gateway has config.trustedProxies;
the services config.grpcMaxConnectionAge*; vdm-rumor has config.peerTimeoutMs,
llm.*, pipeline.* and ticker.*), and its
schema types it. A list is joined with commas. An empty string, an empty list
or a missing value leaves the variable unset, so the binary's default applies.
*/}}
{{- define "vdm-common.settingsEnvJson" -}}
{{- list
  (list "config.trustedProxies" "VDM_TRUSTED_PROXIES")
  (list "config.peerTimeoutMs" "VDM_PEER_TIMEOUT_MS")
  (list "config.grpcMaxConnectionAgeSecs" "VDM_GRPC_MAX_CONNECTION_AGE_SECS")
  (list "config.grpcMaxConnectionAgeGraceSecs" "VDM_GRPC_MAX_CONNECTION_AGE_GRACE_SECS")
  (list "llm.url" "VDM_LLM_URL")
  (list "llm.model" "VDM_LLM_MODEL")
  (list "llm.timeoutMs" "VDM_LLM_TIMEOUT_MS")
  (list "llm.retries" "VDM_LLM_RETRIES")
  (list "llm.backoffMs" "VDM_LLM_BACKOFF_MS")
  (list "pipeline.batchSize" "VDM_RUMOR_BATCH_SIZE")
  (list "pipeline.batchWindowMs" "VDM_RUMOR_BATCH_WINDOW_MS")
  (list "pipeline.cacheTtlSecs" "VDM_RUMOR_CACHE_TTL_SECS")
  (list "ticker.intervalMs" "VDM_RUMOR_TICK_INTERVAL_MS")
  (list "ticker.maxTellings" "VDM_RUMOR_TICK_MAX_TELLINGS")
  (list "ticker.maxNpcs" "VDM_RUMOR_TICK_MAX_NPCS")
  | toJson -}}
{{- end -}}

{{/*
The settingsEnvJson variables this chart has values for, as a list of EnvVar
(values.yaml numbers arrive as floats: integers are printed without an
exponent; lists are joined with commas).
*/}}
{{- define "vdm-common.settingsEnv" -}}
{{- range $setting := include "vdm-common.settingsEnvJson" . | fromJsonArray }}
{{- $value := $.Values }}
{{- range $key := splitList "." (index $setting 0) }}
{{- if kindIs "map" $value }}
{{- $value = get $value $key }}
{{- else }}
{{- $value = "" }}
{{- end }}
{{- end }}
{{- if kindIs "float64" $value }}
{{- $value = int64 $value }}
{{- else if kindIs "slice" $value }}
{{- $value = join "," $value }}
{{- end }}
{{- if not (or (kindIs "invalid" $value) (eq (toString $value) "")) }}
- name: {{ index $setting 1 }}
  value: {{ toString $value | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
Fails the render when the pod cannot drain in time: the kubelet kills the
container terminationGracePeriodSeconds after deletion, which must cover the
preStop sleep plus the ~20 s the binary takes at most to drain after SIGTERM.
*/}}
{{- define "vdm-common.checkTermination" -}}
{{- $drainSeconds := 20 -}}
{{- $need := add (int .Values.preStopSleepSeconds) $drainSeconds -}}
{{- if lt (int .Values.terminationGracePeriodSeconds) (int $need) -}}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be at least preStopSleepSeconds (%d) + %d s of drain" (int .Values.terminationGracePeriodSeconds) (int .Values.preStopSleepSeconds) $drainSeconds) -}}
{{- end -}}
{{- end -}}

{{/* The listen ports of the container, as a list of ContainerPort. */}}
{{- define "vdm-common.containerPorts" -}}
{{- if include "vdm-common.isGateway" . }}
- name: http
  containerPort: {{ .Values.service.httpPort }}
  protocol: TCP
{{- else }}
- name: grpc
  containerPort: {{ .Values.service.grpcPort }}
  protocol: TCP
- name: metrics
  containerPort: {{ .Values.service.metricsPort }}
  protocol: TCP
{{- end }}
{{- end -}}

{{/* The port name that serves /health, /ready and /metrics. */}}
{{- define "vdm-common.adminPortName" -}}
{{- if include "vdm-common.isGateway" . -}}http{{- else -}}metrics{{- end -}}
{{- end -}}

{{/*
The container environment, shared by the Deployment and the migration Job.
K8S_* come first so OTEL_RESOURCE_ATTRIBUTES can expand them.
*/}}
{{- define "vdm-common.env" -}}
{{- $component := include "vdm-common.component" . -}}
{{- $g := include "vdm-common.globalJson" . | fromJson -}}
{{- $environment := include "vdm-common.environment" . -}}
{{- $secretName := include "vdm-common.secretName" . -}}
{{- $secretEnv := include "vdm-common.secretEnvJson" . | fromJson -}}
- name: K8S_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: K8S_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: VDM_ENV
  value: {{ $environment | quote }}
- name: VDM_LOG
  value: {{ .Values.config.log | quote }}
- name: VDM_LOG_FORMAT
  value: {{ .Values.config.logFormat | quote }}
{{- if include "vdm-common.isGateway" . }}
- name: VDM_HTTP_ADDR
  value: {{ printf "0.0.0.0:%d" (int .Values.service.httpPort) | quote }}
{{- else }}
- name: VDM_GRPC_ADDR
  value: {{ printf "0.0.0.0:%d" (int .Values.service.grpcPort) | quote }}
- name: VDM_ADMIN_ADDR
  value: {{ printf "0.0.0.0:%d" (int .Values.service.metricsPort) | quote }}
{{- end }}
{{- /* A chart with a database has config.dbMaxConnections (the gateway has none). */}}
{{- if hasKey .Values.config "dbMaxConnections" }}
- name: VDM_DB_SCHEMA
  value: {{ .Values.config.dbSchema | default $component | quote }}
- name: VDM_DB_MAX_CONNECTIONS
  value: {{ .Values.config.dbMaxConnections | quote }}
- name: VDM_MIGRATE_ON_START
  value: {{ .Values.config.migrateOnStart | quote }}
{{- end }}
{{- if .Values.config.cachePrefix }}
- name: VDM_CACHE_PREFIX
  value: {{ .Values.config.cachePrefix | quote }}
{{- end }}
{{- range $name, $url := (.Values.upstreams | default dict) }}
- name: {{ printf "VDM_%s_URL" (upper $name) }}
  value: {{ tpl ($url | default (printf "http://%s:50051" (include "vdm-common.fullnameFor" (dict "release" $.Release.Name "name" (printf "vdm-%s" $name))))) $ | quote }}
{{- end }}
{{- include "vdm-common.settingsEnv" . }}
{{- with .Values.scrape }}
- name: VDM_METRICS_TARGETS
  value: {{ include "vdm-common.scrapeTargets" $ | quote }}
- name: VDM_METRICS_INTERVAL_SECS
  value: {{ .intervalSecs | quote }}
- name: VDM_METRICS_RETENTION_HOURS
  value: {{ .retentionHours | quote }}
{{- with .csvPath }}
- name: VDM_METRICS_CSV
  value: {{ . | quote }}
{{- end }}
{{- with .budgetsFile }}
- name: VDM_BUDGETS_FILE
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- range $id, $key := .Values.secret.keys }}
{{- $spec := get $secretEnv $id }}
- name: {{ $spec.env }}
  valueFrom:
    secretKeyRef:
      name: {{ $secretName }}
      key: {{ $key }}
      {{- if $spec.optional }}
      optional: true
      {{- end }}
{{- end }}
- name: OTEL_SERVICE_NAME
  value: {{ .Values.otel.serviceName | default (include "vdm-common.name" .) | quote }}
{{- $endpoint := .Values.otel.endpoint | default (get $g "otlpEndpoint") }}
{{- if $endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $endpoint | quote }}
{{- end }}
{{- /* service.version and deployment.environment.name come from the binary. */}}
{{- $attributes := list "service.namespace=vdm" "k8s.namespace.name=$(K8S_NAMESPACE)" }}
{{- $attributes = append $attributes "k8s.pod.name=$(K8S_POD_NAME)" }}
{{- range $key, $value := .Values.otel.resourceAttributes }}
{{- $attributes = append $attributes (printf "%s=%s" $key (toString $value)) }}
{{- end }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $attributes | quote }}
- name: OTEL_TRACES_SAMPLER
  value: {{ .Values.otel.sampler | quote }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ .Values.otel.samplerArg | toString | quote }}
{{- if include "vdm-common.isGateway" . }}
{{- range .Values.extraEnv }}
{{- if eq .name "VDM_TRUST_FORWARDED_FOR" }}
{{- fail "extraEnv: the gateway refuses VDM_TRUST_FORWARDED_FOR at start-up; list the proxies whose X-Forwarded-For it may believe in config.trustedProxies (VDM_TRUSTED_PROXIES) instead" }}
{{- end }}
{{- end }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
The gateway's named operator credentials (VDM_ADMIN_TOKENS_FILE): the key
operatorCredentials.key of Secret operatorCredentials.existingSecret, mounted
read-only as the file operatorCredentialsFile. The whole volume is mounted,
never a subPath, so the kubelet swaps the file in place when the Secret
changes and the gateway (which checks the file every 2 s) picks up a rotation
without a restart. Only the Deployment mounts it: the migration Job has no
use for it. Each of the three renders nothing when existingSecret is empty.
*/}}
{{- define "vdm-common.operatorCredentialsDir" -}}/etc/vdm/operators{{- end -}}
{{- define "vdm-common.operatorCredentialsFile" -}}
{{- printf "%s/credentials" (include "vdm-common.operatorCredentialsDir" .) -}}
{{- end -}}

{{- define "vdm-common.operatorCredentialsEnv" -}}
{{- $oc := .Values.operatorCredentials | default dict -}}
{{- if $oc.existingSecret }}
- name: VDM_ADMIN_TOKENS_FILE
  value: {{ include "vdm-common.operatorCredentialsFile" . | quote }}
{{- end }}
{{- end -}}

{{- define "vdm-common.operatorCredentialsMount" -}}
{{- $oc := .Values.operatorCredentials | default dict -}}
{{- if $oc.existingSecret }}
- name: operator-credentials
  mountPath: {{ include "vdm-common.operatorCredentialsDir" . }}
  readOnly: true
{{- end }}
{{- end -}}

{{- define "vdm-common.operatorCredentialsVolume" -}}
{{- $oc := .Values.operatorCredentials | default dict -}}
{{- if $oc.existingSecret }}
- name: operator-credentials
  secret:
    secretName: {{ $oc.existingSecret }}
    items:
      - key: {{ $oc.key | default "operators" }}
        path: {{ base (include "vdm-common.operatorCredentialsFile" .) }}
    # Readable by the pod's group (fsGroup) only.
    defaultMode: 0440
{{- end }}
{{- end -}}

{{/* Pod-level settings shared by the Deployment and the migration Job. */}}
{{- define "vdm-common.podSpecCommon" -}}
{{- with .Values.serviceAccountName }}
serviceAccountName: {{ . }}
{{- end }}
automountServiceAccountToken: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The writable /tmp every container gets (the root filesystem is read-only). */}}
{{- define "vdm-common.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end -}}

{{/* Pod annotations that roll the pods when the chart-created Secret changes. */}}
{{- define "vdm-common.checksumAnnotations" -}}
{{- if .Values.secret.create }}
checksum/secret: {{ toJson .Values.secret.values | sha256sum }}
{{- end }}
{{- end -}}

{{/*
VDM_METRICS_TARGETS of the metrics service: .Values.scrape.targets (tpl
applied), or every vdm chart of this release at its default port: the
gateway's /metrics on its HTTP port, each service's on its admin port.
*/}}
{{- define "vdm-common.scrapeTargets" -}}
{{- if .Values.scrape.targets -}}
{{- tpl .Values.scrape.targets . -}}
{{- else -}}
{{- $targets := list (printf "gateway=http://%s:8080/metrics" (include "vdm-common.fullnameFor" (dict "release" .Release.Name "name" "vdm-gateway"))) -}}
{{- range $service := list "quest" "npc" "world" "metrics" -}}
{{- $targets = append $targets (printf "%s=http://%s:9090/metrics" $service (include "vdm-common.fullnameFor" (dict "release" $.Release.Name "name" (printf "vdm-%s" $service)))) -}}
{{- end -}}
{{- join "," $targets -}}
{{- end -}}
{{- end -}}
