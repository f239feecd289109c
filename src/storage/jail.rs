//! The jail: the only producer of real filesystem paths.
//!
//! A client names files by virtual paths rooted at its home (`/` is the home).
//! `resolve` is pure and lexical: it joins an argument to the working
//! directory, refuses NUL bytes, backslashes, over-long paths, names of
//! lakeftpd's temporaries, and any `..` that would climb above the home. The
//! async checks then canonicalize what exists on disk so that a symlink
//! pointing outside the home is refused too. Nothing outside the home is ever
//! read, written or listed.

use crate::limits;
use std::io;
use std::path::{Path, PathBuf};

/// A path as the client sees it: starts with `/`, no empty, `.` or `..`
/// components, no trailing `/` (except the root itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualPath(String);

impl VirtualPath {
    pub fn root() -> VirtualPath {
        VirtualPath("/".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last component (`""` for the root).
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or("")
    }

    pub fn parent(&self) -> VirtualPath {
        match self.0.rfind('/') {
            Some(0) | None => VirtualPath::root(),
            Some(at) => VirtualPath(self.0[..at].to_string()),
        }
    }

    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }
}

/// Why a path is refused. All become 550 (or 553 for names) replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JailError {
    /// NUL, backslash, a temporary's name, or too long.
    InvalidName,
    /// `..` above the home, or a symlink pointing outside it.
    Escape,
    NotFound,
}

/// Resolves `arg` against `cwd` lexically.
pub fn resolve(cwd: &VirtualPath, arg: &str) -> Result<VirtualPath, JailError> {
    // SECURITY: NUL would truncate a path in the kernel; backslashes are
    // path separators to some clients and never part of a device's names.
    if arg.contains('\0') || arg.contains('\\') || arg.len() > limits::MAX_PATH {
        return Err(JailError::InvalidName);
    }
    let mut parts: Vec<&str> = Vec::new();
    if !arg.starts_with('/') {
        parts.extend(cwd.0.split('/').filter(|p| !p.is_empty()));
    }
    for part in arg.split('/') {
        match part {
            "" | "." => {}
            // SECURITY: `..` may move within the home, never above it.
            ".." => {
                if parts.pop().is_none() {
                    return Err(JailError::Escape);
                }
            }
            // SECURITY: temporaries are unaddressable, so a client can never
            // read, replace or list a partial upload.
            name if name.starts_with(limits::TEMP_PREFIX) => return Err(JailError::InvalidName),
            name => parts.push(name),
        }
    }
    let path = VirtualPath(format!("/{}", parts.join("/")));
    if path.0.len() > limits::MAX_PATH {
        return Err(JailError::InvalidName);
    }
    Ok(path)
}

/// A user's home, canonicalized once at login.
#[derive(Debug, Clone)]
pub struct Jail {
    home: PathBuf,
}

impl Jail {
    pub async fn open(home: &Path) -> io::Result<Jail> {
        let home = async_fs::canonicalize(home).await?;
        Ok(Jail { home })
    }

    fn lexical(&self, path: &VirtualPath) -> PathBuf {
        self.home.join(path.0.trim_start_matches('/'))
    }

    /// The real path of something that must exist, following symlinks; the
    /// target must lie inside the home.
    pub async fn existing(&self, path: &VirtualPath) -> Result<PathBuf, JailError> {
        let real = async_fs::canonicalize(self.lexical(path))
            .await
            .map_err(|_| JailError::NotFound)?;
        // SECURITY: a symlink may point anywhere; only its target counts.
        if real.starts_with(&self.home) {
            Ok(real)
        } else {
            Err(JailError::Escape)
        }
    }

    /// The real path of an entry to create, replace, delete or rename: its
    /// parent must exist inside the home (symlinks followed); the entry
    /// itself is not followed (renaming over or deleting a symlink acts on
    /// the link, never on its target).
    pub async fn entry(&self, path: &VirtualPath) -> Result<PathBuf, JailError> {
        if path.is_root() {
            return Err(JailError::InvalidName);
        }
        let parent = self.existing(&path.parent()).await?;
        Ok(parent.join(path.file_name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(cwd: &str) -> VirtualPath {
        resolve(&VirtualPath::root(), cwd).unwrap()
    }

    #[test]
    fn relative_joins_cwd() {
        assert_eq!(resolve(&at("/a"), "b.csv").unwrap().as_str(), "/a/b.csv");
    }

    #[test]
    fn absolute_is_rooted_at_home() {
        assert_eq!(
            resolve(&at("/a"), "/etc/passwd").unwrap().as_str(),
            "/etc/passwd"
        );
    }

    #[test]
    fn dot_dot_within_home() {
        assert_eq!(resolve(&at("/a/b"), "../c").unwrap().as_str(), "/a/c");
    }

    #[test]
    fn dot_dot_above_home_refused() {
        assert_eq!(
            resolve(&at("/a"), "../../etc/passwd"),
            Err(JailError::Escape)
        );
        assert_eq!(resolve(&VirtualPath::root(), ".."), Err(JailError::Escape));
        assert_eq!(
            resolve(&VirtualPath::root(), "/../x"),
            Err(JailError::Escape)
        );
    }

    #[test]
    fn nul_refused() {
        assert_eq!(
            resolve(&VirtualPath::root(), "a\0b"),
            Err(JailError::InvalidName)
        );
    }

    #[test]
    fn backslash_refused() {
        assert_eq!(
            resolve(&VirtualPath::root(), "..\\..\\x"),
            Err(JailError::InvalidName)
        );
    }

    #[test]
    fn over_long_refused() {
        let long = "a/".repeat(limits::MAX_PATH);
        assert_eq!(
            resolve(&VirtualPath::root(), &long),
            Err(JailError::InvalidName)
        );
    }

    #[test]
    fn temporaries_unaddressable() {
        let name = format!("{}abc", limits::TEMP_PREFIX);
        assert_eq!(
            resolve(&VirtualPath::root(), &name),
            Err(JailError::InvalidName)
        );
    }

    #[test]
    fn redundant_separators_and_dots() {
        assert_eq!(
            resolve(&VirtualPath::root(), "//a/./b//").unwrap().as_str(),
            "/a/b"
        );
    }

    #[test]
    fn spaces_and_utf8_kept() {
        assert_eq!(
            resolve(&VirtualPath::root(), "dir one/データ .csv")
                .unwrap()
                .as_str(),
            "/dir one/データ .csv"
        );
    }

    #[test]
    fn parent_and_name() {
        let p = at("/a/b.csv");
        assert_eq!(p.parent().as_str(), "/a");
        assert_eq!(p.file_name(), "b.csv");
        assert_eq!(at("/x").parent().as_str(), "/");
    }

    #[test]
    fn symlink_outside_refused() {
        let dir = std::env::temp_dir().join(format!("lakeftpd-vfs-{}", std::process::id()));
        let home = dir.join("home");
        std::fs::create_dir_all(&home).unwrap();
        std::os::unix::fs::symlink("/etc", home.join("etc")).unwrap();
        std::fs::write(home.join("inside"), b"x").unwrap();
        smol::block_on(async {
            let jail = Jail::open(&home).await.unwrap();
            assert_eq!(
                jail.existing(&at("/etc/passwd")).await,
                Err(JailError::Escape)
            );
            assert_eq!(jail.entry(&at("/etc/new")).await, Err(JailError::Escape));
            assert!(jail.existing(&at("/inside")).await.is_ok());
            assert_eq!(
                jail.existing(&at("/missing")).await,
                Err(JailError::NotFound)
            );
        });
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
