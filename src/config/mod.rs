//! The configuration: one text (a file, or EC2 user-data), parsed once by a
//! pure function into a typed `Config`.
//!
//! Format: `key = value` lines, `#` comments (to the end of the line),
//! `[user NAME]` sections. Unknown keys and bad values are errors, reported
//! all at once with their line numbers; nothing is ever silently ignored.
//! Every key is parsed in `set_global` / `set_user`; README lists them all.

pub mod cidr;
pub mod device;
pub mod keytemplate;
pub mod s3;

use crate::limits;
use crate::protocol::proxy;
use cidr::Cidr;
use log::LevelFilter;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// One problem found in a configuration text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line number; 0 when the problem concerns the whole text.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

/// What PASV advertises as the server's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicAddress {
    /// The local address of the control connection (fine without NAT).
    Local,
    /// A fixed address.
    Fixed(IpAddr),
    /// The instance's public IPv4 from EC2 metadata (its private one when it
    /// has none).
    Imds,
    /// The instance's private IPv4 from EC2 metadata.
    ImdsPrivate,
}

/// What a user may do. `upload`: store (replacing a file of the same name),
/// make directories, list. `read`: retrieve and list. `full`: everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Permissions {
    pub store: bool,
    pub mkdir: bool,
    pub list: bool,
    pub retrieve: bool,
    /// Delete files and directories, rename, append.
    pub modify: bool,
}

impl Permissions {
    pub const UPLOAD: Permissions = Permissions {
        store: true,
        mkdir: true,
        list: true,
        retrieve: false,
        modify: false,
    };
    pub const READ: Permissions = Permissions {
        store: false,
        mkdir: false,
        list: true,
        retrieve: true,
        modify: false,
    };
    pub const FULL: Permissions = Permissions {
        store: true,
        mkdir: true,
        list: true,
        retrieve: true,
        modify: true,
    };

    fn union(self, other: Permissions) -> Permissions {
        Permissions {
            store: self.store || other.store,
            mkdir: self.mkdir || other.mkdir,
            list: self.list || other.list,
            retrieve: self.retrieve || other.retrieve,
            modify: self.modify || other.modify,
        }
    }
}

/// One `[user NAME]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    /// A crypt hash: `$6$` (SHA-512) or `$5$` (SHA-256).
    pub password_hash: String,
    /// The user's home; `root/NAME` unless set.
    pub home: PathBuf,
    pub permissions: Permissions,
    /// `active_address`, `filename_encoding`, `auto_mkdir` (device.rs).
    pub device: device::Device,
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    pub root: PathBuf,
    pub active: bool,
    pub active_source_port: u16,
    pub active_connect_timeout: Duration,
    pub passive: bool,
    pub passive_ports: (u16, u16),
    pub passive_accept_timeout: Duration,
    pub public_address: PublicAddress,
    pub epsv: bool,
    pub max_sessions: usize,
    pub max_sessions_per_ip: usize,
    pub idle_timeout: Duration,
    pub data_timeout: Duration,
    pub login_timeout: Duration,
    pub login_fail_delay: Duration,
    pub max_login_failures: u32,
    /// Largest file a client may store; `None`: no limit.
    pub max_file_size: Option<u64>,
    pub drain_timeout: Duration,
    pub log_level: LevelFilter,
    /// Which PROXY header the balancer sends; `None`: no header.
    pub proxy_protocol: Option<proxy::Version>,
    /// Peers whose PROXY headers are believed; connections from elsewhere
    /// are closed when `proxy_protocol` is on.
    pub proxy_from: Vec<Cidr>,
    pub proxy_header_timeout: Duration,
    /// Idle time before keepalive probes on control connections; `None`: off.
    pub tcp_keepalive: Option<Duration>,
    /// Where `/healthz` and `/metrics` are served; `None`: nowhere.
    pub health_listen: Option<SocketAddr>,
    pub health_s3_failing_after: Duration,
    /// After SIGTERM, how long new sessions are still accepted while
    /// `/healthz` says 503, so the balancer stops sending before we refuse.
    pub drain_delay: Duration,
    pub metrics_emf: Option<EmfTarget>,
    pub metrics_interval: Duration,
    /// EMF dimension `Group` (e.g. the stack name) for fleet-wide metrics.
    pub metrics_group: Option<String>,
    /// S3 delivery keys (issue 4; see s3config.rs).
    pub s3: crate::config::s3::S3Settings,
    /// The global device keys; each user's own are in `User::device`.
    pub device: device::Device,
    pub users: Vec<User>,
}

impl Config {
    /// The defaults of every global key, with no users.
    pub fn defaults() -> Config {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 21)),
            root: PathBuf::from("/var/lib/lakeftpd/home"),
            active: true,
            active_source_port: limits::DEFAULT_ACTIVE_SOURCE_PORT,
            active_connect_timeout: limits::DEFAULT_CONNECT_TIMEOUT,
            passive: true,
            passive_ports: limits::DEFAULT_PASSIVE_PORTS,
            passive_accept_timeout: limits::DEFAULT_ACCEPT_TIMEOUT,
            public_address: PublicAddress::Local,
            epsv: true,
            max_sessions: limits::DEFAULT_MAX_SESSIONS,
            max_sessions_per_ip: limits::DEFAULT_MAX_SESSIONS_PER_IP,
            idle_timeout: limits::DEFAULT_IDLE_TIMEOUT,
            data_timeout: limits::DEFAULT_DATA_TIMEOUT,
            login_timeout: limits::DEFAULT_LOGIN_TIMEOUT,
            login_fail_delay: limits::DEFAULT_LOGIN_FAIL_DELAY,
            max_login_failures: limits::DEFAULT_MAX_LOGIN_FAILURES,
            max_file_size: None,
            drain_timeout: limits::DEFAULT_DRAIN_TIMEOUT,
            log_level: LevelFilter::Info,
            proxy_protocol: None,
            proxy_from: Vec::new(),
            proxy_header_timeout: limits::DEFAULT_PROXY_HEADER_TIMEOUT,
            tcp_keepalive: Some(limits::DEFAULT_TCP_KEEPALIVE),
            health_listen: None,
            health_s3_failing_after: limits::DEFAULT_HEALTH_S3_FAILING_AFTER,
            drain_delay: limits::DEFAULT_DRAIN_DELAY,
            metrics_emf: None,
            metrics_interval: limits::DEFAULT_METRICS_INTERVAL,
            metrics_group: None,
            s3: crate::config::s3::S3Settings::defaults(),
            device: device::Device::default(),
            users: Vec::new(),
        }
    }
}

/// A user section while it is being read: fields not yet known.
struct UserDraft {
    line: usize,
    name: String,
    password_hash: Option<String>,
    home: Option<PathBuf>,
    permissions: Option<Permissions>,
    device: device::DeviceDraft,
    /// A `password` line was present (even if its value was refused).
    password_given: bool,
    /// A second section for the same name: its lines are checked, then dropped.
    duplicate: bool,
}

/// Parses a whole configuration text. Returns every problem found, or the
/// configuration when there are none.
pub fn parse(text: &str) -> Result<Config, Vec<Problem>> {
    let mut config = Config::defaults();
    let mut problems = Vec::new();
    let mut drafts: Vec<UserDraft> = Vec::new();
    let mut seen_global: Vec<&str> = Vec::new();

    if text.len() > limits::MAX_CONFIG_BYTES {
        problems.push(Problem {
            line: 0,
            message: format!(
                "configuration is {} bytes, more than the {} allowed",
                text.len(),
                limits::MAX_CONFIG_BYTES
            ),
        });
        return Err(problems);
    }

    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let content = strip_comment(raw).trim();
        if content.is_empty() {
            continue;
        }
        let mut fail = |message: String| problems.push(Problem { line, message });

        if let Some(section) = content.strip_prefix('[') {
            let Some(section) = section.strip_suffix(']') else {
                fail(format!("section header `{content}` lacks its closing `]`"));
                continue;
            };
            let mut words = section.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some("user"), Some(name), None) => {
                    let duplicate = drafts.iter().any(|d| d.name == name);
                    if duplicate {
                        fail(format!("user `{name}` is defined twice"));
                    }
                    if let Err(message) = check_user_name(name) {
                        fail(message);
                    }
                    drafts.push(UserDraft {
                        line,
                        name: name.to_string(),
                        password_hash: None,
                        home: None,
                        permissions: None,
                        device: device::DeviceDraft::default(),
                        password_given: false,
                        duplicate,
                    });
                }
                _ => fail(format!(
                    "unknown section `[{section}]` (expected `[user NAME]`)"
                )),
            }
            continue;
        }

        let Some((key, value)) = content.split_once('=') else {
            fail(format!("expected `key = value`, found `{content}`"));
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if value.is_empty() {
            fail(format!("`{key}` has no value"));
            continue;
        }
        let result = match drafts.last_mut() {
            Some(draft) => set_user(draft, key, value),
            None => {
                if seen_global.contains(&key) {
                    Err(format!("`{key}` is set twice"))
                } else {
                    seen_global.push(key);
                    set_global(&mut config, key, value)
                }
            }
        };
        if let Err(message) = result {
            fail(message);
        }
    }

    for draft in drafts {
        if draft.duplicate {
            continue;
        }
        let Some(password_hash) = draft.password_hash else {
            if !draft.password_given {
                problems.push(Problem {
                    line: draft.line,
                    message: format!("user `{}` has no `password`", draft.name),
                });
            }
            continue;
        };
        config.users.push(User {
            home: draft.home.unwrap_or_else(|| config.root.join(&draft.name)),
            name: draft.name,
            password_hash,
            permissions: draft.permissions.unwrap_or(Permissions::UPLOAD),
            device: draft.device.over(config.device),
        });
    }

    // S3 delivery (issue 4): problems between its keys.
    for message in config.s3.check(&config.root, &config.users) {
        problems.push(Problem { line: 0, message });
    }
    if config.passive_ports.0 > config.passive_ports.1 {
        problems.push(Problem {
            line: 0,
            message: "passive_ports: the first port is above the last".into(),
        });
    }
    // SECURITY: with PROXY on, the header names the client; only listed
    // balancers may send one, so an empty list would refuse everyone.
    match (config.proxy_protocol, config.proxy_from.is_empty()) {
        (Some(_), true) => problems.push(Problem {
            line: 0,
            message:
                "proxy_protocol is on but proxy_from is not set (list the balancers' addresses)"
                    .into(),
        }),
        (None, false) => problems.push(Problem {
            line: 0,
            message: "proxy_from is set but proxy_protocol = off".into(),
        }),
        _ => {}
    }
    if problems.is_empty() {
        Ok(config)
    } else {
        problems.sort_by_key(|p| p.line);
        Err(problems)
    }
}

/// `#` starts a comment anywhere on a line. (A crypt hash never contains `#`.)
fn strip_comment(line: &str) -> &str {
    match line.find('#') {
        Some(at) => &line[..at],
        None => line,
    }
}

fn set_global(config: &mut Config, key: &str, value: &str) -> Result<(), String> {
    let bad = |what: &str| format!("`{key}`: {what}, found `{value}`");
    match key {
        "listen" => config.listen = value.parse().map_err(|_| bad("expected ADDRESS:PORT"))?,
        "root" => config.root = parse_abs_path(value).map_err(|e| bad(&e))?,
        "active" => config.active = parse_switch(value).map_err(|e| bad(&e))?,
        "active_source_port" => {
            config.active_source_port = value.parse().map_err(|_| bad("expected a port 0-65535"))?
        }
        "active_connect_timeout" => {
            config.active_connect_timeout = parse_duration(value).map_err(|e| bad(&e))?
        }
        "passive" => config.passive = parse_switch(value).map_err(|e| bad(&e))?,
        "passive_ports" => config.passive_ports = parse_port_range(value).map_err(|e| bad(&e))?,
        "passive_accept_timeout" => {
            config.passive_accept_timeout = parse_duration(value).map_err(|e| bad(&e))?
        }
        "public_address" => {
            config.public_address = match value {
                "local" => PublicAddress::Local,
                "imds" => PublicAddress::Imds,
                "imds-private" => PublicAddress::ImdsPrivate,
                ip => PublicAddress::Fixed(ip.parse().map_err(|_| {
                    bad("expected an IP address, `imds`, `imds-private` or `local`")
                })?),
            }
        }
        "epsv" => config.epsv = parse_switch(value).map_err(|e| bad(&e))?,
        "max_sessions" => config.max_sessions = parse_count(value).map_err(|e| bad(&e))?,
        "max_sessions_per_ip" => {
            config.max_sessions_per_ip = parse_count(value).map_err(|e| bad(&e))?
        }
        "idle_timeout" => config.idle_timeout = parse_duration(value).map_err(|e| bad(&e))?,
        "data_timeout" => config.data_timeout = parse_duration(value).map_err(|e| bad(&e))?,
        "login_timeout" => config.login_timeout = parse_duration(value).map_err(|e| bad(&e))?,
        "login_fail_delay" => {
            config.login_fail_delay = parse_duration_or_zero(value).map_err(|e| bad(&e))?
        }
        "max_login_failures" => {
            config.max_login_failures = parse_count(value)
                .map_err(|e| bad(&e))?
                .try_into()
                .map_err(|_| bad("too large"))?
        }
        "max_file_size" => config.max_file_size = parse_size(value).map_err(|e| bad(&e))?,
        "drain_timeout" => config.drain_timeout = parse_duration(value).map_err(|e| bad(&e))?,
        "log_level" => config.log_level = parse_log_level(value).map_err(|e| bad(&e))?,
        "proxy_protocol" => {
            config.proxy_protocol = match value {
                "off" => None,
                "v1" => Some(proxy::Version::V1),
                "v2" => Some(proxy::Version::V2),
                _ => return Err(bad("expected `off`, `v1` or `v2`")),
            }
        }
        "proxy_from" => config.proxy_from = cidr::parse_list(value).map_err(|e| bad(&e))?,
        "proxy_header_timeout" => {
            config.proxy_header_timeout = parse_duration(value).map_err(|e| bad(&e))?
        }
        "tcp_keepalive" => {
            config.tcp_keepalive = match value {
                "off" => None,
                _ => Some(
                    parse_duration(value)
                        .ok()
                        .filter(|d| d.as_secs() >= 1 && d.subsec_millis() == 0)
                        .ok_or_else(|| bad("expected whole seconds such as `60s`, or `off`"))?,
                ),
            }
        }
        "health_listen" => {
            config.health_listen = match value {
                "off" => None,
                _ => Some(
                    value
                        .parse()
                        .map_err(|_| bad("expected ADDRESS:PORT or `off`"))?,
                ),
            }
        }
        "health_s3_failing_after" => {
            config.health_s3_failing_after = parse_duration(value).map_err(|e| bad(&e))?
        }
        "drain_delay" => config.drain_delay = parse_duration_or_zero(value).map_err(|e| bad(&e))?,
        "metrics_emf" => config.metrics_emf = parse_emf_target(value).map_err(|e| bad(&e))?,
        "metrics_group" => {
            let valid = value.len() <= 255
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b));
            if !valid {
                return Err(bad("expected up to 255 letters, digits, `-_.:/`"));
            }
            config.metrics_group = Some(value.to_string());
        }
        "metrics_interval" => {
            config.metrics_interval = parse_duration(value)
                .ok()
                .filter(|d| d.as_secs() >= 1)
                .ok_or_else(|| bad("expected a duration of 1s or more"))?
        }
        // S3 delivery (issue 4): parsed in s3config.rs.
        key if crate::config::s3::KEYS.contains(&key) => config.s3.set(key, value)?,
        key if device::KEYS.contains(&key) => config.device.set(key, value)?,
        "password" | "home" | "permissions" => {
            return Err(format!("`{key}` belongs in a `[user NAME]` section"))
        }
        _ => return Err(format!("unknown key `{key}`")),
    }
    Ok(())
}

fn set_user(draft: &mut UserDraft, key: &str, value: &str) -> Result<(), String> {
    let bad = |what: &str| format!("`{key}` of user `{}`: {what}", draft.name);
    match key {
        "password" if draft.password_given => Err(bad("set twice")),
        "password" => {
            draft.password_given = true;
            check_hash(value).map_err(|e| bad(&e))?;
            draft.password_hash = Some(value.to_string());
            Ok(())
        }
        "home" if draft.home.is_some() => Err(bad("set twice")),
        "home" => {
            draft.home = Some(parse_abs_path(value).map_err(|e| bad(&e))?);
            Ok(())
        }
        "permissions" if draft.permissions.is_some() => Err(bad("set twice")),
        "permissions" => {
            draft.permissions = Some(parse_permissions(value).map_err(|e| bad(&e))?);
            Ok(())
        }
        key if device::KEYS.contains(&key) => (draft.device.set(key, value))
            .map_err(|e| format!("{e} (user `{}`)", draft.name)),
        _ => Err(format!(
            "unknown key `{key}` in section of user `{}` (user keys: password, home, permissions, active_address, filename_encoding, auto_mkdir; global keys go above the first section)",
            draft.name
        )),
    }
}

fn check_user_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= limits::MAX_USER_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
        && !name.starts_with('.');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "user name `{name}`: use 1-{} letters, digits, `.`, `_`, `-`, `@`, not starting with `.`",
            limits::MAX_USER_NAME
        ))
    }
}

/// Only crypt hashes are stored; a clear-text password is refused.
fn check_hash(value: &str) -> Result<(), String> {
    let is_sha_crypt = (value.starts_with("$6$") || value.starts_with("$5$"))
        && value.split('$').count() >= 4
        && !value.contains(char::is_whitespace);
    if is_sha_crypt {
        Ok(())
    } else {
        Err("expected a `$6$` (SHA-512) or `$5$` (SHA-256) crypt hash; make one with `lakeftpd passwd`".into())
    }
}

pub fn parse_switch(value: &str) -> Result<bool, String> {
    match value {
        "on" | "yes" | "true" => Ok(true),
        "off" | "no" | "false" => Ok(false),
        _ => Err("expected `on` or `off`".into()),
    }
}

fn parse_count(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(0) => Err("expected a number above 0".into()),
        Ok(n) => Ok(n),
        Err(_) => Err("expected a whole number".into()),
    }
}

/// A duration with a unit: `500ms`, `30s`, `5m`, `1h`. Zero is refused.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    match parse_duration_or_zero(value)? {
        d if d.is_zero() => Err("expected a duration above zero".into()),
        d => Ok(d),
    }
}

fn parse_duration_or_zero(value: &str) -> Result<Duration, String> {
    let unit_at = value
        .find(|c: char| !c.is_ascii_digit())
        .ok_or("expected a duration with a unit: ms, s, m or h (e.g. `30s`)")?;
    let (number, unit) = value.split_at(unit_at);
    let n: u64 = number
        .parse()
        .map_err(|_| "expected a duration such as `30s`".to_string())?;
    let millis = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => return Err(format!("unknown unit `{unit}` (use ms, s, m or h)")),
    };
    match millis {
        Some(ms) if ms <= 7 * 24 * 3_600_000 => Ok(Duration::from_millis(ms)),
        _ => Err("duration longer than a week".into()),
    }
}

/// A size in bytes with an optional unit: `1000`, `64KiB`, `10MiB`, `2GiB`;
/// `0` or `unlimited` means no limit.
pub fn parse_size(value: &str) -> Result<Option<u64>, String> {
    if value == "unlimited" {
        return Ok(None);
    }
    let unit_at = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(unit_at);
    let n: u64 = number
        .parse()
        .map_err(|_| "expected a size such as `100MiB`".to_string())?;
    let scale: u64 = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        _ => {
            return Err(format!(
                "unknown unit `{unit}` (use B, KiB, MiB, GiB or TiB)"
            ))
        }
    };
    match n.checked_mul(scale) {
        Some(0) => Ok(None),
        Some(bytes) => Ok(Some(bytes)),
        None => Err("size too large".into()),
    }
}

/// `FIRST-LAST`, both at or above 1024 (RFC 2577: no privileged ports).
fn parse_port_range(value: &str) -> Result<(u16, u16), String> {
    let (first, last) = value
        .split_once('-')
        .ok_or("expected FIRST-LAST, e.g. `50000-50999`")?;
    let port = |s: &str| -> Result<u16, String> {
        match s.trim().parse::<u16>() {
            Ok(p) if p >= 1024 => Ok(p),
            _ => Err("ports must be numbers from 1024 to 65535".into()),
        }
    };
    let (first, last) = (port(first)?, port(last)?);
    if first > last {
        return Err("the first port is above the last".into());
    }
    Ok((first, last))
}

fn parse_abs_path(value: &str) -> Result<PathBuf, String> {
    if value.starts_with('/') && !value.contains('\0') {
        Ok(PathBuf::from(value))
    } else {
        Err("expected an absolute path".into())
    }
}

/// Where EMF records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmfTarget {
    Tcp(SocketAddr),
    Udp(SocketAddr),
}

/// `off`, `tcp:ADDRESS:PORT` or `udp:ADDRESS:PORT`.
pub fn parse_emf_target(value: &str) -> Result<Option<EmfTarget>, String> {
    if value == "off" {
        return Ok(None);
    }
    let addr = |s: &str| -> Result<SocketAddr, String> {
        s.parse()
            .map_err(|_| "expected `tcp:ADDRESS:PORT`, `udp:ADDRESS:PORT` or `off`".to_string())
    };
    if let Some(rest) = value.strip_prefix("tcp:") {
        Ok(Some(EmfTarget::Tcp(addr(rest)?)))
    } else if let Some(rest) = value.strip_prefix("udp:") {
        Ok(Some(EmfTarget::Udp(addr(rest)?)))
    } else {
        Err("expected `tcp:ADDRESS:PORT`, `udp:ADDRESS:PORT` or `off`".into())
    }
}

pub fn parse_log_level(value: &str) -> Result<LevelFilter, String> {
    match value {
        "error" => Ok(LevelFilter::Error),
        "warn" => Ok(LevelFilter::Warn),
        "info" => Ok(LevelFilter::Info),
        "debug" => Ok(LevelFilter::Debug),
        "trace" => Ok(LevelFilter::Trace),
        _ => Err("expected error, warn, info, debug or trace".into()),
    }
}

fn parse_permissions(value: &str) -> Result<Permissions, String> {
    let mut permissions = Permissions::default();
    for word in value.split(',').map(str::trim) {
        let one = match word {
            "upload" => Permissions::UPLOAD,
            "read" => Permissions::READ,
            "full" => Permissions::FULL,
            _ => return Err(format!("unknown permission `{word}` (use upload, read, full, or a list such as `upload,read`)")),
        };
        permissions = permissions.union(one);
    }
    Ok(permissions)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$6$saltsalt$hashhashhash";

    fn problems(text: &str) -> Vec<Problem> {
        parse(text).expect_err("expected problems")
    }

    fn one_problem(text: &str) -> Problem {
        let found = problems(text);
        assert_eq!(found.len(), 1, "{found:?}");
        found.into_iter().next().unwrap()
    }

    #[test]
    fn empty_text_gives_defaults() {
        assert_eq!(parse("").unwrap(), Config::defaults());
    }

    #[test]
    fn comments_and_blank_lines_are_ignored() {
        let c = parse("# a comment\n\n   \nlisten = 127.0.0.1:2121  # trailing\n").unwrap();
        assert_eq!(c.listen, "127.0.0.1:2121".parse().unwrap());
    }

    #[test]
    fn design_sketch_parses() {
        let text = format!(
            "listen = 0.0.0.0:21\nroot = /srv/ftp\nactive = on\nactive_source_port = 20\n\
             passive = on\npassive_ports = 50000-50999\npublic_address = imds\nmax_sessions = 20000\n\
             idle_timeout = 300s\n\n[user device01]\npassword = {HASH}\npermissions = upload\n"
        );
        let c = parse(&text).unwrap();
        assert_eq!(c.public_address, PublicAddress::Imds);
        assert_eq!(c.users.len(), 1);
        assert_eq!(c.users[0].home, PathBuf::from("/srv/ftp/device01"));
        assert_eq!(c.users[0].permissions, Permissions::UPLOAD);
    }

    #[test]
    fn unknown_key_is_an_error_with_its_line() {
        let p = one_problem("listen = 0.0.0.0:21\nlisten_port = 21\n");
        assert_eq!(p.line, 2);
        assert!(p.message.contains("unknown key `listen_port`"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let p = problems("active = maybe\nidle_timeout = 30\nbogus = 1\n");
        assert_eq!(p.iter().map(|p| p.line).collect::<Vec<_>>(), vec![1, 2, 3]);
    }

    #[test]
    fn duration_needs_a_unit() {
        assert!(one_problem("idle_timeout = 30\n").message.contains("unit"));
    }

    #[test]
    fn duration_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn zero_duration_refused_except_fail_delay() {
        assert!(parse("idle_timeout = 0s").is_err());
        assert_eq!(
            parse("login_fail_delay = 0s").unwrap().login_fail_delay,
            Duration::ZERO
        );
    }

    #[test]
    fn unknown_duration_unit() {
        assert!(parse_duration("3d").is_err());
    }

    #[test]
    fn sizes_with_units() {
        assert_eq!(parse_size("10MiB"), Ok(Some(10 << 20)));
        assert_eq!(parse_size("1000"), Ok(Some(1000)));
        assert_eq!(parse_size("0"), Ok(None));
        assert_eq!(parse_size("unlimited"), Ok(None));
        assert!(parse_size("10MB").is_err());
    }

    #[test]
    fn passive_range_must_be_ordered_and_unprivileged() {
        assert_eq!(parse_port_range("50000-50999"), Ok((50000, 50999)));
        assert!(parse_port_range("50999-50000").is_err());
        assert!(parse_port_range("1000-2000").is_err());
        assert!(parse_port_range("50000").is_err());
    }

    #[test]
    fn key_set_twice_is_an_error() {
        assert_eq!(one_problem("active = on\nactive = off\n").line, 2);
    }

    #[test]
    fn user_without_password_is_an_error() {
        let p = one_problem("[user a]\npermissions = read\n");
        assert_eq!(p.line, 1);
        assert!(p.message.contains("no `password`"));
    }

    #[test]
    fn clear_text_password_refused() {
        assert!(one_problem("[user a]\npassword = secret\n")
            .message
            .contains("crypt hash"));
    }

    #[test]
    fn sha256_hash_accepted() {
        assert!(parse("[user a]\npassword = $5$salt$abc\n").is_ok());
    }

    #[test]
    fn permissions_combine() {
        let c = parse(&format!(
            "[user a]\npassword = {HASH}\npermissions = upload,read\n"
        ))
        .unwrap();
        let p = c.users[0].permissions;
        assert!(p.store && p.retrieve && p.mkdir && !p.modify);
    }

    #[test]
    fn unknown_permission() {
        assert!(parse(&format!(
            "[user a]\npassword = {HASH}\npermissions = write\n"
        ))
        .is_err());
    }

    #[test]
    fn user_home_override() {
        let c = parse(&format!("[user a]\npassword = {HASH}\nhome = /data/a\n")).unwrap();
        assert_eq!(c.users[0].home, PathBuf::from("/data/a"));
    }

    #[test]
    fn duplicate_user() {
        let text = format!("[user a]\npassword = {HASH}\n[user a]\npassword = {HASH}\n");
        assert_eq!(one_problem(&text).line, 3);
    }

    #[test]
    fn bad_user_name() {
        assert!(parse(&format!("[user ../x]\npassword = {HASH}\n")).is_err());
        assert!(parse(&format!("[user .hidden]\npassword = {HASH}\n")).is_err());
    }

    #[test]
    fn unknown_section() {
        assert!(one_problem("[group a]\n")
            .message
            .contains("unknown section"));
    }

    #[test]
    fn unterminated_section() {
        assert!(one_problem("[user a\n").message.contains("closing"));
    }

    #[test]
    fn line_without_equals() {
        assert!(one_problem("listen\n").message.contains("key = value"));
    }

    #[test]
    fn empty_value() {
        assert!(one_problem("listen =\n").message.contains("no value"));
    }

    #[test]
    fn global_key_after_section_is_rejected() {
        let p = one_problem(&format!(
            "[user a]\npassword = {HASH}\nlisten = 0.0.0.0:21\n"
        ));
        assert_eq!(p.line, 3);
    }

    #[test]
    fn user_key_in_global_part_is_rejected() {
        assert!(one_problem("password = $6$a$b\n")
            .message
            .contains("section"));
    }

    #[test]
    fn public_address_forms() {
        assert_eq!(
            parse("public_address = 203.0.113.9")
                .unwrap()
                .public_address,
            PublicAddress::Fixed("203.0.113.9".parse().unwrap())
        );
        assert_eq!(
            parse("public_address = imds-private")
                .unwrap()
                .public_address,
            PublicAddress::ImdsPrivate
        );
        assert!(parse("public_address = example.com").is_err());
    }

    #[test]
    fn relative_root_refused() {
        assert!(parse("root = data").is_err());
    }

    #[test]
    fn switch_values() {
        assert!(!parse("epsv = off").unwrap().epsv);
        assert!(parse("epsv = 0").is_err());
    }

    #[test]
    fn zero_max_sessions_refused() {
        assert!(parse("max_sessions = 0").is_err());
    }

    // S3 delivery (issue 4): the keys reach s3config.rs, with line numbers.
    #[test]
    fn s3_keys() {
        let c = parse("s3_bucket = lake\ns3_key = raw/{user}/{path}\nack = disk\n").unwrap();
        assert_eq!(c.s3.bucket.as_deref(), Some("lake"));
        assert_eq!(c.s3.ack(), crate::config::s3::Ack::Disk);
        assert_eq!(one_problem("s3_bucket = lake\ns3_key = {nope}\n").line, 2);
        assert_eq!(one_problem("ack = s3\n").line, 0);
    }

    #[test]
    fn proxy_v2_with_sources() {
        let c = parse("proxy_protocol = v2\nproxy_from = 10.0.0.0/16, 10.1.0.0/16\n").unwrap();
        assert_eq!(c.proxy_protocol, Some(proxy::Version::V2));
        assert_eq!(c.proxy_from.len(), 2);
    }

    #[test]
    fn proxy_v1_accepted() {
        let c = parse("proxy_protocol = v1\nproxy_from = 127.0.0.1\n").unwrap();
        assert_eq!(c.proxy_protocol, Some(proxy::Version::V1));
    }

    #[test]
    fn proxy_protocol_unknown_value() {
        assert!(one_problem("proxy_protocol = yes\n").message.contains("v2"));
    }

    #[test]
    fn proxy_on_without_sources_is_an_error() {
        assert!(one_problem("proxy_protocol = v2\n")
            .message
            .contains("proxy_from"));
    }

    #[test]
    fn proxy_sources_without_proxy_is_an_error() {
        assert!(one_problem("proxy_from = 10.0.0.0/8\n")
            .message
            .contains("proxy_protocol = off"));
    }

    #[test]
    fn proxy_from_bad_block() {
        let p = problems("proxy_protocol = v2\nproxy_from = 10.0.0.1/8\n");
        assert!(p.iter().any(|p| p.line == 2));
    }

    #[test]
    fn proxy_header_timeout_value() {
        let c = parse("proxy_header_timeout = 1s").unwrap();
        assert_eq!(c.proxy_header_timeout, Duration::from_secs(1));
    }

    #[test]
    fn tcp_keepalive_default_and_off() {
        assert_eq!(
            Config::defaults().tcp_keepalive,
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse("tcp_keepalive = off").unwrap().tcp_keepalive, None);
        assert_eq!(
            parse("tcp_keepalive = 2m").unwrap().tcp_keepalive,
            Some(Duration::from_secs(120))
        );
    }

    #[test]
    fn tcp_keepalive_needs_whole_seconds() {
        assert!(parse("tcp_keepalive = 500ms").is_err());
    }

    #[test]
    fn health_listen_address_and_off() {
        assert_eq!(
            parse("health_listen = 0.0.0.0:8021").unwrap().health_listen,
            Some("0.0.0.0:8021".parse().unwrap())
        );
        assert_eq!(parse("health_listen = off").unwrap().health_listen, None);
        assert!(parse("health_listen = 8021").is_err());
    }

    #[test]
    fn drain_delay_may_be_zero() {
        assert_eq!(
            parse("drain_delay = 0s").unwrap().drain_delay,
            Duration::ZERO
        );
        assert_eq!(Config::defaults().drain_delay, Duration::from_secs(10));
    }

    #[test]
    fn metrics_emf_and_interval() {
        let c = parse("metrics_emf = tcp:127.0.0.1:25888\nmetrics_interval = 10s\n").unwrap();
        assert_eq!(
            c.metrics_emf,
            Some(EmfTarget::Tcp("127.0.0.1:25888".parse().unwrap()))
        );
        assert_eq!(c.metrics_interval, Duration::from_secs(10));
    }

    #[test]
    fn metrics_interval_below_a_second_refused() {
        assert!(parse("metrics_interval = 500ms").is_err());
    }

    #[test]
    fn health_s3_failing_after_value() {
        assert_eq!(
            parse("health_s3_failing_after = 2m")
                .unwrap()
                .health_s3_failing_after,
            Duration::from_secs(120)
        );
    }

    #[test]
    fn oversized_text_refused() {
        let text = "#".repeat(limits::MAX_CONFIG_BYTES + 1);
        assert_eq!(one_problem(&text).line, 0);
    }

    #[test]
    fn metrics_group_names_the_fleet() {
        assert_eq!(
            parse("metrics_group = lakeftpd-prod")
                .unwrap()
                .metrics_group
                .as_deref(),
            Some("lakeftpd-prod")
        );
        assert!(parse("metrics_group = a b").is_err());
    }

    #[test]
    fn target_tcp() {
        assert_eq!(
            parse_emf_target("tcp:127.0.0.1:25888"),
            Ok(Some(EmfTarget::Tcp("127.0.0.1:25888".parse().unwrap())))
        );
    }

    #[test]
    fn target_udp_ipv6() {
        assert_eq!(
            parse_emf_target("udp:[::1]:25888"),
            Ok(Some(EmfTarget::Udp("[::1]:25888".parse().unwrap())))
        );
    }

    #[test]
    fn target_off() {
        assert_eq!(parse_emf_target("off"), Ok(None));
    }

    #[test]
    fn target_without_scheme_refused() {
        assert!(parse_emf_target("127.0.0.1:25888").is_err());
    }

    #[test]
    fn target_with_hostname_refused() {
        assert!(parse_emf_target("tcp:localhost:25888").is_err());
    }

    #[test]
    fn target_without_port_refused() {
        assert!(parse_emf_target("udp:127.0.0.1").is_err());
    }
}
