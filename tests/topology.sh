#!/bin/bash
# The deployment topology on one machine, with network namespaces as hosts:
#
#   dev1..devN (198.18.1.11+)  ── devices network 198.18.1.0/24 ──┐
#                                                               lb (198.18.1.1 = the VIP,
#                                                                   198.18.2.1; also the
#                                                                   router, as the VPC's is)
#   aza 198.18.2.11 ("AZ a"), azb 198.18.2.12 ("AZ b") ── instances network 198.18.2.0/24
#   s3 198.18.3.10:9000 (s3s-fs, the S3 API) ── 198.18.3.0/24, reached from the
#                                                 instances through lb (198.18.3.1),
#                                                 as a VPC endpoint is
#
# Run twice:
#   (a) haproxy in TCP mode with send-proxy-v2 (lakeftpd proxy_protocol = v2,
#       proxy_from = the balancer), health check HTTP GET /healthz on :8021;
#   (b) kernel DNAT with nftables, which keeps the client address like NLB
#       instance targets (proxy_protocol = off); the instances route through
#       the balancer, so replies are un-NATed there. A small health checker
#       (the NLB's role) points the DNAT map at healthy instances only.
# In both, control goes through the balancer; active data connections go
# from the instance (port 20) straight to the device; passive ones straight
# to the instance's own address (public_address = its IP, epsv = off).
#
# Shows: N devices x M files, active and passive, all land byte-identical in
# S3; the logs name each device's real address; SIGKILL of one instance
# mid-run (while S3 stalls, so its spool holds acknowledged files not yet
# delivered) and its restart lose no file that got a 226: the restarted
# instance replays its spool; SIGTERM of the other mid-upload lets its uploads
# complete and reach S3 while new sessions go to the survivor. No object in
# S3 differs from what its device sent (no partial object). Ends with the
# figures of each balancer mode: devices, files, time, files lost.
#
# FTPS: the instances run with `tls = on` (a certificate made with openssl
# at start); in phase 1 device 1 also uploads one file over explicit TLS in
# active mode (lftp, ftp:ssl-force and ftp:ssl-protect-data; Debian 12's
# curl 7.88 sends active FTPS data in clear, curl#10666) and device 2 one in
# passive mode (curl --ssl-reqd), through the balancer, checked in S3 like
# the others, and the instance logs must show them as protected transfers.
#
# S3 delivery: `ack = disk` on AZ a (the one SIGKILLed: its 226 comes once
# the file is fsync'd in the spool, so the crash tests the spool replay) and
# `ack = s3` on AZ b (the one drained: its 226 comes once S3 has the object,
# so the drain must keep delivery working until the last upload is in S3).
# Object keys: user={user}/dt={yyyy}-{mm}-{dd}/instance={instance}/{path}.
# Devices are users, so each device's files stay apart; each instance runs in
# its own UTS namespace with the host name aza or azb (no IMDS here, so
# {instance} is the host name), so every object also names the instance that
# took the upload. s3s-fs stores bucket `lake` as the directory s3/lake.
#
# Then tests/topology/clients.sh: devices as they connect (routed, behind a
# NAT router with the kernel's FTP helper, a public address behind an
# FTP-inspecting firewall, carrier-grade NAT) with clients at their default
# settings, against both topologies of the stack (`nlb` and `direct`), each
# running the user-data the template renders; the measured table must be
# tests/topology/expected.txt. Its pass/fail counts add to this script's.
#
#   sudo tests/topology.sh            # LAKEFTPD_BIN=... to test another build
#
# Needs root, iproute2, nftables, haproxy, curl, lftp, openssl, unshare, s3s-fs
# (tests/install-s3s-fs.sh; S3S_FS=... to use another). Every loop is bounded; all
# namespaces and processes are removed on exit. Ends with "N passed, M failed".
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
DEVICES=${DEVICES:-6}
FILES=${FILES:-8} # per device in phase 1, half active, half passive
PASSWORD='topology pass'

if [ "$(id -u)" != 0 ]; then
    echo "topology: needs root (network namespaces)"
    echo "0 passed, 1 failed"
    exit 1
fi
for tool in ip nft haproxy curl lftp openssl sha256sum unshare; do
    if ! command -v "$tool" >/dev/null; then
        echo "topology: $tool is missing"
        echo "0 passed, 1 failed"
        exit 1
    fi
done

s3s_fs=${S3S_FS:-$(command -v s3s-fs || echo "${HOME:-/root}/.cargo/bin/s3s-fs")}
if ! [ -x "$s3s_fs" ]; then
    echo "topology: s3s-fs is missing (bash tests/install-s3s-fs.sh)"
    echo "0 passed, 1 failed"
    exit 1
fi

bin=${LAKEFTPD_BIN:-}
if [ -z "$bin" ]; then
    (cd "$repo" && cargo build --quiet) || exit 1
    bin=$repo/target/debug/lakeftpd
fi

work=$(mktemp -d /tmp/lakeftpd-topology.XXXXXX)
p="lk$$" # namespace prefix: concurrent runs do not collide
passed=0
failed=0
pids=()
t_start=$(date +%s.%N)

# Ends every process left inside this run's namespaces (by PID), then
# deletes the namespaces.
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
    for pid in "${pids[@]}"; do
        kill -9 "$pid" 2>/dev/null
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null
    done
    delete_namespaces
    rm -rf "$work"
}
trap cleanup EXIT

ok() {
    echo "ok    $1"
    passed=$((passed + 1))
}
fail() {
    echo "FAIL  $1"
    [ $# -gt 1 ] && printf '%s\n' "$2" | head -20 | sed 's/^/      /'
    failed=$((failed + 1))
}
check() { # check NAME CONDITION-COMMAND...
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
dev_ip() { echo "198.18.1.$((10 + $1))"; }
VIP=198.18.1.1
LB_INNER=198.18.2.1
declare -A INSTANCE_IP=([aza]=198.18.2.11 [azb]=198.18.2.12)
declare -A ACK=([aza]=disk [azb]=s3) # why: see the top of this file
LB_S3SIDE=198.18.3.1
S3_IP=198.18.3.10
S3_PORT=9000
BUCKET=lake
ACCESS_KEY=AKIALAKEFTPDTOPOLOGY
SECRET_KEY='lakeftpd/topology+secret/KEY0123456789'

# --- hosts and networks -------------------------------------------------------
build_network() {
    ip netns add "$p-sw"
    inns sw ip link set lo up
    inns sw ip link add brdev type bridge
    inns sw ip link add brsrv type bridge
    inns sw ip link add brs3 type bridge
    inns sw ip link set brdev up
    inns sw ip link set brsrv up
    inns sw ip link set brs3 up
    # plug HOST SWITCH-PORT BRIDGE ADDRESS/PREFIX [IFNAME]
    plug() {
        local host=$1 port=$2 bridge=$3 addr=$4 ifname=${5:-eth0}
        ip -n "$p-sw" link add "$port" type veth peer name "$ifname" netns "$p-$host"
        inns sw ip link set "$port" master "$bridge" up
        inns "$host" ip addr add "$addr" dev "$ifname"
        inns "$host" ip link set "$ifname" up
    }
    ip netns add "$p-lb"
    inns lb ip link set lo up
    inns lb sysctl -qw net.ipv4.conf.default.rp_filter=0
    plug lb lbdev brdev "$VIP/24" eth0
    plug lb lbsrv brsrv "$LB_INNER/24" eth1
    plug lb lbs3 brs3 "$LB_S3SIDE/24" eth2
    inns lb sysctl -qw net.ipv4.ip_forward=1
    inns lb sysctl -qw net.ipv4.conf.all.rp_filter=0
    for i in $(seq 1 "$DEVICES"); do
        ip netns add "$p-dev$i"
        inns "dev$i" ip link set lo up
        plug "dev$i" "d$i" brdev "$(dev_ip "$i")/24"
        inns "dev$i" ip route add default via "$VIP"
    done
    for az in aza azb; do
        ip netns add "$p-$az"
        inns "$az" ip link set lo up
        plug "$az" "$az" brsrv "${INSTANCE_IP[$az]}/24"
        inns "$az" ip route add default via "$LB_INNER"
    done
    ip netns add "$p-s3"
    inns s3 ip link set lo up
    plug s3 s3 brs3 "$S3_IP/24"
    inns s3 ip route add default via "$LB_S3SIDE"
}

# --- the S3 host --------------------------------------------------------------
start_s3() { # a fresh, empty bucket
    rm -rf "$work/s3"
    mkdir -p "$work/s3/$BUCKET"
    ip netns exec "$p-s3" "$s3s_fs" --host "$S3_IP" --port "$S3_PORT" \
        --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" "$work/s3" >>"$work/s3.log" 2>&1 &
    S3_PID=$!
    pids+=("$!")
}

s3_reachable() { # from both instance hosts, through the router: up to 10 s
    local az i code
    for az in aza azb; do
        for i in $(seq 1 100); do
            code=$(inns "$az" curl -s -o /dev/null -m 1 -w '%{http_code}' "http://$S3_IP:$S3_PORT/") || true
            [ "$code" != 000 ] && break
            sleep 0.1
        done
        [ "$code" != 000 ] || { echo "no answer from $S3_IP:$S3_PORT in $az"; return 1; }
        echo "$az: HTTP $code"
    done
}

# --- lakeftpd instances -------------------------------------------------------
hash=$(printf '%s\n' "$PASSWORD" | "$bin" passwd)
# One FTPS certificate for both instances (clients do not verify it here).
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=lakeftpd-topology \
    -addext basicConstraints=critical,CA:FALSE \
    -keyout "$work/tls-key.pem" -out "$work/tls-cert.pem" 2>/dev/null || {
    echo "topology: openssl could not make a certificate"
    echo "0 passed, 1 failed"
    exit 1
}

write_config() { # write_config AZ PROXY(on|off)
    local az=$1 proxy=$2 dir=$work/$1
    mkdir -p "$dir/home" "$dir/spool"
    {
        echo "listen = 0.0.0.0:21"
        echo "root = $dir/home"
        echo "active_source_port = 20"
        echo "passive_ports = 50000-50999"
        echo "public_address = ${INSTANCE_IP[$az]}"
        echo "epsv = off"
        echo "health_listen = 0.0.0.0:8021"
        echo "drain_delay = 2s"
        echo "drain_timeout = 30s"
        echo "tcp_keepalive = 60s"
        echo "login_fail_delay = 100ms"
        echo "s3_bucket = $BUCKET"
        echo "s3_endpoint = http://$S3_IP:$S3_PORT"
        echo "s3_region = ap-northeast-1"
        echo "s3_key = user={user}/dt={yyyy}-{mm}-{dd}/instance={instance}/{path}"
        echo "keep_local = on   # landed() checks the home copy too"
        echo "ack = ${ACK[$az]}"
        echo "spool = $dir/spool"
        echo "tls = on"
        echo "tls_cert = $work/tls-cert.pem"
        echo "tls_key = $work/tls-key.pem"
        if [ "$proxy" = on ]; then
            echo "proxy_protocol = v2"
            echo "proxy_from = $LB_INNER/32"
        fi
        for i in $(seq 1 "$DEVICES"); do
            printf '[user d%s]\npassword = %s\npermissions = upload,read\n' "$i" "$hash"
        done
    } >"$dir/lakeftpd.conf"
    chmod 600 "$dir/lakeftpd.conf"
}

declare -A LAKE_PID
start_instance() { # start_instance AZ
    local az=$1
    # Not through `inns`: a backgrounded function is a subshell, and its PID
    # is not the server's. `env`, `ip netns exec`, `unshare` (without --fork)
    # and `sh -c 'exec ...'` all exec, so $! is lakeftpd. The host name AZ,
    # set in a UTS namespace of its own, is what {instance} becomes.
    # shellcheck disable=SC2016 # $0 and $@ expand in that inner shell
    env -u AWS_SESSION_TOKEN -u AWS_PROFILE \
        AWS_ACCESS_KEY_ID="$ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$SECRET_KEY" \
        ip netns exec "$p-$az" unshare --uts \
        sh -c 'echo "$0" >/proc/sys/kernel/hostname && exec "$@"' "$az" \
        "$bin" serve --config "$work/$az/lakeftpd.conf" >>"$work/$az/log" 2>&1 &
    LAKE_PID[$az]=$!
    pids+=("$!")
    wait_health "$az" 200
}

health_of() { # prints the HTTP status of AZ's /healthz, 000 if none
    inns lb curl -s -o /dev/null -m 1 -w '%{http_code}' "http://${INSTANCE_IP[$1]}:8021/healthz"
}

wait_health() { # wait_health AZ STATUS: up to 10 s
    local i
    for i in $(seq 1 100); do
        [ "$(health_of "$1")" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

# --- balancers ----------------------------------------------------------------
start_haproxy() {
    cat >"$work/haproxy.cfg" <<EOF
global
    maxconn 2000
defaults
    mode tcp
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    retries 3
    option redispatch
frontend ftp
    bind $VIP:21
    default_backend lakeftpd
backend lakeftpd
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
    default-server inter 300ms fall 1 rise 2 port 8021
    server aza ${INSTANCE_IP[aza]}:21 send-proxy-v2 check
    server azb ${INSTANCE_IP[azb]}:21 send-proxy-v2 check
EOF
    ip netns exec "$p-lb" haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
    LB_PID=$!
    pids+=("$!")
    sleep 1.5 # two checks (rise 2) at 300 ms
}

# DNAT: a new control connection picks a slot (in turn: an NLB's flow hash
# spreads connections like chance does, but with chance all 6 slow uploads of
# phase 3 would miss AZ b in 1 run of 64), the slot map names
# an instance; conntrack keeps established connections where they are (as an
# NLB keeps them on a deregistered target).
start_dnat() {
    inns lb nft -f - <<EOF
table ip lb {
    map slots {
        typeof numgen inc mod 2 : ip daddr
        elements = { 0 : ${INSTANCE_IP[aza]}, 1 : ${INSTANCE_IP[azb]} }
    }
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr $VIP tcp dport 21 dnat to numgen inc mod 2 map @slots
    }
}
EOF
    # The health checker: every 200 ms (bounded run), both slots to the
    # healthy instances (a single healthy one takes both).
    (
        for _ in $(seq 1 3000); do
            [ -e "$work/stop-checker" ] && break
            healthy=()
            for az in aza azb; do
                [ "$(health_of "$az")" = 200 ] && healthy+=("${INSTANCE_IP[$az]}")
            done
            if [ ${#healthy[@]} -gt 0 ]; then
                s0=${healthy[0]}
                s1=${healthy[$((${#healthy[@]} - 1))]}
                printf 'flush map ip lb slots\nadd element ip lb slots { 0 : %s, 1 : %s }\n' "$s0" "$s1" |
                    inns lb nft -f - 2>/dev/null
            fi
            sleep 0.2
        done
    ) &
    LB_PID=$!
    pids+=("$!")
    sleep 0.5
}

# --- devices ------------------------------------------------------------------
make_files() { # make_files DIR COUNT SIZE-BASE
    local dir=$1 count=$2 base=$3 j
    mkdir -p "$dir"
    for j in $(seq 1 "$count"); do
        head -c $((base + j * 7919)) /dev/urandom >"$dir/f$j.bin"
    done
}

# upload I FILE NAME MODE [CURL-OPTIONS...]: one device upload through the VIP;
# appends "NAME MODE STATUS SHA" to the device's results (STATUS 0 = 226).
upload() {
    local i=$1 file=$2 name=$3 mode=$4
    shift 4
    local opts=(-sS --max-time 60 -T "$file")
    if [ "$mode" = active ]; then
        opts+=(-P "$(dev_ip "$i")")
    else
        # --no-ftp-skip-pasv-ip: through a balancer, curl's default (connect
        # to the control connection's address) fails; this test is about the
        # balancer's high availability, tests/topology/clients.sh about the
        # clients' defaults (docs/interop.md, "Topology").
        opts+=(--ftp-pasv --disable-epsv --no-ftp-skip-pasv-ip)
    fi
    inns "dev$i" curl "${opts[@]}" "$@" "ftp://d$i:${PASSWORD// /%20}@$VIP/$name" \
        >>"$work/curl-dev$i.log" 2>&1
    local status=$?
    local sha
    sha=$(sha256sum <"$file" | cut -c1-64)
    echo "$name $mode $status $sha" >>"$work/results/dev$i"
    echo "$name $sha" >>"$work/sent/dev$i" # every upload of this mode, 226 or not
}

# upload_tls I FILE NAME MODE: the same over explicit FTPS (AUTH TLS, PROT
# P): active with lftp, passive with curl --ssl-reqd. Results as upload's.
upload_tls() {
    local i=$1 file=$2 name=$3 mode=$4 status
    if [ "$mode" = active ]; then
        inns "dev$i" timeout 60 lftp -u "d$i,$PASSWORD" -e "set cmd:fail-exit yes; \
set ssl:verify-certificate no; set ftp:ssl-force yes; set ftp:ssl-protect-data yes; \
set ftp:passive-mode off; set net:max-retries 1; put $file -o $name; bye" "$VIP" \
            >>"$work/curl-dev$i.log" 2>&1
        status=$?
    else
        inns "dev$i" curl -sS --max-time 60 --ssl-reqd -k --ftp-pasv --disable-epsv --no-ftp-skip-pasv-ip \
            -T "$file" "ftp://d$i:${PASSWORD// /%20}@$VIP/$name" >>"$work/curl-dev$i.log" 2>&1
        status=$?
    fi
    local sha
    sha=$(sha256sum <"$file" | cut -c1-64)
    echo "$name tls-$mode $status $sha" >>"$work/results/dev$i"
    echo "$name $sha" >>"$work/sent/dev$i"
}

# tls_protected NAME...: an instance logged each as a protected STOR.
tls_protected() {
    local name
    for name in "$@"; do
        cat "$work/aza/log" "$work/azb/log" | grep "verb=STOR" | grep "path=\"/$name\"" | grep -q "protected=yes" ||
            { echo "no protected STOR of $name in the instance logs"; return 1; }
    done
}

sha_of() { sha256sum <"$1" | cut -c1-64; }

# in_s3 DEVICE NAME SHA AZ: the object s3://lake/user=dI/dt=*/instance=AZ/NAME
# is on the S3 host, byte-identical (any day: a run may cross midnight UTC).
in_s3() {
    local i=$1 name=$2 sha=$3 az=$4 obj
    for obj in "$work/s3/$BUCKET/user=d$i"/dt=*/"instance=$az/$name"; do
        [ -f "$obj" ] && [ "$(sha_of "$obj")" = "$sha" ] && return 0
    done
    return 1
}

# landed DEVICE NAME SHA: where an acknowledged file must be: in the home of
# the instance that took it (keep_local = on) and in S3 under that instance.
landed() {
    local i=$1 name=$2 sha=$3 az
    for az in aza azb; do
        local f=$work/$az/home/d$i/$name
        if [ -f "$f" ] && [ "$(sha_of "$f")" = "$sha" ] && in_s3 "$i" "$name" "$sha" "$az"; then
            return 0
        fi
    done
    return 1
}

spool_pending() { # files AZ has acknowledged (or replayed) and not yet delivered
    find "$work/$1/spool" -name '*.meta' 2>/dev/null | wc -l
}

# wait_delivered AZ...: until their spools are empty, up to 30 s; prints the
# seconds waited.
wait_delivered() {
    local t0 az n
    t0=$(now)
    for _ in $(seq 1 300); do
        n=0
        for az in "$@"; do n=$((n + $(spool_pending "$az"))); done
        [ "$n" = 0 ] && break
        sleep 0.1
    done
    since "$t0"
}

# Every object in the bucket is exactly a file its device sent under that name
# (nothing partial, nothing foreign); prints the number of objects.
s3_objects_whole() {
    local obj rel i name bad=0 n=0
    while IFS= read -r obj; do
        n=$((n + 1))
        rel=${obj#"$work/s3/$BUCKET/"}
        i=${rel#user=d}
        i=${i%%/*}
        name=${rel##*/}
        if ! grep -qx "$name $(sha_of "$obj")" "$work/sent/dev$i" 2>/dev/null; then
            echo "object $rel is not what device $i sent"
            bad=1
        fi
    done < <(find "$work/s3/$BUCKET" -type f)
    echo "$n objects"
    return $bad
}

# verify_results: every upload that got a 226 landed; prints counts.
verify_results() {
    local acked=0 total=0 lost=0 i name mode status sha
    : >"$work/lost"
    for i in $(seq 1 "$DEVICES"); do
        [ -f "$work/results/dev$i" ] || continue
        while read -r name mode status sha; do
            total=$((total + 1))
            [ "$status" = 0 ] || continue
            acked=$((acked + 1))
            if ! landed "$i" "$name" "$sha"; then
                lost=$((lost + 1))
                echo "dev$i $name ($mode)" >>"$work/lost"
            fi
        done <"$work/results/dev$i"
    done
    echo "$acked $total $lost"
}

logs_name_devices() { # every device's real address appears as a client
    local i missing=0
    for i in $(seq 1 "$DEVICES"); do
        if ! cat "$work/aza/log" "$work/azb/log" | grep -q "session start client=$(dev_ip "$i"):"; then
            echo "no session from $(dev_ip "$i")"
            missing=1
        fi
    done
    return $missing
}

no_balancer_clients() {
    ! cat "$work/aza/log" "$work/azb/log" | grep -E "client=($VIP|$LB_INNER):"
}

# --- one run ------------------------------------------------------------------
run_mode() { # run_mode haproxy|dnat
    local mode=$1 t0 i j
    echo "== mode $mode: $DEVICES devices, 2 instances =="
    t0=$(now)
    rm -rf "$work/aza" "$work/azb" "$work/results" "$work/sent" "$work/files" "$work/stop-checker"
    mkdir -p "$work/results" "$work/sent"
    build_network
    start_s3
    check "$mode: S3 host reachable from AZ a and AZ b through the router" s3_reachable
    local proxy=off
    [ "$mode" = haproxy ] && proxy=on
    write_config aza "$proxy"
    write_config azb "$proxy"
    check "$mode: AZ a healthy" start_instance aza
    check "$mode: AZ b healthy" start_instance azb
    if [ "$mode" = haproxy ]; then start_haproxy; else start_dnat; fi

    # Phase 1: N devices x M files, alternating active and passive.
    for i in $(seq 1 "$DEVICES"); do make_files "$work/files/dev$i" "$FILES" 20000; done
    local t1
    t1=$(now)
    for i in $(seq 1 "$DEVICES"); do
        (
            for j in $(seq 1 "$FILES"); do
                m=active
                [ $((j % 2)) = 0 ] && m=passive
                upload "$i" "$work/files/dev$i/f$j.bin" "p1-f$j.bin" "$m"
            done
            # FTPS: device 1 active, device 2 passive (one file each).
            case $i in
                1) upload_tls 1 "$work/files/dev1/f1.bin" p1-tls-active.bin active ;;
                2) upload_tls 2 "$work/files/dev2/f2.bin" p1-tls-passive.bin passive ;;
            esac
        ) &
    done
    wait_devices
    local p1_time
    p1_time=$(since "$t1")
    local p1_drain
    p1_drain=$(wait_delivered aza azb)
    read -r acked total lost < <(verify_results)
    local tls_files=$((DEVICES < 2 ? DEVICES : 2))
    local expected=$((DEVICES * FILES + tls_files))
    check "$mode phase 1: $acked/$expected uploads acknowledged (226) in ${p1_time}s" test "$acked" = "$expected"
    check "$mode phase 1: every acknowledged file byte-identical in S3 and on disk (lost $lost; AZ a's spool drained ${p1_drain}s later)" test "$lost" = 0
    check "$mode phase 1: files spread over both instances" both_instances_used
    check "$mode: logs show each device's real address" logs_name_devices
    local tls_names=(p1-tls-active.bin p1-tls-passive.bin)
    check "$mode phase 1: FTPS uploads (active: lftp, passive: curl --ssl-reqd) landed as protected transfers" \
        tls_protected "${tls_names[@]:0:$tls_files}"
    check "$mode: no session carries the balancer's address" no_balancer_clients
    echo "      phase 1: $DEVICES devices x $FILES files ($((FILES / 2)) active, $((FILES / 2)) passive) + $tls_files over FTPS = $expected files in ${p1_time}s, lost $lost"
    P1_FILES=$((P1_FILES + expected))
    LOST=$((LOST + lost))
    local m_acked=$acked m_total=$total m_lost=$lost

    # Phase 2: SIGKILL AZ a mid-run, restart it.
    rm -f "$work/results"/*
    for i in $(seq 1 "$DEVICES"); do make_files "$work/files/k$i" 6 300000; done
    local t2
    t2=$(now)
    for i in $(seq 1 "$DEVICES"); do
        (
            for j in $(seq 1 6); do
                m=active
                [ $((j % 2)) = 0 ] && m=passive
                upload "$i" "$work/files/k$i/f$j.bin" "p2-f$j.bin" "$m" --limit-rate 1M
            done
        ) &
    done
    # S3 stalls (SIGSTOP: connections wait, nothing fails) shortly before
    # the crash, so AZ a (ack = disk) crashes with acknowledged files in its
    # spool that S3 does not have yet; it comes back after the restart.
    sleep 0.5
    kill -STOP "$S3_PID"
    sleep 0.5
    kill -9 "${LAKE_PID[aza]}"
    wait "${LAKE_PID[aza]}" 2>/dev/null
    local held
    held=$(spool_pending aza)
    echo "      phase 2: S3 stalled at 0.5s; SIGKILL AZ a at $(since "$t2")s with $held acknowledged files in its spool, not in S3"
    sleep 1
    check "$mode phase 2: AZ a restarted and healthy" start_instance aza
    kill -CONT "$S3_PID"
    local replayed
    replayed=$(grep -o 'spool: [0-9]* files from before the restart' "$work/aza/log" | tail -1 | awk '{print $2}')
    check "$mode phase 2: AZ a replayed its spool at restart (${replayed:-0} files, $held held at the kill)" \
        test "$held" -ge 1 -a "${replayed:-0}" -ge "$held"
    wait_devices
    local p2_drain
    p2_drain=$(wait_delivered aza azb)
    read -r acked total lost < <(verify_results)
    check "$mode phase 2: after SIGKILL + restart every 226'd file is in S3 ($acked of $total acknowledged, lost $lost; spools drained ${p2_drain}s after the uploads)" test "$lost" = 0
    check "$mode phase 2: no partial upload visible" no_partials
    echo "      phase 2: $total uploads during the kill, $acked acknowledged, lost $lost, in $(since "$t2")s"
    KILL_FILES=$((KILL_FILES + acked))
    REPLAYED=$((REPLAYED + ${replayed:-0}))
    LOST=$((LOST + lost))
    m_acked=$((m_acked + acked))
    m_total=$((m_total + total))
    m_lost=$((m_lost + lost))
    # Let the balancer see AZ a again (haproxy rise 2 x 300 ms; checker 200 ms).
    sleep 1

    # Phase 3: SIGTERM AZ b in the middle of slow uploads.
    rm -f "$work/results"/*
    for i in $(seq 1 "$DEVICES"); do make_files "$work/files/s$i" 1 400000; done
    local t_term
    for i in $(seq 1 "$DEVICES"); do
        m=active
        [ $((i % 2)) = 0 ] && m=passive
        upload "$i" "$work/files/s$i/f1.bin" "p3-slow.bin" "$m" --limit-rate 150K &
    done
    sleep 1
    t_term=$(now)
    kill -TERM "${LAKE_PID[azb]}"
    local to503=none
    for _ in $(seq 1 50); do
        if [ "$(health_of azb)" = 503 ]; then
            to503=$(since "$t_term")
            break
        fi
        sleep 0.05
    done
    check "$mode phase 3: AZ b /healthz 503 after SIGTERM (${to503}s)" test "$to503" != none
    sleep 2.5 # drain_delay 2s + the balancer noticing
    # New sessions now: all must go to the survivor.
    for i in $(seq 1 "$DEVICES"); do make_files "$work/files/n$i" 1 10000; done
    local b_sessions_before
    b_sessions_before=$(grep -c "session start" "$work/azb/log")
    for i in $(seq 1 "$DEVICES"); do
        upload "$i" "$work/files/n$i/f1.bin" "p3-new.bin" passive &
    done
    wait_devices
    local drained_exit=none
    for _ in $(seq 1 100); do
        if ! kill -0 "${LAKE_PID[azb]}" 2>/dev/null; then
            wait "${LAKE_PID[azb]}"
            drained_exit=$?
            break
        fi
        sleep 0.1
    done
    local p3_drain
    p3_drain=$(wait_delivered aza)
    read -r acked total lost < <(verify_results)
    local on_b_done on_b_s3
    on_b_done=$(grep -c "verb=STOR path=\"/p3-slow.bin\".*reply=226" "$work/azb/log")
    on_b_s3=$(find "$work/s3/$BUCKET" -path '*/instance=azb/p3-slow.bin' -type f | wc -l)
    check "$mode phase 3: every upload acknowledged ($acked/$total), the drained instance finished $on_b_done" test "$acked" = "$total"
    check "$mode phase 3: uploads in progress on AZ b completed during the drain and are in S3 ($on_b_s3 objects)" \
        test "$on_b_done" -ge 1 -a "$on_b_s3" = "$on_b_done"
    check "$mode phase 3: every acknowledged file in S3 and on disk (lost $lost; AZ a's spool drained ${p3_drain}s after the uploads)" test "$lost" = 0
    check "$mode phase 3: AZ b's spool is empty after its drain" test "$(spool_pending azb)" = 0
    check "$mode phase 3: new sessions went to the survivor" new_sessions_on_survivor "$b_sessions_before"
    check "$mode phase 3: AZ b exited 0 after the drain (exit $drained_exit)" test "$drained_exit" = 0
    echo "      phase 3: $on_b_done slow uploads were on AZ b and finished during its drain; 503 after ${to503}s; SIGTERM to exit $(since "$t_term")s"
    LOST=$((LOST + lost))
    m_acked=$((m_acked + acked))
    m_total=$((m_total + total))
    m_lost=$((m_lost + lost))

    # Tear down this mode's hosts; AZ a drains (its spool is empty already).
    touch "$work/stop-checker"
    kill "$LB_PID" "${LAKE_PID[aza]}" 2>/dev/null
    wait "$LB_PID" "${LAKE_PID[aza]}" 2>/dev/null
    check "$mode: every object in S3 is exactly what its device sent" s3_objects_whole
    local objects
    objects=$(find "$work/s3/$BUCKET" -type f | wc -l)
    echo "      an object: s3://$BUCKET/$(cd "$work/s3/$BUCKET" && find . -path '*/instance=aza/p1-f1.bin' | head -1 | cut -c3-)"
    kill "$S3_PID" 2>/dev/null
    wait "$S3_PID" 2>/dev/null
    cp "$work/aza/log" "$work/$mode-aza.log"
    cp "$work/azb/log" "$work/$mode-azb.log"
    delete_namespaces
    local took
    took=$(since "$t0")
    echo "      mode $mode took ${took}s"
    FIGURES+=("$mode: $DEVICES devices, 2 instances; $m_acked files acknowledged of $m_total uploads ($expected in phase 1), $objects objects in S3; $held acknowledged files in AZ a's spool at its SIGKILL, ${replayed:-0} replayed at its restart; ${took}s; files lost: $m_lost")
}

wait_devices() { # all background uploads, bounded by curl's --max-time
    local job
    for job in $(jobs -p); do
        case " ${pids[*]} " in *" $job "*) continue ;; esac
        wait "$job"
    done
}

both_instances_used() {
    [ -n "$(ls "$work/aza/home"/d*/ 2>/dev/null)" ] && [ -n "$(ls "$work/azb/home"/d*/ 2>/dev/null)" ]
}

no_partials() {
    ! find "$work/aza/home" "$work/azb/home" -name '.lakeftpd-tmp-*' | grep .
}

new_sessions_on_survivor() { # no session started on AZ b after the count given
    local after
    after=$(grep -c "session start" "$work/azb/log")
    [ "$after" = "$1" ] || { echo "AZ b took $((after - $1)) new sessions"; return 1; }
    local i
    for i in $(seq 1 "$DEVICES"); do
        [ -f "$work/aza/home/d$i/p3-new.bin" ] || { echo "d$i/p3-new.bin not on AZ a"; return 1; }
        in_s3 "$i" p3-new.bin "$(sha_of "$work/files/n$i/f1.bin")" aza ||
            { echo "d$i/p3-new.bin not in S3 under instance=aza"; return 1; }
    done
}

P1_FILES=0
KILL_FILES=0
REPLAYED=0
LOST=0
FIGURES=()
run_mode haproxy
run_mode dnat

echo "== devices x clients x modes x topologies (tests/topology/clients.sh) =="
LAKEFTPD_BIN="$bin" "$here/topology/clients.sh" | tee "$work/clients.out"
summary=$(tail -1 "$work/clients.out")
if [[ $summary =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    passed=$((passed + BASH_REMATCH[1]))
    failed=$((failed + BASH_REMATCH[2]))
else
    fail "tests/topology/clients.sh ended without its summary"
fi

for line in "${FIGURES[@]}"; do echo "figures $line"; done
echo "figures: $DEVICES devices; $P1_FILES files in phase 1 (both modes), $KILL_FILES acknowledged across SIGKILL, $REPLAYED replayed from the spool after it; files lost: $LOST; total $(since "$t_start")s"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
