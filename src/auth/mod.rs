//! Password checks against crypt hashes (`$6$` SHA-512, `$5$` SHA-256), and
//! the hash `lakeftpd passwd` prints. Verification costs milliseconds of CPU,
//! so it runs on the blocking pool, never on an executor thread.
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

pub mod defender;

use crate::config::User;
use sha2::{Digest, Sha256};
use sha_crypt::{PasswordHasher, PasswordVerifier, ShaCrypt};
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

/// A hash for unknown users, so that a wrong user name costs as much time
/// as a wrong password (no user enumeration by timing).
const DUMMY_HASH: &str = "$6$lakeftpddummysa$H3bU6qC0J7bH0Z1a0mKcB9iXy1D5d3p0iUqQk2cC4fP5xkqk2m7wPZp8i1g5C8lZbR0o7dYy8fN5c1r2gT3hW/";

/// What an unknown user's password is checked against (`set_unknown_user_cost`).
static UNKNOWN_USER_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The crypt rounds a hash asks for (`rounds=N`, else crypt's default 5000).
pub fn rounds(hash: &str) -> u64 {
    hash.split('$')
        .nth(2)
        .and_then(|field| field.strip_prefix("rounds="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(5000)
}

/// The configured hash that costs the most to check (most rounds; SHA-512
/// before SHA-256 among equals), if any.
pub fn costliest(users: &[User]) -> Option<&str> {
    users
        .iter()
        .map(|u| u.password_hash.as_str())
        .max_by_key(|h| (rounds(h), h.starts_with("$6$")))
}

/// Makes an unknown user's check cost what the costliest configured hash
/// costs: a guessed user name is then indistinguishable by timing (an
/// operator's `rounds=100000` would otherwise make known users 15 times
/// slower than unknown ones). The configured hash itself is used; the
/// result of that check is discarded.
pub fn set_unknown_user_cost(users: &[User]) {
    if let Some(hash) = costliest(users) {
        if rounds(hash) > rounds(DUMMY_HASH) {
            let _ = UNKNOWN_USER_HASH.set(hash.to_string());
        }
    }
}

/// Checks `password` for `user` (or burns the same time when there is no such
/// user). Returns true only for a match.
pub async fn verify(user: Option<Arc<User>>, password: Password) -> bool {
    // Unknown users are never cached: they always pay the dummy check.
    let Some(user) = user else {
        let hash = UNKNOWN_USER_HASH.get().map_or(DUMMY_HASH, String::as_str);
        smol::unblock(move || {
            // SECURITY: the result is discarded; only the time is spent.
            let _ = crypt_verify(&password.0, hash);
        })
        .await;
        return false;
    };
    CACHE
        .verify(&user.name, &user.password_hash, password, Instant::now())
        .await
}

/// One full crypt check; milliseconds of CPU.
fn crypt_verify(password: &str, hash: &str) -> bool {
    ShaCrypt::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// A `$6$` hash of `password` with a fresh random salt.
pub fn hash(password: &str) -> Result<String, String> {
    let salt: [u8; 12] = crate::sys::random_bytes();
    ShaCrypt::SHA512
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash: {e}"))
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
        stored_hash: &str,
        password: Password,
        now: Instant,
    ) -> bool {
        let key = self.key(user, &password.0, stored_hash);
        match self.lookup(&key, now) {
            Lookup::Hit => true,
            Lookup::Wait(cell) => *cell.wait().await,
            Lookup::Check(shared) => {
                let stored_hash = stored_hash.to_owned();
                let task = smol::unblock(move || {
                    let ok = crypt_verify(&password.0, &stored_hash);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn user(hash: String) -> Arc<User> {
        Arc::new(User {
            name: "u".into(),
            password_hash: hash,
            home: "/tmp".into(),
            permissions: crate::config::Permissions::FULL,
            tls_required: false,
            device: Default::default(),
        })
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
        smol::block_on(c.verify("u", hash, Password(pw.into()), now))
    }

    fn verified(c: &CredentialCache) -> usize {
        c.lock()
            .values()
            .filter(|e| matches!(e, Entry::Verified(_)))
            .count()
    }

    #[test]
    fn rounds_read_from_the_hash() {
        // `rounds=` is optional; crypt's default is 5000.
        assert_eq!(rounds("$6$rounds=100000$salt$x"), 100_000);
        assert_eq!(rounds("$6$salt$x"), 5000);
        assert_eq!(rounds(DUMMY_HASH), 5000);
    }

    #[test]
    fn the_costliest_hash_is_chosen() {
        // The unknown-user check must cost the most expensive real one.
        let user = |h: &str| User {
            name: "u".into(),
            password_hash: h.into(),
            home: "/tmp".into(),
            permissions: crate::config::Permissions::UPLOAD,
            tls_required: false,
            device: Default::default(),
        };
        let users = [
            user("$6$a$x"),
            user("$5$rounds=200000$b$y"),
            user("$6$rounds=100000$c$z"),
        ];
        assert_eq!(costliest(&users), Some("$5$rounds=200000$b$y"));
        assert_eq!(costliest(&[]), None);
    }

    #[test]
    fn hash_then_verify() {
        let h = hash("s3cret").unwrap();
        assert!(h.starts_with("$6$"));
        assert!(smol::block_on(verify(
            Some(user(h.clone())),
            Password("s3cret".into())
        )));
        assert!(!smol::block_on(verify(
            Some(user(h)),
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
            Password("This is just a test".into())
        )));
    }

    #[test]
    fn known_sha512_vector() {
        let h = "$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0".to_string();
        assert!(smol::block_on(verify(
            Some(user(h)),
            Password("This is just a test".into())
        )));
    }

    #[test]
    fn unknown_user_never_matches() {
        assert!(!smol::block_on(verify(None, Password("anything".into()))));
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
            &h,
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
                        async move { c.verify("u", &h, Password("s3cret".into()), now).await },
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
                    smol::spawn(async move { c.verify("u", &h, Password("bad".into()), now).await })
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
}
