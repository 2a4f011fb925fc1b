"""The checks behind scripts/check-observability.sh (run it through that
script: it provides the pinned venv, promtool and the vdm binary).

It checks, and prints as it goes:

1. deploy/compose.yaml against the Compose Specification schema, and its
   references: services named in depends_on, build context and Dockerfile,
   mounted files, unique host ports, each vdm container's listen addresses,
   upstream URLs, OTLP endpoint and OTEL_SERVICE_NAME.
2. deploy/prometheus/prometheus.yml: every vdm container scraped once on its
   metrics port, job name = OTEL_SERVICE_NAME; `promtool check config`.
3. deploy/prometheus/alerts.yaml: `promtool check rules` and
   `promtool test rules alerts.test.yaml`; labels, annotations, runbook
   anchors in docs/OBSERVABILITY.md.
3b. deploy/prometheus/alerts-budgets.yml: loaded by prometheus.yml,
   `promtool check rules`, the same anchors, and byte for byte what
   `vdm budgets alert-rules` generates from deploy/budgets.json.
4. deploy/grafana: provisioning (data source uids and URLs, dashboard path)
   and deploy/grafana/dashboards/vdm.json (panel ids, layout, variables,
   data sources, a Jaeger trace link).
5. Every PromQL expression of the dashboard, the data sources, the rules
   and the budget alerts through promtool's parser, then, from the parsed
   trees, every metric name, label name and exact label value they use
   against what the real binary serves on /metrics: `vdm quest`, `vdm
   rumor`, `vdm metrics`, `vdm player` and `vdm gateway` as separate processes (as in
   compose and Kubernetes), after a few requests (a client telemetry batch
   among them), including a 404 and
   a call while quest is down. Each process's exposition is linted: every
   family has HELP text, `_total` families are counters, names are in base
   units (seconds, bytes).
6. docs/OBSERVABILITY.md names every metric family the binary serves and
   every alert.

Every problem is collected and printed at the end; the exit status is 1 if
there was any.
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import jsonschema
import promql_parser as pp
import yaml
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
PROM_DIR = DEPLOY / "prometheus"
PROM_CONFIG = PROM_DIR / "prometheus.yml"
ALERTS = PROM_DIR / "alerts.yaml"
ALERT_TESTS = PROM_DIR / "alerts.test.yaml"
BUDGET_ALERTS = PROM_DIR / "alerts-budgets.yml"
BUDGETS = DEPLOY / "budgets.json"
GRAFANA = DEPLOY / "grafana"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "datasources.yaml"
DASHBOARD_PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "dashboards.yaml"
DASHBOARD = GRAFANA / "dashboards" / "vdm.json"
DOC = REPO / "docs" / "OBSERVABILITY.md"

# Labels Prometheus attaches to every scraped series; the binary never
# exports them.
TARGET_LABELS = {"job", "instance"}
# Series Prometheus makes itself for every target (not in any /metrics).
SYNTHETIC_SERIES = {"up"}
# Exact label values the queries use that a healthy run of the check cannot
# produce, with where the binary sets them. Any other value must be seen.
FAILURE_ONLY_VALUES = {
    ("vdm_cache_requests_total", "result", "error"): "crates/vdm-kit/src/cache.rs (a Redis call failed)",
    ("vdm_cache_requests_total", "result", "bypass"): "crates/vdm-kit/src/cache.rs (a failed invalidation)",
}
GRAFANA_BUILTINS = re.compile(r"^(__\w+(\.\w+)*|timeFilter)$")
ADMIN_TOKEN = "observability-check-admin-token"
JWT_SECRET = "observability-check-jwt-secret-0123456789abcdef"


class Report:
    """Collects problems; prints progress."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def ok(self, message: str) -> None:
        print(f"  ok    {message}")

    def note(self, message: str) -> None:
        print(f"  note  {message}")

    def fail(self, message: str) -> None:
        print(f"  FAIL  {message}")
        self.problems.append(message)

    def mark(self) -> int:
        return len(self.problems)

    def ok_since(self, mark: int, message: str) -> None:
        """Says ok only when nothing failed since `mark`."""
        if len(self.problems) == mark:
            self.ok(message)

    def section(self, title: str) -> None:
        print(f"\n== {title}")


R = Report()


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def load_yaml(path: Path):
    try:
        with path.open() as f:
            return yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as err:
        R.fail(f"{rel(path)}: cannot be read as YAML: {err}")
        return None


def load_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        R.fail(f"{rel(path)}: cannot be read as JSON: {err}")
        return None


def split_host_port(addr: str) -> tuple[str, int] | None:
    m = re.fullmatch(r"\[?([^\]]+?)\]?:(\d+)", addr)
    return (m.group(1), int(m.group(2))) if m else None


def url_host_port(url: str) -> tuple[str, int] | None:
    m = re.fullmatch(r"[a-z]+://(?:[^@/]*@)?([^:/]+):(\d+)(/.*)?", url)
    return (m.group(1), int(m.group(2))) if m else None


# --------------------------------------------------------------------------
# 1. compose


def check_compose() -> dict | None:
    R.section(f"{rel(COMPOSE)}")
    compose = load_yaml(COMPOSE)
    if compose is None:
        return None
    schema_text = (
        importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
        .joinpath("compose-spec.json")
        .read_text()
    )
    schema = json.loads(schema_text)
    validator_cls = jsonschema.validators.validator_for(schema)
    errors = sorted(validator_cls(schema).iter_errors(compose), key=lambda e: list(e.path))
    for err in errors:
        where = "/".join(str(p) for p in err.path) or "(top)"
        R.fail(f"{rel(COMPOSE)}: {where}: {err.message}")
    if not errors:
        R.ok("valid against the Compose Specification schema (vendored in check-jsonschema)")

    services: dict = compose.get("services") or {}
    mark = R.mark()
    host_ports: dict[int, str] = {}
    vdm: dict[str, dict] = {}
    for name, svc in services.items():
        for dep in svc.get("depends_on") or {}:
            if dep not in services:
                R.fail(f"{rel(COMPOSE)}: {name} depends on {dep}, which is no service")
        for port in svc.get("ports") or []:
            text = str(port)
            parts = text.split(":")
            if len(parts) != 2:
                R.fail(f"{rel(COMPOSE)}: {name}: port {text!r} is not HOST:CONTAINER")
                continue
            host = int(parts[0])
            if host in host_ports:
                R.fail(f"{rel(COMPOSE)}: host port {host} used by {host_ports[host]} and {name}")
            host_ports[host] = name
        for volume in svc.get("volumes") or []:
            source = str(volume).split(":")[0]
            if source.startswith("."):
                if not (DEPLOY / source).exists():
                    R.fail(f"{rel(COMPOSE)}: {name} mounts {source}, which does not exist")
            elif source not in (compose.get("volumes") or {}):
                R.fail(f"{rel(COMPOSE)}: {name} mounts volume {source}, not declared under volumes:")
        build = svc.get("build")
        if build:
            context = (DEPLOY / build.get("context", ".")).resolve()
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            if not dockerfile.is_file():
                R.fail(f"{rel(COMPOSE)}: {name} builds from {dockerfile}, which does not exist")
            if dockerfile == DEPLOY / "Dockerfile" and context == REPO:
                vdm[name] = svc
    ports_text = ", ".join(f"{p}→{s}" for p, s in sorted(host_ports.items()))
    R.ok_since(mark, f"depends_on, mounts and build paths resolve; host ports unique: {ports_text}")
    if not vdm:
        R.fail(f"{rel(COMPOSE)}: no service builds deploy/Dockerfile from the repository root")
        return compose

    names_seen: dict[str, str] = {}
    for name, svc in vdm.items():
        mark = R.mark()
        env = {k: str(v) for k, v in (svc.get("environment") or {}).items()}
        command = svc.get("command") or []
        sub = command[0] if command else "all"
        where = f"{rel(COMPOSE)}: {name}"
        listen = {k: env[k] for k in ("VDM_HTTP_ADDR", "VDM_GRPC_ADDR", "VDM_ADMIN_ADDR") if k in env}
        if sub == "gateway" and "VDM_HTTP_ADDR" not in listen:
            R.fail(f"{where}: vdm gateway without VDM_HTTP_ADDR")
        if sub not in ("gateway", "all") and not {"VDM_GRPC_ADDR", "VDM_ADMIN_ADDR"} <= listen.keys():
            R.fail(f"{where}: vdm {sub} needs VDM_GRPC_ADDR and VDM_ADMIN_ADDR")
        ports = set()
        for key, addr in listen.items():
            hp = split_host_port(addr)
            if not hp or hp[0] not in ("0.0.0.0", "::"):
                R.fail(f"{where}: {key}={addr} must listen on 0.0.0.0 to be reachable from other containers")
            else:
                ports.add(hp[1])
        for port in svc.get("ports") or []:
            container = int(str(port).split(":")[-1])
            if container not in ports:
                R.fail(f"{where}: publishes container port {container}, on which vdm does not listen")
        service_name = env.get("OTEL_SERVICE_NAME")
        if not service_name:
            R.fail(f"{where}: OTEL_SERVICE_NAME is not set")
        elif service_name in names_seen:
            R.fail(f"{where}: OTEL_SERVICE_NAME {service_name} also used by {names_seen[service_name]}")
        else:
            names_seen[service_name] = name
        if env.get("VDM_LOG_FORMAT") != "json":
            R.fail(f"{where}: VDM_LOG_FORMAT should be json (log lines carry the trace id as a field)")
        for key, want_port, want_service in (
            ("OTEL_EXPORTER_OTLP_ENDPOINT", 4317, "jaeger"),
            ("DATABASE_URL", 5432, "postgres"),
            ("REDIS_URL", 6379, "redis"),
        ):
            hp = url_host_port(env.get(key, ""))
            if not hp:
                R.fail(f"{where}: {key} is missing or has no host:port")
            elif hp[0] not in services or hp != (want_service, want_port):
                R.fail(f"{where}: {key} points at {hp[0]}:{hp[1]}, expected the {want_service} service on {want_port}")
        for key, value in env.items():
            m = re.fullmatch(r"VDM_([A-Z]+)_URL", key)
            if not m:
                continue
            hp = url_host_port(value)
            target = vdm.get(hp[0]) if hp else None
            if not target:
                R.fail(f"{where}: {key}={value} names no vdm service of this file")
                continue
            grpc = split_host_port(str((target.get("environment") or {}).get("VDM_GRPC_ADDR", "")))
            if not grpc or grpc[1] != hp[1]:
                R.fail(f"{where}: {key} uses port {hp[1]}, but {hp[0]} serves gRPC on {grpc[1] if grpc else '?'}")
            deps = svc.get("depends_on") or {}
            if hp[0] not in deps:
                R.fail(f"{where}: calls {hp[0]} ({key}) but does not depend on it")
        R.ok_since(mark, f"{name}: `vdm {sub}`, listens on {', '.join(f'{k}={v}' for k, v in listen.items())}, "
             f"service.name {service_name}, OTLP to {env.get('OTEL_EXPORTER_OTLP_ENDPOINT')}")
    jaeger = services.get("jaeger", {})
    if not any(str(p).endswith(":4317") for p in jaeger.get("ports") or []):
        R.note("jaeger does not publish 4317 to the host (only containers can export)")
    compose["_vdm"] = vdm
    return compose


# --------------------------------------------------------------------------
# 2. Prometheus config


def metrics_port(svc: dict) -> tuple[int, str] | None:
    env = svc.get("environment") or {}
    for key in ("VDM_ADMIN_ADDR", "VDM_HTTP_ADDR"):
        hp = split_host_port(str(env.get(key, "")))
        if hp:
            return hp[1], key
    return None


def run(cmd: list[str], what: str) -> bool:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    out = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        R.fail(f"{what} failed:\n{out}")
        return False
    R.ok(f"{what}")
    return True


def check_prometheus(compose: dict | None, promtool: str) -> None:
    R.section(rel(PROM_CONFIG))
    config = load_yaml(PROM_CONFIG)
    run([promtool, "check", "config", str(PROM_CONFIG)], "promtool check config prometheus.yml (also loads its rule files)")
    if config is None or compose is None:
        return
    if "alerts.yaml" not in (config.get("rule_files") or []):
        R.fail(f"{rel(PROM_CONFIG)}: rule_files does not load alerts.yaml")
    services = compose.get("services") or {}
    prom = services.get("prometheus") or {}
    mounted = any(str(v).split(":")[:2] == ["./prometheus", "/etc/prometheus"] for v in prom.get("volumes") or [])
    if not mounted or "--config.file=/etc/prometheus/prometheus.yml" not in (prom.get("command") or []):
        R.fail(f"{rel(COMPOSE)}: prometheus must mount ./prometheus on /etc/prometheus and load prometheus.yml from there")
    vdm = compose.get("_vdm", {})
    mark = R.mark()
    scraped: dict[str, str] = {}
    for job in config.get("scrape_configs") or []:
        path = job.get("metrics_path", "/metrics")
        for static in job.get("static_configs") or []:
            for target in static.get("targets") or []:
                hp = split_host_port(target)
                where = f"{rel(PROM_CONFIG)}: job {job.get('job_name')} target {target}"
                if not hp or hp[0] not in vdm:
                    R.fail(f"{where}: not a vdm service of {rel(COMPOSE)}")
                    continue
                want = metrics_port(vdm[hp[0]])
                if not want or want[0] != hp[1]:
                    R.fail(f"{where}: {hp[0]} serves /metrics on {want[0] if want else '?'} ({want[1] if want else '-'})")
                if path != "/metrics":
                    R.fail(f"{where}: metrics_path {path}, vdm serves /metrics")
                service_name = (vdm[hp[0]].get("environment") or {}).get("OTEL_SERVICE_NAME")
                if job.get("job_name") != service_name:
                    R.fail(f"{where}: job name {job.get('job_name')} differs from OTEL_SERVICE_NAME {service_name} "
                           "(the dashboard's trace links use the job as the Jaeger service)")
                if hp[0] in scraped:
                    R.fail(f"{where}: {hp[0]} is scraped twice")
                scraped[hp[0]] = target
    for name in vdm:
        if name not in scraped:
            R.fail(f"{rel(PROM_CONFIG)}: vdm service {name} is not scraped")
    R.ok_since(mark, "scrapes every vdm container once on its metrics port: " + ", ".join(f"{s} ({t})" for s, t in scraped.items()))


# --------------------------------------------------------------------------
# 3. alert rules


def check_budget_alerts(promtool: str, vdm: str) -> list[tuple[str, str]]:
    """The generated budget alerts: loaded, valid, and not edited by hand.
    Returns their expressions, checked against /metrics like the others."""
    R.section(rel(BUDGET_ALERTS))
    config = load_yaml(PROM_CONFIG) or {}
    if "alerts-budgets.yml" not in (config.get("rule_files") or []):
        R.fail(f"{rel(PROM_CONFIG)}: rule_files does not load alerts-budgets.yml")
    run([promtool, "check", "rules", str(BUDGET_ALERTS)], "promtool check rules alerts-budgets.yml")
    env = {k: v for k, v in os.environ.items() if k != "VDM_BUDGETS_FILE"}
    env["VDM_BUDGETS_FILE"] = str(BUDGETS)
    proc = subprocess.run([vdm, "budgets", "alert-rules"], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        R.fail(f"vdm budgets alert-rules failed:\n{proc.stderr.strip()}")
    elif proc.stdout != BUDGET_ALERTS.read_text():
        R.fail(f"{rel(BUDGET_ALERTS)} is not what `vdm budgets alert-rules` generates from {rel(BUDGETS)}: "
               "run `cargo run -p vdm -- budgets alert-rules --out deploy/prometheus/alerts-budgets.yml`")
    else:
        R.ok(f"{rel(BUDGET_ALERTS)} is generated from {rel(BUDGETS)}")
    rules = load_yaml(BUDGET_ALERTS) or {}
    budgets = json.loads(BUDGETS.read_text()).get("budgets", [])
    names = [r.get("labels", {}).get("budget") for g in rules.get("groups") or [] for r in g.get("rules") or []]
    if names != [b.get("name") for b in budgets]:
        R.fail(f"{rel(BUDGET_ALERTS)}: budgets {names} do not match {rel(BUDGETS)}")
    anchors = doc_anchors()
    for group in rules.get("groups") or []:
        for rule in group.get("rules") or []:
            m = re.fullmatch(r"docs/OBSERVABILITY\.md#([\w-]+)", (rule.get("annotations") or {}).get("runbook_url", ""))
            if not m or m.group(1) not in anchors:
                R.fail(f"{rel(BUDGET_ALERTS)}: {rule.get('alert')}: runbook anchor is no heading of {rel(DOC)}")
    return [(f"budget alert {rule.get('alert')}", rule["expr"])
            for group in rules.get("groups") or [] for rule in group.get("rules") or [] if "expr" in rule]


def github_anchor(heading: str) -> str:
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def doc_anchors() -> set[str]:
    if not DOC.is_file():
        return set()
    anchors = set()
    for line in DOC.read_text().splitlines():
        m = re.match(r"#{1,6}\s+(.*)", line)
        if m:
            anchors.add(github_anchor(m.group(1)))
    return anchors


def check_alerts(promtool: str) -> list[tuple[str, str]]:
    R.section(rel(ALERTS))
    run([promtool, "check", "rules", str(ALERTS)], "promtool check rules alerts.yaml")
    run([promtool, "test", "rules", str(ALERT_TESTS)], "promtool test rules alerts.test.yaml (each alert fires on bad series, not on good ones)")
    rules = load_yaml(ALERTS)
    mark = R.mark()
    exprs: list[tuple[str, str]] = []
    if rules is None:
        return exprs
    anchors = doc_anchors()
    tests = ALERT_TESTS.read_text() if ALERT_TESTS.is_file() else ""
    names = []
    for group in rules.get("groups") or []:
        for rule in group.get("rules") or []:
            name = rule.get("alert")
            if not name:
                R.fail(f"{rel(ALERTS)}: group {group.get('name')} holds a rule that is no alert ({rule.get('record')})")
                continue
            names.append(name)
            exprs.append((f"alert {name}", rule["expr"]))
            where = f"{rel(ALERTS)}: {name}"
            if rule.get("labels", {}).get("severity") not in ("warning", "critical"):
                R.fail(f"{where}: severity label must be warning or critical")
            if not rule.get("for"):
                R.fail(f"{where}: no `for:` (a single bad evaluation would page)")
            ann = rule.get("annotations") or {}
            for key in ("summary", "description", "runbook_url"):
                if not ann.get(key):
                    R.fail(f"{where}: annotation {key} missing")
            runbook = ann.get("runbook_url", "")
            m = re.fullmatch(r"docs/OBSERVABILITY\.md#([\w-]+)", runbook)
            if not m:
                R.fail(f"{where}: runbook_url {runbook!r} is not docs/OBSERVABILITY.md#<anchor>")
            elif m.group(1) not in anchors:
                R.fail(f"{where}: runbook anchor #{m.group(1)} is no heading of {rel(DOC)}")
            if f"alertname: {name}" not in tests:
                R.fail(f"{where}: no test in {rel(ALERT_TESTS)}")
    if len(set(names)) != len(names):
        R.fail(f"{rel(ALERTS)}: duplicate alert names")
    R.ok_since(mark, f"{len(names)} alerts with severity, for, summary, description, a runbook anchor "
               f"that exists and a unit test: {', '.join(names)}")
    return exprs


# --------------------------------------------------------------------------
# 4. Grafana


def grafana_vars(text: str) -> set[str]:
    found = set()
    for m in re.finditer(r"\$\{([^}:]+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)\]\]", text):
        found.add(m.group(1) or m.group(2) or m.group(3))
    return found


def check_grafana(compose: dict | None) -> list[tuple[str, str]]:
    R.section("deploy/grafana")
    exprs: list[tuple[str, str]] = []
    ds_file = load_yaml(DATASOURCES)
    providers = load_yaml(DASHBOARD_PROVIDERS)
    dash = load_json(DASHBOARD)
    services = (compose or {}).get("services") or {}
    ds_by_uid: dict[str, dict] = {}
    mark = R.mark()
    if ds_file:
        for ds in ds_file.get("datasources") or []:
            ds_by_uid[ds.get("uid")] = ds
            hp = url_host_port(ds.get("url", ""))
            if not hp or hp[0] not in services:
                R.fail(f"{rel(DATASOURCES)}: {ds.get('name')} url {ds.get('url')} is no compose service")
            expected = {"prometheus": 9090, "jaeger": 16686}.get(ds.get("type"))
            if hp and expected and hp[1] != expected:
                R.fail(f"{rel(DATASOURCES)}: {ds.get('name')} url port {hp[1]}, {ds.get('type')} listens on {expected}")
            for q in (ds.get("jsonData") or {}).get("tracesToMetrics", {}).get("queries") or []:
                # `$$` is a literal `$` in provisioning files.
                exprs.append((f"data source {ds.get('name')}: {q.get('name')}", q["query"].replace("$$", "$")))
        for uid, kind in (("prometheus", "prometheus"), ("jaeger", "jaeger")):
            if ds_by_uid.get(uid, {}).get("type") != kind:
                R.fail(f"{rel(DATASOURCES)}: no {kind} data source with uid {uid}")
        R.ok_since(mark, "data sources: " + ", ".join(f"{d.get('name')} (uid {u}, {d.get('url')})" for u, d in ds_by_uid.items()))
    grafana = services.get("grafana") or {}
    mark = R.mark()
    mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in grafana.get("volumes") or []}
    if providers:
        for p in providers.get("providers") or []:
            path = (p.get("options") or {}).get("path")
            if mounts.get(path) != "./grafana/dashboards":
                R.fail(f"{rel(DASHBOARD_PROVIDERS)}: path {path} is not where compose mounts ./grafana/dashboards")
    if mounts.get("/etc/grafana/provisioning") != "./grafana/provisioning":
        R.fail(f"{rel(COMPOSE)}: grafana must mount ./grafana/provisioning on /etc/grafana/provisioning")
    home = (grafana.get("environment") or {}).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home and home != "/var/lib/grafana/dashboards/" + DASHBOARD.name:
        R.fail(f"{rel(COMPOSE)}: home dashboard {home} is not {DASHBOARD.name}")
    R.ok_since(mark, "compose mounts the provisioning and the dashboards folder where the provider looks")
    if not dash:
        return exprs

    mark = R.mark()
    variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
    ds_vars = {n: v.get("query") for n, v in variables.items() if v.get("type") == "datasource"}
    for name, kind in ds_vars.items():
        default = (variables[name].get("current") or {}).get("value")
        if ds_by_uid and ds_by_uid.get(default, {}).get("type") != kind:
            R.fail(f"{rel(DASHBOARD)}: variable {name} defaults to {default}, no provisioned {kind} data source")
    if not dash.get("uid") or not dash.get("title"):
        R.fail(f"{rel(DASHBOARD)}: uid and title are required")

    def ds_kind(ref) -> str | None:
        if not isinstance(ref, dict):
            return None
        uid = str(ref.get("uid", ""))
        m = re.fullmatch(r"\$\{?(\w+)\}?", uid)
        kind = ds_vars.get(m.group(1)) if m else (ds_by_uid.get(uid) or {}).get("type")
        if kind is None and uid != "-- Grafana --":
            R.fail(f"{rel(DASHBOARD)}: data source {ref} is neither a data source variable nor a provisioned uid")
        if kind and ref.get("type") and ref["type"] != kind:
            R.fail(f"{rel(DASHBOARD)}: data source {ref} has type {ref['type']}, but resolves to {kind}")
        return kind

    used_vars: set[str] = set()
    ids, cells, jaeger_uses = set(), {}, []
    for var in variables.values():
        if var.get("type") == "query":
            query = var.get("query")
            query = query.get("query") if isinstance(query, dict) else query
            used_vars |= grafana_vars(json.dumps(var.get("datasource")))
            m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query or "")
            if ds_kind(var.get("datasource")) == "prometheus":
                if not m:
                    R.fail(f"{rel(DASHBOARD)}: variable {var['name']}: query {query!r} is not label_values(selector, label)")
                else:
                    exprs.append((f"variable {var['name']}", m.group(1)))
                    used_vars |= grafana_vars(m.group(1))
    for panel in dash.get("panels", []):
        title = panel.get("title", "?")
        where = f"{rel(DASHBOARD)}: panel {title!r}"
        pid = panel.get("id")
        if pid in ids:
            R.fail(f"{where}: duplicate id {pid}")
        ids.add(pid)
        g = panel.get("gridPos") or {}
        if not {"x", "y", "w", "h"} <= g.keys() or g["x"] + g["w"] > 24:
            R.fail(f"{where}: gridPos {g} is incomplete or wider than 24")
            continue
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells:
                    R.fail(f"{where}: overlaps panel {cells[(x, y)]!r}")
                    break
                cells[(x, y)] = title
            else:
                continue
            break
        if panel.get("type") == "row":
            continue
        used_vars |= grafana_vars(title) | grafana_vars(json.dumps(panel.get("fieldConfig", {})))
        kind = ds_kind(panel.get("datasource"))
        targets = panel.get("targets") or []
        if not targets:
            R.fail(f"{where}: no queries")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs):
            R.fail(f"{where}: duplicate refIds {refs}")
        for t in targets:
            tkind = ds_kind(t.get("datasource", panel.get("datasource")))
            used_vars |= grafana_vars(json.dumps(t))
            if tkind == "prometheus":
                if not t.get("expr"):
                    R.fail(f"{where}: query {t.get('refId')} has no expr")
                else:
                    exprs.append((f"panel {title!r} {t.get('refId')}", t["expr"]))
            elif tkind == "jaeger":
                jaeger_uses.append(f"panel {title!r}")
            elif kind is None:
                R.fail(f"{where}: query {t.get('refId')} has no known data source")
        for link in (panel.get("fieldConfig", {}).get("defaults", {}).get("links") or []) + (panel.get("links") or []):
            if "jaeger" in link.get("url", "") or "${jaeger}" in link.get("url", ""):
                jaeger_uses.append(f"link {link.get('title')!r}")
    for link in dash.get("links") or []:
        used_vars |= grafana_vars(link.get("url", ""))
        if "${jaeger}" in link.get("url", ""):
            jaeger_uses.append(f"dashboard link {link.get('title')!r}")
    undefined = {v for v in used_vars if v not in variables and not GRAFANA_BUILTINS.match(v)}
    if undefined:
        R.fail(f"{rel(DASHBOARD)}: uses undefined variables {sorted(undefined)}")
    for needed in ("job", "instance"):
        if needed not in variables:
            R.fail(f"{rel(DASHBOARD)}: no `{needed}` variable (the dashboard is templated by job and instance)")
    if not jaeger_uses:
        R.fail(f"{rel(DASHBOARD)}: nothing links to traces in Jaeger")
    R.ok_since(mark, f"vdm.json: {len(ids)} panels, unique ids, no overlaps, variables {sorted(variables)} all defined, "
         f"data sources resolve; Jaeger used by {len(jaeger_uses)} panels/links")
    return exprs


# --------------------------------------------------------------------------
# 5. PromQL


def substitute_grafana(expr: str) -> str:
    """Makes a Grafana query plain PromQL: range variables become 5m, any
    other variable a harmless label value."""
    expr = re.sub(r"\$\{?__(rate_interval|interval|range)\}?", "5m", expr)
    expr = expr.replace("$__tags", 'job="x"')
    return re.sub(r"\$\{?\w+(?::\w+)?\}?", "x", expr)


class Use:
    """What one expression needs from the binary."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.metrics: set[str] = set()
        self.matchers: list[tuple[str, str, object, str]] = []  # metric, label, op, value
        self.grouping: list[tuple[set[str], set[str]]] = []  # labels, metrics below


def selector_metric(node) -> str | None:
    if node.name:
        return node.name
    for m in node.matchers.matchers:
        if m.name == "__name__" and m.op == pp.MatchOp.Equal:
            return m.value
    return None


def collect(source: str, expr: str) -> Use | None:
    try:
        tree = pp.parse(expr)
    except ValueError as err:
        R.fail(f"{source}: PromQL does not parse: {err}\n        {expr}")
        return None
    use = Use(source)

    def metrics_below(node) -> set[str]:
        found: set[str] = set()

        def visit(n):
            if isinstance(n, pp.VectorSelector):
                name = selector_metric(n)
                if name:
                    found.add(name)
            return True

        pp.walk(node, visit)
        return found

    def visit(node):
        if isinstance(node, pp.VectorSelector):
            name = selector_metric(node)
            if not name:
                R.fail(f"{source}: a selector without a metric name: {node}")
                return True
            use.metrics.add(name)
            for m in node.matchers.matchers:
                if m.name != "__name__":
                    use.matchers.append((name, m.name, m.op, m.value))
        elif isinstance(node, pp.AggregateExpr) and node.modifier is not None:
            use.grouping.append((set(node.modifier.labels), metrics_below(node)))
        elif isinstance(node, pp.BinaryExpr) and node.modifier is not None:
            labels = set()
            if node.modifier.matching is not None:
                labels |= set(node.modifier.matching.labels)
            labels |= set(getattr(node.modifier, "group_labels", None) or [])
            if labels:
                use.grouping.append((labels, metrics_below(node)))
        return True

    pp.walk(tree, visit)
    return use


def promtool_parse(promtool: str, exprs: list[tuple[str, str]]) -> None:
    """promtool parses every dashboard and data source expression (as
    recording rules of a scratch file): the same parser Prometheus runs."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dashboard-queries.yaml"
        rules = [{"record": f"dashboard:query_{i}:check", "expr": e} for i, (_, e) in enumerate(exprs)]
        path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
        proc = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
        if proc.returncode != 0:
            out = proc.stdout + proc.stderr
            for m in re.finditer(r"query_(\d+)", out):
                source, expr = exprs[int(m.group(1))]
                R.fail(f"{source}: promtool rejects: {expr}")
            R.fail(f"promtool check rules on the dashboard's queries:\n{out.strip()}")
        else:
            R.ok(f"promtool parses all {len(exprs)} dashboard, variable and data source queries")


# --------------------------------------------------------------------------
# 6. the binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body=None, token: str | None = None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def websocket_round_trip(port: int, token: str, quest_id: int) -> str | None:
    """Opens /v1/ws (JSON subprotocol), reads the welcome, sends one request
    and reads its reply; returns a problem or None. Just enough RFC 6455 for
    that: client frames masked, unfragmented text frames."""
    import base64
    import struct

    def read_frame(reader) -> tuple[int, bytes]:
        head = read_exact(reader, 2)
        length = head[1] & 0x7F
        if length == 126:
            length = struct.unpack("!H", read_exact(reader, 2))[0]
        elif length == 127:
            length = struct.unpack("!Q", read_exact(reader, 8))[0]
        return head[0] & 0x0F, read_exact(reader, length)

    def read_exact(reader, n: int) -> bytes:
        data = reader.read(n)
        if len(data) != n:
            raise ConnectionError("socket closed")
        return data

    def send_frame(sock, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        header = bytes([0x80 | opcode])
        n = len(payload)
        header += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n)
        sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall((f"GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                      f"Sec-WebSocket-Protocol: vdm.v1.json\r\nAuthorization: Bearer {token}\r\n\r\n").encode())
        reader = sock.makefile("rb")
        status_line = reader.readline().decode(errors="replace").strip()
        if not status_line.startswith("HTTP/1.1 101"):
            return f"/v1/ws answered {status_line!r}, expected 101"
        while reader.readline() not in (b"\r\n", b"\n", b""):
            pass
        messages = []
        for _ in range(10):
            opcode, payload = read_frame(reader)
            if opcode == 1:
                messages.append(json.loads(payload))
                if messages[-1].get("type") == "welcome":
                    break
        request = {"id": "obs1", "type": "request", "method": "GET", "path": f"/v1/quests/{quest_id}"}
        send_frame(sock, 1, json.dumps(request).encode())
        for _ in range(10):
            opcode, payload = read_frame(reader)
            if opcode == 1 and json.loads(payload).get("id") == "obs1":
                send_frame(sock, 8, struct.pack("!H", 1000))
                return None
        return f"no reply to a WebSocket request; got {messages}"


class Processes:
    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = str(Path(binary).resolve())
        self.workdir = workdir
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log = (self.workdir / f"{name}.log").open("wb")
        base = {"PATH": os.environ.get("PATH", ""), "VDM_DATA_DIR": str(self.workdir / "data"), "VDM_LOG": "info"}
        self.procs[name] = subprocess.Popen(
            [self.binary, *args], env={**base, **env}, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir
        )

    def wait_ready(self, name: str, url: str, seconds: float = 30) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.procs[name].poll() is not None:
                R.fail(f"vdm {name} exited during start-up:\n{self.log(name)}")
                return False
            try:
                if http("GET", url)[0] == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.02)
        R.fail(f"vdm {name} not ready at {url} within {seconds:.0f} s:\n{self.log(name)}")
        return False

    def stop(self, name: str) -> None:
        proc = self.procs.get(name)
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)


# The text each scrape answered, by its label, for the exposition lint.
EXPOSITIONS: dict[str, str] = {}


def scrape(url: str, label: str) -> dict[str, dict[str, set[str]]]:
    """Metric sample names → label name → values seen."""
    status, _, body = http("GET", url)
    if status != 200:
        R.fail(f"{label}: GET {url} answered {status}")
        return {}
    EXPOSITIONS[label] = body.decode()
    found: dict[str, dict[str, set[str]]] = {}
    try:
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                labels = found.setdefault(sample.name, {})
                for k, v in sample.labels.items():
                    labels.setdefault(k, set()).add(v)
    except ValueError as err:
        R.fail(f"{label}: /metrics is not valid Prometheus text: {err}")
    return found


def exercise(binary: str, promtool: str) -> dict[str, dict[str, set[str]]]:
    R.section(f"the binary's /metrics ({binary})")
    metrics: dict[str, dict[str, set[str]]] = {}
    with tempfile.TemporaryDirectory(prefix="vdm-obs-") as tmp:
        procs = Processes(binary, Path(tmp))
        try:
            grpc, admin, http_port, otlp = free_port(), free_port(), free_port(), free_port()
            # The OTLP endpoint is a closed local port: export fails quietly,
            # but trace ids exist only when an exporter is set up, and the
            # check covers the x-trace-id header and the error body too.
            otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp}"}
            procs.start("quest", ["quest"], {**otel, "OTEL_SERVICE_NAME": "vdm-quest",
                                             "VDM_GRPC_ADDR": f"127.0.0.1:{grpc}", "VDM_ADMIN_ADDR": f"127.0.0.1:{admin}"})
            world_grpc, world_admin, npc_grpc, npc_admin = free_port(), free_port(), free_port(), free_port()
            procs.start("world", ["world"], {**otel, "OTEL_SERVICE_NAME": "vdm-world",
                                             "VDM_GRPC_ADDR": f"127.0.0.1:{world_grpc}",
                                             "VDM_ADMIN_ADDR": f"127.0.0.1:{world_admin}"})
            procs.start("npc", ["npc"], {**otel, "OTEL_SERVICE_NAME": "vdm-npc",
                                         "VDM_GRPC_ADDR": f"127.0.0.1:{npc_grpc}",
                                         "VDM_ADMIN_ADDR": f"127.0.0.1:{npc_admin}",
                                         "VDM_WORLD_URL": f"http://127.0.0.1:{world_grpc}"})
            player_grpc, player_admin = free_port(), free_port()
            procs.start("player", ["player"], {**otel, "OTEL_SERVICE_NAME": "vdm-player",
                                               "VDM_GRPC_ADDR": f"127.0.0.1:{player_grpc}",
                                               "VDM_ADMIN_ADDR": f"127.0.0.1:{player_admin}"})
            rumor_grpc, rumor_admin = free_port(), free_port()
            procs.start("rumor", ["rumor"], {**otel, "OTEL_SERVICE_NAME": "vdm-rumor",
                                             "VDM_GRPC_ADDR": f"127.0.0.1:{rumor_grpc}",
                                             "VDM_ADMIN_ADDR": f"127.0.0.1:{rumor_admin}",
                                             "VDM_NPC_URL": f"http://127.0.0.1:{npc_grpc}",
                                             "VDM_WORLD_URL": f"http://127.0.0.1:{world_grpc}"})
            metrics_grpc, metrics_admin = free_port(), free_port()
            procs.start("metrics", ["metrics"], {**otel, "OTEL_SERVICE_NAME": "vdm-metrics",
                                                 "VDM_GRPC_ADDR": f"127.0.0.1:{metrics_grpc}",
                                                 "VDM_ADMIN_ADDR": f"127.0.0.1:{metrics_admin}"})
            procs.start("gateway", ["gateway"], {**otel, "OTEL_SERVICE_NAME": "vdm-gateway",
                                                 "VDM_HTTP_ADDR": f"127.0.0.1:{http_port}",
                                                 "VDM_QUEST_URL": f"http://127.0.0.1:{grpc}",
                                                 "VDM_NPC_URL": f"http://127.0.0.1:{npc_grpc}",
                                                 "VDM_WORLD_URL": f"http://127.0.0.1:{world_grpc}",
                                                 "VDM_RUMOR_URL": f"http://127.0.0.1:{rumor_grpc}",
                                                 "VDM_PLAYER_URL": f"http://127.0.0.1:{player_grpc}",
                                                 "VDM_METRICS_URL": f"http://127.0.0.1:{metrics_grpc}",
                                                 "VDM_ADMIN_TOKEN": ADMIN_TOKEN, "VDM_JWT_SECRET": JWT_SECRET})
            base = f"http://127.0.0.1:{http_port}"
            if not (procs.wait_ready("quest", f"http://127.0.0.1:{admin}/ready")
                    and procs.wait_ready("world", f"http://127.0.0.1:{world_admin}/ready")
                    and procs.wait_ready("npc", f"http://127.0.0.1:{npc_admin}/ready")
                    and procs.wait_ready("rumor", f"http://127.0.0.1:{rumor_admin}/ready")
                    and procs.wait_ready("player", f"http://127.0.0.1:{player_admin}/ready")
                    and procs.wait_ready("metrics", f"http://127.0.0.1:{metrics_admin}/ready")
                    and procs.wait_ready("gateway", f"{base}/ready")):
                return metrics
            started = time.monotonic()
            quest = {"title": "Observed", "giver_npc_id": 1, "region_id": 1,
                     "objectives": [{"description": "Be measured", "target_count": 1}]}
            status, _, body = http("POST", f"{base}/v1/quests", quest, ADMIN_TOKEN)
            if status != 201:
                R.fail(f"POST /v1/quests answered {status}: {body[:200]!r}")
                return metrics
            qid = json.loads(body)["id"]
            status, _, body = http("POST", f"{base}/v1/auth/device", {"device_id": "observability-check"})
            if status not in (200, 201):
                R.fail(f"POST /v1/auth/device answered {status}: {body[:200]!r}")
                return metrics
            token = json.loads(body)["session_token"]
            answers = [http("GET", f"{base}/v1/quests/{qid}", token=token)[0] for _ in range(2)]
            status, headers, body = http("GET", f"{base}/v1/quests/987654321", token=token)
            answers.append(status)
            trace = {k.lower(): v for k, v in headers.items()}.get("x-trace-id", "")
            error = json.loads(body).get("error", {}) if body else {}
            if not re.fullmatch(r"[0-9a-f]{32}", trace) or error.get("trace_id") != trace:
                R.fail(f"a 404 with tracing on should carry x-trace-id and the same error.trace_id "
                       f"(docs/OBSERVABILITY.md says so): header {trace!r}, body {error}")
            else:
                R.ok(f"with OTEL_EXPORTER_OTLP_ENDPOINT set, a 404 carries x-trace-id {trace} and the same error.trace_id")
            answers.append(http("GET", f"{base}/no-such-route")[0])
            # The rumor service reads its database (and counts the statement).
            rumor_read = http("GET", f"{base}/v1/rumors/987654321", token=token)[0]
            if rumor_read != 404:
                R.fail(f"GET /v1/rumors/987654321 answered {rumor_read}, expected 404")
            rumor_metrics = scrape(f"http://127.0.0.1:{rumor_admin}/metrics", "vdm rumor admin port")
            # A Unity client's samples reach the metrics service (its client
            # histograms, in seconds, and allocations in bytes).
            batch = {"client_version": "1.0.0", "device_class": "desktop",
                     "samples": [{"frame_time_ms": 16.0, "gc_pause_ms": 0.5, "input_latency_ms": 20.0,
                                  "event_dispatch_ms": 0.2, "gc_alloc_bytes": 2048,
                                  "systems": {"animation": 1.5}}]}
            status, _, body = http("POST", f"{base}/v1/telemetry/client", batch, token)
            if status != 202:
                R.fail(f"POST /v1/telemetry/client answered {status}: {body[:200]!r}")
            metrics_service = scrape(f"http://127.0.0.1:{metrics_admin}/metrics", "vdm metrics admin port")
            # Signing in went through the player service.
            player_metrics = scrape(f"http://127.0.0.1:{player_admin}/metrics", "vdm player admin port")
            # Accepting publishes quest.updated (the events counter).
            answers.append(http("POST", f"{base}/v1/quests/{qid}/accept", token=token)[0])
            if answers != [200, 200, 404, 404, 200]:
                R.fail(f"requests answered {answers}, expected [200, 200, 404, 404, 200]")
            try:
                problem = websocket_round_trip(http_port, token, qid)
            except (OSError, ValueError) as err:
                problem = f"WebSocket round trip failed: {err}"
            if problem:
                R.fail(problem)
            quest_metrics = scrape(f"http://127.0.0.1:{admin}/metrics", "vdm quest admin port")
            # With quest gone, the gateway's calls end UNAVAILABLE and it answers
            # 503. The player's quest log is asked: the quest itself may still be
            # answered from the gateway's edge cache, as it should be.
            procs.stop("quest")
            down = http("GET", f"{base}/v1/me/quests", token=token)[0]
            if down != 503:
                R.fail(f"GET /v1/me/quests with quest down answered {down}, expected 503")
            gateway_metrics = scrape(f"{base}/metrics", "vdm gateway")
            R.ok(f"vdm quest + vdm gateway served create, sign-in, 2 reads, a 404, an unknown route, an accept, "
                 f"a WebSocket request, and a 503 with quest down in {time.monotonic() - started:.2f} s")
            for name, found in (("quest (admin port)", quest_metrics), ("rumor (admin port)", rumor_metrics),
                                ("metrics (admin port)", metrics_service), ("player (admin port)", player_metrics),
                                ("gateway (HTTP port)", gateway_metrics)):
                families = sorted({re.sub(r"_(bucket|sum|count)$", "", n) for n in found})
                R.ok(f"{name} /metrics: {len(families)} families: {', '.join(families)}")
            for source in (quest_metrics, rumor_metrics, metrics_service, player_metrics, gateway_metrics):
                for sample, labels in source.items():
                    into = metrics.setdefault(sample, {})
                    for k, v in labels.items():
                        into.setdefault(k, set()).update(v)
            for label, text in EXPOSITIONS.items():
                lint_exposition(label, text, promtool)
        finally:
            procs.stop_all()
    return metrics


# Units a family name may not carry: Prometheus names say base units.
NON_BASE_UNITS = re.compile(r"_(ms|milliseconds|us|microseconds|ns|nanoseconds|minutes|hours|kb|mb|kilobytes|megabytes)(_|$)")


def lint_exposition(label: str, text: str, promtool: str) -> None:
    """Fails on a family without HELP text (promtool's lint), a `_total`
    family that is not a counter and a name in a unit other than a base
    one; promtool's other findings are notes."""
    lint = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    no_help = []
    for line in (lint.stdout + lint.stderr).strip().splitlines():
        if line.endswith(" no help text"):
            no_help.append(line.split()[0])
        else:
            R.note(f"{label}: promtool check metrics: {line}")
    if no_help:
        R.fail(f"{label}: no HELP text on {len(no_help)} families ({', '.join(no_help)}): "
               "describe them in vdm_kit::metrics::FAMILIES")
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    for name, kind in sorted(types.items()):
        if name.endswith("_total") and kind != "counter":
            R.fail(f"{label}: {name} is a {kind}; a _total family must be a counter")
        if NON_BASE_UNITS.search(name):
            R.fail(f"{label}: {name} is not in base units (seconds, bytes): rename it and convert")
    if not no_help:
        R.ok(f"{label}: {len(types)} families, each with HELP, counters named _total, base units")


def check_uses(uses: list[Use], metrics: dict[str, dict[str, set[str]]]) -> None:
    R.section("every metric, label and label value the queries use, against /metrics")
    if not metrics:
        R.fail("no /metrics output to compare with")
        return
    mark = R.mark()
    queried: set[str] = set()
    unchecked_regex = 0
    for use in uses:
        for name in sorted(use.metrics):
            queried.add(name)
            if name in SYNTHETIC_SERIES:
                continue
            if name not in metrics:
                R.fail(f"{use.source}: queries {name}, which no /metrics output has")
        for name, label, op, value in use.matchers:
            if name in SYNTHETIC_SERIES or name not in metrics:
                continue
            seen = metrics[name]
            if label in TARGET_LABELS:
                continue
            if label not in seen:
                R.fail(f"{use.source}: {name} has no label {label} (it has {sorted(seen) or 'none'})")
                continue
            if op in (pp.MatchOp.Equal, pp.MatchOp.NotEqual) and value not in seen[label]:
                why = FAILURE_ONLY_VALUES.get((name, label, value))
                if why:
                    R.note(f"{use.source}: {name}{{{label}=\"{value}\"}} not seen in a healthy run; set in {why}")
                else:
                    R.fail(f"{use.source}: {name}{{{label}=\"{value}\"}}: value never seen (seen: {sorted(seen[label])})")
            elif op not in (pp.MatchOp.Equal, pp.MatchOp.NotEqual):
                unchecked_regex += 1
        for labels, below in use.grouping:
            available = set(TARGET_LABELS)
            for name in below:
                available |= set(metrics.get(name, {}))
            missing = labels - available
            if missing and not (below & SYNTHETIC_SERIES):
                R.fail(f"{use.source}: groups or matches by {sorted(missing)}, which none of {sorted(below)} has")
    R.ok_since(mark, f"{len(uses)} expressions query {len(queried)} series names, all served "
         f"(except Prometheus's own {sorted(queried & SYNTHETIC_SERIES)}); label names and exact values checked, "
         f"{unchecked_regex} regex matchers' values not")
    families = {re.sub(r"_(bucket|sum|count)$", "", n) for n in metrics}
    unused = sorted(f for f in families if not any(n == f or n.startswith(f + "_") for n in queried))
    if unused:
        R.note(f"served but on no panel or alert: {', '.join(unused)}")


def check_doc(metrics: dict[str, dict[str, set[str]]], alert_names: list[str]) -> None:
    R.section(rel(DOC))
    if not DOC.is_file():
        R.fail(f"{rel(DOC)} does not exist")
        return
    doc = DOC.read_text()
    families = sorted({re.sub(r"_(bucket|sum|count)$", "", n) for n in metrics})
    missing = [f for f in families if f"`{f}" not in doc]
    if missing:
        R.fail(f"{rel(DOC)} does not describe metric families the binary serves: {', '.join(missing)}")
    missing_alerts = [a for a in alert_names if a not in doc]
    if missing_alerts:
        R.fail(f"{rel(DOC)} does not mention alerts {', '.join(missing_alerts)}")
    if not missing and not missing_alerts:
        R.ok(f"describes all {len(families)} metric families and all {len(alert_names)} alerts")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--promtool", required=True)
    parser.add_argument("--vdm", required=True)
    args = parser.parse_args()
    started = time.monotonic()

    compose = check_compose()
    check_prometheus(compose, args.promtool)
    alert_exprs = check_alerts(args.promtool)
    budget_exprs = check_budget_alerts(args.promtool, args.vdm)
    dashboard_exprs = check_grafana(compose)

    R.section("PromQL")
    plain = [(source, substitute_grafana(expr)) for source, expr in dashboard_exprs]
    if plain:
        promtool_parse(args.promtool, plain)
    # promql-parser reads a backtick string's backslashes as escapes; the
    # same string double-quoted means what Prometheus reads (promtool checked
    # the rules as written above).
    budget_exprs = [(source, re.sub(r"`([^`]*)`", lambda m: json.dumps(m.group(1)), expr))
                    for source, expr in budget_exprs]
    uses = [u for u in (collect(s, e) for s, e in plain + alert_exprs + budget_exprs) if u]
    R.ok(f"parsed {len(uses)} expressions into selectors ({len(alert_exprs)} alert rules, {len(budget_exprs)} budget "
         f"alerts, {len(plain)} dashboard and data source queries)")

    metrics = exercise(args.vdm, args.promtool)
    check_uses(uses, metrics)
    check_doc(metrics, [s.removeprefix("alert ") for s, _ in alert_exprs])

    elapsed = time.monotonic() - started
    if R.problems:
        print(f"\nobservability check FAILED: {len(R.problems)} problem(s) ({elapsed:.1f} s):", file=sys.stderr)
        for p in R.problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    print(f"\nobservability check passed ({elapsed:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
