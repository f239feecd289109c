#!/bin/bash
# lakeftpd-ops: the instance's side of the stack's operations (issue 18).
# Installed by image/provision.sh as /usr/local/libexec/lakeftpd-ops and run
# by the systemd units next to lakeftpd.service (systemd/lakeftpd-*.service):
#
#   lakeftpd-ops lifecycle       wait for the ASG's termination, stop lakeftpd
#                                (drain, spool to S3), then let the ASG go on
#   lakeftpd-ops on-failure      lakeftpd gave up restarting: replace this instance
#   lakeftpd-ops liveness        one probe of /livez (a timer runs it every 10 s)
#   lakeftpd-ops mark-unhealthy REASON
#   lakeftpd-ops logs-config     ship transfer records to the stack's log group
#
# Readiness (/healthz) takes an instance out of rotation; only liveness
# (/livez, systemd's watchdog, restarts exhausted) replaces it, so a shared
# outage (S3, the users object, credentials) never cycles the fleet: the ASG
# uses EC2 health checks and this script is the only one that reports an
# instance Unhealthy (docs/deploy-aws.md, "Readiness and liveness").
#
# Tests point it elsewhere with LAKEFTPD_IMDS, LAKEFTPD_HEALTH,
# LAKEFTPD_SYSTEMCTL, LAKEFTPD_CWA_CTL, LAKEFTPD_CWA_LOGS_CONFIG,
# LAKEFTPD_OPS_STATE, and shorten its waits with LAKEFTPD_POLL_SECONDS,
# LAKEFTPD_FLUSH_SECONDS, LAKEFTPD_COMPLETE_RETRY_SECONDS and
# LAKEFTPD_FAILURE_SETTLE_SECONDS (tests/appliance/test_ops.py); the AWS CLI
# takes AWS_ENDPOINT_URL.
set -euo pipefail

IMDS=${LAKEFTPD_IMDS:-http://169.254.169.254}
HEALTH=${LAKEFTPD_HEALTH:-http://127.0.0.1:8021}
SYSTEMCTL=${LAKEFTPD_SYSTEMCTL:-systemctl}
CWA_CTL=${LAKEFTPD_CWA_CTL:-/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl}
CWA_LOGS_CONFIG=${LAKEFTPD_CWA_LOGS_CONFIG:-/opt/aws/amazon-cloudwatch-agent/etc/lakeftpd-transfers.json}
# Liveness failures in a row and the "already reported" mark (RuntimeDirectory=).
STATE=${LAKEFTPD_OPS_STATE:-/run/lakeftpd-ops}
POLL_SECONDS=${LAKEFTPD_POLL_SECONDS:-5}

# Must match image/lakeftpd.cfn.yaml (DrainLifecycleHook, the launch
# template's tag); tests/appliance/check_cfn.py checks both.
HOOK_NAME=lakeftpd-drain
LOG_GROUP_TAG=LakeftpdTransferLogGroup
# Written by lakeftpd (transfer_log, rendered by the stack's user-data).
TRANSFER_LOG=/var/log/lakeftpd/transfers.jsonl
# Two probes 10 s apart: /livez fails only for local faults, and systemd's
# watchdog (30 s) restarts a process that is not live, so a third probe
# would find a fresh process and never see the fault twice.
LIVENESS_FAILURES=2
# CompleteLifecycleAction retries (10 s apart): the hook's heartbeat (300 s)
# ends the wait anyway; this only rides out a throttled or failed call.
COMPLETE_ATTEMPTS=12
COMPLETE_RETRY_SECONDS=${LAKEFTPD_COMPLETE_RETRY_SECONDS:-10}
# Twice the agent's default force_flush_interval (5 s).
FLUSH_SECONDS=${LAKEFTPD_FLUSH_SECONDS:-10}

log() { echo "lakeftpd-ops: $*" >&2; }

# One IMDSv2 read (a fresh token each time: reads are rare). Prints the body;
# fails on any non-200 (404: no such item).
imds_get() {
    local token
    token=$(curl -sf --max-time 2 -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 60" \
        "$IMDS/latest/api/token") || return 1
    curl -sf --max-time 2 -H "X-aws-ec2-metadata-token: $token" "$IMDS/latest/$1"
}

instance_id() { imds_get meta-data/instance-id; }
region() { imds_get meta-data/placement/region; }

autoscaling() {
    local region
    region=$(region) || { log "no region from IMDS"; return 1; }
    aws --region "$region" autoscaling "$@"
}

# --- mark-unhealthy: the ASG terminates and replaces this instance -------------
cmd_mark_unhealthy() {
    local reason=${1:-unspecified} id
    id=$(instance_id) || { log "no instance id from IMDS"; return 1; }
    log "marking $id Unhealthy: $reason"
    # SetInstanceHealth: the ASG replaces an Unhealthy instance (through the
    # termination lifecycle hook, so the spool still drains).
    autoscaling set-instance-health --instance-id "$id" --health-status Unhealthy \
        --no-should-respect-grace-period
    mkdir -p "$STATE" && touch "$STATE/reported"
}

# --- on-failure: OnFailure= of lakeftpd.service ------------------------------------
# systemd 252 (AL2023) puts a Restart= unit in "failed" only once its start
# limit is hit (StartLimitBurst). Newer systemd passes through "failed" on
# each auto-restart, so look again after RestartSec.
cmd_on_failure() {
    sleep "${LAKEFTPD_FAILURE_SETTLE_SECONDS:-5}"
    if ! "$SYSTEMCTL" is-failed --quiet lakeftpd.service; then
        log "lakeftpd.service is restarting, not failed: nothing to do"
        return 0
    fi
    # Never ready on this boot: a configuration or start-up problem that every
    # instance shares (bad user-data, IMDS, ...). A replacement would fail the
    # same way; leave the instance for the serial console and an alarm.
    local entered
    entered=$("$SYSTEMCTL" show -p ActiveEnterTimestampMonotonic --value lakeftpd.service)
    if [ "${entered:-0}" = 0 ]; then
        log "lakeftpd never became ready on this boot: not replacing the instance (see the serial console)"
        return 0
    fi
    cmd_mark_unhealthy "lakeftpd.service failed after its restarts were exhausted"
}

# --- liveness: one probe, from lakeftpd-liveness.timer ------------------------------
cmd_liveness() {
    mkdir -p "$STATE"
    [ -e "$STATE/reported" ] && return 0
    # Only a running server is probed: starting, stopping (draining) and
    # restarting are systemd's business, and a stop is not a fault.
    if [ "$("$SYSTEMCTL" is-active lakeftpd.service || true)" != active ]; then
        return 0
    fi
    local failures=0
    [ -f "$STATE/failures" ] && failures=$(cat "$STATE/failures")
    if curl -sf --max-time 5 -o /dev/null "$HEALTH/livez"; then
        echo 0 >"$STATE/failures"
        return 0
    fi
    failures=$((failures + 1))
    echo "$failures" >"$STATE/failures"
    log "/livez failed ($failures of $LIVENESS_FAILURES in a row)"
    if [ "$failures" -ge "$LIVENESS_FAILURES" ]; then
        cmd_mark_unhealthy "/livez failed $failures times in a row"
    fi
}

# --- lifecycle: the termination lifecycle hook -------------------------------------
cmd_lifecycle() {
    local state
    # AWS: "Retrieve the target lifecycle state through instance metadata"
    # (Amazon EC2 Auto Scaling User Guide): the item names the steady state
    # the instance is heading to; Terminated once the ASG has chosen it.
    while :; do
        state=$(imds_get meta-data/autoscaling/target-lifecycle-state || true)
        [ "$state" = Terminated ] && break
        sleep "$POLL_SECONDS"
    done
    log "target lifecycle state Terminated: stopping lakeftpd (drain, then the spool to S3)"
    "$SYSTEMCTL" stop lakeftpd-liveness.timer || true
    # Bounded by the unit's TimeoutStopSec; lakeftpd exits once its sessions
    # ended and its spool reached S3 (drain_spool_timeout).
    if ! "$SYSTEMCTL" stop lakeftpd.service; then
        log "stopping lakeftpd.service failed; completing the lifecycle action anyway"
    fi
    # The CloudWatch agent sends what it read every 5 s (force_flush_interval):
    # let it ship the last transfer records before the instance goes.
    sleep "$FLUSH_SECONDS"
    complete_lifecycle_action
}

complete_lifecycle_action() {
    local id asg attempt
    id=$(instance_id) || { log "no instance id from IMDS"; return 1; }
    asg=$(autoscaling describe-auto-scaling-instances --instance-ids "$id" \
        --query 'AutoScalingInstances[0].AutoScalingGroupName' --output text) ||
        { log "cannot find the Auto Scaling group of $id"; return 1; }
    for attempt in $(seq 1 "$COMPLETE_ATTEMPTS"); do
        if autoscaling complete-lifecycle-action --lifecycle-hook-name "$HOOK_NAME" \
            --auto-scaling-group-name "$asg" --instance-id "$id" \
            --lifecycle-action-result CONTINUE; then
            log "lifecycle action completed ($asg, $id)"
            return 0
        fi
        log "complete-lifecycle-action failed (attempt $attempt of $COMPLETE_ATTEMPTS)"
        sleep "$COMPLETE_RETRY_SECONDS"
    done
    return 1
}

# --- logs-config: the CloudWatch agent ships transfers.jsonl ------------------------
# The AMI is built before any stack exists, so the log group's name comes
# from the instance's tag (instance metadata tags are on in the stack's
# launch template). append-config merges this file with the AMI's EMF config
# and restarts the agent.
cmd_logs_config() {
    local group
    if ! group=$(imds_get "meta-data/tags/instance/$LOG_GROUP_TAG"); then
        log "no $LOG_GROUP_TAG tag: transfer records stay in $TRANSFER_LOG"
        return 0
    fi
    # CloudWatch Logs group names: 1-512 of [.-_/#A-Za-z0-9]. The value goes
    # into JSON below, so nothing else may pass.
    if ! [[ $group =~ ^[A-Za-z0-9._/#-]{1,512}$ ]]; then
        log "tag $LOG_GROUP_TAG is not a log group name: $group"
        return 1
    fi
    install -d -m 0755 "$(dirname "$CWA_LOGS_CONFIG")"
    cat >"$CWA_LOGS_CONFIG" <<JSON
{
  "logs": {
    "logs_collected": {
      "files": {
        "collect_list": [
          {
            "file_path": "$TRANSFER_LOG",
            "log_group_name": "$group",
            "log_stream_name": "{instance_id}",
            "retention_in_days": -1
          }
        ]
      }
    }
  }
}
JSON
    chmod 0644 "$CWA_LOGS_CONFIG"
    "$CWA_CTL" -a append-config -m ec2 -s -c "file:$CWA_LOGS_CONFIG"
    log "transfer records go to log group $group"
}

case "${1:-}" in
lifecycle) cmd_lifecycle ;;
on-failure) cmd_on_failure ;;
liveness) cmd_liveness ;;
mark-unhealthy) shift; cmd_mark_unhealthy "$*" ;;
logs-config) cmd_logs_config ;;
*)
    echo "usage: lakeftpd-ops lifecycle|on-failure|liveness|mark-unhealthy REASON|logs-config" >&2
    exit 2
    ;;
esac
