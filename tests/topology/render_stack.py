#!/usr/bin/env python3
"""Renders the launch template's user-data of image/lakeftpd.cfn.yaml as
CloudFormation would for the given parameters, evaluating the template's
Conditions (Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition) and the
Fn::If, Fn::Sub and Ref inside the user-data. Parameters not given take
their Default. The topology test runs its instances on this output, so they
run what the stack ships, for each topology the template offers.

Usage: render_stack.py TEMPLATE [NAME=VALUE ...]
       render_stack.py TEMPLATE --has-parameter NAME   (exit 0 if it exists)

Pseudo parameters: AWS::StackName = lakeftpd, AWS::Region = ap-northeast-1,
AWS::Partition = aws, AWS::NoValue renders empty.
"""
import re
import sys

import yaml


class Loader(yaml.SafeLoader):
    pass


def tagged(loader, suffix, node):
    # !Sub, !Ref, !If ...: the long form ({"Fn::Sub": ...}, {"Ref": ...}).
    name = suffix if suffix in ("Ref", "Condition") else "Fn::" + suffix
    if isinstance(node, yaml.ScalarNode):
        return {name: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {name: loader.construct_sequence(node, deep=True)}
    return {name: loader.construct_mapping(node, deep=True)}


Loader.add_multi_constructor("!", tagged)

PSEUDO = {
    "AWS::StackName": "lakeftpd",
    "AWS::Region": "ap-northeast-1",
    "AWS::Partition": "aws",
    "AWS::NoValue": "",
}


class Stack:
    def __init__(self, template, given):
        self.template = template
        parameters = template.get("Parameters", {})
        unknown = [name for name in given if name not in parameters]
        if unknown:
            sys.exit(f"render_stack: the template has no parameter {unknown}")
        self.values = {n: str(p["Default"]) for n, p in parameters.items() if "Default" in p}
        self.values.update(given)
        self.values.update(PSEUDO)
        self.conditions = {}

    def condition(self, name):
        if name not in self.conditions:
            self.conditions[name] = self.truth(self.template["Conditions"][name])
        return self.conditions[name]

    def truth(self, node):
        (function, args), = node.items()
        if function == "Condition":
            return self.condition(args)
        if function == "Fn::Equals":
            return self.value(args[0]) == self.value(args[1])
        if function == "Fn::Not":
            return not self.truth(args[0])
        if function == "Fn::And":
            return all(self.truth(a) for a in args)
        if function == "Fn::Or":
            return any(self.truth(a) for a in args)
        sys.exit(f"render_stack: condition function {function} not supported")

    def value(self, node):
        if isinstance(node, (str, int, float)):
            return str(node)
        (function, args), = node.items()
        if function == "Ref":
            if args not in self.values:
                sys.exit(f"render_stack: no value for {args}")
            return self.values[args]
        if function == "Fn::If":
            name, then, otherwise = args
            return self.value(then if self.condition(name) else otherwise)
        if function == "Fn::Sub":
            return self.sub(args)
        if function == "Fn::Base64":
            return self.value(args)
        if function == "Fn::Join":
            separator, parts = args
            return separator.join(self.value(p) for p in parts)
        sys.exit(f"render_stack: function {function} not supported in user-data")

    def sub(self, args):
        if isinstance(args, list):
            text, extra = args
            local = {name: self.value(v) for name, v in extra.items()}
        else:
            text, local = args, {}

        def one(match):
            name = match.group(1)
            if name in local:
                return local[name]
            if name in self.values:
                return self.values[name]
            sys.exit(f"render_stack: no value for ${{{name}}}")

        # ${!Literal} is Fn::Sub's escape for a literal ${Literal}.
        text = re.sub(r"\$\{([^}!]+)\}", one, text)
        return text.replace("${!", "${")


def main():
    template = yaml.load(open(sys.argv[1]), Loader=Loader)
    if len(sys.argv) == 4 and sys.argv[2] == "--has-parameter":
        sys.exit(0 if sys.argv[3] in template.get("Parameters", {}) else 1)
    given = dict(arg.split("=", 1) for arg in sys.argv[2:])
    stack = Stack(template, given)
    data = template["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]
    sys.stdout.write(stack.value(data["UserData"]))


main()
