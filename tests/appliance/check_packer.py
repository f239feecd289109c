#!/usr/bin/env python3
"""Structural checks on image/lakeftpd.pkr.hcl, parsed with python-hcl2.

Debian's packer 1.6.6 cannot load the modern Amazon plugin, so it cannot check
the arguments that only the plugin knows (imds_support, metadata_options) nor
the `packer { required_plugins }` block. run.sh validates the rest with packer
itself; this script parses the whole file and checks what we rely on:
both architectures, the AL2023 source AMI filter, IMDSv2 on the AMI and on the
build instance, and that provision.sh runs with the binary, unit and script
from the repository.

usage: check_packer.py TEMPLATE
"""
import sys

import hcl2

ARCHES = {
    "x86_64": "x86_64-unknown-linux-musl",
    "arm64": "aarch64-unknown-linux-musl",
}


def s(v):
    """python-hcl2 keeps the quotes of string literals; drop them."""
    if isinstance(v, str) and len(v) >= 2 and v[0] == v[-1] == '"':
        return v[1:-1]
    return v


def block(v):
    """A nested block parses as a one-element list."""
    return v[0] if isinstance(v, list) and v else v


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        doc = hcl2.load(f)
    problems = []

    def problem(msg):
        problems.append(msg)

    plugins = block(block(doc.get("packer", [{}])).get("required_plugins", [{}]))
    amazon = plugins.get("amazon") if plugins else None
    if not amazon or s(amazon.get("source")) != "github.com/hashicorp/amazon":
        problem("packer.required_plugins.amazon missing")

    sources = {}
    for entry in doc.get("source", []):
        for btype, named in entry.items():
            for name, body in named.items():
                sources[(s(btype), s(name))] = body
    for arch in ARCHES:
        body = sources.get(("amazon-ebs", arch))
        if body is None:
            problem(f'source "amazon-ebs" "{arch}" missing')
            continue
        if s(body.get("imds_support")) != "v2.0":
            problem(f"{arch}: imds_support must be \"v2.0\"")
        if s(body.get("ssh_username")) != "ec2-user":
            problem(f"{arch}: ssh_username must be ec2-user (AL2023)")
        f = block(body.get("source_ami_filter"))
        if not f:
            problem(f"{arch}: source_ami_filter missing")
        else:
            filters = {k: s(v) for k, v in f.get("filters", {}).items()}
            if filters.get("name") != f"al2023-ami-2023.*-kernel-*-{arch}":
                problem(f"{arch}: AMI name filter {filters.get('name')!r}")
            if filters.get("architecture") != arch:
                problem(f"{arch}: architecture filter {filters.get('architecture')!r}")
            if [s(o) for o in f.get("owners", [])] != ["amazon"]:
                problem(f"{arch}: owners must be [\"amazon\"]")
            if f.get("most_recent") is not True:
                problem(f"{arch}: most_recent must be true")
        mo = block(body.get("metadata_options"))
        if not mo or s(mo.get("http_tokens")) != "required" or mo.get("http_put_response_hop_limit") != 1:
            problem(f"{arch}: build instance metadata_options must require tokens, hop limit 1")

    build = block(doc.get("build"))
    if not build:
        problem("build block missing")
    else:
        want = {f"source.amazon-ebs.{a}" for a in ARCHES}
        have = {s(x) for x in build.get("sources", [])}
        if have != want:
            problem(f"build.sources {sorted(have)}, want {sorted(want)}")
        files = []
        inline = []
        for p in build.get("provisioner", []):
            for ptype, body in p.items():
                if s(ptype) == "file":
                    if body.get("source") is not None:
                        files.append(s(body.get("source")))
                    files += [s(x) for x in body.get("sources", [])]
                elif s(ptype) == "shell":
                    inline += [s(x) for x in body.get("inline", [])]
        joined = " ".join(files)
        for need in ("/systemd/lakeftpd.service", "/image/provision.sh", "/image/lakeftpd-ops.sh",
                     "/systemd/lakeftpd-lifecycle.service", "/systemd/lakeftpd-unhealthy.service",
                     "/systemd/lakeftpd-liveness.service", "/systemd/lakeftpd-liveness.timer",
                     "/systemd/lakeftpd-logs.service",
                     "/systemd/lakeftpd-claim.service", "/image/lakeftpd-claim.sh",
                     "/target/${local.rust_target[source.name]}/release/lakeftpd"):
            if need not in joined:
                problem(f"no file provisioner uploads ...{need}")
        if not any("provision.sh /" in x and x.startswith("sudo ") for x in inline):
            problem("no shell provisioner runs `sudo .../provision.sh /`")

    locals_ = block(doc.get("locals"))
    targets = {k: s(v) for k, v in (locals_ or {}).get("rust_target", {}).items()}
    if targets != ARCHES:
        problem(f"local.rust_target {targets}, want {ARCHES}")

    for p in problems:
        print(p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
