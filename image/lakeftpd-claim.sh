#!/bin/bash
# lakeftpd-claim: at boot, before lakeftpd listens, take one Elastic IP address
# of the stack's pool for this instance (the `direct` topology,
# docs/deploy-aws.md "How direct works").
#
# Run by systemd/lakeftpd-claim.service (oneshot, Before= and RequiredBy=
# lakeftpd.service). Installed by image/provision.sh as
# /usr/local/bin/lakeftpd-claim. Needs bash, curl and the AWS CLI (v1 or v2:
# AL2023 ships v2; the test runs v1).
#
# Interface (callable by tests against a local EC2 emulator such as moto):
#
#   lakeftpd-claim [--pool NAME] [--instance-id ID] [--region REGION]
#                  [--endpoint-url URL] [--address-file PATH] [--patience SECONDS]
#
#   --pool NAME          the pool: addresses tagged lakeftpd:pool=NAME. Default:
#                        the user-data line `# lakeftpd-claim pool=NAME` (the
#                        stack writes it in the direct topology). No such line:
#                        nothing to claim, exit 0 (the nlb topology).
#   --instance-id ID     default: IMDSv2 meta-data/instance-id
#   --region REGION      default: $AWS_REGION, $AWS_DEFAULT_REGION, then IMDSv2
#                        meta-data/placement/region
#   --endpoint-url URL   EC2 endpoint (default: the CLI's own; the CLI also
#                        honours $AWS_ENDPOINT_URL)
#   --address-file PATH  where the claimed address is written, one line
#                        (default /run/lakeftpd-claim/address; lakeftpd reads it
#                        through `public_address = file:PATH`)
#   --patience SECONDS   how long to keep trying while no address is free or the
#                        EC2 API fails (default 300: covers a predecessor that
#                        is still terminating during a replacement)
#   IMDS endpoint: $AWS_EC2_METADATA_SERVICE_ENDPOINT (default
#   http://169.254.169.254), and how long to retry it at boot:
#   $LAKEFTPD_IMDS_PATIENCE (whole seconds, "60" or "60s"; default 60), as
#   for lakeftpd itself.
#
# Exit status: 0 the address is held and written (or nothing to claim);
# 1 no free address in the pool within the patience; 2 anything else (usage,
# IMDS, EC2 API failing past the patience). Every failure is one line on
# stderr, which the unit sends to the serial console.
#
# How (why each step):
# 1. DescribeAddresses with the pool's tag filter.
# 2. An address already associated with this instance is kept (a restart or a
#    reboot: EIPs stay associated across stop/start). Nothing is re-associated:
#    AWS may charge each remap.
# 3. Otherwise the free addresses (no AssociationId) are tried in a random
#    order (instances of one ASG boot together: a shared order would make them
#    all race for the first), each with AssociateAddress
#    --no-allow-reassociation, which fails with Resource.AlreadyAssociated
#    instead of taking an address from another instance (EC2 API Reference,
#    AssociateAddress: AllowReassociation).
# 4. Unless AssociateAddress answered Resource.AlreadyAssociated (lost: the
#    next free address is tried), DescribeAddresses on that allocation
#    decides, whatever the answer was (it may be lost: associating replaces the
#    instance's public IPv4, which carries this very connection): the address
#    is ours only when its InstanceId is this instance.
# 5. None free: retry with exponential backoff and jitter until the patience
#    runs out, then one line and exit 1; lakeftpd, which Requires= this unit,
#    does not start, so it never serves on an address it does not hold.
set -uo pipefail

readonly TAG_KEY=lakeftpd:pool
readonly DEFAULT_ADDRESS_FILE=/run/lakeftpd-claim/address
readonly DEFAULT_PATIENCE=300
# Backoff between rounds: 1 s doubling up to 16 s, each a random 50-100 %.
readonly BACKOFF_FIRST_MS=1000
readonly BACKOFF_MAX_MS=16000
# One EC2 API call: connect and read timeouts, seconds.
readonly API_CONNECT_TIMEOUT=5
readonly API_READ_TIMEOUT=15
# IMDS at boot may not answer yet; curl retries for this long (seconds).
readonly DEFAULT_IMDS_PATIENCE=60
# One IMDS request: it answers in milliseconds when it answers at all.
readonly IMDS_REQUEST_TIMEOUT=5

pool="" instance_id="" region="" endpoint="" patience=$DEFAULT_PATIENCE
address_file=$DEFAULT_ADDRESS_FILE
imds=${AWS_EC2_METADATA_SERVICE_ENDPOINT:-http://169.254.169.254}
imds=${imds%/}
imds_patience=${LAKEFTPD_IMDS_PATIENCE:-$DEFAULT_IMDS_PATIENCE}
imds_patience=${imds_patience%s}

say() { echo "lakeftpd-claim: $*" >&2; }
fail() { say "$2"; exit "$1"; }

usage() {
    sed -n '/^#   lakeftpd-claim \[/,/^#   --patience/p' "$0" >&2
    exit 2
}

parse_args() {
    while [ $# -gt 0 ]; do
        [ $# -ge 2 ] || usage
        case $1 in
            --pool) pool=$2 ;;
            --instance-id) instance_id=$2 ;;
            --region) region=$2 ;;
            --endpoint-url) endpoint=$2 ;;
            --address-file) address_file=$2 ;;
            --patience) patience=$2 ;;
            *) usage ;;
        esac
        shift 2
    done
    [[ $patience =~ ^[0-9]{1,5}$ ]] || fail 2 "--patience: want whole seconds, got '$patience'"
    [[ $imds_patience =~ ^[0-9]{1,5}$ ]] || fail 2 "LAKEFTPD_IMDS_PATIENCE: want whole seconds, got '$imds_patience'"
}

# --- IMDSv2 ------------------------------------------------------------------
imds_token=""
# A session token, once, in this shell (not in a $(...) subshell).
imds_session() {
    [ -n "$imds_token" ] && return
    imds_token=$(curl -sS -f -X PUT --retry 10 --retry-connrefused --retry-max-time "$imds_patience" --max-time "$IMDS_REQUEST_TIMEOUT" \
        -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' "$imds/latest/api/token") ||
        fail 2 "IMDS at $imds gave no token (is IMDS enabled?)"
}

# PATH's body on stdout. Status 0; 4 for 404 (no such item); 1 for any other
# failure (curl retries 5xx and refused connections itself).
imds_get() {
    local out code
    out=$(curl -sS --retry 5 --retry-connrefused --retry-max-time "$imds_patience" --max-time "$IMDS_REQUEST_TIMEOUT" -w '\n%{http_code}' \
        -H "X-aws-ec2-metadata-token: $imds_token" "$imds$1") || return 1
    code=${out##*$'\n'}
    case $code in
        200) printf '%s\n' "${out%$'\n'*}" ;;
        404) return 4 ;;
        *) return 1 ;;
    esac
}

# Sets pool from the user-data line `# lakeftpd-claim pool=NAME` (lakeftpd
# reads the same user-data and skips the comment). No user-data or no such
# line: nothing to claim. IMDS failing is an error, not "nothing to claim".
pool_from_user_data() {
    local text rc
    text=$(imds_get /latest/user-data)
    rc=$?
    case $rc in
        0) pool=$(sed -n 's/^# lakeftpd-claim pool=\([A-Za-z0-9-]*\)[[:space:]]*$/\1/p' <<<"$text" | head -n 1) ;;
        4) pool="" ;;
        *) fail 2 "IMDS at $imds: cannot read user-data" ;;
    esac
}

resolve_inputs() {
    if [ -z "$pool" ] || [ -z "$instance_id" ]; then
        imds_session
    fi
    if [ -z "$pool" ]; then
        pool_from_user_data
        if [ -z "$pool" ]; then
            say "no '# lakeftpd-claim pool=NAME' line in user-data: nothing to claim (not the direct topology)"
            exit 0
        fi
    fi
    # SECURITY: the pool name goes into a filter; CloudFormation stack names
    # are letters, digits and hyphens, at most 128 characters.
    [[ $pool =~ ^[A-Za-z0-9-]{1,128}$ ]] || fail 2 "pool name '$pool' is not letters, digits and hyphens"
    if [ -z "$instance_id" ]; then
        instance_id=$(imds_get /latest/meta-data/instance-id) || fail 2 "IMDS gave no instance-id"
    fi
    [[ $instance_id =~ ^i-[0-9a-f]{8,32}$ ]] || fail 2 "instance id '$instance_id' is not i- and hex digits"
    region=${region:-${AWS_REGION:-${AWS_DEFAULT_REGION:-}}}
    if [ -z "$region" ]; then
        imds_session
        region=$(imds_get /latest/meta-data/placement/region) || fail 2 "IMDS gave no region"
    fi
}

# --- EC2 -----------------------------------------------------------------------
# Each call bounded (the CLI's defaults are 60 s each), so the patience is
# what bounds the whole claim; the unit's TimeoutStartSec is the backstop.
ec2() {
    local args=(ec2 "$@" --region "$region" --cli-connect-timeout "$API_CONNECT_TIMEOUT"
        --cli-read-timeout "$API_READ_TIMEOUT")
    [ -n "$endpoint" ] && args+=(--endpoint-url "$endpoint")
    aws "${args[@]}" </dev/null
}

# One line per pool address: ALLOCATION_ID PUBLIC_IP ASSOCIATION_ID INSTANCE_ID,
# "-" for an absent field (moto answers "" where AWS leaves the field out).
pool_addresses() {
    ec2 describe-addresses --filters "Name=tag:$TAG_KEY,Values=$pool" --output text \
        --query "Addresses[].[AllocationId, PublicIp, AssociationId || '-', InstanceId || '-']"
}

# The instance an allocation is associated with now ("-" for none).
holder_of() {
    ec2 describe-addresses --allocation-ids "$1" --output text \
        --query "Addresses[0].InstanceId || '-'"
}

# Takes ALLOCATION_ID for this instance; true only when DescribeAddresses then
# shows it associated with this instance.
try_associate() {
    local alloc=$1 out holder
    if ! out=$(ec2 associate-address --allocation-id "$alloc" --instance-id "$instance_id" \
        --no-allow-reassociation --output text 2>&1); then
        # Another instance was faster: it is not ours, no need to ask.
        if [[ $out == *Resource.AlreadyAssociated* ]]; then
            say "$alloc: taken by another instance first"
            return 1
        fi
        # Anything else: the answer may have been lost with the old public
        # address; DescribeAddresses decides.
        say "associate $alloc: ${out//$'\n'/ }"
    fi
    holder=$(holder_of "$alloc") || return 1
    [ "$holder" = "$instance_id" ]
}

# From the kernel, not the clock: instances of one group boot in the same
# second, and awk's srand() alone would give them all the same order. (Below
# 2^31: mawk folds larger seeds into one.)
random_u32() { od -An -N4 -tu4 /dev/urandom | tr -d ' '; }

# Random order, so instances booting together spread over the pool.
shuffled() { awk -v seed="$(($(random_u32) % 2147483647))" 'BEGIN { srand(seed) } { print rand() "\t" $0 }' | sort -k1,1 | cut -f2-; }

sleep_backoff() {
    local round=$1 ms=$BACKOFF_FIRST_MS
    while [ "$round" -gt 0 ] && [ "$ms" -lt "$BACKOFF_MAX_MS" ]; do
        ms=$((ms * 2)); round=$((round - 1))
    done
    [ "$ms" -gt "$BACKOFF_MAX_MS" ] && ms=$BACKOFF_MAX_MS
    ms=$((ms / 2 + $(random_u32) % (ms / 2 + 1)))
    sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
}

write_address() {
    local ip=$1 dir tmp
    dir=$(dirname "$address_file")
    mkdir -p "$dir" || fail 2 "cannot create $dir"
    tmp=$(mktemp "$address_file.XXXXXX") || fail 2 "cannot write in $dir"
    echo "$ip" >"$tmp" && chmod 0644 "$tmp" && mv -f "$tmp" "$address_file" ||
        fail 2 "cannot write $address_file"
}

claimed() {
    write_address "$2"
    say "$1 $2 ($3) in pool $pool for $instance_id; written to $address_file"
    exit 0
}

# One round: keep ours, else try each free address. Returns 1 when no address
# was free, 2 when the EC2 API failed, 3 when every free one was lost to others.
claim_round() {
    local list alloc ip assoc holder free
    # (The CLI's own error message goes to stderr, hence the console, as is.)
    list=$(pool_addresses) || { say "DescribeAddresses failed"; return 2; }
    while read -r alloc ip assoc holder; do
        [ "$holder" = "$instance_id" ] && claimed kept "$ip" "$alloc"
    done <<<"$list"
    free=$(awk '$3 == "-" { print $1 "\t" $2 }' <<<"$list" | shuffled)
    [ -n "$free" ] || return 1
    while IFS=$'\t' read -r alloc ip; do
        try_associate "$alloc" && claimed claimed "$ip" "$alloc"
    done <<<"$free"
    return 3
}

main() {
    parse_args "$@"
    resolve_inputs
    command -v aws >/dev/null || fail 2 "the AWS CLI (aws) is not installed"
    local deadline=$((SECONDS + patience)) round=0 why
    while :; do
        claim_round
        why=$?
        if [ "$SECONDS" -ge "$deadline" ]; then
            case $why in
                1 | 3) fail 1 "no free address in pool $pool (tag $TAG_KEY=$pool) for $instance_id after ${patience}s: lakeftpd will not start. Raise AddressCount or lower the Auto Scaling group's MaxSize." ;;
                *) fail 2 "the EC2 API kept failing for ${patience}s: lakeftpd will not start" ;;
            esac
        fi
        sleep_backoff "$round"
        round=$((round + 1))
    done
}

main "$@"
