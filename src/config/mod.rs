//! The configuration: one text (a file, or EC2 user-data), parsed once by a
//! pure function into a typed `Config`.
//!
//! Format: `key = value` lines, `#` comments (to the end of the line),
//! `[user NAME]` sections. Unknown keys and bad values are errors, reported
//! all at once with their line numbers; nothing is ever silently ignored.
//! README lists every key.
//!
//! Where things are:
//! - this file: the types (`Config`, `User`, `Permissions`, `PublicAddress`,
//!   `EmfTarget`, `Problem`) and the defaults of every key;
//! - `parse`: the text into a `Config` (lines, sections, `set_global` /
//!   `set_user`, one problem per bad line);
//! - `value`: pure parsers of one value (switch, count, duration, size, port
//!   range, path, log level, permissions, EMF target);
//! - `check`: every rule between keys, applied once the whole text is read;
//! - `users`: the `[user NAME]` sections, of this text or of a users file
//!   (`users = ...`, `parse_users`);
//! - `s3`, `cidr`, `keytemplate`, `hash`: the S3 delivery keys, address
//!   blocks, the object key template, the password hash formats;
//! - `device`: `active_address`, `filename_encoding`, `auto_mkdir` (global
//!   and per user);
//! - `address_file`: `public_address = file:PATH`, read once at `serve`.

pub mod address_file;
mod check;
pub mod cidr;
pub mod defence;
pub mod device;
pub mod hash;
pub mod keytemplate;
mod parse;
pub mod s3;
pub mod tls;
mod users;
pub mod value;

pub use parse::parse;
pub use users::{parse_users, Refused};
pub use value::{parse_duration, parse_emf_target, parse_log_level, parse_size, parse_switch};

use crate::limits;
use crate::protocol::proxy;
use cidr::Cidr;
use log::LevelFilter;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// The address written in this file, read once at `serve`: the Elastic
    /// IP `lakeftpd-claim` took for this instance (the stack's `direct`
    /// topology, docs/deploy-aws.md).
    File(PathBuf),
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
    /// Boxed, not `String`: a users file may hold 100,000 (8 bytes each).
    pub name: Box<str>,
    /// A password hash in one of the formats of `hash.rs`.
    pub password_hash: Box<str>,
    /// The user's home; `root/NAME` unless set.
    pub home: Box<std::path::Path>,
    pub permissions: Permissions,
    /// Addresses a login is accepted from; empty: any.
    pub allow_from: Vec<Cidr>,
    /// This user's object key template instead of the global `s3_key`.
    pub s3_key: Option<Arc<keytemplate::KeyTemplate>>,
    /// `tls = required` in the section: no login before `AUTH TLS`.
    pub tls_required: bool,
    /// `tls_session_reuse` in the section; `None`: the global setting.
    pub tls_session_reuse: Option<bool>,
    /// `active_address`, `filename_encoding`, `auto_mkdir` (device.rs).
    pub device: device::Device,
}

impl User {
    /// A user with the defaults of a section that sets only its password.
    pub fn new(name: &str, password_hash: String, home: PathBuf) -> User {
        User {
            name: name.into(),
            password_hash: password_hash.into(),
            home: home.into_boxed_path(),
            permissions: Permissions::UPLOAD,
            allow_from: Vec::new(),
            s3_key: None,
            tls_required: false,
            tls_session_reuse: None,
            device: device::Device::default(),
        }
    }

    /// Whether a login from `ip` is accepted (`allow_from`).
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allow_from.is_empty() || self.allow_from.iter().any(|c| c.contains(ip))
    }
}

/// Where users beyond the configuration text come from (`users`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsersSource {
    /// `s3://BUCKET/KEY`, read with the delivery's credentials and endpoint.
    S3 { bucket: String, key: String },
    /// A local file.
    File(PathBuf),
}

impl UsersSource {
    /// `s3://BUCKET/KEY` or an absolute path.
    pub fn parse(value: &str) -> Result<UsersSource, String> {
        if let Some(rest) = value.strip_prefix("s3://") {
            let (bucket, key) = rest
                .split_once('/')
                .filter(|(b, k)| !b.is_empty() && !k.is_empty())
                .ok_or("expected `s3://BUCKET/KEY`")?;
            s3::parse_bucket(bucket)?;
            if key.len() > limits::MAX_S3_KEY || key.contains(char::is_control) {
                return Err("the object key is too long or holds control characters".into());
            }
            return Ok(UsersSource::S3 {
                bucket: bucket.to_string(),
                key: key.to_string(),
            });
        }
        // SECURITY: a relative value is refused, not guessed at: the
        // stack's `UsersObject = config/users.conf` once became
        // `s3://config/users.conf`, a bucket nobody owns.
        value::parse_abs_path(value)
            .map(UsersSource::File)
            .map_err(|_| {
                format!(
                    "`{value}` is neither an S3 object nor an absolute path: write `s3://BUCKET/KEY` \
                     (the bucket's own name, e.g. `s3://my-config-bucket/{}`) or `/path/to/users.conf`",
                    value.rsplit('/').next().unwrap_or("users.conf")
                )
            })
    }
}

impl fmt::Display for UsersSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsersSource::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
            UsersSource::File(path) => write!(f, "{}", path.display()),
        }
    }
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
    /// After the sessions drained, how long the stop waits for the spool
    /// to reach S3 before exiting.
    pub drain_spool_timeout: Duration,
    /// `transfer_log`: one JSON line per transfer and failed login; `None`: off.
    pub transfer_log: Option<PathBuf>,
    pub metrics_emf: Option<EmfTarget>,
    pub metrics_interval: Duration,
    /// EMF dimension `Group` (e.g. the stack name) for fleet-wide metrics.
    pub metrics_group: Option<String>,
    /// S3 delivery keys (see s3.rs).
    pub s3: crate::config::s3::S3Settings,
    /// Defence keys (see defence.rs).
    pub defence: crate::config::defence::Defence,
    /// FTPS keys (see tls.rs).
    pub tls: crate::config::tls::TlsSettings,
    /// The global device keys; each user's own are in `User::device`.
    pub device: device::Device,
    /// The users of the configuration text.
    pub users: Vec<User>,
    /// `users`: more users, reloaded while running; `None`: none.
    pub users_source: Option<UsersSource>,
    pub users_poll_interval: Duration,
    /// As written; `users_cache_path()` gives the effective path.
    pub users_cache: Option<PathBuf>,
    pub users_boot_timeout: Duration,
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
            drain_spool_timeout: limits::DEFAULT_DRAIN_SPOOL_TIMEOUT,
            transfer_log: None,
            metrics_emf: None,
            metrics_interval: limits::DEFAULT_METRICS_INTERVAL,
            metrics_group: None,
            s3: crate::config::s3::S3Settings::defaults(),
            defence: crate::config::defence::Defence::defaults(),
            tls: crate::config::tls::TlsSettings::defaults(),
            device: device::Device::default(),
            users: Vec::new(),
            users_source: None,
            users_poll_interval: limits::DEFAULT_USERS_POLL_INTERVAL,
            users_cache: None,
            users_boot_timeout: limits::DEFAULT_USERS_BOOT_TIMEOUT,
        }
    }

    /// Where the last good users file from S3 is kept: `users_cache`, else
    /// `users.cache` beside the spool (in the state directory).
    pub fn users_cache_path(&self) -> PathBuf {
        self.users_cache.clone().unwrap_or_else(|| {
            self.s3
                .spool
                .parent()
                .unwrap_or(std::path::Path::new("/"))
                .join("users.cache")
        })
    }
}

/// Where EMF records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmfTarget {
    Tcp(SocketAddr),
    Udp(SocketAddr),
}

#[cfg(test)]
mod tests;
