//! Boot-time configuration from EC2 instance metadata, over IMDSv2.
//!
//! `serve --user-data` and `check --user-data` read the configuration text
//! from `/latest/user-data`; `public_address = imds | imds-private` is
//! resolved from `meta-data/public-ipv4` / `meta-data/local-ipv4`; the
//! instance id and Availability Zone are logged (and kept for the S3 keys and
//! metric dimensions).
//!
//! Protocol (EC2 User Guide, "Use the Instance Metadata Service to access
//! instance metadata" and "Access instance metadata for an EC2 instance"):
//! - a session token from `PUT /latest/api/token` with the header
//!   `X-aws-ec2-metadata-token-ttl-seconds` (1..=21600); then every GET
//!   carries `X-aws-ec2-metadata-token`;
//! - 400: the PUT is not valid (no or bad TTL); 401: the token is invalid or
//!   expired, get a new one; 403: not allowed, or IMDS is turned off (also
//!   for a PUT carrying `X-Forwarded-For`); 404: no such item (no user-data;
//!   no public IPv4); 503: try again.
//!
//! The endpoint is `http://169.254.169.254` unless the AWS SDKs' standard
//! variable `AWS_EC2_METADATA_SERVICE_ENDPOINT` names another (the tests run
//! a fake on loopback). At boot IMDS may not answer yet: connection errors,
//! timeouts and 5xx are retried with a capped exponential backoff for at most
//! `limits::IMDS_PATIENCE`. Every failure becomes one line (it reaches the
//! serial console through the unit's `StandardError=journal+console`).
//!
//! Blocking by design: this runs in `main` before the executor starts.

use crate::config::PublicAddress;
use crate::limits;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

/// The AWS SDKs' variable that points metadata requests elsewhere.
pub const ENDPOINT_VAR: &str = "AWS_EC2_METADATA_SERVICE_ENDPOINT";
/// Overrides `limits::IMDS_PATIENCE` (a duration such as `5s`).
pub const PATIENCE_VAR: &str = "LAKEFTPD_IMDS_PATIENCE";
const DEFAULT_ENDPOINT: &str = "http://169.254.169.254";

const TOKEN_PATH: &str = "/latest/api/token";
const TOKEN_HEADER: &str = "X-aws-ec2-metadata-token";
const TTL_HEADER: &str = "X-aws-ec2-metadata-token-ttl-seconds";
const USER_DATA_PATH: &str = "/latest/user-data";
const INSTANCE_ID_PATH: &str = "/latest/meta-data/instance-id";
const ZONE_PATH: &str = "/latest/meta-data/placement/availability-zone";
const PUBLIC_IPV4_PATH: &str = "/latest/meta-data/public-ipv4";
const LOCAL_IPV4_PATH: &str = "/latest/meta-data/local-ipv4";

/// What the instance says about itself, and what PASV advertises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// `i-0123456789abcdef0`: part of S3 keys (`{instance}`) and metric
    /// dimensions.
    pub id: String,
    /// `ap-northeast-1a`.
    pub zone: String,
    /// The address PASV advertises, when `public_address` asks IMDS.
    pub pasv_address: Option<IpAddr>,
}

/// `--user-data`: the configuration text. Fails, in one line, when IMDS does
/// not answer in time, when the instance has no user-data, or when it is not
/// UTF-8 text.
pub fn user_data() -> Result<String, String> {
    let mut client = Client::from_env()?;
    let fail = |e: Error| e.to_string();
    match client
        .get(USER_DATA_PATH, limits::MAX_USER_DATA)
        .map_err(fail)?
    {
        None => Err(format!(
            "user-data: the instance has no user-data (IMDS at {} answered 404); \
             launch it with the lakeftpd configuration as user-data",
            client.endpoint
        )),
        Some(bytes) => String::from_utf8(bytes).map_err(|_| {
            "user-data: not UTF-8 text (compressed or binary user-data is not supported)".into()
        }),
    }
}

/// At `serve`: when the configuration came from user-data, or PASV must
/// advertise an address from IMDS, learns which instance this is (logged)
/// and resolves the PASV address. `None`: IMDS is not needed and not asked.
pub fn describe(from_user_data: bool, public: PublicAddress) -> Result<Option<Instance>, String> {
    let wants_address = matches!(public, PublicAddress::Imds | PublicAddress::ImdsPrivate);
    if !from_user_data && !wants_address {
        return Ok(None);
    }
    let mut client = Client::from_env()?;
    let instance = fetch_instance(&mut client, public).map_err(|e| e.to_string())?;
    log::info!("instance {} in {}", instance.id, instance.zone);
    if let Some(ip) = instance.pasv_address {
        log::info!(
            "PASV advertises {ip} (public_address = {})",
            public_name(public)
        );
    }
    Ok(Some(instance))
}

fn public_name(public: PublicAddress) -> &'static str {
    match public {
        PublicAddress::ImdsPrivate => "imds-private",
        _ => "imds",
    }
}

fn fetch_instance(client: &mut Client, public: PublicAddress) -> Result<Instance, Error> {
    let id = client.value(INSTANCE_ID_PATH, parse_instance_id)?;
    let zone = client.value(ZONE_PATH, parse_zone)?;
    let public_ipv4 = match public {
        PublicAddress::Imds => client.optional_value(PUBLIC_IPV4_PATH, parse_ipv4)?,
        _ => None,
    };
    let local_ipv4 = match public {
        // The private address is needed only when there is no public one.
        PublicAddress::Imds if public_ipv4.is_some() => None,
        PublicAddress::Imds | PublicAddress::ImdsPrivate => {
            client.optional_value(LOCAL_IPV4_PATH, parse_ipv4)?
        }
        _ => None,
    };
    let pasv_address = pasv_address(public, public_ipv4, local_ipv4).map_err(Error::Invalid)?;
    Ok(Instance {
        id,
        zone,
        pasv_address,
    })
}

/// What PASV advertises for `public_address`, given what IMDS said (pure).
fn pasv_address(
    public: PublicAddress,
    public_ipv4: Option<Ipv4Addr>,
    local_ipv4: Option<Ipv4Addr>,
) -> Result<Option<IpAddr>, String> {
    let chosen = match public {
        PublicAddress::Local | PublicAddress::Fixed(_) => return Ok(None),
        // An instance without a public address (private subnet behind the
        // NLB, VPN or Direct Connect devices) is reached at its private one.
        PublicAddress::Imds => public_ipv4.or(local_ipv4),
        PublicAddress::ImdsPrivate => local_ipv4,
    };
    match chosen {
        Some(ip) => Ok(Some(IpAddr::V4(ip))),
        None => Err(format!(
            "public_address = {}: IMDS reports no IPv4 address for this instance \
             (IPv6-only subnet?); PASV needs one: set public_address to an address",
            public_name(public)
        )),
    }
}

/// Why IMDS gave no answer; `Display` is the one console line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Error {
    /// No usable answer before the patience ran out.
    Unreachable {
        endpoint: String,
        tried: Duration,
        attempts: u32,
        last: String,
    },
    /// An answer that retrying cannot change (400, 403, 3xx, ...).
    Status {
        endpoint: String,
        request: String,
        status: u16,
    },
    /// A body larger than expected, or a value that is not what IMDS sends.
    Invalid(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unreachable {
                endpoint,
                tried,
                attempts,
                last,
            } => write!(
                f,
                "instance metadata (IMDS) at {endpoint} unreachable: tried for {:.1}s \
                 ({attempts} attempts), last error: {last}; is the metadata endpoint \
                 enabled for this instance?",
                tried.as_secs_f64()
            ),
            Error::Status {
                endpoint,
                request,
                status,
            } => write!(
                f,
                "instance metadata (IMDS) at {endpoint} answered {request} with HTTP {status}{}",
                match status {
                    403 => " (metadata access turned off for this instance, or the request was forbidden)",
                    400 => " (the token request was refused)",
                    401 => " (a fresh session token was refused too)",
                    _ => "",
                }
            ),
            Error::Invalid(message) => write!(f, "instance metadata (IMDS): {message}"),
        }
    }
}

/// What to do with one HTTP status (pure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Done,
    /// 404: the item does not exist.
    Absent,
    /// 401: the token is invalid or expired; get a new one.
    Renew,
    /// 5xx (503 is documented as "try again"), 429: wait and retry.
    Retry,
    /// Anything else will not change by retrying.
    Fail,
}

fn classify(status: u16) -> Action {
    match status {
        200 => Action::Done,
        404 => Action::Absent,
        401 => Action::Renew,
        429 | 500..=599 => Action::Retry,
        _ => Action::Fail,
    }
}

/// The pause after `attempt` failures (1-based): doubling, capped (pure).
fn backoff(attempt: u32) -> Duration {
    // No jitter: one process retrying one local endpoint.
    crate::sys::random::backoff(
        attempt,
        limits::IMDS_BACKOFF_FIRST,
        limits::IMDS_BACKOFF_MAX,
        1.0,
    )
}

/// The endpoint from `AWS_EC2_METADATA_SERVICE_ENDPOINT` (pure). Only plain
/// `http://host[:port]` is accepted: IMDS speaks no TLS, and a path would be
/// silently dropped.
fn parse_endpoint(value: Option<&str>) -> Result<String, String> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(DEFAULT_ENDPOINT.into());
    };
    let bad = || {
        format!(
            "{ENDPOINT_VAR}={value:?}: expected http://HOST[:PORT] (e.g. http://127.0.0.1:8111)"
        )
    };
    let authority = value
        .strip_prefix("http://")
        .ok_or_else(bad)?
        .trim_end_matches('/');
    if authority.is_empty()
        || !authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
    {
        return Err(bad());
    }
    Ok(format!("http://{authority}"))
}

/// `LAKEFTPD_IMDS_PATIENCE` or the default (pure).
fn parse_patience(value: Option<&str>) -> Result<Duration, String> {
    match value {
        None => Ok(limits::IMDS_PATIENCE),
        Some(v) => crate::config::parse_duration(v.trim())
            .map_err(|e| format!("{PATIENCE_VAR}={v:?}: {e}")),
    }
}

// SECURITY: metadata values end up in logs, S3 keys and metric dimensions;
// accept only the documented shapes, never arbitrary bytes.
fn parse_instance_id(value: &str) -> Result<String, String> {
    let hex = value.strip_prefix("i-").unwrap_or("");
    if (8..=32).contains(&hex.len()) && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        Ok(value.into())
    } else {
        Err(format!("instance-id {value:?} is not i- and hex digits"))
    }
}

fn parse_zone(value: &str) -> Result<String, String> {
    if (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        Ok(value.into())
    } else {
        Err(format!("availability-zone {value:?} is not a zone name"))
    }
}

fn parse_ipv4(value: &str) -> Result<Ipv4Addr, String> {
    value
        .parse()
        .map_err(|_| format!("{value:?} is not an IPv4 address"))
}

/// One IMDSv2 session: a token (fetched lazily, renewed on 401) and a
/// deadline for the whole boot-time conversation.
/// A metadata session for other modules (the instance role's credentials):
/// the same endpoint parsing, proxy refusal, token handling and retries as at
/// start-up, bounded by the caller's `patience`.
pub struct Session(Client);

impl Session {
    /// The endpoint from `AWS_EC2_METADATA_SERVICE_ENDPOINT`, checked once.
    pub fn endpoint_from_env() -> Result<String, String> {
        parse_endpoint(std::env::var(ENDPOINT_VAR).ok().as_deref())
    }

    pub fn new(endpoint: String, patience: Duration) -> Session {
        Session(Client::new(endpoint, patience))
    }

    /// GET `path` as text (at most `limit` bytes); `None` on 404.
    pub fn text(&mut self, path: &str, limit: u64) -> Result<Option<String>, String> {
        match self.0.get(path, limit).map_err(|e| e.to_string())? {
            None => Ok(None),
            Some(body) => String::from_utf8(body)
                .map(Some)
                .map_err(|_| format!("{path}: not UTF-8 text")),
        }
    }
}

struct Client {
    agent: ureq::Agent,
    endpoint: String,
    token: Option<String>,
    started: Instant,
    patience: Duration,
    attempts: u32,
}

/// One request's result before interpretation.
enum Attempt {
    Answer(u16, Vec<u8>),
    /// Connection refused, timeout, reset: worth retrying.
    Transport(String),
}

impl Client {
    fn from_env() -> Result<Client, String> {
        let endpoint = parse_endpoint(std::env::var(ENDPOINT_VAR).ok().as_deref())?;
        let patience = parse_patience(std::env::var(PATIENCE_VAR).ok().as_deref())?;
        Ok(Client::new(endpoint, patience))
    }

    fn new(endpoint: String, patience: Duration) -> Client {
        let config = ureq::Agent::config_builder()
            // SECURITY: IMDS is link-local; a proxy from HTTP_PROXY/ALL_PROXY
            // (ureq's default reads them) would receive the token and the
            // user-data with its password hashes.
            .proxy(None)
            // IMDS does not redirect; following one would carry the token.
            .max_redirects(0)
            .max_redirects_will_error(false)
            // Statuses are interpreted here (401, 404, 503 mean different things).
            .http_status_as_error(false)
            .timeout_global(Some(limits::IMDS_REQUEST_TIMEOUT))
            .build();
        Client {
            agent: ureq::Agent::new_with_config(config),
            endpoint,
            token: None,
            started: Instant::now(),
            patience,
            attempts: 0,
        }
    }

    /// A metadata value that must exist.
    fn value<T>(&mut self, path: &str, parse: fn(&str) -> Result<T, String>) -> Result<T, Error> {
        self.optional_value(path, parse)?
            .ok_or_else(|| Error::Status {
                endpoint: self.endpoint.clone(),
                request: format!("GET {path}"),
                status: 404,
            })
    }

    /// A metadata value that may be absent (404).
    fn optional_value<T>(
        &mut self,
        path: &str,
        parse: fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, Error> {
        let Some(body) = self.get(path, limits::MAX_METADATA_VALUE)? else {
            return Ok(None);
        };
        let text = std::str::from_utf8(&body)
            .map_err(|_| Error::Invalid(format!("{path}: not UTF-8 text")))?;
        parse(text.trim())
            .map(Some)
            .map_err(|e| Error::Invalid(format!("{path}: {e}")))
    }

    /// GET with the session token; `None` on 404.
    fn get(&mut self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, Error> {
        let mut renewed = false;
        loop {
            let token = match &self.token {
                Some(token) => token.clone(),
                None => {
                    let token = self.fetch_token()?;
                    self.token = Some(token.clone());
                    token
                }
            };
            let (status, body) = self.request(path, limit, |agent, url| {
                agent.get(url).header(TOKEN_HEADER, &token).call()
            })?;
            match classify(status) {
                Action::Done => return Ok(Some(body)),
                Action::Absent => return Ok(None),
                // The token expired or IMDS restarted: one fresh token, as
                // the User Guide recommends; a second 401 is an error.
                Action::Renew if !renewed => {
                    log::info!("IMDS refused the session token (401): fetching a new one");
                    self.token = None;
                    renewed = true;
                }
                _ => {
                    return Err(Error::Status {
                        endpoint: self.endpoint.clone(),
                        request: format!("GET {path}"),
                        status,
                    })
                }
            }
        }
    }

    fn fetch_token(&mut self) -> Result<String, Error> {
        let (status, body) =
            self.request(TOKEN_PATH, limits::MAX_METADATA_VALUE, |agent, url| {
                agent
                    .put(url)
                    .header(TTL_HEADER, limits::IMDS_TOKEN_TTL_SECONDS.to_string())
                    .send_empty()
            })?;
        if classify(status) != Action::Done {
            return Err(Error::Status {
                endpoint: self.endpoint.clone(),
                request: format!("PUT {TOKEN_PATH}"),
                status,
            });
        }
        // SECURITY: the token goes back in a header; refuse anything that is
        // not a plain visible-ASCII value (no CR/LF header injection).
        match std::str::from_utf8(&body).map(str::trim) {
            Ok(token) if !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic()) => {
                Ok(token.into())
            }
            _ => Err(Error::Invalid(format!("{TOKEN_PATH}: not a token"))),
        }
    }

    /// Sends one request, retrying transport failures and retryable statuses
    /// (with backoff) until the patience runs out; returns any other status.
    fn request(
        &mut self,
        path: &str,
        limit: u64,
        send: impl Fn(&ureq::Agent, &str) -> Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<(u16, Vec<u8>), Error> {
        let url = format!("{}{path}", self.endpoint);
        loop {
            self.attempts += 1;
            let attempt = match send(&self.agent, &url) {
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    match response.body_mut().with_config().limit(limit).read_to_vec() {
                        Ok(body) => Attempt::Answer(status, body),
                        Err(ureq::Error::BodyExceedsLimit(_)) => {
                            return Err(Error::Invalid(format!(
                                "{path}: larger than {limit} bytes"
                            )))
                        }
                        Err(e) => Attempt::Transport(e.to_string()),
                    }
                }
                Err(e) => Attempt::Transport(e.to_string()),
            };
            let last = match attempt {
                Attempt::Answer(status, body) if classify(status) != Action::Retry => {
                    return Ok((status, body))
                }
                Attempt::Answer(status, _) => format!("HTTP {status}"),
                Attempt::Transport(e) => e,
            };
            let elapsed = self.started.elapsed();
            let Some(left) = self.patience.checked_sub(elapsed).filter(|d| !d.is_zero()) else {
                return Err(Error::Unreachable {
                    endpoint: self.endpoint.clone(),
                    tried: elapsed,
                    attempts: self.attempts,
                    last,
                });
            };
            if self.attempts == 1 {
                log::warn!(
                    "IMDS at {} not answering yet ({last}): retrying for up to {:?}",
                    self.endpoint,
                    self.patience
                );
            } else {
                log::debug!("IMDS attempt {} failed: {last}", self.attempts);
            }
            std::thread::sleep(backoff(self.attempts).min(left));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_defaults_to_the_link_local_address() {
        assert_eq!(parse_endpoint(None).unwrap(), "http://169.254.169.254");
    }

    #[test]
    fn endpoint_empty_is_the_default() {
        assert_eq!(parse_endpoint(Some(" ")).unwrap(), DEFAULT_ENDPOINT);
    }

    #[test]
    fn endpoint_with_port() {
        // The form the AWS SDKs document for the variable.
        assert_eq!(
            parse_endpoint(Some("http://127.0.0.1:8111")).unwrap(),
            "http://127.0.0.1:8111"
        );
    }

    #[test]
    fn endpoint_trailing_slash_dropped() {
        // Paths are appended as /latest/...; a double slash would be a different path.
        assert_eq!(
            parse_endpoint(Some("http://127.0.0.1:8111/")).unwrap(),
            "http://127.0.0.1:8111"
        );
    }

    #[test]
    fn endpoint_ipv6() {
        // The IPv6 IMDS endpoint (Nitro instances).
        assert_eq!(
            parse_endpoint(Some("http://[fd00:ec2::254]")).unwrap(),
            "http://[fd00:ec2::254]"
        );
    }

    #[test]
    fn endpoint_https_refused() {
        // IMDS speaks plain HTTP, and this build has no TLS for it.
        assert!(parse_endpoint(Some("https://169.254.169.254")).is_err());
    }

    #[test]
    fn endpoint_with_path_refused() {
        // A path would be silently replaced by /latest/...
        assert!(parse_endpoint(Some("http://127.0.0.1:8111/imds")).is_err());
    }

    #[test]
    fn endpoint_without_scheme_refused() {
        assert!(parse_endpoint(Some("127.0.0.1:8111")).is_err());
    }

    #[test]
    fn endpoint_with_credentials_refused() {
        // user@host would be a confusing way to point the token elsewhere.
        assert!(parse_endpoint(Some("http://user@127.0.0.1")).is_err());
    }

    #[test]
    fn patience_default() {
        assert_eq!(parse_patience(None).unwrap(), limits::IMDS_PATIENCE);
    }

    #[test]
    fn patience_override() {
        assert_eq!(parse_patience(Some("2s")).unwrap(), Duration::from_secs(2));
    }

    #[test]
    fn patience_needs_a_unit() {
        assert!(parse_patience(Some("2")).is_err());
    }

    #[test]
    fn classify_table() {
        // (status, action, why)
        let table = [
            (200, Action::Done, "the value"),
            (404, Action::Absent, "no user-data, no public IPv4"),
            (
                401,
                Action::Renew,
                "token invalid or expired: get a new one",
            ),
            (503, Action::Retry, "documented: try again"),
            (500, Action::Retry, "server fault at boot"),
            (429, Action::Retry, "throttled"),
            (
                400,
                Action::Fail,
                "our PUT is not valid: retrying cannot help",
            ),
            (403, Action::Fail, "IMDS turned off or X-Forwarded-For"),
            (301, Action::Fail, "IMDS never redirects"),
        ];
        for (status, action, why) in table {
            assert_eq!(classify(status), action, "{status}: {why}");
        }
    }

    #[test]
    fn backoff_doubles_then_caps() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(4), Duration::from_millis(800));
        assert_eq!(backoff(7), limits::IMDS_BACKOFF_MAX);
        assert_eq!(backoff(u32::MAX), limits::IMDS_BACKOFF_MAX);
    }

    #[test]
    fn instance_id_forms() {
        assert!(parse_instance_id("i-0123456789abcdef0").is_ok());
        assert!(parse_instance_id("i-12345678").is_ok(), "old 8-digit ids");
        assert!(
            parse_instance_id("i-0123/../x").is_err(),
            "would shape S3 keys"
        );
        assert!(parse_instance_id("0123456789abcdef0").is_err());
        assert!(parse_instance_id("i-").is_err());
    }

    #[test]
    fn zone_forms() {
        assert!(parse_zone("ap-northeast-1a").is_ok());
        assert!(parse_zone("us-east-1-bos-1a").is_ok(), "Local Zones");
        assert!(parse_zone("").is_err());
        assert!(parse_zone("ap northeast").is_err());
    }

    #[test]
    fn ipv4_forms() {
        assert_eq!(parse_ipv4("203.0.113.9"), Ok(Ipv4Addr::new(203, 0, 113, 9)));
        assert!(parse_ipv4("2001:db8::1").is_err());
        assert!(parse_ipv4("").is_err());
    }

    const PUBLIC: Option<Ipv4Addr> = Some(Ipv4Addr::new(203, 0, 113, 9));
    const LOCAL: Option<Ipv4Addr> = Some(Ipv4Addr::new(10, 0, 1, 5));

    #[test]
    fn imds_prefers_the_public_address() {
        assert_eq!(
            pasv_address(PublicAddress::Imds, PUBLIC, LOCAL),
            Ok(PUBLIC.map(IpAddr::V4))
        );
    }

    #[test]
    fn imds_without_public_address_uses_the_private_one() {
        assert_eq!(
            pasv_address(PublicAddress::Imds, None, LOCAL),
            Ok(LOCAL.map(IpAddr::V4))
        );
    }

    #[test]
    fn imds_private_ignores_the_public_address() {
        assert_eq!(
            pasv_address(PublicAddress::ImdsPrivate, PUBLIC, LOCAL),
            Ok(LOCAL.map(IpAddr::V4))
        );
    }

    #[test]
    fn imds_without_any_ipv4_is_an_error() {
        assert!(pasv_address(PublicAddress::Imds, None, None).is_err());
        assert!(pasv_address(PublicAddress::ImdsPrivate, PUBLIC, None).is_err());
    }

    #[test]
    fn local_and_fixed_need_no_imds_address() {
        assert_eq!(pasv_address(PublicAddress::Local, PUBLIC, LOCAL), Ok(None));
        let fixed = PublicAddress::Fixed("198.51.100.1".parse().unwrap());
        assert_eq!(pasv_address(fixed, PUBLIC, LOCAL), Ok(None));
    }

    #[test]
    fn unreachable_is_one_line() {
        let e = Error::Unreachable {
            endpoint: DEFAULT_ENDPOINT.into(),
            tried: Duration::from_millis(60_200),
            attempts: 17,
            last: "connection refused".into(),
        };
        let line = e.to_string();
        assert!(!line.contains('\n'));
        assert!(line.contains("tried for 60.2s (17 attempts)"), "{line}");
    }
}
