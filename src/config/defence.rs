//! The defence keys of the configuration, parsed by pure functions into
//! `Defence`: how many connections may wait unauthenticated, when an address
//! is banned for failed logins, who is never banned, how many passive
//! listeners one address may hold, and who may ask `/healthz`.
//! `config/mod.rs` hands every key named in `KEYS` to `Defence::set`; README
//! lists them with their defaults.

use crate::config::cidr::{self, Cidr};
use crate::config::value::{parse_count, parse_duration};
use crate::limits;
use std::time::Duration;

pub const KEYS: &[&str] = &[
    "max_unauthenticated",
    "ban_after",
    "ban_window",
    "ban_time",
    "ban_exempt",
    "max_passive_per_ip",
    "health_from",
    "ipv6_prefix",
    "tls_handshake_timeout",
    "ban_share_interval",
    "ban_share_prefix",
];

#[derive(Debug, Clone, PartialEq)]
pub struct Defence {
    /// Connections not yet logged in (PROXY header awaited included) held at
    /// once; `None`: a fraction of `max_sessions` (see `max_unauthenticated`).
    pub max_unauthenticated: Option<usize>,
    /// Failed logins within `ban_window` after which an address is banned.
    pub ban_after: u32,
    pub ban_window: Duration,
    /// The first ban's length; each repeat doubles it, up to `MAX_BAN_TIME`.
    pub ban_time: Duration,
    /// Addresses never banned (the operator's networks).
    pub ban_exempt: Vec<Cidr>,
    /// Passive listeners one client address may hold at once; `None`: a
    /// fraction of the pool (see `max_passive_per_ip`).
    pub max_passive_per_ip: Option<usize>,
    /// Who may connect to `health_listen`; empty: anyone.
    pub health_from: Vec<Cidr>,
    /// IPv6 clients are counted by this prefix length by every per-address
    /// limit (`sys::client::ClientKey`).
    pub ipv6_prefix: u8,
    /// How long a TLS handshake may take in all (FTPS).
    pub tls_handshake_timeout: Duration,
    /// How often bans are shared with the fleet through `s3_bucket`;
    /// `None`: not shared (`off`, or no bucket).
    pub ban_share_interval: Option<Duration>,
    /// Where the bans objects are, in `s3_bucket`.
    pub ban_share_prefix: String,
}

impl Defence {
    pub fn defaults() -> Defence {
        Defence {
            max_unauthenticated: None,
            ban_after: limits::DEFAULT_BAN_AFTER,
            ban_window: limits::DEFAULT_BAN_WINDOW,
            ban_time: limits::DEFAULT_BAN_TIME,
            ban_exempt: Vec::new(),
            max_passive_per_ip: None,
            health_from: Vec::new(),
            ipv6_prefix: limits::DEFAULT_IPV6_PREFIX,
            tls_handshake_timeout: limits::TLS_HANDSHAKE_TIMEOUT,
            ban_share_interval: Some(limits::DEFAULT_BAN_SHARE_INTERVAL),
            ban_share_prefix: limits::DEFAULT_BAN_SHARE_PREFIX.to_string(),
        }
    }

    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let bad = |what: &str| format!("`{key}`: {what}, found `{value}`");
        match key {
            "max_unauthenticated" => {
                self.max_unauthenticated = Some(parse_count(value).map_err(|e| bad(&e))?)
            }
            "ban_after" => {
                self.ban_after = parse_count(value)
                    .map_err(|e| bad(&e))?
                    .try_into()
                    .map_err(|_| bad("too large"))?
            }
            "ban_window" => self.ban_window = parse_duration(value).map_err(|e| bad(&e))?,
            "ban_time" => {
                self.ban_time = parse_duration(value)
                    .ok()
                    .filter(|d| *d <= limits::MAX_BAN_TIME)
                    .ok_or_else(|| bad("expected a duration above zero, at most 24h"))?
            }
            "ban_exempt" => self.ban_exempt = cidr::parse_list(value).map_err(|e| bad(&e))?,
            "max_passive_per_ip" => {
                self.max_passive_per_ip = Some(parse_count(value).map_err(|e| bad(&e))?)
            }
            "health_from" => self.health_from = cidr::parse_list(value).map_err(|e| bad(&e))?,
            "ban_share_interval" if value == "off" => self.ban_share_interval = None,
            "ban_share_interval" => {
                self.ban_share_interval = Some(parse_duration(value).map_err(|e| bad(&e))?)
            }
            "ban_share_prefix" => {
                let fine = !value.is_empty()
                    && value.len() <= 256
                    && !value.starts_with('/')
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b));
                if !fine {
                    return Err(bad("expected a key prefix of letters, digits, `/-_.`"));
                }
                self.ban_share_prefix = value.to_string();
            }
            "tls_handshake_timeout" => {
                self.tls_handshake_timeout = parse_duration(value).map_err(|e| bad(&e))?
            }
            "ipv6_prefix" => {
                self.ipv6_prefix = value
                    .trim_start_matches('/')
                    .parse::<u8>()
                    .ok()
                    .filter(|p| (1..=128).contains(p))
                    .ok_or_else(|| bad("expected a prefix length from 1 to 128"))?
            }
            _ => return Err(format!("unknown key `{key}`")),
        }
        Ok(())
    }

    /// `max_unauthenticated`, or its default for `max_sessions`.
    pub fn unauthenticated_limit(&self, max_sessions: usize) -> usize {
        self.max_unauthenticated
            .unwrap_or((max_sessions / limits::UNAUTHENTICATED_SHARE_DIVISOR).max(1))
    }

    /// `max_passive_per_ip`, or its default for a pool of `pool` ports.
    pub fn passive_per_ip_limit(&self, pool: usize) -> usize {
        self.max_passive_per_ip
            .unwrap_or((pool / limits::PASSIVE_SHARE_DIVISOR).max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(key: &str, value: &str) -> Result<Defence, String> {
        let mut d = Defence::defaults();
        d.set(key, value).map(|()| d)
    }

    #[test]
    fn defaults_derive_from_the_session_cap() {
        // Half of max_sessions waits unauthenticated at most.
        assert_eq!(Defence::defaults().unauthenticated_limit(2000), 1000);
    }

    #[test]
    fn defaults_never_reach_zero() {
        // A tiny cap still lets one connection log in.
        assert_eq!(Defence::defaults().unauthenticated_limit(1), 1);
        assert_eq!(Defence::defaults().passive_per_ip_limit(1), 1);
    }

    #[test]
    fn passive_share_is_a_fraction_of_the_pool() {
        // 1000 ports: one address may hold a tenth.
        assert_eq!(Defence::defaults().passive_per_ip_limit(1000), 100);
    }

    #[test]
    fn explicit_values_win() {
        // An operator's number replaces the derived default.
        assert_eq!(
            set("max_unauthenticated", "7")
                .unwrap()
                .unauthenticated_limit(2000),
            7
        );
        assert_eq!(
            set("max_passive_per_ip", "3")
                .unwrap()
                .passive_per_ip_limit(1000),
            3
        );
    }

    #[test]
    fn zero_is_refused() {
        // 0 would refuse every login; `ban_after = 0` would ban at once.
        assert!(set("max_unauthenticated", "0").is_err());
        assert!(set("ban_after", "0").is_err());
    }

    #[test]
    fn ban_time_is_capped() {
        // Doubling starts from ban_time and stops at 24 h.
        assert!(set("ban_time", "25h").is_err());
        assert_eq!(
            set("ban_time", "10m").unwrap().ban_time,
            Duration::from_secs(600)
        );
    }

    #[test]
    fn ipv6_prefix_is_a_length() {
        // 64 by default; `/56` and `56` are the same; 0 and 129 are not lengths.
        assert_eq!(Defence::defaults().ipv6_prefix, 64);
        assert_eq!(set("ipv6_prefix", "/56").unwrap().ipv6_prefix, 56);
        assert_eq!(set("ipv6_prefix", "128").unwrap().ipv6_prefix, 128);
        assert!(set("ipv6_prefix", "0").is_err());
        assert!(set("ipv6_prefix", "129").is_err());
    }

    #[test]
    fn cidr_lists() {
        // Same syntax as proxy_from.
        assert_eq!(
            set("ban_exempt", "10.0.0.0/8, 192.168.1.0/24")
                .unwrap()
                .ban_exempt
                .len(),
            2
        );
        assert!(set("health_from", "10.0.0.1/8").is_err());
    }
}
