//! The password hash formats a user section may hold, recognised by their
//! prefix and checked for shape once, when the text is read; `auth`
//! verifies against them. A clear-text password is never accepted.
//!
//! - `$6$` SHA-512 crypt and `$5$` SHA-256 crypt (Drepper's specification);
//! - `$2b$` / `$2y$` bcrypt (OpenBSD's format; `$2y$` is PHP's name for the
//!   same algorithm);
//! - `$argon2id$` in the PHC string format (RFC 9106 §4 for the parameters).

use crate::limits::MAX_ARGON2_MEMORY_KIB;

/// Which algorithm a stored hash uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Sha512Crypt,
    Sha256Crypt,
    Bcrypt,
    Argon2id,
}

impl Scheme {
    /// The scheme of a stored hash by its prefix (no shape check).
    pub fn of(hash: &str) -> Option<Scheme> {
        if hash.starts_with("$6$") {
            Some(Scheme::Sha512Crypt)
        } else if hash.starts_with("$5$") {
            Some(Scheme::Sha256Crypt)
        } else if hash.starts_with("$2b$") || hash.starts_with("$2y$") {
            Some(Scheme::Bcrypt)
        } else if hash.starts_with("$argon2id$") {
            Some(Scheme::Argon2id)
        } else {
            None
        }
    }
}

const EXPECTED: &str = "expected a `$6$`, `$5$`, `$2b$`/`$2y$` (bcrypt) or `$argon2id$` hash; make one with `lakeftpd passwd`";

/// Checks the shape of a stored hash; returns its scheme.
pub fn check(value: &str) -> Result<Scheme, String> {
    if value.contains(char::is_whitespace) {
        return Err(EXPECTED.into());
    }
    let scheme = Scheme::of(value).ok_or_else(|| EXPECTED.to_string())?;
    match scheme {
        Scheme::Sha512Crypt | Scheme::Sha256Crypt if value.split('$').count() >= 4 => Ok(scheme),
        Scheme::Sha512Crypt | Scheme::Sha256Crypt => Err(EXPECTED.into()),
        Scheme::Bcrypt => check_bcrypt(value).map(|()| scheme),
        Scheme::Argon2id => check_argon2id(value).map(|()| scheme),
    }
}

/// `$2b$CC$` + 22 characters of salt + 31 of hash, in bcrypt's base64.
fn check_bcrypt(value: &str) -> Result<(), String> {
    let bad = || "bcrypt: expected `$2b$CC$` and 53 characters (CC: cost 04-31)".to_string();
    let rest = &value[4..];
    let (cost, body) = rest.split_once('$').ok_or_else(bad)?;
    let cost_ok = cost.len() == 2 && matches!(cost.parse::<u32>(), Ok(4..=31));
    let body_ok = body.len() == 53
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/');
    if cost_ok && body_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// A PHC string with the argon2id algorithm and parameters argon2 accepts.
// SECURITY: the memory parameter is what each check allocates; a bound
// here and a bound on concurrent checks (auth) cap what logins can take.
fn check_argon2id(value: &str) -> Result<(), String> {
    let parsed = argon2::PasswordHash::new(value).map_err(|e| format!("argon2id: {e}"))?;
    if parsed.algorithm != argon2::ARGON2ID_IDENT {
        return Err(format!("argon2id: algorithm `{}`", parsed.algorithm));
    }
    let params =
        argon2::Params::try_from(&parsed).map_err(|e| format!("argon2id parameters: {e}"))?;
    if params.m_cost() > MAX_ARGON2_MEMORY_KIB {
        return Err(format!(
            "argon2id: m={} KiB is above the {} KiB allowed",
            params.m_cost(),
            MAX_ARGON2_MEMORY_KIB
        ));
    }
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err("argon2id: no salt or no hash".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BCRYPT: &str = "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy";
    const ARGON2ID: &str =
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";

    #[test]
    fn sha512_crypt_is_accepted() {
        assert_eq!(check("$6$salt$hash"), Ok(Scheme::Sha512Crypt));
    }

    #[test]
    fn sha256_crypt_is_accepted() {
        assert_eq!(check("$5$salt$hash"), Ok(Scheme::Sha256Crypt));
    }

    #[test]
    fn sha_crypt_without_a_hash_part_is_refused() {
        assert!(check("$6$salt").is_err());
    }

    #[test]
    fn bcrypt_2b_is_accepted() {
        assert_eq!(check(BCRYPT), Ok(Scheme::Bcrypt));
    }

    #[test]
    fn bcrypt_2y_is_accepted() {
        // PHP's password_hash writes $2y$ for the same algorithm.
        assert_eq!(check(&BCRYPT.replace("$2b$", "$2y$")), Ok(Scheme::Bcrypt));
    }

    #[test]
    fn bcrypt_2a_is_refused() {
        // $2a$ had an ambiguous handling of non-ASCII bytes (OpenBSD 2014).
        assert!(check(&BCRYPT.replace("$2b$", "$2a$")).is_err());
    }

    #[test]
    fn bcrypt_cost_out_of_range_is_refused() {
        assert!(check(&BCRYPT.replace("$10$", "$03$")).is_err());
    }

    #[test]
    fn bcrypt_truncated_is_refused() {
        assert!(check(&BCRYPT[..50]).is_err());
    }

    #[test]
    fn argon2id_is_accepted() {
        assert_eq!(check(ARGON2ID), Ok(Scheme::Argon2id));
    }

    #[test]
    fn argon2i_is_refused() {
        // Only the id variant is recommended for passwords (RFC 9106 §4).
        assert!(check(&ARGON2ID.replace("argon2id", "argon2i")).is_err());
    }

    #[test]
    fn argon2id_with_too_much_memory_is_refused() {
        let huge = ARGON2ID.replace("m=19456", "m=4194304");
        assert!(check(&huge).unwrap_err().contains("above"));
    }

    #[test]
    fn argon2id_garbage_is_refused() {
        assert!(check("$argon2id$v=19$nonsense").is_err());
    }

    #[test]
    fn clear_text_is_refused() {
        assert!(check("s3cret").is_err());
    }

    #[test]
    fn whitespace_is_refused() {
        assert!(check("$6$salt$ha sh").is_err());
    }
}
