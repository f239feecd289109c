//! The jail: the only producer of real filesystem paths.
//!
//! A client names files by virtual paths rooted at its home (`/` is the home).
//! `resolve` is pure and lexical: it joins an argument to the working
//! directory, refuses NUL bytes, backslashes, over-long paths, names of
//! lakeftpd's temporaries, and any `..` that would climb above the home. The
//! async checks then canonicalize what exists on disk so that a symlink
//! pointing outside the home is refused too. Nothing outside the home is ever
//! read, written or listed.
//!
//! Those checks run before the file is used, so a symlink planted (or a
//! directory swapped for one) in between could redirect the open. So every
//! file is opened relative to the home with the kernel doing the
//! containment: openat2(2) with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`
//! (Linux 5.6; AL2023 runs 6.1) fails with EXDEV for any path, symlinks
//! included, that leaves the home, and `/proc` magic links are refused.
//! Where openat2 does not exist (ENOSYS: kernels before 5.6, and qemu-user
//! 7.2, which runs the aarch64 smoke test) each component is opened from
//! the home down with O_NOFOLLOW instead: no symlink is followed at all,
//! stricter than RESOLVE_BENEATH (which allows links that stay inside).
//! Only regular files (and directories) are used: devices, FIFOs and
//! sockets are refused (opened with O_NONBLOCK so a FIFO cannot block the
//! open, then checked with fstat).

use crate::limits;
use rustix::fs::{Mode, OFlags, ResolveFlags};
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once openat2 answered ENOSYS: every later open walks instead.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

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
    // SECURITY: a CR, LF or other control byte in a name would forge lines
    // in replies (257), listings and logs; no device needs one.
    if arg.chars().any(|c| c.is_ascii_control()) {
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
            // The kernel's NAME_MAX: refused here as a name, not as a fault.
            name if name.len() > limits::MAX_NAME => return Err(JailError::InvalidName),
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

    /// The canonical home: what `open_beneath` resolves against.
    pub fn home(&self) -> &Path {
        &self.home
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

/// Maps the errors of a contained open: leaving the home (EXDEV), a magic
/// link, or a symlink where none may be (ELOOP) are refusals, not faults.
fn contained(e: rustix::io::Errno) -> io::Error {
    use rustix::io::Errno;
    match e {
        Errno::XDEV | Errno::LOOP => io::Error::new(
            io::ErrorKind::PermissionDenied,
            "path leaves the home or is a symlink",
        ),
        e => e.into(),
    }
}

/// Opens `real` (a path the jail produced, inside `home`) relative to the
/// home; the kernel refuses any resolution that leaves it.
pub fn open_beneath(home: &Path, real: &Path, flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
    let rel = real
        .strip_prefix(home)
        .map_err(|_| io::Error::new(io::ErrorKind::PermissionDenied, "not inside the home"))?;
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let dir = rustix::fs::open(
        home,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    // openat2(2) refuses O_PATH with any flag but O_CLOEXEC, O_DIRECTORY
    // and O_NOFOLLOW (EINVAL); a path descriptor cannot be a terminal.
    let tty = if flags.contains(OFlags::PATH) {
        OFlags::empty()
    } else {
        OFlags::NOCTTY
    };
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        // SECURITY: the kernel keeps the whole resolution, symlinks included,
        // beneath the home; nothing between the checks and this open can
        // redirect it outside.
        match rustix::fs::openat2(
            &dir,
            rel,
            flags | OFlags::CLOEXEC | tty,
            mode,
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        ) {
            Err(rustix::io::Errno::NOSYS) => NO_OPENAT2.store(true, Ordering::Relaxed),
            other => return other.map_err(contained),
        }
    }
    open_walk(dir, rel, flags | tty, mode).map_err(contained)
}

/// Opens `rel` beneath `dir` one component at a time, none followed if it
/// is a symlink (openat2's stand-in where the kernel lacks it).
fn open_walk(dir: OwnedFd, rel: &Path, flags: OFlags, mode: Mode) -> rustix::io::Result<OwnedFd> {
    use rustix::io::Errno;
    let mut names = Vec::new();
    for component in rel.components() {
        match component {
            Component::Normal(name) => names.push(name),
            Component::CurDir => {}
            // SECURITY: the jail never produces these; refuse, as
            // RESOLVE_BENEATH would for a path that climbs out.
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(Errno::XDEV)
            }
        }
    }
    let last = names.pop();
    let mut at = dir;
    for name in names {
        // SECURITY: O_NOFOLLOW | O_DIRECTORY: a symlink in the middle of
        // the path is an error, never followed.
        at = rustix::fs::openat(
            &at,
            name,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
    }
    let flags = flags | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    match last {
        Some(name) => rustix::fs::openat(&at, name, flags, mode),
        None => rustix::fs::openat(&at, ".", flags, mode),
    }
}

/// Fails unless `file` is a regular file.
pub fn regular(file: File) -> io::Result<File> {
    // SECURITY: a device (/dev/zero), FIFO or socket is never read or
    // appended from: it could block, never end, or have side effects.
    if file.metadata()?.is_file() {
        Ok(file)
    } else {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "not a regular file",
        ))
    }
}

/// Opens the regular file `real` inside `home` for reading.
pub fn open_regular(home: &Path, real: &Path) -> io::Result<File> {
    let fd = open_beneath(home, real, OFlags::RDONLY | OFlags::NONBLOCK, Mode::empty())?;
    regular(File::from(fd))
}

/// Opens the directory `real` inside `home` (for creating or renaming
/// entries in it relative to its descriptor).
pub fn open_dir(home: &Path, real: &Path) -> io::Result<OwnedFd> {
    open_beneath(
        home,
        real,
        OFlags::RDONLY | OFlags::DIRECTORY,
        Mode::empty(),
    )
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
    fn control_characters_refused() {
        // `STOR cr\rname.txt` and `MKD d\rx` must not create such names.
        for arg in [
            "cr\rname.txt",
            "d\rx",
            "a\nb",
            "bell\x07",
            "del\x7f",
            "esc\x1b[2J",
        ] {
            assert_eq!(
                resolve(&VirtualPath::root(), arg),
                Err(JailError::InvalidName),
                "{arg:?}"
            );
        }
    }

    #[test]
    fn over_long_component_refused() {
        // 256 bytes is past NAME_MAX: a name error, not a local error.
        let name = "n".repeat(limits::MAX_NAME + 1);
        assert_eq!(
            resolve(&VirtualPath::root(), &name),
            Err(JailError::InvalidName)
        );
        assert!(resolve(&VirtualPath::root(), &"n".repeat(limits::MAX_NAME)).is_ok());
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

    fn scratch(name: &str) -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("lakeftpd-jail-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let home = dir.join("home");
        std::fs::create_dir_all(&home).unwrap();
        (dir.clone(), std::fs::canonicalize(home).unwrap())
    }

    #[test]
    fn open_beneath_refuses_a_symlink_leaving_the_home() {
        // The open itself refuses, whatever a check before it saw.
        let (dir, home) = scratch("out");
        std::fs::write(dir.join("secret"), b"x").unwrap();
        std::os::unix::fs::symlink(dir.join("secret"), home.join("leak")).unwrap();
        let e = open_regular(&home, &home.join("leak")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn open_beneath_allows_a_symlink_inside_the_home() {
        // A link between two of the user's own files still works.
        let (dir, home) = scratch("in");
        std::fs::write(home.join("data"), b"x").unwrap();
        std::os::unix::fs::symlink("data", home.join("alias")).unwrap();
        assert!(open_regular(&home, &home.join("alias")).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn walk(home: &Path, rel: &str) -> rustix::io::Result<OwnedFd> {
        let dir = rustix::fs::open(home, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        open_walk(dir, Path::new(rel), OFlags::RDONLY, Mode::empty())
    }

    #[test]
    fn walk_opens_a_nested_file() {
        // The stand-in for openat2 reaches files in subdirectories.
        let (dir, home) = scratch("walk-ok");
        std::fs::create_dir_all(home.join("a/b")).unwrap();
        std::fs::write(home.join("a/b/f"), b"x").unwrap();
        assert!(walk(&home, "a/b/f").is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn walk_refuses_a_final_symlink_even_inside_the_home() {
        // No symlink is followed without openat2 (stricter than BENEATH).
        let (dir, home) = scratch("walk-last");
        std::fs::write(home.join("data"), b"x").unwrap();
        std::os::unix::fs::symlink("data", home.join("alias")).unwrap();
        assert_eq!(walk(&home, "alias").unwrap_err(), rustix::io::Errno::LOOP);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn walk_refuses_a_symlinked_directory_leaving_the_home() {
        // A directory swapped for a link outwards is not entered.
        let (dir, home) = scratch("walk-mid");
        std::fs::create_dir_all(dir.join("outside")).unwrap();
        std::fs::write(dir.join("outside/secret"), b"x").unwrap();
        std::os::unix::fs::symlink(dir.join("outside"), home.join("sub")).unwrap();
        assert!(walk(&home, "sub/secret").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn walk_refuses_parent_components() {
        // `..` never reaches the walk from the jail; refused if it did.
        let (dir, home) = scratch("walk-up");
        assert_eq!(walk(&home, "../x").unwrap_err(), rustix::io::Errno::XDEV);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn open_regular_refuses_devices() {
        // A symlink to /dev/zero leaves the home; a FIFO inside it is no file.
        let (dir, home) = scratch("dev");
        std::os::unix::fs::symlink("/dev/zero", home.join("zero")).unwrap();
        assert!(open_regular(&home, &home.join("zero")).is_err());
        rustix::fs::mknodat(
            rustix::fs::CWD,
            home.join("fifo"),
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let e = open_regular(&home, &home.join("fifo")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
