//! Client-supplied text made safe for a log line or a listing: control
//! bytes (0x00-0x1F, 0x7F) and the backslash become `\xNN`, so a CR, LF,
//! ESC or BEL sent in a user name or a path can neither forge a log line
//! (a fake `login ok`) nor drive the operator's terminal, and a listing
//! entry is always one line (RFC 959 §4.1.3 LIST/NLST, RFC 3659 §7 MLSD).

use std::fmt;

/// Displays `self.0` with control bytes escaped.
pub struct Escaped<'a>(pub &'a str);

/// True when `c` must not appear raw in a log line or a listing.
pub fn is_control(c: char) -> bool {
    c.is_ascii_control()
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if is_control(c) || c == '\\' {
                write!(f, "\\x{:02x}", c as u32)?;
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(s: &str) -> String {
        Escaped(s).to_string()
    }

    #[test]
    fn plain_text_unchanged() {
        // Names devices really use pass through, UTF-8 included.
        assert_eq!(e("device01/データ.csv"), "device01/データ.csv");
    }

    #[test]
    fn carriage_return_cannot_start_a_line() {
        // A CR forged a fake `login ok` line.
        assert_eq!(e("x\rlogin ok user=admin"), "x\\x0dlogin ok user=admin");
    }

    #[test]
    fn escape_and_bell_escaped() {
        // ESC sequences would drive the operator's terminal.
        assert_eq!(e("\x1b[2J\x07"), "\\x1b[2J\\x07");
    }

    #[test]
    fn delete_and_nul_escaped() {
        // 0x7F and 0x00 are control bytes too.
        assert_eq!(e("a\x7fb\0"), "a\\x7fb\\x00");
    }

    #[test]
    fn backslash_escaped_so_escapes_are_unambiguous() {
        // A literal `\x0d` in a name is not mistaken for an escaped CR.
        assert_eq!(e("\\x0d"), "\\x5cx0d");
    }
}
