#!/usr/bin/env python3
"""IPv6 rotation for the attack soak (tests/bench/attack.py).

An attacker with a routed /64 picks a new source address for every
connection. Here the server runs in a network namespace of its own
(`hostile-soak-PID`) where the /48 2001:db8:1::/48 (documentation range) is
local, so any address of it can be a source. Two phases of the same length:
  quiet     a device ("probe", from 2001:db8:2::1, its own /64) logs in
            every 0.2 s, waiting DEVICE_PAUSE after the greeting (a slow
            link): connect to 230, the pause not counted;
  rotation  the same device while one /64 (2001:db8:1:2::/64) holds silent
            connections from a fresh address each (renewed as they are
            shed) and guesses passwords from fresh addresses.
Reported: the device's login p50/p99 and failures in each phase, and what
the flood got (connections greeted, guesses checked, bans, connections
shed). Before lakeftpd counted IPv6 clients by their /64 everywhere, the
flood shed the device's logins (0 of 10 at ~5,000 connections/s).

run() is called by attack.py (it creates and deletes the namespace); the
phases themselves run in this file as a script inside the namespace:
    attack_v6.py WORK SECONDS USER,USER,...
"""
import ipaddress, json, multiprocessing, os, random, socket, subprocess, sys, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER_IP = "2001:db8:ff::1"
ROTATING = ipaddress.ip_network("2001:db8:1:2::/64")
DEVICE_IP = "2001:db8:2::1"
# Silent connections the flood keeps open (more than the default
# unauthenticated share of max_sessions = 4000, so it churns), and guessing
# threads.
HOLDERS, HELD_EACH, GUESSERS = 4, 1000, 2
# The device waits this long between the greeting and USER, as one on a
# slow link does: long enough to become the oldest waiting connection in a
# flood that churns, which is when a shared unauthenticated share shed it.
DEVICE_PAUSE = 1.0


def ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True)


def run(seconds, work, users):
    """Creates the namespace, runs both phases in it, deletes it; returns
    {"phase": "ipv6", "quiet": {...}, "rotation": {...}}."""
    ns = f"hostile-soak-{os.getpid()}"
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    try:
        ip("netns", "add", ns)
        ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", ns, "-6", "addr", "add", f"{SERVER_IP}/128", "dev", "lo", "nodad")
        # AnyIP: every address of these prefixes is local, usable as a source.
        for prefix in ("2001:db8:1::/48", "2001:db8:2::/64"):
            ip("-n", ns, "-6", "route", "add", "local", prefix, "dev", "lo", "table", "local")
        subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw",
                        "net.ipv6.ip_nonlocal_bind=1"], check=True)
        out = subprocess.run(
            ["ip", "netns", "exec", ns, "timeout", str(seconds * 2 + 120), sys.executable,
             os.path.abspath(__file__), work, str(seconds), ",".join(users)],
            capture_output=True, text=True, env=os.environ)
        if out.returncode != 0:
            sys.stderr.write(out.stderr)
            return None
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def rotating_source():
    return str(ROTATING[random.getrandbits(64)])


def sock_from(src, addr, timeout):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(addr)
    return s


def holder(addr, stop, counts, lock):
    """Keeps HELD_EACH silent connections, each from a fresh address."""
    held = []
    while not stop.is_set():
        alive = []
        for s in held:
            try:
                s.setblocking(False)
                if s.recv(4096) == b"":
                    s.close()
                    continue
            except BlockingIOError:
                pass
            except OSError:
                s.close()
                continue
            alive.append(s)
        held = alive
        while len(held) < HELD_EACH and not stop.is_set():
            try:
                held.append(sock_from(rotating_source(), addr, 2))
                with lock:
                    counts["connections"] += 1
            except OSError:
                break
        stop.wait(0.2)
    for s in held:
        s.close()


def guesser(addr, stop, counts, lock):
    while not stop.is_set():
        try:
            s = sock_from(rotating_source(), addr, 5)
            f = s.makefile("rb")
            if not f.readline().startswith(b"220"):
                s.close()
                continue
            s.sendall(b"USER dev00\r\n")
            f.readline()
            s.sendall(f"PASS guess{random.random()}\r\n".encode())
            reply = f.readline()
            with lock:
                key = "guesses_checked" if reply.startswith(b"530") else "guesses_refused"
                counts[key] += 1
            s.close()
        except OSError:
            stop.wait(0.05)


def device(addr, password, running, out):
    """In its own process (no GIL shared with the flood): logs in every
    0.2 s from its own /64."""
    took, failed = [], 0
    while running.is_set():
        started = time.time()
        try:
            s = sock_from(DEVICE_IP, addr, 5)
            f = s.makefile("rb")
            f.readline()
            time.sleep(DEVICE_PAUSE)
            s.sendall(b"USER probe\r\n")
            f.readline()
            s.sendall(f"PASS {password}\r\n".encode())
            if f.readline().startswith(b"230"):
                took.append(time.time() - started - DEVICE_PAUSE)
            else:
                failed += 1
            s.sendall(b"QUIT\r\n")
            s.close()
        except OSError:
            failed += 1
        time.sleep(0.2)
    out.put({"took": took, "failed": failed})


def pct(values, q):
    if not values:
        return None
    v = sorted(values)
    return round(v[min(len(v) - 1, int(len(v) * q))] * 1000, 1)


def one_phase(name, seconds, flood, work, users):
    import attack
    server = attack.Server(work, name, "max_sessions = 4000", users, listen=f"[{SERVER_IP}]:0")
    addr = (SERVER_IP, server.addr[1])
    mp = multiprocessing.get_context("spawn")
    running, out = mp.Event(), mp.Queue()
    running.set()
    probe = mp.Process(target=device, args=(addr, attack.PASSWORD, running, out), daemon=True)
    probe.start()
    stop, lock = threading.Event(), threading.Lock()
    counts = {"connections": 0, "guesses_checked": 0, "guesses_refused": 0}
    threads = []
    if flood:
        threads = [threading.Thread(target=holder, args=(addr, stop, counts, lock), daemon=True)
                   for _ in range(HOLDERS)]
        threads += [threading.Thread(target=guesser, args=(addr, stop, counts, lock), daemon=True)
                    for _ in range(GUESSERS)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    running.clear()
    stop.set()
    logins = out.get(timeout=30)
    probe.join(10)
    for t in threads:
        t.join(15)
    report = {
        "login_p50_ms": pct(logins["took"], 0.5), "login_p99_ms": pct(logins["took"], 0.99),
        "logins": len(logins["took"]), "login_failed": logins["failed"],
    }
    if flood:
        report.update(counts)
        report["bans"] = server.metric("lakeftpd_bans_total")
        report["unauthenticated_shed"] = server.metric("lakeftpd_unauthenticated_shed_total")
        report["sessions_refused"] = server.metric("lakeftpd_sessions_refused_total")
    server.stop()
    return report


def main():
    work, seconds, users = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")
    sys.path.insert(0, HERE)
    quiet = one_phase("v6-quiet", seconds, False, work, users)
    rotation = one_phase("v6-rotation", seconds, True, work, users)
    print(json.dumps({"phase": "ipv6", "seconds": seconds, "quiet": quiet, "rotation": rotation}))


if __name__ == "__main__":
    main()
