//! A barrier: what a reply waits for, made durable at once.
//!
//! The steps of an upload note what they changed (a file's bytes, a
//! directory's entries) in a `Barrier`; `flush` makes all of it durable.
//! How depends on the filesystem (`Flush`):
//! - `WholeFilesystem` (ext4, XFS, btrfs): one syncfs(2) of the
//!   filesystem, shared (group commit, durable::Group) by every caller whose
//!   changes came before it started. A syncfs writes every dirty file and
//!   directory of the filesystem and commits its journal with one cache
//!   flush, so 50 devices uploading into 50 folders (and the spool) pay one
//!   flush per batch instead of one fsync per file plus one per folder.
//! - `PerFile` (anything else: FUSE, NFS, overlayfs, ...): fsync(2) of each
//!   file, then of each directory (those shared per directory:
//!   durable::sync_dir_fd). syncfs(2) is not trusted there: the kernel sends
//!   FUSE_SYNCFS to virtiofs only (fs/fuse/virtio_fs.c sets `fc->sync_fs`),
//!   so on any other FUSE filesystem it returns 0 having promised nothing.
//! - `Nothing` (tmpfs, ramfs): memory; nothing there survives a power cut or
//!   a reboot, and their fsync and syncfs do nothing. No flush is made, and
//!   the log says so once (homes or a spool there lose every upload at a
//!   reboot).
//!
//! Errors: since Linux 5.8 syncfs(2) reports a write-back error that
//! happened on the filesystem since the descriptor was opened, to the first
//! caller only (errseq). An error could thus be reported to a flush that
//! covered someone else while the upload it hit flushes later and is told
//! nothing. So a failed syncfs fails every barrier that began before it
//! failed (`Started`, sampled before an upload's first byte is written),
//! whatever its own syncfs returns: a device may be asked to retry an
//! upload that was fine, never told a lost one is safe.

use crate::limits::{FLUSH_LINGER, MAX_PATH_DEPTH};
use crate::storage::durable;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

/// How a filesystem's changes are made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// One syncfs(2) for every change on the filesystem.
    WholeFilesystem,
    /// fsync(2) of each changed file and directory.
    PerFile,
    /// None: the filesystem lives in memory.
    Nothing,
}

/// `statfs.f_type` of the filesystems whose syncfs(2) is a flush of every
/// dirty page, inode and directory entry plus a journal commit (statfs(2),
/// linux/magic.h).
const WHOLE_FILESYSTEM_FLUSH: [(u32, &str); 3] = [
    (0xEF53, "ext4"),
    (0x5846_5342, "xfs"),
    (0x9123_683E, "btrfs"),
];

/// `statfs.f_type` of the filesystems that live in memory (linux/magic.h).
const IN_MEMORY: [(u32, &str); 2] = [(0x0102_1994, "tmpfs"), (0x8584_58F6, "ramfs")];

/// How the filesystem holding `fd` is flushed, and its name for the log.
pub fn flush_of(fd: impl AsFd) -> io::Result<(Flush, &'static str)> {
    let stat = rustix::fs::fstatfs(fd)?;
    // f_type is a signed or unsigned long by architecture; the magics are 32-bit.
    let magic = stat.f_type as u32;
    let named = |kinds: &[(u32, &'static str)]| {
        kinds
            .iter()
            .find(|(m, _)| *m == magic)
            .map(|(_, name)| *name)
    };
    Ok(if let Some(name) = named(&WHOLE_FILESYSTEM_FLUSH) {
        (Flush::WholeFilesystem, name)
    } else if let Some(name) = named(&IN_MEMORY) {
        (Flush::Nothing, name)
    } else {
        (Flush::PerFile, "other")
    })
}

/// syncfs(2) failures so far, on any filesystem (see the module comment).
static SYNCFS_FAILURES: AtomicU64 = AtomicU64::new(0);

/// When an upload began, against syncfs failures: taken before its first
/// byte is written.
#[derive(Debug, Clone, Copy)]
pub struct Started(u64);

impl Started {
    pub fn now() -> Started {
        Started(SYNCFS_FAILURES.load(Ordering::SeqCst))
    }
}

/// One filesystem's shared syncfs.
struct Filesystem {
    flush: Flush,
    /// Kept open for the process's life: syncfs reports write-back errors
    /// since the descriptor's open, so an old descriptor sees them all.
    fd: File,
    group: durable::Group,
}

impl Filesystem {
    fn sync(&self) -> io::Result<()> {
        self.group.run_lingering(FLUSH_LINGER, || {
            let result = durable::syncfs(&self.fd);
            if result.is_err() {
                SYNCFS_FAILURES.fetch_add(1, Ordering::SeqCst);
            }
            result
        })
    }
}

/// The filesystems seen so far, by device: a handful (homes, spool).
static FILESYSTEMS: LazyLock<Mutex<HashMap<u64, Arc<Filesystem>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Notes the filesystem holding the directory open as `dir` (an upload's
/// folder, the spool), so that flushes of files on it can be shared: a
/// file alone cannot name the directory to keep.
pub fn register(dir: impl AsFd) -> io::Result<()> {
    filesystem(dir).map(|_| ())
}

/// The filesystem holding `fd`, registered the first time a directory on
/// it is seen (`register`, or a directory flushed). `None` for a file on a
/// filesystem not seen yet: a file cannot name the directory to keep (a
/// kept file would pin its inode and bytes), so that one flush is an fsync.
fn filesystem(fd: impl AsFd) -> io::Result<Option<Arc<Filesystem>>> {
    let stat = rustix::fs::fstat(&fd)?;
    let dev = stat.st_dev;
    let mut known = FILESYSTEMS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(fs) = known.get(&dev) {
        return Ok(Some(fs.clone()));
    }
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::Directory {
        return Ok(None);
    }
    let (flush, name) = flush_of(&fd)?;
    match flush {
        Flush::WholeFilesystem => {
            log::info!("durability on device {dev:#x} ({name}): one shared syncfs per batch")
        }
        Flush::PerFile => {
            log::info!("durability on device {dev:#x} ({name}): fsync of each file and directory")
        }
        Flush::Nothing => log::warn!(
            "durability on device {dev:#x} ({name}): in memory, nothing there survives a power cut or a reboot; no flush is made"
        ),
    }
    let fd = top_of(fd, dev)?;
    let fs = Arc::new(Filesystem {
        flush,
        fd,
        group: durable::Group::default(),
    });
    known.insert(dev, fs.clone());
    Ok(Some(fs))
}

/// The topmost directory above `fd` on the same device: the descriptor kept
/// for the filesystem's syncfs, so it pins the mount's root (as a daemon's
/// working directory does), not a user's folder that may be removed.
fn top_of(fd: impl AsFd, dev: u64) -> io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    let mut top = File::from(rustix::io::fcntl_dupfd_cloexec(&fd, 0)?);
    for _ in 0..MAX_PATH_DEPTH {
        let up = match rustix::fs::openat(
            &top,
            "..",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(up) => File::from(up),
            // No permission to look above: keep what we have.
            Err(_) => break,
        };
        let (here, there) = (rustix::fs::fstat(&top)?, rustix::fs::fstat(&up)?);
        if there.st_dev != dev || (there.st_ino == here.st_ino && there.st_dev == here.st_dev) {
            break;
        }
        top = up;
    }
    Ok(top)
}

/// What must be durable before a reply.
pub struct Barrier {
    started: Started,
    /// Files whose bytes must be durable.
    files: Vec<File>,
    /// Directories whose entries must be durable.
    dirs: Vec<File>,
}

impl Barrier {
    pub fn new(started: Started) -> Barrier {
        Barrier {
            started,
            files: Vec::new(),
            dirs: Vec::new(),
        }
    }

    /// The bytes of `file` must be durable.
    pub fn file(&mut self, file: File) {
        self.files.push(file);
    }

    /// The entries of the directory open as `dir` must be durable.
    pub fn dir(&mut self, dir: File) {
        self.dirs.push(dir);
    }

    /// Makes every change noted durable (blocking: call it on the blocking
    /// pool). Per-file filesystems: files first, then directories, so an
    /// entry is never durable before its bytes; whole-filesystem ones: one
    /// shared syncfs each.
    pub fn flush(self) -> io::Result<()> {
        let mut whole: Vec<Arc<Filesystem>> = Vec::new();
        let mut note = |fs: Arc<Filesystem>| {
            if !whole.iter().any(|w| Arc::ptr_eq(w, &fs)) {
                whole.push(fs);
            }
        };
        for file in &self.files {
            match filesystem(file)?.map(|fs| (fs.flush, fs)) {
                Some((Flush::WholeFilesystem, fs)) => note(fs),
                Some((Flush::Nothing, _)) => {}
                _ => durable::fsync(file)?,
            }
        }
        for dir in &self.dirs {
            match filesystem(dir)?.map(|fs| (fs.flush, fs)) {
                Some((Flush::WholeFilesystem, fs)) => note(fs),
                Some((Flush::Nothing, _)) => {}
                _ => durable::sync_dir_fd(dir)?,
            }
        }
        for fs in &whole {
            fs.sync()?;
        }
        if whole.is_empty() {
            return Ok(());
        }
        unfailed_since(self.started, SYNCFS_FAILURES.load(Ordering::SeqCst))
    }
}

/// Ok unless a syncfs failed (anywhere) after `started` was taken.
fn unfailed_since(started: Started, failures_now: u64) -> io::Result<()> {
    if failures_now == started.0 {
        return Ok(());
    }
    Err(io::Error::other(
        "a flush of the filesystem failed while this was written: not known to be on disk",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn scratch(base: &std::path::Path, name: &str) -> std::path::PathBuf {
        let dir = base.join(format!("lakeftpd-barrier-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn tmpfs_and_the_root_filesystem_are_told_apart_by_their_magic() {
        // /dev/shm is tmpfs on every Linux this runs on: nothing to flush.
        let shm = File::open("/dev/shm").unwrap();
        assert_eq!(flush_of(&shm).unwrap(), (Flush::Nothing, "tmpfs"));
        // /proc is neither: per file (and nothing there is ever flushed).
        let proc_fs = File::open("/proc").unwrap();
        assert_eq!(flush_of(&proc_fs).unwrap().0, Flush::PerFile);
    }

    #[test]
    fn a_barrier_flushes_a_file_and_its_directory() {
        let dir = scratch(&std::env::temp_dir(), "flush");
        let mut file = File::create(dir.join("f")).unwrap();
        file.write_all(b"bytes").unwrap();
        let mut barrier = Barrier::new(Started::now());
        barrier.file(file);
        barrier.dir(File::open(&dir).unwrap());
        barrier.flush().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_syncfs_failure_fails_what_began_before_it() {
        // (The counter itself is not bumped here: other tests flush
        // concurrently and would fail with it.)
        let started = Started(7);
        unfailed_since(started, 7).unwrap();
        let e = unfailed_since(started, 8).unwrap_err();
        assert!(e.to_string().contains("not known to be on disk"), "{e}");
        unfailed_since(Started(8), 8).unwrap();
    }
}
