//! Changes that survive a power cut, in one place. Every path that must
//! outlive the power calls these (uploads, the spool, homes, MKD and
//! auto_mkdir levels, the users cache); storage/barrier.rs flushes uploads
//! and spool entries with its counted `fsync`/`syncfs` and its `Group`;
//! nothing else fsyncs.
//!
//! A new name (a directory made, a file renamed) is on disk only once the
//! directory holding it is fsync'd: fsync(2), "Calling fsync() does not
//! necessarily ensure that the entry in the directory containing the file
//! has also reached disk. For that an explicit fsync() on a file descriptor
//! for the directory is also needed." ext4 often hides a missing directory
//! fsync; the contract must not depend on it (the power-loss test in
//! tests/durability/ runs on a filesystem that loses every unsynced entry).
//!
//! Directory syncs are shared (group commit, `sync_dir_fd`): concurrent
//! uploads that renamed into the same directory wait on one fsync of it
//! that started after their rename, instead of one fsync each. A flush
//! costs a round trip to the volume (EBS: a journal commit and a cache
//! flush), so at 50 devices this is most of the disk's work per upload.

use crate::sys::random;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};

/// Flush syscalls made so far (fsync of a file or directory, syncfs of a
/// filesystem: each a round trip to the volume), for the `flushes` metric.
static FLUSHES: AtomicU64 = AtomicU64::new(0);

pub fn flushes() -> u64 {
    FLUSHES.load(Ordering::Relaxed)
}

/// fsync(2) of `fd`, counted.
pub fn fsync(fd: impl AsFd) -> io::Result<()> {
    FLUSHES.fetch_add(1, Ordering::Relaxed);
    rustix::fs::fsync(fd).map_err(io::Error::from)
}

/// syncfs(2) of the filesystem holding `fd`, counted.
pub fn syncfs(fd: impl AsFd) -> io::Result<()> {
    FLUSHES.fetch_add(1, Ordering::Relaxed);
    rustix::fs::syncfs(fd).map_err(io::Error::from)
}

/// fsync of a directory: its entries (creations, removals, renames) are
/// durable once this returns. Shared with concurrent callers on the same
/// directory (see `sync_dir_fd`).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    sync_dir_fd(&File::open(dir)?)
}

/// fsync of the directory open as `dir`, shared: a caller whose change is
/// made before this call returns once an fsync of that directory that
/// *started* after the call has succeeded. One caller at a time runs it
/// (the leader); those arriving meanwhile wait and the next leader's single
/// fsync covers all of them. A failed fsync is not shared: each waiter then
/// tries again itself, so every caller sees its own error or a success.
/// Blocking: call it on the blocking pool.
pub fn sync_dir_fd(dir: impl AsFd) -> io::Result<()> {
    let stat = rustix::fs::fstat(&dir)?;
    let key = (stat.st_dev, stat.st_ino);
    let group = Groups::join(key);
    let result = group.run(|| fsync(&dir));
    Groups::leave(key, group);
    result
}

/// The state of one group commit (a directory's fsyncs, or a filesystem's
/// syncfs in storage/barrier.rs).
#[derive(Default)]
struct GroupState {
    /// Callers so far; a caller's number is its ticket.
    requested: u64,
    /// Every ticket up to this one is covered by a successful fsync.
    synced: u64,
    /// An fsync is running.
    running: bool,
    /// Flushes run for this group (for the tests: fewer than callers).
    runs: u64,
    /// Callers the last successful run covered: more than one means others
    /// are landing at the same time, and a leader that lingers gathers more.
    last_batch: u64,
}

/// Callers that share flushes: each returns once a flush that started
/// after it arrived has succeeded.
#[derive(Default)]
pub struct Group {
    state: Mutex<GroupState>,
    done: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere cannot leave these counters half-updated.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Group {
    /// Returns once a run of `flush` that *started* after this call has
    /// succeeded: one caller at a time runs it (the leader); those arriving
    /// meanwhile wait, and the next leader's single run covers all of them.
    /// A failed run is not shared: each waiter then runs it itself.
    pub fn run(&self, flush: impl Fn() -> io::Result<()>) -> io::Result<()> {
        self.run_lingering(std::time::Duration::ZERO, flush)
    }

    /// `run`, and when the last run covered more than one caller (others
    /// are landing too), the leader first waits `linger` for more to join
    /// its run: fewer, larger flushes (PostgreSQL's `commit_delay`). A
    /// lone caller never waits.
    pub fn run_lingering(
        &self,
        linger: std::time::Duration,
        flush: impl Fn() -> io::Result<()>,
    ) -> io::Result<()> {
        let mut state = lock(&self.state);
        state.requested += 1;
        let ticket = state.requested;
        loop {
            if state.synced >= ticket {
                return Ok(());
            }
            if !state.running {
                // Lead: one flush for every ticket handed out before it starts.
                state.running = true;
                state.runs += 1;
                if state.last_batch > 1 && !linger.is_zero() {
                    drop(state);
                    std::thread::sleep(linger);
                    state = lock(&self.state);
                }
                let covering = state.requested;
                let batch = covering - state.synced;
                drop(state);
                let result = flush();
                state = lock(&self.state);
                state.running = false;
                if result.is_ok() {
                    state.synced = state.synced.max(covering);
                    state.last_batch = batch;
                }
                self.done.notify_all();
                return result;
            }
            state = self.done.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// The directories being synced, by (device, inode): every descriptor of a
/// directory shares its group. Entries live only while a caller holds them,
/// so the map stays as small as the number of directories in flight.
struct Groups;

/// A directory's identity: (device, inode).
type DirKey = (u64, u64);

static GROUPS: LazyLock<Mutex<HashMap<DirKey, Arc<Group>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

impl Groups {
    fn join(key: DirKey) -> Arc<Group> {
        lock(&GROUPS).entry(key).or_default().clone()
    }

    /// Drops the caller's handle; the last one out removes the entry. Both
    /// happen under the map's lock, like the clone in `join`, so a count
    /// of one means nobody else holds the group.
    fn leave(key: DirKey, group: Arc<Group>) {
        let mut groups = lock(&GROUPS);
        drop(group);
        if groups.get(&key).is_some_and(|g| Arc::strong_count(g) == 1) {
            groups.remove(&key);
        }
    }
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// mkdir(2), durably: the new directory (its own `.` and `..`) and its entry
/// in the parent.
pub fn create_dir(path: &Path) -> io::Result<()> {
    let parent = File::open(parent(path))?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no directory name"))?;
    create_dir_at(&parent, name, 0o755)
}

/// mkdirat(2) of `name` in the directory open as `parent`, durably: the
/// new directory is fsync'd, then its entry in the parent (a shared sync).
/// The name is never followed (MKD and auto_mkdir levels act on a parent
/// opened beneath the home: storage/beneath.rs).
pub fn create_dir_at(parent: impl AsFd, name: &std::ffi::OsStr, mode: u32) -> io::Result<()> {
    use rustix::fs::{Mode, OFlags};
    rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(mode))?;
    let made = rustix::fs::openat(
        &parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    fsync(&made)?;
    sync_dir_fd(&parent)
}

/// `create_dir_all`, durably: every directory it creates is synced into its
/// parent. Returns whether anything was created. Homes (at start and at a
/// users-file user's first login), the spool and the users cache's
/// directory are made with it.
pub fn create_dir_all(path: &Path) -> io::Result<bool> {
    if path.is_dir() {
        return Ok(false);
    }
    let mut missing = Vec::new();
    let mut at = path;
    while !at.exists() {
        missing.push(at);
        match at.parent() {
            Some(p) if !p.as_os_str().is_empty() => at = p,
            _ => break,
        }
    }
    for dir in missing.into_iter().rev() {
        match create_dir(dir) {
            Ok(()) => {}
            // Made concurrently by someone else: sync it in all the same.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {
                sync_dir(parent(dir))?
            }
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// A temporary beside `path`: hidden, random, never a name a reader takes
/// for the file.
fn temporary_for(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent(path).join(format!(
        "{}{name}.{}",
        crate::limits::TEMP_PREFIX,
        random::hex_name::<8>()
    ))
}

/// Replaces (or creates) `path` with `bytes`, whole or not at all: write a
/// temporary with `mode`, fsync it, rename it over `path`, fsync the
/// directory. A crash leaves the old content or the new, never a torn
/// file; on error the temporary is removed.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    write_file_with(path, mode, |out| out.write_all(bytes))
}

/// `write_file`, the content written by `fill` (a copy from another file).
pub fn write_file_with(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let temp = temporary_for(path);
    let result = (|| {
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)?;
        fill(&mut out)?;
        fsync(&out)?;
        drop(out);
        fs::rename(&temp, path)?;
        sync_dir(parent(path))
    })();
    if result.is_err() {
        // Ignore errors: the temporary may not exist (or was renamed
        // before the directory sync failed); the error that matters is
        // returned.
        let _ = fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("lakeftpd-durable-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn create_dir_all_makes_each_level() {
        let dir = scratch("all");
        assert!(create_dir_all(&dir.join("a/b/c")).unwrap());
        assert!(dir.join("a/b/c").is_dir());
        assert!(
            !create_dir_all(&dir.join("a/b/c")).unwrap(),
            "already there"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn create_dir_refuses_existing() {
        let dir = scratch("one");
        create_dir(&dir.join("x")).unwrap();
        let e = create_dir(&dir.join("x")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn write_file_replaces_whole_and_leaves_no_temporary() {
        let dir = scratch("write");
        let path = dir.join("users.cache");
        write_file(&path, b"one", 0o600).unwrap();
        write_file(&path, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_fill_leaves_nothing() {
        let dir = scratch("fill");
        let made = write_file_with(&dir.join("f"), 0o600, |_| Err(io::Error::other("disk")));
        assert!(made.is_err());
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn callers_arriving_during_an_fsync_share_the_next_one() {
        // A leader's fsync is running (set by hand); 8 callers arrive and
        // wait; when it ends, one of them runs a single fsync for all 8
        // (8 without group commit).
        let dir = scratch("share");
        let group = Arc::new(Group::default());
        lock(&group.state).running = true;
        let callers: Vec<_> = (0..8)
            .map(|_| {
                let (group, dir) = (group.clone(), dir.clone());
                std::thread::spawn(move || {
                    let dir = File::open(&dir).unwrap();
                    group
                        .run(|| rustix::fs::fsync(&dir).map_err(io::Error::from))
                        .unwrap()
                })
            })
            .collect();
        while lock(&group.state).requested < 8 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        lock(&group.state).running = false;
        group.done.notify_all();
        for c in callers {
            c.join().unwrap();
        }
        assert_eq!(lock(&group.state).runs, 1, "one fsync for 8 callers");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn concurrent_syncs_of_one_directory_share_fsyncs() {
        // 16 threads × 20 syncs of one directory: every call returns, and
        // the group is gone from the map afterwards (it is bounded by the
        // directories in flight).
        let dir = scratch("group");
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let dir = dir.clone();
                std::thread::spawn(move || {
                    let fd = File::open(&dir).unwrap();
                    for _ in 0..20 {
                        sync_dir_fd(&fd).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(&dir).unwrap();
        assert!(!lock(&GROUPS).contains_key(&(meta.dev(), meta.ino())));
        fs::remove_dir_all(&dir).unwrap();
    }
}
