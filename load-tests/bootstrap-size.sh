#!/usr/bin/env bash
# The size of the demo world's bootstrap payload (GET /v1/bootstrap), as
# JSON and as MessagePack, uncompressed and with each content coding the
# gateway offers (gzip, br, zstd): the figures in docs/PERFORMANCE.md.
#
#   load-tests/bootstrap-size.sh [region_id=1]
#
# Starts `vdm all` on a fresh data folder (so the demo world is seeded),
# signs a device in, accepts two of the region's quests so the payload has
# active quests, then runs `vdm-load payload`. Sizes do not depend on the
# build profile, so it uses the debug build (no release build needed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
region="${1:-1}"

cargo build --locked -p vdm -p vdm-load >&2
vdm=target/debug/vdm
load=target/debug/vdm-load
work="$(mktemp -d)"
port=$(( 20000 + RANDOM % 20000 ))
base="http://127.0.0.1:${port}"
cleanup() {
  if [[ -n "${vdm_pid:-}" ]]; then kill "${vdm_pid}" 2>/dev/null || true; fi
  rm -rf "${work}"
}
trap cleanup EXIT

VDM_DATA_DIR="${work}/data" VDM_HTTP_ADDR="127.0.0.1:${port}" VDM_LOG=warn \
  VDM_ADMIN_TOKEN="size-admin-token-0123456789" \
  VDM_JWT_SECRET="size-jwt-secret-0123456789abcdef0123456789" \
  "${vdm}" >"${work}/vdm.log" 2>&1 &
vdm_pid=$!
for _ in $(seq 1 500); do
  grep -q "vdm is ready at" "${work}/vdm.log" && break
  kill -0 "${vdm_pid}" 2>/dev/null || { cat "${work}/vdm.log" >&2; exit 1; }
  sleep 0.02
done
grep -q "vdm is ready at" "${work}/vdm.log" || { echo "vdm not ready after 10 s" >&2; exit 1; }

token=$(curl -fsS -X POST "${base}/v1/auth/device" -H 'content-type: application/json' \
  -d '{"device_id":"payload-size"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["session_token"])')
quests=$(curl -fsS "${base}/v1/quests?region_id=${region}&limit=2" -H "authorization: Bearer ${token}" \
  | python3 -c 'import json,sys; print(" ".join(str(q["id"]) for q in json.load(sys.stdin)["items"]))')
for id in ${quests}; do
  curl -fsS -X POST "${base}/v1/quests/${id}/accept" -H "authorization: Bearer ${token}" >/dev/null
done

echo "vdm $(git rev-parse --short HEAD); demo world; region ${region}; active quests: ${quests:-none}"
curl -fsS "${base}/v1/bootstrap?region_id=${region}" -H "authorization: Bearer ${token}" | python3 -c '
import json, sys
body = json.load(sys.stdin)
print("parts: " + ", ".join("%s (%d)" % (k, len(v)) if isinstance(v, list) else k for k, v in body.items()))'
"${load}" payload "${base}" "/v1/bootstrap?region_id=${region}" --token "${token}"
