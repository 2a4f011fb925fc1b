#!/usr/bin/env bash
# Many sockets across gateway replicas sharing Redis, and region pushes that
# reach all of them:
#   1. `vdm all` (every service, plus a gateway used for sign-ins and posts)
#      on Postgres (a fresh database) and Redis (a fresh key prefix);
#   2. G more gateways (`vdm gateway`), each its own process (a process may
#      open at most ~20,000 files here, so one gateway holds up to ~19,000);
#   3. one `vdm-load sockets` client process per gateway (same file limit),
#      each opening its share of the sockets over 8 loopback source
#      addresses, every socket subscribed to region 2;
#   4. P world events for region 2 posted through `vdm all`'s gateway: each
#      travels world service -> Redis stream -> every gateway -> its sockets.
# Reports sockets open, each gateway's RSS per idle socket, and the delivery
# latency (world service's stamp -> arrival) over every socket and push.
#
#   load-tests/sockets-replicas.sh [total_sockets] [gateways] [pushes]
#   (SKIP_BUILD=1 uses the release binaries as they are)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
total="${1:-100000}"
gateways="${2:-6}"
pushes="${3:-5}"
per=$(( (total + gateways - 1) / gateways ))

[[ "${SKIP_BUILD:-}" == 1 ]] || cargo build --release --locked -p vdm -p vdm-load >&2
vdm=target/release/vdm
load=target/release/vdm-load
work="$(mktemp -d)"
db="vdm_sockets_$$"
prefix="sockets$$"
admin="bench-admin-token-0123456789"
jwt="bench-jwt-secret-0123456789abcdef0123456789"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "${pid}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  dropdb -h 127.0.0.1 -U postgres --if-exists "${db}" 2>/dev/null || true
  redis-cli -h 127.0.0.1 --scan --pattern "${prefix}:*" | xargs -r -n 1000 redis-cli -h 127.0.0.1 del >/dev/null || true
  rm -rf "${work}"
}
trap cleanup EXIT

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), open files per process $(ulimit -n)"
echo "vdm: $(git rev-parse --short HEAD), release build; ${total} sockets over ${gateways} gateways (${per} each), ${pushes} pushes"

createdb -h 127.0.0.1 -U postgres "${db}"
common=(
  DATABASE_URL="postgres://postgres@127.0.0.1:5432/${db}" REDIS_URL="redis://127.0.0.1:6379"
  VDM_CACHE_PREFIX="${prefix}" VDM_ADMIN_TOKEN="${admin}" VDM_JWT_SECRET="${jwt}"
  VDM_RATE_LIMITS=off VDM_LOG=warn VDM_DB_MAX_CONNECTIONS=8 VDM_RUMOR_TICK_INTERVAL_MS=0
)
env "${common[@]}" VDM_DATA_DIR="${work}/data" VDM_HTTP_ADDR=127.0.0.1:18080 \
  VDM_WORLD_GRPC_ADDR=127.0.0.1:18191 VDM_NPC_GRPC_ADDR=127.0.0.1:18192 VDM_QUEST_GRPC_ADDR=127.0.0.1:18193 \
  VDM_RUMOR_GRPC_ADDR=127.0.0.1:18194 VDM_METRICS_GRPC_ADDR=127.0.0.1:18195 VDM_PLAYER_GRPC_ADDR=127.0.0.1:18196 \
  "${vdm}" all >"${work}/all.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 600); do grep -q "vdm is ready" "${work}/all.log" && break; sleep 0.1; done
grep -q "vdm is ready" "${work}/all.log" || { cat "${work}/all.log"; echo "vdm all did not start" >&2; exit 1; }

gateway_pids=()
for g in $(seq 1 "${gateways}"); do
  env "${common[@]}" VDM_DB_MAX_CONNECTIONS=4 VDM_HTTP_ADDR="127.0.0.1:$((18100 + g))" \
    VDM_WORLD_URL=http://127.0.0.1:18191 VDM_NPC_URL=http://127.0.0.1:18192 VDM_QUEST_URL=http://127.0.0.1:18193 \
    VDM_RUMOR_URL=http://127.0.0.1:18194 VDM_METRICS_URL=http://127.0.0.1:18195 VDM_PLAYER_URL=http://127.0.0.1:18196 \
    "${vdm}" gateway >"${work}/gateway-${g}.log" 2>&1 &
  pids+=($!)
  gateway_pids+=($!)
done
for g in $(seq 1 "${gateways}"); do
  until curl -fs "http://127.0.0.1:$((18100 + g))/ready" >/dev/null 2>&1; do sleep 0.1; done
done
echo "services and ${gateways} gateways ready"

clients=()
for g in $(seq 1 "${gateways}"); do
  "${load}" sockets "http://127.0.0.1:$((18100 + g))" --sockets "${per}" --devices-from $(( (g - 1) * per )) \
    --sources 8 --region 2 --hold 5 --pid "${gateway_pids[$((g - 1))]}" \
    --ready-file "${work}/ready-${g}" --listen-pushes "${pushes}" --wait 600 \
    --latencies-out "${work}/latencies-${g}" >"${work}/client-${g}.log" 2>&1 &
  pids+=($!)
  clients+=($!)
done
started=$(date +%s)
for g in $(seq 1 "${gateways}"); do
  until [[ -s "${work}/ready-${g}" ]]; do
    if ! kill -0 "${clients[$((g - 1))]}" 2>/dev/null; then cat "${work}/client-${g}.log"; exit 1; fi
    sleep 0.5
  done
done
open=$(cat "${work}"/ready-* | awk '{s += $1} END {print s}')
echo "sockets open: ${open}/$((per * gateways)) in $(( $(date +%s) - started )) s (sign-ins included)"
grep -h "gateway RSS\|failed" "${work}"/client-*.log | sed 's/^/  /'
# Let the last sign-ins and subscriptions settle before the pushes.
sleep 10
echo "redis: $(redis-cli -h 127.0.0.1 info memory | awk -F: '/^used_memory_human/ {print $2}' | tr -d '\r') used"

for n in $(seq 1 "${pushes}"); do
  curl -fs -X POST http://127.0.0.1:18080/v1/world/events -H "authorization: Bearer ${admin}" \
    -H 'content-type: application/json' \
    -d "{\"kind\":\"storm\",\"text\":\"push ${n} to every replica\",\"region_ids\":[2]}" >/dev/null
  sleep 1
done
for pid in "${clients[@]}"; do wait "${pid}" || true; done
grep -h "pushes delivered" "${work}"/client-*.log | sed 's/^/  /'
python3 - "${work}" "$((open * pushes))" <<'EOF'
import glob, sys
values = sorted(int(v) for f in glob.glob(sys.argv[1] + "/latencies-*") for v in open(f).read().split())
expected = int(sys.argv[2])
if not values:
    sys.exit("no push arrived")
pct = lambda p: values[min(int(len(values) * p), len(values) - 1)] / 1000
print(f"pushes delivered {len(values)}/{expected} across replicas: p50 {pct(0.5):.1f} ms  p99 {pct(0.99):.1f} ms  max {values[-1] / 1000:.1f} ms")
sys.exit(0 if len(values) == expected else 1)
EOF
