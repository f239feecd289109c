//! Address blocks in CIDR notation (RFC 4632 §3.1; RFC 4291 §2.3 for IPv6),
//! for `proxy_from`: the balancers whose PROXY headers are believed.

use std::fmt;
use std::net::IpAddr;

/// `ADDRESS/PREFIX`; a bare address is a /32 (or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses one block. Host bits must be zero, so a typo such as
    /// `10.0.0.1/8` (meant `/32`?) is refused rather than widened.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}`: not an IP address"))?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                match p.parse::<u8>() {
                    Ok(n) if n <= bits => n,
                    _ => return Err(format!("`{s}`: prefix above /{bits}")),
                }
            }
            Some(_) => return Err(format!("`{s}`: prefix must be a number")),
        };
        let cidr = Cidr { network, prefix };
        if cidr.mask(network) != bits_of(network) {
            return Err(format!("`{s}`: address has bits set past the prefix"));
        }
        Ok(cidr)
    }

    fn mask(&self, ip: IpAddr) -> u128 {
        let (value, bits) = match ip {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
            IpAddr::V6(v6) => (u128::from(v6), 128),
        };
        if self.prefix == 0 {
            return 0;
        }
        let keep = u128::MAX << (128 - u32::from(self.prefix));
        // Align the mask to the family's width.
        value & (keep >> (128 - bits))
    }

    /// An IPv6 block longer than `prefix` bits: smaller than one client
    /// counted by an IPv6 prefix of that length (`ipv6_prefix`).
    pub fn ipv6_longer_than(&self, prefix: u8) -> bool {
        self.network.is_ipv6() && self.prefix > prefix
    }

    /// True when `ip` is inside the block. An IPv4-mapped IPv6 address
    /// (`::ffff:a.b.c.d`, from a dual-stack socket) counts as its IPv4 form.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        if ip.is_ipv4() != self.network.is_ipv4() {
            return false;
        }
        self.mask(ip) == bits_of(self.network)
    }
}

fn bits_of(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// A list separated by commas and/or spaces: `10.0.0.0/16, 10.1.0.0/16`.
pub fn parse_list(s: &str) -> Result<Vec<Cidr>, String> {
    let list: Vec<Cidr> = s
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .map(Cidr::parse)
        .collect::<Result<_, _>>()?;
    if list.is_empty() {
        return Err("expected one or more CIDR blocks".into());
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4_block_contains_its_addresses() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains(ip("10.1.0.0")));
        assert!(c.contains(ip("10.1.255.255")));
    }

    #[test]
    fn ipv4_block_excludes_neighbours() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(!c.contains(ip("10.2.0.0")));
        assert!(!c.contains(ip("10.0.255.255")));
    }

    #[test]
    fn bare_address_is_a_single_host() {
        let c = Cidr::parse("192.0.2.7").unwrap();
        assert!(c.contains(ip("192.0.2.7")));
        assert!(!c.contains(ip("192.0.2.8")));
    }

    #[test]
    fn slash_zero_contains_every_address_of_its_family() {
        let c = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(c.contains(ip("203.0.113.1")));
        assert!(!c.contains(ip("2001:db8::1")));
    }

    #[test]
    fn ipv6_block() {
        let c = Cidr::parse("2001:db8::/32").unwrap();
        assert!(c.contains(ip("2001:db8:ffff::1")));
        assert!(!c.contains(ip("2001:db9::1")));
    }

    #[test]
    fn ipv4_mapped_address_matches_its_ipv4_block() {
        let c = Cidr::parse("192.0.2.0/24").unwrap();
        assert!(c.contains(ip("::ffff:192.0.2.9")));
    }

    #[test]
    fn ipv4_block_does_not_match_ipv6() {
        assert!(!Cidr::parse("0.0.0.0/0").unwrap().contains(ip("::1")));
    }

    #[test]
    fn host_bits_set_refused() {
        assert!(Cidr::parse("10.0.0.1/8").is_err());
    }

    #[test]
    fn prefix_too_long_refused() {
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("::/129").is_err());
    }

    #[test]
    fn prefix_not_a_number_refused() {
        assert!(Cidr::parse("10.0.0.0/x").is_err());
        assert!(Cidr::parse("10.0.0.0/").is_err());
        assert!(Cidr::parse("10.0.0.0/+8").is_err());
    }

    #[test]
    fn hostname_refused() {
        assert!(Cidr::parse("nlb.example.com/32").is_err());
    }

    #[test]
    fn list_with_commas_and_spaces() {
        let l = parse_list("10.0.0.0/16, 10.1.0.0/16 192.0.2.1").unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l[2].to_string(), "192.0.2.1/32");
    }

    #[test]
    fn empty_list_refused() {
        assert!(parse_list(" , ").is_err());
    }

    #[test]
    fn one_bad_entry_refuses_the_list() {
        assert!(parse_list("10.0.0.0/16, bogus").is_err());
    }
}
