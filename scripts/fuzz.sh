#!/usr/bin/env bash
# Runs every fuzz target for a fixed time on the stable toolchain and prints
# a summary table (docs/FUZZING.md). Usage: scripts/fuzz.sh [seconds_per_target] [target]
# Exits non-zero when a target crashed, hung, ran out of memory or had an
# input slower than 1 s; the inputs are saved under fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
what="${2:-all}"
cargo build --release -p vdm-fuzz
exec target/release/vdm-fuzz "$what" --seconds "$seconds" --seed "${FUZZ_SEED:-1}"
