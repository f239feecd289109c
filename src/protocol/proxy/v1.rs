//! PROXY protocol version 1 (spec §2.1): one text line in front of the
//! client's bytes.

use super::{Header, Parsed, Refusal};
use crate::limits::PROXY_V1_MAX;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

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
