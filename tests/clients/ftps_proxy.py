#!/usr/bin/env python3
"""An implicit-FTPS client that sends a PROXY v2 header first, as an NLB
in front of lakeftpd's implicit listener does, then uploads FILE with PROT
P over a passive data connection that resumes the control connection's TLS
session, downloads it back and prints OK when the bytes match.

    ftps_proxy.py PORT USER PASSWORD FILE HEADER_HEX
"""
import socket
import ssl
import sys

port, user, password, path, header = sys.argv[1:6]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
raw = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
raw.sendall(bytes.fromhex(header))
ctl = ctx.wrap_socket(raw)
reader = ctl.makefile("rb")


def reply():
    line = reader.readline().decode()
    code = line[:3]
    while line[3:4] == "-":
        line = reader.readline().decode()
        if line[:3] == code and line[3:4] == " ":
            break
    return int(code), line


def cmd(line, want):
    ctl.sendall((line + "\r\n").encode())
    code, text = reply()
    if code != want:
        sys.exit(f"{line}: expected {want}, got {text}")
    return text


def data_socket():
    text = cmd("PASV", 227)
    nums = text[text.index("(") + 1 : text.index(")")].split(",")
    dport = int(nums[4]) * 256 + int(nums[5])
    s = socket.create_connection(("127.0.0.1", dport), timeout=10)
    return s


reply()  # 220
cmd(f"USER {user}", 331)
cmd(f"PASS {password}", 230)
cmd("PBSZ 0", 200)
cmd("PROT P", 200)
cmd("TYPE I", 200)
content = open(path, "rb").read()
s = data_socket()
ctl.sendall(b"STOR proxied.bin\r\n")
code, text = reply()
assert code == 150, text
d = ctx.wrap_socket(s, session=ctl.session)
d.sendall(content)
d.unwrap().close()
code, text = reply()
assert code == 226, text
s = data_socket()
ctl.sendall(b"RETR proxied.bin\r\n")
code, text = reply()
assert code == 150, text
d = ctx.wrap_socket(s, session=ctl.session)
got = b""
while True:
    chunk = d.recv(65536)
    if not chunk:
        break
    got += chunk
d.close()
code, text = reply()
assert code == 226, text
print("OK" if got == content else "MISMATCH")
