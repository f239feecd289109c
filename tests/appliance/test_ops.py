#!/usr/bin/env python3
"""image/lakeftpd-ops.sh against a fake IMDS (tests/fake_imds.py) and moto's
Auto Scaling API in server mode, with the AWS CLI as on the instance.

- lifecycle: while the target lifecycle state is InService nothing happens;
  once it is Terminated, lakeftpd.service is stopped and only then is
  CompleteLifecycleAction called (hook lakeftpd-drain, this instance, its
  group, CONTINUE).
- on-failure: restarts exhausted after lakeftpd had been ready: the instance
  is reported Unhealthy; never ready on this boot, or only restarting: not.
- liveness: one failed /livez probe is not enough, two in a row report the
  instance Unhealthy; a good probe resets the count; a server that is not
  active (starting, draining) is not probed.
- logs-config: the log group named by the instance tag goes into the
  CloudWatch agent's file section for transfers.jsonl (append-config); no
  tag: nothing changes; a tag that is not a log group name is refused.

systemctl and amazon-cloudwatch-agent-ctl are stand-ins (shell scripts that
record their arguments): this machine runs no systemd as PID 1 and has no
agent. moto 5 has no CompleteLifecycleAction: the one added below checks
what the API reference says it checks (the hook exists on the group, the
instance belongs to it, the result is CONTINUE or ABANDON) and records the
call. Every wait is bounded. Prints one line per check; exit 1 on failure.
"""
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
from moto.autoscaling.exceptions import ValidationError
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import EmptyResult
from moto.server import ThreadedMotoServer

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
# run.sh points this at mutated copies, which must fail.
OPS = os.environ.get("LAKEFTPD_OPS_SCRIPT") or os.path.join(REPO, "image", "lakeftpd-ops.sh")
FAKE_IMDS = os.path.join(REPO, "tests", "fake_imds.py")
REGION = "ap-northeast-1"
GROUP = "lakeftpd-test-asg"
HOOK = "lakeftpd-drain"
LOG_GROUP = "/lakeftpd/test/transfers"
WAIT_SECONDS = 60  # the longest any one step may take (the AWS CLI starts slowly)

COMPLETED = []  # (time, group, hook, instance, result)


def complete_lifecycle_action(self):
    group = self._get_param("AutoScalingGroupName")
    hook = self._get_param("LifecycleHookName")
    instance = self._get_param("InstanceId")
    result = self._get_param("LifecycleActionResult")
    if not self.autoscaling_backend.describe_lifecycle_hooks(group, [hook]):
        raise ValidationError(f"No Lifecycle Hook {hook} on {group}")
    members = [s.instance.id for s in self.autoscaling_backend.describe_auto_scaling_instances([instance])]
    if instance not in members or result not in ("CONTINUE", "ABANDON"):
        raise ValidationError("No active Lifecycle Action found with instance ID " + str(instance))
    COMPLETED.append((time.time(), group, hook, instance, result))
    return EmptyResult()


AutoScalingResponse.complete_lifecycle_action = complete_lifecycle_action

STUB_SYSTEMCTL = r"""#!/bin/bash
# systemctl stand-in: records each call; answers from files in $STUB.
echo "$(date +%s.%N) $*" >>"$STUB/calls"
case "$1" in
is-active) cat "$STUB/active"; [ "$(cat "$STUB/active")" = active ] ;;
is-failed) [ "$(cat "$STUB/failed")" = yes ] ;;
show) cat "$STUB/active_enter" ;;
stop) if [ "$2" = lakeftpd.service ]; then sleep 1; echo "$(date +%s.%N) stopped" >>"$STUB/calls"; fi ;;
esac
"""
STUB_CTL = """#!/bin/bash
echo "$*" >>"$STUB/ctl"
"""


class Livez(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):
        code = Livez.status if self.path == "/livez" else 404
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class World:
    def __init__(self, tmp):
        self.tmp = tmp
        self.failures = 0
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.moto.start()
        host, port = self.moto.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        creds = dict(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
        self.asg = boto3.client("autoscaling", endpoint_url=self.endpoint, **creds)
        ec2 = boto3.client("ec2", endpoint_url=self.endpoint, **creds)
        image = ec2.describe_images()["Images"][0]["ImageId"]
        self.asg.create_launch_configuration(LaunchConfigurationName="lc", ImageId=image, InstanceType="t4g.small")
        self.asg.create_auto_scaling_group(AutoScalingGroupName=GROUP, LaunchConfigurationName="lc",
                                           MinSize=1, MaxSize=1, DesiredCapacity=1,
                                           AvailabilityZones=[REGION + "a"])
        self.asg.put_lifecycle_hook(LifecycleHookName=HOOK, AutoScalingGroupName=GROUP,
                                    LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
                                    HeartbeatTimeout=300, DefaultResult="CONTINUE")
        group = self.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]
        self.instance = group["Instances"][0]["InstanceId"]

        self.stub = os.path.join(tmp, "stub")
        os.mkdir(self.stub)
        for name, text in (("systemctl", STUB_SYSTEMCTL), ("cwa-ctl", STUB_CTL)):
            path = os.path.join(self.stub, name)
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o755)
        self.stub_files(active="active", failed="no", active_enter="0")

        self.state_path = os.path.join(tmp, "imds.json")
        self.imds_state(target_lifecycle_state="InService", tags={"LakeftpdTransferLogGroup": LOG_GROUP})
        self.imds = subprocess.Popen([sys.executable, FAKE_IMDS, "--state", self.state_path],
                                     stdout=subprocess.PIPE, text=True)
        imds_port = int(self.imds.stdout.readline())

        self.livez = ThreadingHTTPServer(("127.0.0.1", 0), Livez)
        threading.Thread(target=self.livez.serve_forever, daemon=True).start()

        home = os.path.join(tmp, "home")
        os.mkdir(home)
        self.env = dict(
            os.environ,
            HOME=home,
            STUB=self.stub,
            LAKEFTPD_IMDS=f"http://127.0.0.1:{imds_port}",
            LAKEFTPD_HEALTH=f"http://127.0.0.1:{self.livez.server_address[1]}",
            LAKEFTPD_SYSTEMCTL=os.path.join(self.stub, "systemctl"),
            LAKEFTPD_CWA_CTL=os.path.join(self.stub, "cwa-ctl"),
            LAKEFTPD_CWA_LOGS_CONFIG=os.path.join(tmp, "cwagent", "lakeftpd-transfers.json"),
            LAKEFTPD_OPS_STATE=os.path.join(tmp, "ops-state"),
            LAKEFTPD_POLL_SECONDS="0.2",
            LAKEFTPD_FAILURE_SETTLE_SECONDS="0",
            LAKEFTPD_COMPLETE_RETRY_SECONDS="1",
            LAKEFTPD_FLUSH_SECONDS="0",
            AWS_ENDPOINT_URL=self.endpoint,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_EC2_METADATA_DISABLED="true",
            AWS_CONFIG_FILE=os.path.join(home, "none"),
            AWS_SHARED_CREDENTIALS_FILE=os.path.join(home, "none"),
        )

    def close(self):
        self.imds.terminate()
        self.imds.wait(timeout=10)
        self.livez.shutdown()
        self.moto.stop()

    def stub_files(self, **values):
        for name, value in values.items():
            with open(os.path.join(self.stub, name), "w") as f:
                f.write(value + "\n")

    def imds_state(self, **changes):
        state = {"instance_id": getattr(self, "instance", None), "region": REGION}
        if os.path.exists(self.state_path):
            with open(self.state_path) as f:
                state = json.load(f)
        state.update(changes)
        state["instance_id"] = getattr(self, "instance", None)
        with open(self.state_path + ".new", "w") as f:
            json.dump(state, f)
        os.replace(self.state_path + ".new", self.state_path)

    def ops(self, *args, timeout=WAIT_SECONDS):
        return subprocess.run([OPS, *args], env=self.env, capture_output=True, text=True, timeout=timeout)

    def health(self):
        inst = self.asg.describe_auto_scaling_instances(InstanceIds=[self.instance])["AutoScalingInstances"][0]
        return inst["HealthStatus"].capitalize()

    def healthy_again(self):
        self.asg.set_instance_health(InstanceId=self.instance, HealthStatus="Healthy")
        state = self.env["LAKEFTPD_OPS_STATE"]
        for name in ("reported", "failures"):
            if os.path.exists(os.path.join(state, name)):
                os.remove(os.path.join(state, name))

    def calls(self):
        path = os.path.join(self.stub, "calls")
        return open(path).read().splitlines() if os.path.exists(path) else []

    def check(self, name, ok, detail=""):
        print(("ok    " if ok else "FAIL  ") + name + ("" if ok else f": {detail}"))
        self.failures += 0 if ok else 1


def test_lifecycle(w):
    proc = subprocess.Popen([OPS, "lifecycle"], env=w.env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(2)
        w.check("lifecycle: InService, nothing stopped or completed",
                proc.poll() is None and not any(" stop " in c for c in w.calls()) and not COMPLETED,
                f"exit={proc.poll()} calls={w.calls()} completed={COMPLETED}")
        w.imds_state(target_lifecycle_state="Terminated")
        out, _ = proc.communicate(timeout=WAIT_SECONDS)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    w.check("lifecycle: exits 0 once the action is completed", proc.returncode == 0, out)
    stopped = [float(c.split()[0]) for c in w.calls() if c.endswith(" stopped")]
    w.check("lifecycle: lakeftpd.service stopped", len(stopped) == 1, w.calls())
    w.check("lifecycle: CompleteLifecycleAction once, CONTINUE, this hook, group and instance",
            [c[1:] for c in COMPLETED] == [(GROUP, HOOK, w.instance, "CONTINUE")], COMPLETED)
    w.check("lifecycle: completed only after lakeftpd.service stopped",
            bool(stopped and COMPLETED) and COMPLETED[0][0] > stopped[0], (stopped, COMPLETED))


def test_on_failure(w):
    w.healthy_again()
    w.stub_files(failed="yes", active_enter="0")
    r = w.ops("on-failure")
    w.check("on-failure: never ready on this boot, not reported", r.returncode == 0 and w.health() == "Healthy",
            r.stderr + w.health())
    w.stub_files(failed="no", active_enter="123456789")
    r = w.ops("on-failure")
    w.check("on-failure: restarting (not failed), not reported", r.returncode == 0 and w.health() == "Healthy",
            r.stderr + w.health())
    w.stub_files(failed="yes", active_enter="123456789")
    r = w.ops("on-failure")
    w.check("on-failure: failed after being ready, reported Unhealthy",
            r.returncode == 0 and w.health() == "Unhealthy", r.stderr + w.health())


def test_liveness(w):
    w.healthy_again()
    w.stub_files(active="active")
    Livez.status = 503
    w.ops("liveness")
    w.check("liveness: one failed probe is not enough", w.health() == "Healthy", w.health())
    Livez.status = 200
    w.ops("liveness")
    Livez.status = 503
    w.ops("liveness")
    w.check("liveness: a good probe resets the count", w.health() == "Healthy", w.health())
    w.stub_files(active="deactivating")
    w.ops("liveness")
    w.check("liveness: a server that is not active is not probed", w.health() == "Healthy", w.health())
    w.stub_files(active="active")
    r = w.ops("liveness")
    w.check("liveness: two failed probes in a row report Unhealthy", w.health() == "Unhealthy",
            r.stderr + w.health())
    Livez.status = 200


def test_logs_config(w):
    config = w.env["LAKEFTPD_CWA_LOGS_CONFIG"]
    ctl = os.path.join(w.stub, "ctl")
    r = w.ops("logs-config")
    ok = r.returncode == 0 and os.path.exists(config)
    entry = json.load(open(config))["logs"]["logs_collected"]["files"]["collect_list"][0] if ok else {}
    w.check("logs-config: the tag's log group, transfers.jsonl, one stream per instance",
            entry.get("log_group_name") == LOG_GROUP and entry.get("file_path") == "/var/log/lakeftpd/transfers.jsonl"
            and entry.get("log_stream_name") == "{instance_id}", r.stderr + str(entry))
    calls = open(ctl).read().splitlines() if os.path.exists(ctl) else []
    w.check("logs-config: the agent appends it and restarts",
            calls == [f"-a append-config -m ec2 -s -c file:{config}"], calls)
    os.remove(ctl)
    w.imds_state(tags={})
    r = w.ops("logs-config")
    w.check("logs-config: no tag, no change", r.returncode == 0 and not os.path.exists(ctl), r.stderr)
    w.imds_state(tags={"LakeftpdTransferLogGroup": 'x", "evil": "y'})
    r = w.ops("logs-config")
    w.check("logs-config: a tag that is not a log group name is refused",
            r.returncode != 0 and not os.path.exists(ctl), r.stderr)


def main():
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="ops-stack-test-ops.") as tmp:
        w = World(tmp)
        try:
            test_logs_config(w)
            test_on_failure(w)
            test_liveness(w)
            test_lifecycle(w)
        finally:
            w.close()
        print(f"{'FAILED' if w.failures else 'passed'}: test_ops.py ({w.failures} failures)")
        return 1 if w.failures else 0


if __name__ == "__main__":
    sys.exit(main())
