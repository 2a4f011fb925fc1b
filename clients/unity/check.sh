#!/usr/bin/env bash
# Checks the Unity SDK against a live server, as CI does:
#   1. starts vdm (embedded default) twice on free ports in a temp dir: one
#      with default limits, one with tight rate limits (for the retry tests),
#      a 1 s socket heartbeat and 12 s sessions;
#   2. regenerates the SDK from the live /v1/openapi.json into a temp dir
#      and fails if the committed Runtime/Generated differs (a contract
#      change without an SDK update);
#   3. generates from generator/fixture.json (one of every schema construct)
#      and compiles the result; checks every package file has its Unity .meta;
#   4. compiles Runtime/ and Tests/ with Mono's mcs (C# 7.2, Newtonsoft.Json);
#   5. runs the tests against the servers (`N passed, N failed`);
#   6. stops the servers.
# Usage: clients/unity/check.sh [path/to/vdm]   (default: target/debug/vdm)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "${here}/../.." && pwd)"
vdm="${1:-${root}/target/debug/vdm}"

die() { printf 'clients/unity/check.sh: %s\n' "$*" >&2; exit 1; }

[ -x "${vdm}" ] || die "no vdm binary at ${vdm} (build it, or pass its path)"
for tool in mcs mono python3 curl; do
  command -v "${tool}" >/dev/null || die "${tool} is missing (apt-get install mono-devel libnewtonsoft-json-cil-dev python3 curl)"
done
newtonsoft="${NEWTONSOFT_DLL:-$(find /usr/lib/cli /usr/lib/mono -name Newtonsoft.Json.dll 2>/dev/null | sort | head -n1)}"
[ -n "${newtonsoft}" ] && [ -f "${newtonsoft}" ] || die "Newtonsoft.Json.dll not found (apt-get install libnewtonsoft-json-cil-dev, or set NEWTONSOFT_DLL)"

started=$(date +%s)
work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "${pid}" 2>/dev/null || true
    wait "${pid}" 2>/dev/null || true
  done
  rm -rf "${work}"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

admin_token="sdk-check-$(python3 -c 'import secrets; print(secrets.token_hex(12))')"

# start NAME OUT_VAR [VAR=value ...]: starts vdm with a data dir of its own
# and sets OUT_VAR to its URL. Not called in $(...): the server's pid must
# reach this shell's `pids`, or the cleanup would not stop it.
start() {
  local name="$1" out="$2"; shift 2
  local port; port="$(free_port)"
  mkdir -p "${work}/${name}"
  env VDM_HTTP_ADDR="127.0.0.1:${port}" VDM_DATA_DIR="${work}/${name}" VDM_ADMIN_TOKEN="${admin_token}" \
    VDM_RUMOR_TICK_INTERVAL_MS=0 "$@" "${vdm}" >"${work}/${name}.log" 2>&1 &
  pids+=("$!")
  printf -v "${out}" 'http://127.0.0.1:%s' "${port}"
}

wait_ready() {
  local url="$1" name="$2"
  for _ in $(seq 1 300); do
    curl -fsS "${url}/ready" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  cat "${work}/${name}.log" >&2
  die "vdm (${name}) did not become ready at ${url}"
}

echo "==> starting vdm (${vdm})"
start main url
start limited limited VDM_RATE_READ=2/2 VDM_RATE_WRITE=1/1 VDM_WS_HEARTBEAT_MS=1000 VDM_SESSION_TTL_SECS=12
wait_ready "${url}" main
wait_ready "${limited}" limited
echo "vdm at ${url}; with tight rate limits at ${limited}"

echo "==> generated code matches the live contract"
python3 "${here}/generator/generate.py" "${url}/v1/openapi.json" "${work}/generated" >/dev/null
if ! diff -ru --exclude='*.meta' "${here}/Runtime/Generated" "${work}/generated" >"${work}/drift.diff"; then
  head -n 60 "${work}/drift.diff" >&2
  die "contract changed: run python3 clients/unity/generator/generate.py http://<host:port>/v1/openapi.json against a server built from this tree, and commit clients/unity/Runtime/Generated"
fi
echo "Runtime/Generated is what the generator makes of $(grep -o 'contract v1-[0-9a-f]*' "${here}/Runtime/Generated/Pushes.cs" | head -n1)"

echo "==> the generator handles every schema construct it knows (generator/fixture.json)"
python3 "${here}/generator/generate.py" "${here}/generator/fixture.json" "${work}/fixture" >/dev/null
mapfile -t handwritten < <(find "${here}/Runtime" -name '*.cs' -not -path '*/Generated/*' | sort)
mcs -langversion:7.2 -nologo -warnaserror -target:library -out:"${work}/fixture.dll" \
  -r:"${newtonsoft}" -r:System.Net.Http.dll "${work}"/fixture/*.cs "${handwritten[@]}" \
  || die "code generated from generator/fixture.json does not compile"
echo "the fixture's code compiles"

echo "==> every package file has a Unity .meta"
python3 "${here}/generator/metas.py" --check || die "missing .meta files: run python3 clients/unity/generator/metas.py and commit them"

echo "==> compiling Runtime/ and Tests/ (mcs -langversion:7.2)"
out="${work}/bin"
mkdir -p "${out}"
cp "${newtonsoft}" "${out}/"
mapfile -t runtime < <(find "${here}/Runtime" -name '*.cs' | sort)
mapfile -t tests < <(find "${here}/Tests" -name '*.cs' | sort)
mcs -langversion:7.2 -nologo -warnaserror -target:library -out:"${out}/Vdm.Client.dll" \
  -r:"${newtonsoft}" -r:System.Net.Http.dll "${runtime[@]}" || die "Runtime/ does not compile"
mcs -langversion:7.2 -nologo -target:exe -out:"${out}/Vdm.Client.Tests.exe" \
  -r:"${out}/Vdm.Client.dll" -r:"${newtonsoft}" -r:System.Net.Http.dll -r:System.IO.Compression.dll "${tests[@]}" || die "Tests/ do not compile"

echo "==> tests against the live server"
status=0
VDM_URL="${url}" VDM_LIMITED_URL="${limited}" VDM_ADMIN_TOKEN="${admin_token}" \
  mono --debug "${out}/Vdm.Client.Tests.exe" || status=$?
echo "clients/unity/check.sh took $(( $(date +%s) - started )) s"
[ "${status}" -eq 0 ] || die "SDK tests failed"
