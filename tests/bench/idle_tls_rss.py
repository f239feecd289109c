#!/usr/bin/env python3
"""Memory per idle session, plain or TLS: opens N sessions to a running
lakeftpd (user u / password pw), logs each in (after AUTH TLS for `tls`),
keeps them idle and prints the server's RSS growth per session.

    idle_tls_rss.py PORT N SERVER_PID plain|tls

The server needs max_sessions/max_sessions_per_ip >= N and an open-file
limit above N; the client needs `ulimit -n` above N as well.
"""
import socket, ssl, sys, time
port, n, pid, mode = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def rss():
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS"): return int(l.split()[1])
ctx = ssl.create_default_context(); ctx.check_hostname=False; ctx.verify_mode=ssl.CERT_NONE
keep=[]
def line(f):
    return f.readline()
time.sleep(0.5); before=rss()
for i in range(n):
    s=socket.create_connection(("127.0.0.1",port))
    f=s.makefile("rb"); line(f)
    if mode=="tls":
        s.sendall(b"AUTH TLS\r\n"); line(f)
        s=ctx.wrap_socket(s); f=s.makefile("rb")
    s.sendall(b"USER u\r\n"); line(f); s.sendall(b"PASS pw\r\n"); line(f)
    keep.append((s,f))
time.sleep(1); after=rss()
print(f"{mode}: {n} idle sessions: RSS +{after-before} KiB = {(after-before)*1024/n/1024:.1f} KiB/session")
