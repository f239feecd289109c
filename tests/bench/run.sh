#!/usr/bin/env bash
# lakeftpd benchmark against vsftpd and pure-ftpd, in one run (issue 6).
#
#   tests/bench/run.sh            # full run: lakeftpd, vsftpd, pure-ftpd (~25 min)
#   tests/bench/run.sh --smoke    # seconds-long run against lakeftpd only (CI);
#                                 # exits non-zero when the load generator sees an error
#   tests/bench/run.sh --only lakeftpd|vsftpd|pure-ftpd   # one server of the full run
#
# Must run as root (creates bench users, a PAM service file, binds port 20 for
# pure-ftpd's active mode). Installs what it needs, idempotently: vsftpd and
# pure-ftpd are fetched with `apt-get download` and unpacked with `dpkg -x`
# under $BENCH_CACHE (they conflict as packages, so neither is installed).
# Everything runs on loopback: servers listen on 127.0.0.1, clients connect
# from 127.1.x.1 addresses. Server homes are on tmpfs (/dev/shm). Every
# scenario is bounded in time; the load generator bounds every loop.
# Output: a table on stdout, raw JSON lines in $OUT/results.jsonl.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
MODE=full
ONLY=""
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) MODE=smoke ;;
        --only) ONLY="$2"; shift ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

BENCH_CACHE="${BENCH_CACHE:-/var/cache/lakeftpd-bench}"
WORK="${BENCH_WORK:-/dev/shm/lakeftpd-bench}"
OUT="${BENCH_OUT:-$WORK/out}"
PASS="bench-$(date +%s)"          # one password for every bench user
LAKE_PORT=2121 VSFTPD_PORT=2122 PURE_PORT=2123
ADDR=127.0.0.1

die() { echo "run.sh: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }
[ "$(id -u)" = 0 ] || die "run as root"

# A process may hold at most 20,000 open files here (a hard limit root
# cannot raise): take all of it, for the servers and the load generator.
ulimit -n "$(ulimit -Hn)"
ulimit -u unlimited 2>/dev/null || true
ulimit -s 8192

rm -rf "$WORK"
mkdir -p "$WORK" "$OUT"
: > "$OUT/results.jsonl"
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

# ---------------------------------------------------------------- builds
log "building lakeftpd (release) and the load generator"
(cd "$REPO" && cargo build --release --quiet) 2> "$OUT/build.log" || { cat "$OUT/build.log" >&2; die "build failed"; }
cargo build --release --quiet --manifest-path "$HERE/loadgen/Cargo.toml" 2>> "$OUT/build.log" \
    || { cat "$OUT/build.log" >&2; die "loadgen build failed"; }
LAKEFTPD="$REPO/target/release/lakeftpd"
LOADGEN="$HERE/loadgen/target/release/loadgen"

# ---------------------------------------------------------------- scenarios
if [ "$MODE" = smoke ]; then
    IDLE_NS="50"; BIG_IDLE=""
    UP_CS="5"; UP_SECS=2
    STORM_N=200; STORM_USERS=2; STORM_PROCS=2
    BULK_BYTES=$((16 << 20))
    SERVERS="lakeftpd"
    FAIL="--fail-on-error"
else
    IDLE_NS="1000 5000"; BIG_IDLE=19000
    UP_CS="50 1000"; UP_SECS=15
    STORM_N=10000; STORM_USERS=100; STORM_PROCS=4
    BULK_BYTES=$((1 << 30))
    SERVERS="lakeftpd vsftpd pure-ftpd"
    FAIL=""
fi
[ -n "$ONLY" ] && SERVERS="$ONLY"
NUSERS=$STORM_USERS

# ---------------------------------------------------------------- peers
install_peers() {
    mkdir -p "$BENCH_CACHE"
    if [ ! -x "$BENCH_CACHE/root/usr/sbin/vsftpd" ] || [ ! -x "$BENCH_CACHE/root/usr/sbin/pure-ftpd" ]; then
        log "fetching vsftpd and pure-ftpd (apt-get download + dpkg -x)"
        (cd "$BENCH_CACHE" && apt-get download vsftpd pure-ftpd >/dev/null 2>&1) \
            || { apt-get update -qq && (cd "$BENCH_CACHE" && apt-get download vsftpd pure-ftpd >/dev/null); }
        for d in "$BENCH_CACHE"/*.deb; do dpkg -x "$d" "$BENCH_CACHE/root"; done
    fi
    # Their shared libraries (only what is missing).
    local missing=()
    for p in libwrap0 libsodium23 libcap2 libpam0g libpam-modules libssl3 libcrypt1 openssl; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 \
            || { apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; }
    fi
    # PAM service for vsftpd: plain pam_unix against /etc/shadow.
    printf 'auth required pam_unix.so\naccount required pam_unix.so\nsession required pam_permit.so\n' \
        > /etc/pam.d/lakeftpd-bench
}

# System users for the peers, with an MD5-crypt password (the issue: the
# peers get the cheaper hash). Idempotent: created once, password reset.
peer_user() {
    local name=$1 home=$2 hash=$3
    id "$name" >/dev/null 2>&1 || useradd -M -d "$home" -s /bin/sh "$name"
    usermod -d "$home" -p "$hash" "$name"
    mkdir -p "$home"; chown "$name:" "$home"
}
make_peer_users() {
    local hash; hash=$(openssl passwd -1 "$PASS")
    peer_user lfbench "$WORK/peer/lfbench" "$hash"
    for i in $(seq -f %03g 0 $((NUSERS - 1))); do peer_user "lfdev$i" "$WORK/peer/lfdev$i" "$hash"; done
}

# ---------------------------------------------------------------- servers
SERVER_PID=""
wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/$ADDR/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
start_lakeftpd() {
    local conf="$WORK/lakeftpd.conf" hash
    hash=$(printf '%s' "$PASS" | "$LAKEFTPD" passwd)
    {
        echo "listen = $ADDR:$LAKE_PORT"
        echo "root = $WORK/lake"
        echo "active_source_port = 0"
        echo "passive_ports = 10000-29999"
        echo "max_sessions = 20000"
        echo "max_sessions_per_ip = 20000"
        echo "idle_timeout = 900s"
        echo "login_fail_delay = 1s"
        printf '[user lfbench]\npassword = %s\npermissions = full\n' "$hash"
        for i in $(seq -f %03g 0 $((NUSERS - 1))); do
            printf '[user lfdev%s]\npassword = %s\npermissions = upload\n' "$i" "$(printf '%s' "$PASS" | "$LAKEFTPD" passwd)"
        done
    } > "$conf"
    mkdir -p "$WORK/lake"
    "$LAKEFTPD" serve --config "$conf" 2> "$OUT/lakeftpd.log" &
    SERVER_PID=$!; PIDS+=("$SERVER_PID")
    for _ in $(seq 100); do grep -q "listening on" "$OUT/lakeftpd.log" && return 0; sleep 0.1; done
    cat "$OUT/lakeftpd.log" >&2; die "lakeftpd did not start"
}
start_vsftpd() {
    mkdir -p "$WORK/empty"
    cat > "$WORK/vsftpd.conf" <<EOF
listen=YES
listen_ipv6=NO
listen_address=$ADDR
listen_port=$VSFTPD_PORT
background=NO
anonymous_enable=NO
local_enable=YES
write_enable=YES
local_umask=022
pam_service_name=lakeftpd-bench
max_clients=30000
max_per_ip=0
idle_session_timeout=900
data_connection_timeout=300
connect_from_port_20=NO
pasv_enable=YES
pasv_min_port=10000
pasv_max_port=29999
secure_chroot_dir=$WORK/empty
xferlog_enable=NO
use_localtime=NO
userlist_enable=NO
tcp_wrappers=NO
seccomp_sandbox=NO
EOF
    LD_LIBRARY_PATH="$BENCH_CACHE/root/usr/lib/x86_64-linux-gnu" \
        "$BENCH_CACHE/root/usr/sbin/vsftpd" "$WORK/vsftpd.conf" 2> "$OUT/vsftpd.log" &
    SERVER_PID=$!; PIDS+=("$SERVER_PID")
    wait_port "$VSFTPD_PORT" || { cat "$OUT/vsftpd.log" >&2; die "vsftpd did not start"; }
}
start_pure-ftpd() {
    # -E: no anonymous; -l unix: /etc/shadow (MD5-crypt); -c/-C: clients
    # and clients per IP; -p: passive ports; -I: idle minutes; -H: no DNS.
    "$BENCH_CACHE/root/usr/sbin/pure-ftpd" -S "$ADDR,$PURE_PORT" -E -l unix -c 30000 -C 30000 \
        -p 10000:29999 -I 15 -H -4 2> "$OUT/pure-ftpd.log" &
    SERVER_PID=$!; PIDS+=("$SERVER_PID")
    wait_port "$PURE_PORT" || { cat "$OUT/pure-ftpd.log" >&2; die "pure-ftpd did not start"; }
}
stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    # Forking servers: end the sessions they left (children of this server only).
    pkill -P "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    sleep 1
}

# Waits until the server's process tree is back to its idle size (forking
# servers reap sessions asynchronously).
settle() {
    local before after
    for _ in $(seq 30); do
        before=$(pgrep -c -P "$SERVER_PID" || true)
        [ "${before:-0}" -le 2 ] && return 0
        sleep 1
    done
}

# Runs one loadgen scenario with a wall-clock bound; appends its JSON line.
run_lg() {
    local server=$1 bound=$2; shift 2
    local line
    line=$(timeout --kill-after=10 "$bound" "$LOADGEN" "$@" --label "$server" $FAIL) || {
        local rc=$?
        echo "$line" | sed '/^$/d' >> "$OUT/results.jsonl"
        [ -n "$FAIL" ] && die "$server: loadgen $1 failed (exit $rc): $line"
        log "$server: loadgen $1 exited $rc"
        return 0
    }
    echo "$line" >> "$OUT/results.jsonl"
    echo "   $line" >&2
}

bench_server() {
    local server=$1 port user=lfbench
    case $server in
        lakeftpd) start_lakeftpd; port=$LAKE_PORT ;;
        vsftpd) start_vsftpd; port=$VSFTPD_PORT ;;
        pure-ftpd) start_pure-ftpd; port=$PURE_PORT ;;
    esac
    local A="--addr $ADDR:$port --pass $PASS --src-ips 200"
    log "$server: pid $SERVER_PID"
    local n first=1
    for n in $IDLE_NS $( [ "$server" = lakeftpd ] && echo "$BIG_IDLE" ); do
        # A fresh server for each N: memory an allocator kept from the
        # previous N would otherwise count as the baseline.
        [ $first = 1 ] || { stop_server; start_$server; }
        first=0
        log "$server: idle sessions N=$n"
        # --ramp 32: at most 32 logins in flight, for every server alike
        # (vsftpd's listen backlog is 32; more loses connections).
        run_lg "$server" 240 idle $A --user $user --n "$n" --pid "$SERVER_PID" --hold 3 --secs 180 --timeout 60 --ramp 32
        settle
    done
    local c mode
    for c in $UP_CS; do
        for mode in active passive; do
            log "$server: device uploads C=$c $mode ($UP_SECS s)"
            run_lg "$server" $((UP_SECS + 90)) upload $A --user $user --c "$c" --secs "$UP_SECS" --mode $mode --pid "$SERVER_PID" --timeout 30
            settle
        done
    done
    log "$server: login storm N=$STORM_N ($STORM_USERS users)"
    run_lg "$server" 300 storm $A --user lfdev --users "$STORM_USERS" --n "$STORM_N" --procs "$STORM_PROCS" --mode active --timeout 120
    settle
    log "$server: bulk $((BULK_BYTES >> 20)) MiB"
    run_lg "$server" 300 bulk $A --user $user --bytes "$BULK_BYTES" --pid "$SERVER_PID" --mode passive --timeout 60
    stop_server
    rm -rf "$WORK/lake" "$WORK/peer"/*/* 2>/dev/null || true
}

if [ "$SERVERS" != lakeftpd ]; then
    install_peers
    make_peer_users
fi
for s in $SERVERS; do bench_server "$s"; done

python3 "$HERE/table.py" "$OUT/results.jsonl" "$MODE"
if [ "$MODE" = smoke ]; then
    # Every scenario must have produced a line with zero errors.
    python3 "$HERE/table.py" --check "$OUT/results.jsonl" || die "smoke: errors seen"
fi
