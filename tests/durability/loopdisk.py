"""A real ext4 (or XFS) on a disk that loses its write cache at a power cut,
for the power-loss test's disk mode (powerloss.py --ext4, --disk xfs).

The disk is a loop device whose backing file (`disk.img`) lives on lossyfs.
The loop driver turns the block layer's cache flushes (REQ_PREFLUSH, sent by
jbd2 commits, fsync and syncfs; FUA, which the loop queue does not claim, so
the block layer turns it into a flush after the write) into fsync(2) of the
backing file (drivers/block/loop.c, lo_req_flush), which lossyfs sees. Its
`crash` then reverts the image to the bytes of the last flush: a disk whose
volatile write cache is lost at the power cut, every unflushed write lost.
A real disk may also persist any subset of its unflushed writes, in any
order; this emulation never does (see docs/s3-and-durability.md).

A power cut, in order:
1. lossyfs `crash` (the caller): the image reverts, and every later
   operation on it fails with EIO, so nothing the kernel still writes
   (ext4's unmount, the loop device's teardown) can become durable;
2. `power_off`: unmount the filesystem (I/O errors are expected) and detach the loop
   device, waiting until it is really gone;
3. lossyfs `thaw` (the caller);
4. `power_on`: attach the image again (a new open of the backing file:
   lossyfs opens files without FOPEN_KEEP_CACHE, so the kernel drops the
   image's page cache and reads the reverted bytes; check_cache_dropped
   proves it), check the filesystem and mount: ext4, e2fsck -p (it replays
   the journal); XFS, xfs_repair -n refuses a dirty log, so a mount replays
   it, then xfs_repair -n must find nothing.

Loop devices are taken with `losetup --find --show` (whatever number is
free) and always released by `close` (also after a failure).
"""
import mmap
import os
import subprocess
import time

# Past this share of the filesystem in use, uploads may meet a full disk (452)
# and the run would stop testing durability: the caller calls it a failure.
FULL_PCT = 80
# The appliance's root volume is XFS on AL2023 (ext4 on other distributions);
# the server's shared flush (syncfs) is meant for both. Default options:
# `-T default` only because mke2fs.conf gives filesystems under 512 MiB the
# "small" type (1 KiB blocks); a real root volume has 4 KiB blocks.
MKFS = {"ext4": ["mkfs.ext4", "-q", "-T", "default"], "xfs": ["mkfs.xfs", "-q"]}
DETACH_LIMIT = 20.0  # seconds for a detached loop device to disappear


def run(cmd, check=True):
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=120)


class LoopDisk:
    def __init__(self, lossy_mnt, mountpoint, log_path, image_mib, fs_type):
        self.fs_type = fs_type
        self.image = os.path.join(lossy_mnt, "disk.img")
        self.image_bytes = image_mib << 20
        self.mountpoint = mountpoint
        self.log = open(log_path, "a")
        self.loop = None
        self.mounted = False
        os.makedirs(mountpoint, exist_ok=True)

    def note(self, what, out):
        self.log.write(f"== {what}\n{out}\n")
        self.log.flush()

    def attach(self):
        self.loop = run(["losetup", "--find", "--show", self.image]).stdout.strip()
        self.note("losetup", self.loop)

    def create(self, crash, thaw):
        """The image (made durable: fsync), its loop device, the page-cache
        check, mkfs, mount, the syncfs check (two crashes of lossyfs)."""
        with open(self.image, "wb") as f:
            f.truncate(self.image_bytes)
            os.fsync(f.fileno())
        fd = os.open(os.path.dirname(self.image), os.O_RDONLY)  # its name too
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self.attach()
        self.check_cache_dropped(crash, thaw)
        self.note("mkfs", run(MKFS[self.fs_type] + [self.loop]).stderr)
        self.mount()
        self.check_syncfs(crash, thaw)

    def used_pct(self):
        st = os.statvfs(self.mountpoint)
        return round(100 * (st.f_blocks - st.f_bfree) / st.f_blocks)

    def mount(self):
        run(["mount", "-t", self.fs_type, self.loop, self.mountpoint])
        self.mounted = True

    def power_off(self):
        """Unmount and detach while lossyfs is frozen (see the top comment)."""
        self.power_off_fs()
        if self.loop:
            loop, self.loop = self.loop, None
            run(["losetup", "-d", loop], check=False)
            self.wait_detached(loop)

    def power_off_fs(self):
        if self.mounted:
            out = run(["umount", self.mountpoint], check=False)
            if out.returncode != 0:
                self.note("umount failed, lazy umount", out.stderr)
                run(["umount", "-l", self.mountpoint], check=False)
            self.mounted = False

    @staticmethod
    def wait_detached(loop):
        """losetup -d of a busy device only sets autoclear: wait until the
        device has no backing file any more."""
        backing = f"/sys/block/{os.path.basename(loop)}/loop/backing_file"
        end = time.time() + DETACH_LIMIT
        while os.path.exists(backing):
            if time.time() > end:
                raise RuntimeError(f"{loop} still attached {DETACH_LIMIT}s after losetup -d")
            time.sleep(0.05)

    def power_on(self):
        """Attach, check, mount. Returns (fixed, replayed): whether the check
        repaired something beyond the journal, whether the journal (log)
        was replayed. Raises on damage the check cannot repair unattended."""
        self.attach()
        fixed, replayed = self.check_ext4() if self.fs_type == "ext4" else self.check_xfs()
        self.mount()
        return fixed, replayed

    def fsck(self, cmd):
        out = run(cmd + [self.loop], check=False)
        text = out.stdout + out.stderr
        self.note(f"{' '.join(cmd)}: exit {out.returncode}", text)
        return out.returncode, text

    def check_ext4(self):
        """e2fsck -p: exit 0 clean (after a journal replay too), 1 fixed,
        >= 4 not fixable unattended (e2fsck(8))."""
        status, text = self.fsck(["e2fsck", "-p"])
        if status >= 4:
            raise RuntimeError(f"e2fsck -p {self.loop}: exit {status}: {text}")
        return status == 1, "recovering journal" in text

    def check_xfs(self):
        """xfs_repair -n: exit 0 clean, 1 corruption. It does not read a
        dirty log (it says so, and then exits 1 for what the log would
        fix): a mount replays the log, then it must find nothing."""
        status, text = self.fsck(["xfs_repair", "-n"])
        replayed = "valuable metadata changes in a log" in text
        if replayed:
            self.mount()
            self.power_off_fs()
            status, text = self.fsck(["xfs_repair", "-n"])
        if status != 0:
            raise RuntimeError(f"xfs_repair -n {self.loop}: exit {status}: {text}")
        return False, replayed

    def close(self):
        """Best effort, for `finally`: nothing mounted, no loop device left.
        Returns what `losetup -j` still lists (nothing, normally)."""
        try:
            self.power_off()
        except (RuntimeError, subprocess.SubprocessError) as e:
            self.note("close", str(e))
        for line in run(["losetup", "-j", self.image], check=False).stdout.splitlines():
            run(["losetup", "-d", line.split(":")[0]], check=False)
        return run(["losetup", "-j", self.image], check=False).stdout.split()

    def check_cache_dropped(self, crash, thaw):
        """Before mkfs: a flushed block survives a crash and an unflushed one
        does not, read back through a new loop device with O_DIRECT (past
        the loop device's cache: fails if the image file's page cache
        survived the crash) and buffered (fails if the loop device's own
        cache survived the detach: e2fsck and mount read through it). Else
        the test would see bytes no disk kept."""
        flushed, unflushed = b"F" * 4096, b"U" * 4096
        self.write_block(flushed, flush=True)
        self.write_block(unflushed, flush=False)
        if self.read_block(direct=True) != unflushed or self.read_block(direct=False) != unflushed:
            raise RuntimeError("loop device: a write is not read back")
        crash()
        self.power_off()
        thaw()
        self.attach()
        for direct in (True, False):
            got = self.read_block(direct)
            if got != flushed:
                raise RuntimeError(f"after a crash the image reads {got[:8]!r}... (O_DIRECT {direct}), "
                                   "not the flushed block: a page cache survived the crash")
        self.note("check_cache_dropped", "ok: the unflushed block is gone after the crash")

    def check_syncfs(self, crash, thaw):
        """On the fresh filesystem: a file written then covered by syncfs(2)
        (`sync -f`) survives a crash, one written after it loses its bytes:
        the shared flush the server may use reaches the image as a flush."""
        synced, unsynced = os.path.join(self.mountpoint, "synced"), os.path.join(self.mountpoint, "unsynced")
        with open(synced, "wb") as f:
            f.write(b"S" * 10000)
        run(["sync", "-f", self.mountpoint])
        with open(unsynced, "wb") as f:
            f.write(b"U" * 10000)
        crash()
        self.power_off()
        thaw()
        self.power_on()
        kept = open(synced, "rb").read() if os.path.exists(synced) else None
        lost = open(unsynced, "rb").read() if os.path.exists(unsynced) else b""
        if kept != b"S" * 10000 or b"U" in lost:
            raise RuntimeError(f"after syncfs and a crash: synced file {len(kept or b'')} bytes, "
                               f"unsynced file {len(lost)} bytes (expected 10000 and none)")
        for path in (synced, unsynced):
            if os.path.exists(path):
                os.unlink(path)
        run(["sync", "-f", self.mountpoint])
        self.note("check_syncfs", "ok: syncfs made a file durable, a later one lost its bytes")

    def write_block(self, data, flush):
        fd = os.open(self.loop, os.O_WRONLY | os.O_DIRECT)
        try:
            buf = mmap.mmap(-1, len(data))  # page-aligned, as O_DIRECT needs
            buf.write(data)
            os.pwrite(fd, buf, 0)
            if flush:
                os.fsync(fd)  # blkdev_fsync: a REQ_PREFLUSH to the loop device
        finally:
            os.close(fd)

    def read_block(self, direct):
        fd = os.open(self.loop, os.O_RDONLY | (os.O_DIRECT if direct else 0))
        try:
            buf = mmap.mmap(-1, 4096)
            os.preadv(fd, [buf], 0)
            return bytes(buf)
        finally:
            os.close(fd)
