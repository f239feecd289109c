//! PROXY protocol headers (HAProxy's "The PROXY protocol", versions 1 and 2),
//! parsed once by pure functions into a typed `Header`.
//!
//! A balancer that does not keep the client's address (an NLB with IP
//! targets, haproxy in TCP mode) puts one header in front of the client's
//! bytes; the address in it is then *the* client address of the session.
//! The I/O around it (who may send one, how long to wait) is `handshake.rs`.
//!
//! SECURITY: a header is only believed from `proxy_from` addresses (checked
//! by the caller); anything that is not exactly a well-formed header of the
//! configured version is refused, and the connection closed (spec §2: "the
//! receiver MUST NOT try to guess whether the protocol header is present").

use crate::limits::{MAX_PROXY_HEADER, PROXY_V1_MAX};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Which header the balancer sends (`proxy_protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// What a complete header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// A relayed connection: `source` is the real client.
    Proxied {
        source: SocketAddr,
        destination: SocketAddr,
    },
    /// The proxy's own connection (v2 LOCAL, e.g. a health check) or a v1
    /// `UNKNOWN`: the real connection endpoints stand (spec §2.1, §2.2).
    Local,
}

/// Why bytes are not an acceptable header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The bytes do not start with the version's signature.
    NoSignature,
    /// The signature is there but the rest breaks the format.
    Malformed(&'static str),
    /// Longer than `PROXY_V1_MAX` (v1) or `MAX_PROXY_HEADER` (v2).
    TooLong,
    /// Well-formed, but a family or transport lakeftpd cannot serve
    /// (UDP, UNIX sockets, or PROXY with UNSPEC).
    Unsupported(&'static str),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NoSignature => f.write_str("no PROXY header signature"),
            Refusal::Malformed(why) => write!(f, "malformed PROXY header: {why}"),
            Refusal::TooLong => f.write_str("PROXY header too long"),
            Refusal::Unsupported(why) => write!(f, "unsupported PROXY header: {why}"),
        }
    }
}

/// `Ok(Some((header, length)))` when `buf` starts with a complete header of
/// `length` bytes; `Ok(None)` when `buf` is a valid beginning of one (read
/// more); `Err` when it can never become one.
pub type Parsed = Result<Option<(Header, usize)>, Refusal>;

pub fn parse(version: Version, buf: &[u8]) -> Parsed {
    match version {
        Version::V1 => parse_v1(buf),
        Version::V2 => parse_v2(buf),
    }
}

const V1_PREFIX: &[u8] = b"PROXY ";

/// Version 1 (spec §2.1): `PROXY TCP4|TCP6|UNKNOWN ... \r\n`, at most 107
/// bytes, single spaces, decimal ports.
pub fn parse_v1(buf: &[u8]) -> Parsed {
    let shown = buf.len().min(V1_PREFIX.len());
    if buf[..shown] != V1_PREFIX[..shown] {
        return Err(Refusal::NoSignature);
    }
    let Some(lf) = buf.iter().take(PROXY_V1_MAX).position(|&b| b == b'\n') else {
        return if buf.len() >= PROXY_V1_MAX {
            Err(Refusal::TooLong)
        } else {
            Ok(None)
        };
    };
    if lf == 0 || buf[lf - 1] != b'\r' {
        return Err(Refusal::Malformed("line must end with CRLF"));
    }
    let line = std::str::from_utf8(&buf[V1_PREFIX.len()..lf - 1])
        .map_err(|_| Refusal::Malformed("not ASCII"))?;
    let length = lf + 1;
    // "UNKNOWN" may be followed by anything up to the CRLF; the receiver
    // ignores it and uses the real endpoints.
    if line == "UNKNOWN" || line.starts_with("UNKNOWN ") {
        return Ok(Some((Header::Local, length)));
    }
    let fields: Vec<&str> = line.split(' ').collect();
    let [family, src, dst, sport, dport] = fields[..] else {
        return Err(Refusal::Malformed("expected 5 fields after PROXY"));
    };
    let (src, dst): (IpAddr, IpAddr) = match family {
        "TCP4" => (IpAddr::V4(v1_ipv4(src)?), IpAddr::V4(v1_ipv4(dst)?)),
        "TCP6" => (IpAddr::V6(v1_ipv6(src)?), IpAddr::V6(v1_ipv6(dst)?)),
        _ => return Err(Refusal::Malformed("protocol must be TCP4, TCP6 or UNKNOWN")),
    };
    Ok(Some((
        Header::Proxied {
            source: SocketAddr::new(src, v1_port(sport)?),
            destination: SocketAddr::new(dst, v1_port(dport)?),
        },
        length,
    )))
}

fn v1_ipv4(s: &str) -> Result<Ipv4Addr, Refusal> {
    // std refuses leading zeros and other non-canonical forms.
    s.parse()
        .map_err(|_| Refusal::Malformed("bad IPv4 address"))
}

fn v1_ipv6(s: &str) -> Result<Ipv6Addr, Refusal> {
    s.parse()
        .map_err(|_| Refusal::Malformed("bad IPv6 address"))
}

/// A port in decimal, 0-65535, no sign and no leading zero (spec §2.1).
fn v1_port(s: &str) -> Result<u16, Refusal> {
    let canonical = !s.is_empty()
        && s.len() <= 5
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'));
    if !canonical {
        return Err(Refusal::Malformed("bad port"));
    }
    s.parse()
        .map_err(|_| Refusal::Malformed("port above 65535"))
}

/// The 12-byte v2 signature (spec §2.2).
pub const V2_SIGNATURE: [u8; 12] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
];

/// Signature, version/command, family/transport, length.
const V2_FIXED: usize = 16;

/// Version 2 (spec §2.2): the binary header. Addresses for TCP over IPv4
/// and IPv6; every TLV after them is skipped (AWS 0xEA, CRC32C 0x03, NOOP
/// 0x04, SSL 0x20, ...) after checking that it fits.
pub fn parse_v2(buf: &[u8]) -> Parsed {
    let shown = buf.len().min(V2_SIGNATURE.len());
    if buf[..shown] != V2_SIGNATURE[..shown] {
        return Err(Refusal::NoSignature);
    }
    if buf.len() < V2_FIXED {
        // Check what is already there so garbage is refused early.
        if let Some(&ver_cmd) = buf.get(12) {
            v2_command(ver_cmd)?;
        }
        return Ok(None);
    }
    let command = v2_command(buf[12])?;
    let fam = buf[13];
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    // The length field allows 64 KiB; a balancer sends well under 1 KiB.
    if V2_FIXED + len > MAX_PROXY_HEADER {
        return Err(Refusal::TooLong);
    }
    if buf.len() < V2_FIXED + len {
        return Ok(None);
    }
    let block = &buf[V2_FIXED..V2_FIXED + len];
    let length = V2_FIXED + len;

    let (family, transport) = (fam >> 4, fam & 0x0F);
    if family > 3 || transport > 2 {
        return Err(Refusal::Malformed("unknown address family or transport"));
    }
    let address_len = match family {
        0x1 => 12,
        0x2 => 36,
        0x3 => 216,
        _ => 0,
    };
    if block.len() < address_len {
        return Err(Refusal::Malformed("length shorter than the addresses"));
    }
    skip_tlvs(&block[address_len..])?;

    if command == Command::Local {
        // LOCAL: "the receiver must accept this connection as valid and must
        // use the real connection endpoints and discard the protocol block".
        return Ok(Some((Header::Local, length)));
    }
    if transport != 0x1 {
        return Err(Refusal::Unsupported("only TCP (STREAM) connections"));
    }
    let (source, destination) = match family {
        0x1 => {
            let ip = |at: usize| {
                IpAddr::V4(Ipv4Addr::new(
                    block[at],
                    block[at + 1],
                    block[at + 2],
                    block[at + 3],
                ))
            };
            let port = |at: usize| u16::from_be_bytes([block[at], block[at + 1]]);
            (
                SocketAddr::new(ip(0), port(8)),
                SocketAddr::new(ip(4), port(10)),
            )
        }
        0x2 => {
            let ip = |at: usize| {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&block[at..at + 16]);
                IpAddr::V6(Ipv6Addr::from(octets))
            };
            let port = |at: usize| u16::from_be_bytes([block[at], block[at + 1]]);
            (
                SocketAddr::new(ip(0), port(32)),
                SocketAddr::new(ip(16), port(34)),
            )
        }
        _ => return Err(Refusal::Unsupported("only IPv4 and IPv6 clients")),
    };
    Ok(Some((
        Header::Proxied {
            source,
            destination,
        },
        length,
    )))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Local,
    Proxy,
}

/// The 13th byte: version 2 in the high nibble, LOCAL (0) or PROXY (1) in
/// the low one; any other value must be refused (spec §2.2).
fn v2_command(ver_cmd: u8) -> Result<Command, Refusal> {
    match ver_cmd {
        0x20 => Ok(Command::Local),
        0x21 => Ok(Command::Proxy),
        v if v >> 4 != 2 => Err(Refusal::Malformed("version is not 2")),
        _ => Err(Refusal::Malformed("command is neither LOCAL nor PROXY")),
    }
}

/// Walks the TLVs (type, 16-bit length, value) without interpreting any:
/// lakeftpd needs none of them. A TLV that runs past the block is refused.
fn skip_tlvs(mut rest: &[u8]) -> Result<(), Refusal> {
    while !rest.is_empty() {
        if rest.len() < 3 {
            return Err(Refusal::Malformed("truncated TLV"));
        }
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
        if rest.len() < 3 + len {
            return Err(Refusal::Malformed("TLV longer than the header"));
        }
        rest = &rest[3 + len..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn proxied(src: &str, dst: &str) -> Header {
        Header::Proxied {
            source: addr(src),
            destination: addr(dst),
        }
    }

    /// A v2 header: ver_cmd, fam, then the block (addresses + TLVs).
    fn v2(ver_cmd: u8, fam: u8, block: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(ver_cmd);
        h.push(fam);
        h.extend_from_slice(&(block.len() as u16).to_be_bytes());
        h.extend_from_slice(block);
        h
    }

    /// IPv4 block: 192.0.2.10:40000 -> 198.51.100.1:21.
    fn v4_block() -> Vec<u8> {
        let mut b = vec![192, 0, 2, 10, 198, 51, 100, 1];
        b.extend_from_slice(&40000u16.to_be_bytes());
        b.extend_from_slice(&21u16.to_be_bytes());
        b
    }

    fn tlv(kind: u8, value: &[u8]) -> Vec<u8> {
        let mut t = vec![kind];
        t.extend_from_slice(&(value.len() as u16).to_be_bytes());
        t.extend_from_slice(value);
        t
    }

    // --- version 1 -------------------------------------------------------

    #[test]
    fn v1_tcp4() {
        let h = b"PROXY TCP4 192.0.2.10 198.51.100.1 40000 21\r\n";
        assert_eq!(
            parse_v1(h),
            Ok(Some((
                proxied("192.0.2.10:40000", "198.51.100.1:21"),
                h.len()
            )))
        );
    }

    #[test]
    fn v1_tcp6() {
        let h = b"PROXY TCP6 2001:db8::1 2001:db8::2 40000 21\r\n";
        assert_eq!(
            parse_v1(h),
            Ok(Some((
                proxied("[2001:db8::1]:40000", "[2001:db8::2]:21"),
                h.len()
            )))
        );
    }

    #[test]
    fn v1_followed_by_a_command_reports_only_the_header_length() {
        let h = b"PROXY TCP4 192.0.2.10 198.51.100.1 40000 21\r\nUSER a\r\n";
        assert_eq!(parse_v1(h).unwrap().unwrap().1, h.len() - 8);
    }

    #[test]
    fn v1_unknown_uses_real_endpoints() {
        assert_eq!(
            parse_v1(b"PROXY UNKNOWN\r\n"),
            Ok(Some((Header::Local, 15)))
        );
    }

    #[test]
    fn v1_unknown_with_trailing_fields() {
        let h = b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
        assert_eq!(parse_v1(h), Ok(Some((Header::Local, h.len()))));
    }

    #[test]
    fn v1_partial_prefix_wants_more() {
        assert_eq!(parse_v1(b"PRO"), Ok(None));
    }

    #[test]
    fn v1_empty_wants_more() {
        assert_eq!(parse_v1(b""), Ok(None));
    }

    #[test]
    fn v1_without_line_end_wants_more() {
        assert_eq!(parse_v1(b"PROXY TCP4 192.0.2.10 198.51.100.1 4"), Ok(None));
    }

    #[test]
    fn v1_ftp_command_is_not_a_header() {
        assert_eq!(parse_v1(b"USER a\r\n"), Err(Refusal::NoSignature));
    }

    #[test]
    fn v1_lowercase_signature_refused() {
        assert_eq!(parse_v1(b"proxy TCP4"), Err(Refusal::NoSignature));
    }

    #[test]
    fn v1_longer_than_107_bytes_refused() {
        let mut h = b"PROXY UNKNOWN ".to_vec();
        h.resize(PROXY_V1_MAX, b'x');
        assert_eq!(parse_v1(&h), Err(Refusal::TooLong));
    }

    #[test]
    fn v1_exactly_107_bytes_accepted() {
        let mut h = b"PROXY UNKNOWN ".to_vec();
        h.resize(PROXY_V1_MAX - 2, b'x');
        h.extend_from_slice(b"\r\n");
        assert_eq!(parse_v1(&h), Ok(Some((Header::Local, PROXY_V1_MAX))));
    }

    #[test]
    fn v1_bare_lf_refused() {
        assert!(matches!(
            parse_v1(b"PROXY TCP4 192.0.2.10 198.51.100.1 40000 21\n"),
            Err(Refusal::Malformed(_))
        ));
    }

    #[test]
    fn v1_double_space_refused() {
        assert!(matches!(
            parse_v1(b"PROXY TCP4  192.0.2.10 198.51.100.1 40000 21\r\n"),
            Err(Refusal::Malformed(_))
        ));
    }

    #[test]
    fn v1_missing_field_refused() {
        assert!(matches!(
            parse_v1(b"PROXY TCP4 192.0.2.10 198.51.100.1 40000\r\n"),
            Err(Refusal::Malformed(_))
        ));
    }

    #[test]
    fn v1_extra_field_refused() {
        assert!(matches!(
            parse_v1(b"PROXY TCP4 192.0.2.10 198.51.100.1 40000 21 x\r\n"),
            Err(Refusal::Malformed(_))
        ));
    }

    #[test]
    fn v1_unknown_protocol_refused() {
        assert!(matches!(
            parse_v1(b"PROXY UDP4 192.0.2.10 198.51.100.1 40000 21\r\n"),
            Err(Refusal::Malformed(_))
        ));
    }

    #[test]
    fn v1_ipv6_address_under_tcp4_refused() {
        assert!(matches!(
            parse_v1(b"PROXY TCP4 2001:db8::1 198.51.100.1 40000 21\r\n"),
            Err(Refusal::Malformed(_))
        ));
    }

    #[test]
    fn v1_ipv4_leading_zero_refused() {
        assert!(matches!(
            parse_v1(b"PROXY TCP4 192.0.2.010 198.51.100.1 40000 21\r\n"),
            Err(Refusal::Malformed(_))
        ));
    }

    #[test]
    fn v1_port_above_65535_refused() {
        assert!(matches!(
            parse_v1(b"PROXY TCP4 192.0.2.10 198.51.100.1 65536 21\r\n"),
            Err(Refusal::Malformed(_))
        ));
    }

    #[test]
    fn v1_port_with_sign_refused() {
        assert!(matches!(
            parse_v1(b"PROXY TCP4 192.0.2.10 198.51.100.1 +4000 21\r\n"),
            Err(Refusal::Malformed(_))
        ));
    }

    #[test]
    fn v1_port_with_leading_zero_refused() {
        assert!(matches!(
            parse_v1(b"PROXY TCP4 192.0.2.10 198.51.100.1 040000 21\r\n"),
            Err(Refusal::Malformed(_))
        ));
    }

    #[test]
    fn v1_non_ascii_refused() {
        assert!(matches!(
            parse_v1(b"PROXY TCP4 \xff 198.51.100.1 40000 21\r\n"),
            Err(Refusal::Malformed(_))
        ));
    }

    #[test]
    fn v1_refuses_a_v2_header() {
        assert_eq!(
            parse_v1(&v2(0x21, 0x11, &v4_block())),
            Err(Refusal::NoSignature)
        );
    }

    // --- version 2 -------------------------------------------------------

    #[test]
    fn v2_ipv4() {
        let h = v2(0x21, 0x11, &v4_block());
        assert_eq!(
            parse_v2(&h),
            Ok(Some((proxied("192.0.2.10:40000", "198.51.100.1:21"), 28)))
        );
    }

    #[test]
    fn v2_ipv6() {
        let mut block = Vec::new();
        block.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        block.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        block.extend_from_slice(&40000u16.to_be_bytes());
        block.extend_from_slice(&21u16.to_be_bytes());
        let h = v2(0x21, 0x21, &block);
        assert_eq!(
            parse_v2(&h),
            Ok(Some((
                proxied("[2001:db8::1]:40000", "[2001:db8::2]:21"),
                52
            )))
        );
    }

    #[test]
    fn v2_local_is_accepted_without_addresses() {
        assert_eq!(
            parse_v2(&v2(0x20, 0x00, &[])),
            Ok(Some((Header::Local, 16)))
        );
    }

    #[test]
    fn v2_local_with_addresses_ignores_them() {
        assert_eq!(
            parse_v2(&v2(0x20, 0x11, &v4_block())),
            Ok(Some((Header::Local, 28)))
        );
    }

    #[test]
    fn v2_aws_vpce_tlv_skipped() {
        // What an NLB sends for PrivateLink: 0xEA, subtype 0x01, endpoint id.
        let mut block = v4_block();
        let mut value = vec![0x01];
        value.extend_from_slice(b"vpce-08d2bf15fac5001c9");
        block.extend(tlv(0xEA, &value));
        let h = v2(0x21, 0x11, &block);
        assert_eq!(
            parse_v2(&h),
            Ok(Some((
                proxied("192.0.2.10:40000", "198.51.100.1:21"),
                h.len()
            )))
        );
    }

    #[test]
    fn v2_crc32c_and_noop_tlvs_skipped() {
        let mut block = v4_block();
        block.extend(tlv(0x03, &[1, 2, 3, 4]));
        block.extend(tlv(0x04, &[0; 7]));
        let h = v2(0x21, 0x11, &block);
        assert_eq!(parse_v2(&h).unwrap().unwrap().1, h.len());
    }

    #[test]
    fn v2_empty_tlv_skipped() {
        let mut block = v4_block();
        block.extend(tlv(0x04, &[]));
        assert!(parse_v2(&v2(0x21, 0x11, &block)).unwrap().is_some());
    }

    #[test]
    fn v2_followed_by_a_command_reports_only_the_header_length() {
        let mut h = v2(0x21, 0x11, &v4_block());
        h.extend_from_slice(b"USER a\r\n");
        assert_eq!(parse_v2(&h).unwrap().unwrap().1, 28);
    }

    #[test]
    fn v2_signature_prefix_wants_more() {
        assert_eq!(parse_v2(&V2_SIGNATURE[..5]), Ok(None));
    }

    #[test]
    fn v2_empty_wants_more() {
        assert_eq!(parse_v2(&[]), Ok(None));
    }

    #[test]
    fn v2_truncated_addresses_want_more() {
        let h = v2(0x21, 0x11, &v4_block());
        assert_eq!(parse_v2(&h[..20]), Ok(None));
    }

    #[test]
    fn v2_truncated_fixed_part_wants_more() {
        let h = v2(0x21, 0x11, &v4_block());
        assert_eq!(parse_v2(&h[..14]), Ok(None));
    }

    #[test]
    fn v2_ftp_command_is_not_a_header() {
        assert_eq!(parse_v2(b"USER a\r\n"), Err(Refusal::NoSignature));
    }

    #[test]
    fn v2_refuses_a_v1_header() {
        assert_eq!(
            parse_v2(b"PROXY TCP4 192.0.2.10 198.51.100.1 40000 21\r\n"),
            Err(Refusal::NoSignature)
        );
    }

    #[test]
    fn v2_wrong_version_refused_before_the_rest_arrives() {
        let h = v2(0x11, 0x11, &v4_block());
        assert!(matches!(parse_v2(&h[..13]), Err(Refusal::Malformed(_))));
    }

    #[test]
    fn v2_unknown_command_refused() {
        assert!(matches!(
            parse_v2(&v2(0x22, 0x11, &v4_block())),
            Err(Refusal::Malformed(_))
        ));
    }

    #[test]
    fn v2_oversized_length_refused_at_once() {
        // The length field says 60000: refused without waiting for the bytes.
        let mut h = V2_SIGNATURE.to_vec();
        h.extend_from_slice(&[0x21, 0x11]);
        h.extend_from_slice(&60000u16.to_be_bytes());
        assert_eq!(parse_v2(&h), Err(Refusal::TooLong));
    }

    #[test]
    fn v2_largest_allowed_header_accepted() {
        let mut block = v4_block();
        let pad = MAX_PROXY_HEADER - V2_FIXED - block.len() - 3;
        block.extend(tlv(0x04, &vec![0; pad]));
        let h = v2(0x21, 0x11, &block);
        assert_eq!(h.len(), MAX_PROXY_HEADER);
        assert!(parse_v2(&h).unwrap().is_some());
    }

    #[test]
    fn v2_one_byte_over_the_limit_refused() {
        let mut block = v4_block();
        let pad = MAX_PROXY_HEADER - V2_FIXED - block.len() - 3 + 1;
        block.extend(tlv(0x04, &vec![0; pad]));
        assert_eq!(parse_v2(&v2(0x21, 0x11, &block)), Err(Refusal::TooLong));
    }

    #[test]
    fn v2_length_shorter_than_ipv4_addresses_refused() {
        assert!(matches!(
            parse_v2(&v2(0x21, 0x11, &v4_block()[..8])),
            Err(Refusal::Malformed(_))
        ));
    }

    #[test]
    fn v2_length_shorter_than_ipv6_addresses_refused() {
        assert!(matches!(
            parse_v2(&v2(0x21, 0x21, &v4_block())),
            Err(Refusal::Malformed(_))
        ));
    }

    #[test]
    fn v2_truncated_tlv_header_refused() {
        let mut block = v4_block();
        block.extend_from_slice(&[0x04, 0x00]);
        assert!(matches!(
            parse_v2(&v2(0x21, 0x11, &block)),
            Err(Refusal::Malformed(_))
        ));
    }

    #[test]
    fn v2_tlv_running_past_the_header_refused() {
        let mut block = v4_block();
        block.extend_from_slice(&[0xEA, 0x00, 0x10, 0x01]);
        assert!(matches!(
            parse_v2(&v2(0x21, 0x11, &block)),
            Err(Refusal::Malformed(_))
        ));
    }

    #[test]
    fn v2_udp_refused() {
        assert!(matches!(
            parse_v2(&v2(0x21, 0x12, &v4_block())),
            Err(Refusal::Unsupported(_))
        ));
    }

    #[test]
    fn v2_unix_socket_refused() {
        assert!(matches!(
            parse_v2(&v2(0x21, 0x31, &[0; 216])),
            Err(Refusal::Unsupported(_))
        ));
    }

    #[test]
    fn v2_proxy_with_unspec_family_refused() {
        assert!(matches!(
            parse_v2(&v2(0x21, 0x01, &[])),
            Err(Refusal::Unsupported(_))
        ));
    }

    #[test]
    fn v2_unknown_family_refused() {
        assert!(matches!(
            parse_v2(&v2(0x21, 0x41, &v4_block())),
            Err(Refusal::Malformed(_))
        ));
    }

    #[test]
    fn dispatch_by_version() {
        assert_eq!(
            parse(Version::V1, b"PROXY UNKNOWN\r\n").unwrap().unwrap().0,
            Header::Local
        );
        assert_eq!(
            parse(Version::V2, &v2(0x20, 0, &[])).unwrap().unwrap().0,
            Header::Local
        );
    }
}
