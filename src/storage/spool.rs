//! The spool: the durable queue of files waiting for S3.
//!
//! One queued file is two entries in the spool directory, named by an id that
//! sorts by upload time:
//! - `ID.data`: the file's bytes — a hard link to the home copy (same inode,
//!   no copy), or, when the spool is on another filesystem, a copy written to
//!   a temporary, fsync'd and renamed;
//! - `ID.meta`: the sidecar (user, client, time, path, size, CRC64NVME,
//!   object key), written *after* the data is in place and ending in an
//!   `end` line; the caller's barrier then makes both durable with the
//!   spool directory (storage/barrier.rs: one shared syncfs on ext4/XFS,
//!   else fsync of the sidecar, then of the directory).
//!
//! The sidecar is the commit record: an entry exists once a complete
//! `ID.meta` does. One without its `end` line was cut by a power loss
//! before its flush ended (so its upload had no 226) and goes at replay,
//! with its data. A
//! `.data` without its `.meta` (a crash in between, or an `ack = s3` entry
//! whose upload had no 226 yet: `Keep::UntilDelivered`) was never
//! acknowledged and is removed at replay; so are temporaries. Delivered entries are removed
//! sidecar first. Only complete, durable uploads are ever added: the caller
//! adds a file after `TempUpload::commit`.

use crate::limits::{MAX_SIDECAR, TEMP_PREFIX};
use crate::storage::barrier::{Barrier, Started};
use crate::storage::durable;
use crate::storage::sidecar::is_partial;
pub use crate::storage::sidecar::Meta;
use crate::sys::{errno, random};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// `DEV:INODE` of a file: its identity for `Meta::home_id`.
pub fn file_id(meta: &fs::Metadata) -> String {
    format!("{}:{}", meta.dev(), meta.ino())
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A fresh id: upload time in microseconds (so names sort by age), then
/// random bits against collisions.
fn new_id() -> String {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    format!("{micros:020}-{}", random::hex_name::<6>())
}

/// Removes a file when dropped unless disarmed: nothing half-written stays.
struct Cleanup(Option<PathBuf>);

impl Cleanup {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            // Ignore errors: the file may never have been created.
            let _ = fs::remove_file(path);
        }
    }
}

pub struct Spool {
    dir: PathBuf,
}

/// What an entry must survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// `ack = disk`: the 226 promises delivery, so the entry is durable
    /// (data and sidecar fsync'd, the spool directory synced) before it.
    Durable,
    /// `ack = s3`: the 226 waits until S3 has the object, so the entry need
    /// only outlive the process, not the power: the data's hard link alone,
    /// not synced, no sidecar, no flush. After a power cut it is data
    /// without a sidecar, removed at replay (that upload got no 226).
    UntilDelivered,
}

impl Spool {
    /// Creates the directory (mode 0700) if needed, synced into its parent
    /// (else a power cut could take the directory and every entry with it).
    pub fn open(dir: &Path) -> io::Result<Spool> {
        durable::create_dir_all(dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create spool {}: {e}", dir.display()),
            )
        })?;
        use std::os::unix::fs::PermissionsExt;
        // SECURITY: queued files are users' data; only lakeftpd reads them.
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        Ok(Spool {
            dir: dir.to_path_buf(),
        })
    }

    #[cfg(test)]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn data_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.data"))
    }

    fn meta_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.meta"))
    }

    /// True when `path` is on the spool's filesystem (a hard link works).
    pub fn same_filesystem(&self, path: &Path) -> io::Result<bool> {
        Ok(fs::metadata(&self.dir)?.dev() == fs::metadata(path)?.dev())
    }

    /// Queues the durable file `file` (blocking). Returns the entry's id;
    /// with `Keep::Durable` the entry is durable once `pending` is flushed
    /// (the caller's barrier, which also holds the upload's rename: one
    /// flush for both). On error nothing is left in the spool.
    pub fn add(
        &self,
        file: &Path,
        meta: &Meta,
        keep: Keep,
        pending: &mut Barrier,
    ) -> io::Result<String> {
        let id = new_id();
        let data = self.data_path(&id);
        let mut data_guard = Cleanup(Some(data.clone()));
        match fs::hard_link(file, &data) {
            Ok(()) => {}
            // The spool is on another filesystem; copy durably.
            Err(e) if errno::is_cross_device(&e) => self.copy_in(file, &data)?,
            Err(e) => return Err(e),
        }
        if keep == Keep::Durable {
            self.write_sidecar(&id, meta, pending)?;
        }
        data_guard.disarm();
        Ok(id)
    }

    /// Writes `ID.meta` whole, to be made durable with the spool directory
    /// by `pending`.
    fn write_sidecar(&self, id: &str, meta: &Meta, pending: &mut Barrier) -> io::Result<()> {
        let sidecar = self.meta_path(id);
        let mut guard = Cleanup(Some(sidecar.clone()));
        use std::os::unix::fs::OpenOptionsExt;
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&sidecar)?;
        out.write_all(meta.format().as_bytes())?;
        pending.file(out);
        pending.dir(File::open(&self.dir)?);
        guard.disarm();
        Ok(())
    }

    /// Makes an entry added with `Keep::UntilDelivered` durable (blocking):
    /// `ack = s3` answered 451 after `s3_timeout`, and the file stays queued
    /// across a restart (its bytes were flushed before the rename). If
    /// delivery removed the entry meanwhile, the sidecar is taken back (a
    /// sidecar without data would be set aside).
    pub fn persist(&self, id: &str, meta: &Meta) -> io::Result<()> {
        let mut pending = Barrier::new(Started::now());
        self.write_sidecar(id, meta, &mut pending)?;
        if let Err(e) = pending.flush() {
            // In place but not known to be durable: undo, so the caller's
            // error holds.
            let _ = fs::remove_file(self.meta_path(id));
            return Err(e);
        }
        if !self.data_path(id).exists() {
            // Ignore errors: delivery may have removed it too.
            let _ = fs::remove_file(self.meta_path(id));
        }
        Ok(())
    }

    fn copy_in(&self, file: &Path, data: &Path) -> io::Result<()> {
        durable::write_file_with(data, 0o600, |out| {
            io::copy(&mut File::open(file)?, out).map(|_| ())
        })
    }

    /// Every queued entry, oldest first. Removes what a crash left half-done:
    /// temporaries, data without a sidecar. A sidecar that does not parse or
    /// lost its data is logged and set aside as `ID.bad` for an operator.
    pub fn replay(&self) -> io::Result<Vec<(String, Meta)>> {
        let mut entries = Vec::new();
        let mut names: Vec<String> = fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in &names {
            let path = self.dir.join(name);
            if name.starts_with(TEMP_PREFIX) {
                fs::remove_file(&path)?;
            } else if let Some(id) = name.strip_suffix(".data") {
                if !names.contains(&format!("{id}.meta")) {
                    log::warn!("spool: removing {name}: its upload was never acknowledged");
                    fs::remove_file(&path)?;
                }
            } else if let Some(id) = name.strip_suffix(".meta") {
                let mut text = String::new();
                File::open(&path)?
                    .take(MAX_SIDECAR)
                    .read_to_string(&mut text)?;
                if is_partial(&text) {
                    log::warn!("spool: removing {id}: its sidecar was cut short by a power loss before its upload was acknowledged");
                    fs::remove_file(&path)?;
                    // Ignore errors: the data may never have been linked.
                    let _ = fs::remove_file(self.data_path(id));
                    continue;
                }
                let parsed = Meta::parse(&text);
                match parsed {
                    Ok(meta) if self.data_path(id).exists() => entries.push((id.to_string(), meta)),
                    other => {
                        let why = other.err().unwrap_or_else(|| "its data is missing".into());
                        log::error!(
                            "spool: {name} cannot be delivered ({why}); renamed to {id}.bad"
                        );
                        fs::rename(&path, self.dir.join(format!("{id}.bad")))?;
                    }
                }
            }
        }
        Ok(entries)
    }

    /// Removes a delivered entry: sidecar first (the commit record), then
    /// data. Not synced: a removal that a power cut undoes only delivers the
    /// file again (at-least-once, like a device that retries), and the next
    /// add's directory sync makes it durable anyway. A flush here would be
    /// one more per upload for nothing the contract promises.
    pub fn remove(&self, id: &str) -> io::Result<()> {
        match fs::remove_file(self.meta_path(id)) {
            // `Keep::UntilDelivered`: no sidecar.
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        match fs::remove_file(self.data_path(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::storage::sidecar::tests::meta;

    /// `Spool::add`, flushed as the session does.
    fn add(spool: &Spool, file: &Path, keep: Keep) -> String {
        let mut pending = Barrier::new(Started::now());
        let id = spool.add(file, &meta(), keep, &mut pending).unwrap();
        pending.flush().unwrap();
        id
    }

    #[test]
    fn a_sidecar_cut_short_goes_with_its_data_at_replay() {
        // A power loss before the barrier's flush ended: the sidecar is
        // partial (or empty), its upload never had a 226.
        let dir = scratch("partial");
        let spool = Spool::open(&dir.join("spool")).unwrap();
        let whole = meta().format();
        for (n, text) in [&whole[..whole.len() - 4], "", "\0\0\0\0"]
            .iter()
            .enumerate()
        {
            fs::write(spool.dir().join(format!("{n}-x.data")), b"hello").unwrap();
            fs::write(spool.dir().join(format!("{n}-x.meta")), text).unwrap();
        }
        assert!(spool.replay().unwrap().is_empty());
        assert_eq!(
            fs::read_dir(spool.dir()).unwrap().count(),
            0,
            "nothing set aside"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("lakeftpd-spool-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn add_replay_remove() {
        let dir = scratch("cycle");
        let spool = Spool::open(&dir.join("spool")).unwrap();
        fs::write(dir.join("f"), b"hello").unwrap();
        let id = add(&spool, &dir.join("f"), Keep::Durable);
        assert_eq!(fs::read(spool.data_path(&id)).unwrap(), b"hello");
        // Leftovers of a crash: a temporary and data without a sidecar.
        fs::write(spool.dir().join(format!("{TEMP_PREFIX}x")), b"").unwrap();
        fs::write(spool.dir().join("0-orphan.data"), b"").unwrap();
        let entries = spool.replay().unwrap();
        assert_eq!(entries, vec![(id.clone(), meta())]);
        assert_eq!(fs::read_dir(spool.dir()).unwrap().count(), 2);
        spool.remove(&id).unwrap();
        assert_eq!(fs::read_dir(spool.dir()).unwrap().count(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_entry_kept_until_delivered_has_no_sidecar_and_goes_at_replay() {
        // ack = s3: no flush before S3 confirmed; after a power cut the
        // data without its sidecar was never acknowledged.
        let dir = scratch("volatile");
        let spool = Spool::open(&dir.join("spool")).unwrap();
        fs::write(dir.join("f"), b"hello").unwrap();
        let id = add(&spool, &dir.join("f"), Keep::UntilDelivered);
        assert_eq!(fs::read_dir(spool.dir()).unwrap().count(), 1);
        assert!(spool.replay().unwrap().is_empty());
        assert!(!spool.data_path(&id).exists());
        // Delivered before a restart: removing it needs no sidecar.
        let id = add(&spool, &dir.join("f"), Keep::UntilDelivered);
        spool.remove(&id).unwrap();
        assert_eq!(fs::read_dir(spool.dir()).unwrap().count(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_persisted_entry_is_replayed_unless_delivered_meanwhile() {
        // ack = s3 past s3_timeout (451): the entry is made durable.
        let dir = scratch("persist");
        let spool = Spool::open(&dir.join("spool")).unwrap();
        fs::write(dir.join("f"), b"hello").unwrap();
        let id = add(&spool, &dir.join("f"), Keep::UntilDelivered);
        spool.persist(&id, &meta()).unwrap();
        assert_eq!(spool.replay().unwrap(), vec![(id.clone(), meta())]);
        spool.remove(&id).unwrap();
        // Delivered (removed) before the persist: no sidecar is left.
        let id = add(&spool, &dir.join("f"), Keep::UntilDelivered);
        spool.remove(&id).unwrap();
        spool.persist(&id, &meta()).unwrap();
        assert_eq!(fs::read_dir(spool.dir()).unwrap().count(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sidecar_without_data_is_set_aside() {
        let dir = scratch("lost");
        let spool = Spool::open(&dir).unwrap();
        fs::write(dir.join("1-x.meta"), meta().format()).unwrap();
        assert!(spool.replay().unwrap().is_empty());
        assert!(dir.join("1-x.bad").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
