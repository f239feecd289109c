#!/bin/bash
# Devices as they connect, against both topologies of the stack, with network
# namespaces playing the Internet and AWS:
#
#   dev-routed  198.18.13.10 ─────────────────────────────┐
#   dev-natftp  198.19.1.10 ─ natftp: NAT router, FTP helper ─┤ inet (the Internet)
#   dev-fwftp   198.18.12.10 ─ fwftp: stateful firewall, FTP helper ─┤   │
#   dev-cgnat   198.19.2.10 ─ cgnat: carrier-grade NAT, no helper ─┘   │
#                                                                     edge (AWS)
#     NLB      198.18.30.1:21  -> DNAT to an instance, client address kept
#     IGW      198.18.30.11 <-> 198.19.100.11 (ia), 198.18.30.12 <-> 198.19.100.12 (ib)
#     S3       198.19.100.1:9000 (s3s-fs, as a VPC endpoint)
#
# The routers are what a device's site has: nftables with `ct helper` "ftp"
# on tcp dport 21 (the kernel's nf_conntrack_ftp / nf_nat_ftp), masquerade,
# and a stateful forward chain letting in only established/related
# connections. The CGN is the same without the helper, as on cellular.
#
# Each instance boots as the appliance does (instances.sh): a fake IMDS
# (tests/fake_imds.py) in its namespace serves the user-data the stack
# renders (render_stack.py from image/lakeftpd.cfn.yaml, at test time, for
# that topology, with Tls = on: certificate and key from S3, as the stack's
# TlsCertObject); the claim script (image/lakeftpd-claim.sh) runs against
# moto's EC2 API, then `lakeftpd serve --user-data`. The stack is rendered
# as an operator with such devices sets it: TlsAllowCcc = on, and Users with
# the fleet's user plus one at tls_session_reuse = off for the clients that
# cannot resume (cells.sh). Three lines are added
# for this machine: root, spool (directories of the run) and s3_endpoint
# (the S3 host above).
#
# Topology `nlb`: control through the NLB, PASV advertises the instance's
# public address (IMDS public-ipv4). Topology `direct`: both instances claim
# an Elastic IP of the pool at once; the addresses they hold in EC2 become the
# IGW's 1:1 NAT; each device talks to an instance's address, and active data
# leaves the instance from port 20, made the public address by the 1:1 NAT.
#
# Every device runs every client with its DEFAULT settings in each mode it
# has, uploading one file: a cell is `ok`
# when the client succeeded and the file is byte-identical in S3 (the
# stack renders keep_local = off: no home copy once S3 has it). The measured table is printed, and the test
# fails when a cell differs from tests/topology/expected.txt (the table
# docs/interop.md "Topology" documents).
#
#   sudo tests/topology/clients.sh     # LAKEFTPD_BIN=... to test another build
#   TOPOLOGIES="direct" tests/topology/clients.sh   # one topology
#
# Needs root, iproute2, nftables, curl, lftp, busybox, inetutils-ftp, tnftp,
# python3 (PyYAML), openssl, s3s-fs; for the direct topology's claim
# moto_server, boto3 and the AWS CLI (tests/appliance/install-deps.sh).
# Ends with "N passed, M failed".
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
template=${TEMPLATE:-$repo/image/lakeftpd.cfn.yaml}
expected_table=$here/expected.txt
TOPOLOGIES=${TOPOLOGIES:-"direct nlb"}
PASSWORD=topology-pass
USER_NAME=device01
REUSE_OFF_USER=device02 # tls_session_reuse = off in its section (cells.sh)
CELL_TIMEOUT=45 # seconds; a failing active cell takes active_connect_timeout (10 s)

if [ "$(id -u)" != 0 ]; then
    echo "topology clients: needs root (network namespaces)"
    echo "0 passed, 1 failed"
    exit 1
fi
for tool in ip nft curl lftp busybox inetutils-ftp tnftp python3 openssl sha256sum timeout; do
    if ! command -v "$tool" >/dev/null; then
        echo "topology clients: $tool is missing (tests/install-deps.sh)"
        echo "0 passed, 1 failed"
        exit 1
    fi
done
s3s_fs=${S3S_FS:-$(command -v s3s-fs || echo "${HOME:-/root}/.cargo/bin/s3s-fs")}
if ! [ -x "$s3s_fs" ]; then
    echo "topology clients: s3s-fs is missing (bash tests/install-s3s-fs.sh)"
    echo "0 passed, 1 failed"
    exit 1
fi
bin=${LAKEFTPD_BIN:-}
if [ -z "$bin" ]; then
    (cd "$repo" && cargo build --quiet) || exit 1
    bin=$repo/target/debug/lakeftpd
fi

work=$(mktemp -d /tmp/lakeftpd-topo-clients.XXXXXX)
p="topo$$" # namespace prefix: concurrent runs do not collide
passed=0
failed=0
pids=()
t_start=$(date +%s.%N)

# --- addresses ------------------------------------------------------------------
DEVICES="routed natftp fwftp cgnat"
declare -A DEVICE_IP=([routed]=198.18.13.10 [natftp]=198.19.1.10 [fwftp]=198.18.12.10 [cgnat]=198.19.2.10)
declare -A DEVICE_GW=([routed]=198.18.13.1 [natftp]=198.19.1.1 [fwftp]=198.18.12.1 [cgnat]=198.19.2.1)
NLB_VIP=198.18.30.1
INSTANCES="ia ib"
declare -A PRIVATE_IP=([ia]=198.19.100.11 [ib]=198.19.100.12)
declare -A PUBLIC_IP # each instance's, filled by start_instances
VPC_GW=198.19.100.1
VPC_CIDR=198.19.100.0/24
S3_PORT=9000
BUCKET=lake
ACCESS_KEY=AKIALAKEFTPDTOPOCLNT
SECRET_KEY='lakeftpd/topology+clients/KEY0123456'

delete_namespaces() {
    local ns pid
    for ns in $(ip netns list | awk '{print $1}' | grep "^$p-"); do
        for pid in $(ip netns pids "$ns"); do
            kill -9 "$pid" 2>/dev/null
        done
        ip netns delete "$ns"
    done
}
cleanup() {
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
    delete_namespaces
    [ -n "${KEEP_WORK:-}" ] && echo "work kept: $work" || rm -rf "$work"
}
trap cleanup EXIT
trap "exit 143" TERM INT

ok() {
    echo "ok    $1"
    passed=$((passed + 1))
}
fail() {
    echo "FAIL  $1"
    [ $# -gt 1 ] && printf '%s\n' "$2" | head -30 | sed 's/^/      /'
    failed=$((failed + 1))
}
check() { # check NAME COMMAND...
    local name=$1
    shift
    if "$@" >"$work/check.out" 2>&1; then ok "$name"; else fail "$name" "$(cat "$work/check.out")"; fi
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
inns() { # inns HOST COMMAND...
    local host=$1
    shift
    ip netns exec "$p-$host" "$@"
}

source "$here/network.sh"
source "$here/cells.sh"
source "$here/instances.sh"

# --- S3 and the certificate ---------------------------------------------------------
start_s3() {
    mkdir -p "$work/s3/$BUCKET/tls"
    # The stack's FTPS certificate lives in S3 (TlsCertObject/TlsKeyObject).
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=lakeftpd-topology \
        -addext basicConstraints=critical,CA:FALSE \
        -keyout "$work/s3/$BUCKET/tls/key.pem" -out "$work/s3/$BUCKET/tls/cert.pem" 2>/dev/null || return 1
    ip netns exec "$p-edge" "$s3s_fs" --host "$VPC_GW" --port "$S3_PORT" \
        --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" "$work/s3" >>"$work/s3.log" 2>&1 &
    pids+=("$!")
    local code
    for _ in $(seq 1 100); do
        code=$(inns ia curl -s -o /dev/null -m 1 -w '%{http_code}' "http://$VPC_GW:$S3_PORT/") || true
        [ "$code" != 000 ] && return 0
        sleep 0.1
    done
    echo "no answer from $VPC_GW:$S3_PORT"
    return 1
}

# --- the matrix -----------------------------------------------------------------------
# server_for TOPOLOGY DEVICE: the address the device is configured with.
server_for() {
    if [ "$1" = nlb ]; then
        echo "$NLB_VIP"
    else
        # Devices spread over both instances' addresses.
        case $2 in
            routed | fwftp) echo "${PUBLIC_IP[ia]}" ;;
            *) echo "${PUBLIC_IP[ib]}" ;;
        esac
    fi
}

# measure TOPOLOGY DEVICE CLIENT MODE SERVER: one cell; its line
# "TOPOLOGY DEVICE CLIENT MODE ok|fail" in $work/results/, a file of its own.
measure() {
    local topology=$1 device=$2 client=$3 mode=$4 server=$5
    local cell=$topology-$device-$client-$mode
    local file=$work/dev/$device/$cell.bin
    head -c $((20000 + RANDOM)) /dev/urandom >"$file"
    local status=fail user
    user=$(user_for "$client")
    if run_cell "$device" "$server" "$client" "$mode" "$file" "$cell.bin" "$user" >"$work/logs/$cell.log" 2>&1 &&
        landed "$cell.bin" "$file" "$user"; then
        status=ok
    fi
    echo "$topology $device $client $mode $status" >"$work/results/$cell"
}

# run_device TOPOLOGY DEVICE: the device's passive cells one after the
# other, its active cells all at once beside them (a failing active cell
# waits active_connect_timeout, 10 s).
run_device() {
    local topology=$1 device=$2 server cell client mode
    server=$(server_for "$topology" "$device")
    mkdir -p "$work/dev/$device"
    for cell in $CELLS; do
        client=${cell%:*}
        mode=${cell#*:}
        if [ "$mode" = active ]; then
            measure "$topology" "$device" "$client" "$mode" "$server" &
        else
            measure "$topology" "$device" "$client" "$mode" "$server"
        fi
    done
    wait
}

sha_of() { sha256sum <"$1" | cut -c1-64; }

# landed NAME FILE USER: in S3, byte-identical, under the stack's default
# key (user=USER/dt=D/HHMMSS-UUID-NAME). The stack renders keep_local = off
# and ack = s3, so after the 226 the object is there and the home copy is gone.
landed() {
    local name=$1 sha obj
    sha=$(sha_of "$2")
    for obj in "$work/s3/$BUCKET/raw/user=$3"/dt=*/*-"$name"; do
        [ -f "$obj" ] && [ "$(sha_of "$obj")" = "$sha" ] && return 0
    done
    echo "$name: not in S3 (or not byte-identical)" >&2
    return 1
}

run_topology() { # run_topology TOPOLOGY
    local topology=$1 t0 i device
    echo "== topology $topology =="
    if ! python3 "$here/render_stack.py" "$template" --has-parameter Topology; then
        echo "      NOTE: the template has no Topology parameter: nlb = its rendering, direct = the same with epsv = on (stopgap)"
    fi
    t0=$(now)
    start_instances "$topology" || { stop_instances; return; }
    for device in $DEVICES; do
        run_device "$topology" "$device" &
    done
    wait_devices
    stop_instances
    for i in $INSTANCES; do cp "$work/$i/log" "$work/logs/$topology-$i.log"; done
    echo "      rendered: $(grep -E '^(public_address|epsv|active_source_port|tls|tls_allow_ccc) ' "$work/rendered-$topology.conf" | tr -s ' ' | paste -sd';')"
    echo "      topology $topology: $(cat "$work/results/$topology"-* 2>/dev/null | wc -l) cells in $(since "$t0")s"
}

wait_devices() {
    local job
    for job in $(jobs -p); do
        case " ${pids[*]} " in *" $job "*) continue ;; esac
        wait "$job"
    done
}

# expected TOPOLOGY DEVICE CLIENT MODE: the first matching line of expected.txt.
expected() {
    awk -v t="$1" -v d="$2" -v c="$3" -v m="$4" '
        function match1(pattern, value) { gsub(/\*/, ".*", pattern); return value ~ ("^" pattern "$") }
        /^#/ || NF < 5 { next }
        match1($1, t) && match1($2, d) && match1($3, c) && match1($4, m) { print $5; exit }' "$expected_table"
}

# server_reply TOPOLOGY NAME: the reply code the instances logged for the
# STOR of NAME, or "-" when none reached a transfer (the client failed
# before: its PORT refused, its data connection refused, ...).
server_reply() {
    local code
    code=$(cat "$work/logs/$1"-i?.log 2>/dev/null | grep -F "verb=STOR path=\"/$2\"" |
        grep -o 'reply=[0-9]*' | tail -1 | cut -d= -f2)
    echo "${code:--}"
}

# compare: the measured table against the expected one; prints the table.
compare() {
    local topology device client mode status want diffs=0
    printf '%-8s %-7s %-11s %-8s %-6s %-9s %s\n' topology device client mode server measured expected
    while read -r topology device client mode status; do
        want=$(expected "$topology" "$device" "$client" "$mode")
        local mark=""
        if [ "$status" != "$want" ]; then
            mark="  <-- differs"
            diffs=$((diffs + 1))
        fi
        printf '%-8s %-7s %-11s %-8s %-6s %-9s %s%s\n' "$topology" "$device" "$client" "$mode" \
            "$(server_reply "$topology" "$topology-$device-$client-$mode.bin")" "$status" "$want" "$mark"
    done < <(cat "$work/results"/* | sort)
    return $((diffs > 0))
}

# ccc_protected: every lftp-ccc cell that passed did what it is there for:
# its session cleared the control connection with CCC (the session end line
# says security=explicit-ccc) and its file still came under PROT P (the
# STOR line says protected=yes). Lines are tied by the client's address:port.
ccc_protected() {
    local result topology device client mode status stor peer n=0
    for result in "$work/results"/*-lftp-ccc-active; do
        read -r topology device client mode status <"$result"
        [ "$status" = ok ] || continue
        n=$((n + 1))
        stor=$(cat "$work/logs/$topology"-i?.log |
            grep -F "verb=STOR path=\"/$topology-$device-$client-$mode.bin\"" | grep 'reply=226' | tail -1)
        peer=$(grep -o 'client=[^ ]*' <<<"$stor")
        grep -q 'protected=yes' <<<"$stor" || { echo "$topology $device: no protected STOR: $stor"; return 1; }
        cat "$work/logs/$topology"-i?.log | grep "session end $peer " | grep -q 'security=explicit-ccc' ||
            { echo "$topology $device: the session of $peer did not end security=explicit-ccc"; return 1; }
    done
    echo "$n lftp-ccc cells passed, each after CCC and under PROT P"
    [ "$n" -gt 0 ]
}

# docs_match: docs/interop.md's measured table says what expected.txt says,
# cell by cell (and has every cell the test measures).
docs_match() {
    local topology device client mode mark want n=0 bad=0
    while read -r topology device client mode mark; do
        n=$((n + 1))
        want=$(expected "$topology" "$device" "$client" "$mode")
        if [ "$mark" != "$want" ]; then
            echo "docs/interop.md: $topology $device $client $mode is $mark, expected.txt: $want"
            bad=1
        fi
    done < <(python3 "$here/doc_table.py" "$repo/docs/interop.md")
    local cells
    cells=$(wc -w <<<"$CELLS")
    [ "$n" = $((cells * 8)) ] || { echo "docs/interop.md has $n cells, the test $((cells * 8))"; bad=1; }
    return $bad
}

# pivot: the measured table as docs/interop.md shows it (one row per client
# and mode, one column per topology and device).
pivot() {
    cat "$work/results"/* | awk -v devices="$DEVICES" -v topologies="$TOPOLOGIES" -v cells="$CELLS" '
        { cell[$3 " " $4, $1 " " $2] = ($5 == "ok" ? "ok" : "--") }
        END {
            nt = split(topologies, t, " "); nd = split(devices, d, " ")
            n = split(cells, order, " ")
            for (k = 1; k <= n; k++) sub(":", " ", order[k])
            printf "%-20s", "client mode"
            for (i = 1; i <= nt; i++) for (j = 1; j <= nd; j++) printf " %-13s", t[i] ":" d[j]
            print ""
            for (k = 1; k <= n; k++) {
                printf "%-20s", order[k]
                for (i = 1; i <= nt; i++) for (j = 1; j <= nd; j++) printf " %-13s", cell[order[k], t[i] " " d[j]]
                print ""
            }
        }'
}

# --- run ------------------------------------------------------------------------------
mkdir -p "$work/results" "$work/logs"
check "docs/interop.md's topology table is tests/topology/expected.txt" docs_match
check "network: the Internet, four device sites and AWS" build_network
check "S3 host reachable from the instances" start_s3
for topology in $TOPOLOGIES; do
    run_topology "$topology"
done
echo "== measured (device x client x mode x topology) =="
if compare >"$work/table" 2>&1; then
    cat "$work/table"
    ok "every cell as tests/topology/expected.txt says"
else
    cat "$work/table"
    fail "cells differ from tests/topology/expected.txt (logs: KEEP_WORK=1, then $work/logs)"
fi
check "lftp-ccc: the control connection cleared by CCC, the files protected" ccc_protected
echo "== the same, by client and mode (ok / --) =="
pivot
cells=$(cat "$work/results"/* 2>/dev/null | wc -l)
oks=$(cat "$work/results"/* 2>/dev/null | grep -c ' ok$')
want_cells=$(($(wc -w <<<"$CELLS") * $(wc -w <<<"$DEVICES") * $(wc -w <<<"$TOPOLOGIES")))
check "every cell measured ($cells of $want_cells)" test "$cells" = "$want_cells"
echo "figures: topology clients: $cells cells, $oks ok, $((cells - oks)) fail; total $(since "$t_start")s"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
