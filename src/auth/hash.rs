//! The hashes: checking a password against a stored hash of any accepted
//! scheme (`config::hash`), making new ones for `lakeftpd passwd`, and the
//! bound on concurrent argon2id checks, and the hash an unknown user's
//! password is checked against (as costly as the costliest real one).

use crate::config::hash::Scheme;
use crate::config::User;
use crate::limits::{BCRYPT_COST, MAX_CONCURRENT_ARGON2};
use sha_crypt::{PasswordHasher, PasswordVerifier, ShaCrypt};
use smol::lock::Semaphore;
use std::sync::Arc;

/// One full check; milliseconds of CPU (and memory for argon2id). A hash
/// of no known scheme never matches.
pub(super) fn crypt_verify(password: &str, hash: &str) -> bool {
    match Scheme::of(hash) {
        Some(Scheme::Sha512Crypt | Scheme::Sha256Crypt) => ShaCrypt::default()
            .verify_password(password.as_bytes(), hash)
            .is_ok(),
        Some(Scheme::Bcrypt) => bcrypt::verify(password, hash).unwrap_or(false),
        Some(Scheme::Argon2id) => {
            use argon2::password_hash::PasswordVerifier as _;
            argon2::PasswordHash::new(hash).is_ok_and(|parsed| {
                argon2::Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
        }
        None => false,
    }
}

/// An estimate of what checking `hash` costs, in microseconds of one core
/// here (measured once: 5,000 SHA-512 crypt rounds take ~5 ms, bcrypt cost
/// 10 ~60 ms, argon2id m=19456 t=2 ~25 ms). It only ranks hashes of
/// different schemes, to pick the one an unknown user is checked against.
pub fn cost(hash: &str) -> u64 {
    match Scheme::of(hash) {
        Some(Scheme::Sha512Crypt | Scheme::Sha256Crypt) => rounds(hash),
        Some(Scheme::Bcrypt) => hash
            .get(4..6)
            .and_then(|c| c.parse::<u32>().ok())
            .filter(|c| *c <= 31)
            .map_or(0, |c| 60u64 << c),
        Some(Scheme::Argon2id) => argon2::PasswordHash::new(hash)
            .ok()
            .and_then(|p| argon2::Params::try_from(&p).ok())
            .map_or(0, |p| {
                u64::from(p.m_cost()) * u64::from(p.t_cost()) * 6 / 10
            }),
        None => 0,
    }
}

/// Argon2id checks running now are bounded (see the module doc).
pub(super) static ARGON2_PERMITS: Semaphore = Semaphore::new(MAX_CONCURRENT_ARGON2);

/// A permit for one full check of `hash`: argon2id waits for one of
/// `MAX_CONCURRENT_ARGON2`, the others need none.
pub(super) async fn permit(hash: &str) -> Option<smol::lock::SemaphoreGuard<'static>> {
    match Scheme::of(hash) {
        Some(Scheme::Argon2id) => Some(ARGON2_PERMITS.acquire().await),
        _ => None,
    }
}

/// What `lakeftpd passwd --scheme` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewHash {
    /// `$6$`, 5,000 rounds (the default).
    Sha512,
    /// `$2b$`, cost `BCRYPT_COST`.
    Bcrypt,
    /// `$argon2id$`, m=19456 KiB, t=2, p=1 (OWASP's first recommendation).
    Argon2id,
}

impl NewHash {
    pub fn parse(name: &str) -> Result<NewHash, String> {
        match name {
            "sha512" => Ok(NewHash::Sha512),
            "bcrypt" => Ok(NewHash::Bcrypt),
            "argon2id" => Ok(NewHash::Argon2id),
            _ => Err(format!(
                "unknown scheme `{name}` (expected sha512, bcrypt or argon2id)"
            )),
        }
    }
}

/// A `$6$` hash of `password` with a fresh random salt.
pub fn hash(password: &str) -> Result<String, String> {
    hash_with(password, NewHash::Sha512)
}

/// A hash of `password` in `scheme` with a fresh random salt.
pub fn hash_with(password: &str, scheme: NewHash) -> Result<String, String> {
    let fail = |e: &dyn std::fmt::Display| format!("cannot hash: {e}");
    match scheme {
        NewHash::Sha512 => {
            let salt: [u8; 12] = crate::sys::random_bytes();
            ShaCrypt::SHA512
                .hash_password_with_salt(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| fail(&e))
        }
        NewHash::Bcrypt => {
            // bcrypt reads 72 bytes at most: a longer password would be
            // silently cut, so it is refused.
            if password.len() > 72 {
                return Err("bcrypt takes at most 72 bytes of password".into());
            }
            let salt: [u8; 16] = crate::sys::random_bytes();
            bcrypt::hash_with_salt(password, BCRYPT_COST, salt)
                .map(|parts| parts.format_for_version(bcrypt::Version::TwoB))
                .map_err(|e| fail(&e))
        }
        NewHash::Argon2id => {
            use argon2::password_hash::{PasswordHasher as _, SaltString};
            let salt: [u8; 16] = crate::sys::random_bytes();
            let salt = SaltString::encode_b64(&salt).map_err(|e| fail(&e))?;
            argon2::Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| fail(&e))
        }
    }
}

/// A hash for unknown users, so that a wrong user name costs as much time
/// as a wrong password (no user enumeration by timing).
pub(super) const DUMMY_HASH: &str = "$6$lakeftpddummysa$H3bU6qC0J7bH0Z1a0mKcB9iXy1D5d3p0iUqQk2cC4fP5xkqk2m7wPZp8i1g5C8lZbR0o7dYy8fN5c1r2gT3hW/";

/// What an unknown user's password is checked against (`set_unknown_user_cost`);
/// `None`: `DUMMY_HASH`. Replaced at each users reload.
pub(super) static UNKNOWN_USER_HASH: std::sync::RwLock<Option<Arc<str>>> =
    std::sync::RwLock::new(None);

/// The crypt rounds a hash asks for (`rounds=N`, else crypt's default 5000).
pub fn rounds(hash: &str) -> u64 {
    hash.split('$')
        .nth(2)
        .and_then(|field| field.strip_prefix("rounds="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(5000)
}

/// The configured hash that costs the most to check (by `hash::cost`
/// across schemes; SHA-512 before SHA-256 among equals), if any.
pub fn costliest(users: &[User]) -> Option<&str> {
    users
        .iter()
        .map(|u| &*u.password_hash)
        .max_by_key(|h| (cost(h), h.starts_with("$6$")))
}

/// Makes an unknown user's check cost what the costliest configured hash
/// costs: a guessed user name is then indistinguishable by timing (an
/// operator's `rounds=100000` would otherwise make known users 15 times
/// slower than unknown ones). The configured hash itself is used; the
/// result of that check is discarded.
/// Called at start and after each users reload (the set may have changed).
pub fn set_unknown_user_cost(users: &[User]) {
    let chosen = costliest(users)
        .filter(|h| cost(h) > cost(DUMMY_HASH))
        .map(Arc::from);
    *UNKNOWN_USER_HASH.write().unwrap_or_else(|p| p.into_inner()) = chosen;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcrypt_hash_then_verify() {
        let h = hash_with("s3cret", NewHash::Bcrypt).unwrap();
        assert!(h.starts_with("$2b$10$"), "{h}");
        assert_eq!(crate::config::hash::check(&h), Ok(Scheme::Bcrypt));
        assert!(crypt_verify("s3cret", &h));
        assert!(!crypt_verify("s3cret!", &h));
    }

    #[test]
    fn known_bcrypt_vector() {
        // Openwall's crypt_blowfish test vector, as libxcrypt writes it.
        let h = "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
        assert!(crypt_verify("U*U", h));
        assert!(crypt_verify("U*U", &h.replacen("$2b$", "$2y$", 1)));
    }

    #[test]
    fn bcrypt_2y_verifies() {
        // The same algorithm under PHP's prefix.
        let h = hash_with("s3cret", NewHash::Bcrypt)
            .unwrap()
            .replacen("$2b$", "$2y$", 1);
        assert!(crypt_verify("s3cret", &h));
    }

    #[test]
    fn bcrypt_refuses_passwords_it_would_cut() {
        assert!(hash_with(&"x".repeat(73), NewHash::Bcrypt).is_err());
    }

    #[test]
    fn argon2id_hash_then_verify() {
        let h = hash_with("s3cret", NewHash::Argon2id).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert_eq!(crate::config::hash::check(&h), Ok(Scheme::Argon2id));
        assert!(crypt_verify("s3cret", &h));
        assert!(!crypt_verify("wrong", &h));
    }

    #[test]
    fn unknown_scheme_never_matches() {
        assert!(!crypt_verify("x", "x"));
    }

    #[test]
    fn costs_rank_schemes() {
        assert_eq!(cost("$6$salt$x"), 5000);
        assert_eq!(cost("$2b$10$x"), 61_440);
        let argon = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";
        assert_eq!(cost(argon), 23_347);
        assert_eq!(cost("clear"), 0);
    }

    #[test]
    fn scheme_names() {
        assert_eq!(NewHash::parse("bcrypt"), Ok(NewHash::Bcrypt));
        assert!(NewHash::parse("md5").is_err());
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
        let user = |h: &str| User::new("u", h.into(), "/tmp".into());
        let users = [
            user("$6$a$x"),
            user("$5$rounds=200000$b$y"),
            user("$6$rounds=100000$c$z"),
        ];
        assert_eq!(costliest(&users), Some("$5$rounds=200000$b$y"));
        assert_eq!(costliest(&[]), None);
    }

    #[test]
    fn the_costliest_hash_is_chosen_across_schemes() {
        let user = |h: &str| User::new("u", h.into(), "/tmp".into());
        let bcrypt = "$2b$12$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
        let users = [user("$6$rounds=100000$c$z"), user(bcrypt)];
        // 2^12 bcrypt rounds (~250 ms) cost more than 100,000 SHA-512 ones.
        assert_eq!(costliest(&users), Some(bcrypt));
    }
}
