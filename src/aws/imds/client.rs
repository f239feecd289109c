//! The IMDSv2 client: a session token (PUT, renewed once on 401), GETs
//! carrying it, retries with backoff on transport errors and 5xx until the
//! patience runs out, one console line per failure. Blocking (`ureq`).

use crate::limits;
use std::fmt;
use std::time::{Duration, Instant};

/// The AWS SDKs' variable that points metadata requests elsewhere.
pub const ENDPOINT_VAR: &str = "AWS_EC2_METADATA_SERVICE_ENDPOINT";
/// Overrides `limits::IMDS_PATIENCE` (a duration such as `5s`).
pub const PATIENCE_VAR: &str = "LAKEFTPD_IMDS_PATIENCE";
pub(super) const DEFAULT_ENDPOINT: &str = "http://169.254.169.254";

const TOKEN_PATH: &str = "/latest/api/token";
const TOKEN_HEADER: &str = "X-aws-ec2-metadata-token";
const TTL_HEADER: &str = "X-aws-ec2-metadata-token-ttl-seconds";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Error {
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
pub(super) enum Action {
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

pub(super) fn classify(status: u16) -> Action {
    match status {
        200 => Action::Done,
        404 => Action::Absent,
        401 => Action::Renew,
        429 | 500..=599 => Action::Retry,
        _ => Action::Fail,
    }
}

/// The pause after `attempt` failures (1-based): doubling, capped (pure).
pub(super) fn backoff(attempt: u32) -> Duration {
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
pub(super) fn parse_endpoint(value: Option<&str>) -> Result<String, String> {
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
pub(super) fn parse_patience(value: Option<&str>) -> Result<Duration, String> {
    match value {
        None => Ok(limits::IMDS_PATIENCE),
        Some(v) => crate::config::parse_duration(v.trim())
            .map_err(|e| format!("{PATIENCE_VAR}={v:?}: {e}")),
    }
}

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

/// One IMDSv2 session: a token (fetched lazily, renewed on 401) and a
/// deadline for the whole boot-time conversation.
pub(super) struct Client {
    agent: ureq::Agent,
    pub(super) endpoint: String,
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
    pub(super) fn from_env() -> Result<Client, String> {
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
    pub(super) fn value<T>(
        &mut self,
        path: &str,
        parse: fn(&str) -> Result<T, String>,
    ) -> Result<T, Error> {
        self.optional_value(path, parse)?
            .ok_or_else(|| Error::Status {
                endpoint: self.endpoint.clone(),
                request: format!("GET {path}"),
                status: 404,
            })
    }

    /// A metadata value that may be absent (404).
    pub(super) fn optional_value<T>(
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
    pub(super) fn get(&mut self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, Error> {
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
