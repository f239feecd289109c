//! The bans one instance shares with the others of its fleet, as the text
//! of an S3 object (`server/bans.rs` moves it): a first line naming the
//! format, then one ban a line, `KEY UNTIL SCOPE`, where KEY is a client
//! key as `ClientKey` writes it, UNTIL the end of the ban in Unix seconds
//! and SCOPE `client` or `wide`:
//!
//! ```text
//! lakeftpd-bans 1
//! 192.0.2.7 1796000000 client
//! 2001:db8:1::/48 1796000900 wide
//! ```
//!
//! Parsed once, strictly: a text with any bad line is refused whole (it is
//! someone else's object, or a broken one), and a text with more than
//! `MAX_SHARED_BANS` bans too. Pure: the time is given.

use super::Scope;
use crate::limits::MAX_SHARED_BANS;
use crate::sys::client::ClientKey;
use std::fmt::Write as _;

/// The first line of every bans object.
const HEADER: &str = "lakeftpd-bans 1";

/// One shared ban.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedBan {
    pub key: ClientKey,
    /// Unix seconds.
    pub until: u64,
    pub scope: Scope,
}

/// The text of `bans` (at most `MAX_SHARED_BANS`, the first ones).
pub fn format(bans: &[SharedBan]) -> String {
    let mut text = format!("{HEADER}\n");
    for ban in bans.iter().take(MAX_SHARED_BANS) {
        let scope = match ban.scope {
            Scope::Wide => "wide",
            Scope::Client | Scope::Pair => "client",
        };
        let _ = writeln!(text, "{} {} {scope}", ban.key, ban.until);
    }
    text
}

/// The bans of `text` still running at `now` (Unix seconds).
pub fn parse(text: &str, now: u64) -> Result<Vec<SharedBan>, String> {
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(format!("not a bans object (first line is not `{HEADER}`)"));
    }
    let mut bans = Vec::new();
    for (index, line) in lines.enumerate() {
        if index >= MAX_SHARED_BANS {
            return Err(format!("more than {MAX_SHARED_BANS} bans"));
        }
        let ban = parse_line(line).ok_or_else(|| format!("line {}: bad ban", index + 2))?;
        if ban.until > now {
            bans.push(ban);
        }
    }
    Ok(bans)
}

fn parse_line(line: &str) -> Option<SharedBan> {
    let mut fields = line.split(' ');
    let (Some(key), Some(until), Some(scope), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return None;
    };
    let scope = match scope {
        "client" => Scope::Client,
        "wide" => Scope::Wide,
        _ => return None,
    };
    Some(SharedBan {
        key: ClientKey::parse(key)?,
        until: until.parse().ok()?,
        scope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> ClientKey {
        ClientKey::new(s.parse().unwrap(), 64)
    }

    #[test]
    fn a_text_reads_back() {
        let bans = [
            SharedBan {
                key: key("192.0.2.7"),
                until: 2000,
                scope: Scope::Client,
            },
            SharedBan {
                key: key("2001:db8:1:2::1").wider(),
                until: 3000,
                scope: Scope::Wide,
            },
        ];
        assert_eq!(parse(&format(&bans), 1000).unwrap(), bans);
    }

    #[test]
    fn ended_bans_are_skipped() {
        let text = "lakeftpd-bans 1\n192.0.2.7 1000 client\n192.0.2.8 3000 client\n";
        assert_eq!(parse(text, 2000).unwrap().len(), 1);
    }

    #[test]
    fn foreign_or_broken_texts_are_refused_whole() {
        // Someone else's object, a bad key, a bad scope, a fourth field.
        assert!(parse("hello\n", 0).is_err());
        assert!(parse("lakeftpd-bans 1\n192.0.2.300 9 client\n", 0).is_err());
        assert!(parse("lakeftpd-bans 1\n192.0.2.3 9 everyone\n", 0).is_err());
        assert!(parse("lakeftpd-bans 1\n192.0.2.3 9 client x\n", 0).is_err());
        assert!(parse("lakeftpd-bans 1\n2001:db8::1/64 9 client\n", 0).is_err());
    }

    #[test]
    fn size_is_bounded() {
        let mut text = String::from("lakeftpd-bans 1\n");
        for i in 0..=MAX_SHARED_BANS {
            text.push_str(&format!(
                "10.{}.{}.{} 9 client\n",
                i >> 16,
                (i >> 8) & 255,
                i & 255
            ));
        }
        assert!(parse(&text, 0).is_err());
    }
}
