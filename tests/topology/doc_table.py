#!/usr/bin/env python3
"""Prints the measured-table of docs/interop.md ("Topology") as the cells of
tests/topology/clients.sh: TOPOLOGY DEVICE CLIENT MODE ok|fail, one a line,
so the test can hold the docs to tests/topology/expected.txt.

Usage: doc_table.py docs/interop.md
"""
import sys

COLUMNS = [(t, d) for t in ("direct", "nlb") for d in ("routed", "natftp", "fwftp", "cgnat")]
HEADER = "| client | mode | `direct`"

text = open(sys.argv[1]).read()
if HEADER not in text:
    sys.exit("doc_table: no table starting with " + HEADER)
lines = text[text.index(HEADER):].splitlines()[2:]
for line in lines:
    if not line.startswith("|"):
        break
    cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
    client, mode, marks = cells[0], cells[1], cells[2:]
    if len(marks) != len(COLUMNS):
        sys.exit(f"doc_table: {client} {mode}: {len(marks)} cells, not {len(COLUMNS)}")
    for (topology, device), mark in zip(COLUMNS, marks):
        print(topology, device, client, mode, "ok" if mark.startswith("✓") else "fail")
