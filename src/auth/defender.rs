//! The defender against password guessing across connections: failed logins
//! are scored per client address and per (address, user); an address past
//! `ban_after` failures within `ban_window` is banned for `ban_time`, twice
//! as long on each repeat (up to `MAX_BAN_TIME`). A banned address is
//! refused at connect, before any password hashing. Pure: every call takes
//! `now`, so the scoring is tested without threads or sleeps.
//!
//! Scores are leaky buckets: each failure adds one, and the score drains at
//! `ban_after` per `ban_window`. So a burst of `ban_after` failures bans,
//! while a device that mistypes now and then never does.
//!
//! Carrier-grade NAT: many devices may share one public address (RFC 6888),
//! and one misbehaving neighbour must not lock them all out. An address
//! from which a login has succeeded within `DEFENDER_MEMORY` is a shared
//! address: when it is banned, connections are still taken, but only users
//! that have logged in from it before may try a password; every other user
//! name is refused before hashing. Each (address, user) pair also has its
//! own score: guessing one device's password bans that pair (for
//! `ban_time`), not its neighbours. So on a shared address a device with
//! correct credentials is locked out only if its own user name is the one
//! being guessed, and for no longer than that pair's ban.
//!
//! IPv6 clients are scored by their /64 (`DEFENDER_IPV6_PREFIX`).
//! Memory is bounded: at most `MAX_DEFENDER_ENTRIES` addresses and as many
//! pairs; when full, idle entries go first, then the least suspicious.

use crate::config::cidr::Cidr;
use crate::limits::{DEFENDER_IPV6_PREFIX, DEFENDER_MEMORY, MAX_BAN_TIME, MAX_DEFENDER_ENTRIES};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

/// The defender's settings (the `ban_*` keys).
#[derive(Debug, Clone)]
pub struct Settings {
    pub ban_after: u32,
    pub ban_window: Duration,
    pub ban_time: Duration,
    pub exempt: Vec<Cidr>,
}

/// What a new connection from an address may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Banned, but devices log in from this address: only users that have
    /// logged in from it before may try.
    KnownUsersOnly,
    /// Banned: refuse (421) until then.
    Refuse(Instant),
}

/// A ban that just began (logged and counted once by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ban {
    /// True: the whole address; false: one (address, user) pair.
    pub address: bool,
    pub length: Duration,
}

#[derive(Debug, Clone)]
struct Score {
    value: f64,
    at: Instant,
    banned_until: Option<Instant>,
    /// Bans so far (the next one lasts `ban_time * 2^offences`).
    offences: u32,
    /// When a login last succeeded (from the address, or as the pair).
    success: Option<Instant>,
}

impl Score {
    fn new(now: Instant) -> Score {
        Score {
            value: 0.0,
            at: now,
            banned_until: None,
            offences: 0,
            success: None,
        }
    }

    fn drained(&self, now: Instant, rate: f64) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (self.value - elapsed * rate).max(0.0)
    }

    /// Counts one failure at `now`; past `threshold`, bans for `length`
    /// and returns true. A banned score does not count (it is refused
    /// before any password check).
    fn fail(&mut self, now: Instant, rate: f64, threshold: f64, length: Duration) -> bool {
        if self.banned(now) {
            return false;
        }
        self.value = self.drained(now, rate) + 1.0;
        self.at = now;
        if self.value < threshold {
            return false;
        }
        self.value = 0.0;
        self.banned_until = Some(now + length);
        self.offences = self.offences.saturating_add(1);
        true
    }

    fn banned(&self, now: Instant) -> bool {
        self.banned_until.is_some_and(|until| now < until)
    }

    fn known(&self, now: Instant) -> bool {
        self.success
            .is_some_and(|at| now.saturating_duration_since(at) < DEFENDER_MEMORY)
    }

    /// Nothing left worth remembering.
    fn idle(&self, now: Instant, rate: f64) -> bool {
        let ban_over = self
            .banned_until
            .is_none_or(|until| now.saturating_duration_since(until) >= DEFENDER_MEMORY);
        self.drained(now, rate) == 0.0 && ban_over && !self.known(now)
    }
}

pub struct Defender {
    settings: Settings,
    addresses: HashMap<IpAddr, Score>,
    pairs: HashMap<(IpAddr, String), Score>,
}

/// The address as scored: IPv4 as is, IPv6 by its /64.
fn key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mask = u128::MAX << (128 - u32::from(DEFENDER_IPV6_PREFIX));
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
        v4 => v4,
    }
}

/// Makes room for one more entry: drops idle ones, then the least
/// suspicious one that is not banned. False when every entry is banned.
fn make_room<K: Eq + Hash + Clone>(map: &mut HashMap<K, Score>, now: Instant, rate: f64) -> bool {
    if map.len() < MAX_DEFENDER_ENTRIES {
        return true;
    }
    map.retain(|_, s| !s.idle(now, rate));
    if map.len() < MAX_DEFENDER_ENTRIES {
        return true;
    }
    let victim = map
        .iter()
        .filter(|(_, s)| !s.banned(now))
        .min_by(|a, b| a.1.drained(now, rate).total_cmp(&b.1.drained(now, rate)))
        .map(|(k, _)| k.clone());
    match victim {
        Some(k) => {
            map.remove(&k);
            true
        }
        None => false,
    }
}

impl Defender {
    pub fn new(settings: Settings) -> Defender {
        Defender {
            settings,
            addresses: HashMap::new(),
            pairs: HashMap::new(),
        }
    }

    /// Drain per second, in failures.
    fn rate(&self) -> f64 {
        f64::from(self.settings.ban_after) / self.settings.ban_window.as_secs_f64().max(0.001)
    }

    fn exempt(&self, ip: IpAddr) -> bool {
        self.settings.exempt.iter().any(|c| c.contains(ip))
    }

    /// May a connection from `ip` be served?
    pub fn connect(&self, ip: IpAddr, now: Instant) -> Gate {
        if self.exempt(ip) {
            return Gate::Open;
        }
        match self.addresses.get(&key(ip)) {
            Some(s) if s.banned(now) && s.known(now) => Gate::KnownUsersOnly,
            Some(s) if s.banned(now) => Gate::Refuse(s.banned_until.unwrap_or(now)),
            _ => Gate::Open,
        }
    }

    /// May `user` try a password from `ip` now? Asked before hashing.
    pub fn may_try(&self, ip: IpAddr, user: &str, now: Instant) -> bool {
        if self.exempt(ip) {
            return true;
        }
        let address = key(ip);
        let pair = self.pairs.get(&(address, user.to_string()));
        if pair.is_some_and(|p| p.banned(now)) {
            return false;
        }
        match self.addresses.get(&address) {
            Some(s) if s.banned(now) => pair.is_some_and(|p| p.known(now)),
            _ => true,
        }
    }

    /// A failed login. Returns the ban it started, if any.
    pub fn failed(&mut self, ip: IpAddr, user: &str, now: Instant) -> Option<Ban> {
        if self.exempt(ip) {
            return None;
        }
        let rate = self.rate();
        let threshold = f64::from(self.settings.ban_after) - 0.5;
        let address = key(ip);
        let mut started = None;

        let pair_key = (address, user.to_string());
        if self.pairs.contains_key(&pair_key) || make_room(&mut self.pairs, now, rate) {
            let pair = self
                .pairs
                .entry(pair_key)
                .or_insert_with(|| Score::new(now));
            // A pair's ban does not double: the device's own name is being
            // guessed, and it must be able to log in again after ban_time.
            let length = self.settings.ban_time;
            if pair.fail(now, rate, threshold, length) {
                started = Some(Ban {
                    address: false,
                    length,
                });
            }
        }

        if self.addresses.contains_key(&address) || make_room(&mut self.addresses, now, rate) {
            let score = self
                .addresses
                .entry(address)
                .or_insert_with(|| Score::new(now));
            let length = ban_length(self.settings.ban_time, score.offences);
            if score.fail(now, rate, threshold, length) {
                started = Some(Ban {
                    address: true,
                    length,
                });
            }
        }
        started
    }

    /// A successful login: the pair is known (and its score cleared), and the
    /// address is known to host a real device (see the module comment).
    pub fn succeeded(&mut self, ip: IpAddr, user: &str, now: Instant) {
        if self.exempt(ip) {
            return;
        }
        let rate = self.rate();
        let address = key(ip);
        let pair_key = (address, user.to_string());
        if self.pairs.contains_key(&pair_key) || make_room(&mut self.pairs, now, rate) {
            let pair = self
                .pairs
                .entry(pair_key)
                .or_insert_with(|| Score::new(now));
            pair.value = 0.0;
            pair.at = now;
            pair.success = Some(now);
        }
        if self.addresses.contains_key(&address) || make_room(&mut self.addresses, now, rate) {
            let score = self
                .addresses
                .entry(address)
                .or_insert_with(|| Score::new(now));
            score.success = Some(now);
        }
    }

    /// Addresses and pairs tracked now (for tests and the memory bound).
    pub fn tracked(&self) -> usize {
        self.addresses.len() + self.pairs.len()
    }
}

/// `ban_time` doubled per earlier offence, at most `MAX_BAN_TIME`.
fn ban_length(ban_time: Duration, offences: u32) -> Duration {
    let factor = 1u32.checked_shl(offences.min(31)).unwrap_or(u32::MAX);
    ban_time.saturating_mul(factor).min(MAX_BAN_TIME)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn defender() -> Defender {
        Defender::new(Settings {
            ban_after: 5,
            ban_window: 10 * MINUTE,
            ban_time: 15 * MINUTE,
            exempt: vec![Cidr::parse("10.0.0.0/8").unwrap()],
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn fail(d: &mut Defender, who: &str, user: &str, now: Instant, n: u32) -> Option<Ban> {
        let mut last = None;
        for _ in 0..n {
            last = d.failed(ip(who), user, now).or(last);
        }
        last
    }

    #[test]
    fn below_ban_after_nothing_happens() {
        // Four failures of five allowed: still open.
        let mut d = defender();
        let now = Instant::now();
        assert_eq!(fail(&mut d, "192.0.2.1", "a", now, 4), None);
        assert_eq!(d.connect(ip("192.0.2.1"), now), Gate::Open);
    }

    #[test]
    fn ban_after_failures_bans_the_address() {
        // The fifth failure starts a ban of ban_time; connects are refused.
        let mut d = defender();
        let now = Instant::now();
        let ban = fail(&mut d, "192.0.2.1", "a", now, 5).unwrap();
        assert!(ban.address);
        assert_eq!(ban.length, 15 * MINUTE);
        assert_eq!(
            d.connect(ip("192.0.2.1"), now),
            Gate::Refuse(now + 15 * MINUTE)
        );
        assert_eq!(d.connect(ip("192.0.2.2"), now), Gate::Open);
    }

    #[test]
    fn spread_out_failures_drain() {
        // One failure every three minutes drains faster than it fills.
        let mut d = defender();
        let start = Instant::now();
        for i in 0..20 {
            assert_eq!(d.failed(ip("192.0.2.1"), "a", start + i * 3 * MINUTE), None);
        }
    }

    #[test]
    fn the_ban_ends() {
        // After ban_time the address may connect again.
        let mut d = defender();
        let now = Instant::now();
        fail(&mut d, "192.0.2.1", "a", now, 5);
        assert_eq!(d.connect(ip("192.0.2.1"), now + 15 * MINUTE), Gate::Open);
    }

    #[test]
    fn repeats_double_up_to_the_cap() {
        // 15 min, then 30 min, 60 min ... never above 24 h.
        let mut d = defender();
        let mut now = Instant::now();
        let mut lengths = Vec::new();
        for _ in 0..10 {
            let ban = fail(&mut d, "192.0.2.1", "a", now, 5).unwrap();
            lengths.push(ban.length);
            now += ban.length;
        }
        assert_eq!(lengths[0], 15 * MINUTE);
        assert_eq!(lengths[1], 30 * MINUTE);
        assert_eq!(lengths[2], 60 * MINUTE);
        assert_eq!(*lengths.last().unwrap(), MAX_BAN_TIME);
    }

    #[test]
    fn a_ban_is_reported_once() {
        // Failures during the ban start no new ban (logged once each).
        let mut d = defender();
        let now = Instant::now();
        assert!(fail(&mut d, "192.0.2.1", "a", now, 5).is_some());
        assert_eq!(fail(&mut d, "192.0.2.1", "a", now, 5), None);
    }

    #[test]
    fn exempt_networks_are_never_banned() {
        // ban_exempt: the operator's own networks.
        let mut d = defender();
        let now = Instant::now();
        assert_eq!(fail(&mut d, "10.1.2.3", "a", now, 50), None);
        assert_eq!(d.connect(ip("10.1.2.3"), now), Gate::Open);
        assert_eq!(d.tracked(), 0);
    }

    #[test]
    fn shared_address_lets_known_devices_in() {
        // CGNAT: a device that logged in before keeps trying its password
        // while the neighbours' guessing bans the address.
        let mut d = defender();
        let now = Instant::now();
        d.succeeded(ip("198.51.100.7"), "device1", now);
        fail(&mut d, "198.51.100.7", "root", now, 5);
        assert_eq!(d.connect(ip("198.51.100.7"), now), Gate::KnownUsersOnly);
        assert!(d.may_try(ip("198.51.100.7"), "device1", now));
        assert!(!d.may_try(ip("198.51.100.7"), "root", now));
        assert!(!d.may_try(ip("198.51.100.7"), "device2", now));
    }

    #[test]
    fn guessing_one_user_bans_that_pair() {
        // The guessed user's pair is banned; the address, known, stays open.
        let mut d = defender();
        let now = Instant::now();
        d.succeeded(ip("198.51.100.7"), "device1", now);
        d.succeeded(ip("198.51.100.7"), "device2", now);
        let ban = fail(&mut d, "198.51.100.7", "device1", now, 5).unwrap();
        assert!(ban.address, "the address ban is the one reported");
        assert!(!d.may_try(ip("198.51.100.7"), "device1", now));
        assert!(d.may_try(ip("198.51.100.7"), "device2", now));
        assert!(d.may_try(ip("198.51.100.7"), "device1", now + 15 * MINUTE));
    }

    #[test]
    fn ipv6_is_scored_by_its_64() {
        // Rotating through one /64 does not escape the score.
        let mut d = defender();
        let now = Instant::now();
        for i in 1..=5 {
            d.failed(ip(&format!("2001:db8:1:2::{i}")), "a", now);
        }
        assert!(matches!(
            d.connect(ip("2001:db8:1:2::99"), now),
            Gate::Refuse(_)
        ));
        assert_eq!(d.connect(ip("2001:db8:1:3::1"), now), Gate::Open);
    }

    #[test]
    fn mapped_ipv4_is_the_same_address() {
        // A dual-stack socket's ::ffff:a.b.c.d is its IPv4 address.
        let mut d = defender();
        let now = Instant::now();
        fail(&mut d, "::ffff:192.0.2.1", "a", now, 5);
        assert!(matches!(d.connect(ip("192.0.2.1"), now), Gate::Refuse(_)));
    }

    #[test]
    fn memory_is_bounded() {
        // Failures from more addresses than the table holds: it stays full.
        let mut d = defender();
        let now = Instant::now();
        for i in 0..(MAX_DEFENDER_ENTRIES as u32 + 10) {
            d.failed(IpAddr::from((0xC000_0000u32 + i).to_be_bytes()), "a", now);
        }
        assert!(d.addresses.len() <= MAX_DEFENDER_ENTRIES);
        assert!(d.pairs.len() <= MAX_DEFENDER_ENTRIES);
    }
}
