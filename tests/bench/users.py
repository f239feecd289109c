#!/usr/bin/env python3
"""Benchmark of the users file at fleet scale (docs/benchmark.md, "Users").

One command: tests/bench/users.sh (builds the release binary, runs this).
Bounded: every phase has a fixed count or duration; about a minute in all.
Loopback only; files on /dev/shm. Prints one JSON object per figure.

Figures, against the goals of the users file:
- load + validation time of N users (check --users, and the server's own
  `loaded N users ... in X ms` line): goal < 1 s for 100,000;
- memory per user: the server's RSS with N users minus with 1 user, per
  user, minus the hash text (goal < 300 bytes beyond the hash);
- login latency of the first and of the last user of the file (the look-up
  must not scan: they should match);
- logins per second with and without reloads running (SIGHUP in a loop);
- one reload on its own: the latency of logins made while it ran against
  those before it (goal: no visible difference);
- users-source requests per hour when nothing changes (S3 via s3s-fs).
"""
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

BIN = os.environ["LAKEFTPD_BIN"]
N = int(os.environ.get("BENCH_USERS", "100000"))
WORK = os.environ.get("BENCH_WORK", "/dev/shm/lakeftpd-bench-users")
PASSWORD = "bench-pass"
S3S_FS = os.environ.get("S3S_FS") or os.path.expanduser("~/.cargo/bin/s3s-fs")


def report(name, **fields):
    print(json.dumps({"figure": name, **fields}), flush=True)


def hash_of(password):
    out = subprocess.run([BIN, "passwd"], input=password + "\n", capture_output=True, text=True, check=True)
    return out.stdout.strip()


def users_text(n, hash_):
    return "".join(f"[user dev{i:06d}]\npassword = {hash_}\n" for i in range(n))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    def __init__(self, name, extra):
        self.dir = os.path.join(WORK, name)
        os.makedirs(self.dir, exist_ok=True)
        conf = os.path.join(self.dir, "lakeftpd.conf")
        with open(conf, "w") as f:
            f.write(
                f"listen = 127.0.0.1:0\nroot = {self.dir}/home\nlogin_fail_delay = 0s\n"
                f"max_sessions_per_ip = 10000\nhealth_listen = 127.0.0.1:0\nspool = {self.dir}/spool\n{extra}"
            )
        os.chmod(conf, 0o600)
        self.proc = subprocess.Popen([BIN, "serve", "--config", conf], stderr=subprocess.PIPE, text=True)
        self.log = []
        self.addr = None
        self.health = None
        ready = threading.Event()

        def read():
            for line in self.proc.stderr:
                self.log.append(line)
                m = re.search(r"listening on (\S+)", line)
                if m:
                    host, port = m.group(1).rsplit(":", 1)
                    self.addr = (host, int(port))
                    ready.set()
                m = re.search(r"health and metrics on http://([^/]+)/", line)
                if m:
                    host, port = m.group(1).rsplit(":", 1)
                    self.health = (host, int(port))

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(60):
            self.stop()
            sys.exit("server did not start:\n" + "".join(self.log))

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def cpu_seconds(self):
        """User + system CPU of the whole process so far."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def metric(self, name):
        s = socket.create_connection(self.health, timeout=5)
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: b\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        m = re.search(rf"^{name} (\d+)$", data.decode(), re.M)
        return int(m.group(1)) if m else None

    def wait_log(self, pattern, limit):
        end = time.time() + limit
        while time.time() < end:
            for line in self.log:
                m = re.search(pattern, line)
                if m:
                    return m
            time.sleep(0.05)
        return None

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def login(addr, user):
    """One login on a fresh connection; seconds from connect to the 230."""
    start = time.perf_counter()
    s = socket.create_connection(addr, timeout=10)
    f = s.makefile("rb")
    f.readline()
    s.sendall(f"USER {user}\r\n".encode())
    f.readline()
    s.sendall(f"PASS {PASSWORD}\r\n".encode())
    reply = f.readline()
    took = time.perf_counter() - start
    s.sendall(b"QUIT\r\n")
    f.close()
    s.close()
    if not reply.startswith(b"230"):
        raise RuntimeError(f"login {user}: {reply!r}")
    return took


def latencies(addr, user, count):
    login(addr, user)  # the first pays the full hash; the cache serves the rest
    return sorted(login(addr, user) for _ in range(count))


def rate(addr, users, seconds, threads=4):
    done = []
    lat = []
    stop = time.time() + seconds

    def work(k):
        i = k
        while time.time() < stop:
            lat.append(login(addr, users[i % len(users)]))
            i += threads
            done.append(1)

    ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    lat.sort()
    return len(done) / seconds, lat


def timed_logins(addr, users, seconds, threads=4):
    """Logins on `threads` threads for `seconds`: (start, latency) each."""
    out = []
    stop = time.time() + seconds

    def work(k):
        i = k
        while time.time() < stop:
            t = time.perf_counter()
            out.append((t, login(addr, users[i % len(users)])))
            i += threads

    ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def ms(x):
    return round(x * 1000, 3)


def main():
    os.makedirs(WORK, exist_ok=True)
    hash_ = hash_of(PASSWORD)
    big = os.path.join(WORK, "users-big.conf")
    one = os.path.join(WORK, "users-one.conf")
    with open(big, "w") as f:
        f.write(users_text(N, hash_))
    with open(one, "w") as f:
        f.write(users_text(1, hash_))
    size = os.path.getsize(big)

    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run([BIN, "check", "--users", big], capture_output=True, text=True)
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert out.returncode == 0, out.stderr
    report(
        "check --users",
        users=N,
        bytes=size,
        wall_seconds=round(took, 3),
        cpu_seconds=round(cpu, 3),
        load_average=os.getloadavg()[0],
        goal_seconds=1.0,
    )

    small = Server("one", f"users = {one}\n")
    time.sleep(1)
    rss_one = small.rss_kib()
    cpu_one = small.cpu_seconds()
    small.stop()
    server = Server("big", f"users = {big}\nusers_poll_interval = 1h\n")
    m = server.wait_log(r"loaded (\d+) users from \S+ in (\d+) ms", 30)
    time.sleep(1)
    report(
        "server load",
        users=int(m.group(1)),
        wall_milliseconds=int(m.group(2)),
        start_cpu_seconds_beyond_1_user=round(server.cpu_seconds() - cpu_one, 3),
        load_average=os.getloadavg()[0],
        goal_milliseconds=1000,
    )
    rss_big = server.rss_kib()
    per_user = (rss_big - rss_one) * 1024 / N
    report(
        "memory per user",
        rss_kib_1_user=rss_one,
        rss_kib_n_users=rss_big,
        bytes_per_user=round(per_user, 1),
        hash_bytes=len(hash_),
        beyond_hash=round(per_user - len(hash_), 1),
        goal_beyond_hash=300,
    )

    first, last = f"dev{0:06d}", f"dev{N - 1:06d}"
    a = latencies(server.addr, first, 300)
    b = latencies(server.addr, last, 300)
    report(
        "login latency (cached password)",
        first_median_ms=ms(statistics.median(a)),
        first_p99_ms=ms(a[int(len(a) * 0.99)]),
        last_median_ms=ms(statistics.median(b)),
        last_p99_ms=ms(b[int(len(b) * 0.99)]),
    )

    users = [f"dev{i * (N // 50):06d}" for i in range(50)]
    for u in users:
        login(server.addr, u)  # warm the credential cache
    quiet, quiet_lat = rate(server.addr, users, 5)
    reloading = threading.Event()
    reloads = []

    def hup():
        while not reloading.is_set():
            os.kill(server.proc.pid, signal.SIGHUP)
            time.sleep(0.3)
            reloads.append(1)

    before = len([l for l in server.log if "loaded" in l])
    t = threading.Thread(target=hup)
    t.start()
    busy, busy_lat = rate(server.addr, users, 5)
    reloading.set()
    t.join()
    time.sleep(1)
    done = len([l for l in server.log if "loaded" in l]) - before
    report(
        "logins per second",
        without_reload=round(quiet),
        during_reloads=round(busy),
        reloads_completed=done,
        p99_ms_without=ms(quiet_lat[int(len(quiet_lat) * 0.99)]),
        p99_ms_during=ms(busy_lat[int(len(busy_lat) * 0.99)]),
    )

    # One reload, as in production (one per change of the file): SIGHUP
    # 2 s into a 4 s run; logins that started while it ran (from the
    # signal to its "loaded" line, plus its reported parse time) against
    # those in the 2 s before it.
    def one_reload():
        time.sleep(2)
        marks.append(time.perf_counter())
        os.kill(server.proc.pid, signal.SIGHUP)

    marks = []
    loaded_before = len([l for l in server.log if "loaded" in l])
    t = threading.Thread(target=one_reload)
    t.start()
    samples = timed_logins(server.addr, users, 4)
    t.join()
    time.sleep(0.5)
    lines = [l for l in server.log if "loaded" in l][loaded_before:]
    m = re.search(r"in (\d+) ms", lines[0]) if lines else None
    took = int(m.group(1)) / 1000 if m else 0.5
    hup = marks[0]
    before = sorted(l for (t0, l) in samples if hup - 2 <= t0 < hup)
    during = sorted(l for (t0, l) in samples if hup <= t0 < hup + took)
    report(
        "one reload",
        reload_ms=round(took * 1000),
        logins_before=len(before),
        logins_during=len(during),
        median_ms_before=ms(statistics.median(before)) if before else None,
        median_ms_during=ms(statistics.median(during)) if during else None,
        p99_ms_before=ms(before[int(len(before) * 0.99)]) if before else None,
        max_ms_during=ms(during[-1]) if during else None,
    )
    server.stop()

    if os.path.exists(S3S_FS):
        s3root = os.path.join(WORK, "s3")
        os.makedirs(os.path.join(s3root, "cfg"), exist_ok=True)
        with open(os.path.join(s3root, "cfg", "users.conf"), "w") as f:
            f.write(users_text(1000, hash_))
        port = free_port()
        s3 = subprocess.Popen(
            [S3S_FS, "--host", "127.0.0.1", "--port", str(port), "--access-key", "AKIABENCH", "--secret-key", "benchsecret", s3root],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(1)
        os.environ.update(AWS_ACCESS_KEY_ID="AKIABENCH", AWS_SECRET_ACCESS_KEY="benchsecret")
        polled = Server(
            "s3",
            f"s3_endpoint = http://127.0.0.1:{port}\nusers = s3://cfg/users.conf\nusers_poll_interval = 1s\n",
        )
        window = 10
        time.sleep(window + 0.5)
        fetches = polled.metric("lakeftpd_users_fetches_total")
        unchanged = polled.metric("lakeftpd_users_unchanged_total")
        polled.stop()
        s3.kill()
        per_poll = fetches / max(1, fetches)
        report(
            "users source requests when nothing changes",
            window_seconds=window,
            poll_interval_seconds=1,
            requests=fetches,
            unchanged=unchanged,
            requests_per_hour_at_default_60s=round(3600 / 60 * per_poll),
        )


if __name__ == "__main__":
    main()
