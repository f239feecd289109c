//! How file names travel on the wire: the session's `filename_encoding`.
//!
//! RFC 959 says nothing of a name's bytes; RFC 2640 §2.2 makes UTF-8 the
//! default and `OPTS UTF8 ON` (§3.1) its switch. Older devices send names in
//! their own code page (Shift_JIS on Japanese cameras, Latin-1, GBK). Names
//! are decoded from the wire once, strictly (bytes that are not valid in the
//! encoding are refused, never replaced), so the disk, the S3 key and its
//! metadata only ever hold UTF-8; replies and listings are encoded back.
//! The tables are encoding_rs's (the WHATWG Encoding Standard's).

use encoding_rs::Encoding;
use std::borrow::Cow;

/// A name encoding, by the label the configuration uses.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NameEncoding {
    label: &'static str,
    table: &'static Encoding,
}

/// The labels `filename_encoding` accepts, with their tables.
const KNOWN: &[(&str, &Encoding)] = &[
    ("utf-8", encoding_rs::UTF_8),
    ("shift_jis", encoding_rs::SHIFT_JIS),
    ("euc-jp", encoding_rs::EUC_JP),
    // WHATWG maps the Latin-1 label to windows-1252, which decodes every
    // byte; what devices labelled Latin-1 actually send.
    ("latin1", encoding_rs::WINDOWS_1252),
    ("gbk", encoding_rs::GBK),
    ("gb18030", encoding_rs::GB18030),
    ("big5", encoding_rs::BIG5),
    ("euc-kr", encoding_rs::EUC_KR),
    ("windows-1251", encoding_rs::WINDOWS_1251),
];

impl std::fmt::Debug for NameEncoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label)
    }
}

impl NameEncoding {
    pub const UTF8: NameEncoding = NameEncoding {
        label: "utf-8",
        table: encoding_rs::UTF_8,
    };

    /// The encoding a configuration label names.
    pub fn from_label(label: &str) -> Option<NameEncoding> {
        KNOWN
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(label))
            .map(|&(label, table)| NameEncoding { label, table })
    }

    /// The labels accepted, for an error message.
    pub fn labels() -> impl Iterator<Item = &'static str> {
        KNOWN.iter().map(|(name, _)| *name)
    }

    pub fn label(&self) -> &'static str {
        self.label
    }

    pub fn is_utf8(&self) -> bool {
        self.table == encoding_rs::UTF_8
    }

    /// A name from the wire as UTF-8; `None` when a byte sequence is not
    /// valid in this encoding (nothing is ever replaced).
    pub fn decode<'a>(&self, wire: &'a [u8]) -> Option<Cow<'a, str>> {
        self.table
            .decode_without_bom_handling_and_without_replacement(wire)
    }

    /// A UTF-8 name for the wire; `None` when a character has no form in
    /// this encoding (the client could not name it back).
    pub fn encode<'a>(&self, name: &'a str) -> Option<Cow<'a, [u8]>> {
        if self.is_utf8() {
            return Some(Cow::Borrowed(name.as_bytes()));
        }
        let (bytes, _, unmappable) = self.table.encode(name);
        (!unmappable).then_some(bytes)
    }

    /// Text for a reply: characters without a form become `?` (a reply is
    /// read by people; a listing uses `encode`, which never substitutes).
    pub fn encode_text(&self, text: &[u8]) -> Vec<u8> {
        let text = String::from_utf8_lossy(text);
        let mut out = Vec::with_capacity(text.len());
        for c in text.chars() {
            let mut one = [0u8; 4];
            match self.encode(c.encode_utf8(&mut one)) {
                Some(bytes) => out.extend_from_slice(&bytes),
                None => out.push(b'?'),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sjis() -> NameEncoding {
        NameEncoding::from_label("shift_jis").unwrap()
    }

    #[test]
    fn labels_are_case_insensitive() {
        // Operators write `Shift_JIS` as often as `shift_jis`.
        assert_eq!(NameEncoding::from_label("Shift_JIS"), Some(sjis()));
    }

    #[test]
    fn unknown_label_refused() {
        assert_eq!(NameEncoding::from_label("ebcdic"), None);
    }

    #[test]
    fn shift_jis_name_decodes_to_utf8() {
        // デ ー タ in Shift_JIS: 83 66, 81 5B, 83 5E.
        let wire = b"\x83\x66\x81\x5b\x83\x5e_2026.csv";
        assert_eq!(sjis().decode(wire).as_deref(), Some("データ_2026.csv"));
    }

    #[test]
    fn shift_jis_trail_byte_5c_is_not_a_backslash() {
        // 表 is 95 5C: decoded as one character, so the jail never sees a `\`.
        assert_eq!(sjis().decode(b"\x95\x5c.txt").as_deref(), Some("表.txt"));
    }

    #[test]
    fn invalid_shift_jis_refused() {
        // 0x81 must be followed by a trail byte.
        assert_eq!(sjis().decode(b"a\x81"), None);
    }

    #[test]
    fn invalid_utf8_refused() {
        assert_eq!(NameEncoding::UTF8.decode(b"\xff.csv"), None);
    }

    #[test]
    fn encode_round_trips() {
        let name = "データ_2026.csv";
        let wire = sjis().encode(name).unwrap();
        assert_eq!(sjis().decode(&wire).as_deref(), Some(name));
    }

    #[test]
    fn unmappable_name_is_none() {
        // Hangul has no Shift_JIS form.
        assert_eq!(sjis().encode("한.txt"), None);
    }

    #[test]
    fn latin1_decodes_every_byte() {
        let latin1 = NameEncoding::from_label("latin1").unwrap();
        assert_eq!(latin1.decode(b"caf\xe9").as_deref(), Some("café"));
    }

    #[test]
    fn gbk_and_euc_jp() {
        let gbk = NameEncoding::from_label("gbk").unwrap();
        assert_eq!(gbk.decode(b"\xd6\xd0.txt").as_deref(), Some("中.txt"));
        let euc = NameEncoding::from_label("euc-jp").unwrap();
        assert_eq!(euc.decode(b"\xa5\xc7").as_deref(), Some("デ"));
    }

    #[test]
    fn reply_text_substitutes_question_marks() {
        assert_eq!(sjis().encode_text("257 \"한\"".as_bytes()), b"257 \"?\"");
    }
}
