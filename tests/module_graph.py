#!/usr/bin/env python3
"""The module graph of src/ has no cycle, and no source file is too long.

Reads every `crate::a::b` (and `super::x`) path in src/, maps each file to
its module (src/session/login.rs -> session::login), and builds two graphs:

- between top-level modules (session -> data, ...): what the layering in
  src/lib.rs promises — dependencies only point down;
- between the files of one folder (session::login -> session::reply ...).

Prints the graph of top-level modules and exits 1 on any cycle (printing
it), or on a file longer than MAX_LINES. With --tree, prints the module tree
with each file's first `//!` line instead; with --check-doc FILE, fails when
the tree between the markers in FILE (docs/architecture.md) is not the
current one. Run by tests/run.sh:

    python3 tests/module_graph.py --check-doc docs/architecture.md
    python3 tests/module_graph.py --tree     # to refresh the doc
"""
import os
import re
import sys

MAX_LINES = 600
SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
PATH = re.compile(r"\b(crate|super)((?:::[a-z_][a-z0-9_]*)+)")
USE_GROUP = re.compile(r"\buse\s+(crate|super)((?:::[a-z_][a-z0-9_]*)*)::\{([^}]*)\}", re.S)


def module_of(path):
    rel = os.path.relpath(path, SRC)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return rel


def strip_comments(text):
    # Doc and line comments name modules in prose; only code counts.
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def edges_of(path, text, modules):
    me = module_of(path)
    # In a mod.rs, `super` is the parent folder; in a.rs, too (a's parent).
    parent = me[:-1]
    out = set()

    def resolve(root, rest):
        base = [] if root == "crate" else list(parent)
        parts = [p for p in rest.split("::") if p]
        while parts and parts[0] == "super":
            base = base[:-1]
            parts = parts[1:]
        # The longest prefix that names a module.
        full = base + parts
        for n in range(len(full), 0, -1):
            if tuple(full[:n]) in modules:
                return tuple(full[:n])
        return None

    code = strip_comments(text)
    for m in USE_GROUP.finditer(code):
        for item in m.group(3).split(","):
            item = item.strip().split(" as ")[0].strip()
            if not item:
                continue
            name = "" if item == "self" else "::" + item.split("::")[0]
            target = resolve(m.group(1), m.group(2) + name)
            if target:
                out.add(target)
    for m in PATH.finditer(code):
        target = resolve(m.group(1), m.group(2))
        if target:
            out.add(target)
    me = tuple(me)
    return {t for t in out if t != me and not (len(t) < len(me) and me[: len(t)] == t)}


def find_cycle(graph):
    colour = {}
    stack = []

    def visit(node):
        colour[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if colour.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in colour:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        colour[node] = 2
        return None

    for node in sorted(graph):
        if node not in colour:
            found = visit(node)
            if found:
                return found
    return None


BEGIN = "<!-- module tree: python3 tests/module_graph.py --tree -->"
END = "<!-- end of module tree -->"


def first_doc_line(path):
    """The first sentence of the file's `//!` opening."""
    words = []
    for line in open(path, encoding="utf-8"):
        if not line.startswith("//!") or not line[3:].strip():
            break
        words.append(line[3:].strip())
    text = " ".join(words)
    match = re.search(r"\.(\s|$)", text)
    return text[: match.start() + 1] if match else text


def tree(files):
    rows = []
    for f in sorted(files, key=lambda f: module_of(f) or [""]):
        rel = os.path.relpath(f, SRC)
        rows.append(f"{'src/' + rel:<34} {first_doc_line(f)}")
    return "```\n" + "\n".join(rows) + "\n```"


def main():
    files = []
    for dirpath, _, names in os.walk(SRC):
        for name in names:
            if name.endswith(".rs"):
                files.append(os.path.join(dirpath, name))
    if "--tree" in sys.argv:
        print(tree(files))
        return 0
    modules = {tuple(module_of(f)) for f in files}
    problems = []
    top = {}
    inner = {}
    for f in sorted(files):
        text = open(f, encoding="utf-8").read()
        lines = text.count("\n")
        if lines > MAX_LINES:
            problems.append(f"{os.path.relpath(f, SRC)}: {lines} lines (at most {MAX_LINES})")
        me = tuple(module_of(f))
        if not me:
            continue
        for target in edges_of(f, text, modules):
            if target[0] != me[0]:
                top.setdefault(me[0], set()).add(target[0])
            elif len(me) >= 2 and len(target) >= 2 and me[:-1] == target[:-1]:
                # Siblings in one folder.
                inner.setdefault(me, set()).add(target)
            elif len(me) >= 2 and len(target) >= 2:
                inner.setdefault(me[:2], set()).add(target[:2])
    for name in sorted(top):
        print(f"{name} -> {', '.join(sorted(top[name]))}")
    cycle = find_cycle(top)
    if cycle:
        problems.append("cycle between top-level modules: " + " -> ".join(cycle))
    cycle = find_cycle(inner)
    if cycle:
        problems.append("cycle inside a folder: " + " -> ".join("::".join(c) for c in cycle))
    if "--check-doc" in sys.argv:
        doc = sys.argv[sys.argv.index("--check-doc") + 1]
        text = open(doc, encoding="utf-8").read()
        if BEGIN not in text or END not in text:
            problems.append(f"{doc}: no module tree markers")
        else:
            shown = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
            if shown != tree(files).strip():
                problems.append(f"{doc}: the module tree is stale; refresh it with --tree")
    if problems:
        for p in problems:
            print(f"module_graph: {p}", file=sys.stderr)
        return 1
    print(f"module_graph: {len(files)} files, {len(top)} top-level modules, no cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
