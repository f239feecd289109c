"""Operations checks on image/lakeftpd.cfn.yaml (issue 18), mixed into
check_cfn.py's Checker: the stack, the units in systemd/, image/lakeftpd-ops.sh
and lakeftpd's own names must agree.

- Readiness vs liveness: the ASG replaces on EC2 health only; lakeftpd.service
  has a watchdog and OnFailure=lakeftpd-unhealthy.service; a liveness timer
  runs `lakeftpd-ops liveness`; the role may SetInstanceHealth on this group
  alone.
- A stop that loses nothing: both unhealthy-target attributes on every target
  group (connection termination off, draining interval = drain_timeout);
  drain_delay >= health check interval x unhealthy threshold; drain_delay +
  drain_timeout + drain_spool_timeout + 2 s < the unit's TimeoutStopSec <
  the termination hook's heartbeat; the hook's name is lakeftpd-ops's.
- Transfer records: a log group with RetentionInDays = LogRetentionDays, its
  name in the instance tag lakeftpd-ops reads (metadata tags on), the
  user-data's transfer_log = lakeftpd-ops's file, logs:PutLogEvents on that
  group only.
- Disk: a gp3, encrypted root volume of RootVolumeSize GiB; keep_local = off.
- Alarms: the SNS topic, every alarm to it, and every lakeftpd metric an
  alarm or a policy names is one lakeftpd publishes (src/ops/metrics.rs,
  src/aws/emf.rs), with the Group dimension.
- Scaling: target tracking on ActiveSessionsPeak with a 10 s period (and
  metrics_interval = 10s), plus CPU.
- No silent overwrites: the created bucket is versioned, with a noncurrent
  version expiry; the Glue rule accepts the default key template, whose
  folders are the Glue table's partition location and whose name is unique
  per upload ({uuid}, {filename}, no folders).
- Users: Users optional; UsersObject's pattern takes s3://BUCKET/KEY and
  refuses a key without its bucket.
"""
import os
import re

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
UNIT_DIR = os.path.join(REPO, "systemd")
OPS_SCRIPT = os.path.join(REPO, "image", "lakeftpd-ops.sh")
# Alarms whose metric is lakeftpd's own must name the fleet (metrics_group).
EMF_NAMESPACE = "lakeftpd"
WANT_ALARMS = {
    # (namespace, metric) each issue-18 alarm watches
    ("lakeftpd", "Ready"),
    ("AWS/NetworkELB", "HealthyHostCount"),
    ("AWS/NetworkELB", "UnHealthyHostCount"),
    ("lakeftpd", "S3QueueDepth"),
    ("lakeftpd", "S3OldestPendingSeconds"),
    ("lakeftpd", "S3DeliveryFailures"),
    ("lakeftpd", "SpoolFreeBytes"),
    ("lakeftpd", "DiskFull"),
    ("lakeftpd", "TlsCertExpirySeconds"),
    ("lakeftpd", "UsersReloadFailures"),
    ("lakeftpd", "UploadsOk"),
}
CERT_EXPIRY_SECONDS = 21 * 86400


def flat(v):
    """Text of a template value with every intrinsic's arguments spelt out."""
    if hasattr(v, "tag") and hasattr(v, "value"):
        return f"!{v.tag} {flat(v.value)}"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {flat(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(flat(x) for x in v) + "]"
    return str(v)


def seconds(text):
    """A lakeftpd duration ("25s", "2m") or a systemd one ("240s") in seconds."""
    m = re.fullmatch(r"(\d+)(s|m)?", (text or "").strip())
    if not m:
        return None
    return int(m.group(1)) * (60 if m.group(2) == "m" else 1)


def read(path):
    with open(path) as f:
        return f.read()


def unit_value(unit, key):
    m = re.search(rf"^{key}=(.*)$", read(os.path.join(UNIT_DIR, unit)), re.M)
    return m.group(1).strip() if m else None


def script_constant(name):
    m = re.search(rf"^{name}=(\S+)$", read(OPS_SCRIPT), re.M)
    return m.group(1) if m else None


def camel(name):
    return "".join(w[:1].upper() + w[1:] for w in name.split("_") if w)


def emf_names():
    """Every metric name lakeftpd can publish through EMF: the CamelCase of
    each metric in src/ops/metrics.rs, and the names written out in
    src/aws/emf.rs (fixed and derived ones)."""
    metrics = read(os.path.join(REPO, "src/ops/metrics.rs"))
    names = {camel(n) for n in re.findall(r"^\s*(?:Gauge|Counter)\s+([a-z0-9_]+),", metrics, re.M)}
    emf = read(os.path.join(REPO, "src/aws/emf.rs"))
    names |= set(re.findall(r'"([A-Z][A-Za-z0-9]+)"', emf))
    return names


class OpsChecks:
    def operations(self):
        self.health_wiring()
        self.stop_wiring()
        self.transfer_records()
        self.disk()
        self.alarms()
        self.scaling()
        self.bucket_versions()
        self.users_parameters()

    def res(self, name):
        return self.tpl.get("Resources", {}).get(name) or {}

    def of_type(self, rtype):
        return [(n, r) for n, r in self.tpl.get("Resources", {}).items() if r.get("Type") == rtype]

    # --- readiness vs liveness --------------------------------------------------
    def health_wiring(self):
        for name, props in self.resources("AWS::AutoScaling::AutoScalingGroup"):
            if props.get("HealthCheckType") != "EC2":
                self.problem(name, f"HealthCheckType={props.get('HealthCheckType')!r}, want EC2 "
                             "(readiness must not replace instances; lakeftpd-ops reports liveness)")
        if not unit_value("lakeftpd.service", "WatchdogSec"):
            self.problem("systemd/lakeftpd.service", "no WatchdogSec= (the liveness watchdog)")
        if unit_value("lakeftpd.service", "OnFailure") != "lakeftpd-unhealthy.service":
            self.problem("systemd/lakeftpd.service", "want OnFailure=lakeftpd-unhealthy.service")
        if unit_value("lakeftpd-unhealthy.service", "ExecStart") != "/usr/local/libexec/lakeftpd-ops on-failure":
            self.problem("systemd/lakeftpd-unhealthy.service", "ExecStart must run lakeftpd-ops on-failure")
        if unit_value("lakeftpd-liveness.service", "ExecStart") != "/usr/local/libexec/lakeftpd-ops liveness":
            self.problem("systemd/lakeftpd-liveness.service", "ExecStart must run lakeftpd-ops liveness")
        if not unit_value("lakeftpd-liveness.timer", "OnUnitActiveSec"):
            self.problem("systemd/lakeftpd-liveness.timer", "no OnUnitActiveSec= (probe period)")
        self.scoped_autoscaling("autoscaling:SetInstanceHealth")

    def ops_statements(self):
        out = []
        for name, r in self.of_type("AWS::IAM::Policy"):
            props = r.get("Properties", {})
            roles = [flat(x) for x in props.get("Roles", [])]
            if "!Ref InstanceRole" not in roles:
                continue
            for st in props.get("PolicyDocument", {}).get("Statement", []):
                acts = st.get("Action", [])
                out.append((name, [acts] if isinstance(acts, str) else acts, flat(st.get("Resource"))))
        return out

    def scoped_autoscaling(self, action):
        found = [(n, res) for n, acts, res in self.ops_statements() if action in acts]
        if not found:
            return self.problem("IAM", f"the instance role may not {action}")
        for name, res in found:
            if "autoScalingGroupName/${AutoScalingGroup}" not in res or res.strip() == "*":
                self.problem(name, f"{action} must be scoped to this group's ARN, not {res}")

    # --- a stop that loses nothing ---------------------------------------------------
    def stop_wiring(self):
        keys = getattr(self, "ud_keys", {})
        delay, timeout = seconds(keys.get("drain_delay")), seconds(keys.get("drain_timeout"))
        spool = seconds(keys.get("drain_spool_timeout"))
        if None in (delay, timeout, spool):
            return self.problem("UserData", "render drain_delay, drain_timeout and drain_spool_timeout")
        for name, props in self.resources("AWS::ElasticLoadBalancingV2::TargetGroup"):
            detect = int(props.get("HealthCheckIntervalSeconds", 30)) * int(props.get("UnhealthyThresholdCount", 2))
            if delay < detect:
                self.problem(name, f"drain_delay {delay}s is shorter than the detection ({detect}s)")
            attrs = {a.get("Key"): a.get("Value") for a in props.get("TargetGroupAttributes", [])}
            if attrs.get("target_health_state.unhealthy.connection_termination.enabled") != "false":
                self.problem(name, "target_health_state.unhealthy.connection_termination.enabled must be \"false\"")
            if str(attrs.get("target_health_state.unhealthy.draining_interval_seconds")) != str(timeout):
                self.problem(name, f"target_health_state.unhealthy.draining_interval_seconds must be drain_timeout ({timeout})")
            if attrs.get("deregistration_delay.connection_termination.enabled") != "false":
                self.problem(name, "deregistration_delay.connection_termination.enabled must be \"false\"")
        worst = delay + timeout + spool + 2
        stop = seconds(unit_value("lakeftpd.service", "TimeoutStopSec"))
        if stop is None or stop <= worst:
            self.problem("systemd/lakeftpd.service", f"TimeoutStopSec {stop} must exceed the drain's worst case {worst}s")
        hooks = [p for _, p in self.resources("AWS::AutoScaling::LifecycleHook")
                 if p.get("LifecycleTransition") == "autoscaling:EC2_INSTANCE_TERMINATING"]
        if len(hooks) != 1:
            return self.problem("Resources", "want one termination lifecycle hook")
        hook = hooks[0]
        if hook.get("LifecycleHookName") != script_constant("HOOK_NAME"):
            self.problem("DrainLifecycleHook", f"name {hook.get('LifecycleHookName')!r} is not lakeftpd-ops's HOOK_NAME")
        beat = int(hook.get("HeartbeatTimeout", 3600))
        if stop is not None and not stop < beat <= 7200:
            self.problem("DrainLifecycleHook", f"HeartbeatTimeout {beat} must exceed TimeoutStopSec {stop} and stay bounded (<= 7200)")
        if hook.get("DefaultResult") != "CONTINUE":
            self.problem("DrainLifecycleHook", "DefaultResult must be CONTINUE (terminate after the heartbeat)")
        self.scoped_autoscaling("autoscaling:CompleteLifecycleAction")
        for unit in ("lakeftpd-lifecycle.service",):
            if unit_value(unit, "ExecStart") != "/usr/local/libexec/lakeftpd-ops lifecycle":
                self.problem(f"systemd/{unit}", "ExecStart must run lakeftpd-ops lifecycle")

    # --- transfer records ------------------------------------------------------------------
    def transfer_records(self):
        groups = self.of_type("AWS::Logs::LogGroup")
        if len(groups) != 1:
            return self.problem("Resources", "want one AWS::Logs::LogGroup (transfer records)")
        gname, group = groups[0]
        if flat(group.get("Properties", {}).get("RetentionInDays")) != "!Ref LogRetentionDays":
            self.problem(gname, "RetentionInDays must be the LogRetentionDays parameter")
        keys = getattr(self, "ud_keys", {})
        if keys.get("transfer_log") != script_constant("TRANSFER_LOG"):
            self.problem("UserData", f"transfer_log {keys.get('transfer_log')!r} is not the file lakeftpd-ops ships")
        if unit_value("lakeftpd.service", "LogsDirectory") != "lakeftpd":
            self.problem("systemd/lakeftpd.service", "LogsDirectory=lakeftpd (transfer_log's directory)")
        tag = script_constant("LOG_GROUP_TAG")
        for name, props in self.resources("AWS::EC2::LaunchTemplate"):
            data = props.get("LaunchTemplateData", {})
            if data.get("MetadataOptions", {}).get("InstanceMetadataTags") != "enabled":
                self.problem(name, "InstanceMetadataTags must be enabled (lakeftpd-logs reads the log group tag)")
            # Fn::If entries (the topology's pool tags) are not plain tags.
            tags = [t for spec in data.get("TagSpecifications", []) if isinstance(spec, dict)
                    for t in spec.get("Tags", []) if isinstance(t, dict)]
            if not any(t.get("Key") == tag and flat(t.get("Value")) == f"!Ref {gname}" for t in tags):
                self.problem(name, f"no instance tag {tag} = !Ref {gname}")
        logs = [(n, res) for n, acts, res in self.ops_statements() if "logs:PutLogEvents" in acts]
        if not logs or any(res != f"!GetAtt {gname}.Arn" for _, res in logs):
            self.problem("IAM", f"logs:PutLogEvents must be granted on {gname} alone")

    # --- disk ----------------------------------------------------------------------------
    def disk(self):
        if self.ud_keys_get("keep_local") != "off":
            self.problem("UserData", "keep_local = off (no home copy once S3 confirmed it)")
        for name, props in self.resources("AWS::EC2::LaunchTemplate"):
            bdm = props.get("LaunchTemplateData", {}).get("BlockDeviceMappings") or []
            ebs = bdm[0].get("Ebs", {}) if bdm else {}
            if not (flat(ebs.get("VolumeSize")) == "!Ref RootVolumeSize" and ebs.get("VolumeType") == "gp3"
                    and ebs.get("Encrypted") is True):
                self.problem(name, "root volume: want VolumeSize !Ref RootVolumeSize, gp3, Encrypted")

    def ud_keys_get(self, key):
        return getattr(self, "ud_keys", {}).get(key)

    # --- alarms ----------------------------------------------------------------------------
    def alarms(self):
        topics = self.of_type("AWS::SNS::Topic")
        if len(topics) != 1:
            return self.problem("Resources", "want one SNS topic for the alarms")
        topic = topics[0][0]
        subs = self.of_type("AWS::SNS::Subscription")
        if not subs or any(r.get("Condition") != "AlarmEmailOn" for _, r in subs):
            self.problem("Resources", "the e-mail subscription must exist under Condition AlarmEmailOn")
        published = emf_names()
        seen = set()
        for name, props in self.resources("AWS::CloudWatch::Alarm"):
            ns, metric = props.get("Namespace"), props.get("MetricName")
            seen.add((ns, metric))
            if f"!Ref {topic}" not in flat(props.get("AlarmActions")):
                self.problem(name, f"AlarmActions must notify {topic}")
            if ns == EMF_NAMESPACE:
                self.emf_metric(name, metric, props.get("Dimensions"), published)
            if metric == "TlsCertExpirySeconds":
                if int(props.get("Threshold", 0)) != CERT_EXPIRY_SECONDS or self.res(name).get("Condition") != "TlsOn":
                    self.problem(name, "certificate expiry: threshold 21 days, Condition TlsOn")
        for want in sorted(WANT_ALARMS - seen):
            self.problem("Resources", f"no alarm on {want[0]} {want[1]}")

    def emf_metric(self, where, metric, dims, published):
        if metric not in published:
            self.problem(where, f"lakeftpd publishes no EMF metric {metric!r} (src/ops/metrics.rs, src/aws/emf.rs)")
        if flat(dims) != "[{Name: Group, Value: !Ref AWS::StackName}]":
            self.problem(where, f"dimensions must be Group = the stack (metrics_group), got {flat(dims)}")

    # --- scaling ---------------------------------------------------------------------------
    def scaling(self):
        published = emf_names()
        if self.ud_keys_get("metrics_interval") != "10s":
            self.problem("UserData", "metrics_interval = 10s (the scaling metric's period)")
        if self.ud_keys_get("metrics_group") != "${AWS::StackName}":
            self.problem("UserData", "metrics_group = ${AWS::StackName} (the alarms' dimension)")
        kinds = set()
        for name, props in self.resources("AWS::AutoScaling::ScalingPolicy"):
            tt = props.get("TargetTrackingConfiguration", {})
            custom = tt.get("CustomizedMetricSpecification")
            if custom:
                kinds.add(custom.get("MetricName"))
                self.emf_metric(name, custom.get("MetricName"), custom.get("Dimensions"), published)
                if custom.get("MetricName") != "ActiveSessionsPeak" or int(custom.get("Period", 60)) != 10:
                    self.problem(name, "track ActiveSessionsPeak with Period 10 (one-second sessions)")
            pre = tt.get("PredefinedMetricSpecification", {})
            if pre.get("PredefinedMetricType") == "ASGAverageCPUUtilization":
                kinds.add("cpu")
        if kinds != {"ActiveSessionsPeak", "cpu"}:
            self.problem("Resources", f"want target tracking on ActiveSessionsPeak and CPU, got {sorted(kinds)}")
        if len(self.of_type("AWS::AutoScaling::ScheduledAction")) != 2:
            self.problem("Resources", "want the two scheduled actions (ScheduledCapacity on the clock)")

    # --- no silent overwrites ----------------------------------------------------------------
    def bucket_versions(self):
        for name, props in self.resources("AWS::S3::Bucket"):
            if props.get("VersioningConfiguration", {}).get("Status") != "Enabled":
                self.problem(name, "the created bucket must be versioned")
            rules = props.get("LifecycleConfiguration", {}).get("Rules", [])
            if not any("NoncurrentVersionExpiration" in r and r.get("Status") == "Enabled" for r in rules):
                self.problem(name, "want a lifecycle rule expiring noncurrent versions")
        rule = self.tpl.get("Rules", {}).get("GlueNeedsHiveKeys", {})
        accepted = rule.get("Assertions", [{}])[0].get("Assert")
        default = self.params.get("S3KeyPattern", {}).get("Default")
        if not (hasattr(accepted, "value") and default in accepted.value[0]):
            self.problem("GlueNeedsHiveKeys", f"must accept the default key template {default!r}")
        cond = flat(self.tpl.get("Conditions", {}).get("GlueWithUser"))
        if default not in cond:
            self.problem("GlueWithUser", "the default key template has a user partition: GlueWithUser must name it")
        self.glue_reads_default_keys(default)

    def glue_reads_default_keys(self, default):
        """The default key's folders are exactly the Glue table's partition
        location (user=${user}/dt=${dt}/) and its name has no folder of its
        own, so every object lies in the folder the table reads."""
        folder, _, name = (default or "").rpartition("/")
        as_location = folder.replace("{user}", "${!user}").replace("{yyyy}-{mm}-{dd}", "${!dt}") + "/"
        for _, props in self.resources("AWS::Glue::Table"):
            params = props.get("TableInput", {}).get("Parameters")
            branch = params.value[1] if hasattr(params, "value") else {}
            loc = flat(branch.get("storage.location.template"))
            if not loc.endswith("${S3Prefix}" + as_location):
                self.problem("S3KeyPattern", f"default key folders {folder!r} are not the table's location {loc}")
        if "/" in name or "{path}" in name or not {"{uuid}", "{filename}"} <= set(re.findall(r"\{[a-z]+\}", name)):
            self.problem("S3KeyPattern", f"default key name {name!r}: want one object per upload ({{uuid}}, {{filename}}, no folders)")

    # --- users ---------------------------------------------------------------------------------
    def users_parameters(self):
        if self.params.get("Users", {}).get("Default") != "":
            self.problem("Users", "must be optional (Default \"\"): a fleet may keep its users in UsersObject")
        pattern = self.params.get("UsersObject", {}).get("AllowedPattern", "")
        for value, ok in (("", True), ("s3://my-lake/config/users.conf", True),
                          ("config/users.conf", False), ("my-lake/config/users.conf", False),
                          ("s3://my-lake/", False), ("s3://my-lake", False)):
            if bool(re.fullmatch(pattern, value)) != ok:
                self.problem("UsersObject", f"AllowedPattern {'refuses' if ok else 'accepts'} {value!r}")
        if "UsersSomewhere" not in self.tpl.get("Rules", {}):
            self.problem("Rules", "UsersSomewhere: Users or UsersObject must be given")
