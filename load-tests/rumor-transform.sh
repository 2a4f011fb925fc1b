#!/usr/bin/env bash
# The rumor transform path with a slow upstream, side by side in one run:
# a mock chat-completions server (vdm-load mock-llm) answers every call after
# 200 ms, and `vdm all` uses it (VDM_LLM_URL).
#   1. the upstream called directly, once per retelling (the original's way);
#   2. spreading ticks in every region: retellings per upstream call (batching);
#   3. 1,024 player asks (32 players x 32 NPCs, POST /v1/npcs/{id}/talk),
#      first time: upstream calls per 1,000 asks (single-flight + batching), latency;
#   4. the same asks by 32 other players: answered from the cache.
#
#   load-tests/rumor-transform.sh [delay_ms]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
delay="${1:-200}"

cargo build --release --locked -p vdm -p vdm-load >&2
vdm=target/release/vdm
load=target/release/vdm-load
work="$(mktemp -d)"
port=18081
llm_port=18099
admin="bench-admin-token-0123456789"
cleanup() {
  [[ -n "${vdm_pid:-}" ]] && kill "${vdm_pid}" 2>/dev/null || true
  [[ -n "${llm_pid:-}" ]] && kill "${llm_pid}" 2>/dev/null || true
  rm -rf "${work}"
}
trap cleanup EXIT

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "vdm: $(git rev-parse --short HEAD), release build; upstream delay ${delay} ms"
echo

"${load}" mock-llm --addr "127.0.0.1:${llm_port}" --delay-ms "${delay}" 2>/dev/null &
llm_pid=$!
until curl -fs "http://127.0.0.1:${llm_port}/stats" >/dev/null 2>&1; do sleep 0.01; done
calls() { curl -fs "http://127.0.0.1:${llm_port}/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["calls"])'; }

VDM_DATA_DIR="${work}/data" VDM_HTTP_ADDR="127.0.0.1:${port}" VDM_ADMIN_TOKEN="${admin}" \
  VDM_JWT_SECRET="bench-jwt-secret-0123456789abcdef0123456789" VDM_LOG=warn VDM_RATE_LIMITS=off \
  VDM_LLM_URL="http://127.0.0.1:${llm_port}/v1" VDM_LLM_MODEL=bench VDM_LLM_TIMEOUT_MS=5000 \
  VDM_RUMOR_TICK_INTERVAL_MS=0 \
  "${vdm}" >"${work}/vdm.log" 2>&1 &
vdm_pid=$!
until curl -fs "http://127.0.0.1:${port}/ready" >/dev/null 2>&1; do sleep 0.01; done

echo "== 1. the upstream directly, one call per retelling (20 calls)"
body='{"model":"bench","messages":[{"role":"system","content":"x"},{"role":"user","content":"{\"retellings\":[{\"text\":\"a rumor\"}]}"}]}'
total=0
for _ in $(seq 20); do
  t=$(curl -fs -o /dev/null -w '%{time_total}' -X POST "http://127.0.0.1:${llm_port}/v1/chat/completions" \
    -H 'content-type: application/json' -d "${body}")
  total=$(python3 -c "print(${total} + ${t})")
done
python3 -c "print(f'direct call: mean {${total} / 20 * 1000:.1f} ms per retelling, 1,000 upstream calls per 1,000 asks')"
echo

echo "== 2. spreading ticks, 5 rounds over the 4 demo regions"
before=$(calls)
tellings=0
start=$(date +%s%N)
for round in 1 2 3 4 5; do
  for region in 1 2 3 4; do
    n=$(curl -fs -X POST "http://127.0.0.1:${port}/v1/rumors:tick" -H "authorization: Bearer ${admin}" \
      -H 'content-type: application/json' -d "{\"region_id\":${region},\"seed\":${round}}" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["tellings"])')
    tellings=$((tellings + n))
  done
done
took=$(( ($(date +%s%N) - start) / 1000000 ))
after=$(calls)
echo "ticks: ${tellings} retellings, $((after - before)) upstream calls, ${took} ms for 20 ticks"
echo

echo "== 3. 1,024 player asks, first time (32 players x 32 NPCs)"
"${load}" talk "http://127.0.0.1:${port}" --players 1-32 --npcs 1-32 --connections 32 \
  --stats-url "http://127.0.0.1:${llm_port}/stats"
echo

echo "== 4. the same asks by 32 other players (cached)"
"${load}" talk "http://127.0.0.1:${port}" --players 33-64 --npcs 1-32 --connections 32 \
  --stats-url "http://127.0.0.1:${llm_port}/stats"
echo
echo "vdm RSS at the end: $(awk '/VmRSS/ {printf "%.1f MB", $2/1024}' /proc/${vdm_pid}/status)"
