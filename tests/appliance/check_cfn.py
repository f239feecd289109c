#!/usr/bin/env python3
"""Checks on image/lakeftpd.cfn.yaml that cfn-lint does not make.

cfn-lint validates the template against the resource schemas, but not the
documented value ranges of some properties nor our own invariants between the
stack and lakeftpd's configuration. Each problem is printed on one line;
exit status 1 if there is any.

Ranges (AWS documentation, see README.md ("Deploy on AWS")):
- LaunchTemplate MetadataOptions.HttpPutResponseHopLimit: 1-64; we require 1.
- NLB listener attribute tcp.idle_timeout.seconds: 60-6000.
- Target group deregistration_delay.timeout_seconds: 0-3600; we require it to
  cover lakeftpd's default drain (drain_delay 10s + drain_timeout 60s).
- Glue table (Athena partition projection, "Supported types for partition
  projection"): projection.enabled, projection.dt.type = date with a
  projection.dt.format that matches the key template's {yyyy}-{mm}-{dd},
  projection.dt.range, storage.location.template naming ${dt} (and ${user},
  injected, in the user branch); the Glue resources only under GlueOn.
- The bucket sends events to EventBridge only under EventBridgeOn.
- Operations (issue 18, check_ops.py): readiness vs liveness wiring, the
  stop that loses nothing, transfer records, alarms, scaling, users.
- The topologies (issue 17), with the template's own Conditions and Rules
  evaluated (render_user_data.Renderer): the user-data of each topology
  (direct: the claim's pool line, public_address = file:..., EPSV on; nlb:
  EPSV off, health_from the VPC); per pool address K an Elastic IP tagged
  lakeftpd:pool = stack name under AddressK, and with DNS a Route 53 HTTP
  health check on its /healthz and a multivalue A record (TTL <= 60 s) on
  it; AddressCount K creates exactly K addresses in direct and none in nlb;
  the rule AddressesCoverMaxSize accepts exactly MaxSize <= AddressCount;
  the claim's IAM (DescribeAddresses, AssociateAddress only on the pool's
  tag, nothing else of EC2); the pool tag on instances and interfaces; every
  load balancer resource only in nlb; the health port from the VPC (nlb) or
  Route 53's prefix list (direct with DNS).
- Bans shared across the fleet (issue 21, src/server/bans.rs): the role's
  policy lakeftpd-ban-share grants exactly s3:ListBucket on the bucket with
  an s3:prefix condition naming the bans prefix, and s3:GetObject and
  s3:PutObject on BUCKET/PREFIX*, PREFIX being lakeftpd's
  DEFAULT_BAN_SHARE_PREFIX (src/limits.rs) and the user-data's
  ban_share_prefix if it renders one; the data prefix stays write-only and
  its default apart from the bans; no S3 action in a separate IAM policy.

usage: check_cfn.py TEMPLATE
"""
import os
import re
import sys

import yaml

from check_ops import OpsChecks, flat

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import render_user_data  # noqa: E402  (the same evaluator renders user-data)

DRAIN_SECONDS = 25 + 60  # drain_delay + drain_timeout defaults
HEALTH_PORT = 8021
# The topology (issue 17): the template declares this many pool addresses.
MAX_ADDRESSES = 8
POOL_TAG = "lakeftpd:pool"
CLAIM_ADDRESS_FILE = "/run/lakeftpd-claim/address"
ROUTE53_MAX_TTL = 60
REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def lakeftpd_default_key():
    """src/config/keytemplate.rs DEFAULT: the stack's default must be lakeftpd's."""
    with open(os.path.join(REPO, "src/config/keytemplate.rs")) as f:
        m = re.search(r'pub const DEFAULT: &str = "([^"]+)";', f.read())
    return m.group(1) if m else None


HIVE_KEY = lakeftpd_default_key()


def lakeftpd_ban_share_prefix():
    """src/limits.rs DEFAULT_BAN_SHARE_PREFIX: the bans the role may share."""
    with open(os.path.join(REPO, "src/limits.rs")) as f:
        m = re.search(r'pub const DEFAULT_BAN_SHARE_PREFIX: &str = "([^"]+)";', f.read())
    return m.group(1) if m else None


# Bans shared across the fleet (issue 21): the role's own policy for them.
BAN_PREFIX = lakeftpd_ban_share_prefix()
BAN_POLICY = "lakeftpd-ban-share"
# The Java date pattern of the key template's dt part.
DT_FORMAT = "yyyy-MM-dd"
S3_ACTIONS = {"s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"}


class Tagged:
    """A CloudFormation short-form intrinsic (!Ref, !Sub, ...)."""

    def __init__(self, tag, value):
        self.tag, self.value = tag, value


def load(path):
    loader = yaml.SafeLoader

    def construct(loader_, suffix, node):
        if isinstance(node, yaml.ScalarNode):
            value = loader_.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader_.construct_sequence(node, deep=True)
        else:
            value = loader_.construct_mapping(node, deep=True)
        return Tagged(suffix, value)

    yaml.add_multi_constructor("!", construct, Loader=loader)
    with open(path) as f:
        return yaml.load(f, Loader=loader)


def ref_name(v):
    """Parameter name if v is a Ref (short or long form), else None."""
    if isinstance(v, Tagged) and v.tag == "Ref":
        return v.value
    if isinstance(v, dict) and set(v) == {"Ref"}:
        return v["Ref"]
    return None


class Checker(OpsChecks):
    def __init__(self, tpl, path=None):
        self.tpl = tpl
        # The same template as plain data, for the evaluator.
        self.plain = render_user_data.load(path) if path else None
        self.params = tpl.get("Parameters", {})
        self.problems = []

    def problem(self, where, msg):
        self.problems.append(f"{where}: {msg}")

    def int_range(self, where, value, lo, hi, want=None):
        """A literal or a Ref to a Number parameter must stay within lo..hi.

        For a parameter, its Default, MinValue and MaxValue must all be given
        and within the range, so no accepted stack input can leave it.
        """
        name = ref_name(value)
        if name is not None:
            p = self.params.get(name)
            if p is None:
                return self.problem(where, f"Ref to unknown parameter {name}")
            for key in ("Default", "MinValue", "MaxValue"):
                if key not in p:
                    self.problem(where, f"parameter {name} has no {key} (range {lo}-{hi} unchecked)")
                    continue
                if not lo <= int(p[key]) <= hi:
                    self.problem(where, f"parameter {name} {key}={p[key]} outside {lo}-{hi}")
            return
        try:
            n = int(value)
        except (TypeError, ValueError):
            return self.problem(where, f"not a literal or parameter: {value!r}")
        if not lo <= n <= hi:
            self.problem(where, f"{n} outside {lo}-{hi}")
        elif want is not None and n != want:
            self.problem(where, f"{n}, want {want}")

    def resources(self, rtype):
        for name, r in self.tpl.get("Resources", {}).items():
            if r.get("Type") == rtype:
                yield name, r.get("Properties", {})

    def check(self):
        self.launch_templates()
        self.listeners()
        self.target_groups()
        self.iam()
        self.security_groups()
        self.lake()
        self.operations()
        if self.plain is not None:
            self.topology()
        if not list(self.resources("AWS::AutoScaling::AutoScalingGroup")):
            self.problem("Resources", "no AWS::AutoScaling::AutoScalingGroup")
        return self.problems

    def launch_templates(self):
        found = False
        for name, props in self.resources("AWS::EC2::LaunchTemplate"):
            found = True
            data = props.get("LaunchTemplateData", {})
            mo = data.get("MetadataOptions")
            where = f"{name}.MetadataOptions"
            if not mo:
                self.problem(where, "missing (IMDSv2 must be required)")
                continue
            if mo.get("HttpTokens") != "required":
                self.problem(where, f"HttpTokens={mo.get('HttpTokens')!r}, want 'required'")
            if mo.get("HttpEndpoint", "enabled") != "enabled":
                self.problem(where, "HttpEndpoint disabled: lakeftpd reads user-data from IMDS")
            if "HttpPutResponseHopLimit" not in mo:
                self.problem(where, "HttpPutResponseHopLimit unset (an imds_support=v2.0 AMI defaults to 2)")
            else:
                self.int_range(where + ".HttpPutResponseHopLimit", mo["HttpPutResponseHopLimit"], 1, 64, want=1)
            self.user_data(name, data.get("UserData"))
        if not found:
            self.problem("Resources", "no AWS::EC2::LaunchTemplate")

    def user_data(self, name, ud):
        where = f"{name}.UserData"
        # Expected shape: Fn::Base64 of a Fn::Sub string.
        inner = ud.get("Fn::Base64") if isinstance(ud, dict) else None
        if isinstance(inner, Tagged) and inner.tag == "Sub":
            text = inner.value if isinstance(inner.value, str) else inner.value[0]
        elif isinstance(inner, dict) and "Fn::Sub" in inner:
            sub = inner["Fn::Sub"]
            text = sub if isinstance(sub, str) else sub[0]
        else:
            return self.problem(where, "want Fn::Base64 of Fn::Sub (the lakeftpd config text)")
        first = text.lstrip().splitlines()[0] if text.strip() else ""
        if first.startswith("#!") or first.startswith("#cloud-") or first.startswith("#include"):
            self.problem(where, f"first line {first!r} would be taken by cloud-init")
        keys = {}
        for line in text.splitlines():
            m = re.match(r"^\s*([a-z_0-9]+)\s*=\s*(.*?)\s*$", line)
            if m:
                keys[m.group(1)] = m.group(2)
        # The operations checks compare these with the stack (check_ops.py).
        self.ud_keys = keys
        for k in ("listen", "passive_ports", "s3_bucket", "s3_region", "s3_key", "health_listen"):
            if k not in keys:
                self.problem(where, f"config key {k} missing")
        if keys.get("health_listen") != f"0.0.0.0:{HEALTH_PORT}":
            self.problem(where, f"health_listen={keys.get('health_listen')!r}, want 0.0.0.0:{HEALTH_PORT}")
        if not keys.get("listen", "").endswith(":21"):
            self.problem(where, f"listen={keys.get('listen')!r}, want port 21 (the NLB target port)")

    def listeners(self):
        found = False
        for name, props in self.resources("AWS::ElasticLoadBalancingV2::Listener"):
            found = True
            # 21: explicit FTP/FTPS; 990: implicit FTPS (lakeftpd terminates TLS).
            if props.get("Protocol") != "TCP" or int(props.get("Port", 0)) not in (21, 990):
                self.problem(name, "want a TCP listener on port 21 (or 990 for implicit FTPS)")
            attrs = {a.get("Key"): a.get("Value") for a in props.get("ListenerAttributes", [])}
            if "tcp.idle_timeout.seconds" not in attrs:
                self.problem(name, "tcp.idle_timeout.seconds unset (AWS default 350s)")
            else:
                self.int_range(f"{name}.tcp.idle_timeout.seconds", attrs["tcp.idle_timeout.seconds"], 60, 6000)
        if not found:
            self.problem("Resources", "no AWS::ElasticLoadBalancingV2::Listener")

    def target_groups(self):
        for name, props in self.resources("AWS::ElasticLoadBalancingV2::TargetGroup"):
            if props.get("TargetType") != "instance":
                self.problem(name, "TargetType must be instance (keeps the client IP without PROXY)")
            if str(props.get("HealthCheckPort")) != str(HEALTH_PORT) or props.get("HealthCheckPath") != "/healthz":
                self.problem(name, f"health check must be HTTP :{HEALTH_PORT}/healthz")
            attrs = {a.get("Key"): a.get("Value") for a in props.get("TargetGroupAttributes", [])}
            delay = attrs.get("deregistration_delay.timeout_seconds")
            if delay is None:
                self.problem(name, "deregistration_delay.timeout_seconds unset (AWS default 300s)")
            else:
                self.int_range(f"{name}.deregistration_delay.timeout_seconds", delay, DRAIN_SECONDS, 3600)

    def tls_read(self, name, st):
        if not isinstance(st, dict) or st.get("Action") != "s3:GetObject":
            return self.problem(name, "the conditional statement must grant s3:GetObject alone")
        res = st.get("Resource") or []
        if not isinstance(res, list):
            res = [res]
        text = flat(res)
        if "*" in text:
            return self.problem(name, f"s3:GetObject must name objects, not patterns: {text}")
        # The users file: that one object.
        if "UsersObject" in text:
            if len(res) != 1:
                self.problem(name, f"s3:GetObject must name the users object alone: {text}")
            return
        if "TlsCertObject" not in text or "TlsKeyObject" not in text:
            self.problem(name, f"s3:GetObject must name the two TLS objects alone: {text}")

    def iam(self):
        for name, props in self.resources("AWS::IAM::Role"):
            shares = 0
            for pol in props.get("Policies", []):
                if isinstance(pol, Tagged):
                    continue  # the claim's policy, under Direct: claim_iam()
                if pol.get("PolicyName") == BAN_POLICY:
                    shares += 1
                    self.ban_share(f"{name}.{BAN_POLICY}", pol.get("PolicyDocument", {}).get("Statement", []))
                    continue
                for st in pol.get("PolicyDocument", {}).get("Statement", []):
                    if isinstance(st, Tagged) and st.tag == "If":
                        # FTPS: read the certificate and key objects, nothing else.
                        self.tls_read(name, st.value[1])
                        continue
                    actions = st.get("Action", [])
                    actions = [actions] if isinstance(actions, str) else actions
                    s3 = [a for a in actions if a.startswith("s3:")]
                    if not s3:
                        continue
                    extra = set(s3) - S3_ACTIONS
                    if extra or "*" in "".join(s3):
                        self.problem(name, f"S3 actions beyond write-only: {sorted(extra)}")
                    res = st.get("Resource")
                    res = res.value if isinstance(res, Tagged) else res
                    if not (isinstance(res, str) and res.endswith("/${S3Prefix}*")):
                        self.problem(name, f"S3 resource {res!r} is not limited to the bucket prefix")
            if shares != 1:
                self.problem(name, f"want one policy {BAN_POLICY} (bans shared across the fleet), found {shares}")
        # S3 permissions only in the role's inline policies checked above.
        for name, props in self.resources("AWS::IAM::Policy"):
            for st in props.get("PolicyDocument", {}).get("Statement", []):
                acts = st.get("Action", []) if isinstance(st, dict) else []
                acts = [acts] if isinstance(acts, str) else acts
                if any(str(a).startswith("s3:") or str(a) == "*" for a in acts):
                    self.problem(name, f"S3 actions outside the instance role's checked policies: {acts}")

    def ban_share(self, where, statements):
        """Bans shared across the fleet (src/server/bans.rs), and nothing wider.

        Exactly: s3:ListBucket on the bucket, only with an s3:prefix
        condition naming the bans prefix (ListObjectsV2 prefix=PREFIX), and
        s3:GetObject and s3:PutObject on PREFIX* (the conditional reads and
        writes). PREFIX is lakeftpd's ban_share_prefix default, which the
        user-data must leave alone (or render as the same text).
        """
        if BAN_PREFIX is None:
            return self.problem("src/limits.rs", "DEFAULT_BAN_SHARE_PREFIX not found")
        bucket = "arn:${AWS::Partition}:s3:::${S3Bucket}"
        listing = objects = 0
        for st in statements:
            if not isinstance(st, dict) or st.get("Effect") != "Allow" or {"NotAction", "NotResource"} & set(st):
                self.problem(where, f"want plain Allow statements: {flat(st)}")
                continue
            actions = st.get("Action", [])
            actions = sorted([actions] if isinstance(actions, str) else actions)
            res = st.get("Resource")
            res = res.value if isinstance(res, Tagged) and res.tag == "Sub" else res
            cond = st.get("Condition")
            if actions == ["s3:ListBucket"]:
                listing += 1
                if res != bucket:
                    self.problem(where, f"s3:ListBucket on {flat(res)}, want the bucket {bucket}")
                if not self.bans_prefix_condition(cond):
                    self.problem(where, f"s3:ListBucket needs the condition StringEquals s3:prefix {BAN_PREFIX} (or StringLike {BAN_PREFIX}*), alone: {flat(cond)}")
            elif actions == ["s3:GetObject", "s3:PutObject"]:
                objects += 1
                if res != f"{bucket}/{BAN_PREFIX}*":
                    self.problem(where, f"s3:GetObject, s3:PutObject on {flat(res)}, want {bucket}/{BAN_PREFIX}* (lakeftpd's ban_share_prefix)")
                if cond is not None:
                    self.problem(where, f"unexpected condition on the bans objects: {flat(cond)}")
            else:
                self.problem(where, f"actions {actions}: want s3:ListBucket alone, then s3:GetObject and s3:PutObject")
        if (listing, objects) != (1, 1):
            self.problem(where, f"want one listing and one objects statement, found {listing} and {objects}")
        ud = getattr(self, "ud_keys", {})
        if ud.get("ban_share_prefix", BAN_PREFIX) != BAN_PREFIX:
            self.problem("UserData", f"ban_share_prefix = {ud['ban_share_prefix']}, but the role shares {BAN_PREFIX}")
        if ud.get("ban_share_interval") == "off":
            self.problem("UserData", f"ban_share_interval = off: drop {BAN_POLICY} too")
        data = str(self.params.get("S3Prefix", {}).get("Default", ""))
        if data.startswith(BAN_PREFIX) or BAN_PREFIX.startswith(data):
            self.problem("S3Prefix", f"Default {data!r} overlaps the bans prefix {BAN_PREFIX!r} (uploads would be read as bans)")

    def bans_prefix_condition(self, cond):
        """One operator, one key s3:prefix, values that name the bans prefix alone."""
        if not isinstance(cond, dict) or len(cond) != 1:
            return False
        (op, keys), = cond.items()
        if not isinstance(keys, dict) or set(keys) != {"s3:prefix"}:
            return False
        values = keys["s3:prefix"]
        values = set([values] if isinstance(values, str) else values or [])
        allowed = {"StringLike": {BAN_PREFIX, BAN_PREFIX + "*"}, "StringEquals": {BAN_PREFIX}}.get(op, set())
        return bool(values) and values <= allowed

    def security_groups(self):
        for name, props in self.resources("AWS::EC2::SecurityGroup"):
            ports = {(ref_name(r.get("FromPort")) or r.get("FromPort")) for r in props.get("SecurityGroupIngress", []) if isinstance(r, dict)}
            for want in (21, "PassivePortFrom"):
                if want not in ports:
                    self.problem(name, f"no ingress rule for {want}")

    def lake(self):
        """The optional Glue table and EventBridge notifications."""
        if self.params.get("S3KeyPattern", {}).get("Default") != HIVE_KEY:
            self.problem("S3KeyPattern", f"Default must be the Hive-style {HIVE_KEY!r} (the Glue table reads it)")
        conds = self.tpl.get("Conditions", {})
        for c in ("GlueOn", "GlueWithUser", "EventBridgeOn"):
            if c not in conds:
                self.problem("Conditions", f"{c} missing")
        glue = 0
        for rtype in ("AWS::Glue::Database", "AWS::Glue::Table"):
            for name, r in self.tpl.get("Resources", {}).items():
                if r.get("Type") == rtype:
                    glue += 1
                    if r.get("Condition") != "GlueOn":
                        self.problem(name, "a Glue resource must have Condition GlueOn (GlueTable = off creates none)")
        if glue != 2:
            self.problem("Resources", f"want one Glue database and one table, found {glue} Glue resources")
        for name, props in self.resources("AWS::Glue::Table"):
            ti = props.get("TableInput", {})
            params, keys = ti.get("Parameters"), ti.get("PartitionKeys")
            if not (isinstance(params, Tagged) and params.tag == "If" and params.value[0] == "GlueWithUser"):
                self.problem(name, "TableInput.Parameters must be !If [GlueWithUser, with user, without]")
                continue
            if not (isinstance(keys, Tagged) and keys.tag == "If" and keys.value[0] == "GlueWithUser"):
                self.problem(name, "TableInput.PartitionKeys must be !If [GlueWithUser, ...]")
                continue
            for branch, with_user in ((1, True), (2, False)):
                self.projection(f"{name}.Parameters[{'user' if with_user else 'dt'}]", params.value[branch], with_user)
                cols = [k.get("Name") for k in keys.value[branch]]
                want = ["user", "dt"] if with_user else ["dt"]
                if cols != want:
                    self.problem(name, f"partition keys {cols}, want {want} (the key template's order)")
        for name, props in self.resources("AWS::S3::Bucket"):
            nc = props.get("NotificationConfiguration")
            ok = (
                isinstance(nc, Tagged) and nc.tag == "If" and nc.value[0] == "EventBridgeOn"
                and nc.value[1].get("EventBridgeConfiguration", {}).get("EventBridgeEnabled") is True
                and ref_name(nc.value[2]) == "AWS::NoValue"
            )
            if not ok:
                self.problem(name, "NotificationConfiguration must be !If [EventBridgeOn, EventBridgeEnabled: true, NoValue]")

    def projection(self, where, p, with_user):
        def text(v):
            return v.value if isinstance(v, Tagged) else v
        want = {"projection.enabled": "true", "projection.dt.type": "date", "projection.dt.format": DT_FORMAT}
        for k, v in want.items():
            if text(p.get(k)) != v:
                self.problem(where, f"{k}={text(p.get(k))!r}, want {v!r}")
        rng = text(p.get("projection.dt.range")) or ""
        if not rng.endswith(",NOW"):
            self.problem(where, f"projection.dt.range={rng!r}, want START,NOW")
        loc = text(p.get("storage.location.template")) or ""
        if not loc.endswith("dt=${!dt}/"):
            self.problem(where, f"storage.location.template={loc!r} must end in dt=${{!dt}}/")
        has_user = "user=${!user}/" in loc
        if with_user != has_user or with_user != (text(p.get("projection.user.type")) == "injected"):
            self.problem(where, "user partition: injected and in storage.location.template exactly when GlueWithUser")


    # --- the topologies (issue 17) ------------------------------------------------
    def evaluate(self, node, **params):
        """node evaluated with the sample values and these parameters."""
        values = render_user_data.sample_values(self.plain)
        values.update({k: str(v) for k, v in params.items()})
        return render_user_data.Renderer(self.plain, values).eval(node)

    def condition(self, name, **params):
        if name is None:
            return True
        values = render_user_data.sample_values(self.plain)
        values.update({k: str(v) for k, v in params.items()})
        return render_user_data.Renderer(self.plain, values).condition(name)

    def topology(self):
        p = self.plain.get("Parameters", {})
        topo = p.get("Topology", {})
        if topo.get("Default") != "direct" or sorted(topo.get("AllowedValues", [])) != ["direct", "nlb"]:
            return self.problem("Topology", "want AllowedValues [direct, nlb], Default direct")
        counts = [int(v) for v in p.get("AddressCount", {}).get("AllowedValues", [])]
        if counts != list(range(1, MAX_ADDRESSES + 1)):
            self.problem("AddressCount", f"AllowedValues {counts}, want 1..{MAX_ADDRESSES} (the addresses declared)")
        self.topology_user_data()
        self.address_pool()
        self.address_rule()
        self.claim_iam()
        self.pool_tags()
        self.nlb_only()
        self.health_ingress()

    def topology_user_data(self):
        direct = render_user_data.render(self.plain, dict(render_user_data.sample_values(self.plain), Topology="direct"))
        nlb = render_user_data.render(self.plain, dict(render_user_data.sample_values(self.plain), Topology="nlb"))

        def keys(text):
            return dict(re.findall(r"(?m)^([a-z_0-9]+)\s*=\s*(.*?)\s*$", text))
        d, n = keys(direct), keys(nlb)
        if "# lakeftpd-claim pool=lakeftpd" not in direct.splitlines():
            self.problem("UserData[direct]", "no '# lakeftpd-claim pool=STACK' line (lakeftpd-claim reads it)")
        if d.get("public_address") != f"file:{CLAIM_ADDRESS_FILE}":
            self.problem("UserData[direct]", f"public_address={d.get('public_address')!r}, want file:{CLAIM_ADDRESS_FILE}")
        if d.get("epsv") != "on":
            self.problem("UserData[direct]", "epsv must be on (no balancer to defeat it)")
        if "lakeftpd-claim" in nlb:
            self.problem("UserData[nlb]", "the nlb topology must not claim an address")
        if n.get("public_address") not in ("imds", "imds-private"):
            self.problem("UserData[nlb]", f"public_address={n.get('public_address')!r}, want imds or imds-private")
        if n.get("epsv") != "off":
            self.problem("UserData[nlb]", "epsv must be off behind a multi-target NLB")
        if n.get("health_from") != "10.0.0.0/16":
            self.problem("UserData[nlb]", f"health_from={n.get('health_from')!r}, want the VpcCidr (the NLB's addresses)")

    def address_pool(self):
        res = self.plain.get("Resources", {})
        stack_ref = {"Ref": "AWS::StackName"}
        for k in range(1, MAX_ADDRESSES + 1):
            eip, hc, rec = res.get(f"Eip{k}"), res.get(f"HealthCheck{k}"), res.get(f"Record{k}")
            if not eip or eip.get("Type") != "AWS::EC2::EIP" or eip.get("Condition") != f"Address{k}":
                self.problem(f"Eip{k}", f"want an AWS::EC2::EIP under Condition Address{k}")
                continue
            props = eip.get("Properties", {})
            tags = {t.get("Key"): t.get("Value") for t in props.get("Tags", [])}
            if props.get("Domain") != "vpc" or tags.get(POOL_TAG) != stack_ref:
                self.problem(f"Eip{k}", f"want Domain vpc and tag {POOL_TAG} = !Ref AWS::StackName")
            eip_ref = {"Ref": f"Eip{k}"}
            if not hc or hc.get("Type") != "AWS::Route53::HealthCheck" or hc.get("Condition") != f"Dns{k}":
                self.problem(f"HealthCheck{k}", f"want an AWS::Route53::HealthCheck under Condition Dns{k}")
            else:
                c = hc.get("Properties", {}).get("HealthCheckConfig", {})
                if (c.get("Type"), c.get("IPAddress"), int(c.get("Port", 0)), c.get("ResourcePath")) != ("HTTP", eip_ref, HEALTH_PORT, "/healthz"):
                    self.problem(f"HealthCheck{k}", f"want HTTP on !Ref Eip{k}:{HEALTH_PORT}/healthz")
            if not rec or rec.get("Type") != "AWS::Route53::RecordSet" or rec.get("Condition") != f"Dns{k}":
                self.problem(f"Record{k}", f"want an AWS::Route53::RecordSet under Condition Dns{k}")
            else:
                r = rec.get("Properties", {})
                ok = (r.get("Type") == "A" and r.get("MultiValueAnswer") is True
                      and r.get("HealthCheckId") == {"Ref": f"HealthCheck{k}"}
                      and r.get("ResourceRecords") == [eip_ref] and r.get("SetIdentifier")
                      and int(r.get("TTL", 10**6)) <= ROUTE53_MAX_TTL)
                if not ok:
                    self.problem(f"Record{k}", f"want a multivalue A record of !Ref Eip{k}, its health check, TTL <= {ROUTE53_MAX_TTL}")
        ids = {str(res.get(f"Record{k}", {}).get("Properties", {}).get("SetIdentifier")) for k in range(1, MAX_ADDRESSES + 1)}
        if len(ids) != MAX_ADDRESSES:
            self.problem("Record*", "SetIdentifiers must differ")
        # AddressCount = a creates exactly a addresses in direct, none in nlb;
        # DNS only with a hosted zone, and only in direct.
        dns = {"HostedZoneId": "Z0123456789ABC"}
        for a in range(1, MAX_ADDRESSES + 1):
            for topo, want in (("direct", a), ("nlb", 0)):
                got = sum(self.condition(f"Address{k}", Topology=topo, AddressCount=a) for k in range(1, MAX_ADDRESSES + 1))
                dns_got = sum(self.condition(f"Dns{k}", Topology=topo, AddressCount=a, **dns) for k in range(1, MAX_ADDRESSES + 1))
                no_dns = sum(self.condition(f"Dns{k}", Topology=topo, AddressCount=a) for k in range(1, MAX_ADDRESSES + 1))
                if (got, dns_got, no_dns) != (want, want, 0):
                    self.problem("Conditions", f"{topo}, AddressCount {a}: {got} addresses, {dns_got} records with a zone, {no_dns} without; want {want}, {want}, 0")

    def address_rule(self):
        rule = self.plain.get("Rules", {}).get("AddressesCoverMaxSize")
        if not rule:
            return self.problem("Rules", "AddressesCoverMaxSize missing (MaxSize <= AddressCount in direct)")
        for topo in ("direct", "nlb"):
            for a in range(1, MAX_ADDRESSES + 1):
                for m in range(1, MAX_ADDRESSES + 3):
                    applies = self.evaluate(rule["RuleCondition"], Topology=topo, AddressCount=a, MaxSize=m)
                    holds = all(self.evaluate(x["Assert"], Topology=topo, AddressCount=a, MaxSize=m) for x in rule["Assertions"])
                    want = m <= a or topo == "nlb"
                    if (not applies or holds) != want:
                        self.problem("AddressesCoverMaxSize", f"{topo}, AddressCount {a}, MaxSize {m}: accepted={not applies or holds}, want {want}")
        # The defaults pass every rule.
        for name, r in self.plain.get("Rules", {}).items():
            if self.evaluate(r.get("RuleCondition", True)) and not all(self.evaluate(x["Assert"]) for x in r["Assertions"]):
                self.problem(f"Rules.{name}", "the parameter defaults fail it")

    def claim_iam(self):
        role = self.plain["Resources"]["InstanceRole"]["Properties"]
        for topo in ("direct", "nlb"):
            policies = self.evaluate(role.get("Policies", []), Topology=topo)
            statements = [st for pol in policies for st in pol["PolicyDocument"]["Statement"]]
            ec2 = [st for st in statements if any(a.startswith("ec2:") for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"]))]
            if topo == "nlb":
                if ec2:
                    self.problem("InstanceRole[nlb]", f"no EC2 permissions without the claim: {ec2}")
                continue
            actions = {a for st in ec2 for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])}
            if actions != {"ec2:DescribeAddresses", "ec2:AssociateAddress"}:
                self.problem("InstanceRole[direct]", f"EC2 actions {sorted(actions)}, want DescribeAddresses and AssociateAddress only")
            for st in ec2:
                acts = [st["Action"]] if isinstance(st["Action"], str) else st["Action"]
                if "ec2:AssociateAddress" not in acts:
                    continue
                cond = st.get("Condition", {}).get("StringEquals", {})
                res = st.get("Resource")
                res = [res] if isinstance(res, str) else res
                if len(acts) != 1 or cond != {f"aws:ResourceTag/{POOL_TAG}": "lakeftpd"} or "*" in res:
                    self.problem("InstanceRole[direct]", f"AssociateAddress must be alone, on named resource types, conditioned on {POOL_TAG} = the stack: {st}")
            covered = {r.split(":")[-1].split("/")[0] for st in ec2 if "ec2:AssociateAddress" in st["Action"] for r in ([st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"])}
            if not {"elastic-ip", "instance"} <= covered:
                self.problem("InstanceRole[direct]", f"AssociateAddress resources {sorted(covered)}: want elastic-ip and instance (and network-interface)")

    def pool_tags(self):
        lt = self.plain["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]
        for topo in ("direct", "nlb"):
            specs = self.evaluate(lt.get("TagSpecifications", []), Topology=topo)
            tagged = {s["ResourceType"] for s in specs if any(t.get("Key") == POOL_TAG and t.get("Value") == "lakeftpd" for t in s.get("Tags", []))}
            want = {"instance", "network-interface"} if topo == "direct" else set()
            if tagged != want:
                self.problem(f"LaunchTemplate[{topo}]", f"{POOL_TAG} on {sorted(tagged)}, want {sorted(want)} (the IAM condition)")

    def nlb_only(self):
        # Whatever TLS asks for, direct creates no load balancer resource.
        for name, r in self.plain.get("Resources", {}).items():
            if not r.get("Type", "").startswith("AWS::ElasticLoadBalancingV2::"):
                continue
            if self.condition(r.get("Condition"), Topology="direct", Tls="on", ImplicitTls="on"):
                self.problem(name, "a load balancer resource must exist only in the nlb topology")
            if not self.condition(r.get("Condition"), Topology="nlb", Tls="on", ImplicitTls="on"):
                self.problem(name, "missing from the nlb topology")
        asg = self.plain["Resources"]["AutoScalingGroup"]["Properties"]
        # EC2 in both (issue 18): /healthz is readiness; a shared outage must
        # not make the group replace the fleet (check_ops.py checks the rest).
        for topo, want in (("direct", "EC2"), ("nlb", "EC2")):
            if self.evaluate(asg.get("HealthCheckType"), Topology=topo) != want:
                self.problem(f"AutoScalingGroup[{topo}]", f"HealthCheckType want {want}")
        if self.evaluate({"x": asg.get("TargetGroupARNs")}, Topology="direct").get("x") is not render_user_data.NO_VALUE:
            self.problem("AutoScalingGroup[direct]", "no target groups without the NLB")
        for name, out in self.plain.get("Outputs", {}).items():
            if "LoadBalancer" in repr(out.get("Value")) and not out.get("Condition") == "Nlb":
                self.problem(f"Outputs.{name}", "names the NLB: Condition Nlb")

    def health_ingress(self):
        sg = self.plain["Resources"]["InstanceSecurityGroup"]["Properties"]
        zone = {"HostedZoneId": "Z0123456789ABC", "HealthCheckPrefixListId": "pl-0123456789abcdef0"}
        for topo, params, want in (
            ("nlb", {}, {"CidrIp": "10.0.0.0/16"}),
            ("direct", zone, {"SourcePrefixListId": "pl-0123456789abcdef0"}),
            ("direct", {}, None),
        ):
            rules = [r for r in self.evaluate(sg.get("SecurityGroupIngress", []), Topology=topo, **params)
                     if int(r.get("FromPort", 0)) <= HEALTH_PORT <= int(r.get("ToPort", 0))]
            got = None
            if len(rules) == 1:
                got = {k: v for k, v in rules[0].items() if k in ("CidrIp", "SourcePrefixListId")}
            if (rules and got != want) or (not rules and want is not None):
                self.problem(f"InstanceSecurityGroup[{topo}{' with DNS' if params else ''}]",
                             f"health port {HEALTH_PORT} from {rules}, want {want or 'nobody'}")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    problems = Checker(load(sys.argv[1]), sys.argv[1]).check()
    for p in problems:
        print(p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
