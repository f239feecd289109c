#!/usr/bin/env bash
# Delivery throughput of lakeftpd against a local s3s-fs, and lakeftpd's peak
# RSS during a 1 GiB multipart upload. Not part of the timed tests.
#
#   bash tests/s3_throughput.sh [SMALL_FILES] [BIG_MIB]     (defaults 2000, 1024)
#
# Method: files are uploaded over FTP with ack = disk while S3 is down, then
# lakeftpd is SIGKILLed, s3s-fs started, and lakeftpd restarted: it replays
# the spool with nothing else to do, so the time until the spool is empty is
# pure delivery time (signing, MD5 pass, HTTP to s3s-fs, spool removal).
# Then one more 1 GiB upload end to end with ack = s3 (226 after S3 confirmed).
# Peak RSS is VmHWM from /proc/PID/status of the lakeftpd process concerned.
set -euo pipefail

SMALL=${1:-2000}
BIG_MIB=${2:-1024}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/lakeftpd-throughput.XXXXXX)
S3S_FS=${S3S_FS:-$(command -v s3s-fs || echo "$HOME/.cargo/bin/s3s-fs")}
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
now() { date +%s.%N; }
metas() { find "$WORK/spool" -name '*.meta' | wc -l; }
wait_spool_empty() { while [ "$(metas)" -gt 0 ]; do sleep 0.02; done; }

cd "$ROOT"
cargo build --release --quiet
BIN=${LAKEFTPD_BIN:-$ROOT/target/release/lakeftpd}

S3PORT=$(free_port)
mkdir -p "$WORK/s3/lake" "$WORK/files"
export AWS_ACCESS_KEY_ID=AKIATHROUGHPUT AWS_SECRET_ACCESS_KEY=throughput-secret
start_s3() {
    "$S3S_FS" --host 127.0.0.1 --port "$S3PORT" --access-key "$AWS_ACCESS_KEY_ID" \
        --secret-key "$AWS_SECRET_ACCESS_KEY" "$WORK/s3" >/dev/null 2>&1 &
    S3PID=$!; PIDS+=("$S3PID"); wait_port "$S3PORT"
}
stop_s3() { kill -9 "$S3PID"; wait "$S3PID" 2>/dev/null || true; }

HASH=$(echo pw | "$BIN" passwd)
write_config() { # $1 = ack, $2 = s3_timeout
    cat >"$WORK/conf" <<EOF
listen = 127.0.0.1:0
root = $WORK/home
passive_ports = 47000-47099
spool = $WORK/spool
s3_bucket = lake
s3_endpoint = http://127.0.0.1:$S3PORT
s3_key = user={user}/dt={yyyy}-{mm}-{dd}/{path}
ack = $1
s3_timeout = $2
log_level = warn
[user dev]
password = $HASH
EOF
}
start_lake() {
    "$BIN" serve --config "$WORK/conf" --log-level info 2>"$WORK/lake.log" &
    LAKEPID=$!; PIDS+=("$LAKEPID")
    for _ in $(seq 200); do grep -q 'listening on' "$WORK/lake.log" && break; sleep 0.05; done
    FTPPORT=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$WORK/lake.log" | head -1)
}
kill_lake() { kill -9 "$LAKEPID"; wait "$LAKEPID" 2>/dev/null || true; }
hwm() { awk '/VmHWM/ {print $2/1024 " MiB"}' "/proc/$1/status"; }

echo "== $SMALL files of 4 KiB"
for i in $(seq "$SMALL"); do head -c 4096 /dev/urandom >"$WORK/files/s$i"; done
write_config disk 20s
start_lake
# One curl, one control connection, many STORs.
(cd "$WORK/files" && curl -sS --ftp-create-dirs -T "{$(seq -s, -f 's%g' 1 "$SMALL")}" \
    "ftp://dev:pw@127.0.0.1:$FTPPORT/small/" -o /dev/null)
echo "queued: $(metas)"
kill_lake
start_s3
T0=$(now); start_lake; wait_spool_empty; T1=$(now)
echo "delivered $SMALL files in $(echo "$T1 - $T0" | bc) s: $(echo "$SMALL / ($T1 - $T0)" | bc) files/s (includes start-up)"
echo "lakeftpd peak RSS: $(hwm "$LAKEPID")"
kill_lake
rm -rf "$WORK/home/dev/small"

echo "== one file of $BIG_MIB MiB (multipart, 16 MiB parts)"
head -c $((BIG_MIB << 20)) /dev/urandom >"$WORK/files/big"
stop_s3
start_lake
curl -sS -T "$WORK/files/big" "ftp://dev:pw@127.0.0.1:$FTPPORT/big" -o /dev/null
kill_lake
start_s3
T0=$(now); start_lake; wait_spool_empty; T1=$(now)
echo "delivered in $(echo "$T1 - $T0" | bc) s: $(echo "$BIG_MIB / ($T1 - $T0)" | bc) MiB/s"
echo "lakeftpd peak RSS during the multipart upload: $(hwm "$LAKEPID")"
cmp "$WORK/files/big" "$WORK/s3/lake/user=dev/dt=$(date -u +%Y-%m-%d)/big" && echo "object identical"
kill_lake

echo "== the same file end to end, ack = s3 (FTP upload, then S3, then 226)"
write_config s3 10m
start_lake
T0=$(now)
curl -sS -T "$WORK/files/big" "ftp://dev:pw@127.0.0.1:$FTPPORT/big2" -o /dev/null
T1=$(now)
echo "226 after $(echo "$T1 - $T0" | bc) s: $(echo "$BIG_MIB / ($T1 - $T0)" | bc) MiB/s end to end"
echo "lakeftpd peak RSS (FTP receive + multipart upload): $(hwm "$LAKEPID")"
kill_lake
