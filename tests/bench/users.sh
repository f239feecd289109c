#!/bin/sh
# The users-file benchmark (tests/bench/users.py): builds the release binary
# unless LAKEFTPD_BIN is set, then runs the bounded measurement (~1 minute).
# BENCH_USERS (default 100000) sets the size of the file.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${LAKEFTPD_BIN:-}" ]; then
    (cd "$here/../.." && cargo build --release --quiet)
    LAKEFTPD_BIN="$here/../../target/release/lakeftpd"
fi
export LAKEFTPD_BIN
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
rm -rf "${BENCH_WORK:-/dev/shm/lakeftpd-bench-users}"
exec timeout 600 python3 "$here/users.py"
