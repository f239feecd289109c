//! Directory changes that survive a power cut. A new name (a directory made,
//! a file renamed) is on disk only once the directory holding it is fsync'd:
//! fsync(2), "Calling fsync() does not necessarily ensure that the entry in
//! the directory containing the file has also reached disk. For that an
//! explicit fsync() on a file descriptor for the directory is also needed."
//! ext4 often hides a missing directory fsync; the contract must not depend
//! on it (the power-loss test in tests/durability/ runs on a filesystem that
//! loses every unsynced entry).

use std::fs::{self, File};
use std::io;
use std::path::Path;

/// fsync of a directory: its entries (creations, removals, renames) are
/// durable once this returns.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
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
    fs::create_dir(path)?;
    sync_dir(path)?;
    sync_dir(parent(path))
}

/// `create_dir_all`, durably: every directory it creates is synced into its
/// parent. Returns whether anything was created.
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

/// rename(2), durably: the new name in its directory and the old name's
/// removal from its own.
pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    fs::rename(from, to)?;
    let (old, new) = (parent(from), parent(to));
    sync_dir(new)?;
    if old != new {
        sync_dir(old)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

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
    fn rename_across_directories() {
        let dir = scratch("rename");
        fs::create_dir_all(dir.join("a")).unwrap();
        fs::create_dir_all(dir.join("b")).unwrap();
        fs::write(dir.join("a/f"), b"x").unwrap();
        rename(&dir.join("a/f"), &dir.join("b/g")).unwrap();
        assert_eq!(fs::read(dir.join("b/g")).unwrap(), b"x");
        assert!(!dir.join("a/f").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
