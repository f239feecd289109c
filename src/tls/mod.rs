//! FTPS (RFC 4217, and implicit TLS on its own port): the rustls server
//! configuration (ring provider; TLS 1.2 and 1.3 or 1.3 only), a
//! certificate that can be replaced while the server runs, handshakes
//! with a time limit and a counted reason for each failure, and the
//! session-reuse tag that ties a data connection to its control session.
//!
//! - `certs`: PEM bytes to a checked certificate/key pair;
//! - `failure`: why a handshake failed, counted and logged (rate-limited);
//! - `hello`: the versions a ClientHello offers;
//! - `resumption`: which control session a data handshake resumed;
//! - `stream`: a connection that is plain TCP or TLS.
//!
//! Resumption (RFC 8446 §2.2, RFC 5077, RFC 5246 §7.4.1.2): tickets are
//! stateless (rustls' ring ticketer, keys rotated every 12 hours), and TLS
//! 1.2 clients that resume by session id use a bounded cache
//! (`TLS_SESSION_CACHE`). Each control session has a random `Tag`, stored
//! in every ticket or cache entry its handshakes create
//! (`set_resumption_data`), and at login the tag is recorded as the
//! user's. A PROT P data connection is accepted, under
//! `tls_session_reuse = required` (the server's or the user's), only if it
//! resumed a session carrying this session's tag, or the tag of another
//! session in which the same user logged in (`resumption::resumed_tag`:
//! TLS 1.3 and TLS 1.2 alike). So a data connection
//! proves it comes from a TLS client that holds this user's sessions:
//! stronger than vsftpd's `require_ssl_reuse` (any resumed session), and
//! it still serves clients that share one ticket cache between several
//! control connections (rclone, and curl's multi interface).

pub mod certs;
pub mod failure;
pub mod hello;
pub mod resumption;
pub mod stream;

use crate::config::tls::{MinVersion, TlsSettings};
use crate::limits;
use crate::ops::metrics::{self, Metrics};
use crate::sys::timeout;
use certs::Pair;
use failure::{FailureLog, HandshakeError};
use futures_rustls::server::TlsStream;
use hello::Offered;
use resumption::Witness;
use rustls::server::{ClientHello, ResolvesServerCert, ServerSessionMemoryCache};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use smol::Async;
use std::collections::{HashMap, VecDeque};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, RwLock};

/// Bytes of a session's resumption tag: random, so one session's tickets
/// never match another's.
pub const TAG_BYTES: usize = 16;

/// A control session's resumption tag.
pub type Tag = [u8; TAG_BYTES];

/// The certificate new handshakes use; replaced on reload. Handshakes
/// already made keep the key they started with.
#[derive(Debug)]
struct Rotating {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Rotating {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        Some(current.clone())
    }
}

/// What every TLS handshake shares: the configuration, the session cache
/// and ticketer inside it, and the current certificate.
pub struct Tls {
    /// Control connections: TLS 1.3 tickets are sent after the handshake.
    config: Arc<ServerConfig>,
    /// Data connections: the same certificate, cache and ticketer. Each
    /// data handshake runs on a copy with a `Witness` in front of the
    /// ticketer and cache, and sends TLS 1.3 tickets only when asked
    /// (`accept_data`).
    data_config: Arc<ServerConfig>,
    resolver: Arc<Rotating>,
    /// `tls_session_reuse = required`.
    pub reuse_required: bool,
    /// The current pair's notAfter (Unix seconds).
    not_after: RwLock<i64>,
    owners: Mutex<Owners>,
    /// `tls_handshake_timeout`: how long a handshake may take in all.
    pub handshake_timeout: std::time::Duration,
    pub failures: FailureLog,
}

/// Which user logged in on the session that made each tag, for the last
/// `TLS_SESSION_CACHE` logins (as many as the session cache holds; older
/// tickets are still valid cryptographically, but their data connections
/// are refused once their tag is forgotten).
#[derive(Default)]
struct Owners {
    users: HashMap<Tag, String>,
    order: VecDeque<Tag>,
}

/// A data connection's finished handshake.
pub struct DataHandshake {
    pub stream: TlsStream<Async<TcpStream>>,
    /// The tag of the session it resumed; `None` after a full handshake.
    pub resumed: Option<Tag>,
}

impl Tls {
    /// The server configuration for `settings`, serving `pair`.
    pub fn new(settings: &TlsSettings, pair: Pair) -> Result<Tls, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&'static rustls::SupportedProtocolVersion] = match settings.min_version {
            MinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            MinVersion::Tls13 => &[&rustls::version::TLS13],
        };
        let resolver = Arc::new(Rotating {
            current: RwLock::new(pair.key.clone()),
        });
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .map_err(|e| format!("TLS configuration: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.session_storage = ServerSessionMemoryCache::new(limits::TLS_SESSION_CACHE);
        config.ticketer = rustls::crypto::ring::Ticketer::new()
            .map_err(|e| format!("TLS session tickets: {e}"))?;
        config.send_tls13_tickets = limits::TLS13_TICKETS;
        let data_config = config.clone();
        Ok(Tls {
            config: Arc::new(config),
            data_config: Arc::new(data_config),
            resolver,
            reuse_required: settings.session_reuse_required,
            not_after: RwLock::new(pair.not_after),
            owners: Mutex::new(Owners::default()),
            handshake_timeout: limits::TLS_HANDSHAKE_TIMEOUT,
            failures: FailureLog::default(),
        })
    }

    /// New handshakes use `pair` from now on; sessions already made keep
    /// theirs (and can still resume: tickets do not depend on the key).
    pub fn replace(&self, pair: &Pair) {
        *self
            .resolver
            .current
            .write()
            .unwrap_or_else(|p| p.into_inner()) = pair.key.clone();
        *self.not_after.write().unwrap_or_else(|p| p.into_inner()) = pair.not_after;
    }

    /// Records that `user` logged in on the session tagged `tag`.
    pub fn record_login(&self, tag: &Tag, user: &str) {
        let mut owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
        if owners.users.insert(*tag, user.to_string()).is_none() {
            owners.order.push_back(*tag);
        }
        while owners.order.len() > limits::TLS_SESSION_CACHE {
            if let Some(old) = owners.order.pop_front() {
                owners.users.remove(&old);
            }
        }
    }

    /// Whether a data connection that resumed the session tagged
    /// `resumed` resumed one of this control session (`tag`) or of another
    /// session of `user`.
    pub fn resumed_by(&self, resumed: Option<Tag>, tag: &Tag, user: &str) -> bool {
        let Some(resumed) = resumed else {
            return false;
        };
        if &resumed == tag {
            return true;
        }
        let owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
        owners
            .users
            .get(&resumed)
            .is_some_and(|owner| owner == user)
    }

    /// The current certificate's notAfter (Unix seconds).
    pub fn not_after(&self) -> i64 {
        *self.not_after.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes the server side of a control connection's TLS handshake on
    /// `socket`, within `handshake_timeout`. `tag` goes into the
    /// tickets and cache entries this handshake creates; `early` holds
    /// bytes already read from the socket that belong to the handshake
    /// (after a PROXY header). Counts the outcome.
    pub async fn accept(
        &self,
        socket: Async<TcpStream>,
        tag: &Tag,
        early: &[u8],
        metrics: &Metrics,
    ) -> Result<TlsStream<Async<TcpStream>>, HandshakeError> {
        let config_for = |_| self.config.clone();
        handshake(
            config_for,
            socket,
            tag,
            early,
            self.handshake_timeout,
            metrics,
        )
        .await
    }

    /// The same for a data connection of the control session `tag`; also
    /// says which session it resumed. `tickets` says whether TLS 1.3
    /// tickets carrying `tag` follow the handshake.
    pub async fn accept_data(
        &self,
        socket: Async<TcpStream>,
        tag: &Tag,
        tickets: Tickets,
        metrics: &Metrics,
    ) -> Result<DataHandshake, HandshakeError> {
        let witness = Arc::new(Witness::new(
            self.data_config.ticketer.clone(),
            self.data_config.session_storage.clone(),
        ));
        let config_for = |resuming: bool| {
            let send = match tickets {
                Tickets::Never => false,
                Tickets::Always => true,
                Tickets::IfResuming => resuming,
            };
            let mut config = (*self.data_config).clone();
            config.ticketer = witness.clone();
            config.session_storage = witness.clone();
            config.send_tls13_tickets = if send { limits::TLS13_DATA_TICKETS } else { 0 };
            Arc::new(config)
        };
        let within = self.handshake_timeout;
        let stream = handshake(config_for, socket, tag, &[], within, metrics).await?;
        let resumed = resumption::resumed_tag(stream.get_ref().1, &witness);
        Ok(DataHandshake { stream, resumed })
    }
}

/// Whether a data connection's handshake is followed by
/// `TLS13_DATA_TICKETS` TLS 1.3 tickets. OpenSSL clients (curl, PHP) use
/// each TLS 1.3 ticket once and resume the next data connection with the
/// newest they hold, so they need one per data connection. But a ticket
/// is sent after the client's Finished, and a client that only writes and
/// closes with it unread resets the connection (RFC 1122 §4.2.2.13): its
/// kernel drops the end of the upload still queued (seen with curl and
/// Perl's IO::Socket::SSL as 426).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tickets {
    /// An upload whose handshake follows the 150: the client may never
    /// read this connection.
    Never,
    /// A download or a listing: the client reads the connection to its end.
    Always,
    /// A handshake the client started before the command: only if its
    /// ClientHello resumes a TLS 1.3 session (it will want the next one;
    /// curl reads the connection before it closes it). Clients that start
    /// early but never resume (aioftp, Perl in passive mode) get none.
    IfResuming,
}

/// The server side of a handshake with the configuration `config_for`
/// gives (told whether the ClientHello resumes a TLS 1.3 session); see
/// `Tls::accept`. The ClientHello's first bytes are peeked (or read from
/// `early`) first, for that and for the versions it offers when the
/// handshake fails.
async fn handshake(
    config_for: impl FnOnce(bool) -> Arc<ServerConfig>,
    socket: Async<TcpStream>,
    tag: &Tag,
    early: &[u8],
    within: std::time::Duration,
    metrics: &Metrics,
) -> Result<TlsStream<Async<TcpStream>>, HandshakeError> {
    let mut offered = None;
    let handshake = async {
        let (versions, resuming) = peek_hello(&socket, early).await;
        offered = versions;
        let acceptor = futures_rustls::TlsAcceptor::from(config_for(resuming));
        let mut early = early;
        acceptor
            .accept_with(socket, |conn| {
                conn.set_resumption_data(tag);
                conn.set_buffer_limit(Some(limits::TLS_BUFFER_LIMIT));
                if !early.is_empty() {
                    // The ClientHello began in the bytes the PROXY handshake
                    // read. Feeding them here lets rustls answer before it
                    // reads the socket; an error stays in the connection and
                    // ends the handshake at its first step.
                    while !early.is_empty() && conn.read_tls(&mut early).is_ok() {}
                    let _ = conn.process_new_packets();
                }
            })
            .await
    };
    match timeout::within(within, handshake).await {
        Ok(stream) => {
            metrics::inc(&metrics.tls_handshakes_ok);
            Ok(stream)
        }
        Err(e) => {
            let e = HandshakeError::new(e, offered);
            metrics::inc(e.failure.counter(metrics));
            Err(e)
        }
    }
}

/// The versions the ClientHello in `early`, or waiting on `socket`,
/// offers, and whether it resumes a TLS 1.3 session: one peek of at most
/// `TLS_HELLO_PEEK` bytes, on the heap only while it is read.
async fn peek_hello(socket: &Async<TcpStream>, early: &[u8]) -> (Option<Offered>, bool) {
    if !early.is_empty() {
        return (Offered::parse(early), hello::offers_psk(early));
    }
    let mut buf = vec![0u8; limits::TLS_HELLO_PEEK];
    let Ok(n) = socket.peek(&mut buf).await else {
        return (None, false);
    };
    (Offered::parse(&buf[..n]), hello::offers_psk(&buf[..n]))
}
