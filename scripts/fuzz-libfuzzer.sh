#!/usr/bin/env bash
# Coverage-guided fuzzing with cargo-fuzz (libFuzzer + AddressSanitizer) over
# the same targets as scripts/fuzz.sh (the vdm-fuzz functions), for a fixed
# time each, starting from the seed corpus in fuzz/corpus/<target>/ (copied:
# what libFuzzer adds stays in fuzz/libfuzzer/corpus/, ignored by git).
# Needs the nightly toolchain (rustup toolchain install nightly) and
# installs cargo-fuzz from crates.io when missing. A crash leaves its input
# in fuzz/libfuzzer/artifacts/<target>/ and fails the script.
#
#   scripts/fuzz-libfuzzer.sh [seconds_per_target=60] [target ...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(body_json body_msgpack query ws_envelope rumor_local rumor_llm_answer telemetry)

cargo +nightly --version >/dev/null 2>&1 || { echo "the nightly toolchain is required: rustup toolchain install nightly" >&2; exit 2; }
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz

dir=fuzz/libfuzzer
cargo +nightly fuzz build --fuzz-dir "${dir}" -O >&2

status=0
printf '%-18s %10s %12s %8s %s\n' target seconds executions cov result
for target in "${targets[@]}"; do
  mkdir -p "${dir}/corpus/${target}"
  cp -n fuzz/corpus/"${target}"/* "${dir}/corpus/${target}/" 2>/dev/null || true
  log="$(mktemp)"
  if cargo +nightly fuzz run --fuzz-dir "${dir}" -O "${target}" "${dir}/corpus/${target}" -- \
      -max_total_time="${seconds}" -max_len=65536 -timeout=2 -rss_limit_mb=2048 >"${log}" 2>&1; then
    result=ok
  else
    result="FAILED (see ${dir}/artifacts/${target}/)"
    status=1
  fi
  line=$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "${log}" | tail -n 1)
  execs=$(sed -E 's/^#([0-9]+).*/\1/' <<<"${line}")
  cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"${line}")
  printf '%-18s %10s %12s %8s %s\n' "${target}" "${seconds}" "${execs:-?}" "${cov:-?}" "${result}"
  [ "${result}" = ok ] || tail -n 30 "${log}" >&2
  rm -f "${log}"
done
exit "${status}"
