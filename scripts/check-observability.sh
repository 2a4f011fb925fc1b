#!/usr/bin/env bash
# The CI check of the observability files: deploy/compose.yaml,
# deploy/prometheus/ (config, alert rules and their unit tests),
# deploy/grafana/ (provisioning and the dashboard) and docs/OBSERVABILITY.md.
#
#   bash scripts/check-observability.sh
#
# The checks themselves are in scripts/check-observability.py (its docstring
# lists them). In short: everything parses; the compose file is valid against
# the Compose Specification schema and its references hold (there is no
# Docker engine here to run it); promtool checks the Prometheus config, the
# rules and every dashboard query, and runs the rules' unit tests; then the
# debug `vdm` binary runs as `vdm quest` + `vdm gateway`, serves a few
# requests, and every metric, label and exact label value that the dashboard
# or the rules query must appear in its /metrics output.
#
# Tools, pinned, installed only under .cache/observability-tools/
# (git-ignored; a second run installs nothing):
# - a Python venv with PyYAML, promql-parser (the parse trees), prometheus-client
#   (reads /metrics) and check-jsonschema (its vendored Compose Specification
#   schema), every dependency pinned;
# - promtool from Debian's `prometheus` package (apt-get download, so apt
#   verifies it against the signed archive), unpacked, not installed.
#
# The binary: $VDM_BIN, else target/debug/vdm (built with
# `cargo build -p vdm` when missing, like scripts/smoke).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TOOLS=".cache/observability-tools"
VENV="${TOOLS}/venv"
PYTHON_REQUIREMENTS=(
  "PyYAML==6.0.4"
  "promql-parser==0.11.0"
  "prometheus-client==0.26.0"
  "check-jsonschema==0.39.0"
  # check-jsonschema's dependency closure.
  "attrs==26.1.0"
  "certifi==2026.10.19.post1"
  "charset-normalizer==3.5.3"
  "click==8.5.1"
  "idna==3.20"
  "jsonschema==4.26.0"
  "jsonschema-specifications==2025.9.1"
  "referencing==0.37.0"
  "regress==2026.9.1"
  "requests==2.34.2"
  "rpds-py==2026.9.1"
  "ruamel.yaml==0.19.1"
  "typing_extensions==4.16.0"
  "urllib3==2.8.0"
)
# promtool 2.42 (Debian bookworm's prometheus). The exact package we checked
# with, and its sha256; when Debian replaces it with a newer revision of the
# same upstream version, that one is taken (apt verifies it) and the script
# says so.
PROMETHEUS_DEB_VERSION="2.42.0+ds-5+deb12u1"
PROMETHEUS_DEB_SHA256="81d59a24fce84f7fbe97a45a4f2914b6a5881b5cd1db2a6a0e129e515e1a5f55"
PROMETHEUS_UPSTREAM="2.42.0"
PROMTOOL="${TOOLS}/promtool-${PROMETHEUS_UPSTREAM}/promtool"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf '\nobservability check FAILED: %s\n' "$*" >&2; exit 1; }

start=$(date +%s%N)

install_venv() {
  local stamp="${VENV}/.requirements"
  local wanted
  wanted="$(printf '%s\n' "${PYTHON_REQUIREMENTS[@]}")"
  if [[ -x "${VENV}/bin/python" && -f "${stamp}" && "$(cat "${stamp}")" == "${wanted}" ]]; then
    return 0
  fi
  command -v python3 >/dev/null || die "python3 is needed"
  log "creating ${VENV} (pinned: ${PYTHON_REQUIREMENTS[*]:0:4} and their dependencies)"
  rm -rf "${VENV}"
  python3 -m venv "${VENV}"
  "${VENV}/bin/pip" install --quiet --disable-pip-version-check --no-deps "${PYTHON_REQUIREMENTS[@]}" \
    || die "pip install into ${VENV}"
  "${VENV}/bin/pip" check --disable-pip-version-check >/dev/null || die "the pinned Python requirements are incomplete: $("${VENV}/bin/pip" check)"
  printf '%s' "${wanted}" >"${stamp}"
}

install_promtool() {
  if [[ -x "${PROMTOOL}" ]] && "${PROMTOOL}" --version 2>&1 | grep -q "version ${PROMETHEUS_UPSTREAM}"; then
    return 0
  fi
  command -v apt-get >/dev/null || die "apt-get is needed to fetch promtool (Debian package prometheus)"
  local work="${TOOLS}/download" version
  rm -rf "${work}" && mkdir -p "${work}"
  if ! apt-cache show "prometheus=${PROMETHEUS_DEB_VERSION}" >/dev/null 2>&1 \
    && ! apt-cache policy prometheus 2>/dev/null | grep -q "Candidate: ${PROMETHEUS_UPSTREAM}"; then
    log "apt has no prometheus ${PROMETHEUS_UPSTREAM} in its lists: apt-get update"
    apt-get update -qq || die "apt-get update (needed once to find Debian's prometheus package)"
  fi
  if apt-cache show "prometheus=${PROMETHEUS_DEB_VERSION}" >/dev/null 2>&1; then
    version="${PROMETHEUS_DEB_VERSION}"
  else
    version="$(apt-cache policy prometheus | sed -n 's/^ *Candidate: //p')"
    [[ "${version}" == "${PROMETHEUS_UPSTREAM}"+* ]] \
      || die "Debian serves prometheus ${version:-nothing}, not ${PROMETHEUS_UPSTREAM}: update PROMETHEUS_* in $0"
    log "WARNING: Debian no longer serves prometheus ${PROMETHEUS_DEB_VERSION}; taking ${version} (apt-verified, no pinned sha256)"
  fi
  log "fetching promtool from Debian's prometheus ${version} into ${TOOLS}"
  (cd "${work}" && apt-get download -qq -o APT::Sandbox::User=root "prometheus=${version}") \
    || die "apt-get download prometheus=${version}"
  local deb
  deb="$(echo "${work}"/prometheus_*.deb)"
  if [[ "${version}" == "${PROMETHEUS_DEB_VERSION}" ]]; then
    echo "${PROMETHEUS_DEB_SHA256}  ${deb}" | sha256sum --check --quiet - || die "sha256 of ${deb##*/} differs from the pin"
  fi
  dpkg-deb -x "${deb}" "${work}/root" || die "unpacking ${deb##*/}"
  mkdir -p "$(dirname "${PROMTOOL}")"
  install -m 0755 "${work}/root/usr/bin/promtool" "${PROMTOOL}"
  rm -rf "${work}"
  "${PROMTOOL}" --version 2>&1 | grep -q "version ${PROMETHEUS_UPSTREAM}" || die "${PROMTOOL} is not version ${PROMETHEUS_UPSTREAM}"
}

install_venv
install_promtool
log "tools: $("${PROMTOOL}" --version 2>&1 | head -n1), python packages pinned in ${VENV}"

bin="${VDM_BIN:-target/debug/vdm}"
if [[ ! -x "${bin}" ]]; then
  [[ -z "${VDM_BIN:-}" ]] || die "VDM_BIN=${VDM_BIN} is not an executable"
  log "${bin} missing: cargo build --locked -p vdm"
  cargo build --locked -p vdm || die "cargo build -p vdm"
fi

status=0
"${VENV}/bin/python" -u scripts/check-observability.py --promtool "${PROMTOOL}" --vdm "${bin}" || status=$?
log "took $(( ($(date +%s%N) - start) / 1000000 )) ms in all"
exit "${status}"
