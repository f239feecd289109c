//! The S3 delivery keys of the configuration, parsed by pure functions into
//! `S3Settings`; `parse.rs` hands every key named in `KEYS` to
//! `S3Settings::set`. The rules between them (a bucket for `ack = s3`, where
//! the spool may lie) are in `check.rs`. README lists the keys and their
//! defaults.

use super::keytemplate::{self, KeyTemplate};
use super::value::{parse_abs_path, parse_duration, parse_size, parse_switch};
use crate::limits;
use std::path::PathBuf;
use std::time::Duration;

/// When the device gets its 226.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// Once the file is fsync'd in the spool; delivery follows.
    Disk,
    /// Once S3 confirmed the object (its checksum matched).
    S3,
}

pub const KEYS: &[&str] = &[
    "s3_bucket",
    "s3_region",
    "s3_key",
    "s3_endpoint",
    "ack",
    "keep_local",
    "spool",
    "s3_timeout",
    "s3_uploads",
    "s3_part_size",
];

#[derive(Debug, Clone, PartialEq)]
pub struct S3Settings {
    /// No bucket: no delivery; files stay in the homes only.
    pub bucket: Option<String>,
    pub region: String,
    pub key: KeyTemplate,
    /// An S3-compatible endpoint (implies path-style addressing).
    pub endpoint: Option<url::Url>,
    /// As written; `ack()` gives the effective mode.
    pub ack: Option<Ack>,
    /// As written; `keep_local()` gives the effective choice.
    pub keep_local: Option<bool>,
    pub spool: PathBuf,
    pub timeout: Duration,
    pub uploads: usize,
    pub part_size: u64,
}

impl S3Settings {
    pub fn defaults() -> S3Settings {
        S3Settings {
            bucket: None,
            region: "us-east-1".into(),
            key: KeyTemplate::parse(keytemplate::DEFAULT).expect("the default template parses"),
            endpoint: None,
            ack: None,
            keep_local: None,
            spool: PathBuf::from("/var/lib/lakeftpd/spool"),
            timeout: limits::DEFAULT_S3_TIMEOUT,
            uploads: limits::DEFAULT_S3_UPLOADS,
            part_size: limits::DEFAULT_S3_PART_SIZE,
        }
    }

    /// `s3` when a bucket is set, else `disk` (nothing to wait for).
    pub fn ack(&self) -> Ack {
        match (self.ack, &self.bucket) {
            (Some(ack), _) => ack,
            (None, Some(_)) => Ack::S3,
            (None, None) => Ack::Disk,
        }
    }

    /// Whether the home copy stays once S3 confirmed the file: as written,
    /// else `off` with a bucket (S3 holds the file; a home copy kept forever
    /// fills a small root volume in hours at fleet rates) and `on` without
    /// (the home copy is the only one).
    pub fn keep_local(&self) -> bool {
        self.keep_local.unwrap_or(self.bucket.is_none())
    }

    /// Parses one key of `KEYS`.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let bad = |what: &str| format!("`{key}`: {what}, found `{value}`");
        match key {
            "s3_bucket" => self.bucket = Some(parse_bucket(value).map_err(|e| bad(&e))?),
            "s3_region" => self.region = parse_region(value).map_err(|e| bad(&e))?,
            "s3_key" => self.key = KeyTemplate::parse(value).map_err(|e| bad(&e))?,
            "s3_endpoint" => self.endpoint = Some(parse_endpoint(value).map_err(|e| bad(&e))?),
            "ack" => {
                self.ack = Some(match value {
                    "s3" => Ack::S3,
                    "disk" => Ack::Disk,
                    _ => return Err(bad("expected `s3` or `disk`")),
                })
            }
            "keep_local" => self.keep_local = Some(parse_switch(value).map_err(|e| bad(&e))?),
            "spool" => self.spool = parse_abs_path(value).map_err(|e| bad(&e))?,
            "s3_timeout" => self.timeout = parse_duration(value).map_err(|e| bad(&e))?,
            "s3_uploads" => {
                self.uploads = match value.parse::<usize>() {
                    Ok(n) if (1..=limits::MAX_S3_UPLOADS).contains(&n) => n,
                    _ => return Err(bad(&format!("expected 1 to {}", limits::MAX_S3_UPLOADS))),
                }
            }
            "s3_part_size" => {
                self.part_size = match parse_size(value).map_err(|e| bad(&e))? {
                    Some(n)
                        if (limits::MIN_S3_PART_SIZE..=limits::MAX_S3_PART_SIZE).contains(&n) =>
                    {
                        n
                    }
                    _ => return Err(bad("S3 parts are 5MiB to 5GiB")),
                }
            }
            _ => return Err(format!("unknown key `{key}`")),
        }
        Ok(())
    }
}

/// Bucket naming rules:
/// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html>
pub fn parse_bucket(value: &str) -> Result<String, String> {
    let ok = (3..=63).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && value.as_bytes()[0].is_ascii_alphanumeric()
        && value.as_bytes()[value.len() - 1].is_ascii_alphanumeric()
        && !value.contains("..");
    if ok {
        Ok(value.to_string())
    } else {
        Err("expected 3-63 lower-case letters, digits, `.` or `-`".into())
    }
}

fn parse_region(value: &str) -> Result<String, String> {
    let ok = !value.is_empty()
        && value.len() <= 32
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(value.to_string())
    } else {
        Err("expected a region such as `ap-northeast-1`".into())
    }
}

fn parse_endpoint(value: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(value).map_err(|_| "expected a URL such as `https://host:9000`")?;
    let ok = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some()
        && (url.path() == "/" || url.path().is_empty())
        && url.query().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    if ok {
        Ok(url)
    } else {
        Err("expected http(s)://HOST[:PORT] with no path, query or user".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (key, value, accepted?, reason)
    const CASES: &[(&str, &str, bool, &str)] = &[
        ("s3_bucket", "my-lake", true, "plain name"),
        ("s3_bucket", "My_Lake", false, "upper case and underscore"),
        ("s3_bucket", "ab", false, "too short"),
        ("s3_bucket", "a..b", false, "adjacent dots"),
        ("s3_region", "ap-northeast-1", true, "region"),
        ("s3_region", "ap northeast", false, "space"),
        ("s3_endpoint", "http://127.0.0.1:9000", true, "loopback"),
        ("s3_endpoint", "ftp://x", false, "scheme"),
        ("s3_endpoint", "http://x/bucket", false, "path"),
        ("ack", "s3", true, "s3"),
        ("ack", "disk", true, "disk"),
        ("ack", "none", false, "unknown mode"),
        ("keep_local", "off", true, "switch"),
        ("spool", "spool", false, "relative"),
        ("s3_timeout", "5s", true, "duration"),
        ("s3_timeout", "5", false, "no unit"),
        ("s3_uploads", "0", false, "zero"),
        ("s3_uploads", "65", false, "over the limit"),
        ("s3_part_size", "8MiB", true, "part"),
        ("s3_part_size", "1MiB", false, "below S3's minimum"),
        ("s3_key", "{user}/{path}", true, "template"),
        ("s3_key", "{user}/{nope}", false, "unknown placeholder"),
    ];

    #[test]
    fn table() {
        for (key, value, accepted, reason) in CASES {
            let mut s = S3Settings::defaults();
            assert_eq!(
                s.set(key, value).is_ok(),
                *accepted,
                "{key} = {value}: {reason}"
            );
        }
    }

    #[test]
    fn keep_local_defaults_off_with_a_bucket_and_on_without() {
        let mut s = S3Settings::defaults();
        assert!(s.keep_local());
        s.set("s3_bucket", "lake").unwrap();
        assert!(!s.keep_local());
        s.set("keep_local", "on").unwrap();
        assert!(s.keep_local());
    }

    #[test]
    fn ack_defaults_to_s3_with_a_bucket() {
        let mut s = S3Settings::defaults();
        assert_eq!(s.ack(), Ack::Disk);
        s.set("s3_bucket", "lake").unwrap();
        assert_eq!(s.ack(), Ack::S3);
        s.set("ack", "disk").unwrap();
        assert_eq!(s.ack(), Ack::Disk);
    }
}
