//! AWS credentials for S3 delivery: the standard environment variables when
//! set (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, optional
//! `AWS_SESSION_TOKEN`), else the instance role over IMDSv2, cached and
//! refreshed before they expire.
//!
//! IMDSv2 (<https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-service.html>):
//! `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds` gives a
//! session token; every `GET` carries it in `X-aws-ec2-metadata-token`.
//! `GET /latest/meta-data/iam/security-credentials/` names the role, and
//! `GET .../ROLE` returns JSON with `AccessKeyId`, `SecretAccessKey`, `Token`
//! and `Expiration`. The endpoint follows `AWS_EC2_METADATA_SERVICE_ENDPOINT`
//! (default `http://169.254.169.254`), as the AWS SDKs do.
//!
//! The metadata requests go through `imds::Session`, the same client that
//! reads user-data at start-up.
//!
//! Secrets never reach a log: `Secret` prints `*******`, and rusty-s3's
//! `Credentials` prints only the access key id.

use crate::aws::imds;
use crate::limits::{CREDENTIALS_IMDS_PATIENCE, CREDENTIALS_REFRESH_BEFORE, MAX_IMDS_RESPONSE};
use rusty_s3::credentials::Ec2SecurityCredentialsMetadataResponse;
use rusty_s3::Credentials;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A secret string whose `Debug` and `Display` never show it.
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("*******")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("*******")
    }
}

enum Source {
    /// Fixed for the life of the process.
    Env(Arc<Credentials>),
    /// The instance role, through this metadata endpoint (or why the
    /// endpoint variable is unusable).
    Imds(Result<String, String>),
}

struct Cached {
    credentials: Arc<Credentials>,
    /// When to fetch new ones.
    refresh_at: SystemTime,
}

pub struct Provider {
    source: Source,
    cached: Mutex<Option<Cached>>,
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

impl Provider {
    /// Environment variables when both key variables are set and non-empty,
    /// else the instance role.
    pub fn from_env() -> Provider {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let source = match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(key), Some(secret)) => {
                let secret = Secret::new(secret);
                Source::Env(Arc::new(match var("AWS_SESSION_TOKEN") {
                    Some(token) => Credentials::new_with_token(key, secret.expose(), token),
                    None => Credentials::new(key, secret.expose()),
                }))
            }
            _ => Source::Imds(imds::Session::endpoint_from_env()),
        };
        Provider {
            source,
            cached: Mutex::new(None),
        }
    }

    pub fn describe(&self) -> &'static str {
        match self.source {
            Source::Env(_) => "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY from the environment",
            Source::Imds(_) => "the instance role (IMDSv2)",
        }
    }

    /// Current credentials (blocking: may call IMDS).
    pub fn get(&self) -> Result<Arc<Credentials>, String> {
        let endpoint = match &self.source {
            Source::Env(credentials) => return Ok(credentials.clone()),
            Source::Imds(endpoint) => endpoint.as_ref().map_err(Clone::clone)?,
        };
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cached.as_ref() {
            if SystemTime::now() < c.refresh_at {
                return Ok(c.credentials.clone());
            }
        }
        // The lock is held across the fetch on purpose: one fetch at a time,
        // the other deliveries wait for its result (CREDENTIALS_IMDS_PATIENCE bounds it).
        match fetch(endpoint) {
            Ok(fresh) => {
                let credentials = fresh.credentials.clone();
                *cached = Some(fresh);
                Ok(credentials)
            }
            // Keep using unexpired credentials while IMDS is unavailable.
            Err(e) => match cached.as_ref() {
                Some(c) => {
                    log::warn!(
                        "credentials: refresh from IMDS failed ({e}); using the cached ones"
                    );
                    Ok(c.credentials.clone())
                }
                None => Err(e),
            },
        }
    }

    /// S3 refused the credentials: fetch new ones before the next request
    /// (the role's credentials may have rotated early).
    pub fn invalidate(&self) {
        if let Source::Imds(_) = self.source {
            let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
            *cached = None;
        }
    }
}

fn fetch(endpoint: &str) -> Result<Cached, String> {
    // A short patience: the delivery thread retries with its own backoff.
    let mut session = imds::Session::new(endpoint.to_string(), CREDENTIALS_IMDS_PATIENCE);
    let fail = |what: &str, e: &dyn fmt::Display| format!("IMDS at {endpoint}: {what}: {e}");
    let mut get = |path: &str| -> Result<String, String> {
        session
            .text(
                &format!("/latest/meta-data/iam/security-credentials/{path}"),
                MAX_IMDS_RESPONSE,
            )?
            .ok_or_else(|| {
                fail(
                    "no instance role",
                    &"attach an IAM role (instance profile) or set AWS_ACCESS_KEY_ID",
                )
            })
    };
    let listing = get("")?;
    let role = listing.lines().next().unwrap_or("").trim().to_string();
    // SECURITY: the role name becomes part of a URL path.
    let role_ok = !role.is_empty()
        && role.len() <= 128
        && role
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    if !role_ok {
        return Err(fail("unexpected role name", &format!("{role:?}")));
    }
    let document = get(&role)?;
    let parsed = Ec2SecurityCredentialsMetadataResponse::deserialize(&document)
        .map_err(|e| fail("credentials document", &e))?;
    let expires = UNIX_EPOCH + Duration::from_secs(parsed.expiration().as_second().max(0) as u64);
    let refresh_at = refresh_time(expires, SystemTime::now());
    log::info!(
        "credentials: instance role `{role}`, key {}, expire {}",
        parsed.key(),
        crate::clock::Utc::from_system(expires).iso8601()
    );
    Ok(Cached {
        credentials: Arc::new(parsed.into_credentials()),
        refresh_at,
    })
}

/// `CREDENTIALS_REFRESH_BEFORE` ahead of expiry, but not sooner than a few
/// seconds from now (so short-lived or already expired credentials do not
/// make every request call IMDS).
fn refresh_time(expires: SystemTime, now: SystemTime) -> SystemTime {
    let early = expires
        .checked_sub(CREDENTIALS_REFRESH_BEFORE)
        .unwrap_or(UNIX_EPOCH);
    early.max(now + Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_never_printed() {
        let s = Secret::new("wJalrXUtnFEMI".into());
        assert_eq!(format!("{s:?} {s}"), "******* *******");
    }

    #[test]
    fn refresh_before_expiry() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let hour = now + Duration::from_secs(3600);
        assert_eq!(refresh_time(hour, now), hour - CREDENTIALS_REFRESH_BEFORE);
        // Expired already: try again in a few seconds, not in a loop.
        assert_eq!(refresh_time(now, now), now + Duration::from_secs(5));
    }
}
