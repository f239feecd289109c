#!/usr/bin/env python3
"""A misbehaving S3: device uploads through a fault-injecting proxy in front
of s3s-fs, then every acknowledged file must be in the bucket.

    s3faults.py --bin LAKEFTPD --s3s-fs S3S_FS [--seconds 60] [--seed 1] [--ack disk|s3]

The proxy (loopback, HTTP/1.1, keep-alive) answers each request, drawn at
random (seeded), with one of: pass-through; 500 InternalError; 503 SlowDown
with and without Retry-After; a connection reset before, during and after
the request body; the response lost after s3s-fs applied the write; a slow
response (past s3_timeout); 400 ExpiredToken; one byte of a PutObject body
corrupted (s3s-fs refuses it: BadDigest); the returned checksum corrupted
(lakeftpd must refuse it). Every 25 s the bucket disappears for 7 s
(404 NoSuchBucket). After the run the faults stop, the spool drains, and
the figures are printed as `name value` lines: uploads acknowledged, objects
in the bucket, lost (goal 0), corrupted, duplicate PUTs (a key written more
than once: at-least-once), delivery latency p50/p99, the spool's peak depth,
/healthz transitions. Exits 1 if an acknowledged upload is lost or differs.
"""
import argparse
import ftplib
import hashlib
import io
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

FAULTS = [
    # (name, weight)
    ("pass", 50),
    ("500", 5),
    ("503", 4),
    ("503_retry_after", 3),
    ("reset_before_body", 4),
    ("reset_during_body", 4),
    ("reset_after_body", 4),
    ("lost_response", 5),
    ("slow", 2),
    ("expired_token", 3),
    ("corrupt_body", 4),
    ("corrupt_checksum", 4),
]


def error_xml(code, message):
    return (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error>").encode()


def reset(sock):
    # SO_LINGER 0: close with RST, as a dropped connection does.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def read_head(f):
    lines = []
    while True:
        line = f.readline(65536)
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            return lines
        lines.append(line)


def framing(headers):
    """(content length, chunked) of a message's headers."""
    length, chunked = 0, False
    for h in headers:
        name, _, value = h.decode().partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    return length, chunked


def read_chunked(f):
    """A chunked body as it travels (RFC 9112 §7.1), to forward unchanged."""
    raw = b""
    while True:
        size_line = f.readline(1024)
        if not size_line:
            raise ValueError("eof in chunked body")
        raw += size_line
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while True:  # trailers, then the empty line
                line = f.readline(65536)
                raw += line
                if line in (b"\r\n", b"\n", b""):
                    return raw
        raw += f.read(size + 2)


class Proxy:
    def __init__(self, backend_port, seed, slow_seconds):
        self.backend = backend_port
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.slow = slow_seconds
        self.faults = True
        self.counts = {name: 0 for name, _ in FAULTS}
        self.counts["bucket_gone"] = 0
        self.writes = {}  # key -> successful object writes
        self.gone_until = 0.0
        self.started = time.time()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()
        threading.Thread(target=self.outages, daemon=True).start()

    def outages(self):
        while True:
            time.sleep(25)
            if self.faults:
                # Longer than health_s3_failing_after: /healthz must turn 503.
                self.gone_until = time.time() + 7

    def accept(self):
        while True:
            conn, _ = self.sock.accept()
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def draw(self, method, target):
        with self.lock:
            if not self.faults:
                return "pass"
            if time.time() < self.gone_until:
                self.counts["bucket_gone"] += 1
                return "bucket_gone"
            names = [n for n, _ in FAULTS]
            weights = [w for _, w in FAULTS]
            fault = self.rng.choices(names, weights)[0]
            is_put = method == "PUT" and "partNumber" not in target
            if fault in ("corrupt_body", "corrupt_checksum") and not is_put:
                fault = "pass"  # s3s-fs checks a PutObject body only
            self.counts[fault] += 1
            return fault

    def serve(self, conn):
        f = conn.makefile("rb")
        backend = None
        try:
            while True:
                head = read_head(f)
                if not head:
                    break
                request_line = head[0].decode()
                method, target, _ = request_line.split(" ", 2)
                headers = head[1:]
                length, chunked = framing(headers)
                fault = self.draw(method, target)
                if fault == "reset_before_body":
                    reset(conn)
                    return
                if fault == "reset_during_body":
                    f.read(length // 2)
                    reset(conn)
                    return
                body = read_chunked(f) if chunked else (f.read(length) if length else b"")
                if fault == "reset_after_body":
                    reset(conn)
                    return
                status = {"500": (500, "InternalError"), "503": (503, "SlowDown"),
                          "503_retry_after": (503, "SlowDown"), "expired_token": (400, "ExpiredToken"),
                          "bucket_gone": (404, "NoSuchBucket")}.get(fault)
                if status:
                    payload = error_xml(status[1], "injected by the test proxy")
                    extra = "Retry-After: 1\r\n" if fault == "503_retry_after" else ""
                    conn.sendall((f"HTTP/1.1 {status[0]} X\r\nContent-Type: application/xml\r\n{extra}"
                                  f"Content-Length: {len(payload)}\r\n\r\n").encode() + payload)
                    continue
                if fault == "corrupt_body" and body and not chunked:
                    at = self.rng.randrange(len(body))
                    body = body[:at] + bytes([body[at] ^ 0x01]) + body[at + 1:]
                if backend is None:
                    backend = socket.create_connection(("127.0.0.1", self.backend))
                    bf = backend.makefile("rb")
                backend.sendall(head[0] + b"".join(headers) + b"\r\n" + body)
                resp_head = read_head(bf)
                if resp_head is None:
                    break
                rlen, rchunked = framing(resp_head[1:])
                resp_body = read_chunked(bf) if rchunked else (bf.read(rlen) if rlen else b"")
                code = int(resp_head[0].split()[1])
                key = target.split("?", 1)[0]
                if code == 200 and (method == "PUT" and "partNumber" not in target
                                    or method == "POST" and "uploadId" in target):
                    with self.lock:
                        self.writes[key] = self.writes.get(key, 0) + 1
                if fault == "lost_response":
                    reset(conn)
                    return
                if fault == "slow":
                    time.sleep(self.slow)
                if fault == "corrupt_checksum":
                    wrong = b"x-amz-checksum-crc64nvme: AAAAAAAAAAA=\r\n"
                    resp_head = [(wrong if b"AAAAAAAAAAA=" not in h else wrong.replace(b"AAA", b"AQA", 1))
                                 if h.lower().startswith(b"x-amz-checksum-crc64nvme") else h
                                 for h in resp_head]
                conn.sendall(b"".join(resp_head) + b"\r\n" + resp_body)
        except (OSError, ValueError, IndexError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass
            if backend is not None:
                backend.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, limit=10.0):
    end = time.time() + limit
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} never opened")


def percentile(values, p):
    if not values:
        return 0
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    # A timeout's SIGTERM still cleans up (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--s3s-fs", required=True)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--devices", type=int, default=4)
    ap.add_argument("--ack", default="disk", choices=["disk", "s3"])
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="d14-s3faults-")
    s3dir = os.path.join(work, "s3")
    os.makedirs(os.path.join(s3dir, "lake"))
    procs = []
    problems = []
    try:
        s3port = free_port()
        os.environ.update(AWS_ACCESS_KEY_ID="AKIAFAULTS", AWS_SECRET_ACCESS_KEY="faults-secret")
        procs.append(subprocess.Popen([args.s3s_fs, "--host", "127.0.0.1", "--port", str(s3port),
                                       "--access-key", "AKIAFAULTS", "--secret-key", "faults-secret", s3dir],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(s3port)
        s3_timeout = 3
        proxy = Proxy(s3port, args.seed, slow_seconds=s3_timeout + 2)
        health_port = free_port()
        password = "pw-faults"
        hashed = subprocess.run([args.bin, "passwd"], input=password + "\n", capture_output=True,
                                text=True, check=True).stdout.strip()
        users = [f"dev{i:02d}" for i in range(args.devices)]
        conf = os.path.join(work, "lakeftpd.conf")
        with open(conf, "w") as f:
            f.write(f"""listen = 127.0.0.1:0
root = {work}/home
spool = {work}/spool
health_listen = 127.0.0.1:{health_port}
health_s3_failing_after = 5s
s3_bucket = lake
s3_endpoint = http://127.0.0.1:{proxy.port}
s3_key = raw/{{user}}/{{path}}
s3_part_size = 5MiB
s3_uploads = 4
s3_timeout = {s3_timeout}s
ack = {args.ack}
""" + "".join(f"[user {u}]\npassword = {hashed}\npermissions = full\n" for u in users))
        os.chmod(conf, 0o600)
        log_path = os.path.join(work, "lake.log")
        lake = subprocess.Popen([args.bin, "serve", "--config", conf, "--log-level", "info"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=open(log_path, "wb"))
        procs.append(lake)
        port = None
        for _ in range(300):
            text = open(log_path, errors="replace").read()
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", text)
            if m:
                port = int(m.group(1))
                break
            time.sleep(0.05)
        if port is None:
            raise RuntimeError("lakeftpd did not start")

        acked = []  # (user, path, sha256)
        lock = threading.Lock()
        stop = threading.Event()
        figures = {"refused_451": 0}

        def device(user, drng):
            n = 0
            while not stop.is_set():
                try:
                    ftp = ftplib.FTP()
                    ftp.connect("127.0.0.1", port, timeout=30)
                    ftp.login(user, password)
                    ftp.set_pasv(drng.random() < 0.5)
                    while not stop.is_set():
                        n += 1
                        size = drng.randint(6 << 20, 11 << 20) if drng.random() < 0.03 else drng.randint(1, 64 << 10)
                        data = drng.randbytes(size)
                        path = f"f{n:06d}.bin"
                        try:
                            reply = ftp.storbinary(f"STOR {path}", io.BytesIO(data))
                        except ftplib.error_temp:
                            with lock:
                                figures["refused_451"] += 1
                            continue
                        if reply.startswith("226"):
                            with lock:
                                acked.append((user, path, hashlib.sha256(data).hexdigest()))
                        # A device's pace, not a flood: the spool must be able
                        # to drain once the faults stop.
                        time.sleep(drng.uniform(0.05, 0.25))
                    ftp.quit()
                except (OSError, EOFError, ftplib.Error) as e:
                    problems.append(f"device {user}: {e!r}")
                    time.sleep(0.5)

        # Watch the spool depth and /healthz.
        peak = [0]
        transitions = []

        def watch():
            last = None
            while not stop.is_set() or watch_more.is_set():
                try:
                    depth = sum(1 for n in os.listdir(os.path.join(work, "spool")) if n.endswith(".meta"))
                    peak[0] = max(peak[0], depth)
                except FileNotFoundError:
                    pass
                try:
                    status = urllib.request.urlopen(f"http://127.0.0.1:{health_port}/healthz", timeout=2).status
                except urllib.error.HTTPError as e:
                    status = e.code
                except OSError:
                    status = "down"
                if status != last:
                    transitions.append((round(time.time() - proxy.started, 1), status))
                    last = status
                time.sleep(0.1)

        watch_more = threading.Event()
        watch_more.set()
        threading.Thread(target=watch, daemon=True).start()
        threads = [threading.Thread(target=device, args=(u, random.Random(rng.random())), daemon=True)
                   for u in users]
        for t in threads:
            t.start()
        time.sleep(args.seconds)
        stop.set()
        for t in threads:
            t.join(60)
        proxy.faults = False
        proxy.gone_until = 0
        drained_at = None
        end = time.time() + 300
        while time.time() < end:
            if not any(n.endswith(".meta") for n in os.listdir(os.path.join(work, "spool"))):
                drained_at = time.time()
                break
            time.sleep(0.2)
        time.sleep(1)
        watch_more.clear()
        if drained_at is None:
            problems.append("the spool did not drain within 300 s after the faults stopped")
        queued = set()
        for name in os.listdir(os.path.join(work, "spool")):
            if name.endswith(".meta"):
                fields = dict(line.split("=", 1) for line in open(os.path.join(work, "spool", name))
                              if "=" in line)
                queued.add((fields.get("user", "").strip(), fields.get("path", "").strip().lstrip("/")))
        lost = corrupted = still_queued = 0
        for user, path, sha in acked:
            obj = os.path.join(s3dir, "lake", "raw", user, path)
            try:
                with open(obj, "rb") as f:
                    if hashlib.sha256(f.read()).hexdigest() != sha:
                        corrupted += 1
                        problems.append(f"{user}/{path}: differs in the bucket")
            except FileNotFoundError:
                if (user, path) in queued:
                    still_queued += 1
                    continue
                lost += 1
                problems.append(f"{user}/{path}: acknowledged, not in the bucket nor in the spool")
        objects = sum(len(files) for _, _, files in os.walk(os.path.join(s3dir, "lake", "raw")))
        latencies = [int(m) for m in re.findall(r"ms_after_upload=(\d+)", open(log_path, errors="replace").read())]
        log_text = open(log_path, errors="replace").read()
        mismatches = log_text.count("S3 stored CRC64NVME")
        bad_digest = log_text.count("BadDigest")
        duplicates = sum(n - 1 for n in proxy.writes.values() if n > 1)
        print(f"seconds {args.seconds:g}")
        print(f"ack {args.ack}")
        print(f"acknowledged {len(acked)}")
        print(f"refused_451 {figures['refused_451']}")
        print(f"objects {objects}")
        print(f"lost {lost}")
        print(f"still_queued {still_queued}")
        print(f"corrupted {corrupted}")
        print(f"duplicate_puts {duplicates}")
        print(f"delivery_latency_ms_p50 {percentile(latencies, 50)}")
        print(f"delivery_latency_ms_p99 {percentile(latencies, 99)}")
        print(f"spool_peak_depth {peak[0]}")
        print(f"checksum_refused_by_s3 {bad_digest}")
        print(f"checksum_mismatch_detected {mismatches}")
        print("health_transitions " + " ".join(f"{t}s:{s}" for t, s in transitions))
        print("faults " + " ".join(f"{k}={v}" for k, v in proxy.counts.items()))
        # The mismatch paths must have been exercised, or the test proves nothing.
        if proxy.counts["corrupt_body"] and not bad_digest:
            problems.append("bodies were corrupted but no BadDigest was logged")
        if proxy.counts["corrupt_checksum"] and not mismatches:
            problems.append("returned checksums were corrupted but no mismatch was logged")
        if not acked:
            problems.append("no upload was acknowledged")
    finally:
        for p in procs[::-1]:
            p.kill()
            p.wait()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    for p in problems[:30]:
        print("PROBLEM:", p)
    if args.keep:
        print("work directory:", work)
    lost_or_bad = [p for p in problems if not p.startswith("device ")]
    sys.exit(1 if lost_or_bad else 0)


if __name__ == "__main__":
    main()
