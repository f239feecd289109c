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
//!
//! `v1.rs` parses the text header, `v2.rs` the binary one; `tests.rs` holds
//! the table of both.

mod v1;
mod v2;

pub use v1::parse_v1;
pub use v2::{parse_v2, V2_SIGNATURE};

use std::fmt;
use std::net::SocketAddr;

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

#[cfg(test)]
mod tests;
