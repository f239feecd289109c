#!/usr/bin/env python3
"""Renders the user-data of image/lakeftpd.cfn.yaml the way CloudFormation's
Fn::Sub would, with each parameter's Default (and sample values for the
parameters without one), and prints it. run.sh feeds the result to
`lakeftpd check`, so the stack can only ship a configuration the binary
accepts.

Usage: render_user_data.py TEMPLATE PASSWORD_HASH [USERS_OBJECT]
PASSWORD_HASH "-" leaves the Users parameter empty (its default: users come
from USERS_OBJECT alone). With USERS_OBJECT (s3://BUCKET/KEY, checked against
the parameter's AllowedPattern first), the users line renders as the stack's
UsersOn condition writes it.
"""
import re
import sys

import yaml


class Loader(yaml.SafeLoader):
    pass


def tagged(loader, suffix, node):
    # !Sub, !Ref, ... : keep the node's value; only Fn::Base64/!Sub matter here.
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node)}
    return {suffix: loader.construct_mapping(node)}


Loader.add_multi_constructor("!", tagged)

template_path, password_hash = sys.argv[1], sys.argv[2]
users_object = sys.argv[3] if len(sys.argv) > 3 else ""
template = yaml.load(open(template_path), Loader=Loader)
values = {name: str(p["Default"]) for name, p in template["Parameters"].items() if "Default" in p}
values.update(
    {
        "S3Bucket": values.get("S3Bucket", "my-lake"),
        "Users": "" if password_hash == "-" else f"[user device01]\npassword    = {password_hash}\npermissions = upload\n",
        "AWS::StackName": "lakeftpd",
        "AWS::Region": "ap-northeast-1",
    }
)
user_data = template["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]
text = user_data["Fn::Base64"]["Sub"]
if isinstance(text, list):
    # !Sub [TEMPLATE, {NAME: ...}]: the extra variables (FTPS lines) render
    # empty, as with the defaults (Tls = off).
    text, extra = text
    values.update({name: "" for name in extra})
    if users_object:
        pattern = template["Parameters"]["UsersObject"]["AllowedPattern"]
        if not re.fullmatch(pattern, users_object):
            sys.exit(f"render_user_data: UsersObject {users_object!r} does not match {pattern!r}")
        values["UsersLine"] = f"users = {users_object}"
missing = [name for name in re.findall(r"\$\{([^}!]+)\}", text) if name not in values]
if missing:
    sys.exit(f"render_user_data: no value for {missing}")
sys.stdout.write(re.sub(r"\$\{([^}!]+)\}", lambda m: values[m.group(1)], text))
