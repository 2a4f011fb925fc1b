#!/usr/bin/env bash
# Fault drills against the real processes (see scripts/faults.py): a private
# Postgres and Redis, every service as its own process, load throughout;
# Redis frozen and killed, a service SIGKILLed, Postgres restarted, the
# gateway SIGTERMed; then every acknowledged write looked up. Needs root
# (the private Postgres runs as the postgres user) and Debian's postgresql
# 15 and redis-server, as on the CI machines.
#
#   scripts/faults.sh [--json results.json] [--phase-seconds 8]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --locked -p vdm >&2
exec python3 scripts/faults.py --vdm target/release/vdm "$@"
