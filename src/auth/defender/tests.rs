//! The defender's scoring, with `now` injected: bans, reservations under
//! concurrency, wider groups, shared addresses and the memory bound.

use super::*;
use std::net::IpAddr;

const MINUTE: Duration = Duration::from_secs(60);

fn defender() -> Defender {
    Defender::new(Settings {
        ban_after: 5,
        ban_window: 10 * MINUTE,
        ban_time: 15 * MINUTE,
        exempt: vec![Cidr::parse("10.0.0.0/8").unwrap()],
    })
}

fn ip(s: &str) -> ClientKey {
    ClientKey::new(s.parse().unwrap(), 64)
}

/// `n` checks one after the other, each failing; the last ban started.
fn fail(d: &mut Defender, who: &str, user: &str, now: Instant, n: u32) -> Option<Ban> {
    let mut last = None;
    for _ in 0..n {
        if let Reserve::Go(attempt) = d.reserve(ip(who), user, now) {
            last = d.failed(attempt, user, now).or(last);
        }
    }
    last
}

/// Whether a check may run now (its place is given back at once: asking
/// leaves no trace).
fn may(d: &mut Defender, key: ClientKey, user: &str, now: Instant) -> bool {
    match d.reserve(key, user, now) {
        Reserve::Go(attempt) => {
            d.release(attempt, user);
            true
        }
        Reserve::Wait | Reserve::Refused => false,
    }
}

fn succeed(d: &mut Defender, who: &str, user: &str, now: Instant) {
    let Reserve::Go(attempt) = d.reserve(ip(who), user, now) else {
        panic!("may not try")
    };
    d.succeeded(attempt, user, now);
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
    assert_eq!(ban.scope, Scope::Client);
    assert_eq!(ban.length, 15 * MINUTE);
    assert_eq!(
        d.connect(ip("192.0.2.1"), now),
        Gate::Refuse(now + 15 * MINUTE)
    );
    assert_eq!(d.connect(ip("192.0.2.2"), now), Gate::Open);
}

#[test]
fn concurrent_checks_are_counted_before_they_run() {
    // Twenty PASS at once: five run, the others wait; the five fail, the
    // fifth failure starts the ban, and the waiters are then refused.
    let mut d = defender();
    let now = Instant::now();
    let mut attempts = Vec::new();
    for _ in 0..20 {
        match d.reserve(ip("192.0.2.1"), "a", now) {
            Reserve::Go(a) => attempts.push(a),
            other => assert_eq!(other, Reserve::Wait),
        }
    }
    assert_eq!(attempts.len(), 5);
    let bans: Vec<_> = attempts
        .into_iter()
        .filter_map(|a| d.failed(a, "a", now))
        .collect();
    assert_eq!(bans.len(), 1, "one ban, reported once");
    assert_eq!(d.reserve(ip("192.0.2.1"), "a", now), Reserve::Refused);
    assert!(matches!(d.connect(ip("192.0.2.1"), now), Gate::Refuse(_)));
}

#[test]
fn concurrent_logins_that_succeed_only_queue() {
    // Twenty devices behind one address log in at once: five run, fifteen
    // wait; each success makes room for a waiter, and nobody is refused.
    let mut d = defender();
    let now = Instant::now();
    let mut waiting: Vec<String> = (0..20).map(|i| format!("dev{i}")).collect();
    let mut logged_in = 0;
    while !waiting.is_empty() {
        let mut running = Vec::new();
        waiting.retain(|user| match d.reserve(ip("192.0.2.1"), user, now) {
            Reserve::Go(a) => {
                running.push((a, user.clone()));
                false
            }
            Reserve::Wait => true,
            Reserve::Refused => panic!("{user} refused"),
        });
        assert!(running.len() <= 5);
        for (a, user) in running {
            d.succeeded(a, &user, now);
            logged_in += 1;
        }
    }
    assert_eq!(logged_in, 20);
}

#[test]
fn a_success_gives_its_place_back() {
    // A device that logs in does not use up its address's places.
    let mut d = defender();
    let now = Instant::now();
    for _ in 0..20 {
        succeed(&mut d, "192.0.2.1", "a", now);
    }
    assert_eq!(fail(&mut d, "192.0.2.1", "b", now, 4), None);
}

#[test]
fn spread_out_failures_drain() {
    // One failure every three minutes drains faster than it fills.
    let mut d = defender();
    let start = Instant::now();
    for i in 0..20 {
        assert_eq!(
            fail(&mut d, "192.0.2.1", "a", start + i * 3 * MINUTE, 1),
            None
        );
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
fn exempt_networks_are_never_banned_but_their_pairs_are() {
    // ban_exempt: the operator's own networks keep connecting, but a
    // name guessed from there is banned for that network, and longer
    // each time.
    let mut d = defender();
    let mut now = Instant::now();
    let first = fail(&mut d, "10.1.2.3", "a", now, 50).unwrap();
    assert_eq!(first.scope, Scope::Pair);
    assert_eq!(d.connect(ip("10.1.2.3"), now), Gate::Open);
    assert!(may(&mut d, ip("10.1.2.3"), "b", now));
    assert!(!may(&mut d, ip("10.1.2.3"), "a", now));
    now += first.length;
    let second = fail(&mut d, "10.1.2.3", "a", now, 5).unwrap();
    assert_eq!(second.length, 2 * first.length);
}

#[test]
fn shared_address_lets_known_devices_in() {
    // CGNAT: a device that logged in before keeps trying its password
    // while the neighbours' guessing bans the address.
    let mut d = defender();
    let now = Instant::now();
    succeed(&mut d, "198.51.100.7", "device1", now);
    fail(&mut d, "198.51.100.7", "root", now, 5);
    assert_eq!(d.connect(ip("198.51.100.7"), now), Gate::KnownUsersOnly);
    assert!(may(&mut d, ip("198.51.100.7"), "device1", now));
    assert!(!may(&mut d, ip("198.51.100.7"), "root", now));
    assert!(!may(&mut d, ip("198.51.100.7"), "device2", now));
}

#[test]
fn guessing_one_user_bans_that_pair_and_the_pair_ban_grows() {
    // Behind a shared address the guessed user's pair is banned (its
    // neighbours keep trying), and each repeat doubles it, like an
    // address ban: 15, 30, 60 minutes.
    let mut d = defender();
    let mut now = Instant::now();
    succeed(&mut d, "198.51.100.7", "device1", now);
    succeed(&mut d, "198.51.100.7", "device2", now);
    for length in [15 * MINUTE, 30 * MINUTE, 60 * MINUTE] {
        assert!(fail(&mut d, "198.51.100.7", "device1", now, 5).is_some());
        assert!(may(&mut d, ip("198.51.100.7"), "device2", now));
        let before_end = now + length - MINUTE;
        assert!(!may(&mut d, ip("198.51.100.7"), "device1", before_end));
        now += length;
        assert!(may(&mut d, ip("198.51.100.7"), "device1", now));
    }
}

#[test]
fn ipv6_is_scored_by_its_64() {
    // Rotating through one /64 does not escape the score.
    let mut d = defender();
    let now = Instant::now();
    for i in 1..=5 {
        fail(&mut d, &format!("2001:db8:1:2::{i}"), "a", now, 1);
    }
    assert!(matches!(
        d.connect(ip("2001:db8:1:2::99"), now),
        Gate::Refuse(_)
    ));
    assert_eq!(d.connect(ip("2001:db8:1:3::1"), now), Gate::Open);
}

#[test]
fn rotating_64s_of_one_48_is_scored_by_the_48() {
    // 4 x ban_after failures spread over /64s of one /48 ban the /48;
    // another /48 stays open.
    let mut d = defender();
    let now = Instant::now();
    let mut checks = 0;
    for net in 0..40 {
        for _ in 0..4 {
            if let Reserve::Go(a) = d.reserve(ip(&format!("2001:db8:1:{net:x}::1")), "a", now) {
                checks += 1;
                d.failed(a, "a", now);
            }
        }
    }
    assert_eq!(checks, 4 * 5);
    assert!(matches!(
        d.connect(ip("2001:db8:1:ffff::1"), now),
        Gate::Refuse(_)
    ));
    assert_eq!(d.connect(ip("2001:db8:2::1"), now), Gate::Open);
}

#[test]
fn an_ipv4_24_needs_more_for_carrier_grade_nat() {
    // 5 failures from each of 9 addresses of a /24 (45 < 50) ban those
    // addresses but not the /24; a device that logged in from the /24
    // keeps its way in through a /24 ban.
    let mut d = defender();
    let now = Instant::now();
    succeed(&mut d, "203.0.113.200", "device", now);
    for host in 1..=9 {
        fail(&mut d, &format!("203.0.113.{host}"), "a", now, 5);
    }
    assert_eq!(d.connect(ip("203.0.113.100"), now), Gate::Open);
    fail(&mut d, "203.0.113.10", "a", now, 5);
    assert!(matches!(
        d.connect(ip("203.0.113.100"), now),
        Gate::Refuse(_)
    ));
    assert_eq!(d.connect(ip("203.0.113.200"), now), Gate::KnownUsersOnly);
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
        let key = ClientKey::new(IpAddr::from((0xC000_0000u32 + i).to_be_bytes()), 64);
        if let Reserve::Go(a) = d.reserve(key, "a", now) {
            d.failed(a, "a", now);
        }
    }
    assert!(d.clients.len() <= MAX_DEFENDER_ENTRIES);
    assert!(d.wide.len() <= MAX_DEFENDER_ENTRIES);
    assert!(d.pairs.len() <= MAX_DEFENDER_ENTRIES);
}

#[test]
fn bans_of_other_instances_refuse_like_own_ones() {
    // A client banned elsewhere is refused here until that ban ends; its
    // /48 banned elsewhere refuses its /64s; a known device keeps trying.
    let mut d = defender();
    let now = Instant::now();
    succeed(&mut d, "192.0.2.9", "device", now);
    let fleet = [
        (ip("192.0.2.1"), now + 10 * MINUTE),
        (ip("2001:db8:7::1").wider(), now + 10 * MINUTE),
        (ip("192.0.2.9"), now + 10 * MINUTE),
    ];
    d.set_fleet_bans(fleet.into_iter().collect());
    assert!(matches!(d.connect(ip("192.0.2.1"), now), Gate::Refuse(_)));
    assert!(!may(&mut d, ip("192.0.2.1"), "a", now));
    assert!(matches!(
        d.connect(ip("2001:db8:7:5::1"), now),
        Gate::Refuse(_)
    ));
    assert_eq!(d.connect(ip("192.0.2.9"), now), Gate::KnownUsersOnly);
    assert!(may(&mut d, ip("192.0.2.9"), "device", now));
    assert_eq!(d.connect(ip("192.0.2.1"), now + 10 * MINUTE), Gate::Open);
}

#[test]
fn own_bans_are_exported_for_the_fleet() {
    let mut d = defender();
    let now = Instant::now();
    fail(&mut d, "192.0.2.1", "a", now, 5);
    let bans = d.own_bans(now, 1_000_000);
    assert_eq!(bans.len(), 1);
    assert_eq!(bans[0].key, ip("192.0.2.1"));
    assert_eq!(bans[0].until, 1_000_000 + 15 * 60);
    assert!(d.own_bans(now + 15 * MINUTE, 1_000_900).is_empty());
}
