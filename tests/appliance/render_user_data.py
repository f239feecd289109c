#!/usr/bin/env python3
"""Renders the user-data of image/lakeftpd.cfn.yaml the way CloudFormation
would, with each parameter's Default (sample values for the parameters
without one, and --param overrides), and prints it. run.sh feeds the result
to `lakeftpd check`, so the stack can only ship a configuration the binary
accepts; the topology test renders both topologies with it.

Usage: render_user_data.py TEMPLATE PASSWORD_HASH [USERS_OBJECT] [--param NAME=VALUE]...
  PASSWORD_HASH "-" leaves the Users parameter empty (users come from
  USERS_OBJECT alone).
  USERS_OBJECT (s3://BUCKET/KEY, checked against the parameter's
  AllowedPattern first) sets the parameter UsersObject.
  --param Topology=nlb renders the nlb topology (default: the template's).

The template's Conditions are evaluated (Fn::Equals, Not, And, Or,
Condition) and so are the intrinsics the user-data uses (Fn::Sub, both
forms, Fn::If, Ref, Fn::Join); check_cfn.py uses the same evaluator for the
Rules (Fn::Contains) and the topology's conditions.
"""
import re
import sys

import yaml


class Loader(yaml.SafeLoader):
    pass


def tagged(loader, suffix, node):
    # !Sub, !Ref, ... : {"Sub": value}; the long forms are {"Fn::Sub": value}.
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node, deep=True)}
    return {suffix: loader.construct_mapping(node, deep=True)}


Loader.add_multi_constructor("!", tagged)

NO_VALUE = object()


class Renderer:
    def __init__(self, template, values):
        self.template = template
        self.values = values
        self.conditions = {}

    def intrinsic(self, node):
        """(name, argument) of a one-key intrinsic, short or long form, else None."""
        if isinstance(node, dict) and len(node) == 1:
            (key, arg), = node.items()
            name = key[len("Fn::"):] if key.startswith("Fn::") else key
            if name in ("Ref", "Sub", "If", "Join", "Equals", "Not", "And", "Or", "Condition", "Base64", "Contains"):
                return name, arg
        return None

    def condition(self, name):
        if name not in self.conditions:
            self.conditions[name] = bool(self.eval(self.template["Conditions"][name]))
        return self.conditions[name]

    def ref(self, name):
        if name == "AWS::NoValue":
            return NO_VALUE
        if name not in self.values and name in self.template.get("Resources", {}):
            return f"<{name}>"  # a resource's id is known only once it exists
        if name not in self.values:
            sys.exit(f"render_user_data: no value for {name}")
        return self.values[name]

    def sub(self, arg):
        text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        local = {k: self.eval(v) for k, v in extra.items()}

        def one(m):
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"  # ${!x} is a literal ${x}
            return str(local[name]) if name in local else str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def eval(self, node):
        found = self.intrinsic(node)
        if found is None:
            if isinstance(node, list):
                return [v for v in (self.eval(x) for x in node) if v is not NO_VALUE]
            if isinstance(node, dict):
                return {k: self.eval(v) for k, v in node.items()}
            return node
        name, arg = found
        if name == "Ref":
            return self.ref(arg)
        if name == "Sub":
            return self.sub(arg)
        if name == "If":
            return self.eval(arg[1] if self.condition(arg[0]) else arg[2])
        if name == "Join":
            return arg[0].join(str(x) for x in self.eval(arg[1]))
        if name == "Equals":
            return str(self.eval(arg[0])) == str(self.eval(arg[1]))
        if name == "Not":
            return not self.eval(arg[0])
        if name == "And":
            return all(self.eval(x) for x in arg)
        if name == "Or":
            return any(self.eval(x) for x in arg)
        if name == "Condition":
            return self.condition(arg)
        if name == "Base64":
            return self.eval(arg)
        if name == "Contains":  # Rules only
            return str(self.eval(arg[1])) in [str(x) for x in self.eval(arg[0])]
        raise AssertionError(name)


def sample_values(template, password_hash="$6$x$y"):
    """Each parameter's Default, sample values for the others, pseudo parameters."""
    values = {name: str(p["Default"]) for name, p in template["Parameters"].items() if "Default" in p}
    values.update({
        "S3Bucket": "my-lake",
        "VpcCidr": "10.0.0.0/16",
        "Users": f"[user device01]\npassword    = {password_hash}\npermissions = upload\n",
        "AWS::StackName": "lakeftpd",
        "AWS::Region": "ap-northeast-1",
        "AWS::Partition": "aws",
        "AWS::AccountId": "123456789012",
    })
    return values


def load(path):
    with open(path) as f:
        return yaml.load(f, Loader=Loader)


def render(template, values):
    user_data = template["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]
    return Renderer(template, values).eval(user_data)


def main(argv):
    params, positional = {}, []
    it = iter(argv)
    for a in it:
        if a == "--param":
            name, _, value = next(it, "").partition("=")
            params[name] = value
        else:
            positional.append(a)
    if len(positional) not in (2, 3):
        sys.exit(__doc__)
    template_path, password_hash = positional[:2]
    template = load(template_path)
    values = sample_values(template, password_hash)
    if password_hash == "-":
        values["Users"] = ""
    if len(positional) == 3:
        pattern = template["Parameters"]["UsersObject"]["AllowedPattern"]
        if not re.fullmatch(pattern, positional[2]):
            sys.exit(f"render_user_data: UsersObject {positional[2]!r} does not match {pattern!r}")
        values["UsersObject"] = positional[2]
    for name, value in params.items():
        if name not in template["Parameters"]:
            sys.exit(f"render_user_data: --param {name}: no such parameter")
        values[name] = value
    sys.stdout.write(render(template, values))


if __name__ == "__main__":
    main(sys.argv[1:])
