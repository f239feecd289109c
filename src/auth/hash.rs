//! The hashes: checking a password against a stored hash of any accepted
//! scheme (`config::hash`), making new ones for `lakeftpd passwd`, and the
//! bound on concurrent argon2id checks. (What an unknown user's password is
//! checked against: `decoy.rs`.)

use crate::config::hash::Scheme;
use crate::limits::{BCRYPT_COST, MAX_CONCURRENT_ARGON2};
use sha_crypt::{PasswordHasher, PasswordVerifier, ShaCrypt};
use smol::lock::Semaphore;

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

/// The crypt rounds a hash asks for (`rounds=N`, else crypt's default 5000).
pub fn rounds(hash: &str) -> u64 {
    hash.split('$')
        .nth(2)
        .and_then(|field| field.strip_prefix("rounds="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(5000)
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
    fn scheme_names() {
        assert_eq!(NewHash::parse("bcrypt"), Ok(NewHash::Bcrypt));
        assert!(NewHash::parse("md5").is_err());
    }

    #[test]
    fn rounds_read_from_the_hash() {
        // `rounds=` is optional; crypt's default is 5000.
        assert_eq!(rounds("$6$rounds=100000$salt$x"), 100_000);
        assert_eq!(rounds("$6$salt$x"), 5000);
    }
}
