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
//! - `s3`, `cidr`, `keytemplate`: the S3 delivery keys, address blocks, the
//!   object key template.

mod check;
pub mod cidr;
pub mod keytemplate;
mod parse;
pub mod s3;
pub mod value;

pub use parse::parse;
pub use value::{parse_duration, parse_emf_target, parse_log_level, parse_size, parse_switch};

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
            users: Vec::new(),
        }
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
