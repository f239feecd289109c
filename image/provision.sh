#!/bin/bash
# Provision the lakeftpd appliance into a root file system.
#
#   provision.sh [ROOT]        ROOT defaults to / (the real image, under Packer)
#
# Inputs (environment, each with a default next to this script, which is where
# image/lakeftpd.pkr.hcl uploads them):
#   LAKEFTPD_BIN    the static lakeftpd binary          ($here/lakeftpd)
#   LAKEFTPD_UNIT   systemd/lakeftpd.service             ($here/lakeftpd.service)
#   LAKEFTPD_OPS    image/lakeftpd-ops.sh                ($here/lakeftpd-ops.sh)
#   LAKEFTPD_UNIT_DIR  the other systemd/lakeftpd-* units (the directory of LAKEFTPD_UNIT)
#   LAKEFTPD_CLAIM  image/lakeftpd-claim.sh              ($here/lakeftpd-claim.sh)
#   LAKEFTPD_CLAIM_UNIT systemd/lakeftpd-claim.service   ($here/lakeftpd-claim.service)
#
# Two modes, decided by ROOT:
# - ROOT=/ (the Packer build instance, Amazon Linux 2023): installs packages
#   with dnf, uses the running systemd, and validates the CloudWatch agent
#   config with the agent itself.
# - any other ROOT (a scratch directory, as tests/appliance/run.sh does): the
#   same files, users, links and masks are written offline with
#   `useradd --prefix` and `systemctl --root`; package installs and anything
#   that needs a running system are skipped and say so. Nothing outside ROOT
#   is changed.
#
# Must run as root (useradd, chown). Idempotent: running it twice is harmless.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=${1:-/}
LAKEFTPD_BIN=${LAKEFTPD_BIN:-$here/lakeftpd}
LAKEFTPD_UNIT=${LAKEFTPD_UNIT:-$here/lakeftpd.service}
LAKEFTPD_OPS=${LAKEFTPD_OPS:-$here/lakeftpd-ops.sh}
LAKEFTPD_UNIT_DIR=${LAKEFTPD_UNIT_DIR:-$(dirname "$LAKEFTPD_UNIT")}
# The instance's side of the stack's operations (lakeftpd-ops): termination
# lifecycle hook, liveness, restarts exhausted, transfer records shipped.
OPS_UNITS=(lakeftpd-lifecycle.service lakeftpd-unhealthy.service lakeftpd-liveness.service
    lakeftpd-liveness.timer lakeftpd-logs.service)
# Enabled at boot (lakeftpd-unhealthy.service is started by OnFailure= and
# lakeftpd-liveness.service by its timer).
OPS_ENABLED=(lakeftpd-lifecycle.service lakeftpd-liveness.timer lakeftpd-logs.service)
LAKEFTPD_CLAIM=${LAKEFTPD_CLAIM:-$here/lakeftpd-claim.sh}
LAKEFTPD_CLAIM_UNIT=${LAKEFTPD_CLAIM_UNIT:-$here/lakeftpd-claim.service}

# Where the CloudWatch agent lives on AL2023 (package amazon-cloudwatch-agent).
CWA_DIR=/opt/aws/amazon-cloudwatch-agent
# Our own file name: amazon-cloudwatch-agent-ctl's fetch-config deletes
# etc/amazon-cloudwatch-agent.json, so the source config must not use it.
CWA_CONFIG=$CWA_DIR/etc/lakeftpd-cwagent.json

log() { echo "provision: $*"; }
die() { echo "provision: error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (useradd, chown)"
[ -d "$ROOT" ] || die "root directory $ROOT does not exist"
ROOT=$(cd "$ROOT" && pwd)
[ -f "$LAKEFTPD_BIN" ] || die "binary not found: $LAKEFTPD_BIN (set LAKEFTPD_BIN)"
[ -x "$LAKEFTPD_BIN" ] || die "binary not executable: $LAKEFTPD_BIN"
[ -f "$LAKEFTPD_UNIT" ] || die "unit not found: $LAKEFTPD_UNIT (set LAKEFTPD_UNIT)"
[ -f "$LAKEFTPD_OPS" ] || die "ops script not found: $LAKEFTPD_OPS (set LAKEFTPD_OPS)"
for u in "${OPS_UNITS[@]}"; do
    [ -f "$LAKEFTPD_UNIT_DIR/$u" ] || die "unit not found: $LAKEFTPD_UNIT_DIR/$u (set LAKEFTPD_UNIT_DIR)"
done
[ -f "$LAKEFTPD_CLAIM" ] || die "claim script not found: $LAKEFTPD_CLAIM (set LAKEFTPD_CLAIM)"
[ -f "$LAKEFTPD_CLAIM_UNIT" ] || die "claim unit not found: $LAKEFTPD_CLAIM_UNIT (set LAKEFTPD_CLAIM_UNIT)"

if [ "$ROOT" = / ]; then
    real=1
    R=""                       # path prefix for files
    systemctl=(systemctl)
else
    real=0
    R=$ROOT
    # Offline: edits unit files and symlinks under ROOT, needs no running systemd.
    systemctl=(systemctl --root="$ROOT")
fi
log "root=$ROOT mode=$([ $real = 1 ] && echo real || echo scratch)"

# --- 1. packages (real image only) -------------------------------------------
if [ $real = 1 ]; then
    # lakeftpd-claim needs the AWS CLI; AL2023 ships it (package awscli-2).
    command -v aws >/dev/null || dnf install -y awscli-2
    # The CloudWatch agent receives the EMF metric lines lakeftpd writes to
    # 127.0.0.1:25888 and forwards them to CloudWatch. It is in the AL2023 repo.
    dnf install -y amazon-cloudwatch-agent
    # lakeftpd-ops calls the Auto Scaling API with the AWS CLI; the standard
    # AL2023 AMI ships it (awscli-2), the minimal one does not.
    command -v aws >/dev/null || dnf install -y awscli-2
else
    log "scratch root: skipping 'dnf install amazon-cloudwatch-agent' (and awscli-2)"
fi

# --- 2. service user -----------------------------------------------------------
# A static system user with no login shell and no home outside the state dir
# (why not DynamicUser=: see systemd/lakeftpd.service).
if [ $real = 1 ]; then
    getent group lakeftpd >/dev/null || groupadd --system lakeftpd
    id -u lakeftpd >/dev/null 2>&1 ||
        useradd --system --gid lakeftpd --home-dir /var/lib/lakeftpd \
            --no-create-home --shell /sbin/nologin \
            --comment "lakeftpd FTP server" lakeftpd
else
    # --prefix edits ROOT/etc/{passwd,group,shadow,gshadow} without chroot, so
    # the scratch root needs no binaries of its own. It needs those files.
    for f in passwd group shadow gshadow; do
        [ -f "$R/etc/$f" ] || die "scratch root lacks /etc/$f (seed it like a base image)"
    done
    grep -q '^lakeftpd:' "$R/etc/group" || groupadd --prefix "$ROOT" --system lakeftpd
    grep -q '^lakeftpd:' "$R/etc/passwd" ||
        useradd --prefix "$ROOT" --system --gid lakeftpd --home-dir /var/lib/lakeftpd \
            --no-create-home --shell /sbin/nologin \
            --comment "lakeftpd FTP server" lakeftpd
fi
# Numeric ids from ROOT's own passwd (not the host's) for chown below.
uid=$(awk -F: '$1 == "lakeftpd" { print $3 }' "$R/etc/passwd")
gid=$(awk -F: '$1 == "lakeftpd" { print $3 }' "$R/etc/group")
if [ -z "$uid" ] || [ -z "$gid" ]; then die "user lakeftpd was not created"; fi

# --- 3. binary and unit --------------------------------------------------------
install -D -m 0755 -o root -g root "$LAKEFTPD_BIN" "$R/usr/local/bin/lakeftpd"
install -D -m 0644 -o root -g root "$LAKEFTPD_UNIT" "$R/etc/systemd/system/lakeftpd.service"
install -D -m 0755 -o root -g root "$LAKEFTPD_OPS" "$R/usr/local/libexec/lakeftpd-ops"
for u in "${OPS_UNITS[@]}"; do
    install -D -m 0644 -o root -g root "$LAKEFTPD_UNIT_DIR/$u" "$R/etc/systemd/system/$u"
done
# The direct topology's address claim (bash + the AWS CLI v2 AL2023 ships);
# it does nothing when the user-data names no pool.
install -D -m 0755 -o root -g root "$LAKEFTPD_CLAIM" "$R/usr/local/bin/lakeftpd-claim"
install -D -m 0644 -o root -g root "$LAKEFTPD_CLAIM_UNIT" "$R/etc/systemd/system/lakeftpd-claim.service"

# --- 4. directories ------------------------------------------------------------
# systemd creates these at start (StateDirectory=); creating them here too
# makes the image self-describing and lets `lakeftpd check` run before start.
for d in /var/lib/lakeftpd /var/lib/lakeftpd/home /var/lib/lakeftpd/spool; do
    install -d -m 0750 -o "$uid" -g "$gid" "$R$d"
done

# --- 4b. kernel: room for reconnect storms --------------------------------------
# After an instance replacement a whole fleet reconnects at once. lakeftpd
# asks for a listen backlog of 16384 (src/limits.rs LISTEN_BACKLOG); the
# kernel caps it at net.core.somaxconn (4096 by default), and half-open
# connections at tcp_max_syn_backlog. A 10,000-device storm overflowed the
# default queue (ListenOverflows in the benchmark) and those devices waited
# for SYN retries. systemd-sysctl applies this file at boot (sysctl.d(5)).
install -D -m 0644 /dev/stdin "$R/etc/sysctl.d/90-lakeftpd.conf" <<'SYSCTL'
# lakeftpd: listen queues sized for a fleet reconnecting at once.
net.core.somaxconn = 16384
net.ipv4.tcp_max_syn_backlog = 16384
SYSCTL

# --- 5. CloudWatch agent: receive EMF on 127.0.0.1:25888 -----------------------
# `"emf": {}` is AWS's documented minimal config; the agent then listens on
# tcp:127.0.0.1:25888 and udp:127.0.0.1:25888 (its translator's defaults).
install -d -m 0755 "$R$CWA_DIR/etc"
cat > "$R$CWA_CONFIG" <<'JSON'
{
  "agent": {
    "metrics_collection_interval": 60
  },
  "logs": {
    "metrics_collected": {
      "emf": {}
    }
  }
}
JSON
chmod 0644 "$R$CWA_CONFIG"
if [ $real = 1 ]; then
    # fetch-config validates the JSON with the agent's own translator, stores
    # it in etc/amazon-cloudwatch-agent.d/, and -s enables + restarts the
    # service. The agent re-translates that directory at every start (mode
    # auto), so each instance resolves its own region and instance id at boot.
    "$CWA_DIR/bin/amazon-cloudwatch-agent-ctl" -a fetch-config -m ec2 -s -c "file:$CWA_CONFIG"
    systemctl enable amazon-cloudwatch-agent.service
else
    log "scratch root: skipping amazon-cloudwatch-agent-ctl fetch-config (needs the agent and EC2)"
    if [ -f "$R/usr/lib/systemd/system/amazon-cloudwatch-agent.service" ] ||
       [ -f "$R/etc/systemd/system/amazon-cloudwatch-agent.service" ]; then
        "${systemctl[@]}" enable amazon-cloudwatch-agent.service
    fi
fi

# --- 6. units: no SSH, keep SSM, enable lakeftpd -------------------------------
[ $real = 1 ] && systemctl daemon-reload
# No SSH on the appliance: remove the wants links, then mask (a /dev/null
# symlink in /etc/systemd/system) so nothing can start it again. On the Packer
# build instance sshd keeps running until shutdown: Packer is connected
# through it; the mask takes effect when the AMI boots.
for u in sshd.service sshd.socket; do
    if [ -e "$R/usr/lib/systemd/system/$u" ] || [ -e "$R/etc/systemd/system/$u" ]; then
        # Already masked on a second run: disable would then fail, and is done.
        [ "$(readlink "$R/etc/systemd/system/$u" || true)" = /dev/null ] ||
            "${systemctl[@]}" disable "$u"
    fi
    "${systemctl[@]}" mask "$u"
done
# Break-glass access is SSM Session Manager (AL2023 ships the agent enabled;
# make sure it stays so). The instance role grants AmazonSSMManagedInstanceCore.
if [ $real = 1 ] || [ -e "$R/usr/lib/systemd/system/amazon-ssm-agent.service" ] ||
   [ -e "$R/etc/systemd/system/amazon-ssm-agent.service" ]; then
    "${systemctl[@]}" enable amazon-ssm-agent.service
else
    log "scratch root: no amazon-ssm-agent.service to enable"
fi
"${systemctl[@]}" enable lakeftpd.service "${OPS_ENABLED[@]}"
# RequiredBy=lakeftpd.service: links it into lakeftpd.service.requires/.
"${systemctl[@]}" enable lakeftpd-claim.service

log "done"
