//! Durable uploads. A file is written to a hidden temporary in the target's
//! directory, made durable (`sync`), renamed into place, and the rename made
//! durable (`place` notes it in a barrier that the caller flushes, with the
//! spool entry when there is one) — only then may the session reply 226.
//! Both flushes are shared with concurrent uploads (storage/barrier.rs: one
//! syncfs per batch on ext4/XFS, else fsync of the file and of its
//! directory). The bytes are durable *before* the rename is made, so a power
//! cut never leaves a name holding a file whose bytes were lost. Until
//! `place`, dropping the upload (a dropped connection, ABOR, a timeout, an
//! error) removes the temporary, so no partial file ever appears under the
//! final name.
//!
//! Everything is done relative to the target's directory, opened beneath
//! the home by the jail (`jail::open_dir`): the temporary is created, the
//! existing file read (APPE, REST + STOR) and the rename made with *at
//! calls on that descriptor, never by a path a symlink could redirect.
//!
//! Each upload's CRC64NVME (S3's default checksum) is computed over the bytes
//! as they are written — including a prefix copied for APPE or REST — so the
//! delivery never reads the file for it.

use crate::limits::TEMP_PREFIX;
use crate::limits::WRITEBACK_CHUNK;
use crate::storage::barrier::{self, Barrier, Started};
use crate::storage::jail;
use crate::sys::random;
use rustix::fs::{Advice, Mode, OFlags};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Held while an upload is renamed into its final name, and while
/// `keep_local = off` checks that a name still holds the delivered file and
/// removes it (delivery/mod.rs, `remove_home_copy`): without it, a newer
/// upload renamed over the name between the check and the removal was
/// removed instead (seen as `451 local error while queueing for S3` when a
/// device stored the same name again at once). Held for one rename, or one
/// stat and one unlink: never across a flush.
pub static PLACING: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub struct TempUpload {
    /// The user's home: the directory is reopened beneath it to commit.
    home: PathBuf,
    temp: PathBuf,
    target: PathBuf,
    /// `None` only while a write runs on the blocking pool.
    file: Option<File>,
    /// Bytes in the temporary so far.
    pub size: u64,
    /// CRC64NVME of those bytes, computed as they are written.
    crc: crc64fast_nvme::Digest,
    /// The bytes written so far are durable (`sync` ran after the last
    /// write): `commit` need not fsync the file again.
    synced: bool,
    /// Bytes up to here were handed to writeback (`WRITEBACK_CHUNK`).
    written_back: u64,
    /// Before the first byte: a flush failure after this fails the upload
    /// (storage/barrier.rs).
    started: Started,
    committed: bool,
}

/// An upload renamed into its final name, not yet durable there: `pending`
/// holds its directory, and the spool entry joins it before one flush.
pub struct Placed {
    pub path: PathBuf,
    pub pending: Barrier,
}

fn new_crc() -> crc64fast_nvme::Digest {
    crc64fast_nvme::Digest::new()
}

/// A fresh temporary name beside `target`.
fn temp_name(target: &Path) -> PathBuf {
    target.with_file_name(format!("{TEMP_PREFIX}{}", random::hex_name::<8>()))
}

impl TempUpload {
    /// Creates the temporary for `target`. With `prefix`, the temporary first
    /// receives that many bytes of the existing target (APPE: all of it;
    /// REST n + STOR: the first n), so appending and resuming are as atomic
    /// as a plain store.
    /// `target` is a path the jail produced inside `home`.
    pub async fn create(
        home: PathBuf,
        target: PathBuf,
        prefix: Option<u64>,
    ) -> io::Result<TempUpload> {
        let started = Started::now();
        smol::unblock(move || {
            let temp = temp_name(&target);
            let (dir, name) = split(&target)?;
            let name = name.to_os_string();
            let dir = jail::open_dir(&home, dir)?;
            // Before the first flush of its bytes (`sync`): shared from then on.
            barrier::register(&dir)?;
            let temp_file = name_of(&temp)?;
            let mut file = File::from(
                rustix::fs::openat(
                    &dir,
                    temp_file,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o640),
                )
                .map_err(io::Error::from)?,
            );
            let mut upload = TempUpload {
                home,
                temp,
                target,
                file: None,
                size: 0,
                crc: new_crc(),
                synced: false,
                written_back: 0,
                started,
                committed: false,
            };
            if let Some(limit) = prefix {
                // SECURITY: the existing file is opened in its directory
                // without following a symlink, and only a regular file is
                // copied (never a device or a file outside the home).
                let existing = rustix::fs::openat(
                    &dir,
                    &name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| match e {
                    rustix::io::Errno::LOOP => {
                        io::Error::new(io::ErrorKind::PermissionDenied, "the target is a symlink")
                    }
                    e => e.into(),
                })
                .and_then(|fd| jail::regular(File::from(fd)));
                match existing {
                    Ok(existing) => {
                        use std::io::Read;
                        let mut existing = existing.take(limit);
                        let mut buf = vec![0u8; crate::limits::TRANSFER_BUFFER];
                        loop {
                            let n = match existing.read(&mut buf) {
                                Ok(0) => break,
                                Ok(n) => n,
                                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                                Err(e) => return Err(e),
                            };
                            file.write_all(&buf[..n])?;
                            upload.crc.write(&buf[..n]);
                            upload.size += n as u64;
                        }
                    }
                    // APPE to a missing file creates it (RFC 959 §4.1.3).
                    Err(e) if e.kind() == io::ErrorKind::NotFound && limit == u64::MAX => {}
                    Err(e) => return Err(e),
                }
            }
            upload.file = Some(file);
            Ok(upload)
        })
        .await
    }

    /// Appends `buf`. This runs on the calling (executor) thread: a write
    /// lands in the page cache and costs a copy, while a hop to the blocking
    /// pool per chunk cost more than the copy (futex wake-ups, no overlap
    /// with the socket reads; measured with strace in tests/bench). What
    /// can block for long — fsync — stays on the blocking pool (`sync`,
    /// `commit`). The kernel's dirty-page throttling bounds the rest.
    pub fn write(&mut self, buf: &[u8]) -> io::Result<()> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("upload file lost"))?;
        file.write_all(buf)?;
        self.synced = false;
        self.crc.write(buf);
        self.size += buf.len() as u64;
        if self.size - self.written_back >= WRITEBACK_CHUNK {
            // Start the disk on what is written while the rest arrives:
            // DONTNEED starts writeback of the range (WB_SYNC_NONE, no
            // wait) and drops only pages already clean, which these are
            // not. A no-op on tmpfs. Ignore errors: it is a hint; the
            // fsync before the 226 is what makes the bytes durable.
            let len = std::num::NonZeroU64::new(self.size - self.written_back);
            let _ = rustix::fs::fadvise(&*file, self.written_back, len, Advice::DontNeed);
            self.written_back = self.size;
        }
        Ok(())
    }

    /// The CRC64NVME of everything written (with the prefix APPE and
    /// REST+STOR copy).
    pub fn crc64nvme(&self) -> u64 {
        self.crc.sum64()
    }

    /// Makes the temporary's bytes durable, still under its temporary name
    /// (a flush shared with concurrent uploads: storage/barrier.rs).
    pub async fn sync(&mut self) -> io::Result<()> {
        let file = self
            .file
            .as_ref()
            .ok_or_else(|| io::Error::other("upload file lost"))?
            .try_clone()?;
        let mut barrier = Barrier::new(self.started);
        barrier.file(file);
        let result = smol::unblock(move || barrier.flush()).await;
        self.synced = result.is_ok();
        result
    }

    /// Renames the upload into its final name (after making its bytes
    /// durable, unless `sync` did: a second flush is one of the few a 226
    /// may cost). The rename is durable only once `Placed::pending` is
    /// flushed: the caller adds the spool entry to it first, so one flush
    /// covers both.
    pub async fn place(mut self) -> io::Result<Placed> {
        if !self.synced {
            self.sync().await?;
        }
        let file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("upload file lost"))?;
        let home = self.home.clone();
        let temp = self.temp.clone();
        let target = self.target.clone();
        let started = self.started;
        let result = smol::unblock(move || -> io::Result<Barrier> {
            drop(file);
            let (dir, name) = split(&target)?;
            let dir = jail::open_dir(&home, dir)?;
            {
                // Under PLACING: `keep_local = off` removes a delivered home
                // copy by name once it checked the name still holds it.
                let _placing = PLACING.lock().unwrap_or_else(|p| p.into_inner());
                rustix::fs::renameat(&dir, name_of(&temp)?, &dir, name)?;
            }
            // The rename is durable only once the directory is (fsync(2)).
            let mut pending = Barrier::new(started);
            pending.dir(File::from(dir));
            Ok(pending)
        })
        .await;
        // After a successful rename the temporary no longer exists; after a
        // failed one Drop removes it.
        self.committed = result.is_ok();
        result.map(|pending| Placed {
            path: self.target.clone(),
            pending,
        })
    }

    /// `place`, then the flush that makes the rename durable.
    pub async fn commit(self) -> io::Result<PathBuf> {
        let Placed { path, pending } = self.place().await?;
        smol::unblock(move || pending.flush()).await?;
        Ok(path)
    }
}

impl Drop for TempUpload {
    fn drop(&mut self) {
        if !self.committed {
            // Ignore errors: after a rename that succeeded before a failed
            // directory fsync, the temporary is already gone.
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// The directory and the name of `path`.
fn split(path: &Path) -> io::Result<(&Path, &std::ffi::OsStr)> {
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => Ok((dir, name)),
        _ => Err(io::Error::new(io::ErrorKind::InvalidInput, "no file name")),
    }
}

fn name_of(path: &Path) -> io::Result<&std::ffi::OsStr> {
    split(path).map(|(_, name)| name)
}

/// Removes temporaries left by a crash, under `dir` and its subdirectories.
/// Returns how many were removed. Symlinks are not followed.
pub fn remove_stale_temporaries(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(entry.path());
            } else if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crc64(bytes: &[u8]) -> u64 {
        let mut digest = crc64fast_nvme::Digest::new();
        digest.write(bytes);
        digest.sum64()
    }

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("lakeftpd-upload-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn commit_places_file() {
        let dir = scratch("commit");
        smol::block_on(async {
            let mut u = TempUpload::create(dir.clone(), dir.join("a.csv"), None)
                .await
                .unwrap();
            assert!(names(&dir)[0].starts_with(TEMP_PREFIX));
            u.write(b"hello").unwrap();
            assert_eq!(u.crc64nvme(), crc64(b"hello"));
            u.commit().await.unwrap();
        });
        assert_eq!(names(&dir), vec!["a.csv"]);
        assert_eq!(fs::read(dir.join("a.csv")).unwrap(), b"hello");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn drop_leaves_nothing() {
        let dir = scratch("drop");
        smol::block_on(async {
            let mut u = TempUpload::create(dir.clone(), dir.join("a.csv"), None)
                .await
                .unwrap();
            u.write(b"partial").unwrap();
        });
        assert!(names(&dir).is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn append_copies_existing_then_replaces() {
        let dir = scratch("append");
        fs::write(dir.join("log"), b"one\n").unwrap();
        smol::block_on(async {
            let mut u = TempUpload::create(dir.clone(), dir.join("log"), Some(u64::MAX))
                .await
                .unwrap();
            u.write(b"two\n").unwrap();
            // The copied prefix counts: the checksum is the whole file's.
            assert_eq!(u.crc64nvme(), crc64(b"one\ntwo\n"));
            u.commit().await.unwrap();
        });
        assert_eq!(fs::read(dir.join("log")).unwrap(), b"one\ntwo\n");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn resume_keeps_prefix() {
        let dir = scratch("resume");
        fs::write(dir.join("f"), b"abcdef").unwrap();
        smol::block_on(async {
            let mut u = TempUpload::create(dir.clone(), dir.join("f"), Some(3))
                .await
                .unwrap();
            u.write(b"XYZ!").unwrap();
            u.commit().await.unwrap();
        });
        assert_eq!(fs::read(dir.join("f")).unwrap(), b"abcXYZ!");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn append_through_a_symlink_is_refused() {
        // APPE onto a link to a file outside the home copies nothing.
        let dir = scratch("link");
        let home = dir.join("home");
        fs::create_dir_all(&home).unwrap();
        fs::write(dir.join("outside"), b"secret").unwrap();
        std::os::unix::fs::symlink(dir.join("outside"), home.join("leak")).unwrap();
        let made = smol::block_on(TempUpload::create(
            home.clone(),
            home.join("leak"),
            Some(u64::MAX),
        ));
        assert_eq!(made.err().unwrap().kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(names(&home), vec!["leak"], "no temporary is left");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_directory_outside_the_home_is_refused() {
        // A target whose directory is a symlink out of the home: nothing
        // is created there.
        let dir = scratch("outdir");
        let home = dir.join("home");
        fs::create_dir_all(dir.join("elsewhere")).unwrap();
        fs::create_dir_all(&home).unwrap();
        std::os::unix::fs::symlink(dir.join("elsewhere"), home.join("sub")).unwrap();
        let made = smol::block_on(TempUpload::create(
            home.clone(),
            home.join("sub").join("planted"),
            None,
        ));
        assert!(made.is_err());
        assert!(names(&dir.join("elsewhere")).is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stale_temporaries_removed() {
        let dir = scratch("stale");
        fs::create_dir_all(dir.join("sub")).unwrap();
        fs::write(dir.join("sub").join(format!("{TEMP_PREFIX}x")), b"").unwrap();
        fs::write(dir.join("keep"), b"").unwrap();
        assert_eq!(remove_stale_temporaries(&dir).unwrap(), 1);
        assert_eq!(names(&dir), vec!["keep", "sub"]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
