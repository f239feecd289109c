#!/usr/bin/env python3
"""The minimal active-mode client of tests/slowlink.rs: logs in once, then
uploads COUNT files of SIZE bytes, each with exactly PORT, STOR, the data
connection and its EOF, and the 226 — four exchanges, nothing in between.
Prints one JSON line per upload: {"start": t of sending PORT, "end": t of
reading 226, "reply": the final reply}.

    client.py CONTROL_HOST:PORT DATA_PORT USER PASSWORD COUNT SIZE
"""
import json
import socket
import sys
import time

host, port = sys.argv[1].rsplit(":", 1)
data_port, user, password = int(sys.argv[2]), sys.argv[3], sys.argv[4]
count, size = int(sys.argv[5]), int(sys.argv[6])

control = socket.create_connection((host, int(port)), timeout=60)
replies = control.makefile("rb")


def reply():
    line = replies.readline()
    while len(line) >= 4 and line[3:4] == b"-":
        line = replies.readline()
    return line.decode().strip()


def cmd(text):
    control.sendall(text.encode() + b"\r\n")
    return reply()


assert reply().startswith("220")
assert cmd("USER " + user).startswith("331")
assert cmd("PASS " + password).startswith("230")
assert cmd("TYPE I").startswith("200")
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", data_port))
listener.listen(1)
payload = bytes(range(256)) * (size // 256)
for i in range(count):
    start = time.monotonic()
    # The device reports a private address: active_address = peer ignores it.
    p = cmd("PORT 192,168,1,10,%d,%d" % (data_port >> 8, data_port & 0xFF))
    assert p.startswith("200"), p
    control.sendall(b"STOR up%d.bin\r\n" % i)
    data, _ = listener.accept()
    assert reply().startswith("150")
    data.sendall(payload)
    data.close()
    final = reply()
    print(json.dumps({"start": start, "end": time.monotonic(), "reply": final}), flush=True)
cmd("QUIT")
