//! The FTPS keys of the configuration (RFC 4217 explicit TLS, and implicit
//! TLS on its own listener), parsed by pure functions into `TlsSettings`.
//! `config/mod.rs` hands every key named in `KEYS` to `TlsSettings::set`, a
//! user section's `tls` to `parse_user_tls`; the rules between keys are in
//! `check.rs` (`check_tls`). docs/configuration.md lists the keys.

use crate::config::parse_duration;
use crate::limits;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const KEYS: &[&str] = &[
    "tls",
    "tls_cert",
    "tls_key",
    "tls_session_reuse",
    "tls_min_version",
    "tls_allow_ccc",
    "tls_reload_interval",
    "implicit_tls_listen",
];

/// `tls = off | on | required`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No TLS: `AUTH` is answered 502 and FEAT does not offer it.
    Off,
    /// `AUTH TLS` is offered; plain sessions still log in.
    On,
    /// USER before `AUTH TLS` gets 530; PROT C and unprotected transfers
    /// are refused.
    Required,
}

/// Where a PEM file comes from: a path, or an S3 object read with the
/// delivery's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    S3 { bucket: String, key: String },
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(path) => write!(f, "{}", path.display()),
            Source::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

/// The lowest protocol version offered (`tls_min_version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinVersion {
    Tls12,
    Tls13,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TlsSettings {
    pub mode: Mode,
    /// PEM: the end-entity certificate first, then its chain.
    pub cert: Option<Source>,
    /// PEM: the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<Source>,
    /// A PROT P data connection must resume the control connection's TLS
    /// session (522 otherwise), as vsftpd's `require_ssl_reuse`.
    pub session_reuse_required: bool,
    pub min_version: MinVersion,
    /// How often `tls_cert` and `tls_key` are checked for a change.
    pub reload_interval: Duration,
    /// Where implicit FTPS (TLS from the first byte) is served; `None`: off.
    pub implicit_listen: Option<SocketAddr>,
    /// `tls_allow_ccc = on`: CCC (RFC 2228 §5.3) returns a logged-in
    /// session's control connection to plain text, for NAT routers whose
    /// FTP helper must read PORT.
    pub allow_ccc: bool,
}

impl TlsSettings {
    pub fn defaults() -> TlsSettings {
        TlsSettings {
            mode: Mode::Off,
            cert: None,
            key: None,
            session_reuse_required: true,
            min_version: MinVersion::Tls12,
            reload_interval: limits::DEFAULT_TLS_RELOAD_INTERVAL,
            implicit_listen: None,
            allow_ccc: false,
        }
    }

    /// TLS is configured: a handshake can be made.
    pub fn enabled(&self) -> bool {
        self.mode != Mode::Off
    }

    /// Parses one key of `KEYS`.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let bad = |what: &str| format!("`{key}`: {what}, found `{value}`");
        match key {
            "tls" => {
                self.mode = match value {
                    "off" => Mode::Off,
                    "on" => Mode::On,
                    "required" => Mode::Required,
                    _ => return Err(bad("expected `off`, `on` or `required`")),
                }
            }
            "tls_cert" => self.cert = Some(parse_source(value).map_err(|e| bad(&e))?),
            "tls_key" => self.key = Some(parse_source(value).map_err(|e| bad(&e))?),
            "tls_session_reuse" => {
                self.session_reuse_required = parse_session_reuse(value).map_err(|e| bad(&e))?
            }
            "tls_min_version" => {
                self.min_version = match value {
                    "1.2" => MinVersion::Tls12,
                    "1.3" => MinVersion::Tls13,
                    _ => return Err(bad("expected `1.2` or `1.3`")),
                }
            }
            "tls_allow_ccc" => {
                self.allow_ccc = match value {
                    "on" => true,
                    "off" => false,
                    _ => return Err(bad("expected `on` or `off`")),
                }
            }
            "tls_reload_interval" => {
                self.reload_interval = parse_duration(value)
                    .ok()
                    .filter(|d| d.as_secs() >= 1)
                    .ok_or_else(|| bad("expected a duration of 1s or more"))?
            }
            "implicit_tls_listen" => {
                self.implicit_listen = match value {
                    "off" => None,
                    _ => Some(
                        value
                            .parse()
                            .map_err(|_| bad("expected ADDRESS:PORT or `off`"))?,
                    ),
                }
            }
            _ => return Err(format!("unknown key `{key}`")),
        }
        Ok(())
    }
}

/// A user section's `tls`: `required` (this user logs in only after
/// `AUTH TLS`, or over implicit TLS) or `on` (as the global setting says).
pub fn parse_user_tls(value: &str) -> Result<bool, String> {
    match value {
        "required" => Ok(true),
        "on" => Ok(false),
        _ => Err(format!("expected `required` or `on`, found `{value}`")),
    }
}

/// `tls_session_reuse`, globally or in a user section: `required` (true)
/// or `off`.
pub fn parse_session_reuse(value: &str) -> Result<bool, String> {
    match value {
        "required" => Ok(true),
        "off" => Ok(false),
        _ => Err("expected `required` or `off`".into()),
    }
}

/// `/absolute/path` or `s3://bucket/key`.
fn parse_source(value: &str) -> Result<Source, String> {
    if let Some(rest) = value.strip_prefix("s3://") {
        let (bucket, key) = rest.split_once('/').ok_or("expected `s3://BUCKET/KEY`")?;
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !bucket_ok || key.is_empty() || key.len() > 1024 {
            return Err("expected `s3://BUCKET/KEY` with a valid bucket name".into());
        }
        return Ok(Source::S3 {
            bucket: bucket.to_string(),
            key: key.to_string(),
        });
    }
    if value.starts_with('/') && !value.contains('\0') {
        Ok(Source::File(PathBuf::from(value)))
    } else {
        Err("expected an absolute path or `s3://BUCKET/KEY`".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (key, value, accepted?, reason)
    const CASES: &[(&str, &str, bool, &str)] = &[
        ("tls", "on", true, "explicit FTPS offered"),
        ("tls", "required", true, "explicit FTPS required"),
        ("tls", "off", true, "the default"),
        ("tls", "yes", false, "not one of the three words"),
        ("tls_cert", "/etc/lakeftpd/cert.pem", true, "absolute path"),
        ("tls_cert", "cert.pem", false, "relative path"),
        (
            "tls_cert",
            "s3://certs-bucket/ftp/cert.pem",
            true,
            "S3 object",
        ),
        ("tls_cert", "s3://certs-bucket", false, "S3 without a key"),
        (
            "tls_cert",
            "s3://Bad_Bucket/k",
            false,
            "invalid bucket name",
        ),
        (
            "tls_key",
            "s3://certs-bucket/ftp/key.pem",
            true,
            "S3 object",
        ),
        ("tls_session_reuse", "required", true, "the default"),
        ("tls_session_reuse", "off", true, "for ftplib"),
        ("tls_session_reuse", "on", false, "not one of the two words"),
        ("tls_min_version", "1.2", true, "TLS 1.2"),
        ("tls_min_version", "1.3", true, "TLS 1.3"),
        ("tls_min_version", "1.1", false, "not offered by rustls"),
        ("tls_allow_ccc", "on", true, "CCC offered"),
        ("tls_allow_ccc", "off", true, "the default"),
        ("tls_allow_ccc", "yes", false, "not one of the two words"),
        ("tls_reload_interval", "5m", true, "duration"),
        ("tls_reload_interval", "500ms", false, "below a second"),
        ("implicit_tls_listen", "0.0.0.0:990", true, "address"),
        ("implicit_tls_listen", "off", true, "the default"),
        ("implicit_tls_listen", "990", false, "no address"),
    ];

    #[test]
    fn table() {
        for (key, value, accepted, reason) in CASES {
            let mut s = TlsSettings::defaults();
            assert_eq!(
                s.set(key, value).is_ok(),
                *accepted,
                "{key} = {value}: {reason}"
            );
        }
    }

    #[test]
    fn s3_source_split() {
        assert_eq!(
            parse_source("s3://b-1/a/b.pem"),
            Ok(Source::S3 {
                bucket: "b-1".into(),
                key: "a/b.pem".into()
            })
        );
    }

    #[test]
    fn session_reuse_values() {
        assert_eq!(parse_session_reuse("required"), Ok(true));
        assert_eq!(parse_session_reuse("off"), Ok(false));
        assert!(parse_session_reuse("on").is_err());
    }

    #[test]
    fn user_tls_values() {
        assert_eq!(parse_user_tls("required"), Ok(true));
        assert_eq!(parse_user_tls("on"), Ok(false));
        assert!(parse_user_tls("off").is_err());
    }
}
