#!/usr/bin/env python3
"""image/lakeftpd-claim.sh against a local EC2 API: moto's server mode.

moto_server runs on 127.0.0.1 (port 0, read back from its first line); the
pools are Elastic IPs tagged lakeftpd:pool=NAME and the "instances" are moto
instances. The claim script runs as on an instance, with the AWS CLI, the
endpoint given by AWS_ENDPOINT_URL or --endpoint-url, and (in the first
cases) IMDSv2 from tests/fake_imds.py serving the stack's user-data.

Asserted, one line each ("ok NAME" / "FAIL NAME: why"), exit 1 if any failed:
- no pool line in user-data (the nlb topology), or no user-data: exit 0,
  nothing written; IMDS not answering: exit 2;
- two instances claim two different addresses of their pool, never one of
  another pool or an untagged one;
- a third finds none: exit 1, one console line, no address file;
- a restarted instance keeps its own address without a new association;
- a replacement (the old instance terminated, which disassociates its EIP)
  takes the freed address;
- an address another instance takes between the listing and the association
  (an `aws` shim in front of the real one takes it first) stays with it: the
  claim moves on to the next (this fails without --no-allow-reassociation);
- concurrent claims (more instances than addresses, started at once, several
  rounds): every address held by one instance at most, every winner's file
  names an address DescribeAddresses shows on that very instance, the
  others fail with exit 1;
- moto enforces AllowReassociation=false (Resource.AlreadyAssociated), which
  the uniqueness above relies on, as AWS does.

moto does not disassociate an Elastic IP when its instance terminates (EC2
does: "Elastic IP addresses: When you terminate an instance, the Elastic IP
address is disassociated"); the replacement case does it the way EC2 would.

usage: claim_test.py   (needs moto_server, boto3 and the aws CLI on PATH)
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import boto3
import botocore.exceptions

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CLAIM = os.path.join(REPO, "image", "lakeftpd-claim.sh")
FAKE_IMDS = os.path.join(REPO, "tests", "fake_imds.py")
REGION = "ap-northeast-1"
TAG = "lakeftpd:pool"
# Short patience for the cases that must fail: no address will free up.
FAIL_PATIENCE = "3"
CONCURRENT_ROUNDS = 2
CONCURRENT_ADDRESSES = 3
CONCURRENT_INSTANCES = 5
REAL_AWS = None
# Every process the test starts is waited for at most this long.
PROCESS_TIMEOUT = 120

results = []


START = time.monotonic()


def check(name, ok, why=""):
    results.append(ok)
    at = f"[{time.monotonic() - START:5.1f}s]"
    print(f"ok    {at} {name}" if ok else f"FAIL  {at} {name}: {why}", flush=True)


class Moto:
    def __init__(self):
        self.proc = subprocess.Popen(
            ["moto_server", "-H", "127.0.0.1", "-p", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        deadline = time.monotonic() + 30
        self.endpoint = None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            m = re.search(r"Running on (http://127\.0\.0\.1:\d+)", line)
            if m:
                self.endpoint = m.group(1)
                break
        if not self.endpoint:
            self.stop()
            sys.exit("claim_test: moto_server did not start")
        # Keep draining its log so it never blocks on a full pipe.
        self.drain = subprocess.Popen(["cat"], stdin=self.proc.stdout, stdout=subprocess.DEVNULL)
        self.ec2 = boto3.client(
            "ec2", region_name=REGION, endpoint_url=self.endpoint,
            aws_access_key_id="test", aws_secret_access_key="test",
        )
        self.ami = self.ec2.describe_images()["Images"][0]["ImageId"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def instance(self):
        r = self.ec2.run_instances(ImageId=self.ami, MinCount=1, MaxCount=1, InstanceType="t3.small")
        return r["Instances"][0]["InstanceId"]

    def address(self, pool=None):
        kw = {"Domain": "vpc"}
        if pool:
            kw["TagSpecifications"] = [{"ResourceType": "elastic-ip", "Tags": [{"Key": TAG, "Value": pool}]}]
        return self.ec2.allocate_address(**kw)["AllocationId"]

    def holders(self, allocs):
        """AllocationId -> (PublicIp, InstanceId or None, AssociationId or None)."""
        out = {}
        for a in self.ec2.describe_addresses(AllocationIds=list(allocs))["Addresses"]:
            out[a["AllocationId"]] = (a["PublicIp"], a.get("InstanceId") or None, a.get("AssociationId") or None)
        return out

    def terminate(self, instance_id):
        """What EC2 does when an instance terminates: its EIP is disassociated."""
        self.ec2.terminate_instances(InstanceIds=[instance_id])
        for a in self.ec2.describe_addresses(Filters=[{"Name": "instance-id", "Values": [instance_id]}])["Addresses"]:
            self.ec2.disassociate_address(AssociationId=a["AssociationId"])


class FakeImds:
    def __init__(self, work, user_data, instance_id):
        self.state = os.path.join(work, f"imds-{instance_id}.json")
        with open(self.state, "w") as f:
            json.dump({"user_data": user_data, "instance_id": instance_id,
                       "availability_zone": REGION + "a", "local_ipv4": "10.0.1.5",
                       "public_ipv4": "198.51.100.99"}, f)
        self.proc = subprocess.Popen([sys.executable, FAKE_IMDS, "--state", self.state],
                                     stdout=subprocess.PIPE, text=True)
        self.endpoint = f"http://127.0.0.1:{self.proc.stdout.readline().strip()}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def claim_env(moto, imds=None, endpoint_in_env=True):
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
               AWS_DEFAULT_REGION=REGION, AWS_EC2_METADATA_DISABLED="true")
    env.pop("AWS_ENDPOINT_URL", None)
    env["REAL_AWS"] = REAL_AWS
    env["PATH"] = SHIM_DIR + os.pathsep + os.environ["PATH"]
    if endpoint_in_env:
        env["AWS_ENDPOINT_URL"] = moto.endpoint
    if imds:
        env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = imds.endpoint
    else:
        # No IMDS in the cases that pass everything on the command line.
        env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = "http://127.0.0.1:1"
    return env


def claim_args(address_file, instance_id=None, pool=None, endpoint=None, patience=None):
    args = [CLAIM, "--address-file", address_file]
    if instance_id:
        args += ["--instance-id", instance_id]
    if pool:
        args += ["--pool", pool]
    if endpoint:
        args += ["--endpoint-url", endpoint]
    if patience:
        args += ["--patience", patience]
    return args


def run(args, env):
    p = subprocess.run(args, env=env, capture_output=True, text=True, timeout=PROCESS_TIMEOUT)
    return p.returncode, p.stderr


def read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def user_data(pool):
    # As the stack renders it (image/lakeftpd.cfn.yaml, direct topology).
    line = f"# lakeftpd-claim pool={pool}\n" if pool else ""
    return ("# lakeftpd configuration from CloudFormation stack test\n" + line +
            "public_address = file:/run/lakeftpd-claim/address\n")


def sequential_cases(moto, work):
    pool = "seq"
    pool_allocs = [moto.address(pool) for _ in range(2)]
    decoys = [moto.address("another-stack"), moto.address()]
    a, b, c = moto.instance(), moto.instance(), moto.instance()
    files = {i: os.path.join(work, f"{i}.address") for i in (a, b, c)}

    # The nlb topology: no pool line in user-data; or no user-data at all.
    for text, case in ((user_data(None), "no pool line in user-data"), (None, "no user-data (404)")):
        imds = FakeImds(work, text, a)
        rc, err = run(claim_args(files[a]), claim_env(moto, imds))
        imds.stop()
        check(f"{case}: exit 0, nothing claimed",
              rc == 0 and read(files[a]) is None and "nothing to claim" in err
              and all(h[1] is None for h in moto.holders(pool_allocs + decoys).values()),
              f"rc={rc} file={read(files[a])} {err}")
    # IMDS not answering is a failure, never "nothing to claim".
    env = dict(claim_env(moto), LAKEFTPD_IMDS_PATIENCE="2s")
    rc, err = run(claim_args(files[a]), env)
    check("IMDS not answering: exit 2, one line, nothing claimed",
          rc == 2 and read(files[a]) is None and "IMDS at http://127.0.0.1:1" in err,
          f"rc={rc} {err}")

    # A: everything from IMDS (pool line, instance id), endpoint from AWS_ENDPOINT_URL.
    imds = FakeImds(work, user_data(pool), a)
    rc_a, err_a = run(claim_args(files[a]), claim_env(moto, imds))
    # B: everything on the command line, endpoint from --endpoint-url.
    rc_b, err_b = run(claim_args(files[b], b, pool, moto.endpoint), claim_env(moto, endpoint_in_env=False))
    h = moto.holders(pool_allocs + decoys)
    ip_of = {alloc: v[0] for alloc, v in h.items()}
    holder_of_ip = {v[0]: v[1] for v in h.values()}
    got_a, got_b = read(files[a]), read(files[b])
    check("two instances claim two different addresses of their pool",
          rc_a == 0 and rc_b == 0 and got_a and got_b and got_a != got_b
          and {got_a, got_b} == {ip_of[x] for x in pool_allocs}
          and holder_of_ip[got_a] == a and holder_of_ip[got_b] == b,
          f"a: rc={rc_a} {got_a} {err_a} b: rc={rc_b} {got_b} {err_b} {h}")
    check("addresses of another pool and untagged ones are never taken",
          all(h[d][1] is None for d in decoys), f"{h}")

    # C: the pool is exhausted.
    t0 = time.monotonic()
    rc, err = run(claim_args(files[c], c, pool, patience=FAIL_PATIENCE), claim_env(moto))
    took = time.monotonic() - t0
    lines = [line for line in err.splitlines() if "no free address" in line]
    check("a third finds none: exit 1, one console line, no address file",
          rc == 1 and len(lines) == 1 and lines[0].startswith("lakeftpd-claim: no free address in pool seq")
          and read(files[c]) is None and took < float(FAIL_PATIENCE) + 30,
          f"rc={rc} took={took:.1f}s file={read(files[c])} {err}")
    print(f"      console: {lines[0] if lines else '(none)'}")

    # A restarts (reboot, or the unit run again): keeps its own, no remap.
    before = moto.holders(pool_allocs)
    rc, err = run(claim_args(files[a]), claim_env(moto, imds))
    imds.stop()
    after = moto.holders(pool_allocs)
    check("a restarted instance keeps its own address, no new association",
          rc == 0 and read(files[a]) == got_a and before == after and "kept" in err,
          f"rc={rc} {read(files[a])} vs {got_a} {before} -> {after} {err}")

    # B is replaced: terminated (its EIP disassociated), D takes the freed one.
    moto.terminate(b)
    d = moto.instance()
    file_d = os.path.join(work, f"{d}.address")
    rc, err = run(claim_args(file_d, d, pool), claim_env(moto))
    check("a replacement takes the freed address",
          rc == 0 and read(file_d) == got_b and moto.holders(pool_allocs)[
              next(x for x in pool_allocs if ip_of[x] == got_b)][1] == d,
          f"rc={rc} {read(file_d)} vs {got_b} {err}")


# An `aws` in front of the real one, for every claim the test runs:
# - AssociateAddress reassociates unless told not to, as on AWS ("Reassociation
#   is automatic", API Reference, AllowReassociation); moto refuses by default,
#   which would hide a claim that forgot --no-allow-reassociation;
# - with THIEF set, before the claim's first AssociateAddress another instance
#   takes that very address, as a concurrent claim would between the listing
#   and the association.
AWS_SHIM = """#!/bin/bash
args=("$@")
if [ "$2" = associate-address ]; then
    if [ -n "${THIEF:-}" ] && [ ! -e "$STEAL_MARK" ]; then
        touch "$STEAL_MARK"
        alloc=""
        for a in "$@"; do [ "$prev" = --allocation-id ] && alloc=$a; prev=$a; done
        "$REAL_AWS" ec2 associate-address --allocation-id "$alloc" --instance-id "$THIEF" >/dev/null
    fi
    case " $* " in *" --no-allow-reassociation "*) ;; *) args+=(--allow-reassociation) ;; esac
fi
exec "$REAL_AWS" "${args[@]}"
"""
SHIM_DIR = None


def install_shim(work):
    global SHIM_DIR
    SHIM_DIR = os.path.join(work, "shim")
    os.makedirs(SHIM_DIR)
    with open(os.path.join(SHIM_DIR, "aws"), "w") as f:
        f.write(AWS_SHIM)
    os.chmod(os.path.join(SHIM_DIR, "aws"), 0o755)


def race_lost_between_list_and_associate(moto, work):
    pool = "race"
    allocs = [moto.address(pool) for _ in range(2)]
    me, thief = moto.instance(), moto.instance()
    env = dict(claim_env(moto), THIEF=thief, STEAL_MARK=os.path.join(work, "stolen"))
    file = os.path.join(work, f"{me}.address")
    rc, err = run(claim_args(file, me, pool), env)
    h = moto.holders(allocs)
    stolen = [x for x in allocs if h[x][1] == thief]
    mine = [x for x in allocs if h[x][1] == me]
    check("an address taken between the listing and the association stays with its new holder; "
          "the claim takes the next",
          rc == 0 and os.path.exists(env["STEAL_MARK"]) and len(stolen) == 1 and len(mine) == 1
          and read(file) == h[mine[0]][0],
          f"rc={rc} holders={h} file={read(file)} {err}")


def concurrent_round(moto, work, n):
    pool = f"conc{n}"
    allocs = [moto.address(pool) for _ in range(CONCURRENT_ADDRESSES)]
    instances = [moto.instance() for _ in range(CONCURRENT_INSTANCES)]
    env = claim_env(moto)
    procs = {}
    for i in instances:
        f = os.path.join(work, f"{i}.address")
        procs[i] = (f, subprocess.Popen(claim_args(f, i, pool, patience=FAIL_PATIENCE), env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    codes, claimed = {}, {}
    for i, (f, p) in procs.items():
        _, err = p.communicate(timeout=PROCESS_TIMEOUT)
        codes[i] = p.returncode
        if p.returncode == 0:
            claimed[i] = read(f)
    h = moto.holders(allocs)
    holder_of_ip = {v[0]: v[1] for v in h.values()}
    winners = [i for i, c in codes.items() if c == 0]
    losers = [i for i, c in codes.items() if c == 1]
    distinct = len(set(claimed.values())) == len(claimed)
    truthful = all(holder_of_ip.get(ip) == i for i, ip in claimed.items())
    check(f"concurrent round {n}: {CONCURRENT_INSTANCES} instances, {CONCURRENT_ADDRESSES} addresses: "
          "each address held once, by the instance that wrote it",
          len(winners) == CONCURRENT_ADDRESSES and len(losers) == CONCURRENT_INSTANCES - CONCURRENT_ADDRESSES
          and distinct and truthful,
          f"codes={codes} claimed={claimed} holders={h}")


def moto_enforces_no_reassociation(moto):
    alloc = moto.address("probe")
    x, y = moto.instance(), moto.instance()
    moto.ec2.associate_address(AllocationId=alloc, InstanceId=x, AllowReassociation=False)
    try:
        moto.ec2.associate_address(AllocationId=alloc, InstanceId=y, AllowReassociation=False)
        code = "none"
    except botocore.exceptions.ClientError as e:
        code = e.response["Error"]["Code"]
    check("moto enforces AllowReassociation=false (Resource.AlreadyAssociated)",
          code == "Resource.AlreadyAssociated" and moto.holders([alloc])[alloc][1] == x, f"got {code}")


def main():
    for tool in ("moto_server", "aws"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode:
            sys.exit(f"claim_test: {tool} not on PATH (tests/appliance/install-deps.sh)")
    global REAL_AWS
    REAL_AWS = subprocess.run(["sh", "-c", "command -v aws"], capture_output=True, text=True).stdout.strip()
    moto = Moto()
    try:
        with tempfile.TemporaryDirectory(prefix="lakeftpd-claim-") as work:
            install_shim(work)
            moto_enforces_no_reassociation(moto)
            sequential_cases(moto, work)
            race_lost_between_list_and_associate(moto, work)
            for n in range(1, CONCURRENT_ROUNDS + 1):
                concurrent_round(moto, work, n)
    finally:
        moto.stop()
    print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
