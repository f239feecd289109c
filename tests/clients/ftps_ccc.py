#!/usr/bin/env python3
"""CCC (RFC 2228 §5.3) against lakeftpd, on a raw socket.

    ftps_ccc.py PORT USER PASSWORD [before-login]

AUTH TLS, login, PBSZ 0, PROT P, CCC; after a 200 the TLS layer is shut
down both ways (Python's `unwrap()`: our close_notify, then the server's)
and PWD is sent in plain text on the same TCP connection. Prints
`PLAIN 257 ...` when the server answered it in plain, else the CCC reply.
With `before-login`, CCC is sent right after the handshake.
"""
import socket
import ssl
import sys

port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
raw = socket.create_connection(("127.0.0.1", port), timeout=10)


def reply(sock):
    data = b""
    while True:
        chunk = sock.recv(1)
        if not chunk:
            return data.decode(errors="replace")
        data += chunk
        if data.endswith(b"\r\n"):
            last = data.split(b"\r\n")[-2]
            if last[3:4] == b" ":
                return data.decode(errors="replace").strip()


reply(raw)
raw.sendall(b"AUTH TLS\r\n")
assert reply(raw).startswith("234")
tls = ctx.wrap_socket(raw, server_hostname="localhost")
before_login = sys.argv[4:] == ["before-login"]
for line in [] if before_login else (f"USER {user}", f"PASS {password}", "PBSZ 0", "PROT P"):
    tls.sendall(line.encode() + b"\r\n")
    reply(tls)
tls.sendall(b"CCC\r\n")
answer = reply(tls)
if not answer.startswith("200"):
    print(answer)
    sys.exit(0)
plain = tls.unwrap()
plain.sendall(b"PWD\r\n")
print("PLAIN", reply(plain))
plain.sendall(b"QUIT\r\n")
reply(plain)
