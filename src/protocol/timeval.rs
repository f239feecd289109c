//! Times clients send to set a file's modification time: RFC 3659 §2.3
//! time-vals (`YYYYMMDDHHMMSS[.sss]`, UTC) and ProFTPD's shorter
//! `YYYYMMDDHHMM`, checked to be real dates.

use crate::clock::Utc;

/// `YYYYMMDDHHMMSS[.sss]` (RFC 3659 §2.3 time-val, UTC), or `None`.
pub fn parse_time_val(text: &str) -> Option<Utc> {
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (text, None),
    };
    if fraction.is_some_and(|f| f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    parse_digits(whole, 14)
}

/// `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS` digits as a valid date.
pub fn parse_digits(text: &str, len: usize) -> Option<Utc> {
    if text.len() != len || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |at: usize, width: usize| text[at..at + width].parse::<u32>().ok();
    let t = Utc {
        year: i64::from(n(0, 4)?),
        month: n(4, 2)?,
        day: n(6, 2)?,
        hour: n(8, 2)?,
        minute: n(10, 2)?,
        second: if len == 14 { n(12, 2)? } else { 0 },
    };
    // Reject what would wrap: 20261332..., 24:00, 61 seconds.
    let valid = (1..=12).contains(&t.month)
        && t.day >= 1
        && t.hour < 24
        && t.minute < 60
        && t.second < 60
        && Utc::from_unix(t.to_unix()) == t;
    valid.then_some(t)
}

/// `TIME path` where TIME is a time-val: the write forms of MDTM and MFMT.
/// A name that merely starts with 14 digits and a space reads as a time
/// (as in vsftpd and ProFTPD).
pub fn time_then_path(arg: &[u8]) -> Option<(Utc, &[u8])> {
    let at = arg.iter().position(|&b| b == b' ')?;
    let time = parse_time_val(std::str::from_utf8(&arg[..at]).ok()?)?;
    let rest = &arg[at + 1..];
    (!rest.is_empty()).then_some((time, rest))
}

/// SITE UTIME's argument: `YYYYMMDDhhmm[ss] path` (ProFTPD
/// mod_site_misc) or `path ATIME MTIME CTIME UTC` (Pure-FTPd; the path,
/// which may hold spaces, is what precedes the last four words). Returns
/// the modification time and the path.
pub fn site_utime(rest: &[u8]) -> Option<(Utc, &[u8])> {
    if let Some(at) = rest.iter().position(|&b| b == b' ') {
        let first = std::str::from_utf8(&rest[..at]).unwrap_or("");
        let time = parse_digits(first, 14).or_else(|| parse_digits(first, 12));
        if let (Some(time), true) = (time, at + 1 < rest.len()) {
            return Some((time, &rest[at + 1..]));
        }
    }
    let spaces: Vec<usize> = (0..rest.len()).filter(|&at| rest[at] == b' ').collect();
    let cut = *spaces.get(spaces.len().checked_sub(4)?)?;
    let tail = std::str::from_utf8(&rest[cut + 1..]).ok()?;
    match tail.split(' ').collect::<Vec<_>>().as_slice() {
        [_, mtime, _, zone] if zone.eq_ignore_ascii_case("UTC") && cut > 0 => {
            Some((parse_digits(mtime, 14)?, &rest[..cut]))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_val_parsed() {
        let t = parse_time_val("20261201083015").unwrap();
        assert_eq!((t.year, t.month, t.day, t.second), (2026, 12, 1, 15));
    }

    #[test]
    fn fraction_ignored() {
        assert_eq!(
            parse_time_val("20261201083015.5"),
            parse_time_val("20261201083015")
        );
        assert_eq!(parse_time_val("20261201083015."), None);
    }

    #[test]
    fn impossible_dates_refused() {
        // 30 February, month 13, hour 24, second 60 would wrap.
        for t in [
            "20260230000000",
            "20261301000000",
            "20261201240000",
            "20261201000060",
        ] {
            assert_eq!(parse_time_val(t), None, "{t}");
        }
    }

    #[test]
    fn twelve_digits_without_seconds() {
        assert_eq!(parse_digits("202612010830", 12).map(|t| t.second), Some(0));
    }

    #[test]
    fn time_then_path_needs_both() {
        assert!(time_then_path(b"20261201083000 a").is_some());
        assert!(time_then_path(b"20261201083000 ").is_none());
        assert!(time_then_path(b"a b").is_none());
    }

    #[test]
    fn site_utime_five_arguments() {
        // Pure-FTPd form: path, atime, mtime, ctime, UTC; the path may
        // contain spaces.
        let line = b"my a.jpg 20260101000000 20261201083000 20260101000000 UTC";
        let (time, path) = site_utime(line).unwrap();
        assert_eq!((time.month, time.hour, path), (12, 8, &b"my a.jpg"[..]));
    }

    #[test]
    fn site_utime_time_first() {
        let (time, path) = site_utime(b"202612010830 a.jpg").unwrap();
        assert_eq!((time.day, time.minute, path), (1, 30, &b"a.jpg"[..]));
    }

    #[test]
    fn site_utime_malformed() {
        assert_eq!(site_utime(b"a.jpg"), None);
        assert_eq!(site_utime(b"a 1 2 3 UTC"), None);
    }
}
