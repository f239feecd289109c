#!/bin/bash
# The bash -c bodies are expanded by the inner shell, and functions are called
# through check() / trap: both on purpose.
# shellcheck disable=SC2016,SC2317
# Smoke test of the aarch64 (Graviton) static binary under qemu-user:
# serve on loopback, one active (PORT/EPRT) and two passive (EPSV, PASV)
# uploads with curl, each checked byte for byte, a download, an explicit
# FTPS (AUTH TLS, PROT P) passive upload and download with curl --ssl-reqd,
# byte for byte (rustls and ring on aarch64), and a clean stop on SIGTERM.
#
#   image/build.sh aarch64-unknown-linux-musl && tests/aarch64_smoke.sh
#   tests/aarch64_smoke.sh path/to/lakeftpd      # another binary
#
# Needs qemu-user-static (qemu-aarch64-static), curl, file, openssl. Binds 127.0.0.1
# port 0 only. Prints one line per check and "N passed, M failed"; exits
# non-zero if any check failed.
set -u

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${1:-$repo/target/aarch64-unknown-linux-musl/release/lakeftpd}
qemu=${QEMU:-qemu-aarch64-static}
started=$(date +%s.%N)

passed=0
failed=0
work=$(mktemp -d /tmp/lakeftpd-aarch64.XXXXXX)
server=
cleanup() {
    if [ -n "$server" ]; then
        kill "$server" 2>/dev/null
        wait "$server" 2>/dev/null
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# check NAME COMMAND...: run COMMAND, count it, show its output on failure.
check() {
    local name=$1
    shift
    if "$@" >"$work/out" 2>&1; then
        echo "ok    $name"
        passed=$((passed + 1))
    else
        echo "FAIL  $name"
        sed 's/^/      /' "$work/out"
        failed=$((failed + 1))
    fi
}

finish() {
    printf 'aarch64 smoke: %.1fs under %s\n' "$(echo "$(date +%s.%N) - $started" | bc)" "$qemu"
    echo "$passed passed, $failed failed"
    [ "$failed" = 0 ]
    exit
}

for tool in "$qemu" curl file bc openssl; do
    command -v "$tool" >/dev/null || {
        echo "FAIL  $tool not installed"
        failed=$((failed + 1))
    }
done
[ -x "$bin" ] || {
    echo "FAIL  no binary at $bin (run image/build.sh aarch64-unknown-linux-musl)"
    failed=$((failed + 1))
}
[ "$failed" = 0 ] || finish

check "binary is a static aarch64 ELF" \
    bash -c 'file -b "$1" | grep -q "ARM aarch64" && file -b "$1" | grep -Eq "stat(ic|ically linked)"' _ "$bin"

# A password hash made by the aarch64 binary itself.
password="smoke test pw"
hash=$(printf '%s\n' "$password" | "$qemu" "$bin" passwd 2>"$work/passwd.err")
check "passwd under qemu prints a \$6\$ hash" bash -c '[[ "$1" == \$6\$* ]]' _ "$hash"

# The FTPS certificate (self-signed; curl -k does not verify it).
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext basicConstraints=critical,CA:FALSE \
    -keyout "$work/tls-key.pem" -out "$work/tls-cert.pem" 2>"$work/openssl.err"
check "openssl makes the FTPS certificate" test -s "$work/tls-cert.pem"

# A passive range unlikely to collide with concurrently running tests.
first=$((20000 + ($$ % 200) * 20))
cat >"$work/lakeftpd.conf" <<EOF
listen = 127.0.0.1:0
root = $work/home
passive_ports = $first-$((first + 19))
tls = on
tls_cert = $work/tls-cert.pem
tls_key = $work/tls-key.pem
[user smoke]
password = $hash
permissions = full
EOF

"$qemu" "$bin" serve --config "$work/lakeftpd.conf" 2>"$work/server.log" &
server=$!
port=
for _ in $(seq 1 200); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/server.log" | head -1)
    [ -n "$port" ] && break
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
done
check "server starts and listens on 127.0.0.1 port 0" test -n "$port"
if [ -z "$port" ]; then
    sed 's/^/      /' "$work/server.log"
    finish
fi

url="ftp://smoke:${password// /%20}@127.0.0.1:$port"
head -c 3000000 /dev/urandom >"$work/payload"

upload() { # NAME CURL-OPTIONS...: upload the payload as NAME, compare.
    local name=$1
    shift
    curl -sS --max-time 120 "$@" -T "$work/payload" "$url/$name" &&
        cmp "$work/payload" "$work/home/smoke/$name"
}
check "active upload (curl -P 127.0.0.1), content identical" upload active.bin -P 127.0.0.1
check "passive upload (EPSV), content identical" upload epsv.bin
check "passive upload (PASV), content identical" upload pasv.bin --disable-epsv
check "download (PASV), content identical" \
    bash -c 'curl -sS --max-time 120 --disable-epsv -o "$1/back" "$2/pasv.bin" && cmp "$1/payload" "$1/back"' _ "$work" "$url"

# Explicit FTPS, passive (curl 7.88 sends active FTPS data in clear,
# curl#10666): the control and data connections are TLS, and the data
# connection resumes the control session (tls_session_reuse = required).
check "FTPS upload (curl --ssl-reqd, PASV, PROT P), content identical" \
    upload tls.bin --ssl-reqd -k --disable-epsv
check "FTPS download (curl --ssl-reqd, PASV, PROT P), content identical" \
    bash -c 'curl -sS --max-time 120 --ssl-reqd -k --disable-epsv -o "$1/tls-back" "$2/tls.bin" && cmp "$1/payload" "$1/tls-back"' _ "$work" "$url"
check "the server logged the FTPS transfers as protected" \
    bash -c 'grep "path=\"/tls.bin\"" "$1" | grep -c "protected=yes" | grep -qx 2' _ "$work/server.log"

kill -TERM "$server"
stop() {
    wait "$server"
    local rc=$?
    server=
    [ "$rc" = 0 ] && grep -q "stopped" "$work/server.log"
}
check "SIGTERM: clean stop, exit 0" stop
finish
