//! What an unknown user name's password is checked against, so that a
//! name's existence does not show in the time a wrong password takes.
//!
//! The configured hashes fall into cost classes: a scheme with its
//! parameters (`$6$` with its rounds, bcrypt with its cost, argon2id with
//! m, t and p). Each class keeps one of its hashes as its decoy and counts
//! its users. An unknown name is checked against the decoy of a class
//! chosen by a keyed hash of the name (SHA-256 over a per-process secret
//! and the name), each class as likely as its share of the users. So a
//! given unknown name always costs the same, like a known one, and unknown
//! names as a whole cost what known names cost: with one `$6$` user in 20
//! and argon2id for the rest, one unknown name in 20 answers as fast as
//! `$6$`. (Before, every unknown name cost the costliest class: 29 ms with
//! argon2id in the set, 112 ms with bcrypt, against 2 ms for a `$6$` user.)
//!
//! Unknown names also draw from their own budget, `MAX_CONCURRENT_DECOYS`
//! checks at once, never from the argon2id permits of real logins: a flood
//! of made-up names queues behind itself, not in front of a device.

use crate::config::hash::Scheme;
use crate::config::User;
use crate::limits::MAX_CONCURRENT_DECOYS;
use sha2::{Digest, Sha256};
use smol::lock::Semaphore;
use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, RwLock};

/// Checks of unknown names running at once (see the module doc).
pub(super) static DECOY_PERMITS: Semaphore = Semaphore::new(MAX_CONCURRENT_DECOYS);

/// A hash for unknown names when no user is configured.
pub(super) const DUMMY_HASH: &str = "$6$lakeftpddummysa$H3bU6qC0J7bH0Z1a0mKcB9iXy1D5d3p0iUqQk2cC4fP5xkqk2m7wPZp8i1g5C8lZbR0o7dYy8fN5c1r2gT3hW/";

/// The classes of the configured set: each decoy with the running total
/// of users up to and including its class.
struct Decoys {
    classes: Vec<(Arc<str>, u64)>,
}

static DECOYS: RwLock<Option<Arc<Decoys>>> = RwLock::new(None);

/// Random per process: which class a name falls in cannot be computed
/// outside it.
static SECRET: LazyLock<[u8; 32]> = LazyLock::new(crate::sys::random_bytes);

/// The part of a hash that sets its cost: the scheme and its parameters,
/// without the salt and the digest (up to the `$` before the salt).
fn class_of(hash: &str) -> &str {
    let fields = match Scheme::of(hash) {
        // `$6$rounds=N$salt$digest` or `$6$salt$digest` (5,000 rounds).
        Some(Scheme::Sha512Crypt | Scheme::Sha256Crypt) if hash.contains("$rounds=") => 2,
        Some(Scheme::Sha512Crypt | Scheme::Sha256Crypt) => 1,
        // `$2b$10$saltdigest`.
        Some(Scheme::Bcrypt) => 2,
        // `$argon2id$v=19$m=19456,t=2,p=1$salt$digest`.
        Some(Scheme::Argon2id) => 3,
        None => return "",
    };
    let end = hash
        .match_indices('$')
        .nth(fields)
        .map_or(hash.len(), |(at, _)| at);
    &hash[..end]
}

/// Sorts the configured hashes into classes (called at start and after
/// each users reload: the set may have changed).
pub fn set_unknown_user_cost(users: &[User]) {
    let decoys = build(users.iter().map(|u| &*u.password_hash)).map(Arc::new);
    *DECOYS.write().unwrap_or_else(|p| p.into_inner()) = decoys;
}

fn build<'a>(hashes: impl Iterator<Item = &'a str>) -> Option<Decoys> {
    let mut counts: BTreeMap<&str, (&str, u64)> = BTreeMap::new();
    for hash in hashes {
        counts.entry(class_of(hash)).or_insert((hash, 0)).1 += 1;
    }
    let mut total = 0;
    let classes: Vec<_> = counts
        .into_values()
        .map(|(hash, n)| {
            total += n;
            (Arc::from(hash), total)
        })
        .collect();
    (!classes.is_empty()).then_some(Decoys { classes })
}

/// The hash an unknown `name` is checked against.
pub(super) fn decoy_for(name: &str) -> Arc<str> {
    let decoys = DECOYS.read().unwrap_or_else(|p| p.into_inner()).clone();
    let Some(decoys) = decoys else {
        return Arc::from(DUMMY_HASH);
    };
    pick(&decoys, keyed(&SECRET, name))
}

fn keyed(secret: &[u8; 32], name: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(secret);
    h.update(name.as_bytes());
    let digest: [u8; 32] = h.finalize().into();
    u64::from_le_bytes(digest[..8].try_into().unwrap_or_default())
}

fn pick(decoys: &Decoys, draw: u64) -> Arc<str> {
    let total = decoys.classes.last().map_or(1, |(_, t)| *t).max(1);
    let at = draw % total;
    decoys
        .classes
        .iter()
        .find(|(_, upto)| at < *upto)
        .or(decoys.classes.last())
        .map_or_else(|| Arc::from(DUMMY_HASH), |(hash, _)| hash.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "$6$saltsalt$digest";
    const SHA_ROUNDS: &str = "$6$rounds=9000$saltsalt$digest";
    const BCRYPT: &str = "$2b$10$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
    const ARGON: &str =
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";

    #[test]
    fn classes_are_the_scheme_and_its_parameters() {
        // Salts and digests differ between users of one class.
        assert_eq!(class_of(SHA), "$6");
        assert_eq!(class_of(SHA_ROUNDS), "$6$rounds=9000");
        assert_eq!(class_of(BCRYPT), "$2b$10");
        assert_eq!(class_of(ARGON), "$argon2id$v=19$m=19456,t=2,p=1");
        assert_eq!(class_of("$6$othersalt$x"), class_of(SHA));
    }

    fn decoys(hashes: &[&str]) -> Decoys {
        build(hashes.iter().copied()).unwrap()
    }

    #[test]
    fn names_fall_in_classes_as_users_do() {
        // One user in four is $6$: about a quarter of unknown names cost
        // what $6$ costs, the rest argon2id.
        let d = decoys(&[SHA, ARGON, ARGON, ARGON]);
        let secret = [9; 32];
        let sha = (0..4000)
            .filter(|i| &*pick(&d, keyed(&secret, &format!("name{i}"))) == SHA)
            .count();
        assert!((800..1200).contains(&sha), "{sha} of 4000");
    }

    #[test]
    fn a_name_always_costs_the_same() {
        let d = decoys(&[SHA, BCRYPT, ARGON]);
        let secret = [3; 32];
        for i in 0..50 {
            let name = format!("ghost{i}");
            assert_eq!(
                pick(&d, keyed(&secret, &name)),
                pick(&d, keyed(&secret, &name))
            );
        }
    }
}
