//! Password checks against crypt hashes (`$6$` SHA-512, `$5$` SHA-256), and
//! the hash `lakeftpd passwd` prints. Verification costs milliseconds of CPU,
//! so it runs on the blocking pool, never on an executor thread.

use crate::config::User;
use sha_crypt::{PasswordHasher, PasswordVerifier, ShaCrypt};
use std::sync::Arc;

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

/// Checks `password` for `user` (or burns the same time when there is no such
/// user). Returns true only for a match.
pub async fn verify(user: Option<Arc<User>>, password: Password) -> bool {
    smol::unblock(move || {
        let hash = user
            .as_ref()
            .map_or(DUMMY_HASH, |u| u.password_hash.as_str());
        let ok = ShaCrypt::default()
            .verify_password(password.0.as_bytes(), hash)
            .is_ok();
        ok && user.is_some()
    })
    .await
}

/// A `$6$` hash of `password` with a fresh random salt.
pub fn hash(password: &str) -> Result<String, String> {
    let salt: [u8; 12] = crate::sys::random_bytes();
    ShaCrypt::SHA512
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash: {e}"))
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
        })
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
}
