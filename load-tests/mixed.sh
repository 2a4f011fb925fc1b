#!/usr/bin/env bash
# Sustained mixed load: a population of Unity clients (vdm-load clients:
# device auth, bootstrap, quest reads and accept/abandon, profile and
# inventory reads, NPC reads and talks, telemetry uploads, an open socket
# each) against `vdm all` on
# Postgres and Redis, for a fixed time; prints throughput, latency per kind,
# errors, and RSS every 5 s with its growth after warm-up.
# Uses a fresh database (vdm_mixed) and Redis key prefix, dropped at the end.
# Rate limits are off (VDM_RATE_LIMITS=off): every client signs in from one IP.
#
#   load-tests/mixed.sh [duration_s] [clients] [think_ms]
#
# VDM_PROFILE=dev uses debug builds (CI's short run: a check that nothing
# fails and memory stays flat, not a throughput figure); MAX_RSS_GROWTH_MB
# fails the run when the RSS grows more than that after warm-up;
# REPORT_EVERY_S prints throughput, latency, errors and RSS for each
# interval of that many seconds (a soak: REPORT_EVERY_S=60 ... 1800 200 200).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
duration="${1:-120}"
clients="${2:-200}"
think="${3:-200}"
profile="${VDM_PROFILE:-release}"

cargo build --profile "${profile}" --locked -p vdm -p vdm-load >&2
target_dir="${CARGO_TARGET_DIR:-target}"
case "${profile}" in
  dev) vdm="${target_dir}/debug/vdm"; load="${target_dir}/debug/vdm-load" ;;
  *) vdm="${target_dir}/${profile}/vdm"; load="${target_dir}/${profile}/vdm-load" ;;
esac
growth=()
[[ -n "${MAX_RSS_GROWTH_MB:-}" ]] && growth=(--max-rss-growth-mb "${MAX_RSS_GROWTH_MB}")
every=()
[[ -n "${REPORT_EVERY_S:-}" ]] && every=(--every "${REPORT_EVERY_S}")
work="$(mktemp -d)"
port=18082
db=vdm_mixed
prefix="mixed$(date +%s)"
admin="bench-admin-token-0123456789"
cleanup() {
  [[ -n "${vdm_pid:-}" ]] && kill "${vdm_pid}" 2>/dev/null && wait "${vdm_pid}" 2>/dev/null || true
  psql -h 127.0.0.1 -U postgres -d test -qc "DROP DATABASE IF EXISTS ${db}" >/dev/null 2>&1 || true
  redis-cli -h 127.0.0.1 --scan --pattern "${prefix}:*" | xargs -r redis-cli -h 127.0.0.1 del >/dev/null 2>&1 || true
  rm -rf "${work}"
}
trap cleanup EXIT

psql -h 127.0.0.1 -U postgres -d test -qc "DROP DATABASE IF EXISTS ${db}" >/dev/null
psql -h 127.0.0.1 -U postgres -d test -qc "CREATE DATABASE ${db}" >/dev/null

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "vdm: $(git rev-parse --short HEAD), ${profile} build; Postgres + Redis; ${clients} clients, ${duration} s, think ${think} ms"
echo

VDM_DATA_DIR="${work}/data" VDM_HTTP_ADDR="127.0.0.1:${port}" VDM_ADMIN_TOKEN="${admin}" \
  VDM_JWT_SECRET="bench-jwt-secret-0123456789abcdef0123456789" VDM_LOG=warn VDM_RATE_LIMITS=off \
  DATABASE_URL="postgres://postgres@127.0.0.1:5432/${db}" REDIS_URL="redis://127.0.0.1:6379" \
  VDM_CACHE_PREFIX="${prefix}" VDM_METRICS_INTERVAL_SECS=10 \
  "${vdm}" >"${work}/vdm.log" 2>&1 &
vdm_pid=$!
until curl -fs "http://127.0.0.1:${port}/ready" >/dev/null 2>&1; do sleep 0.05; done
echo "idle RSS after start: $(awk '/VmRSS/ {printf "%.1f MB", $2/1024}' /proc/${vdm_pid}/status)"

"${load}" clients "http://127.0.0.1:${port}" --clients "${clients}" --duration "${duration}" \
  --think-ms "${think}" --pid "${vdm_pid}" "${growth[@]}" "${every[@]}"
echo
echo "errors in the vdm log: $(grep -c ' ERROR ' "${work}/vdm.log" || true)"
