#!/usr/bin/env python3
"""Writes values.schema.json of every vdm service chart (helm/vdm-<name>/).

The service charts share their values (they render the same vdm-common
templates), so their schemas are generated from this one description instead
of being kept in step by hand. Every object sets "additionalProperties":
false, so a misspelt value fails `helm install`/`helm template`.

    python3 helm/gen-values-schema.py           # rewrite the schemas
    python3 helm/gen-values-schema.py --check   # fail if one is out of date

A new service chart: add it to CHARTS below (and to helm/vdm), then run it.
"""

import json
import pathlib
import sys

HELM = pathlib.Path(__file__).resolve().parent

# Minimum lengths the binary enforces, for secret.values (empty: not set).
SECRET_PATTERNS = {"jwtSecret": "^(.{32,})?$", "adminToken": "^(.{16,})?$"}

# (component, is the HTTP gateway, the services it calls: VDM_<NAME>_URL)
CHARTS = [
    ("gateway", True, ["quest", "npc", "world", "rumor", "player", "metrics"]),
    ("quest", False, ["player"]),
    ("npc", False, ["world"]),
    ("world", False, []),
    ("rumor", False, ["npc", "world"]),
    ("player", False, []),
    ("metrics", False, []),
]


def described(schema, desc):
    if desc:
        schema["description"] = desc
    return schema


def obj(props, required=None, additional=False, desc=None):
    """An object that accepts only `props` (unless `additional`)."""
    schema = {"type": "object", "additionalProperties": additional, "properties": props}
    if required:
        schema["required"] = required
    return described(schema, desc)


def s(desc=None, **constraints):
    return described(dict({"type": "string"}, **constraints), desc)


def i(desc=None, minimum=None, maximum=None):
    schema = {"type": "integer"}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return described(schema, desc)


def b(desc=None):
    return described({"type": "boolean"}, desc)


def free(desc):
    """A Kubernetes object passed through as is (kubernetes-validate checks it once rendered)."""
    return {"type": "object", "description": desc}


def freelist(desc):
    return {"type": "array", "description": desc, "items": {"type": "object"}}


def strmap(desc):
    return {"type": "object", "description": desc, "additionalProperties": {"type": "string"}}


def port(desc):
    return i(desc, 1, 65535)


quantity = {"anyOf": [
    {"type": "string", "pattern": "^[0-9.]+([eE][0-9]+|[mkMGTPE]i?|[munKMGTPE])?$"},
    {"type": "integer", "minimum": 0},
]}
intOrPercent = {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": "^[0-9]+%$"}]}
duration = s("Prometheus duration", pattern="^[0-9]+(ms|s|m|h)$")
probe = obj({
    "initialDelaySeconds": i(minimum=0),
    "periodSeconds": i(minimum=1),
    "timeoutSeconds": i(minimum=1),
    "failureThreshold": i(minimum=1),
    "successThreshold": i(minimum=1),
})
resources = obj({
    "requests": {"type": "object", "additionalProperties": quantity},
    "limits": {"type": "object", "additionalProperties": quantity},
}, desc="Kubernetes ResourceRequirements")


# An IPv4 or IPv6 address, optionally with a prefix length (/0-32, /0-128):
# the forms VDM_TRUSTED_PROXIES takes. The binary parses each entry exactly;
# this catches a host name or a stray character at install time.
PROXY_NET = ("^(([0-9]{1,3}\\.){3}[0-9]{1,3}(/([0-9]|[12][0-9]|3[0-2]))?"
             "|[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*(/([0-9]|[1-9][0-9]|1[01][0-9]|12[0-8]))?)$")


def settings(component):
    """Values only one service has: (extra `config` properties, extra
    top-level properties, extra secret.keys ids). vdm-common's
    settingsEnvJson names the variable each one feeds."""
    if component == "gateway":
        config = {"trustedProxies": {
            "type": "array", "uniqueItems": True, "items": s(pattern=PROXY_NET),
            "description": "VDM_TRUSTED_PROXIES: addresses or CIDRs of the proxies whose X-Forwarded-For is believed (empty: the TCP peer is the client)"}}
        top = {"operatorCredentials": obj({
            "existingSecret": s("Secret holding the credentials file (empty: off)",
                                pattern="^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$", maxLength=253),
            "key": s("Key of that Secret: `name token` lines", pattern="^[-._a-zA-Z0-9]+$"),
        }, required=["existingSecret", "key"],
            desc="Named operator credentials, mounted as the file VDM_ADMIN_TOKENS_FILE names")}
        return config, top, []
    if component != "rumor":
        return {}, {}, []
    config = {"peerTimeoutMs": i("VDM_PEER_TIMEOUT_MS", minimum=1)}
    top = {
        "llm": obj({
            "url": s("VDM_LLM_URL (http:// or https://; empty: the built-in transformer only)",
                     pattern="^(https?://.+)?$"),
            "model": s("VDM_LLM_MODEL", minLength=1),
            "timeoutMs": i("VDM_LLM_TIMEOUT_MS", minimum=1),
            "retries": i("VDM_LLM_RETRIES", 0, 10),
            "backoffMs": i("VDM_LLM_BACKOFF_MS", minimum=1),
        }, required=["url", "model", "timeoutMs", "retries", "backoffMs"],
            desc="OpenAI-compatible upstream; the API key comes from the Secret (secret.keys.llmApiKey)"),
        "pipeline": obj({
            "batchSize": i("VDM_RUMOR_BATCH_SIZE", 1, 256),
            "batchWindowMs": i("VDM_RUMOR_BATCH_WINDOW_MS", minimum=1),
            "cacheTtlSecs": i("VDM_RUMOR_CACHE_TTL_SECS", minimum=1),
        }, required=["batchSize", "batchWindowMs", "cacheTtlSecs"]),
        "ticker": obj({
            "intervalMs": i("VDM_RUMOR_TICK_INTERVAL_MS (0: no ticker)", minimum=0),
            "maxTellings": i("VDM_RUMOR_TICK_MAX_TELLINGS", 1, 5000),
            "maxNpcs": i("VDM_RUMOR_TICK_MAX_NPCS", 1, 10000),
        }, required=["intervalMs", "maxTellings", "maxNpcs"]),
    }
    return config, top, ["llmApiKey"]


def network_policy(gateway):
    """networkPolicy: ingress peers per port (vdm-common's _networkpolicy.tpl)."""
    metrics = freelist("NetworkPolicyPeer list also allowed to /metrics, e.g. Prometheus in another namespace")
    if gateway:
        props = {
            "enabled": b(),
            "ingressFrom": freelist("NetworkPolicyPeer list allowed to the HTTP port (empty: anywhere)"),
            "metricsFrom": metrics,
        }
        return obj(props, required=["enabled", "ingressFrom", "metricsFrom"])
    return obj({
        "enabled": b(),
        "grpcFrom": freelist("NetworkPolicyPeer list allowed to the gRPC port besides this release's vdm pods"),
        "metricsFrom": metrics,
    }, required=["enabled", "grpcFrom", "metricsFrom"])


def schema(component, gateway, upstreams):
    extra_config, extra_top, extra_secrets = settings(component)
    if not gateway:
        # Every gRPC server: unset, the binary's defaults (300 s, 30 s).
        extra_config = {
            "grpcMaxConnectionAgeSecs": i("VDM_GRPC_MAX_CONNECTION_AGE_SECS: callers reconnect (to any pod) "
                                          "after this long (unset: 300)", minimum=1),
            "grpcMaxConnectionAgeGraceSecs": i("VDM_GRPC_MAX_CONNECTION_AGE_GRACE_SECS: time calls on an aged "
                                               "connection may still take (unset: 30)", minimum=1),
            **extra_config,
        }
    # The gateway keeps no database (accounts are the player service's).
    secret_ids = ((["redisUrl", "jwtSecret", "adminToken"] if gateway else ["databaseUrl", "redisUrl"])
                  + extra_secrets)
    if gateway:
        service = obj({
            "type": s(enum=["ClusterIP", "NodePort", "LoadBalancer"]),
            "httpPort": port("Public HTTP/WebSocket port, also /health, /ready, /metrics (VDM_HTTP_ADDR)"),
            "annotations": strmap("Service annotations"),
        }, required=["type", "httpPort"])
    else:
        service = obj({
            "type": s(enum=["ClusterIP", "NodePort", "LoadBalancer"]),
            "grpcPort": port("gRPC port (VDM_GRPC_ADDR)"),
            "metricsPort": port("/health, /ready and /metrics port (VDM_ADMIN_ADDR)"),
            "annotations": strmap("Service annotations"),
        }, required=["type", "grpcPort", "metricsPort"])
    props = {
        "enabled": b("Read by the umbrella chart: deploy this service"),
        "nameOverride": s(),
        "fullnameOverride": s(pattern="^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$", maxLength=52),
        "subcommand": s("vdm subcommand (default: %s)" % component, pattern="^([a-z][a-z0-9-]*)?$"),
        "replicaCount": i(minimum=0),
        "revisionHistoryLimit": i(minimum=0),
        "image": obj({
            "repository": s(),
            "tag": s(),
            "digest": s(pattern="^(sha256:[a-f0-9]{64})?$"),
            "pullPolicy": s(enum=["Always", "IfNotPresent", "Never"]),
        }, required=["pullPolicy"]),
        "imagePullSecrets": {"type": "array", "items": obj({"name": s()}, required=["name"])},
        "serviceAccountName": s(),
        "podAnnotations": strmap("Pod annotations"),
        "podLabels": strmap("Pod labels"),
        "priorityClassName": s(),
        "service": service,
        "config": obj({
            "environment": s("VDM_ENV"),
            "log": s("VDM_LOG (EnvFilter directive)", minLength=1),
            "logFormat": s("VDM_LOG_FORMAT", enum=["json", "text"]),
            **({} if gateway else {
                "dbSchema": s("VDM_DB_SCHEMA", pattern="^([a-z_][a-z0-9_]*)?$"),
                "dbMaxConnections": i("VDM_DB_MAX_CONNECTIONS", minimum=1),
                "migrateOnStart": b("VDM_MIGRATE_ON_START"),
            }),
            "cachePrefix": s("VDM_CACHE_PREFIX"),
            **extra_config,
        }, required=["log", "logFormat"] + ([] if gateway else ["dbMaxConnections", "migrateOnStart"])),
        "extraEnv": {"type": "array", "description": "Kubernetes EnvVar list",
                     "items": {"type": "object", "required": ["name"], "properties": {"name": s(pattern="^[A-Za-z_][A-Za-z0-9_]*$")}}},
        "secret": obj({
            "existingSecret": s(),
            "create": b(),
            "keys": obj({k: s(minLength=1) for k in secret_ids}, required=secret_ids),
            # The gateway refuses shorter secrets at start-up; fail at install instead.
            "values": obj({k: s(pattern=SECRET_PATTERNS[k]) if k in SECRET_PATTERNS else s()
                           for k in secret_ids}),
        }, required=["create", "keys"]),
        "otel": obj({
            "endpoint": s("OTEL_EXPORTER_OTLP_ENDPOINT", pattern="^(https?://.+)?$"),
            "serviceName": s("OTEL_SERVICE_NAME"),
            "resourceAttributes": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
            "sampler": s("OTEL_TRACES_SAMPLER", enum=["always_on", "always_off", "traceidratio",
                         "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"]),
            "samplerArg": {"description": "OTEL_TRACES_SAMPLER_ARG",
                           "anyOf": [{"type": "string", "pattern": "^([0-9]*\\.?[0-9]+)?$"}, {"type": "number", "minimum": 0, "maximum": 1}]},
        }, required=["sampler"]),
        "probes": obj({"startup": probe, "liveness": probe, "readiness": probe},
                      required=["startup", "liveness", "readiness"]),
        "preStopSleepSeconds": i(minimum=0),
        "terminationGracePeriodSeconds": i(minimum=1),
        "resources": resources,
        "autoscaling": obj({
            "enabled": b(),
            "minReplicas": i(minimum=1),
            "maxReplicas": i(minimum=1),
            "targetCPUUtilizationPercentage": i(minimum=1, maximum=1000),
            "targetMemoryUtilizationPercentage": i(minimum=1, maximum=1000),
            "behavior": free("autoscaling/v2 HorizontalPodAutoscalerBehavior"),
        }, required=["enabled", "minReplicas", "maxReplicas", "targetCPUUtilizationPercentage"]),
        "podDisruptionBudget": obj({
            "enabled": b(),
            "minAvailable": intOrPercent,
            "maxUnavailable": intOrPercent,
        }, required=["enabled"]),
        "serviceMonitor": obj({
            "enabled": b(),
            "interval": duration,
            "scrapeTimeout": duration,
            "labels": strmap("ServiceMonitor labels"),
        }, required=["enabled", "interval", "scrapeTimeout"]),
        "networkPolicy": network_policy(gateway),
        "tests": obj({
            "enabled": b("Render the `helm test` Pod that checks /ready"),
            "image": s("An image with busybox wget", minLength=1),
            "resources": resources,
        }, required=["enabled", "image", "resources"]),
        "topologySpread": obj({
            "enabled": b(),
            "topologyKeys": {"type": "array", "items": s(minLength=1)},
        }, required=["enabled"]),
        "podSecurityContext": free("Kubernetes PodSecurityContext"),
        "securityContext": free("Kubernetes SecurityContext of the container"),
        "tmpSizeLimit": quantity,
        "nodeSelector": strmap("Node labels"),
        "tolerations": freelist("Kubernetes Toleration list"),
        "affinity": free("Kubernetes Affinity"),
        # Helm adds the library chart's (empty) values under its name.
        "vdm-common": {"type": "object", "description": "Set by Helm: the vdm-common library has no values",
                       "properties": {"global": {"type": "object"}}, "additionalProperties": False},
        "global": {"type": "object", "description": "Values shared through the umbrella chart",
                   "properties": {"vdm": obj({
                       "image": obj({"repository": s(), "tag": s(), "digest": s(pattern="^(sha256:[a-f0-9]{64})?$")}),
                       "environment": s(),
                       "existingSecret": s(),
                       "otlpEndpoint": s(pattern="^(https?://.+)?$"),
                   })}},
    }
    if not gateway:
        props["migration"] = obj({
            "enabled": b(),
            "backoffLimit": i(minimum=0),
            "activeDeadlineSeconds": i(minimum=1),
            "resources": resources,
        }, required=["enabled", "backoffLimit", "activeDeadlineSeconds"])
    props.update(extra_top)
    if upstreams:
        props["upstreams"] = obj(
            {name: s("VDM_%s_URL (default: the vdm-%s chart of this release); tpl is applied" % (name.upper(), name))
             for name in upstreams},
            desc="gRPC services this one calls, as http://host:port")
    if component == "metrics":
        props["scrape"] = obj({
            "targets": s("VDM_METRICS_TARGETS: name=url pairs, comma separated (default: every chart of this release); tpl is applied"),
            "intervalSecs": i("VDM_METRICS_INTERVAL_SECS", minimum=1),
            "retentionHours": i("VDM_METRICS_RETENTION_HOURS", minimum=1),
            "csvPath": s("VDM_METRICS_CSV (empty: no CSV file)"),
            "budgetsFile": s("VDM_BUDGETS_FILE (empty: the compiled-in deploy/budgets.json)"),
        }, required=["intervalSecs", "retentionHours"], desc="The backend stats scraper and the budgets file")
    keys = list(props)
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "vdm-%s values" % component,
        "type": "object",
        "additionalProperties": False,
        "required": ["image", "service", "config", "secret", "otel", "probes", "resources",
                     "autoscaling", "podDisruptionBudget", "serviceMonitor", "networkPolicy", "tests",
                     "preStopSleepSeconds", "terminationGracePeriodSeconds",
                     "podSecurityContext", "securityContext", "tmpSizeLimit", "replicaCount"]
                    + ([] if gateway else ["migration"])
                    + (["upstreams"] if upstreams else []) + list(extra_top)
                    + (["scrape"] if component == "metrics" else []),
        "properties": props,
    }


def main():
    check = sys.argv[1:] == ["--check"]
    if sys.argv[1:] not in ([], ["--check"]):
        sys.exit("usage: gen-values-schema.py [--check]")
    stale = []
    for component, gateway, upstreams in CHARTS:
        path = HELM / ("vdm-%s" % component) / "values.schema.json"
        text = json.dumps(schema(component, gateway, upstreams), indent=2) + "\n"
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path.relative_to(HELM.parent)))
        else:
            path.write_text(text)
    if stale:
        sys.exit("out of date: %s; run python3 helm/gen-values-schema.py" % ", ".join(stale))


if __name__ == "__main__":
    main()
