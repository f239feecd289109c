# The instances of tests/topology/clients.sh (sourced): each boots as the
# appliance does. Its fake IMDS serves the user-data the stack renders; the
# claim (image/lakeftpd-claim.sh, the lakeftpd-claim unit's script) runs
# first, against moto's EC2 API, in a mount namespace of the instance's own
# (its /run is the instance's), then `lakeftpd serve --user-data` only if
# the claim succeeded (the unit's RequiredBy=).
#
# Public addresses: in the `direct` topology the user-data names a pool
# (`# lakeftpd-claim pool=NAME`): the pool holds 198.18.30.11 and .12 (moto
# allocates the addresses asked for), both instances claim at once, and the
# addresses they hold in moto become the internet gateway's 1:1 NAT. Without
# a pool line (the `nlb` topology, or a template without the direct
# topology) the instances have the auto-assigned public addresses ia
# 198.18.30.11, ib 198.18.30.12, in IMDS public-ipv4 and the gateway.

POOL_ADDRESSES="198.18.30.11 198.18.30.12"
claim_script=${CLAIM_SCRIPT:-$repo/image/lakeftpd-claim.sh}
declare -A INSTANCE_ID LAKE_PID IMDS_PORT
EC2_ENDPOINT=""

# render TOPOLOGY INSTANCE: the user-data the stack renders for this
# topology, plus the three lines that place it on this machine. The stack
# as an operator with such devices sets it: TlsAllowCcc = on (CCC for the
# lftp-ccc cells; a client that sends no CCC sees no difference), and in
# Users, besides the fleet's user, one with tls_session_reuse = off for the
# devices that cannot resume (the stack copies Users verbatim).
render() {
    local topology=$1 instance=$2 hash
    hash=$(printf '%s\n' "$PASSWORD" | "$bin" passwd) || return 1
    local params=(S3Bucket="$BUCKET" Tls=on TlsCertObject="$BUCKET/tls/cert.pem" TlsKeyObject="$BUCKET/tls/key.pem"
        TlsAllowCcc=on
        "Users=[user $USER_NAME]
password    = $hash
permissions = upload,read

[user $REUSE_OFF_USER]
password    = $hash
permissions = upload,read
tls_session_reuse = off
")
    if python3 "$here/render_stack.py" "$template" --has-parameter Topology; then
        params+=(Topology="$topology")
    fi
    # The VPC's CIDR (the nlb topology's health_from: the NLB's checkers).
    if python3 "$here/render_stack.py" "$template" --has-parameter VpcCidr; then
        params+=(VpcCidr="$VPC_CIDR")
    fi
    python3 "$here/render_stack.py" "$template" "${params[@]}" >"$work/$instance/rendered.conf" || return 1
    if ! python3 "$here/render_stack.py" "$template" --has-parameter Topology && [ "$topology" = direct ]; then
        direct_settings_stopgap "$work/$instance/rendered.conf"
    fi
    cp "$work/$instance/rendered.conf" "$work/rendered-$topology.conf"
    {
        head -1 "$work/$instance/rendered.conf"
        echo "# added by tests/topology/clients.sh: this machine's directories and S3 host"
        echo "root = $work/$instance/home"
        echo "spool = $work/$instance/spool"
        echo "s3_endpoint = http://$VPC_GW:$S3_PORT"
        tail -n +2 "$work/$instance/rendered.conf"
    } >"$work/$instance/user-data"
}

# STOPGAP until the template has its Topology parameter (the `claim` branch
# adds it): the direct topology's settings as issue 17 specifies them (EPSV
# on: no balancer to defeat it). run_topology says so in the output.
direct_settings_stopgap() {
    sed -i 's/^epsv *= *off$/epsv               = on/' "$1"
}

# The pool the rendered user-data names, if any.
pool_of() { sed -n 's/^# lakeftpd-claim pool=\([A-Za-z0-9-]*\)[[:space:]]*$/\1/p' "$work/rendered-$1.conf" | head -1; }

# start_ec2 POOL: moto's EC2 API on the VPC side of the edge (as the EC2
# endpoint is reached from an instance), the pool and two instances in it.
start_ec2() {
    local pool=$1
    for tool in moto_server aws; do
        command -v "$tool" >/dev/null || { echo "$tool is missing (tests/appliance/install-deps.sh)"; return 1; }
    done
    [ -x "$claim_script" ] || { echo "the user-data names a pool but $claim_script is missing"; return 1; }
    if [ -z "$EC2_ENDPOINT" ]; then
        ip netns exec "$p-edge" moto_server -H "$VPC_GW" -p 0 >"$work/moto.log" 2>&1 &
        pids+=("$!")
        for _ in $(seq 1 300); do
            EC2_ENDPOINT=$(grep -o "http://$VPC_GW:[0-9]*" "$work/moto.log" | head -1)
            [ -n "$EC2_ENDPOINT" ] && break
            sleep 0.1
        done
        [ -n "$EC2_ENDPOINT" ] || { echo "moto_server did not start"; cat "$work/moto.log"; return 1; }
    fi
    local ids
    # shellcheck disable=SC2086 # one argument per address
    ids=$(inns ia python3 "$here/ec2_pool.py" "$EC2_ENDPOINT" setup "$pool" 2 $POOL_ADDRESSES) || return 1
    INSTANCE_ID[ia]=$(sed -n 1p <<<"$ids")
    INSTANCE_ID[ib]=$(sed -n 2p <<<"$ids")
    echo "pool $pool: $POOL_ADDRESSES; instances ${INSTANCE_ID[ia]} ${INSTANCE_ID[ib]}"
    [ -n "${INSTANCE_ID[ib]}" ]
}

# static_addresses: the auto-assigned public addresses (no pool).
static_addresses() {
    PUBLIC_IP[ia]=198.18.30.11
    PUBLIC_IP[ib]=198.18.30.12
    INSTANCE_ID[ia]=i-0aaaaaaaaaaaaaaaa
    INSTANCE_ID[ib]=i-0bbbbbbbbbbbbbbbb
    igw_reset
    local i
    for i in $INSTANCES; do
        igw_map "${PUBLIC_IP[$i]}" "${PRIVATE_IP[$i]}" || return 1
    done
}

# claimed_addresses POOL: what each instance holds in EC2 after its claim
# becomes its public address in the gateway. Two instances, two addresses.
claimed_addresses() {
    local pool=$1 holders i
    holders=$(inns ia python3 "$here/ec2_pool.py" "$EC2_ENDPOINT" holders "$pool") || return 1
    igw_reset
    for i in $INSTANCES; do
        PUBLIC_IP[$i]=$(awk -v id="${INSTANCE_ID[$i]}" '$1 == id { print $2 }' <<<"$holders")
        [ "$(wc -w <<<"${PUBLIC_IP[$i]}")" = 1 ] || { echo "$i holds '${PUBLIC_IP[$i]}'"; echo "$holders"; return 1; }
        grep -qx "${PUBLIC_IP[$i]}" "$work/$i/run/lakeftpd-claim/address" ||
            { echo "$i: its address file is not ${PUBLIC_IP[$i]}"; return 1; }
        igw_map "${PUBLIC_IP[$i]}" "${PRIVATE_IP[$i]}" || return 1
        echo "$i (${INSTANCE_ID[$i]}) holds ${PUBLIC_IP[$i]}"
    done
    [ "${PUBLIC_IP[ia]}" != "${PUBLIC_IP[ib]}" ] || { echo "both hold ${PUBLIC_IP[ia]}"; return 1; }
}

# boot INSTANCE PUBLIC-IPV4|null: the fake IMDS, then claim and lakeftpd in
# the background.
boot() {
    local i=$1 public=$2
    python3 - "$work/$i/user-data" "${INSTANCE_ID[$i]}" "${PRIVATE_IP[$i]}" "$public" >"$work/$i/imds.json" <<'EOF' || return 1
import json, sys
path, instance_id, private, public = sys.argv[1:]
print(json.dumps({"user_data": open(path).read(), "instance_id": instance_id,
                  "availability_zone": "ap-northeast-1a", "local_ipv4": private,
                  "public_ipv4": None if public == "null" else public}))
EOF
    inns "$i" python3 "$repo/tests/fake_imds.py" --state "$work/$i/imds.json" >"$work/$i/imds.port" 2>>"$work/$i/imds.log" &
    pids+=("$!")
    local port=""
    for _ in $(seq 1 50); do
        port=$(head -1 "$work/$i/imds.port" 2>/dev/null)
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { echo "fake IMDS of $i gave no port"; return 1; }
    mkdir -p "$work/$i/run"
    # `sh -c 'exec ...'`: $! is lakeftpd once the claim is done. The claim's
    # /run is a directory of the run, bind-mounted in a private mount
    # namespace, so the user-data's file: path is the instance's own.
    # shellcheck disable=SC2016 # expanded by the inner shell
    env -u AWS_SESSION_TOKEN -u AWS_PROFILE -u AWS_ENDPOINT_URL \
        AWS_ACCESS_KEY_ID="$ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$SECRET_KEY" AWS_REGION=ap-northeast-1 \
        AWS_EC2_METADATA_SERVICE_ENDPOINT="http://127.0.0.1:$port" HOME="$work/$i/run" \
        ip netns exec "$p-$i" unshare -m --propagation private sh -c '
            mount --bind "$1" /run || exit 1
            if [ -x "$2" ]; then
                "$2" --patience 60 ${3:+--endpoint-url "$3"} || exit 1
            fi
            shift 3
            exec "$@"' boot "$work/$i/run" "$claim_script" "$EC2_ENDPOINT" "$bin" serve --user-data \
        >>"$work/$i/log" 2>&1 &
    LAKE_PID[$i]=$!
    pids+=("$!")
}

healthy() { # healthy INSTANCE: /healthz 200 within 90 s (the claim included)
    local i=$1 code=000
    for _ in $(seq 1 900); do
        code=$(inns edge curl -s -o /dev/null -m 1 -w '%{http_code}' "http://${PRIVATE_IP[$i]}:8021/healthz") || true
        [ "$code" = 200 ] && return 0
        kill -0 "${LAKE_PID[$i]}" 2>/dev/null || break
        sleep 0.1
    done
    echo "$i not healthy (last /healthz: $code)"
    tail -5 "$work/$i/log"
    return 1
}

# start_instances TOPOLOGY: both boot at once (their claims race, as in an
# Auto Scaling group); checks each step.
start_instances() {
    local topology=$1 i pool
    for i in $INSTANCES; do
        rm -rf "${work:?}/$i"
        mkdir -p "$work/$i/home" "$work/$i/spool"
        render "$topology" "$i" || { fail "$topology: render the stack's user-data"; return 1; }
    done
    pool=$(pool_of "$topology")
    if [ -n "$pool" ]; then
        check "$topology: EC2 (moto): pool $pool and two instances" start_ec2 "$pool" || return 1
        for i in $INSTANCES; do boot "$i" null; done
    else
        check "$topology: public addresses auto-assigned (no pool in the user-data)" static_addresses || return 1
        for i in $INSTANCES; do boot "$i" "${PUBLIC_IP[$i]}"; done
    fi
    for i in $INSTANCES; do
        check "$topology: instance $i serves the stack's user-data (healthy)" healthy "$i"
    done
    if [ -n "$pool" ]; then
        check "$topology: each instance claimed its own pool address (lakeftpd-claim)" claimed_addresses "$pool"
    fi
}

stop_instances() {
    local i
    for i in $INSTANCES; do
        kill "${LAKE_PID[$i]}" 2>/dev/null
        wait "${LAKE_PID[$i]}" 2>/dev/null
    done
}
