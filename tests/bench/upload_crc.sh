#!/bin/bash
# Bulk binary STOR throughput on tmpfs, for the choice between splice(2)
# (bytes never enter user space; the CRC64NVME is computed by the delivery,
# which re-reads the file) and plain reads and writes (the CRC computed as
# the bytes arrive). One or more binaries, each: a 1 GiB file from /dev/shm
# uploaded with curl to a lakeftpd whose home is on /dev/shm, RUNS times
# (default 3); prints MiB/s per run and the median. Loopback only; each
# upload is bounded by curl --max-time 120.
#   tests/bench/upload_crc.sh BIN [BIN...]     (RUNS=5 SIZE_MIB=1024 to change)
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 LAKEFTPD_BIN [LAKEFTPD_BIN...]" >&2; exit 2; }
runs=${RUNS:-3}
size_mib=${SIZE_MIB:-1024}
work=$(mktemp -d /dev/shm/lakeftpd-upload-crc.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
head -c "$((size_mib * 1024 * 1024))" /dev/urandom >"$work/src.bin"
for bin in "$@"; do
    hash=$(echo bench | "$bin" passwd)
    rm -rf "$work/home" && mkdir -p "$work/home/dev"
    printf 'listen = 127.0.0.1:0\nroot = %s\npassive_ports = 52000-52099\n[user dev]\npassword = %s\npermissions = upload\n' \
        "$work/home" "$hash" >"$work/lakeftpd.conf"
    chmod 600 "$work/lakeftpd.conf"
    "$bin" serve --config "$work/lakeftpd.conf" 2>"$work/log" &
    pid=$!
    for _ in $(seq 100); do grep -q "listening on" "$work/log" && break; sleep 0.05; done
    port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/log" | head -1)
    speeds=()
    for i in $(seq "$runs"); do
        bps=$(curl -sS --max-time 120 -T "$work/src.bin" -w '%{speed_upload}' -o /dev/null \
            "ftp://dev:bench@127.0.0.1:$port/run$i.bin")
        cmp "$work/src.bin" "$work/home/dev/run$i.bin"
        rm -f "$work/home/dev/run$i.bin"
        speeds+=("$(awk -v b="$bps" 'BEGIN { printf "%.0f", b / 1048576 }')")
    done
    kill "$pid" && wait "$pid" 2>/dev/null || true
    pid=
    median=$(printf '%s\n' "${speeds[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
    echo "$bin: ${size_mib} MiB STOR, MiB/s per run: ${speeds[*]}; median $median"
done
