#!/usr/bin/env bash
# The gRPC hop inside `vdm all`, side by side in one run: the same release
# binary twice, once calling its services in-process (the default,
# VDM_IN_PROCESS_CALLS=true) and once over their loopback HTTP/2 ports
# (VDM_IN_PROCESS_CALLS=false), both serving cached GET /v1/quests/{id}
# over 1,000 seeded quests; rounds alternate so drift on a noisy machine
# shows. Also the server CPU per request of each (from /proc, utime+stime
# over the round). Rate limits are off: one token drives the load.
#
#   load-tests/hop.sh [duration_s] [connections] [rounds]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
duration="${1:-8}"
connections="${2:-64}"
rounds="${3:-3}"

cargo build --release --locked -p vdm -p vdm-load >&2
target="${CARGO_TARGET_DIR:-target}/release"
vdm="${target}/vdm"
load="${target}/vdm-load"
work="$(mktemp -d)"
admin="bench-admin-token-0123456789"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "${pid}" 2>/dev/null || true; done
  rm -rf "${work}"
}
trap cleanup EXIT

echo "machine: $(nproc) cores, $(uname -r); vdm $(git rev-parse --short HEAD), release"
echo "${connections} connections, ${duration} s per round, ${rounds} rounds each, alternated"

start() { # name, port, in_process
  VDM_DATA_DIR="${work}/$1" VDM_HTTP_ADDR="127.0.0.1:$2" VDM_ADMIN_TOKEN="${admin}" \
    VDM_JWT_SECRET="bench-jwt-secret-0123456789abcdef0123456789" VDM_LOG=warn VDM_RATE_LIMITS=off \
    VDM_IN_PROCESS_CALLS="$3" "${vdm}" >"${work}/$1.log" 2>&1 &
  pids+=("$!")
  echo "$!" >"${work}/$1.pid"
  until curl -fs "http://127.0.0.1:$2/ready" >/dev/null 2>&1; do sleep 0.01; done
}
start local 18180 true
start loopback 18190 false

declare -A range token
for name in local loopback; do
  port=$([[ ${name} == local ]] && echo 18180 || echo 18190)
  "${load}" seed "http://127.0.0.1:${port}" --admin-token "${admin}" --count 1000 --connections 16 >"${work}/${name}.seed"
  range[${name}]=$(sed -E 's/.*ids ([0-9]+-[0-9]+).*/\1/' "${work}/${name}.seed")
  token[${name}]=$(curl -fs -X POST "http://127.0.0.1:${port}/v1/auth/device" -H 'content-type: application/json' \
    -d '{"device_id":"bench"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["session_token"])')
  # Every quest read once: the rounds read from the cache.
  "${load}" get "http://127.0.0.1:${port}" "/v1/quests/{id}" --ids "${range[${name}]}" --token "${token[${name}]}" \
    --connections "${connections}" --duration 2 --warmup 0 >/dev/null 2>&1
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
echo
for round in $(seq 1 "${rounds}"); do
  for name in local loopback; do
    port=$([[ ${name} == local ]] && echo 18180 || echo 18190)
    pid=$(cat "${work}/${name}.pid")
    before=$(cpu_ticks "${pid}")
    line=$("${load}" get "http://127.0.0.1:${port}" "/v1/quests/{id}" --ids "${range[${name}]}" \
      --token "${token[${name}]}" --connections "${connections}" --duration "${duration}" 2>/dev/null | tail -n1)
    after=$(cpu_ticks "${pid}")
    rate=$(sed -E 's/.*rate ([0-9]+) req.*/\1/' <<<"${line}")
    cpu_us=$(python3 -c "print(f'{(${after}-${before})/${hz}/max(${rate}*${duration},1)*1e6:.0f}')")
    printf '%-9s round %s: %s | server CPU %s us/request\n' "${name}" "${round}" "${line}" "${cpu_us}"
    echo "${rate}" >>"${work}/${name}.rates"
  done
done
best_local=$(sort -n "${work}/local.rates" | tail -n1)
best_loop=$(sort -n "${work}/loopback.rates" | tail -n1)
echo
echo "best in-process / best loopback: $(python3 -c "print(f'{${best_local}/${best_loop}:.2f}')") (${best_local} vs ${best_loop} req/s)"
for name in local loopback; do
  echo "RSS ${name}: $(awk '/VmRSS/ {printf "%.1f MB", $2/1024}' "/proc/$(cat "${work}/${name}.pid")/status")"
done
