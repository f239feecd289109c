#!/usr/bin/env bash
# lakeftpd benchmark against vsftpd and pure-ftpd, in one run (issue 6).
#
#   tests/bench/run.sh            # full run: lakeftpd, vsftpd, pure-ftpd (~30 min; FTPS: lakeftpd and vsftpd)
#   tests/bench/run.sh --smoke    # seconds-long run against lakeftpd only (CI);
#                                 # exits non-zero when the load generator sees an error
#   tests/bench/run.sh --only lakeftpd|lakeftpd-s3|lakeftpd-s3-disk|vsftpd|pure-ftpd   # one server of the full run
#   tests/bench/run.sh --only "lakeftpd vsftpd" --scenarios "storm bulk"   # a subset
#   tests/bench/run.sh --only "lakeftpd vsftpd" --scenarios tls    # FTPS only
#   tests/bench/run.sh --only "lakeftpd vsftpd" --scenarios tlsmatrix   # FTPS by certificate and TLS version
#
# Scenarios: idle upload storm bulk (plain FTP) and tls: explicit FTPS
# (AUTH TLS, PROT P, data connections resuming the control session) with a
# fresh server configured for TLS: idle TLS sessions, TLS logins/s, 4 KiB
# uploads at C = 50 active and passive, bulk STOR/RETR. The certificate
# (RSA 2048, self-signed) is made with openssl at run time; vsftpd runs
# with ssl_enable=YES and its default require_ssl_reuse=YES, lakeftpd with
# tls = required and its default tls_session_reuse = required.
#
# tlsmatrix (issue 19): FTPS for each certificate (ECDSA P-256, RSA 2048)
# and TLS version (1.2, 1.3; the client offers only that one), a fresh
# server each: C = 50 devices uploading in a closed loop (the saturated
# rate), then the same devices in an open loop at 50 % and 80 % of the
# rate that server itself just reached (p99 from each scheduled start);
# and memory per idle TLS session for each version. Passive mode (what
# devices behind NAT use); BENCH_TLS_MODES="passive active" adds active,
# BENCH_TLS_SECS (default 15) sets the seconds per row.
#
# lakeftpd-s3 is lakeftpd with `ack = s3` against a local s3s-fs (started
# here on loopback, its root on tmpfs): device uploads at C = 50 only; the
# table sets it beside the peers' local-disk figures of the same run.
#
# Every upload scenario (device uploads, the storm, bulk, and lakeftpd with
# S3 configured) runs twice: homes (and spool) on tmpfs, where a flush costs
# nothing, and on $BENCH_DISK, a directory of the root filesystem (default
# /var/tmp/lakeftpd-bench-disk; refused if it is tmpfs), where every flush
# reaches the disk (a journal commit on a journalling filesystem; this
# machine's root ext4 has no journal: /sys/fs/ext4/vda/journal_task says
# <none>). The server runs under `perf stat` counting its flush
# syscalls (fsync, fdatasync, sync_file_range, syncfs; children included) and
# the table shows flushes per acknowledged upload. BENCH_HOMES="disk" (or
# "tmpfs") runs one of the two. BENCH_HOMES="tmpfs disk xfs" adds a third:
# homes on XFS (AL2023's root filesystem) on a loop device (direct I/O) whose
# image is a file of the root filesystem ($BENCH_XFS_IMAGE, default
# /var/tmp/lakeftpd-bench-xfs.img, 8 GiB sparse): on a root filesystem that
# is ext4 without a journal, as on this machine, it is the run with a
# journalling filesystem (an XFS log commit per flush). LAKEFTPD_BIN=path skips the release build
# (flush counts do not depend on the build; times do).
#
# lakeftpd-s3-disk is lakeftpd with S3 configured and `ack = disk` (the 226
# after the spool entry is durable): uploads at S3_CS like lakeftpd-s3.
#
# Must run as root (creates bench users, a PAM service file, binds port 20:
# every server's active data connections leave from it, as each one's
# default, or Debian's vsftpd.conf, has them). Installs what it needs, idempotently: vsftpd and
# pure-ftpd are fetched with `apt-get download` and unpacked with `dpkg -x`
# under $BENCH_CACHE (they conflict as packages, so neither is installed).
# Everything runs on loopback: servers listen on 127.0.0.1, clients connect
# from 127.1.x.1 addresses. Server homes are on tmpfs (/dev/shm) and on
# disk (above). Every
# scenario is bounded in time; the load generator bounds every loop.
# Output: a table on stdout, raw JSON lines in $OUT/results.jsonl.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
MODE=full
ONLY=""
SCENARIOS="idle upload storm bulk tls tlsmatrix"
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) MODE=smoke ;;
        --only) ONLY="$2"; shift ;;
        --scenarios) SCENARIOS="$2"; shift ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | grep '^#'; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

BENCH_CACHE="${BENCH_CACHE:-/var/cache/lakeftpd-bench}"
WORK="${BENCH_WORK:-/dev/shm/lakeftpd-bench}"
OUT="${BENCH_OUT:-$WORK/out}"
PASS="bench-$(date +%s)"          # one password for every bench user
# BENCH_PORT moves the four listening ports (e.g. beside another run's).
LAKE_PORT=${BENCH_PORT:-2121}
VSFTPD_PORT=$((LAKE_PORT + 1)) PURE_PORT=$((LAKE_PORT + 2)) S3_PORT=$((LAKE_PORT + 3))
# Credentials shared by s3s-fs and lakeftpd (local test values). Set in the
# environment so lakeftpd never falls back to the instance metadata service.
S3_KEY_ID=AKIALAKEFTPDBENCH S3_SECRET="bench-secret-$PASS"
S3S_FS="${S3S_FS:-$(command -v s3s-fs || echo "$HOME/.cargo/bin/s3s-fs")}"
ADDR=127.0.0.1
# Homes on disk: a directory of the root filesystem (not tmpfs).
DISK="${BENCH_DISK:-/var/tmp/lakeftpd-bench-disk}"
HOMES="${BENCH_HOMES:-tmpfs disk}"
# The smoke (CI) runs on all three kinds, so none of their set-ups can rot.
[ "$MODE" != smoke ] || HOMES="${BENCH_HOMES:-tmpfs disk xfs}"
# Homes on XFS (BENCH_HOMES with "xfs"): a loop device on an image file of
# the root filesystem, mounted here.
XFS_IMAGE="${BENCH_XFS_IMAGE:-/var/tmp/lakeftpd-bench-xfs.img}"
XFS_MNT="${XFS_IMAGE%.img}"
XFS_LOOP=""

die() { echo "run.sh: $*" >&2; exit 1; }
log() { echo "== [$(date +%T.%N | cut -c1-12)] $*" >&2; }
[ "$(id -u)" = 0 ] || die "run as root"

# A process may hold at most 20,000 open files here (a hard limit root
# cannot raise): take all of it, for the servers and the load generator.
ulimit -n "$(ulimit -Hn)"
ulimit -u unlimited 2>/dev/null || true
ulimit -s 8192

# One benchmark at a time per work directory: a second run would delete this
# one's files and share its two cores (set BENCH_WORK and BENCH_PORT to run
# beside another on purpose).
mkdir -p "$(dirname "$WORK")"
exec 9> "$WORK.lock"
flock -n 9 || die "another benchmark is using $WORK (lock $WORK.lock)"
rm -rf "$WORK"
mkdir -p "$WORK" "$OUT"
if [[ " $HOMES " == *" disk "* ]]; then
    rm -rf "$DISK"; mkdir -p "$DISK"
    [ "$(stat -f -c %T "$DISK")" != tmpfs ] || die "BENCH_DISK=$DISK is on tmpfs; the disk homes must be on a disk"
fi
if [[ " $HOMES " == *" xfs "* ]]; then
    command -v mkfs.xfs >/dev/null || die "homes on xfs need mkfs.xfs (xfsprogs; tests/install-deps.sh)"
    mkdir -p "$(dirname "$XFS_IMAGE")"
    [ "$(stat -f -c %T "$(dirname "$XFS_IMAGE")")" != tmpfs ] || die "BENCH_XFS_IMAGE=$XFS_IMAGE is on tmpfs"
    if mountpoint -q "$XFS_MNT"; then umount "$XFS_MNT"; fi
    rm -f "$XFS_IMAGE"; truncate -s 8G "$XFS_IMAGE"
    mkfs.xfs -q "$XFS_IMAGE"
    XFS_LOOP=$(losetup --find --show "$XFS_IMAGE")
    # Direct I/O: the loop device's writes skip the image file's page cache,
    # as a disk's would. A machine whose root filesystem refuses it still
    # runs, through the page cache, and says so.
    losetup --direct-io=on "$XFS_LOOP" 2>/dev/null \
        || log "direct I/O refused on $XFS_LOOP: the XFS rows go through the image's page cache"
    mkdir -p "$XFS_MNT"; mount "$XFS_LOOP" "$XFS_MNT"
fi
# Where the homes of the current scenario are: $WORK (tmpfs), $DISK or $XFS_MNT.
HOME_KIND=tmpfs HOME_BASE=$WORK
use_homes() {
    HOME_KIND=$1
    case "$1" in
        disk) HOME_BASE=$DISK ;;
        xfs) HOME_BASE=$XFS_MNT ;;
        *) HOME_BASE=$WORK ;;
    esac
    rm -rf "$HOME_BASE/lake" "$HOME_BASE/spool"
    mkdir -p "$HOME_BASE/lake" "$HOME_BASE/peer-homes"
    # lakeftpd's homes exist before its first start, as the peers' do: the
    # flushes that make them durable at start would count against the
    # first scenario's uploads.
    (cd "$HOME_BASE/lake" && mkdir -p lfbench $(seq -f lfdev%03g 0 $((NUSERS - 1))))
    mkdir -p "$HOME_BASE/spool"
    # The peers' users keep one home path: $WORK/peer, a link to the homes in use.
    ln -sfn "$HOME_BASE/peer-homes" "$WORK/peer"
}
# Flush syscalls, counted by perf stat (tracepoints, in the kernel: no
# ptrace stop per syscall) over the server and its children.
FLUSH_EVENTS=syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync,syscalls:sys_enter_sync_file_range,syscalls:sys_enter_syncfs
PERF=""
perf stat -x, -o /dev/null -e "$FLUSH_EVENTS" true >/dev/null 2>&1 && PERF=perf
: > "$OUT/results.jsonl"
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [[ " $HOMES " != *" disk "* ]] || rm -rf "$DISK"
    if [ -n "$XFS_LOOP" ]; then
        umount "$XFS_MNT" 2>/dev/null || true
        losetup -d "$XFS_LOOP" 2>/dev/null || true
        rm -f "$XFS_IMAGE"; rmdir "$XFS_MNT" 2>/dev/null || true
    fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- builds
log "building lakeftpd (release) and the load generator"
if [ -z "${LAKEFTPD_BIN:-}" ]; then
    (cd "$REPO" && cargo build --release --quiet) 2> "$OUT/build.log" || { cat "$OUT/build.log" >&2; die "build failed"; }
fi
cargo build --release --quiet --manifest-path "$HERE/loadgen/Cargo.toml" 2>> "$OUT/build.log" \
    || { cat "$OUT/build.log" >&2; die "loadgen build failed"; }
LAKEFTPD="${LAKEFTPD_BIN:-$REPO/target/release/lakeftpd}"
LOADGEN="$HERE/loadgen/target/release/loadgen"

# ---------------------------------------------------------------- scenarios
if [ "$MODE" = smoke ]; then
    IDLE_NS="50"; BIG_IDLE=""
    UP_CS="5"; UP_SECS=2
    S3_CS="1 5"; S3_MODES="active"; S3_SECS=1
    STORM_N=200; STORM_USERS=2; STORM_PROCS=2
    BULK_BYTES=$((16 << 20))
    TLS_IDLE_N=20; TLS_LOGIN_C=5; TLS_UP_CS=5; TLS_SECS=2; TLS_RATE=20; TLS_BULK_BYTES=$((4 << 20))
    # The matrix in seconds: TLS 1.2 (what the tls rows do not cover), one
    # certificate, one mode, 1 s per row.
    MATRIX_CERTS="rsa-2048"; MATRIX_VERSIONS="1.2"; MATRIX_MODES="passive"; MATRIX_SECS=1
    SERVERS="lakeftpd lakeftpd-s3 lakeftpd-s3-disk"
    FAIL="--fail-on-error"
else
    IDLE_NS="1000 5000"; BIG_IDLE=19000
    UP_CS="${BENCH_UP_CS:-1 50 1000}"; UP_SECS=${BENCH_UP_SECS:-15}
    S3_CS="${BENCH_S3_CS:-1 50}"; S3_MODES="active passive"; S3_SECS=${BENCH_UP_SECS:-15}
    STORM_N=10000; STORM_USERS=100; STORM_PROCS=4
    BULK_BYTES=${BENCH_BULK_BYTES:-$((1 << 30))}
    TLS_IDLE_N=1000; TLS_LOGIN_C=50; TLS_UP_CS=50; TLS_SECS=15; TLS_RATE=80; TLS_BULK_BYTES=$((256 << 20))
    MATRIX_CERTS="ecdsa-p256 rsa-2048"; MATRIX_VERSIONS="1.2 1.3"
    MATRIX_MODES="${BENCH_TLS_MODES:-passive}"; MATRIX_SECS=${BENCH_TLS_SECS:-15}
    SERVERS="lakeftpd lakeftpd-s3 lakeftpd-s3-disk vsftpd pure-ftpd"
    FAIL=""
fi
[ -n "$ONLY" ] && SERVERS="$ONLY"
MATRIX_PCTS="50 80"
has() { case " $SCENARIOS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
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
    local kind
    for kind in $HOMES; do
        use_homes "$kind"
        peer_user lfbench "$WORK/peer/lfbench" "$hash"
        for i in $(seq -f %03g 0 $((NUSERS - 1))); do peer_user "lfdev$i" "$WORK/peer/lfdev$i" "$hash"; done
    done
    use_homes tmpfs
}

# ---------------------------------------------------------------- servers
SERVER_PID=""
WRAP_PID="" FLUSH_FILE=""
# Starts a server (under perf stat when it works) in the background; sets
# SERVER_PID to the server itself. Redirections of the call apply.
launch() {
    FLUSH_FILE=""
    if [ -n "$PERF" ]; then
        FLUSH_FILE="$OUT/flushes.txt"; rm -f "$FLUSH_FILE"
        perf stat -x, -o "$FLUSH_FILE" -e "$FLUSH_EVENTS" -- "$@" &
        WRAP_PID=$!; PIDS+=("$WRAP_PID")
        SERVER_PID=""
        for _ in $(seq 100); do
            SERVER_PID=$(pgrep -P "$WRAP_PID" | head -1) && [ -n "$SERVER_PID" ] && break
            sleep 0.05
        done
    else
        "$@" &
        SERVER_PID=$!; WRAP_PID=""
    fi
    PIDS+=("$SERVER_PID")
}
# Flush syscalls of the last server run (after stop_server), or nothing.
flush_count() {
    [ -n "$FLUSH_FILE" ] && [ -s "$FLUSH_FILE" ] || return 0
    awk -F, '/syscalls:/ && $1 ~ /^[0-9]+$/ { n += $1 } END { print n + 0 }' "$FLUSH_FILE"
}
# Marks the result lines written since the last call with the homes they
# ran on, and gives the last line of scenario $1 the server's flush count.
annotate() {
    python3 - "$OUT/results.jsonl" "$1" "$HOME_KIND" "$(flush_count)" <<'PY'
import json, sys
path, scenario, home, flushes = sys.argv[1:]
lines = open(path).read().splitlines()
rows = []
for line in lines:
    try:
        rows.append(json.loads(line))
    except json.JSONDecodeError:
        rows.append(None)
last = max((i for i, r in enumerate(rows) if r and r.get("scenario") == scenario and "home" not in r), default=None)
for i, r in enumerate(rows):
    if r is not None and "home" not in r:
        r["home"] = home
        if i == last and flushes:
            r["flushes"] = int(flushes)
        lines[i] = json.dumps(r)
open(path, "w").write("".join(l + "\n" for l in lines))
PY
}
TLS_ON=0           # 1: the next server starts with FTPS configured
# The FTPS certificate both servers present: RSA 2048, self-signed for
# 127.0.0.1, made at run time (the load generator checks signatures but
# accepts this certificate).
# A second pair, ECDSA P-256 (what ACM also issues), for the FTPS uploads
# again: the handshake's signature is most of an FTPS upload's CPU.
TLS_CERT="$WORK/tls/cert.pem"; TLS_KEY="$WORK/tls/key.pem"; CERT_TAG=
# More fields for the JSON lines of the tlsmatrix scenario ('"k":v,' ...).
TAGS_JSON=""
use_cert() {
    case $1 in
        rsa-2048) TLS_CERT="$WORK/tls/cert.pem"; TLS_KEY="$WORK/tls/key.pem" ;;
        ecdsa-p256) TLS_CERT="$WORK/tls/ec-cert.pem"; TLS_KEY="$WORK/tls/ec-key.pem" ;;
        *) die "unknown certificate $1" ;;
    esac
}
make_cert() {
    mkdir -p "$WORK/tls"
    [ -s "$WORK/tls/cert.pem" ] && [ -s "$WORK/tls/ec-cert.pem" ] && return 0
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
        -addext subjectAltName=IP:127.0.0.1 -addext basicConstraints=critical,CA:FALSE \
        -keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem" 2>/dev/null || die "openssl req failed"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
        -addext basicConstraints=critical,CA:FALSE \
        -keyout "$WORK/tls/ec-key.pem" -out "$WORK/tls/ec-cert.pem" 2>/dev/null || die "openssl req (EC) failed"
}
wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/$ADDR/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
start_lakeftpd() {
    local conf="$WORK/lakeftpd.conf" hash s3=${1:-} ack=${2:-s3}
    hash=$(printf '%s' "$PASS" | "$LAKEFTPD" passwd)
    {
        echo "listen = $ADDR:$LAKE_PORT"
        echo "root = $HOME_BASE/lake"
        echo "passive_ports = 10000-29999"
        echo "max_sessions = 20000"
        echo "max_sessions_per_ip = 20000"
        echo "idle_timeout = 900s"
        echo "login_fail_delay = 1s"
        echo "drain_delay = 0s"        # stop at once between scenarios (no balancer here)
        if [ "$TLS_ON" = 1 ]; then
            # Explicit FTPS only: USER before AUTH TLS is refused, PROT P
            # data connections must resume the control session (default).
            echo "tls = required"
            echo "tls_cert = $TLS_CERT"
            echo "tls_key = $TLS_KEY"
        fi
        if [ -n "$s3" ]; then
            # ack = s3: the 226 waits until s3s-fs confirmed the object. The
            # spool is on the homes' tmpfs (hard links, no copy). Every other
            # S3 key keeps its default (s3_uploads = 4 delivery threads);
            # {uuid} so that repeated uploads of one name are distinct objects
            # and can be counted.
            echo "s3_bucket = lake"
            echo "s3_endpoint = http://$ADDR:$S3_PORT"
            echo "s3_region = us-east-1"
            echo "s3_key = user={user}/{uuid}-{path}"
            echo "ack = $ack"
            echo "spool = $HOME_BASE/spool"
        fi
        printf '[user lfbench]\npassword = %s\npermissions = full\n' "$hash"
        for i in $(seq -f %03g 0 $((NUSERS - 1))); do
            printf '[user lfdev%s]\npassword = %s\npermissions = upload\n' "$i" "$(printf '%s' "$PASS" | "$LAKEFTPD" passwd)"
        done
    } > "$conf"
    mkdir -p "$HOME_BASE/lake"
    launch env AWS_ACCESS_KEY_ID=$S3_KEY_ID AWS_SECRET_ACCESS_KEY=$S3_SECRET \
        "$LAKEFTPD" serve --config "$conf" 2> "$OUT/lakeftpd${s3:+-s3}.log" 9>&-
    for _ in $(seq 100); do grep -q "listening on" "$OUT/lakeftpd${s3:+-s3}.log" && return 0; sleep 0.1; done
    cat "$OUT/lakeftpd${s3:+-s3}.log" >&2; die "lakeftpd did not start"
}
# s3s-fs (a real S3 API: SigV4 and checksums verified) on loopback, its
# root on tmpfs, then lakeftpd with ack = s3 in front of it.
S3_PID=""
start_s3() {
    [ -x "$S3S_FS" ] || bash "$REPO/tests/install-s3s-fs.sh" >&2 || die "no s3s-fs"
    S3S_FS="$(command -v s3s-fs || echo "$S3S_FS")"
    rm -rf "$WORK/s3"
    mkdir -p "$WORK/s3/lake"
    "$S3S_FS" --host "$ADDR" --port "$S3_PORT" --access-key "$S3_KEY_ID" --secret-key "$S3_SECRET" \
        "$WORK/s3" > "$OUT/s3s-fs.log" 2>&1 9>&- &
    S3_PID=$!; PIDS+=("$S3_PID")
    wait_port "$S3_PORT" || { cat "$OUT/s3s-fs.log" >&2; die "s3s-fs did not start"; }
}
start_lakeftpd-s3() { start_lakeftpd s3 s3; }
start_lakeftpd-s3-disk() { start_lakeftpd s3 disk; }
stop_s3() {
    [ -n "$S3_PID" ] || return 0
    kill "$S3_PID" 2>/dev/null || true
    wait "$S3_PID" 2>/dev/null || true
    S3_PID=""
}
# Objects s3s-fs holds (files under the bucket directory).
s3_objects() { find "$WORK/s3/lake" -type f | wc -l; }
# CPU seconds of one process (utime + stime).
proc_cpu() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
start_vsftpd() {
    mkdir -p "$WORK/empty"
    {
    cat <<EOF
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
connect_from_port_20=YES
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
    if [ "$TLS_ON" = 1 ]; then
        # FTPS as vsftpd documents it: logins and data must be TLS, and a
        # data connection must resume the control session (its default).
        cat <<EOF
ssl_enable=YES
rsa_cert_file=$TLS_CERT
rsa_private_key_file=$TLS_KEY
force_local_logins_ssl=YES
force_local_data_ssl=YES
require_ssl_reuse=YES
allow_anon_ssl=NO
EOF
        # Debian's default ssl_ciphers is ECDHE-RSA-AES256-GCM-SHA384 alone:
        # with an ECDSA key no TLS 1.2 suite would match (TLS 1.3 suites are
        # set apart). Its ECDSA twin, for the ECDSA certificate.
        [ "$TLS_CERT" != "$WORK/tls/ec-cert.pem" ] || echo "ssl_ciphers=ECDHE-ECDSA-AES256-GCM-SHA384"
    fi
    } > "$WORK/vsftpd.conf"
    launch env LD_LIBRARY_PATH="$BENCH_CACHE/root/usr/lib/x86_64-linux-gnu" \
        "$BENCH_CACHE/root/usr/sbin/vsftpd" "$WORK/vsftpd.conf" 2> "$OUT/vsftpd.log" 9>&-
    wait_port "$VSFTPD_PORT" || { cat "$OUT/vsftpd.log" >&2; die "vsftpd did not start"; }
}
start_pure-ftpd() {
    # -E: no anonymous; -l unix: /etc/shadow (MD5-crypt); -c/-C: clients
    # and clients per IP; -p: passive ports; -I: idle minutes; -H: no DNS.
    launch "$BENCH_CACHE/root/usr/sbin/pure-ftpd" -S "$ADDR,$PURE_PORT" -E -l unix -c 30000 -C 30000 \
        -p 10000:29999 -I 15 -H -4 2> "$OUT/pure-ftpd.log" 9>&-
    wait_port "$PURE_PORT" || { cat "$OUT/pure-ftpd.log" >&2; die "pure-ftpd did not start"; }
}
stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    # Forking servers: end the sessions they left (children of this server only).
    pkill -P "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    # perf stat writes its counts once the server is gone.
    [ -z "$WRAP_PID" ] || wait "$WRAP_PID" 2>/dev/null || true
    SERVER_PID="" WRAP_PID=""
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
    line=$(timeout --kill-after=10 "$bound" "$LOADGEN" "$@" --label "$server" $FAIL \
        | sed "s/^{/{${CERT_TAG:+\"cert\":\"$CERT_TAG\",}${TAGS_JSON}/") || {
        local rc=$?
        echo "$line" | sed '/^$/d' >> "$OUT/results.jsonl"
        [ -n "$FAIL" ] && die "$server: loadgen $1 failed (exit $rc): $line"
        log "$server: loadgen $1 exited $rc"
        return 0
    }
    echo "$line" >> "$OUT/results.jsonl"
    echo "   $line" >&2
}

# lakeftpd with S3 configured (lakeftpd-s3: ack = s3; lakeftpd-s3-disk:
# ack = disk): device uploads at C = S3_CS, a fresh server for each (so each
# has its own flush count); afterwards the bucket must hold at least one
# object per acknowledged upload (ack = disk: once the spool has emptied).
bench_s3() {
    local server=$1 c mode before after cpu0 cpu1 ok home
    start_s3
    local A="--addr $ADDR:$LAKE_PORT --pass $PASS --src-ips 200"
    for home in $HOMES; do
        use_homes "$home"
        for c in $S3_CS; do
            for mode in $S3_MODES; do
                start_$server
                log "$server: device uploads C=$c $mode ($S3_SECS s), homes on $home, pid $SERVER_PID"
                before=$(s3_objects); cpu0=$(proc_cpu "$S3_PID")
                run_lg "$server" $((S3_SECS + 90)) upload $A --user lfbench --c "$c" --secs "$S3_SECS" --mode $mode --pid "$SERVER_PID" --timeout 30
                ok=$(tail -1 "$OUT/results.jsonl" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read()).get("ok", 0))' 2>/dev/null || echo 0)
                # ack = disk: the 226 came before S3; wait (bounded) for the spool.
                for _ in $(seq 300); do
                    [ $(( $(s3_objects) - before )) -ge "$ok" ] && break
                    sleep 0.1
                done
                after=$(s3_objects); cpu1=$(proc_cpu "$S3_PID")
                stop_server
                # An acknowledged upload with no object would be a lost file.
                python3 -c 'import json,sys; l,c,m,ok,n,cpu=sys.argv[1:]; print(json.dumps({"scenario":"s3check","label":l,"c":int(c),"mode":m,"ok":int(ok),"objects":int(n),"s3s_fs_cpu_s":float(cpu),"errors":0 if int(n)>=int(ok) else int(ok)-int(n)}))' \
                    "$server" "$c" "$mode" "$ok" $((after - before)) "$(echo "$cpu1 - $cpu0" | bc)" >> "$OUT/results.jsonl"
                annotate upload
                echo "   $(tail -1 "$OUT/results.jsonl")" >&2
            done
        done
        rm -rf "$HOME_BASE/lake" "$HOME_BASE/spool"
    done
    use_homes tmpfs
    stop_s3
    rm -rf "$WORK/s3"
}

bench_server() {
    local server=$1 port user=lfbench
    case $server in
        lakeftpd-s3*) has upload && bench_s3 "$server"; return 0 ;;
        lakeftpd) port=$LAKE_PORT ;;
        vsftpd) port=$VSFTPD_PORT ;;
        pure-ftpd) port=$PURE_PORT ;;
    esac
    local A="--addr $ADDR:$port --pass $PASS --src-ips 200"
    local n ns=""
    use_homes tmpfs
    if has idle; then
        ns=$IDLE_NS
        [ "$server" != lakeftpd ] || ns="$ns $BIG_IDLE"
    fi
    for n in $ns; do
        # A fresh server for each N: memory an allocator kept from the
        # previous N would otherwise count as the baseline.
        start_$server
        log "$server: idle sessions N=$n, pid $SERVER_PID"
        # --ramp 32: at most 32 logins in flight, for every server alike
        # (vsftpd's listen backlog is 32; more loses connections).
        run_lg "$server" 240 idle $A --user $user --n "$n" --pid "$SERVER_PID" --hold 3 --secs 180 --timeout 60 --ramp 32
        stop_server
        annotate idle
    done
    # Every upload scenario on each kind of homes, a fresh server for each
    # (its flush count is the scenario's).
    local c mode home cs=$UP_CS
    has upload || cs=""
    for home in $HOMES; do
        use_homes "$home"
        for c in $cs; do
            for mode in active passive; do
                start_$server
                log "$server: device uploads C=$c $mode ($UP_SECS s), homes on $home"
                run_lg "$server" $((UP_SECS + 90)) upload $A --user $user --c "$c" --secs "$UP_SECS" --mode $mode --pid "$SERVER_PID" --timeout 30
                settle
                stop_server
                annotate upload
            done
        done
        if has storm; then
            start_$server
            log "$server: login storm N=$STORM_N ($STORM_USERS users, $STORM_PROCS load-generator processes), homes on $home"
            run_lg "$server" 300 storm $A --user lfdev --users "$STORM_USERS" --n "$STORM_N" --procs "$STORM_PROCS" --mode active --timeout 120 --pid "$SERVER_PID"
            settle
            stop_server
            annotate storm
        fi
        if has bulk; then
            start_$server
            log "$server: bulk $((BULK_BYTES >> 20)) MiB, homes on $home"
            run_lg "$server" 300 bulk $A --user $user --bytes "$BULK_BYTES" --pid "$SERVER_PID" --mode passive --timeout 60
            stop_server
            annotate bulk
        fi
        rm -rf "$HOME_BASE/lake" "$WORK/peer"/*/* 2>/dev/null || true
    done
    use_homes tmpfs
    if has tls && [ "$server" != pure-ftpd ]; then bench_tls "$server" "$port"; fi
    if has tlsmatrix && [ "$server" != pure-ftpd ]; then bench_tls_matrix "$server" "$port"; fi
}

# Explicit FTPS against a fresh server configured for it (TLS_ON=1).
bench_tls() {
    local server=$1 port=$2 user=lfbench c mode
    make_cert
    TLS_ON=1
    start_$server
    local A="--addr $ADDR:$port --pass $PASS --src-ips 200 --tls"
    log "$server (FTPS): pid $SERVER_PID"
    log "$server: idle TLS sessions N=$TLS_IDLE_N"
    run_lg "$server" 240 idle $A --user $user --n "$TLS_IDLE_N" --pid "$SERVER_PID" --hold 3 --secs 180 --timeout 60 --ramp 32
    stop_server
    annotate idle
    start_$server
    log "$server: TLS logins C=$TLS_LOGIN_C ($TLS_SECS s)"
    run_lg "$server" $((TLS_SECS + 90)) login $A --user $user --c "$TLS_LOGIN_C" --secs "$TLS_SECS" --pid "$SERVER_PID" --timeout 30
    settle
    for c in $TLS_UP_CS; do
        for mode in active passive; do
            log "$server: FTPS uploads C=$c $mode ($TLS_SECS s)"
            run_lg "$server" $((TLS_SECS + 90)) upload $A --user $user --c "$c" --secs "$TLS_SECS" --mode $mode --pid "$SERVER_PID" --timeout 30
            settle
        done
    done
    # Open loop: the same devices on a fixed schedule, TLS_RATE uploads/s in
    # all (a rate both servers sustain), latency from each scheduled start.
    for c in $TLS_UP_CS; do
        for mode in active passive; do
            log "$server: FTPS uploads C=$c $mode, open loop $TLS_RATE/s ($TLS_SECS s)"
            run_lg "$server" $((TLS_SECS + 90)) upload $A --user $user --c "$c" --rate "$TLS_RATE" --secs "$TLS_SECS" --mode $mode --pid "$SERVER_PID" --timeout 30
            settle
        done
    done
    log "$server: bulk PROT P $((TLS_BULK_BYTES >> 20)) MiB"
    run_lg "$server" 300 bulk $A --user $user --bytes "$TLS_BULK_BYTES" --pid "$SERVER_PID" --mode passive --timeout 60
    stop_server
    annotate tls
    # The closed-loop uploads again with the ECDSA P-256 certificate.
    TLS_CERT="$WORK/tls/ec-cert.pem"; TLS_KEY="$WORK/tls/ec-key.pem"; CERT_TAG=ecdsa-p256
    start_$server
    for c in $TLS_UP_CS; do
        for mode in active passive; do
            log "$server: FTPS uploads C=$c $mode, ECDSA P-256 certificate ($TLS_SECS s)"
            run_lg "$server" $((TLS_SECS + 90)) upload $A --user $user --c "$c" --secs "$TLS_SECS" --mode $mode --pid "$SERVER_PID" --timeout 30
            settle
        done
    done
    stop_server
    annotate tls
    TLS_CERT="$WORK/tls/cert.pem"; TLS_KEY="$WORK/tls/key.pem"; CERT_TAG=
    TLS_ON=0
    rm -rf "$WORK/lake" "$WORK/peer"/*/* 2>/dev/null || true
}

# The uploads per second of the last result line (0 if it saw errors).
last_per_s() {
    tail -1 "$OUT/results.jsonl" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); print(0 if r.get("errors") else r.get("per_s", 0))' 2>/dev/null || echo 0
}

# FTPS by certificate and TLS version (issue 19 point 7). A closed loop
# that saturates the two cores says little about latency (Little's law:
# mean latency = C / rate), so the latency figure is an open loop at 50 %
# and 80 % of the rate this server reached in the closed loop just before.
bench_tls_matrix() {
    local server=$1 port=$2 user=lfbench cert ver mode c sat pct rate
    local A="--addr $ADDR:$port --pass $PASS --src-ips 200"
    make_cert
    TLS_ON=1
    use_cert rsa-2048; CERT_TAG=rsa-2048
    for ver in $MATRIX_VERSIONS; do
        TAGS_JSON="\"matrix\":1,\"tls_asked\":\"$ver\","
        start_$server
        log "$server: idle TLS $ver sessions N=$TLS_IDLE_N, pid $SERVER_PID"
        run_lg "$server" 240 idle $A --tls-version "$ver" --user $user --n "$TLS_IDLE_N" --pid "$SERVER_PID" --hold 3 --secs 180 --timeout 60 --ramp 32
        stop_server
    done
    for cert in $MATRIX_CERTS; do
        use_cert "$cert"; CERT_TAG=$cert
        for ver in $MATRIX_VERSIONS; do
            start_$server
            for mode in $MATRIX_MODES; do
                for c in $TLS_UP_CS; do
                    TAGS_JSON="\"matrix\":1,\"tls_asked\":\"$ver\",\"load_pct\":100,"
                    log "$server: FTPS $cert TLS $ver uploads C=$c $mode, closed loop ($MATRIX_SECS s)"
                    run_lg "$server" $((MATRIX_SECS + 90)) upload $A --tls-version "$ver" --user $user --c "$c" --secs "$MATRIX_SECS" --mode $mode --pid "$SERVER_PID" --timeout 30
                    settle
                    sat=$(last_per_s)
                    for pct in $MATRIX_PCTS; do
                        rate=$(python3 -c "print(int(float('$sat') * $pct / 100))")
                        [ "$rate" -gt 0 ] || continue
                        TAGS_JSON="\"matrix\":1,\"tls_asked\":\"$ver\",\"load_pct\":$pct,"
                        log "$server: FTPS $cert TLS $ver uploads C=$c $mode, open loop $rate/s ($pct % of $sat/s)"
                        run_lg "$server" $((MATRIX_SECS + 90)) upload $A --tls-version "$ver" --user $user --c "$c" --rate "$rate" --secs "$MATRIX_SECS" --mode $mode --pid "$SERVER_PID" --timeout 30
                        settle
                    done
                done
            done
            stop_server
        done
    done
    annotate tlsmatrix
    use_cert rsa-2048; CERT_TAG='' TAGS_JSON='' TLS_ON=0
    rm -rf "$WORK/lake" "$WORK/peer"/*/* 2>/dev/null || true
}

use_homes tmpfs
if [[ " $SERVERS " == *" vsftpd "* || " $SERVERS " == *" pure-ftpd "* ]]; then
    install_peers
    make_peer_users
fi
for s in $SERVERS; do bench_server "$s"; done

python3 "$HERE/table.py" "$OUT/results.jsonl" "$MODE"
if [ "$MODE" = smoke ]; then
    # Every scenario must have produced a line with zero errors.
    python3 "$HERE/table.py" --check "$OUT/results.jsonl" || die "smoke: errors seen"
fi
