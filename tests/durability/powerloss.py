#!/usr/bin/env python3
"""Power loss: "226 means durable" on a filesystem that loses everything not
fsync'd (lossyfs, strict POSIX: a name is durable only once its directory is).

    powerloss.py --bin LAKEFTPD --fs LOSSYFS --s3s-fs S3S_FS [--crashes N] [--seed S]
                 [--ext4 | --disk xfs] [--negative-control]

Homes and spool live on lossyfs; S3 (s3s-fs) on the real disk. With --ext4
they live on a real ext4 instead, on a loop device whose image is a file on
lossyfs (loopdisk.py): the image keeps only what the block layer flushed
(jbd2 commits, fsync, syncfs), so this tests what a FUSE filesystem cannot
see (the kernel never sends syncfs to a FUSE daemon). A crash point then also
unmounts ext4 and detaches the loop device while lossyfs is frozen, and
reboots on the image with e2fsck -p (a journal replay) and mount. --disk xfs
does the same with XFS (AL2023's root filesystem), checked with
xfs_repair -n after the mount that replays its log. Both first check that
no page cache survives a crash and that syncfs reaches the image.
--negative-control makes lossyfs ignore every fsync once the filesystem is
set up (a lying disk): the run must then report lost uploads and exit 1.

Each round starts lakeftpd (ack = disk and ack = s3 in turn, keep_local =
on), lets devices upload (active and passive; small and multi-MiB files; MKD
of a dated directory then STOR into it; STOR, APPE, REST+STOR, RNFR/RNTO),
and at a seeded random instant cuts the power: lossyfs drops what was not
durable and fails every later operation, lakeftpd is SIGKILLed, lossyfs
"reboots".
Devices are users of the configuration (homes made at start) and users of
a users file (`users = FILE`, homes made at their first login): one of
those is new in every round, so every round has a first login whose home
must be as durable as its uploads; one has `auto_mkdir = on` and stores
into nested folders it never made (and makes nested ones with one MKD).
After each restart:
- every file whose last operation was acknowledged (226, or 250 for RNTO)
  has exactly that content; a file whose operation was in flight has its
  old content or the new one, whole (no partial file under a final name);
- no temporary is left, the spool has no entry set aside as bad;
- once the spool is empty, every acknowledged upload is in the bucket,
  byte-identical (keys carry {uuid}: one object per upload).
Prints the figures as `name value` lines and exits 1 on any violation.
"""
import argparse
import ftplib
import hashlib
import io
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import loopdisk

TEMP_PREFIX = ".lakeftpd-tmp-"
ABSENT = None  # a path with no file


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


def control(sock, command):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(sock)
    s.sendall(command.encode() + b"\n")
    out = b""
    while not out.endswith(b"ok\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        out += chunk
    s.close()
    return out.decode()


class Model:
    """What the clients know. Per path: the acknowledged content (or ABSENT)
    and the contents an unacknowledged operation may have left."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}  # (user, vpath) -> bytes | ABSENT
        self.maybe = {}  # (user, vpath) -> [bytes | ABSENT]
        self.uploads = []  # (user, vpath at upload, sha256) of every 226
        self.acks = 0
        self.renames = 0

    def begin(self, path, content):
        with self.lock:
            self.maybe.setdefault(path, []).append(content)

    def ack(self, path, content, upload=True):
        with self.lock:
            self.acked[path] = content
            self.maybe[path] = []
            if upload:
                self.acks += 1
                self.uploads.append((path[0], path[1], hashlib.sha256(content).hexdigest()))

    def current(self, path):
        with self.lock:
            return self.acked.get(path, ABSENT)


# Multi-MiB bodies one round may upload, all devices together. Without a
# bound, what a round writes grows with the machine's speed (a faster CI
# machine filled the 1 GiB ext4 image to 82 % in 20 rounds); with it, a round
# writes at most this plus its small files, on any machine.
BIG_BYTES_PER_ROUND = 16 << 20


class RoundBudget:
    """Bytes of multi-MiB bodies the round has left, shared by its devices."""

    def __init__(self, limit):
        self.left = limit
        self.lock = threading.Lock()

    def take(self, size):
        with self.lock:
            if size > self.left:
                return False
            self.left -= size
            return True


class Device(threading.Thread):
    def __init__(self, user, port, model, rng, round_no, stop, password, budget, auto=False):
        super().__init__(daemon=True)
        self.user, self.port, self.model, self.rng = user, port, model, rng
        self.budget = budget
        self.round, self.stop, self.password = round_no, stop, password
        self.auto = auto  # the user has auto_mkdir = on
        self.logged_in = False
        self.error = None

    def body(self):
        rng = self.rng
        # Multi-MiB files now and then (lossyfs keeps everything in memory),
        # while the round's budget lasts.
        if rng.random() < 0.06:
            size = rng.randint(1, 3) << 20
            if self.budget.take(size):
                return rng.randbytes(size)
        return rng.randbytes(rng.randint(1, 16 << 10))

    def run(self):
        try:
            self.session()
        except (OSError, EOFError, ftplib.Error) as e:
            self.error = e

    def store(self, ftp, cmd, vpath, content, data, rest=None):
        path = (self.user, vpath)
        self.model.begin(path, content)
        reply = ftp.storbinary(f"{cmd} {vpath}", io.BytesIO(data), rest=rest)
        if reply.startswith("226"):
            self.model.ack(path, content)

    def mkd(self, ftp, vpath, made):
        """MKD of `vpath`; `made`: every directory it creates (with
        auto_mkdir, MKD a/b/c makes the parents too)."""
        for d in made:
            self.model.begin((self.user, d + "/"), b"dir")
        ftp.mkd(vpath)
        for d in made:
            self.model.ack((self.user, d + "/"), b"dir", upload=False)

    def auto_session(self, ftp, day):
        """auto_mkdir = on: STOR into folders that do not exist yet (a
        camera's dated tree), APPE, and a nested MKD."""
        rng = self.rng
        self.mkd(ftp, f"{day}/made/by/mkd", [day, f"{day}/made", f"{day}/made/by", f"{day}/made/by/mkd"])
        n = 0
        while not self.stop.is_set():
            n += 1
            if rng.random() < 0.8:
                data = self.body()
                # Folders no MKD made; the 226 covers them too.
                folder = f"/auto-r{self.round}/cam{n % 3}/{n // 4}"
                for d in [f"/auto-r{self.round}", f"/auto-r{self.round}/cam{n % 3}", folder]:
                    with self.model.lock:
                        if (self.user, d + "/") not in self.model.acked:
                            self.model.maybe.setdefault((self.user, d + "/"), []).append(b"dir")
                self.store(ftp, "STOR", f"{folder}/img{n}.jpg", data, data)
                for d in [f"/auto-r{self.round}", f"/auto-r{self.round}/cam{n % 3}", folder]:
                    self.model.ack((self.user, d + "/"), b"dir", upload=False)
            else:
                chunk = rng.randbytes(rng.randint(1, 4096))
                old = self.model.current((self.user, "/log.csv")) or b""
                self.store(ftp, "APPE", "/log.csv", old + chunk, chunk)
        ftp.close()

    def session(self):
        rng = self.rng
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", self.port, timeout=20)
        ftp.login(self.user, self.password)
        self.logged_in = True
        ftp.set_pasv(rng.random() < 0.5)
        day = f"/2026-12-{self.round % 28 + 1:02d}-r{self.round}"
        if self.auto:
            return self.auto_session(ftp, day)
        # The device that makes a dated directory and stores into it.
        self.mkd(ftp, day, [day])
        n = 0
        while not self.stop.is_set():
            n += 1
            op = rng.random()
            if op < 0.45:
                data = self.body()
                self.store(ftp, "STOR", f"{day}/m{n}.csv", data, data)
            elif op < 0.65:
                vpath = "/log.csv"
                chunk = rng.randbytes(rng.randint(1, 4096))
                old = self.model.current((self.user, vpath)) or b""
                self.store(ftp, "APPE", vpath, old + chunk, chunk)
            elif op < 0.85:
                # STOR part, then resume: REST n + STOR the rest.
                data = self.body()
                vpath = f"/resume-r{self.round}-{n}.bin"
                cut = rng.randint(0, len(data))
                self.store(ftp, "STOR", vpath, data[:cut], data[:cut])
                self.store(ftp, "STOR", vpath, data, data[cut:], rest=cut)
            else:
                data = self.body()
                src, dst = f"/ren-r{self.round}-{n}.tmpname", f"{day}/ren{n}.csv"
                self.store(ftp, "STOR", src, data, data)
                self.model.begin((self.user, src), ABSENT)
                self.model.begin((self.user, dst), data)
                ftp.sendcmd(f"RNFR {src}")
                reply = ftp.sendcmd(f"RNTO {dst}")
                if reply.startswith("250"):
                    self.model.ack((self.user, src), ABSENT, upload=False)
                    self.model.ack((self.user, dst), data, upload=False)
                    with self.model.lock:
                        self.model.renames += 1
        ftp.close()


class Lake:
    def __init__(self, args, work, mnt, s3port):
        self.args, self.work, self.mnt, self.s3port = args, work, mnt, s3port
        self.proc = None
        self.password = "pw-powerloss"
        out = subprocess.run([args.bin, "passwd"], input=self.password + "\n",
                             capture_output=True, text=True, check=True)
        self.hash = out.stdout.strip()
        self.users = [f"dev{i:02d}" for i in range(args.devices)]
        # Users of the users file: two from the first round on (`file00` with
        # auto_mkdir), and one more per round whose first login is that round.
        self.file_users = ["file00", "file01"]
        self.auto_users = {"file00"}

    def round_users(self, round_no):
        """The users file for a round: its new user's home does not exist
        before this round's first login."""
        self.file_users.append(f"new{round_no:03d}")
        return self.users + ["file00", "file01", f"new{round_no:03d}"]

    def write_users_file(self):
        path = os.path.join(self.work, "users.txt")
        with open(path + ".tmp", "w") as f:
            for u in self.file_users:
                auto = "auto_mkdir = on\n" if u in self.auto_users else ""
                f.write(f"[user {u}]\npassword = {self.hash}\npermissions = full\n{auto}")
        os.replace(path + ".tmp", path)
        return path

    def start(self, ack):
        conf = os.path.join(self.work, "lakeftpd.conf")
        users = "".join(f"[user {u}]\npassword = {self.hash}\npermissions = full\n" for u in self.users)
        with open(conf, "w") as f:
            f.write(f"""listen = 127.0.0.1:0
root = {self.mnt}/home
login_fail_delay = 100ms
spool = {self.mnt}/spool
s3_bucket = lake
s3_endpoint = http://127.0.0.1:{self.s3port}
s3_key = raw/{{user}}/{{path}}/{{uuid}}
s3_uploads = 2
s3_timeout = 20s
ack = {ack}
keep_local = on
users = {self.write_users_file()}
{users}""")
        self.log = open(os.path.join(self.work, "lake.log"), "ab")
        self.proc = subprocess.Popen([self.args.bin, "serve", "--config", conf, "--log-level", "info"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        end = time.time() + 15
        while time.time() < end:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.log.write(line)
            text = line.decode(errors="replace")
            if "listening on" in text and "127.0.0.1:" in text:
                self.port = int(text.rsplit("127.0.0.1:", 1)[1].split()[0].strip(",;)"))
                threading.Thread(target=self.drain, args=(self.proc, self.log), daemon=True).start()
                return
        self.log.flush()
        tail = open(os.path.join(self.work, "lake.log"), errors="replace").read().splitlines()[-15:]
        raise RuntimeError("lakeftpd did not start:\n" + "\n".join(tail))

    @staticmethod
    def drain(proc, log):
        for line in proc.stderr:
            log.write(line)
        log.flush()

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def sha_file(path, cache):
    st = os.stat(path)
    key = (path, st.st_size, st.st_mtime_ns)
    if key not in cache:
        with open(path, "rb") as f:
            cache[key] = hashlib.sha256(f.read()).hexdigest()
    return cache[key]


def read_or_absent(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return ABSENT
    except IsADirectoryError:
        return b"dir"


def user_renamed(model, path):
    return path[1].endswith(".tmpname")


def check_homes(lake, model, figures, problems, round_no):
    home = os.path.join(lake.mnt, "home")
    for path in sorted(set(model.acked) | set(model.maybe)):
        user, vpath = path
        acked = model.acked.get(path, ABSENT)
        allowed = [acked] + model.maybe.get(path, [])
        real = os.path.join(home, user, vpath.strip("/"))
        actual = b"dir" if vpath.endswith("/") and os.path.isdir(real) else (
            ABSENT if vpath.endswith("/") else read_or_absent(real))
        if actual not in allowed:
            if acked is not ABSENT and actual is ABSENT:
                figures["lost"] += 1
                problems.append(f"round {round_no}: {user}{vpath} acknowledged but missing")
            elif acked is ABSENT and user_renamed(model, path):
                figures["renames_undone"] += 1
                problems.append(f"round {round_no}: {user}{vpath} was renamed away (250) but is back")
            else:
                figures["corrupted"] += 1
                problems.append(f"round {round_no}: {user}{vpath} has {len(actual or b'')} bytes, "
                                f"none of the allowed versions ({[len(a or b'') for a in allowed]})")
        # What survived is what the next round builds on.
        model.acked[path] = actual
        model.maybe[path] = []
    for root, dirs, files in os.walk(home):
        for name in files + dirs:
            if name.startswith(TEMP_PREFIX):
                figures["temporaries_left"] += 1
                problems.append(f"round {round_no}: temporary left: {os.path.join(root, name)}")


def spool_entries(lake):
    spool = os.path.join(lake.mnt, "spool")
    try:
        names = os.listdir(spool)
    except FileNotFoundError:
        return [], []
    return [n for n in names if n.endswith(".meta")], [n for n in names if n.endswith(".bad")]


def check_bucket(lake, model, s3dir, figures, problems, cache, round_no, limit):
    end = time.time() + limit
    while spool_entries(lake)[0] and time.time() < end:
        time.sleep(0.1)
    pending, bad = spool_entries(lake)
    if pending:
        problems.append(f"round {round_no}: {len(pending)} spool entries not delivered in {limit}s")
    if bad:
        figures["spool_bad"] += len(bad)
        problems.append(f"round {round_no}: spool entries set aside: {bad}")
    objects = {}
    bucket = os.path.join(s3dir, "lake", "raw")
    for root, _, files in os.walk(bucket):
        for name in files:
            full = os.path.join(root, name)
            rel = os.path.relpath(root, bucket)  # user/vpath
            objects.setdefault(rel, []).append(sha_file(full, cache))
    missing = 0
    for user, vpath, sha in model.uploads:
        if sha not in objects.get(os.path.join(user, vpath.strip("/")), []):
            missing += 1
    figures["missing_in_s3"] = missing
    figures["objects"] = sum(len(v) for v in objects.values())
    if missing:
        problems.append(f"round {round_no}: {missing} acknowledged uploads not in the bucket")


def main():
    # A timeout's SIGTERM still cleans up (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--fs", required=True)
    ap.add_argument("--s3s-fs", required=True)
    ap.add_argument("--crashes", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--devices", type=int, default=6, help="users of the configuration")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--disk", choices=["ext4", "xfs"],
                    help="homes and spool on this filesystem on a loop device whose image is on lossyfs")
    ap.add_argument("--ext4", action="store_const", dest="disk", const="ext4", help="--disk ext4")
    ap.add_argument("--image-mib", type=int,
                    help="--disk: its size; default max(1024, 50 per crash point): a round "
                         "writes at most BIG_BYTES_PER_ROUND (16 MiB) of multi-MiB files plus "
                         "its small ones; lossyfs holds the pages written, twice")
    ap.add_argument("--negative-control", action="store_true",
                    help="lossyfs ignores fsync after setup: must fail")
    args = ap.parse_args()
    args.image_mib = args.image_mib or max(1024, 50 * args.crashes)
    # lossyfs's MAX_BYTES (8 GiB) bounds both versions of every file.
    if args.disk and 2 * args.image_mib > (8 << 10) - 512:
        ap.error(f"a {args.image_mib} MiB image does not fit lossyfs twice: fewer crash points")
    rng = random.Random(args.seed)
    started = time.time()
    work = tempfile.mkdtemp(prefix="d14-powerloss-")
    mnt, ctl, s3dir = os.path.join(work, "mnt"), os.path.join(work, "ctl.sock"), os.path.join(work, "s3")
    os.makedirs(mnt)
    os.makedirs(os.path.join(s3dir, "lake"))
    procs = []
    figures = {k: 0 for k in ["crash_points", "acknowledged", "first_logins", "renames", "lost", "corrupted",
                              "renames_undone",
                              "temporaries_left", "spool_bad", "missing_in_s3", "objects"]}
    if args.disk:
        # fsck_fixed: e2fsck -p fixed something beyond the journal (exit 1);
        # damage it cannot fix unattended stops the run (loopdisk.py).
        figures.update(journal_replays=0, fsck_fixed=0, disk_used_pct=0)
    problems = []
    disk, lake = None, None
    try:
        fs = subprocess.Popen([args.fs, mnt, ctl], stderr=open(os.path.join(work, "fs.log"), "wb"))
        procs.append(fs)
        end = time.time() + 10
        while not (os.path.ismount(mnt) and os.path.exists(ctl)) and time.time() < end:
            time.sleep(0.05)
        data = mnt
        if args.disk:
            disk = loopdisk.LoopDisk(mnt, os.path.join(work, "disk"), os.path.join(work, "disk.log"),
                                     args.image_mib, args.disk)
            disk.create(lambda: control(ctl, "crash"), lambda: control(ctl, "thaw"))
            data = disk.mountpoint
        if args.negative_control:
            subprocess.run(["sync", "-f", data], check=True)
            control(ctl, "ignore-fsync")
        s3port = free_port()
        env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIAPOWERLOSS", AWS_SECRET_ACCESS_KEY="powerloss-secret")
        s3 = subprocess.Popen([args.s3s_fs, "--host", "127.0.0.1", "--port", str(s3port),
                               "--access-key", env["AWS_ACCESS_KEY_ID"], "--secret-key",
                               env["AWS_SECRET_ACCESS_KEY"], s3dir],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(s3)
        wait_port(s3port)
        os.environ.update(env)
        lake = Lake(args, work, data, s3port)
        model = Model()
        cache = {}
        for r in range(args.crashes):
            ack = "disk" if r % 2 == 0 else "s3"
            users = lake.round_users(r)
            lake.start(ack)
            if r > 0:
                check_homes(lake, model, figures, problems, r)
                check_bucket(lake, model, s3dir, figures, problems, cache, r, 60)
            stop = threading.Event()
            budget = RoundBudget(BIG_BYTES_PER_ROUND)
            devices = [Device(u, lake.port, model, random.Random(rng.random()), r, stop, lake.password,
                              budget, auto=u in lake.auto_users)
                       for u in users]
            for d in devices:
                d.start()
            time.sleep(rng.uniform(0.1, 2.5))
            control(ctl, "crash")
            lake.kill()
            stop.set()
            for d in devices:
                d.join(30)
            if disk:
                disk.power_off()
            control(ctl, "thaw")
            if disk:
                fixed, replayed = disk.power_on()
                figures["fsck_fixed"] += fixed
                figures["journal_replays"] += replayed
                figures["disk_used_pct"] = disk.used_pct()
                if figures["disk_used_pct"] > loopdisk.FULL_PCT:
                    problems.append(f"round {r}: the disk is {figures['disk_used_pct']} % full: "
                                    "raise --image-mib (a full disk tests nothing)")
            figures["crash_points"] += 1
            figures["first_logins"] += sum(d.logged_in for d in devices if d.user.startswith("new"))
            errors = sorted({type(d.error).__name__ + ": " + str(d.error)[:60] for d in devices if d.error})
            used = f"; disk {figures['disk_used_pct']} % used" if disk else ""
            print(f"round {r}: ack={ack} crashed; acknowledged so far {model.acks}{used}; "
                  f"device errors {errors}", flush=True)
        lake.start("disk")
        check_homes(lake, model, figures, problems, args.crashes)
        check_bucket(lake, model, s3dir, figures, problems, cache, args.crashes, 120)
        lake.kill()
        figures["acknowledged"] = model.acks
        figures["renames"] = model.renames
        for line in control(ctl, "stats").splitlines():
            if line != "ok":
                print("fs_" + line.replace(" ", " ", 1))
                name, value = line.split()
                if args.disk and name == "fsyncs" and model.acks:
                    # Every cache flush the block layer sent the disk (jbd2
                    # or XFS log commits, fsync, syncfs; plus a few for
                    # setup, fsck and mounts), per acknowledged upload.
                    figures["disk_flushes_per_ack"] = round(int(value) / model.acks, 2)
    finally:
        if lake and lake.proc and lake.proc.poll() is None:
            lake.kill()
        if disk:
            left = disk.close()
            if left:
                problems.append(f"loop devices left attached: {left}")
        for p in procs[::-1]:
            p.kill()
            p.wait()
        subprocess.run(["umount", "-l", mnt], stderr=subprocess.DEVNULL)
        if not args.keep and not problems and sys.exc_info()[0] is None:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("work directory kept:", work)
    figures["seconds"] = round(time.time() - started)
    for k, v in figures.items():
        print(k, v)
    for p in problems[:50]:
        print("PROBLEM:", p)
    if args.keep:
        print("work directory:", work)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
