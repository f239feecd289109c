//! Directories made on a client's behalf: `MKD a/b/c` and, with
//! `auto_mkdir = on`, STOR/APPE into folders that do not exist yet (cameras
//! that store straight into `2026/12/01/cam1/img.jpg`). Every directory is
//! made through the jail, one level at a time, and each new entry is made
//! durable (fsync of the new directory and of its parent, fsync(2): an
//! entry is durable only once its directory is) before the caller goes on,
//! so the 226 that follows an upload covers the folders too. Each is made
//! with mkdirat(2) in its parent opened beneath the home
//! (storage/beneath.rs), so a level swapped for a symlink is never followed.

use super::beneath;
use super::jail::{Jail, JailError, VirtualPath};
use std::io;
use std::path::PathBuf;

/// Why a directory could not be made.
#[derive(Debug)]
pub enum MakeError {
    /// A level the jail refused (outside the home, a temporary's name...).
    Jail(JailError),
    /// A level exists and is not a directory, or the filesystem failed.
    Io(io::Error),
}

/// Whether `real` is a directory, looked at beneath the home.
async fn is_dir(jail: &Jail, real: PathBuf) -> bool {
    let home = jail.home().to_path_buf();
    smol::unblock(move || beneath::metadata(&home, &real))
        .await
        .is_ok_and(|m| m.is_dir())
}

/// Makes `dir` and every missing directory above it, inside the jail.
/// Returns how many were made (0: all existed).
pub async fn make_all(jail: &Jail, dir: &VirtualPath) -> Result<usize, MakeError> {
    // Levels from the top: /a, /a/b, /a/b/c. The path is at most MAX_PATH
    // bytes, so there are at most MAX_PATH / 2 of them.
    let mut levels = Vec::new();
    let mut level = dir.clone();
    while !level.is_root() {
        let parent = level.parent();
        levels.push(level);
        level = parent;
    }
    let mut made = 0;
    for level in levels.into_iter().rev() {
        match jail.existing(&level).await {
            Ok(real) => {
                // SECURITY: `existing` followed any symlink and checked that
                // its target is inside the home; it must also be a directory.
                if !is_dir(jail, real).await {
                    return Err(MakeError::Io(io::ErrorKind::NotADirectory.into()));
                }
            }
            Err(JailError::NotFound) => {
                // The parent level exists (made or checked above); `entry`
                // gives its canonical real path joined with the new name.
                let real = jail.entry(&level).await.map_err(MakeError::Jail)?;
                let home = jail.home().to_path_buf();
                let created =
                    smol::unblock(move || beneath::Entry::open(&home, &real)?.make_dir()).await;
                match created {
                    Ok(()) => made += 1,
                    // Made meanwhile by another session: check it as above.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        let real = jail.existing(&level).await.map_err(MakeError::Jail)?;
                        if !is_dir(jail, real).await {
                            return Err(MakeError::Io(e));
                        }
                    }
                    Err(e) => return Err(MakeError::Io(e)),
                }
            }
            Err(e) => return Err(MakeError::Jail(e)),
        }
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::jail::resolve;

    fn home(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("lakeftpd-dirs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn at(path: &str) -> VirtualPath {
        resolve(&VirtualPath::root(), path).unwrap()
    }

    #[test]
    fn makes_every_missing_level() {
        let dir = home("levels");
        smol::block_on(async {
            let jail = Jail::open(&dir).await.unwrap();
            std::fs::create_dir(dir.join("2026")).unwrap();
            assert_eq!(make_all(&jail, &at("/2026/12/01/cam1")).await.unwrap(), 3);
            assert!(dir.join("2026/12/01/cam1").is_dir());
            // Again: nothing to make.
            assert_eq!(make_all(&jail, &at("/2026/12/01/cam1")).await.unwrap(), 0);
        });
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_in_the_way_is_refused() {
        let dir = home("file");
        std::fs::write(dir.join("a"), b"x").unwrap();
        smol::block_on(async {
            let jail = Jail::open(&dir).await.unwrap();
            assert!(matches!(
                make_all(&jail, &at("/a/b")).await,
                Err(MakeError::Io(_))
            ));
        });
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn never_through_a_symlink_out_of_the_home() {
        // SECURITY: a link to /tmp inside the home must not let MKD make
        // directories outside it.
        let dir = home("escape");
        let outside = home("escape-outside");
        std::os::unix::fs::symlink(&outside, dir.join("out")).unwrap();
        smol::block_on(async {
            let jail = Jail::open(&dir).await.unwrap();
            assert!(matches!(
                make_all(&jail, &at("/out/x/y")).await,
                Err(MakeError::Jail(JailError::Escape))
            ));
        });
        assert!(!outside.join("x").exists());
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(&outside).unwrap();
    }
}
