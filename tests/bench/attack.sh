#!/bin/bash
# The attack soak (tests/bench/attack.py): lakeftpd under password guessing,
# silent connections (with and without PROXY headers), slowloris, a
# health-port flood, PASV hoarding and random command lines from several
# 127.x addresses, while 50 devices upload 4 KiB files; compared with the
# same devices without the attack. Loopback only, bounded in time.
#   tests/bench/attack.sh                 # 60 s baseline + 5 min attack
#   tests/bench/attack.sh --seconds 30    # the CI version (tests/run.sh)
#   tests/bench/attack.sh --strict        # also fail on a missed 1 s goal
# LAKEFTPD_BIN picks the binary (default: target/release/lakeftpd, built
# here): figures from a debug build (hashing alone is several times slower)
# say nothing about the appliance.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${LAKEFTPD_BIN:-}" ]; then
    cargo build --release --quiet
    export LAKEFTPD_BIN="$PWD/target/release/lakeftpd"
fi
ulimit -n "$(ulimit -Hn)"
exec python3 tests/bench/attack.py "$@"
