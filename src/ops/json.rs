//! JSON string literals (RFC 8259 §7), for the EMF records and the
//! transfer records: the one escaper of the program, so a device's path,
//! whatever bytes it decoded to, cannot break a record or add a field.

use std::fmt::Write as _;

/// Appends `s` as a JSON string literal: `"` and `\` escaped, every control
/// character (U+0000 to U+001F) as `\uXXXX` (or its short form), DEL and the
/// line and paragraph separators U+2028/U+2029 escaped too (valid JSON, but
/// some log tools split lines on them). Everything else is UTF-8 as is:
/// `&str` is valid UTF-8, so no byte can be left unescaped and invalid.
pub fn push_string(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' || c == '\u{2028}' || c == '\u{2029}' => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `s` as a JSON string literal.
pub fn string(s: &str) -> String {
    let mut out = String::new();
    push_string(&mut out, s);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_and_backslash() {
        assert_eq!(string("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }

    #[test]
    fn control_characters() {
        assert_eq!(
            string("\n\r\t\u{0}\u{1f}\u{7f}"),
            "\"\\n\\r\\t\\u0000\\u001f\\u007f\""
        );
    }

    #[test]
    fn line_separators() {
        assert_eq!(string("\u{2028}\u{2029}"), "\"\\u2028\\u2029\"");
    }

    #[test]
    fn non_ascii_stays() {
        assert_eq!(string("データ/café.csv"), "\"データ/café.csv\"");
    }

    /// Every ASCII byte, every 2-byte Latin-1 and a sample of the rest of
    /// Unicode (every 97th scalar value), alone and between others: the
    /// literal parses back (serde_json) to exactly the input, on one line.
    #[test]
    fn every_character_round_trips() {
        let mut chars: Vec<char> = (0u32..0x800).filter_map(char::from_u32).collect();
        chars.extend((0x800u32..0x11_0000).step_by(97).filter_map(char::from_u32));
        for c in chars {
            let text = format!("a{c}b{c}");
            let literal = string(&text);
            assert!(!literal.contains('\n') && !literal.contains('\r'), "{c:?}");
            let back: String =
                serde_json::from_str(&literal).unwrap_or_else(|e| panic!("{c:?}: {e}"));
            assert_eq!(back, text, "{c:?}");
        }
    }
}
