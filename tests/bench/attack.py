#!/usr/bin/env python3
"""Attack soak: lakeftpd under attack from several 127.x addresses while 50
devices upload 4 KiB files (active and passive), compared with the same
devices without the attack. Loopback only; every loop bounded in time.

Attacks: password guessing across reconnects, silent connections (plain and,
on a second instance with proxy_protocol = v2, without a PROXY header),
slowloris (one byte every few seconds), a health-port flood (idle sockets),
PASV hoarding from one address, random command lines. Then, as root, IPv6
rotation (tests/bench/attack_v6.py): the server in a network namespace of
its own, a device logging in over IPv6 while one /64 floods from rotating
addresses, against the same device without the flood.

Reports (JSON on stdout, one line per phase, then a summary): devices'
uploads/s and p99, guesses that reached a password check, bans, RSS and
descriptors over time, errors seen by devices, files lost, and the goals
(health checks and logins through the balancer answered within
GOAL_SECONDS) with whether each was met.

Exit 1 when a device saw an error, a file was lost, or a health check got no
200 at all within OUTRIGHT_SECONDS: those are faults whatever the machine.
The 1-second goals depend on the machine's load (CI shares its cores with
this generator), so they fail the run only with --strict.
"""
import argparse, ftplib, io, json, os, random, re, shutil, socket, struct
import multiprocessing, subprocess, sys, tempfile, threading, time, errno, traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import attack_v6  # noqa: E402  (beside this file)
PASSWORD = "soak.pass.123"


# A health check or a login through the balancer answered within this is
# on target (the goal).
GOAL_SECONDS = 1.0
# Not answered within this: failed outright (the NLB's own health check
# times out at 10 s; half of it is a clear fault, not load).
OUTRIGHT_SECONDS = 5.0
# The balancer's address in front of the PROXY instance. Not 127.0.0.1:
# the silent flood through it churns some 1,000 connections a second, and
# their TIME_WAIT ports would otherwise collide with the devices' active-mode
# data ports on 127.0.0.1 (EADDRINUSE in the generator, not the server).
BALANCER = "127.0.20.1"
# Other devices' logins (connect to 230) during the attack: p99 under this.
LOGIN_P99_GOAL_MS = 50


def binary():
    return os.environ.get("LAKEFTPD_BIN") or os.path.join(ROOT, "target/release/lakeftpd")


def password_hash():
    out = subprocess.run([binary(), "passwd"], input=PASSWORD + "\n", capture_output=True,
                         text=True, check=True)
    return out.stdout.strip()


SERVERS = []


def stop_all(*_):
    for s in SERVERS:
        s.stop()
    sys.exit(1)


class Server:
    def __init__(self, work, name, extra, users, listen="127.0.0.1:0"):
        self.home = os.path.join(work, name, "home")
        os.makedirs(self.home, exist_ok=True)
        conf = os.path.join(work, name, "lakeftpd.conf")
        h = password_hash()
        text = (f"listen = {listen}\nroot = {self.home}\n"
                f"health_listen = 127.0.0.1:0\n{extra}\n")
        for u in users:
            text += f"[user {u}]\npassword = {h}\npermissions = full\n"
        with open(conf, "w") as f:
            f.write(text)
        os.chmod(conf, 0o600)
        self.log = open(os.path.join(work, name, "stderr.log"), "w+")
        self.proc = subprocess.Popen([binary(), "serve", "--config", conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        SERVERS.append(self)
        self.addr = self.health = None
        deadline = time.time() + 20
        lines = []
        while time.time() < deadline and not (self.addr and self.health):
            line = self.proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"health and metrics on http://([\d.]+):(\d+)/", line)
            if m:
                self.health = (m.group(1), int(m.group(2)))
            m = re.search(r"listening on \[?([\d.a-f:]+?)\]?:(\d+)\s*$", line)
            if m:
                self.addr = (m.group(1), int(m.group(2)))
        if not self.addr:
            sys.exit("server did not start:\n" + "".join(lines))
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stderr:
            self.log.write(line)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def sample(self):
        pid = self.proc.pid
        rss = 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        return {"rss_kib": rss, "fds": len(os.listdir(f"/proc/{pid}/fd"))}

    def metric(self, name):
        try:
            body = http_get(self.health, "/metrics", 5)[1]
        except OSError:
            return None
        for line in body.splitlines():
            if line.startswith(name + " "):
                return int(float(line.split()[1]))
        return None


def http_get(addr, path, timeout):
    s = socket.create_connection(addr, timeout=timeout)
    s.settimeout(timeout)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: soak\r\n\r\n".encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split()[1]) if head else 0
    return status, body.decode(errors="replace")


def sock_from(src, addr, timeout=10):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(addr)
    return s


class Stop:
    def __init__(self):
        self.event = threading.Event()

    def running(self):
        return not self.event.is_set()


# --- devices ------------------------------------------------------------------

DEVICE_INTERVAL = 0.5  # each device uploads at most twice a second


def device(i, server, stop, results, lock):
    rng = random.Random(i)
    n = 0
    while stop.running():
        # Bounded rate: 50 devices x 2/s x two connections stay well inside
        # the ephemeral port range despite TIME_WAIT (a generator artifact).
        stop.event.wait(max(0.0, DEVICE_INTERVAL - (time.time() % DEVICE_INTERVAL)))
        if not stop.running():
            break
        name = f"d{i:02d}-{n:06d}.csv"
        body = bytes(rng.getrandbits(8) for _ in range(4096))
        passive = n % 2 == 0
        started = time.time()
        try:
            ftp = ftplib.FTP()
            ftp.connect(server.addr[0], server.addr[1], timeout=20)
            ftp.login(f"dev{i:02d}", PASSWORD)
            logged_in = time.time() - started
            ftp.set_pasv(passive)
            ftp.storbinary(f"STOR {name}", io.BytesIO(body))
            ftp.quit()
            took = time.time() - started
            with lock:
                results["ok"].append(took)
                results["login"].append(logged_in)
                results["files"][f"dev{i:02d}/{name}"] = body
        except OSError as e:
            with lock:
                if e.errno == errno.EADDRINUSE and own_bind_failed(e):
                    # The generator's own active-mode listener found no free
                    # port on 127.0.0.1 (thousands of attack sockets and
                    # TIME_WAITs share the range): not the server's doing.
                    # Counted apart and reported; the upload is tried again.
                    results["generator_port_errors"] += 1
                    ftp.close()
                    continue
                results["errors"].append(f"{type(e).__name__}: {e}")
        except Exception as e:  # every failure a device sees is counted
            with lock:
                results["errors"].append(f"{type(e).__name__}: {e}")
        n += 1


def own_bind_failed(e):
    """The error came from ftplib binding the client's own data listener
    (PORT/EPRT), before anything was asked of the server for it."""
    frames = traceback.extract_tb(e.__traceback__)
    return any(f.name in ("makeport", "create_server") for f in frames)


# --- attackers ----------------------------------------------------------------

def guesser(src, server, stop, counts, lock):
    while stop.running():
        try:
            s = sock_from(src, server.addr, 5)
            f = s.makefile("rb")
            greeting = f.readline()
            if greeting.startswith(b"421"):
                with lock:
                    counts["refused_at_connect"] += 1
                s.close()
                time.sleep(0.05)
                continue
            for _ in range(3):
                s.sendall(b"USER dev00\r\n")
                f.readline()
                s.sendall(f"PASS guess{random.random()}\r\n".encode())
                reply = f.readline()
                with lock:
                    if reply.startswith(b"530"):
                        counts["guesses_checked"] += 1
                    elif reply.startswith(b"421"):
                        counts["refused_at_pass"] += 1
                if not reply.startswith(b"530"):
                    break
            s.close()
        except OSError:
            time.sleep(0.05)


def holder(srcs, addr, count, stop, payload=None, interval=None):
    """Holds `count` connections open from `srcs`, renewing closed ones;
    with `payload`, sends one byte of it every `interval` seconds."""
    held = []
    k = 0
    while stop.running():
        alive = []
        for s, pos in held:
            try:
                s.setblocking(False)
                data = s.recv(4096)
                if data == b"":
                    s.close()
                    continue
            except BlockingIOError:
                pass
            except OSError:
                s.close()
                continue
            if payload is not None:
                try:
                    s.sendall(payload[pos % len(payload):pos % len(payload) + 1])
                    pos += 1
                except OSError:
                    s.close()
                    continue
            alive.append((s, pos))
        held = alive
        while len(held) < count and stop.running():
            try:
                held.append((sock_from(srcs[k % len(srcs)], addr, 2), 0))
            except OSError:
                break
            k += 1
        stop.event.wait(interval or 0.5)
    for s, _ in held:
        s.close()


def hoarder(server, stop, sessions):
    """One address logs in many times and holds a PASV listener each."""
    held = []
    while stop.running() and len(held) < sessions:
        try:
            ftp = ftplib.FTP(source_address=("127.0.13.1", 0))
            ftp.connect(server.addr[0], server.addr[1], timeout=10)
            ftp.login("hoarder", PASSWORD)
            ftp.sendcmd("PASV")
            held.append(ftp)
        except Exception:
            time.sleep(0.1)
    stop.event.wait()
    for f in held:
        try:
            f.close()
        except Exception:
            pass


def fuzzer(src, server, stop):
    rng = random.Random(src)
    verbs = [b"USER", b"PASS", b"PORT", b"EPRT", b"PASV", b"REST", b"LIST", b"MKD", b"CWD",
             b"RETR", b"STOR", b"APPE", b"RNFR", b"RNTO", b"SITE", b"OPTS", b"\xff\xfe", b""]
    while stop.running():
        try:
            s = sock_from(src, server.addr, 3)
            s.recv(512)
            for _ in range(20):
                arg = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300)))
                arg = arg.replace(b"\n", b" ")
                s.sendall(rng.choice(verbs) + b" " + arg + b"\r\n")
                s.recv(4096)
            s.close()
        except OSError:
            time.sleep(0.05)


def health_checker(health, running, out):
    """Runs in its own process: its timings are not inflated by the
    generator's threads waiting for the GIL."""
    stats = {"checks": 0, "slow": 0, "failed": 0, "slowest": 0.0}
    while running.is_set():
        started = time.time()
        try:
            status, _ = http_get(health, "/healthz", OUTRIGHT_SECONDS)
        except OSError:
            status = 0
        took = time.time() - started
        stats["checks"] += 1
        if status != 200:
            stats["failed"] += 1
        elif took > GOAL_SECONDS:
            stats["slow"] += 1
        stats["slowest"] = max(stats["slowest"], took)
        time.sleep(0.5)
    out.put(("health", stats))


def proxy_probe(addr, running, out):
    """A device through the balancer (PROXY v2 header + login) on the
    PROXY instance, while silent connections flood it; in its own process
    like the health checker."""
    stats = {"logins": 0, "slow": 0, "failed": 0, "slowest": 0.0, "failures": []}
    src = struct.pack("!4s4sHH", socket.inet_aton("198.51.100.9"),
                      socket.inet_aton(addr[0]), 40000, addr[1])
    header = b"\r\n\r\n\x00\r\nQUIT\n\x21\x11" + struct.pack("!H", len(src)) + src
    while running.is_set():
        started = time.time()
        ok = False
        data, error = b"", None
        try:
            s = sock_from(BALANCER, addr, OUTRIGHT_SECONDS)
            s.sendall(header + f"USER dev00\r\nPASS {PASSWORD}\r\nQUIT\r\n".encode())
            while b"221" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            ok = b"230" in data
            s.close()
        except OSError as e:
            error = f"{type(e).__name__}: {e}"
        took = time.time() - started
        stats["logins"] += 1
        if not ok:
            stats["failed"] += 1
            # What the probe saw, to tell a shed (greeting, then a close) from
            # a timeout or a refusal.
            stats["failures"].append({"after_s": round(took, 3), "error": error,
                                      "received": data.decode(errors="replace")[:300]})
        elif took > GOAL_SECONDS:
            stats["slow"] += 1
        stats["slowest"] = max(stats["slowest"], took)
        time.sleep(1.0)
    out.put(("probe", stats))


def login_probe(addr, running, out):
    """Another device (its own address, correct password) logging in every
    0.2 s on the main instance: the issue's "other devices' logins p99"
    (connect to 230). In its own process, so the 50 device threads waiting
    for the GIL do not inflate it."""
    took = []
    failed = 0
    while running.is_set():
        started = time.time()
        try:
            s = sock_from("127.0.16.1", addr, OUTRIGHT_SECONDS)
            f = s.makefile("rb")
            f.readline()
            s.sendall(b"USER probe\r\n")
            f.readline()
            s.sendall(f"PASS {PASSWORD}\r\n".encode())
            reply = f.readline()
            if reply.startswith(b"230"):
                took.append(time.time() - started)
            else:
                failed += 1
            s.sendall(b"QUIT\r\n")
            s.close()
        except OSError:
            failed += 1
        time.sleep(0.2)
    out.put(("login", {"took": took, "failed": failed}))


# --- phases -------------------------------------------------------------------

def p50(values):
    return sorted(values)[len(values) // 2] if values else None


def p99(values):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * 0.99))]


def phase(name, seconds, attack, work, users):
    server = Server(work, name, "max_sessions = 4000\npassive_ports = 40000-40999", users)
    proxy = None
    if attack:
        proxy = Server(work, name + "-proxy",
                       f"proxy_protocol = v2\nproxy_from = {BALANCER}/32\nmax_sessions = 50\n"
                       "passive_ports = 41000-41099", ["dev00"])
    stop = Stop()
    lock = threading.Lock()
    results = {"ok": [], "login": [], "errors": [], "files": {}, "generator_port_errors": 0}
    counts = {"guesses_checked": 0, "refused_at_connect": 0, "refused_at_pass": 0}
    # spawn, not fork: this process has threads (the servers' log readers).
    mp = multiprocessing.get_context("spawn")
    running, out = mp.Event(), mp.Queue()
    running.set()
    probes = [mp.Process(target=health_checker, args=(server.health, running, out)),
              mp.Process(target=login_probe, args=(server.addr, running, out))]
    threads = [threading.Thread(target=device, args=(i, server, stop, results, lock))
               for i in range(50)]
    if attack:
        for a in range(5):
            threads.append(threading.Thread(target=guesser,
                                            args=(f"127.0.10.{a + 1}", server, stop, counts, lock)))
        silent_srcs = [f"127.0.11.{a + 1}" for a in range(10)]
        threads.append(threading.Thread(target=holder, args=(silent_srcs, server.addr, 2000, stop)))
        threads.append(threading.Thread(target=holder, args=([BALANCER], proxy.addr, 1200, stop)))
        threads.append(threading.Thread(target=holder, args=(
            [f"127.0.12.{a + 1}" for a in range(4)], server.addr, 200, stop, b"USER slow\r\n", 3.0)))
        threads.append(threading.Thread(target=holder, args=(
            [f"127.0.15.{a + 1}" for a in range(5)], server.health, 500, stop)))
        threads.append(threading.Thread(target=hoarder, args=(server, stop, 150)))
        for a in range(3):
            threads.append(threading.Thread(target=fuzzer, args=(f"127.0.14.{a + 1}", server, stop)))
        probes.append(mp.Process(target=proxy_probe, args=(proxy.addr, running, out)))
    for p in probes:
        p.daemon = True
        p.start()
    for t in threads:
        t.daemon = True
        t.start()
    samples = []
    started = time.time()
    while time.time() - started < seconds:
        time.sleep(min(5, seconds))
        sample = server.sample()
        sample["t"] = round(time.time() - started)
        if proxy:
            p = proxy.sample()
            sample["proxy_rss_kib"], sample["proxy_fds"] = p["rss_kib"], p["fds"]
        samples.append(sample)
    elapsed = time.time() - started
    stop.event.set()
    running.clear()
    measured = dict(out.get(timeout=OUTRIGHT_SECONDS * 3) for _ in probes)
    for p in probes:
        p.join(OUTRIGHT_SECONDS * 3)
    health = measured["health"]
    logins = measured["login"]
    probe = measured.get("probe")
    for t in threads:
        t.join(15)
    bans = server.metric("lakeftpd_bans_total")
    refused = server.metric("lakeftpd_banned_refused_total")
    shed = server.metric("lakeftpd_unauthenticated_shed_total")
    proxy_shed = proxy.metric("lakeftpd_unauthenticated_shed_total") if proxy else None
    server.stop()
    if proxy:
        proxy.stop()
    lost = 0
    for rel, body in results["files"].items():
        try:
            with open(os.path.join(server.home, rel), "rb") as f:
                if f.read() != body:
                    lost += 1
        except OSError:
            lost += 1
    report = {
        "phase": name, "seconds": round(elapsed),
        "uploads": len(results["ok"]),
        "uploads_per_s": round(len(results["ok"]) / elapsed, 1),
        "p99_ms": round(p99(results["ok"]) * 1000, 1) if results["ok"] else None,
        # Connect to 230 for the 50 devices (inflated by the generator's GIL)...
        "device_login_p99_ms": round(p99(results["login"]) * 1000, 1) if results["login"] else None,
        # ... and for another device in its own process: the issue's "other
        # devices' logins" (goal p99 < 50 ms).
        "login_probe_logins": len(logins["took"]), "login_probe_failed": logins["failed"],
        "login_p50_ms": round(p50(logins["took"]) * 1000, 1) if logins["took"] else None,
        "login_p99_ms": round(p99(logins["took"]) * 1000, 1) if logins["took"] else None,
        "device_errors": len(results["errors"]),
        "generator_port_errors": results["generator_port_errors"],
        "first_errors": results["errors"][:5],
        "files_lost": lost,
        "health_checks": health["checks"], "health_slow": health["slow"],
        "health_failed": health["failed"],
        "health_slowest_ms": round(health["slowest"] * 1000, 1),
        "samples": samples,
    }
    if attack:
        minutes = elapsed / 60
        report.update({
            "guesses_checked": counts["guesses_checked"],
            "guesses_per_min_per_address": round(counts["guesses_checked"] / minutes / 5, 1),
            "guesser_refused_at_connect": counts["refused_at_connect"],
            "guesser_refused_at_pass": counts["refused_at_pass"],
            "bans": bans, "banned_refused": refused, "unauthenticated_shed": shed,
            "proxy_probe_logins": probe["logins"], "proxy_probe_slow": probe["slow"],
            "proxy_probe_failed": probe["failed"],
            "proxy_probe_failures": probe["failures"][:5],
            "proxy_probe_slowest_ms": round(probe["slowest"] * 1000, 1),
            "proxy_unauthenticated_shed": proxy_shed,
        })
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=300, help="attack phase length (default 300)")
    ap.add_argument("--baseline", type=int, default=None,
                    help="baseline phase length (default: min(seconds, 60))")
    ap.add_argument("--ipv6", type=int, default=None, metavar="SECONDS",
                    help="IPv6 rotation phases of this length (default: min(seconds, 15) when "
                         "run as root, else none; 0: none): devices' login latency with and "
                         "without a flood from rotating addresses of one /64 "
                         "(tests/bench/attack_v6.py, in a network namespace)")
    ap.add_argument("--strict", action="store_true",
                    help=f"also fail when a goal ({GOAL_SECONDS:g} s health checks and logins "
                         "through the balancer, 0 device errors) is missed")
    args = ap.parse_args()
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    import signal
    signal.signal(signal.SIGTERM, stop_all)
    work = tempfile.mkdtemp(prefix="d10-attack-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    users = [f"dev{i:02d}" for i in range(50)] + ["hoarder", "probe"]
    try:
        base = phase("baseline", args.baseline or min(args.seconds, 60), False, work, users)
        print(json.dumps(base), flush=True)
        attack = phase("attack", args.seconds, True, work, users)
        print(json.dumps(attack), flush=True)
        v6_seconds = args.ipv6 if args.ipv6 is not None else (
            min(args.seconds, 15) if os.geteuid() == 0 else 0)
        v6 = attack_v6.run(v6_seconds, work, users) if v6_seconds else None
        if v6:
            print(json.dumps(v6), flush=True)
    finally:
        for s in SERVERS:
            s.stop()
        shutil.rmtree(work, ignore_errors=True)
    faults = {
        "device_errors": base["device_errors"] + attack["device_errors"],
        "files_lost": base["files_lost"] + attack["files_lost"],
        "health_failed": base["health_failed"] + attack["health_failed"],
        # A device refused or shed while one /64 rotates its addresses.
        "ipv6_login_failed": v6["rotation"]["login_failed"] if v6 else 0,
    }
    goals = {
        f"health_within_{GOAL_SECONDS:g}s": [attack["health_checks"] - attack["health_slow"]
                                             - attack["health_failed"], attack["health_checks"]],
        # The issue's "other devices' logins unaffected (p99 under 50 ms)";
        # [measured, goal] in milliseconds.
        "login_p99_ms_under_50": [attack["login_p99_ms"], LOGIN_P99_GOAL_MS],
        f"proxy_logins_within_{GOAL_SECONDS:g}s": [
            attack["proxy_probe_logins"] - attack["proxy_probe_slow"]
            - attack["proxy_probe_failed"], attack["proxy_probe_logins"]],
    }
    goals_met = all(done == total for name, (done, total) in goals.items()
                    if not name.startswith("login_p99")) \
        and attack["login_p99_ms"] is not None and attack["login_p99_ms"] < LOGIN_P99_GOAL_MS
    bad = any(faults.values()) or (args.strict and not goals_met)
    summary = {
        "uploads_per_s": [base["uploads_per_s"], attack["uploads_per_s"]],
        "p99_ms": [base["p99_ms"], attack["p99_ms"]],
        "login_p99_ms": [base["login_p99_ms"], attack["login_p99_ms"]],
        "device_errors": attack["device_errors"], "files_lost": attack["files_lost"],
        "generator_port_errors": base["generator_port_errors"] + attack["generator_port_errors"],
        "login_probe_failed": [base["login_probe_failed"], attack["login_probe_failed"]],
        "guesses_checked": attack["guesses_checked"],
        "guesses_per_min_per_address": attack["guesses_per_min_per_address"],
        "bans": attack["bans"],
        "max_rss_kib": max(s["rss_kib"] for s in attack["samples"]),
        "max_fds": max(s["fds"] for s in attack["samples"]),
        "health_failed": attack["health_failed"], "proxy_probe_failed": attack["proxy_probe_failed"],
        # A device's login (connect to 230) over IPv6, quiet and while one
        # /64 floods from rotating addresses: [p99 quiet, p99 rotation].
        "ipv6_login_p99_ms": [v6["quiet"]["login_p99_ms"], v6["rotation"]["login_p99_ms"]]
        if v6 else None,
        "ipv6_login_failed": [v6["quiet"]["login_failed"], v6["rotation"]["login_failed"]]
        if v6 else None,
        "goals": goals, "goals_met": goals_met, "faults": faults,
        "ok": not bad,
    }
    print(json.dumps({"summary": summary}), flush=True)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
