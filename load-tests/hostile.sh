#!/usr/bin/env bash
# One hostile player against one honest one, on `vdm all` with the
# production rate limits (on, defaults), in one run:
#   1. the honest player alone: paced cached reads of a quest (GET
#      /v1/quests/{id}), its latency and errors;
#   2. the same while a hostile player, from the same machine, floods as
#      fast as it can with requests that fail on their input (a 17,000
#      character cursor on the quest list, which an unbounded error message
#      used to turn into a transport failure of the quest service);
#   3. the honest player alone again.
# The honest player's success rate must stay at 100 %; its latency is
# printed for each round. Its default rate, 80 req/s, is under one
# player's read quota (100/s). Both load generators run on the same cores as the
# server, so round 2 also measures the attacker's client eating CPU.
#
#   load-tests/hostile.sh [duration_s] [victim_rate] [attacker_connections]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
duration="${1:-10}"
rate="${2:-80}"
attackers="${3:-8}"

cargo build --release --locked -p vdm -p vdm-load >&2
vdm=target/release/vdm
load=target/release/vdm-load
work="$(mktemp -d)"
port=18080
admin="bench-admin-token-0123456789"
cleanup() {
  [[ -n "${vdm_pid:-}" ]] && kill "${vdm_pid}" 2>/dev/null || true
  [[ -n "${attack_pid:-}" ]] && kill "${attack_pid}" 2>/dev/null || true
  rm -rf "${work}"
}
trap cleanup EXIT

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "vdm: $(git rev-parse --short HEAD), release build, production rate limits; ${duration} s per round"
echo

VDM_DATA_DIR="${work}/data" VDM_HTTP_ADDR="127.0.0.1:${port}" VDM_ADMIN_TOKEN="${admin}" \
  VDM_JWT_SECRET="bench-jwt-secret-0123456789abcdef0123456789" VDM_LOG=warn \
  "${vdm}" >"${work}/vdm.log" 2>&1 &
vdm_pid=$!
until curl -fs "http://127.0.0.1:${port}/ready" >/dev/null 2>&1; do sleep 0.01; done

token_of() {
  curl -fs -X POST "http://127.0.0.1:${port}/v1/auth/device" -H 'content-type: application/json' \
    -d "{\"device_id\":\"$1\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["session_token"])'
}
victim=$(token_of honest-player)
attacker=$(token_of hostile-player)
cursor=$(python3 -c 'print("A" * 17000)')

honest() { # label
  echo "== $1: honest player, ${rate} req/s paced, cached GET /v1/quests/{id} (demo quests 1-8)"
  "${load}" get "http://127.0.0.1:${port}" "/v1/quests/{id}" --ids 1-8 --token "${victim}" \
    --connections 4 --rate "${rate}" --duration "${duration}" | tail -4
}

honest "alone"
echo
echo "== hostile player: ${attackers} connections, closed loop, GET /v1/quests?cursor=<17,000 chars>"
"${load}" get "http://127.0.0.1:${port}" "/v1/quests?cursor=${cursor}" --token "${attacker}" \
  --connections "${attackers}" --duration "$((duration + 2))" --warmup 0 >"${work}/attack.txt" 2>&1 &
attack_pid=$!
sleep 1
honest "under attack"
wait "${attack_pid}" || true
attack_pid=""
echo "-- the hostile player's own answers (4xx and 429 expected, no 5xx):"
tail -4 "${work}/attack.txt"
echo
honest "alone again"
