#!/bin/bash
# CCC clients for a test through a NAT router with the kernel's FTP helper
# (nf_conntrack_ftp): after login the control connection returns to plain
# text (RFC 2228 §5.3), so the helper can read PORT/EPRT, while PROT P
# keeps the files protected.
#
#   tests/clients/ccc_clients.sh HOST PORT USER PASSWORD [WORKDIR]
#
# The server needs `tls = on` (not `required`: CCC is refused for a
# `tls = required` session), `tls_allow_ccc = on`, and for USER
# `tls_session_reuse = off` in its section: lftp and curl drop the control
# connection's TLS session with CCC, so their data connections cannot
# resume it (522 otherwise). Runs, each uploading into its own directory:
#   lftp-active   lftp 4.9, ftp:ssl-use-ccc, active mode, mirror -R
#   lftp-passive  the same in passive mode
#   curl-passive  curl --ftp-ssl-ccc, passive (Debian 12's curl 7.88 sends
#                 active-mode FTPS data in clear, curl#10666)
# and reads each file back with lftp (CCC, active) to compare. Prints one
# line per client, `NAME OK` or `NAME FAIL ...`; exits 1 if any failed.
set -uo pipefail
host=$1 port=$2 user=$3 password=$4
work=${5:-$(mktemp -d)}
mkdir -p "$work/tree/sub"
head -c 5000 /dev/urandom >"$work/tree/a.bin"
head -c 70000 /dev/urandom >"$work/tree/sub/b.bin"
failed=0

lftp_ccc() { # PASSIVE(on|off) COMMANDS
    timeout 60 lftp -u "$user,$password" -e "set ssl:verify-certificate no; \
        set ftp:ssl-force yes; set ftp:ssl-protect-data yes; set ftp:ssl-use-ccc yes; \
        set ftp:passive-mode $1; set net:max-retries 1; $2; bye" "$host:$port"
}

check() { # NAME DIR-ON-SERVER
    rm -rf "$work/back-$1"
    if lftp_ccc off "mirror $2 back-$1" >"$work/$1.back.log" 2>&1 &&
        diff -r "$work/tree" "$work/back-$1" >/dev/null; then
        echo "$1 OK"
    else
        echo "$1 FAIL (read back differs; $work/$1.log)"
        failed=1
    fi
}

cd "$work" || exit 1
if lftp_ccc off "mirror -R tree ccc-lftp-active" >"$work/lftp-active.log" 2>&1; then
    check lftp-active ccc-lftp-active
else
    echo "lftp-active FAIL ($work/lftp-active.log)"; failed=1
fi
if lftp_ccc on "mirror -R tree ccc-lftp-passive" >"$work/lftp-passive.log" 2>&1; then
    check lftp-passive ccc-lftp-passive
else
    echo "lftp-passive FAIL ($work/lftp-passive.log)"; failed=1
fi
if curl -sS --ssl-reqd -k --ftp-ssl-ccc --ftp-create-dirs \
    -T "{tree/a.bin}" "ftp://$user:$password@$host:$port/ccc-curl-passive/" \
    -T "{tree/sub/b.bin}" "ftp://$user:$password@$host:$port/ccc-curl-passive/sub/" \
    >"$work/curl-passive.log" 2>&1; then
    check curl-passive ccc-curl-passive
else
    echo "curl-passive FAIL ($work/curl-passive.log)"; failed=1
fi
exit $failed
