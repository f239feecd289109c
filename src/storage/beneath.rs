//! Acting on entries by descriptor, never by path. The jail's checks run
//! before the change; a directory swapped for an outward symlink in between
//! would redirect a path-based mkdir(2), unlink(2), rename(2), stat(2) or
//! opendir(3) outside the home. So each command opens the directory that
//! holds its entry beneath the home (openat2(2), `RESOLVE_BENEATH |
//! RESOLVE_NO_MAGICLINKS`: the kernel keeps the whole resolution inside)
//! and acts on the last name with the `*at` calls, which never follow it:
//! mkdirat, unlinkat, renameat, statat with `AT_SYMLINK_NOFOLLOW`.
//! Durability goes through storage/durable.rs: the directory that holds a
//! new or moved name is fsync'd (a shared sync) through the same descriptor.

use super::durable;
use super::jail::{open_beneath, open_dir};
use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};
use std::ffi::OsString;
use std::fs::{File, Metadata};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// An entry named by its directory's descriptor (opened beneath the home)
/// and its last component, which no call below follows.
pub struct Entry {
    dir: OwnedFd,
    name: OsString,
}

impl Entry {
    /// The entry `real` (a path the jail produced, inside `home`): its
    /// directory is opened beneath the home.
    pub fn open(home: &Path, real: &Path) -> io::Result<Entry> {
        let (Some(parent), Some(name)) = (real.parent(), real.file_name()) else {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "no entry to act on",
            ));
        };
        Ok(Entry {
            dir: open_dir(home, parent)?,
            name: name.to_os_string(),
        })
    }

    /// lstat of the entry itself (a symlink is reported as one).
    pub fn kind(&self) -> io::Result<FileType> {
        let st = rustix::fs::statat(&self.dir, &self.name, AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(FileType::from_raw_mode(st.st_mode))
    }

    /// mkdir(2), durably: the new directory and its entry in the parent.
    pub fn make_dir(&self) -> io::Result<()> {
        durable::create_dir_at(&self.dir, &self.name, 0o755)
    }

    /// unlink(2) of a file or symlink (never its target); a directory is
    /// refused with `IsADirectory`.
    pub fn remove_file(&self) -> io::Result<()> {
        if self.kind()? == FileType::Directory {
            return Err(io::ErrorKind::IsADirectory.into());
        }
        rustix::fs::unlinkat(&self.dir, &self.name, AtFlags::empty())?;
        Ok(())
    }

    /// rmdir(2).
    pub fn remove_dir(&self) -> io::Result<()> {
        rustix::fs::unlinkat(&self.dir, &self.name, AtFlags::REMOVEDIR)?;
        Ok(())
    }

    /// rename(2), durably: the new name's directory is fsync'd, and the old
    /// name's when it is another one.
    pub fn rename_to(&self, to: &Entry) -> io::Result<()> {
        rustix::fs::renameat(&self.dir, &self.name, &to.dir, &to.name)?;
        durable::sync_dir_fd(&to.dir)?;
        let (a, b) = (rustix::fs::fstat(&self.dir)?, rustix::fs::fstat(&to.dir)?);
        if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino) {
            durable::sync_dir_fd(&self.dir)?;
        }
        Ok(())
    }
}

/// The metadata of `real` (inside `home`), symlinks inside the home
/// followed, through a descriptor opened beneath the home.
pub fn metadata(home: &Path, real: &Path) -> io::Result<Metadata> {
    File::from(open_beneath(home, real, OFlags::PATH, Mode::empty())?).metadata()
}

/// A directory being listed: read from its descriptor, each entry's
/// metadata from the same directory (symlinks resolved beneath the home).
pub struct Listing {
    dir: OwnedFd,
    entries: Dir,
    home: std::path::PathBuf,
    rel: std::path::PathBuf,
}

impl Listing {
    /// Opens the directory `real` (inside `home`) beneath the home.
    pub fn open(home: &Path, real: &Path) -> io::Result<Listing> {
        let dir = open_dir(home, real)?;
        let entries = Dir::read_from(&dir)?;
        Ok(Listing {
            dir,
            entries,
            home: home.to_path_buf(),
            rel: real
                .strip_prefix(home)
                .unwrap_or(Path::new(""))
                .to_path_buf(),
        })
    }

    /// The next entry's name and metadata, without `.` and `..`; entries
    /// that vanish, or symlinks that lead out of the home, are skipped.
    pub fn next_entry(&mut self) -> Option<(OsString, Metadata)> {
        use std::os::unix::ffi::OsStrExt;
        loop {
            let entry = match self.entries.next()? {
                Ok(entry) => entry,
                Err(_) => return None,
            };
            let name = std::ffi::OsStr::from_bytes(entry.file_name().to_bytes()).to_os_string();
            if name == "." || name == ".." {
                continue;
            }
            let Ok(fd) = rustix::fs::openat(
                self.dir.as_fd(),
                &name,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) else {
                continue;
            };
            let Ok(mut meta) = File::from(fd).metadata() else {
                continue;
            };
            if meta.file_type().is_symlink() {
                // SECURITY: shown by what it points to, resolved beneath the
                // home: a link out of it shows nothing of the outside.
                let real = self.home.join(&self.rel).join(&name);
                match metadata(&self.home, &real) {
                    Ok(target) => meta = target,
                    Err(_) => continue,
                }
            }
            return Some((name, meta));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("lakeftpd-beneath-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let home = dir.join("home");
        std::fs::create_dir_all(&home).unwrap();
        (dir.clone(), std::fs::canonicalize(home).unwrap())
    }

    #[test]
    fn entry_in_an_outward_symlinked_directory_is_refused() {
        // The directory swapped for a link out of the home after the check.
        let (dir, home) = scratch("swap");
        std::fs::create_dir(dir.join("outside")).unwrap();
        std::fs::write(dir.join("outside/victim"), b"x").unwrap();
        std::os::unix::fs::symlink(dir.join("outside"), home.join("d")).unwrap();
        let e = Entry::open(&home, &home.join("d/victim")).err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert!(Listing::open(&home, &home.join("d")).is_err());
        assert!(metadata(&home, &home.join("d/victim")).is_err());
        assert!(dir.join("outside/victim").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn make_remove_rename_inside() {
        let (dir, home) = scratch("ops");
        let d = Entry::open(&home, &home.join("d")).unwrap();
        d.make_dir().unwrap();
        assert!(home.join("d").is_dir());
        std::fs::write(home.join("d/f"), b"x").unwrap();
        let f = Entry::open(&home, &home.join("d/f")).unwrap();
        f.rename_to(&Entry::open(&home, &home.join("g")).unwrap())
            .unwrap();
        assert!(home.join("g").is_file());
        assert_eq!(
            d.remove_file().unwrap_err().kind(),
            io::ErrorKind::IsADirectory
        );
        d.remove_dir().unwrap();
        Entry::open(&home, &home.join("g"))
            .unwrap()
            .remove_file()
            .unwrap();
        assert!(!home.join("g").exists() && !home.join("d").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn listing_skips_links_out_of_the_home() {
        let (dir, home) = scratch("list");
        std::fs::write(dir.join("secret"), b"outside").unwrap();
        std::fs::write(home.join("mine"), b"x").unwrap();
        std::os::unix::fs::symlink(dir.join("secret"), home.join("leak")).unwrap();
        std::os::unix::fs::symlink("mine", home.join("alias")).unwrap();
        let mut listing = Listing::open(&home, &home).unwrap();
        let mut names = Vec::new();
        while let Some((name, meta)) = listing.next_entry() {
            assert_eq!(meta.len(), 1, "{name:?}");
            names.push(name.into_string().unwrap());
        }
        names.sort();
        assert_eq!(names, ["alias", "mine"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
