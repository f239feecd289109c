//! PROXY protocol version 2 (spec §2.2): a binary header with a signature,
//! a fixed part, the addresses and TLVs.

use super::{Header, Parsed, Refusal};
use crate::limits::MAX_PROXY_HEADER;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The 12-byte v2 signature (spec §2.2).
pub const V2_SIGNATURE: [u8; 12] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
];

/// Signature, version/command, family/transport, length.
pub(super) const V2_FIXED: usize = 16;

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
