#!/usr/bin/env python3
"""A fake S3 that stalls, for lakeftpd's deadline tests (tests/users.rs).

Modes:
  silent   reads the request, then never answers (the socket stays open);
  trickle  answers 200 with Content-Length 10000 at once, then sends the
           body one byte every 2 seconds.
Either way, nothing a client without a total deadline could finish.

Usage: fake_s3_stall.py MODE LOG
Binds 127.0.0.1 on port 0 and prints the port alone on stdout's first line.
LOG gets one line per request: "METHOD PATH". Every connection ends after
120 s at most (bounded test load).
"""

import socket
import sys
import threading
import time

MODE, LOG = sys.argv[1], sys.argv[2]
LOCK = threading.Lock()


def serve(conn):
    conn.settimeout(120)
    started = time.monotonic()
    try:
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            chunk = conn.recv(4096)
            if not chunk:
                return
            head += chunk
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        method, path = (line.split(" ") + ["", ""])[:2]
        with LOCK, open(LOG, "a") as log:
            log.write(f"{method} {path.split('?')[0]}\n")
        if MODE == "trickle":
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Length: 10000\r\nETag: \"x\"\r\n\r\n"
            )
        while time.monotonic() - started < 120:
            time.sleep(2)
            if MODE == "trickle":
                conn.sendall(b"#")
    except OSError:
        pass
    finally:
        conn.close()


def main():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    print(server.getsockname()[1], flush=True)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


main()
