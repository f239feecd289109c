//! The protocol versions a client's ClientHello offers, read from its first
//! bytes (peeked before the handshake, or handed over after a PROXY
//! header), so that a failed handshake can say what the device speaks and
//! a TLS 1.0/1.1 client is counted as a version failure whatever alert
//! rustls ended with (it refuses such a hello for a missing
//! signature_algorithms extension before it looks at the version).
//!
//! Parsed once, by a pure function, from untrusted bytes that may be cut
//! anywhere: RFC 8446 §4.1.2 (ClientHello), §4.2.1 (supported_versions),
//! RFC 5246 §7.4.1.2 (client_version: the highest version a client without
//! that extension speaks).

use std::fmt;

/// Versions offered, one bit each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offered(u8);

/// (wire value, bit, name), oldest first.
const VERSIONS: [(u16, u8, &str); 5] = [
    (0x0300, 1, "SSL3"),
    (0x0301, 2, "1.0"),
    (0x0302, 4, "1.1"),
    (0x0303, 8, "1.2"),
    (0x0304, 16, "1.3"),
];

/// TLS 1.0 on the wire.
const TLS10: u16 = 0x0301;

/// TLS 1.2 and 1.3: what rustls speaks.
const SPOKEN: u8 = 8 | 16;

/// TLS record content type of a handshake (RFC 8446 §5.1).
const HANDSHAKE: u8 = 22;
/// Handshake message type client_hello (RFC 8446 §4).
const CLIENT_HELLO: u8 = 1;
/// Extension type supported_versions (RFC 8446 §4.2).
const SUPPORTED_VERSIONS: u16 = 43;
/// Extension type pre_shared_key (RFC 8446 §4.2.11): a TLS 1.3 resumption.
const PRE_SHARED_KEY: u16 = 41;

impl Offered {
    /// The versions offered by the ClientHello that `bytes` begin with;
    /// `None` when they are not a TLS handshake record (plain text on the
    /// TLS port) or too short to hold a client_version.
    pub fn parse(bytes: &[u8]) -> Option<Offered> {
        let mut r = Reader(bytes);
        if r.u8()? != HANDSHAKE {
            return None;
        }
        r.skip(4)?; // record version, record length
        if r.u8()? != CLIENT_HELLO {
            return None;
        }
        r.skip(3)?; // handshake length
        let legacy = r.u16()?;
        let listed = extensions(&mut r).and_then(supported_versions);
        Some(listed.unwrap_or_else(|| up_to(legacy)))
    }

    /// Neither TLS 1.2 nor 1.3 is offered: a version failure.
    pub fn only_old(self) -> bool {
        self.0 != 0 && self.0 & SPOKEN == 0
    }
}

/// Whether the ClientHello that `bytes` begin with offers a TLS 1.3
/// session to resume (pre_shared_key). False when cut before it.
pub fn offers_psk(bytes: &[u8]) -> bool {
    let mut r = Reader(bytes);
    let hello = r.u8() == Some(HANDSHAKE)
        && r.skip(4).is_some()
        && r.u8() == Some(CLIENT_HELLO)
        && r.skip(5).is_some();
    let Some(mut exts) = hello.then(|| extensions(&mut r)).flatten() else {
        return false;
    };
    while let (Some(kind), Some(length)) = (exts.u16(), exts.u16()) {
        if kind == PRE_SHARED_KEY {
            return true;
        }
        if exts.skip(usize::from(length)).is_none() {
            break;
        }
    }
    false
}

/// Every TLS version up to `highest` (a client without
/// supported_versions); SSL 3 only when that is all it speaks.
fn up_to(highest: u16) -> Offered {
    let lowest = highest.min(TLS10);
    Offered(
        VERSIONS
            .iter()
            .filter(|(wire, ..)| (lowest..=highest).contains(wire))
            .fold(0, |bits, (_, bit, _)| bits | bit),
    )
}

/// The extensions block, after random, session id, suites, compression.
fn extensions<'a>(r: &mut Reader<'a>) -> Option<Reader<'a>> {
    r.skip(32)?; // random
    let session_id = r.u8()?;
    r.skip(usize::from(session_id))?;
    let suites = r.u16()?;
    r.skip(usize::from(suites))?;
    let compression = r.u8()?;
    r.skip(usize::from(compression))?;
    let length = r.u16()?;
    // The block may be cut by the end of the peeked bytes: read what came.
    Some(Reader(r.0.get(..usize::from(length)).unwrap_or(r.0)))
}

/// The versions listed in supported_versions, if the extension is there.
fn supported_versions(mut r: Reader<'_>) -> Option<Offered> {
    loop {
        let kind = r.u16()?;
        let length = usize::from(r.u16()?);
        if kind != SUPPORTED_VERSIONS {
            r.skip(length)?;
            continue;
        }
        let count = usize::from(r.u8()?) / 2;
        let mut bits = 0;
        for _ in 0..count {
            let wire = r.u16()?;
            // Unknown values (GREASE, RFC 8701; drafts) are left out.
            if let Some((_, bit, _)) = VERSIONS.iter().find(|(w, ..)| *w == wire) {
                bits |= bit;
            }
        }
        return Some(Offered(bits));
    }
}

impl fmt::Display for Offered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names = VERSIONS.iter().filter(|(_, bit, _)| self.0 & bit != 0);
        match names.next() {
            None => f.write_str("none known"),
            Some((_, _, first)) => {
                f.write_str(first)?;
                names.try_for_each(|(_, _, name)| write!(f, ",{name}"))
            }
        }
    }
}

/// Big-endian fields from the front of a slice.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn skip(&mut self, n: usize) -> Option<()> {
        self.0 = self.0.get(n..)?;
        Some(())
    }

    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from(self.u8()?) << 8 | u16::from(self.u8()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello with `legacy` and, if given, supported_versions.
    fn hello(legacy: u16, versions: Option<&[u16]>) -> Vec<u8> {
        let mut body = legacy.to_be_bytes().to_vec();
        body.extend_from_slice(&[0; 32]); // random
        body.extend_from_slice(&[0]); // session id
        body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one suite
        body.extend_from_slice(&[1, 0]); // null compression
        let mut exts = vec![0, 10, 0, 2, 0, 29]; // supported_groups: x25519
        if let Some(versions) = versions {
            let list: Vec<u8> = versions.iter().flat_map(|v| v.to_be_bytes()).collect();
            exts.extend_from_slice(&SUPPORTED_VERSIONS.to_be_bytes());
            exts.extend_from_slice(&(list.len() as u16 + 1).to_be_bytes());
            exts.push(list.len() as u8);
            exts.extend_from_slice(&list);
        }
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(&exts);
        let mut out = vec![HANDSHAKE, 3, 1];
        out.extend_from_slice(&(body.len() as u16 + 4).to_be_bytes());
        out.push(CLIENT_HELLO);
        out.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn tls10_client_offers_only_old_versions() {
        let offered = Offered::parse(&hello(0x0301, None)).unwrap();
        assert!(offered.only_old());
        assert_eq!(offered.to_string(), "1.0");
    }

    #[test]
    fn tls11_client() {
        let offered = Offered::parse(&hello(0x0302, None)).unwrap();
        assert!(offered.only_old());
        assert_eq!(offered.to_string(), "1.0,1.1");
    }

    #[test]
    fn tls12_client_without_the_extension() {
        let offered = Offered::parse(&hello(0x0303, None)).unwrap();
        assert!(!offered.only_old());
    }

    #[test]
    fn tls13_client_lists_its_versions_with_grease() {
        let offered = Offered::parse(&hello(0x0303, Some(&[0x0a0a, 0x0304, 0x0303]))).unwrap();
        assert_eq!(offered.to_string(), "1.2,1.3");
        assert!(!offered.only_old());
    }

    #[test]
    fn cut_before_the_extensions_falls_back_to_client_version() {
        let bytes = hello(0x0303, Some(&[0x0304]));
        let offered = Offered::parse(&bytes[..50]).unwrap();
        assert_eq!(offered.to_string(), "1.0,1.1,1.2");
    }

    #[test]
    fn plain_text_and_short_input_are_not_a_hello() {
        assert_eq!(Offered::parse(b"USER dev\r\n"), None);
        assert_eq!(Offered::parse(&[HANDSHAKE, 3, 1]), None);
        assert_eq!(Offered::parse(&[]), None);
    }

    #[test]
    fn psk_offer_is_seen() {
        let mut bytes = hello(0x0303, Some(&[0x0304]));
        assert!(!offers_psk(&bytes));
        // Append a pre_shared_key extension and fix the three lengths.
        let psk = [0, 41, 0, 2, 0, 0];
        bytes.extend_from_slice(&psk);
        let grow = |b: &mut Vec<u8>, at: usize, width: usize| {
            let mut v = 0usize;
            for i in 0..width {
                v = v << 8 | usize::from(b[at + i]);
            }
            v += psk.len();
            for i in 0..width {
                b[at + i] = (v >> (8 * (width - 1 - i))) as u8;
            }
        };
        grow(&mut bytes, 3, 2); // record
        grow(&mut bytes, 6, 3); // handshake
        let exts_at = 9 + 2 + 32 + 1 + 4 + 2; // version, random, sid, suites, compression
        grow(&mut bytes, exts_at, 2);
        assert!(offers_psk(&bytes));
        assert!(!offers_psk(&bytes[..40]));
        assert!(!offers_psk(b"USER dev\r\n"));
    }

    #[test]
    fn ssl3_only_client() {
        let offered = Offered::parse(&hello(0x0300, None)).unwrap();
        assert_eq!(offered.to_string(), "SSL3");
        assert!(offered.only_old());
    }

    #[test]
    fn no_known_version() {
        let offered = Offered::parse(&hello(0x0303, Some(&[0x7f1c]))).unwrap();
        assert_eq!(offered.to_string(), "none known");
        assert!(!offered.only_old());
    }
}
