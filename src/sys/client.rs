//! The client as every per-address limit counts it: an IPv4 address, or
//! the IPv6 prefix (`ipv6_prefix`, /64 by default) an address belongs to.
//! One subscriber gets a whole /64 or more (RFC 6177 §2), and picking a new
//! source address in it is free (RFC 8981 temporary addresses, or any
//! address of a routed prefix), so counting single IPv6 addresses would
//! give one client 2^64 identities. `max_sessions_per_ip`, the
//! unauthenticated share, `max_passive_per_ip`, the defender and the TLS
//! handshake bound all key on a `ClientKey` made by `ClientKey::new`, so
//! they agree on who a client is.
//!
//! `wider` is the next grouping up (an IPv6 /48, a site's allocation per
//! RFC 6177; an IPv4 /24), scored by the defender with its own, higher
//! threshold.

use crate::limits::{WIDE_IPV4_PREFIX, WIDE_IPV6_PREFIX};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A client address with the host bits beyond its prefix cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey {
    network: IpAddr,
    prefix: u8,
}

impl ClientKey {
    /// The key of `ip`: IPv4 (and IPv4-mapped IPv6) as is, IPv6 by its
    /// first `ipv6_prefix` bits (1..=128, checked by the configuration).
    pub fn new(ip: IpAddr, ipv6_prefix: u8) -> ClientKey {
        match ip.to_canonical() {
            IpAddr::V4(v4) => ClientKey {
                network: IpAddr::V4(v4),
                prefix: 32,
            },
            IpAddr::V6(v6) => ClientKey::v6(v6, ipv6_prefix),
        }
    }

    fn v6(v6: Ipv6Addr, prefix: u8) -> ClientKey {
        let prefix = prefix.clamp(1, 128);
        let mask = u128::MAX << (128 - u32::from(prefix));
        ClientKey {
            network: IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask)),
            prefix,
        }
    }

    /// The wider group this key belongs to (IPv4 /24, IPv6 /48; a key
    /// already that wide is its own group).
    pub fn wider(self) -> ClientKey {
        match self.network {
            IpAddr::V4(v4) => {
                let prefix = WIDE_IPV4_PREFIX.min(self.prefix);
                let mask = u32::MAX << (32 - u32::from(prefix));
                ClientKey {
                    network: IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask)),
                    prefix,
                }
            }
            IpAddr::V6(v6) => ClientKey::v6(v6, WIDE_IPV6_PREFIX.min(self.prefix)),
        }
    }

    /// A key as `Display` writes it (`192.0.2.7`, `2001:db8:1:2::/64`,
    /// `192.0.2.0/24`), from a text another instance wrote: the host bits
    /// must be clear. `None` when it is not one.
    pub fn parse(text: &str) -> Option<ClientKey> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix.parse::<u8>().ok()?)),
            None => (text, None),
        };
        let network: IpAddr = address.parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix == 0 || prefix > max {
            return None;
        }
        let key = match network {
            IpAddr::V4(v4) => {
                let mask = u32::MAX << (32 - u32::from(prefix));
                ClientKey {
                    network: IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask)),
                    prefix,
                }
            }
            IpAddr::V6(v6) => ClientKey::v6(v6, prefix),
        };
        (key.network == network).then_some(key)
    }

    /// The address with the host bits cleared (what `ban_exempt` blocks
    /// are matched against).
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// Whether this is an IPv6 prefix (the wider group's threshold differs).
    pub fn is_ipv6(&self) -> bool {
        self.network.is_ipv6()
    }
}

impl fmt::Display for ClientKey {
    /// `192.0.2.7`, or `2001:db8:1:2::/64`: what log lines name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.network {
            IpAddr::V4(v4) if self.prefix == 32 => write!(f, "{v4}"),
            network => write!(f, "{network}/{}", self.prefix),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str, prefix: u8) -> ClientKey {
        ClientKey::new(s.parse().unwrap(), prefix)
    }

    #[test]
    fn addresses_of_one_64_are_one_client() {
        // Rotating the interface identifier does not make a new client.
        assert_eq!(key("2001:db8:1:2::1", 64), key("2001:db8:1:2:ffff::9", 64));
        assert_ne!(key("2001:db8:1:2::1", 64), key("2001:db8:1:3::1", 64));
        assert_eq!(key("2001:db8:1:2::1", 64).to_string(), "2001:db8:1:2::/64");
    }

    #[test]
    fn the_prefix_is_configurable() {
        // ipv6_prefix = 56: a whole customer allocation is one client;
        // 128: every address is its own.
        assert_eq!(key("2001:db8:1:2::1", 56), key("2001:db8:1:3::1", 56));
        assert_ne!(key("2001:db8::1", 128), key("2001:db8::2", 128));
    }

    #[test]
    fn ipv4_is_the_address_and_mapped_is_ipv4() {
        // A dual-stack socket's ::ffff:a.b.c.d is the IPv4 client.
        assert_eq!(key("::ffff:192.0.2.1", 64), key("192.0.2.1", 64));
        assert_ne!(key("192.0.2.1", 64), key("192.0.2.2", 64));
        assert_eq!(key("192.0.2.1", 64).to_string(), "192.0.2.1");
    }

    #[test]
    fn keys_read_back_as_written() {
        // What another instance publishes parses into the same key.
        for key in [
            key("192.0.2.7", 64),
            key("2001:db8:1:2::9", 64),
            key("2001:db8:1:2::9", 64).wider(),
            key("192.0.2.7", 64).wider(),
        ] {
            assert_eq!(ClientKey::parse(&key.to_string()), Some(key));
        }
        assert_eq!(ClientKey::parse("2001:db8::1/64"), None, "host bits set");
        assert_eq!(ClientKey::parse("192.0.2.0/33"), None);
        assert_eq!(ClientKey::parse("nonsense"), None);
    }

    #[test]
    fn wider_groups() {
        // IPv6 /48, IPv4 /24.
        assert_eq!(
            key("2001:db8:1:2::1", 64).wider(),
            key("2001:db8:1:ff::1", 64).wider()
        );
        assert_eq!(
            key("2001:db8:1:2::1", 64).wider().to_string(),
            "2001:db8:1::/48"
        );
        assert_eq!(key("192.0.2.9", 64).wider().to_string(), "192.0.2.0/24");
        // A key already wider than /48 stays as it is.
        assert_eq!(key("2001:db8::1", 32).wider(), key("2001:db8::1", 32));
    }
}
