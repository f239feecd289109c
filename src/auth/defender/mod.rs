//! The defender against password guessing across connections: failed logins
//! are scored per client (`sys::client::ClientKey`: an IPv4 address or an
//! IPv6 /64), per wider group (IPv6 /48, IPv4 /24) and per (client, user);
//! a client past `ban_after` failures within `ban_window` is banned for
//! `ban_time`, twice as long on each repeat (up to `MAX_BAN_TIME`). A
//! banned client is refused at connect, before any password hashing. Pure:
//! every call takes `now`, so the scoring is tested without threads or
//! sleeps.
//!
//! Scores are leaky buckets: each failure adds one, and the score drains at
//! `ban_after` per `ban_window`. So a burst of `ban_after` failures bans,
//! while a device that mistypes now and then never does.
//!
//! Exact under concurrency: a password check first takes its place in the
//! scores (`reserve`), before its hash runs: failures so far plus checks
//! running may not pass `ban_after`. When they would, the check waits
//! (`Reserve::Wait`) rather than being refused: a running check that
//! succeeds gives its place back (`succeeded`), one that fails keeps it as
//! a failure and may start the ban (`failed`), after which the waiters are
//! refused. So at most `ban_after` checks fail per window however many
//! connections send PASS at the same moment, while devices logging in at
//! once behind one address only queue for a few hash times.
//!
//! Wider groups: one site holds 65,536 /64s, so the /48 (and, for IPv4, the
//! /24) is scored too, banned after `WIDE_IPV6_BAN_FACTOR` (`_IPV4_`)
//! times `ban_after`. Higher for IPv4 because of carrier-grade NAT.
//!
//! Carrier-grade NAT: many devices may share one public address (RFC 6888),
//! and one misbehaving neighbour must not lock them all out. A client from
//! which a login has succeeded within `DEFENDER_MEMORY` is a shared
//! address: when it (or its wider group) is banned, connections are still
//! taken, but only users that have logged in from it before may try a
//! password; every other user name is refused before hashing. Each
//! (client, user) pair also has its own score, kept even for `ban_exempt`
//! addresses: guessing one device's password bans that pair, not its
//! neighbours, for `ban_time` doubled on each repeat like an address ban,
//! so guessing a known name behind a shared address slows down as much as
//! guessing from an address of one's own.
//!
//! Memory is bounded: at most `MAX_DEFENDER_ENTRIES` clients, as many wider
//! groups and as many pairs; when full, idle entries go first, then the
//! least suspicious.

use crate::config::cidr::Cidr;
use crate::limits::{
    DEFENDER_MEMORY, MAX_BAN_TIME, MAX_DEFENDER_ENTRIES, WIDE_IPV4_BAN_FACTOR, WIDE_IPV6_BAN_FACTOR,
};
use crate::sys::client::ClientKey;
use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// The defender's settings (the `ban_*` keys).
#[derive(Debug, Clone)]
pub struct Settings {
    pub ban_after: u32,
    pub ban_window: Duration,
    pub ban_time: Duration,
    pub exempt: Vec<Cidr>,
}

/// What a new connection from a client may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Banned, but devices log in from this client: only users that have
    /// logged in from it before may try.
    KnownUsersOnly,
    /// Banned: refuse (421) until then.
    Refuse(Instant),
}

/// What a ban covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One (client, user) pair.
    Pair,
    /// The client (an IPv4 address, an IPv6 prefix).
    Client,
    /// The client's wider group (IPv6 /48, IPv4 /24).
    Wide,
}

/// A ban that just began (logged and counted once by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ban {
    pub scope: Scope,
    pub length: Duration,
}

/// What `reserve` says about one more password check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserve {
    /// Counted: check, then settle with `failed` or `succeeded`.
    Go(Attempt),
    /// As many checks as the window allows are counted or running: ask
    /// again shortly (a running one may succeed and give its place back).
    Wait,
    /// Banned: refuse before hashing.
    Refused,
}

/// A password check's place in the scores, taken by `reserve` before the
/// hash runs and settled by `failed` or `succeeded`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    key: ClientKey,
    /// Which scores it was counted in (a known user behind a full client
    /// score is counted in its pair only).
    client: bool,
    wide: bool,
}

#[derive(Debug, Clone)]
struct Score {
    /// Failures, draining at `ban_after` per `ban_window`.
    value: f64,
    at: Instant,
    /// Checks counted but not settled yet (their hash is running).
    pending: u32,
    banned_until: Option<Instant>,
    /// Bans so far (the next one lasts `ban_time * 2^offences`).
    offences: u32,
    /// When a login last succeeded (from the client, or as the pair).
    success: Option<Instant>,
}

/// Why a score cannot count one more check now.
enum Full {
    Banned,
    /// As many checks are counted as the window allows: wait for one to
    /// settle (or for the score to drain).
    Busy,
}

impl Score {
    fn new(now: Instant) -> Score {
        Score {
            value: 0.0,
            at: now,
            pending: 0,
            banned_until: None,
            offences: 0,
            success: None,
        }
    }

    fn drained(&self, now: Instant, rate: f64) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (self.value - elapsed * rate).max(0.0)
    }

    /// May one more check be counted, with `limit` places in all (failures
    /// and checks running)?
    fn full(&self, now: Instant, rate: f64, limit: f64) -> Option<Full> {
        if self.banned(now) {
            return Some(Full::Banned);
        }
        let used = self.drained(now, rate) + f64::from(self.pending);
        (used + 1.0 > limit + 1e-9).then_some(Full::Busy)
    }

    fn take(&mut self) {
        self.pending = self.pending.saturating_add(1);
    }

    fn give_back(&mut self) {
        self.pending = self.pending.saturating_sub(1);
    }

    /// A counted check failed: one more failure; past `limit - 0.5`, bans
    /// for `ban_time` doubled per earlier ban and returns the length. A
    /// banned score starts no second ban.
    fn settle_failure(
        &mut self,
        now: Instant,
        rate: f64,
        limit: f64,
        ban_time: Duration,
    ) -> Option<Duration> {
        self.pending = self.pending.saturating_sub(1);
        if self.banned(now) {
            return None;
        }
        self.value = self.drained(now, rate) + 1.0;
        self.at = now;
        if self.value < limit - 0.5 {
            return None;
        }
        let length = ban_length(ban_time, self.offences);
        self.value = 0.0;
        self.banned_until = Some(now + length);
        self.offences = self.offences.saturating_add(1);
        Some(length)
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
        self.drained(now, rate) == 0.0 && self.pending == 0 && ban_over && !self.known(now)
    }
}

pub struct Defender {
    settings: Settings,
    clients: HashMap<ClientKey, Score>,
    wide: HashMap<ClientKey, Score>,
    pairs: HashMap<(ClientKey, String), Score>,
    /// Bans the other instances of the fleet made (`fleet.rs`), until when;
    /// replaced whole at each poll, bounded there.
    fleet: HashMap<ClientKey, Instant>,
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

/// The score of `key`, made when there is room (`None`: the table is full
/// of bans; the check is then not scored there).
fn score<K: Eq + Hash + Clone>(
    map: &mut HashMap<K, Score>,
    key: K,
    now: Instant,
    rate: f64,
) -> Option<&mut Score> {
    if !map.contains_key(&key) && !make_room(map, now, rate) {
        return None;
    }
    Some(map.entry(key).or_insert_with(|| Score::new(now)))
}

impl Defender {
    pub fn new(settings: Settings) -> Defender {
        Defender {
            settings,
            clients: HashMap::new(),
            wide: HashMap::new(),
            pairs: HashMap::new(),
            fleet: HashMap::new(),
        }
    }

    /// Drain per second, in failures (the wider group drains at its own
    /// limit per window, like the client).
    fn rate(&self, limit: f64) -> f64 {
        limit / self.settings.ban_window.as_secs_f64().max(0.001)
    }

    fn limit(&self) -> f64 {
        f64::from(self.settings.ban_after)
    }

    fn wide_limit(&self, key: ClientKey) -> f64 {
        let factor = if key.is_ipv6() {
            WIDE_IPV6_BAN_FACTOR
        } else {
            WIDE_IPV4_BAN_FACTOR
        };
        self.limit() * f64::from(factor)
    }

    fn exempt(&self, key: ClientKey) -> bool {
        self.settings
            .exempt
            .iter()
            .any(|c| c.contains(key.network()))
    }

    /// May a connection from `key` be served?
    pub fn connect(&self, key: ClientKey, now: Instant) -> Gate {
        if self.exempt(key) {
            return Gate::Open;
        }
        let client = self.clients.get(&key);
        let wide = self.wide.get(&key.wider());
        let until = [client, wide]
            .into_iter()
            .flatten()
            .filter_map(|s| s.banned_until.filter(|_| s.banned(now)))
            .chain(self.fleet_ban(key, now))
            .max();
        match until {
            None => Gate::Open,
            Some(_) if client.is_some_and(|s| s.known(now)) => Gate::KnownUsersOnly,
            Some(until) => Gate::Refuse(until),
        }
    }

    /// Takes a place for one password check of `user` from `key`, before
    /// any hashing (see the module comment).
    pub fn reserve(&mut self, key: ClientKey, user: &str, now: Instant) -> Reserve {
        let (limit, wide_limit) = (self.limit(), self.wide_limit(key));
        let (rate, wide_rate) = (self.rate(limit), self.rate(wide_limit));
        let exempt = self.exempt(key);
        let pair_key = (key, user.to_string());
        let pair = self.pairs.get(&pair_key);
        // SECURITY: the pair is scored even for an exempt client.
        match pair.and_then(|p| p.full(now, rate, limit)) {
            Some(Full::Banned) => return Reserve::Refused,
            Some(Full::Busy) => return Reserve::Wait,
            None => {}
        }
        let known = pair.is_some_and(|p| p.known(now));
        let client = match exempt {
            true => None,
            false => (self.clients.get(&key)).and_then(|s| s.full(now, rate, limit)),
        };
        let wide = match exempt {
            true => None,
            false => (self.wide.get(&key.wider())).and_then(|s| s.full(now, wide_rate, wide_limit)),
        };
        let fleet = !exempt && self.fleet_ban(key, now).is_some();
        // SECURITY: behind a full or banned client (here or on another
        // instance), only a user that logged in from it before may try
        // (see the module comment); others wait for a place, or are
        // refused while a ban runs.
        if !known {
            if fleet
                || matches!(
                    (&client, &wide),
                    (Some(Full::Banned), _) | (_, Some(Full::Banned))
                )
            {
                return Reserve::Refused;
            }
            if client.is_some() || wide.is_some() {
                return Reserve::Wait;
            }
        }
        if let Some(p) = score(&mut self.pairs, pair_key, now, rate) {
            p.take();
        }
        let attempt = Attempt {
            key,
            client: !exempt && client.is_none(),
            wide: !exempt && wide.is_none(),
        };
        if attempt.client {
            if let Some(s) = score(&mut self.clients, key, now, rate) {
                s.take();
            }
        }
        if attempt.wide {
            if let Some(s) = score(&mut self.wide, key.wider(), now, wide_rate) {
                s.take();
            }
        }
        Reserve::Go(attempt)
    }

    /// A reserved check failed. Returns the widest ban it started, if any.
    pub fn failed(&mut self, attempt: Attempt, user: &str, now: Instant) -> Option<Ban> {
        let (limit, wide_limit) = (self.limit(), self.wide_limit(attempt.key));
        let (rate, wide_rate) = (self.rate(limit), self.rate(wide_limit));
        let ban_time = self.settings.ban_time;
        let mut started = None;
        let mut ban = |scope, length: Option<Duration>| {
            if let Some(length) = length {
                started = Some(Ban { scope, length });
            }
        };
        if let Some(p) = self.pairs.get_mut(&(attempt.key, user.to_string())) {
            ban(Scope::Pair, p.settle_failure(now, rate, limit, ban_time));
        }
        if attempt.client {
            if let Some(s) = self.clients.get_mut(&attempt.key) {
                ban(Scope::Client, s.settle_failure(now, rate, limit, ban_time));
            }
        }
        if attempt.wide {
            if let Some(s) = self.wide.get_mut(&attempt.key.wider()) {
                let length = s.settle_failure(now, wide_rate, wide_limit, ban_time);
                ban(Scope::Wide, length);
            }
        }
        started
    }

    /// A reserved check succeeded: its places are given back, the pair is
    /// known (and its score cleared), and the client is known to host a
    /// real device (see the module comment).
    pub fn succeeded(&mut self, attempt: Attempt, user: &str, now: Instant) {
        let rate = self.rate(self.limit());
        let key = attempt.key;
        if let Some(p) = score(&mut self.pairs, (key, user.to_string()), now, rate) {
            p.give_back();
            p.value = 0.0;
            p.at = now;
            p.success = Some(now);
        }
        if self.exempt(key) {
            return;
        }
        if let Some(s) = score(&mut self.clients, key, now, rate) {
            if attempt.client {
                s.give_back();
            }
            s.success = Some(now);
        }
        if attempt.wide {
            if let Some(s) = self.wide.get_mut(&key.wider()) {
                s.give_back();
            }
        }
    }

    /// Gives a counted check's places back without a verdict (tests ask
    /// whether a check may run without leaving a trace).
    #[cfg(test)]
    fn release(&mut self, attempt: Attempt, user: &str) {
        let pair = self.pairs.get_mut(&(attempt.key, user.to_string()));
        pair.into_iter().for_each(Score::give_back);
        if attempt.client {
            self.clients.get_mut(&attempt.key).map(Score::give_back);
        }
        if attempt.wide {
            self.wide
                .get_mut(&attempt.key.wider())
                .map(Score::give_back);
        }
    }

    /// When another instance's ban of `key` (or of its wider group) ends.
    fn fleet_ban(&self, key: ClientKey, now: Instant) -> Option<Instant> {
        [key, key.wider()]
            .iter()
            .filter_map(|k| self.fleet.get(k).copied())
            .filter(|until| *until > now)
            .max()
    }

    /// This instance's bans running at `now` (`unix`: the same moment in
    /// Unix seconds), clients and wider groups, for the fleet; the most
    /// recent first, at most `MAX_SHARED_BANS`.
    pub fn own_bans(&self, now: Instant, unix: u64) -> Vec<fleet::SharedBan> {
        let mut bans: Vec<fleet::SharedBan> =
            [(&self.clients, Scope::Client), (&self.wide, Scope::Wide)]
                .into_iter()
                .flat_map(|(map, scope)| {
                    map.iter()
                        .filter(|(_, s)| s.banned(now))
                        .filter_map(move |(key, s)| {
                            let left = s.banned_until?.saturating_duration_since(now);
                            Some(fleet::SharedBan {
                                key: *key,
                                until: unix + left.as_secs(),
                                scope,
                            })
                        })
                })
                .collect();
        bans.sort_by_key(|b| (std::cmp::Reverse(b.until), b.key.to_string()));
        bans.truncate(crate::limits::MAX_SHARED_BANS);
        bans
    }

    /// Replaces the other instances' bans (`until` as `Instant`s here).
    pub fn set_fleet_bans(&mut self, bans: HashMap<ClientKey, Instant>) {
        self.fleet = bans;
    }

    /// Clients, wider groups and pairs tracked now (for tests and the
    /// memory bound).
    pub fn tracked(&self) -> usize {
        self.clients.len() + self.wide.len() + self.pairs.len()
    }
}

/// `ban_time` doubled per earlier offence, at most `MAX_BAN_TIME`.
fn ban_length(ban_time: Duration, offences: u32) -> Duration {
    let factor = 1u32.checked_shl(offences.min(31)).unwrap_or(u32::MAX);
    ban_time.saturating_mul(factor).min(MAX_BAN_TIME)
}

pub mod fleet;
#[cfg(test)]
mod tests;
