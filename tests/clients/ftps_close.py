#!/usr/bin/env python3
"""Whether lakeftpd ends a TLS control connection with close_notify.

    ftps_close.py PORT USER PASSWORD

Explicit FTPS (AUTH TLS), login, QUIT, then reads to the end: prints CLEAN
when the server sent close_notify before closing (RFC 8446 §6.1), TRUNCATED
when the TCP connection ended without it (PHP's ftp_close warns then).
"""
import socket
import ssl
import sys

port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
raw = socket.create_connection(("127.0.0.1", port), timeout=10)
f = raw.makefile("rb")


def reply(stream):
    line = stream.readline()
    while line[3:4] == b"-":
        line = stream.readline()
    return line


reply(f)
raw.sendall(b"AUTH TLS\r\n")
assert reply(f).startswith(b"234")
tls = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
g = tls.makefile("rb")
for line in (f"USER {user}", f"PASS {password}", "QUIT"):
    tls.sendall(line.encode() + b"\r\n")
    reply(g)
try:
    while tls.recv(4096):
        pass
    print("CLEAN")
except ssl.SSLEOFError:
    print("TRUNCATED")
