#!/usr/bin/env bash
# Benchmarks, side by side on this machine, in one run:
#   1. cold start of `vdm all` to ready, and its idle RSS;
#   2. a bare axum handler serving one quest's JSON from memory (the floor);
#   3. cached GET /v1/quests/{id} through vdm all (gateway -> gRPC -> cache),
#      spread over 10,000 seeded quests, closed loop;
#   4. the same at half of the maximum measured in 3 (paced), for p99;
#   5. a conditional GET of one quest whose ETag matches (304, no body);
#   6. POST /v1/auth/device over 1,000 devices.
# Rounds 2 and 3 alternate twice so drift on a noisy machine shows.
# Rate limits are off (VDM_RATE_LIMITS=off): one token drives the load.
# The VDM_* environment reaches `vdm all` (VDM_EDGE_CACHE_BYTES=0: the
# gateway's edge cache off), CARGO_TARGET_DIR says where the binaries are, and
# BENCH_PORT / BENCH_BASELINE_PORT move the ports (18080 / 18090) off busy ones.
#
#   load-tests/quest-read.sh [duration_s] [connections]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
duration="${1:-10}"
connections="${2:-32}"

cargo build --release --locked -p vdm -p vdm-load >&2
vdm="${CARGO_TARGET_DIR:-target}/release/vdm"
load="${CARGO_TARGET_DIR:-target}/release/vdm-load"
work="$(mktemp -d)"
port="${BENCH_PORT:-18080}"
baseline_port="${BENCH_BASELINE_PORT:-18090}"
admin="bench-admin-token-0123456789"
cleanup() {
  [[ -n "${vdm_pid:-}" ]] && kill "${vdm_pid}" 2>/dev/null || true
  [[ -n "${base_pid:-}" ]] && kill "${base_pid}" 2>/dev/null || true
  rm -rf "${work}"
}
trap cleanup EXIT

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "vdm: $(git rev-parse --short HEAD), release build; ${connections} connections, ${duration} s per run"
echo "edge cache: VDM_EDGE_CACHE_BYTES=${VDM_EDGE_CACHE_BYTES:-default (32 MiB)}"
echo

start_ns=$(date +%s%N)
VDM_DATA_DIR="${work}/data" VDM_HTTP_ADDR="127.0.0.1:${port}" VDM_ADMIN_TOKEN="${admin}" \
  VDM_JWT_SECRET="bench-jwt-secret-0123456789abcdef0123456789" VDM_LOG=warn VDM_RATE_LIMITS=off \
  "${vdm}" >"${work}/vdm.log" 2>&1 &
vdm_pid=$!
until curl -fs "http://127.0.0.1:${port}/ready" >/dev/null 2>&1; do sleep 0.005; done
ready_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
sleep 2
echo "cold start to ready: ${ready_ms} ms (first start: migrations + demo seed; includes 5 ms polling)"
echo "idle RSS after start: $(awk '/VmRSS/ {printf "%.1f MB", $2/1024}' /proc/${vdm_pid}/status)"

"${load}" seed "http://127.0.0.1:${port}" --admin-token "${admin}" --count 10000 --connections 16 | tee "${work}/seed.txt"
range=$(sed -E 's/.*ids ([0-9]+-[0-9]+).*/\1/' "${work}/seed.txt")
token=$(curl -fs -X POST "http://127.0.0.1:${port}/v1/auth/device" -H 'content-type: application/json' \
  -d '{"device_id":"bench"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["session_token"])')
first_id=${range%-*}
curl -fs "http://127.0.0.1:${port}/v1/quests/${first_id}" -H "authorization: Bearer ${token}" >"${work}/quest.json"
echo "quest JSON: $(wc -c <"${work}/quest.json") bytes"
echo "RSS after seeding 10,000 quests: $(awk '/VmRSS/ {printf "%.1f MB", $2/1024}' /proc/${vdm_pid}/status)"

"${load}" baseline --addr "127.0.0.1:${baseline_port}" --body-file "${work}/quest.json" 2>/dev/null &
base_pid=$!
until curl -fs "http://127.0.0.1:${baseline_port}/" >/dev/null 2>&1; do sleep 0.01; done

run() { # label, then vdm-load arguments
  local label="$1"; shift
  printf '%-34s ' "${label}"
  "${load}" "$@" 2>/dev/null | tail -n1
}

echo
echo "warming the quest cache (every id read once)..."
"${load}" get "http://127.0.0.1:${port}" "/v1/quests/{id}" --ids "${range}" --token "${token}" \
  --connections "${connections}" --duration 3 --warmup 0 >/dev/null 2>&1
echo
for round in 1 2; do
  run "baseline (bare axum, round ${round})" get "http://127.0.0.1:${baseline_port}" "/quest" \
    --connections "${connections}" --duration "${duration}" | tee -a "${work}/base.txt"
  run "GET /v1/quests/{id} (round ${round})" get "http://127.0.0.1:${port}" "/v1/quests/{id}" --ids "${range}" \
    --token "${token}" --connections "${connections}" --duration "${duration}" | tee -a "${work}/gw.txt"
done
max=$(sed -E 's/.*rate ([0-9]+) req.*/\1/' "${work}/gw.txt" | sort -n | tail -n1)
base=$(sed -E 's/.*rate ([0-9]+) req.*/\1/' "${work}/base.txt" | sort -n | tail -n1)
half=$(( max / 2 ))
run "GET /v1/quests/{id} at ${half}/s" get "http://127.0.0.1:${port}" "/v1/quests/{id}" --ids "${range}" \
  --token "${token}" --connections "${connections}" --duration "${duration}" --rate "${half}"
etag=$(curl -fs -D - -o /dev/null "http://127.0.0.1:${port}/v1/quests/${first_id}" -H "authorization: Bearer ${token}" \
  | tr -d '\r' | awk 'tolower($1) == "etag:" {print $2}')
run "GET /v1/quests/{id} If-None-Match (304)" get "http://127.0.0.1:${port}" "/v1/quests/${first_id}" \
  --token "${token}" --if-none-match "${etag}" --connections "${connections}" --duration "${duration}" \
  | tee "${work}/conditional.txt"
run "POST /v1/auth/device (1000 devices)" device-auth "http://127.0.0.1:${port}" --devices 1000 \
  --connections "${connections}" --duration "${duration}"
echo
echo "best gateway / best baseline: $(python3 -c "print(f'{${max}/${base}:.2f}')") (${max} vs ${base} req/s)"
conditional=$(sed -E 's/.*rate ([0-9]+) req.*/\1/' "${work}/conditional.txt")
echo "conditional (304) / best baseline: $(python3 -c "print(f'{${conditional}/${base}:.2f}')") (${conditional} vs ${base} req/s)"
echo "RSS at the end: $(awk '/VmRSS/ {printf "%.1f MB", $2/1024}' /proc/${vdm_pid}/status)"
