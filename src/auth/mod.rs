//! Password checks against the stored hashes (`$6$` SHA-512 and `$5$`
//! SHA-256 crypt, `$2b$`/`$2y$` bcrypt, `$argon2id$`; see `config::hash`),
//! and the hashes `lakeftpd passwd` prints. Verification costs milliseconds
//! of CPU, so it runs on the blocking pool, never on an executor thread.
//! An argon2id check also costs its memory parameter (19 MiB by default), so
//! at most `MAX_CONCURRENT_ARGON2` run at once; the others wait their turn.
//!
//! Devices log in with the same credentials over and over, so recently
//! verified credentials are remembered the way Apache's mod_authn_socache
//! does: as a keyed hash (SHA-256 over a random per-process key, the user
//! name, the password and the stored crypt hash), never the password itself.
//! The cache is bounded in size (`CREDENTIAL_CACHE_ENTRIES`) and age
//! (`CREDENTIAL_CACHE_TTL`). Only successes are cached: a first login and
//! every failed one pay the full crypt cost. The stored hash is part of the
//! key, so a changed password in the configuration cannot be satisfied by an
//! old entry. Concurrent checks of the same credentials (a fleet reconnecting
//! at once) share one crypt computation instead of each paying for it.

mod decoy;
pub mod defender;
mod hash;

pub use decoy::set_unknown_user_cost;
pub use hash::{hash, hash_with, rounds, NewHash};

use crate::config::User;
use hash::{crypt_verify, permit};
use sha2::{Digest, Sha256};
use smol::lock::OnceCell;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

// TODO(limits.rs): these two belong with the other limits.
/// Most credentials remembered at once (verified ones and checks in
/// progress). Each entry costs about 64 bytes; 4,096 entries cover 100 users
/// many times over and stay under 300 KiB.
pub const CREDENTIAL_CACHE_ENTRIES: usize = 4096;

/// How long a verified credential is remembered. A password removed from the
/// configuration is unusable at once (the stored hash is part of the key);
/// this bounds how long a secret lingers as a derived value in memory.
pub const CREDENTIAL_CACHE_TTL: Duration = Duration::from_secs(5 * 60);

/// A password as received; its Debug form never shows it.
pub struct Password(pub String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("*******")
    }
}

/// Checks `password` for `user`; returns true only for a match. Without a
/// user (`name` is unknown, or refused by `allow_from`), the password is
/// checked against `name`'s decoy (`decoy.rs`) and the result discarded.
pub async fn verify(user: Option<Arc<User>>, name: &str, password: Password) -> bool {
    // Unknown users are never cached: they always pay the decoy's check.
    let Some(user) = user else {
        let hash = decoy::decoy_for(name);
        // SECURITY: their own budget, never a real login's permit.
        let permit = decoy::DECOY_PERMITS.acquire().await;
        smol::unblock(move || {
            // SECURITY: the result is discarded; only the time is spent.
            let _ = crypt_verify(&password.0, &hash);
            drop(permit);
        })
        .await;
        return false;
    };
    CACHE
        .verify(
            &user.name,
            user.password_hash.to_string(),
            password,
            Instant::now(),
        )
        .await
}

/// Spends the time a check of `hash` takes, for a known user whose login
/// is refused before its password is looked at (`allow_from`): the same
/// permits and the same cost as a real check of that user.
pub async fn spend(hash: &str, password: Password) {
    let hash = hash.to_string();
    let permit = permit(&hash).await;
    smol::unblock(move || {
        // SECURITY: the result is discarded; only the time is spent.
        let _ = crypt_verify(&password.0, &hash);
        drop(permit);
    })
    .await;
}

/// The process-wide cache of verified credentials.
static CACHE: LazyLock<CredentialCache> = LazyLock::new(|| {
    CredentialCache::new(
        crate::sys::random_bytes(),
        CREDENTIAL_CACHE_ENTRIES,
        CREDENTIAL_CACHE_TTL,
    )
});

/// A keyed hash of one (user, password, stored hash) triple.
type Key = [u8; 32];

enum Entry {
    /// Verified at this instant.
    Verified(Instant),
    /// A crypt check of these credentials is running; its result lands here.
    Pending(Arc<OnceCell<bool>>),
}

struct CredentialCache {
    /// Random per process: the keys are useless outside it, and equal
    /// passwords of different processes give unrelated keys.
    secret: [u8; 32],
    capacity: usize,
    ttl: Duration,
    entries: Mutex<HashMap<Key, Entry>>,
}

/// What a look-up found.
enum Lookup {
    Hit,
    /// Someone else is checking the same credentials: wait for the result.
    Wait(Arc<OnceCell<bool>>),
    /// This caller checks; `Some` when the result is to be shared.
    Check(Option<Arc<OnceCell<bool>>>),
}

impl CredentialCache {
    fn new(secret: [u8; 32], capacity: usize, ttl: Duration) -> CredentialCache {
        CredentialCache {
            secret,
            capacity,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn key(&self, user: &str, password: &str, stored_hash: &str) -> Key {
        let mut h = Sha256::new();
        h.update(self.secret);
        // Length prefixes keep the fields apart ("ab"+"c" is not "a"+"bc").
        for field in [user, password, stored_hash] {
            h.update((field.len() as u64).to_le_bytes());
            h.update(field.as_bytes());
        }
        h.finalize().into()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        // A panic while holding the lock cannot leave the map inconsistent
        // (every update is a single insert or remove).
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lookup(&self, key: &Key, now: Instant) -> Lookup {
        let mut entries = self.lock();
        match entries.get(key) {
            Some(Entry::Verified(at)) if now.saturating_duration_since(*at) < self.ttl => {
                return Lookup::Hit;
            }
            Some(Entry::Verified(_)) => {
                entries.remove(key);
            }
            Some(Entry::Pending(cell)) => return Lookup::Wait(cell.clone()),
            None => {}
        }
        if entries.len() >= self.capacity {
            self.evict(&mut entries, now);
        }
        if entries.len() >= self.capacity {
            // Full of checks in progress: check alone, share nothing.
            return Lookup::Check(None);
        }
        let cell = Arc::new(OnceCell::new());
        entries.insert(*key, Entry::Pending(cell.clone()));
        Lookup::Check(Some(cell))
    }

    /// Makes room: drops expired entries, then the oldest verified one.
    fn evict(&self, entries: &mut HashMap<Key, Entry>, now: Instant) {
        let ttl = self.ttl;
        entries.retain(|_, e| match e {
            Entry::Verified(at) => now.saturating_duration_since(*at) < ttl,
            Entry::Pending(_) => true,
        });
        if entries.len() < self.capacity {
            return;
        }
        let oldest = entries
            .iter()
            .filter_map(|(k, e)| match e {
                Entry::Verified(at) => Some((*at, *k)),
                Entry::Pending(_) => None,
            })
            .min();
        if let Some((_, k)) = oldest {
            entries.remove(&k);
        }
    }

    /// Records the result of a check: successes are remembered, failures
    /// forgotten so that the next attempt pays the full cost again.
    fn finish(&self, key: &Key, ok: bool, now: Instant) {
        let mut entries = self.lock();
        if ok {
            entries.insert(*key, Entry::Verified(now));
        } else {
            entries.remove(key);
        }
    }

    async fn verify(
        &'static self,
        user: &str,
        stored_hash: String,
        password: Password,
        now: Instant,
    ) -> bool {
        let key = self.key(user, &password.0, &stored_hash);
        match self.lookup(&key, now) {
            Lookup::Hit => true,
            Lookup::Wait(cell) => *cell.wait().await,
            Lookup::Check(shared) => {
                // Waiting for a permit may be cancelled (the session ends):
                // the guard then releases the waiters with a failure.
                let mut waiting = Abandoned {
                    cache: self,
                    key,
                    cell: shared,
                };
                let permit = permit(&stored_hash).await;
                let shared = waiting.cell.take();
                let task = smol::unblock(move || {
                    let ok = crypt_verify(&password.0, &stored_hash);
                    drop(permit);
                    // The entry is settled here, on the blocking thread, so
                    // that waiters are released even if the session that
                    // started the check has gone away meanwhile.
                    if let Some(cell) = &shared {
                        self.finish(&key, ok, Instant::now());
                        let _ = cell.set_blocking(ok);
                    }
                    ok
                });
                task.await
            }
        }
    }
}

/// A check that has not started yet: dropped armed (its session went away
/// while it waited for a permit), it settles its entry as a failure.
struct Abandoned {
    cache: &'static CredentialCache,
    key: Key,
    cell: Option<Arc<OnceCell<bool>>>,
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        if let Some(cell) = self.cell.take() {
            self.cache.finish(&self.key, false, Instant::now());
            let _ = cell.set_blocking(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::MAX_CONCURRENT_ARGON2;
    use hash::ARGON2_PERMITS;
    use sha_crypt::{PasswordHasher, ShaCrypt};

    fn user(hash: String) -> Arc<User> {
        Arc::new(User::new("u", hash, "/tmp".into()))
    }

    /// A cache of its own per test, leaked to get the `'static` the
    /// blocking pool needs.
    fn cache(capacity: usize, ttl: Duration) -> &'static CredentialCache {
        Box::leak(Box::new(CredentialCache::new([7; 32], capacity, ttl)))
    }

    /// A `$5$` hash with a fixed salt (SHA-256 crypt is the cheaper one).
    fn cheap_hash(password: &str) -> String {
        salted_hash(password, b"testsalt")
    }

    fn salted_hash(password: &str, salt: &[u8]) -> String {
        ShaCrypt::SHA256
            .hash_password_with_salt(password.as_bytes(), salt)
            .map(|h| h.to_string())
            .unwrap_or_else(|_| panic!("hash"))
    }

    fn check(c: &'static CredentialCache, hash: &str, pw: &str, now: Instant) -> bool {
        smol::block_on(c.verify("u", hash.to_string(), Password(pw.into()), now))
    }

    fn verified(c: &CredentialCache) -> usize {
        c.lock()
            .values()
            .filter(|e| matches!(e, Entry::Verified(_)))
            .count()
    }

    #[test]
    fn hash_then_verify() {
        let h = hash("s3cret").unwrap();
        assert!(h.starts_with("$6$"));
        assert!(smol::block_on(verify(
            Some(user(h.clone())),
            "u",
            Password("s3cret".into())
        )));
        assert!(!smol::block_on(verify(
            Some(user(h)),
            "u",
            Password("wrong".into())
        )));
    }

    #[test]
    fn known_sha256_vector() {
        // From the SHA-crypt specification's test vectors (Drepper).
        let h = "$5$rounds=5000$toolongsaltstrin$Un/5jzAHMgOGZ5.mWJpuVolil07guHPvOW8mGRcvxa5"
            .to_string();
        assert!(smol::block_on(verify(
            Some(user(h)),
            "u",
            Password("This is just a test".into())
        )));
    }

    #[test]
    fn known_sha512_vector() {
        let h = "$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0".to_string();
        assert!(smol::block_on(verify(
            Some(user(h)),
            "u",
            Password("This is just a test".into())
        )));
    }

    #[test]
    fn unknown_user_never_matches() {
        assert!(!smol::block_on(verify(
            None,
            "nobody",
            Password("anything".into())
        )));
    }

    #[test]
    fn debug_hides_password() {
        assert_eq!(format!("{:?}", Password("s3cret".into())), "*******");
    }

    #[test]
    fn success_is_cached_and_repeats_are_fast() {
        let c = cache(16, CREDENTIAL_CACHE_TTL);
        let h = hash("s3cret").unwrap(); // $6$, 5,000 rounds: milliseconds
        let now = Instant::now();
        assert!(check(c, &h, "s3cret", now));
        assert_eq!(verified(c), 1);
        let start = Instant::now();
        for _ in 0..100 {
            assert!(check(c, &h, "s3cret", now));
        }
        // 100 full checks would take several hundred milliseconds.
        assert!(
            start.elapsed() < Duration::from_millis(50),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn failure_is_not_cached() {
        let c = cache(16, CREDENTIAL_CACHE_TTL);
        let h = cheap_hash("s3cret");
        let now = Instant::now();
        assert!(!check(c, &h, "wrong", now));
        assert!(c.lock().is_empty(), "a failed check leaves nothing behind");
        assert!(!check(c, &h, "wrong", now));
    }

    #[test]
    fn cached_password_does_not_open_other_passwords() {
        let c = cache(16, CREDENTIAL_CACHE_TTL);
        let h = cheap_hash("s3cret");
        let now = Instant::now();
        assert!(check(c, &h, "s3cret", now));
        assert!(!check(c, &h, "s3cret2", now));
        assert!(!check(c, &h, "", now));
        assert!(!smol::block_on(c.verify(
            "other",
            h.clone(),
            Password("wrong".into()),
            now
        )));
    }

    #[test]
    fn changed_hash_is_not_satisfied_by_a_stale_entry() {
        let c = cache(16, CREDENTIAL_CACHE_TTL);
        let now = Instant::now();
        let old = cheap_hash("old");
        assert!(check(c, &old, "old", now));
        // The operator changed the password: the old one must fail at once.
        let new = salted_hash("new", b"othersalt");
        assert!(!check(c, &new, "old", now));
        assert!(check(c, &new, "new", now));
    }

    #[test]
    fn entries_expire() {
        let c = cache(16, Duration::from_secs(300));
        let h = cheap_hash("s3cret");
        let t0 = Instant::now();
        assert!(check(c, &h, "s3cret", t0));
        let key = c.key("u", "s3cret", &h);
        assert!(matches!(
            c.lookup(&key, t0 + Duration::from_secs(299)),
            Lookup::Hit
        ));
        // Past the age limit the entry is dropped and a full check follows.
        assert!(matches!(
            c.lookup(&key, t0 + Duration::from_secs(301)),
            Lookup::Check(Some(_))
        ));
    }

    #[test]
    fn size_is_bounded() {
        let c = cache(4, CREDENTIAL_CACHE_TTL);
        let t0 = Instant::now();
        for i in 0..10u64 {
            let pw = format!("pw{i}");
            let h = cheap_hash(&pw);
            assert!(check(c, &h, &pw, t0 + Duration::from_secs(i)));
            assert!(c.lock().len() <= 4);
        }
        // The newest survive; the oldest were evicted.
        let newest = cheap_hash("pw9");
        let key = c.key("u", "pw9", &newest);
        assert!(matches!(
            c.lookup(&key, t0 + Duration::from_secs(10)),
            Lookup::Hit
        ));
    }

    #[test]
    fn key_never_contains_the_password_and_depends_on_every_field() {
        let c = cache(4, CREDENTIAL_CACHE_TTL);
        let k = c.key("u", "s3cret", "$5$x");
        assert!(!k.windows(6).any(|w| w == b"s3cret"));
        assert_ne!(k, c.key("u", "s3cre", "$5$x"));
        assert_ne!(k, c.key("us", "3cret", "$5$x"));
        assert_ne!(k, c.key("u", "s3cret", "$5$y"));
        let other = CredentialCache::new([8; 32], 4, CREDENTIAL_CACHE_TTL);
        assert_ne!(k, other.key("u", "s3cret", "$5$x"));
    }

    #[test]
    fn concurrent_checks_share_one_crypt() {
        let c = cache(16, CREDENTIAL_CACHE_TTL);
        let h = hash("s3cret").unwrap();
        let now = Instant::now();
        let results = smol::block_on(async {
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let h = h.clone();
                    smol::spawn(
                        async move { c.verify("u", h, Password("s3cret".into()), now).await },
                    )
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await);
            }
            out
        });
        assert!(results.iter().all(|ok| *ok));
        assert_eq!(verified(c), 1);
        // Waiters of a failed check fail too, and nothing stays behind.
        let results = smol::block_on(async {
            let tasks: Vec<_> = (0..4)
                .map(|_| {
                    let h = h.clone();
                    smol::spawn(async move { c.verify("u", h, Password("bad".into()), now).await })
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await);
            }
            out
        });
        assert!(results.iter().all(|ok| !*ok));
        assert_eq!(c.lock().len(), 1);
    }

    /// Both use the process-wide permits, so they run one after the other.
    #[test]
    fn argon2_permits() {
        argon2_checks_are_bounded();
        a_check_dropped_while_waiting_releases_its_waiters();
    }

    fn argon2_checks_are_bounded() {
        // More concurrent argon2id checks than permits: all finish, and the
        // permits are all back afterwards.
        let c = cache(64, CREDENTIAL_CACHE_TTL);
        let h = hash_with("pw", NewHash::Argon2id).unwrap();
        let results = smol::block_on(async {
            let tasks: Vec<_> = (0..MAX_CONCURRENT_ARGON2 * 2)
                .map(|i| {
                    let h = h.clone();
                    let pw = if i % 2 == 0 { "pw" } else { "no" };
                    smol::spawn(async move {
                        c.verify(&format!("u{i}"), h, Password(pw.into()), Instant::now())
                            .await
                    })
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await);
            }
            out
        });
        assert_eq!(
            results.iter().filter(|ok| **ok).count(),
            MAX_CONCURRENT_ARGON2
        );
        let held: Vec<_> = (0..MAX_CONCURRENT_ARGON2)
            .map(|_| ARGON2_PERMITS.try_acquire().expect("a permit left behind"))
            .collect();
        drop(held);
    }

    fn a_check_dropped_while_waiting_releases_its_waiters() {
        let c = cache(16, CREDENTIAL_CACHE_TTL);
        let h = hash_with("pw", NewHash::Argon2id).unwrap();
        // Hold every permit: the first check waits for one.
        let held: Vec<_> = (0..MAX_CONCURRENT_ARGON2)
            .map(|_| ARGON2_PERMITS.try_acquire().unwrap())
            .collect();
        let first = smol::spawn(c.verify("u", h.clone(), Password("pw".into()), Instant::now()));
        let second = smol::spawn(c.verify("u", h, Password("pw".into()), Instant::now()));
        smol::block_on(async {
            smol::Timer::after(Duration::from_millis(100)).await;
            first.cancel().await;
        });
        drop(held);
        assert!(
            !smol::block_on(second),
            "the waiter is released, with a failure"
        );
        assert!(c.lock().is_empty());
    }
}
