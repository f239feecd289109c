//! The last good users file read from S3, kept on disk (`users_cache`) so
//! that an instance can start while S3 is unreachable. It holds password
//! hashes: mode 0600, written whole or not at all (a temporary file,
//! fsync, rename over the old copy, fsync of the directory), so a crash
//! leaves the previous copy or the new one, never a torn file.

use crate::storage::durable;
use std::fs;
use std::io;
use std::path::Path;
use std::time::SystemTime;

/// Replaces the cache at `path` by `text`, durably (storage/durable.rs).
pub fn write(path: &Path, text: &str) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    durable::create_dir_all(dir)?;
    // SECURITY: password hashes; readable by the owner only.
    durable::write_file(path, text.as_bytes(), 0o600)
}

/// The cached text and when it was written, if there is a cache.
pub fn read(path: &Path) -> io::Result<Option<(String, SystemTime)>> {
    match fs::read_to_string(path) {
        Ok(text) => {
            let written = fs::metadata(path)?
                .modified()
                .unwrap_or(SystemTime::UNIX_EPOCH);
            Ok(Some((text, written)))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("lakeftpd-cache-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn written_whole_with_mode_0600_and_read_back() {
        let d = dir("write");
        let path = d.join("users.cache");
        write(&path, "[user a]\n").unwrap();
        write(&path, "[user b]\n").unwrap();
        let (text, _) = read(&path).unwrap().unwrap();
        assert_eq!(text, "[user b]\n");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // No temporary is left behind.
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn no_cache_is_none() {
        assert!(read(&dir("none").join("users.cache")).unwrap().is_none());
    }
}
