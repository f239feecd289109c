//! lossyfs: a FUSE filesystem that loses what was not made durable, like
//! LazyFS (Jepsen), for the power-loss test.
//!
//!     lossyfs MOUNTPOINT CONTROL_SOCKET
//!
//! Everything lives in memory, in two versions: what the kernel was told
//! (what reads see) and what would survive a power cut. The rules are strict
//! POSIX (fsync(2), "Calling fsync() does not necessarily ensure that the
//! entry in the directory containing the file has also reached disk. For
//! that an explicit fsync() on a file descriptor for the directory is also
//! needed"):
//! - a file's bytes (and size) become durable when the file is fsync'd
//!   (only the pages changed since the last fsync are copied: file.rs);
//! - a directory's entries (creations, removals, renames, hard links, in
//!   and out) become durable when that directory is fsync'd;
//! - attributes (mode, times) are kept as they are (not part of the test).
//!
//! The control socket takes one command per connection and answers `ok`:
//! - `crash`: from now on every operation fails with EIO (the power is off:
//!   nothing after this instant can become durable), and the state is
//!   replaced by its durable version: unsynced data and directory changes
//!   are gone, nodes no durable entry reaches are dropped;
//! - `thaw`: operations work again (the machine rebooted on what remained);
//! - `stats`: counters, one `name value` per line;
//! - `ignore-fsync`: from now on fsync and fsyncdir answer ok and make
//!   nothing durable (the negative control: a lying disk must fail the
//!   test).
//!
//! The power-loss test's disk mode (ext4, XFS) keeps a disk image here,
//! attached to a loop device: the loop driver turns the block layer's cache
//! flushes (REQ_PREFLUSH, FUA) into fsync of the image, so `crash` reverts
//! the image to its last flushed bytes, like a disk losing its write cache
//! (`stats`: `fsyncs` counts those flushes, `lost_pages` the unflushed
//! pages a crash reverted).
//!
//! Replies carry zero TTLs and files are opened without FOPEN_KEEP_CACHE, so
//! the kernel keeps nothing that a crash could contradict.

mod file;

use file::FileBody;
use fuser::{
    FileAttr, FileType, Filesystem, KernelConfig, MountOption, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow,
};
use libc::{EEXIST, EINVAL, EIO, EISDIR, ENOENT, ENOTDIR, ENOTEMPTY};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

const ROOT: u64 = 1;
const TTL: Duration = Duration::ZERO;
/// A bound on what the test may store, both versions of every file: the
/// test's files are small, the ext4 mode's disk image is 96 MiB (192 MiB
/// held).
const MAX_BYTES: u64 = 8 << 30;

enum Body {
    File(FileBody),
    Dir {
        entries: BTreeMap<OsString, u64>,
        durable: BTreeMap<OsString, u64>,
    },
    Symlink(PathBuf),
}

struct Node {
    body: Body,
    perm: u16,
    uid: u32,
    gid: u32,
    atime: SystemTime,
    mtime: SystemTime,
    ctime: SystemTime,
    nlink: u32,
    opens: u32,
}

#[derive(Default)]
struct Stats {
    crashes: u64,
    fsyncs: u64,
    dir_fsyncs: u64,
    lost_bytes: u64,
    lost_pages: u64,
    lost_entries: u64,
    dropped_nodes: u64,
    ignored_fsyncs: u64,
}

struct State {
    nodes: HashMap<u64, Node>,
    next: u64,
    frozen: bool,
    /// The negative control's lie: fsync answers ok and keeps nothing.
    ignore_fsync: bool,
    stats: Stats,
}

impl State {
    fn new() -> State {
        let mut nodes = HashMap::new();
        let now = SystemTime::now();
        nodes.insert(
            ROOT,
            Node {
                body: Body::Dir {
                    entries: BTreeMap::new(),
                    durable: BTreeMap::new(),
                },
                perm: 0o755,
                uid: 0,
                gid: 0,
                atime: now,
                mtime: now,
                ctime: now,
                nlink: 2,
                opens: 0,
            },
        );
        State {
            nodes,
            next: ROOT + 1,
            frozen: false,
            ignore_fsync: false,
            stats: Stats::default(),
        }
    }

    fn attr(&self, ino: u64) -> Option<FileAttr> {
        let node = self.nodes.get(&ino)?;
        let (kind, size) = match &node.body {
            Body::File(file) => (FileType::RegularFile, file.data.len() as u64),
            Body::Dir { entries, .. } => (FileType::Directory, entries.len() as u64),
            Body::Symlink(target) => (FileType::Symlink, target.as_os_str().len() as u64),
        };
        Some(FileAttr {
            ino,
            size,
            blocks: size.div_ceil(512),
            atime: node.atime,
            mtime: node.mtime,
            ctime: node.ctime,
            crtime: node.ctime,
            kind,
            perm: node.perm,
            nlink: node.nlink,
            uid: node.uid,
            gid: node.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
    }

    fn entries(&mut self, ino: u64) -> Result<&mut BTreeMap<OsString, u64>, i32> {
        match self.nodes.get_mut(&ino).map(|n| &mut n.body) {
            Some(Body::Dir { entries, .. }) => Ok(entries),
            Some(_) => Err(ENOTDIR),
            None => Err(ENOENT),
        }
    }

    fn child(&mut self, parent: u64, name: &OsStr) -> Result<u64, i32> {
        self.entries(parent)?.get(name).copied().ok_or(ENOENT)
    }

    fn add(
        &mut self,
        parent: u64,
        name: &OsStr,
        body: Body,
        mode: u32,
        req: &Request,
    ) -> Result<u64, i32> {
        if self.entries(parent)?.contains_key(name) {
            return Err(EEXIST);
        }
        let ino = self.next;
        self.next += 1;
        let is_dir = matches!(body, Body::Dir { .. });
        let now = SystemTime::now();
        self.nodes.insert(
            ino,
            Node {
                body,
                perm: (mode & 0o7777) as u16,
                uid: req.uid(),
                gid: req.gid(),
                atime: now,
                mtime: now,
                ctime: now,
                nlink: if is_dir { 2 } else { 1 },
                opens: 0,
            },
        );
        self.entries(parent)?.insert(name.to_owned(), ino);
        self.touch(parent);
        Ok(ino)
    }

    fn touch(&mut self, ino: u64) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.mtime = SystemTime::now();
            node.ctime = node.mtime;
        }
    }

    /// Drops one link to `ino`; frees it when nothing refers to it.
    fn unlinked(&mut self, ino: u64) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.nlink = node.nlink.saturating_sub(1);
            if matches!(node.body, Body::Dir { .. }) {
                node.nlink = 0;
            }
            node.ctime = SystemTime::now();
        }
        self.collect(ino);
    }

    /// A node with no links is still kept: a durable entry may refer to it
    /// (the unlink not yet synced), and a crash brings that entry back with
    /// the node's durable bytes. `crash` frees what nothing durable reaches.
    fn collect(&mut self, _ino: u64) {}

    /// The power cut: keep only what was durable.
    fn crash(&mut self) {
        self.frozen = true;
        self.stats.crashes += 1;
        let (mut lost_bytes, mut lost_pages, mut lost_entries) = (0, 0, 0);
        for node in self.nodes.values_mut() {
            match &mut node.body {
                Body::File(file) => {
                    let (bytes, pages) = file.revert();
                    lost_bytes += bytes;
                    lost_pages += pages;
                }
                Body::Dir { entries, durable } => {
                    if entries != durable {
                        let now: HashSet<_> = entries.iter().collect();
                        let then: HashSet<_> = durable.iter().collect();
                        lost_entries += now.symmetric_difference(&then).count() as u64;
                    }
                    *entries = durable.clone();
                }
                Body::Symlink(_) => {}
            }
            node.opens = 0;
        }
        self.stats.lost_bytes += lost_bytes;
        self.stats.lost_pages += lost_pages;
        self.stats.lost_entries += lost_entries;
        // What durable entries reach from the root survives, with its
        // link count recounted.
        let mut links: HashMap<u64, u32> = HashMap::new();
        let mut pending = vec![ROOT];
        let mut seen = HashSet::from([ROOT]);
        while let Some(dir) = pending.pop() {
            if let Some(Node {
                body: Body::Dir { entries, .. },
                ..
            }) = self.nodes.get(&dir)
            {
                for &child in entries.values() {
                    *links.entry(child).or_default() += 1;
                    if seen.insert(child)
                        && matches!(
                            self.nodes.get(&child).map(|n| &n.body),
                            Some(Body::Dir { .. })
                        )
                    {
                        pending.push(child);
                    }
                }
            }
        }
        let before = self.nodes.len();
        self.nodes.retain(|ino, _| seen.contains(ino));
        self.stats.dropped_nodes += (before - self.nodes.len()) as u64;
        for (ino, node) in self.nodes.iter_mut() {
            node.nlink = match node.body {
                Body::Dir { .. } => 2,
                _ => links.get(ino).copied().unwrap_or(1),
            };
        }
    }

    fn stored(&self) -> u64 {
        self.nodes
            .values()
            .map(|n| match &n.body {
                Body::File(file) => file.stored(),
                _ => 0,
            })
            .sum()
    }
}

struct Lossy(Arc<Mutex<State>>);

/// Locks the state and answers EIO while the power is off.
macro_rules! state {
    ($self:ident, $reply:ident) => {{
        let state = $self.0.lock().unwrap_or_else(|p| p.into_inner());
        if state.frozen {
            $reply.error(EIO);
            return;
        }
        state
    }};
}

fn time(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

impl Lossy {
    fn entry(&self, state: &State, ino: Result<u64, i32>, reply: ReplyEntry) {
        match ino.and_then(|ino| state.attr(ino).ok_or(ENOENT)) {
            Ok(attr) => reply.entry(&TTL, &attr, 0),
            Err(e) => reply.error(e),
        }
    }
}

impl Filesystem for Lossy {
    fn init(&mut self, _req: &Request<'_>, _config: &mut KernelConfig) -> Result<(), libc::c_int> {
        Ok(())
    }

    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        let mut state = state!(self, reply);
        let ino = state.child(parent, name);
        self.entry(&state, ino, reply);
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        let state = state!(self, reply);
        match state.attr(ino) {
            Some(attr) => reply.attr(&TTL, &attr),
            None => reply.error(ENOENT),
        }
    }

    fn setattr(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<u64>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<u32>,
        reply: ReplyAttr,
    ) {
        let mut state = state!(self, reply);
        let Some(node) = state.nodes.get_mut(&ino) else {
            return reply.error(ENOENT);
        };
        if let Some(size) = size {
            match &mut node.body {
                Body::File(file) if size <= MAX_BYTES => file.resize(size as usize),
                Body::File(_) => return reply.error(libc::EFBIG),
                _ => return reply.error(EISDIR),
            }
            node.mtime = SystemTime::now();
        }
        if let Some(mode) = mode {
            node.perm = (mode & 0o7777) as u16;
        }
        if let Some(uid) = uid {
            node.uid = uid;
        }
        if let Some(gid) = gid {
            node.gid = gid;
        }
        if let Some(t) = atime {
            node.atime = time(t);
        }
        if let Some(t) = mtime {
            node.mtime = time(t);
        }
        node.ctime = SystemTime::now();
        let attr = state.attr(ino).expect("node exists");
        reply.attr(&TTL, &attr);
    }

    fn readlink(&mut self, _req: &Request<'_>, ino: u64, reply: ReplyData) {
        let state = state!(self, reply);
        match state.nodes.get(&ino).map(|n| &n.body) {
            Some(Body::Symlink(target)) => reply.data(target.as_os_str().as_encoded_bytes()),
            Some(_) => reply.error(EINVAL),
            None => reply.error(ENOENT),
        }
    }

    fn mknod(
        &mut self,
        req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        if mode & libc::S_IFMT != libc::S_IFREG {
            return reply.error(libc::EPERM);
        }
        let mut state = state!(self, reply);
        let body = Body::File(FileBody::default());
        let ino = state.add(parent, name, body, mode & !umask, req);
        self.entry(&state, ino, reply);
    }

    fn mkdir(
        &mut self,
        req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let mut state = state!(self, reply);
        let body = Body::Dir {
            entries: BTreeMap::new(),
            durable: BTreeMap::new(),
        };
        let ino = state.add(parent, name, body, mode & !umask, req);
        if ino.is_ok() {
            if let Some(p) = state.nodes.get_mut(&parent) {
                p.nlink += 1;
            }
        }
        self.entry(&state, ino, reply);
    }

    fn unlink(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        let mut state = state!(self, reply);
        let ino = match state.child(parent, name) {
            Ok(ino) => ino,
            Err(e) => return reply.error(e),
        };
        if matches!(
            state.nodes.get(&ino).map(|n| &n.body),
            Some(Body::Dir { .. })
        ) {
            return reply.error(EISDIR);
        }
        let _ = state.entries(parent).map(|e| e.remove(name));
        state.touch(parent);
        state.unlinked(ino);
        reply.ok();
    }

    fn rmdir(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        let mut state = state!(self, reply);
        let ino = match state.child(parent, name) {
            Ok(ino) => ino,
            Err(e) => return reply.error(e),
        };
        match state.entries(ino) {
            Ok(entries) if !entries.is_empty() => return reply.error(ENOTEMPTY),
            Ok(_) => {}
            Err(e) => return reply.error(e),
        }
        let _ = state.entries(parent).map(|e| e.remove(name));
        if let Some(p) = state.nodes.get_mut(&parent) {
            p.nlink = p.nlink.saturating_sub(1);
        }
        state.touch(parent);
        state.unlinked(ino);
        reply.ok();
    }

    fn symlink(
        &mut self,
        req: &Request<'_>,
        parent: u64,
        link_name: &OsStr,
        target: &std::path::Path,
        reply: ReplyEntry,
    ) {
        let mut state = state!(self, reply);
        let ino = state.add(
            parent,
            link_name,
            Body::Symlink(target.to_owned()),
            0o777,
            req,
        );
        self.entry(&state, ino, reply);
    }

    fn rename(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        flags: u32,
        reply: ReplyEmpty,
    ) {
        let mut state = state!(self, reply);
        if flags & !libc::RENAME_NOREPLACE != 0 {
            return reply.error(EINVAL);
        }
        let ino = match state.child(parent, name) {
            Ok(ino) => ino,
            Err(e) => return reply.error(e),
        };
        let moving_dir = matches!(
            state.nodes.get(&ino).map(|n| &n.body),
            Some(Body::Dir { .. })
        );
        let replaced = match state.entries(newparent) {
            Ok(entries) => entries.get(newname).copied(),
            Err(e) => return reply.error(e),
        };
        if let Some(old) = replaced {
            if old == ino {
                return reply.ok();
            }
            if flags & libc::RENAME_NOREPLACE != 0 {
                return reply.error(EEXIST);
            }
            match (moving_dir, state.entries(old).map(|e| e.is_empty())) {
                (true, Ok(false)) => return reply.error(ENOTEMPTY),
                (true, Err(_)) => return reply.error(ENOTDIR),
                (false, Ok(_)) => return reply.error(EISDIR),
                _ => {}
            }
        }
        let _ = state.entries(parent).map(|e| e.remove(name));
        let _ = state
            .entries(newparent)
            .map(|e| e.insert(newname.to_owned(), ino));
        if moving_dir && parent != newparent {
            if let Some(p) = state.nodes.get_mut(&parent) {
                p.nlink = p.nlink.saturating_sub(1);
            }
            if replaced.is_none() {
                if let Some(p) = state.nodes.get_mut(&newparent) {
                    p.nlink += 1;
                }
            }
        }
        state.touch(parent);
        state.touch(newparent);
        if let Some(old) = replaced {
            state.unlinked(old);
        }
        reply.ok();
    }

    fn link(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        newparent: u64,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let mut state = state!(self, reply);
        match state.nodes.get(&ino).map(|n| &n.body) {
            Some(Body::Dir { .. }) => return reply.error(libc::EPERM),
            Some(_) => {}
            None => return reply.error(ENOENT),
        }
        let result = match state.entries(newparent) {
            Ok(entries) if entries.contains_key(newname) => Err(EEXIST),
            Ok(entries) => {
                entries.insert(newname.to_owned(), ino);
                Ok(ino)
            }
            Err(e) => Err(e),
        };
        if result.is_ok() {
            let node = state.nodes.get_mut(&ino).expect("checked above");
            node.nlink += 1;
            node.ctime = SystemTime::now();
            state.touch(newparent);
        }
        self.entry(&state, result, reply);
    }

    fn open(&mut self, _req: &Request<'_>, ino: u64, flags: i32, reply: ReplyOpen) {
        let mut state = state!(self, reply);
        let Some(node) = state.nodes.get_mut(&ino) else {
            return reply.error(ENOENT);
        };
        if flags & libc::O_TRUNC != 0 {
            if let Body::File(file) = &mut node.body {
                file.resize(0);
            }
        }
        node.opens += 1;
        reply.opened(0, 0);
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyData,
    ) {
        let state = state!(self, reply);
        match state.nodes.get(&ino).map(|n| &n.body) {
            Some(Body::File(FileBody { data, .. })) => {
                let start = (offset.max(0) as usize).min(data.len());
                let end = (start + size as usize).min(data.len());
                reply.data(&data[start..end]);
            }
            Some(_) => reply.error(EISDIR),
            None => reply.error(ENOENT),
        }
    }

    fn write(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        buf: &[u8],
        _write_flags: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyWrite,
    ) {
        let mut state = state!(self, reply);
        let end = offset.max(0) as u64 + buf.len() as u64;
        if end > MAX_BYTES || state.stored() + buf.len() as u64 > MAX_BYTES {
            return reply.error(libc::ENOSPC);
        }
        let Some(node) = state.nodes.get_mut(&ino) else {
            return reply.error(ENOENT);
        };
        match &mut node.body {
            Body::File(file) => {
                file.write(offset.max(0) as usize, buf);
                node.mtime = SystemTime::now();
                reply.written(buf.len() as u32);
            }
            _ => reply.error(EISDIR),
        }
    }

    fn flush(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        _fh: u64,
        _lock_owner: u64,
        reply: ReplyEmpty,
    ) {
        // close(2) makes nothing durable.
        reply.ok();
    }

    fn release(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        _flags: i32,
        _lock_owner: Option<u64>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        // Also while frozen: the crashed process's files are closed.
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(node) = state.nodes.get_mut(&ino) {
            node.opens = node.opens.saturating_sub(1);
        }
        state.collect(ino);
        reply.ok();
    }

    fn fsync(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let mut state = state!(self, reply);
        state.stats.fsyncs += 1;
        if state.ignore_fsync {
            state.stats.ignored_fsyncs += 1;
            return reply.ok();
        }
        match state.nodes.get_mut(&ino).map(|n| &mut n.body) {
            Some(Body::File(file)) => {
                file.sync();
                reply.ok();
            }
            // fsync(2) on a directory descriptor may arrive as FSYNC on
            // some kernels: treat it as FSYNCDIR.
            Some(Body::Dir { entries, durable }) => {
                durable.clone_from(entries);
                reply.ok();
            }
            Some(Body::Symlink(_)) => reply.ok(),
            None => reply.error(ENOENT),
        }
    }

    fn opendir(&mut self, _req: &Request<'_>, ino: u64, _flags: i32, reply: ReplyOpen) {
        let state = state!(self, reply);
        match state.nodes.get(&ino).map(|n| &n.body) {
            Some(Body::Dir { .. }) => reply.opened(0, 0),
            Some(_) => reply.error(ENOTDIR),
            None => reply.error(ENOENT),
        }
    }

    fn readdir(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        mut reply: ReplyDirectory,
    ) {
        let state = state!(self, reply);
        let Some(Node {
            body: Body::Dir { entries, .. },
            ..
        }) = state.nodes.get(&ino)
        else {
            return reply.error(ENOTDIR);
        };
        let mut all: Vec<(u64, FileType, OsString)> = vec![
            (ino, FileType::Directory, ".".into()),
            (ino, FileType::Directory, "..".into()),
        ];
        for (name, &child) in entries {
            let kind = match state.nodes.get(&child).map(|n| &n.body) {
                Some(Body::Dir { .. }) => FileType::Directory,
                Some(Body::Symlink(_)) => FileType::Symlink,
                _ => FileType::RegularFile,
            };
            all.push((child, kind, name.clone()));
        }
        for (i, (child, kind, name)) in all.into_iter().enumerate().skip(offset.max(0) as usize) {
            if reply.add(child, i as i64 + 1, kind, &name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        _fh: u64,
        _flags: i32,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsyncdir(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let mut state = state!(self, reply);
        state.stats.dir_fsyncs += 1;
        if state.ignore_fsync {
            state.stats.ignored_fsyncs += 1;
            return reply.ok();
        }
        match state.nodes.get_mut(&ino).map(|n| &mut n.body) {
            Some(Body::Dir { entries, durable }) => {
                durable.clone_from(entries);
                reply.ok();
            }
            Some(_) => reply.error(ENOTDIR),
            None => reply.error(ENOENT),
        }
    }

    fn statfs(&mut self, _req: &Request<'_>, _ino: u64, reply: ReplyStatfs) {
        let state = state!(self, reply);
        let free = (MAX_BYTES - state.stored().min(MAX_BYTES)) / 4096;
        reply.statfs(
            MAX_BYTES / 4096,
            free,
            free,
            1 << 20,
            1 << 20,
            4096,
            255,
            4096,
        );
    }

    fn create(
        &mut self,
        req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let mut state = state!(self, reply);
        let existing = state.child(parent, name).ok();
        let ino = match existing {
            Some(_) if flags & libc::O_EXCL != 0 => Err(EEXIST),
            Some(ino) => Ok(ino),
            None => {
                let body = Body::File(FileBody::default());
                state.add(parent, name, body, mode & !umask, req)
            }
        };
        let ino = match ino {
            Ok(ino) => ino,
            Err(e) => return reply.error(e),
        };
        let node = state.nodes.get_mut(&ino).expect("just found or made");
        if flags & libc::O_TRUNC != 0 {
            if let Body::File(file) = &mut node.body {
                file.resize(0);
            }
        }
        node.opens += 1;
        let attr = state.attr(ino).expect("just found or made");
        reply.created(&TTL, &attr, 0, 0, 0);
    }
}

fn control(state: Arc<Mutex<State>>, socket: PathBuf) {
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).expect("bind the control socket");
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut line = String::new();
        if BufReader::new(&stream).read_line(&mut line).is_err() {
            continue;
        }
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        let answer = match line.trim() {
            "crash" => {
                state.crash();
                "ok\n".to_string()
            }
            "thaw" => {
                state.frozen = false;
                "ok\n".to_string()
            }
            "ignore-fsync" => {
                state.ignore_fsync = true;
                "ok\n".to_string()
            }
            "stats" => {
                let s = &state.stats;
                format!(
                    "crashes {}\nfsyncs {}\ndir_fsyncs {}\nlost_bytes {}\nlost_pages {}\nlost_entries {}\ndropped_nodes {}\nignored_fsyncs {}\nnodes {}\nstored_bytes {}\nok\n",
                    s.crashes, s.fsyncs, s.dir_fsyncs, s.lost_bytes, s.lost_pages, s.lost_entries, s.dropped_nodes,
                    s.ignored_fsyncs, state.nodes.len(), state.stored()
                )
            }
            other => format!("unknown command {other:?}\n"),
        };
        drop(state);
        // Ignore errors: the caller may have gone.
        let _ = stream.write_all(answer.as_bytes());
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: lossyfs MOUNTPOINT CONTROL_SOCKET");
        std::process::exit(2);
    }
    let state = Arc::new(Mutex::new(State::new()));
    let socket = PathBuf::from(&args[2]);
    let for_control = state.clone();
    std::thread::spawn(move || control(for_control, socket));
    let options = [MountOption::FSName("lossyfs".into()), MountOption::RW];
    if let Err(e) = fuser::mount2(Lossy(state), &args[1], &options) {
        eprintln!("lossyfs: mount {}: {e}", args[1]);
        std::process::exit(1);
    }
}
