//! Directory listings: LIST in the `ls -l` form clients parse, NLST names,
//! and MLSD/MLST facts (RFC 3659 §7). Pure formatting of `Entry` values.

use crate::clock::{Utc, MONTHS};
use std::io::Write;
use std::os::unix::fs::MetadataExt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Other,
}

/// What a listing shows of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    pub mode: u32,
    pub nlink: u64,
    pub size: u64,
    pub mtime: i64,
}

impl Entry {
    pub fn from_metadata(meta: &std::fs::Metadata) -> Entry {
        let kind = if meta.is_dir() {
            Kind::Dir
        } else if meta.is_file() {
            Kind::File
        } else {
            Kind::Other
        };
        Entry {
            kind,
            mode: meta.mode(),
            nlink: meta.nlink(),
            size: meta.size(),
            mtime: meta.mtime(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    List,
    Nlst,
    Mlsd,
}

/// LIST/NLST's argument without the `ls` flags clients put first (`-a`,
/// `-l`, `-la`, `-al`, `-1`...). A word such as `-data.csv` is not made of
/// flags: it is the path.
pub fn strip_flags(mut arg: &[u8]) -> &[u8] {
    loop {
        let end = arg.iter().position(|&b| b == b' ').unwrap_or(arg.len());
        let word = &arg[..end];
        let is_flag = word.len() >= 2
            && word[0] == b'-'
            && word[1..].iter().all(|b| b"aAlLFRrtd1hSn".contains(b));
        if !is_flag {
            return arg;
        }
        arg = arg[end..].trim_ascii_start();
    }
}

/// Half a year: `ls -l` shows the year instead of the time for older files.
const SIX_MONTHS: i64 = 182 * 86_400;

/// Appends one line for `name` in `format`; `name` is already in the
/// session's name encoding.
pub fn write_entry(out: &mut Vec<u8>, format: Format, name: &[u8], entry: &Entry, now: i64) {
    // SECURITY: a name made on the server with a CR LF in it would forge
    // entries; clients address entries by the names listed, so an escaped
    // name would be useless: such entries are skipped. (No encoding offered
    // puts control bytes inside a multi-byte character.)
    if name.iter().any(|b| b.is_ascii_control()) {
        return;
    }
    // Writing to a Vec cannot fail.
    let _ = match format {
        Format::Nlst => Ok(()),
        Format::List => write!(out, "{} ", list_prefix(entry, now)),
        Format::Mlsd => write!(out, "{} ", facts(entry)),
    };
    out.extend_from_slice(name);
    out.extend_from_slice(b"\r\n");
}

/// `drwxr-xr-x 1 ftp ftp 4096 Nov 28 08:31` — owner and group are not
/// revealed (they are the service account, meaningless to a client).
pub fn list_prefix(entry: &Entry, now: i64) -> String {
    let type_char = match entry.kind {
        Kind::Dir => 'd',
        Kind::File => '-',
        Kind::Other => '?',
    };
    let mut perms = [b'-'; 9];
    for (i, c) in b"rwxrwxrwx".iter().enumerate() {
        if entry.mode & (1 << (8 - i)) != 0 {
            perms[i] = *c;
        }
    }
    let perms = std::str::from_utf8(&perms).unwrap_or("---------");
    let t = Utc::from_unix(entry.mtime);
    let month = MONTHS[(t.month - 1) as usize];
    let when = if (now - entry.mtime).abs() < SIX_MONTHS {
        format!("{month} {:>2} {:02}:{:02}", t.day, t.hour, t.minute)
    } else {
        format!("{month} {:>2}  {}", t.day, t.year)
    };
    format!(
        "{type_char}{perms} {:>3} ftp      ftp {:>12} {when}",
        entry.nlink, entry.size
    )
}

/// RFC 3659 §7.5 facts: `type=file;size=12;modify=20261128083100;`
pub fn facts(entry: &Entry) -> String {
    let kind = match entry.kind {
        Kind::Dir => "dir",
        Kind::File => "file",
        Kind::Other => "OS.unix=other",
    };
    format!(
        "type={kind};size={};modify={};",
        entry.size,
        Utc::from_unix(entry.mtime).time_val()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000; // 2026-11-18

    fn file(size: u64, mtime: i64) -> Entry {
        Entry {
            kind: Kind::File,
            mode: 0o100644,
            nlink: 1,
            size,
            mtime,
        }
    }

    #[test]
    fn recent_file_shows_time() {
        let line = list_prefix(&file(4096, NOW - 3600), NOW);
        assert!(
            line.starts_with("-rw-r--r--   1 ftp      ftp         4096 Nov 18 10:06"),
            "{line}"
        );
    }

    #[test]
    fn old_file_shows_year() {
        let line = list_prefix(&file(1, NOW - 400 * 86_400), NOW);
        assert!(line.ends_with("Oct 14  2025"), "{line}");
    }

    #[test]
    fn directory_flag() {
        let dir = Entry {
            kind: Kind::Dir,
            mode: 0o40755,
            nlink: 2,
            size: 4096,
            mtime: NOW,
        };
        assert!(list_prefix(&dir, NOW).starts_with("drwxr-xr-x"));
    }

    #[test]
    fn list_line_keeps_spaces_in_name() {
        let mut out = Vec::new();
        write_entry(&mut out, Format::List, b"my file.csv", &file(3, NOW), NOW);
        assert!(out.ends_with(b" my file.csv\r\n"));
    }

    #[test]
    fn names_with_control_characters_are_skipped() {
        // A local file named "x\r\n-rw-r--r-- fake" must not forge an entry.
        for format in [Format::List, Format::Nlst, Format::Mlsd] {
            let mut out = Vec::new();
            write_entry(
                &mut out,
                format,
                b"x\r\n-rw-r--r-- 1 ftp ftp 1 fake",
                &file(3, NOW),
                NOW,
            );
            assert!(out.is_empty());
        }
    }

    #[test]
    fn mlsd_facts() {
        let mut out = Vec::new();
        write_entry(
            &mut out,
            Format::Mlsd,
            b"a.csv",
            &file(12, 1_709_210_096),
            NOW,
        );
        assert_eq!(out, b"type=file;size=12;modify=20240229123456; a.csv\r\n");
    }

    #[test]
    fn nlst_is_names() {
        let mut out = Vec::new();
        write_entry(
            &mut out,
            Format::Nlst,
            "データ.csv".as_bytes(),
            &file(1, NOW),
            NOW,
        );
        assert_eq!(out, "データ.csv\r\n".as_bytes());
    }
}
