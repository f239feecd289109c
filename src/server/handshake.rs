//! The PROXY protocol handshake on a new control connection (when
//! `proxy_protocol` is on): who may send a header, how long to wait for it,
//! and handing what followed it to the session.
//!
//! FTP speaks first (RFC 959 §5.4: the 220 greeting), but an NLB sends the
//! v2 header only together with the client's first bytes. So: wait up to
//! `proxy_header_timeout` for the header; if none came, greet anyway and
//! take the header in front of the first command (up to `login_timeout`).
//! haproxy's `send-proxy-v2` sends it at once, so it is read before the
//! greeting.
//!
//! The header is read into a fixed buffer of `MAX_PROXY_HEADER` bytes. The
//! bytes after it in that buffer (the start of the first command, at most
//! `MAX_PROXY_HEADER` bytes, less than `MAX_LINE`) are handed to the
//! session's line reader in a `Prelude`, so the session sees exactly the
//! bytes after the header.

use crate::ops::metrics;
use crate::protocol::proxy::{self, Header, Version};
use crate::protocol::reply;
use crate::session::{self, Prelude};
use crate::shared::Shared;
use smol::future::FutureExt;
use smol::io::AsyncReadExt;
use smol::{Async, Timer};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

/// May `peer` send a PROXY header? Checked at accept, before the
/// connection takes a slot (`handshake` assumes it passed).
pub fn believed(shared: &Shared, peer: SocketAddr) -> bool {
    // SECURITY: a header names the client, and so decides where active-mode
    // data connections go and whose per-IP quota is used: it is believed
    // only from the configured balancers. Anyone else is closed unanswered.
    if shared
        .config
        .proxy_from
        .iter()
        .any(|c| c.contains(peer.ip()))
    {
        return true;
    }
    metrics::inc(&shared.metrics.proxy_refused_source);
    log::warn!("peer={peer} refused: not in proxy_from (proxy_protocol is on)");
    false
}

/// Reads the PROXY header (from a peer `believed` accepted). Returns the session's client address (the
/// header's source; the peer itself for LOCAL/UNKNOWN) and the prelude, or
/// `None` when the connection must be closed (logged and counted here).
/// `may_greet`: false on the implicit TLS listener, where nothing may be
/// sent before the TLS handshake (the client speaks first there anyway).
pub async fn handshake(
    shared: &Shared,
    stream: &Async<TcpStream>,
    peer: SocketAddr,
    version: Version,
    may_greet: bool,
) -> Option<(SocketAddr, Prelude)> {
    let config = &shared.config;
    let mut prelude = Prelude::for_header();
    let mut deadline = Instant::now() + config.proxy_header_timeout;
    loop {
        match proxy::parse(version, &prelude.buf[..prelude.end]) {
            Ok(Some((header, length))) => {
                prelude.start = length;
                let client = match header {
                    Header::Proxied {
                        source,
                        destination,
                    } => {
                        log::debug!("peer={peer} PROXY client={source} destination={destination}");
                        source
                    }
                    Header::Local => {
                        log::debug!("peer={peer} PROXY LOCAL: the peer is the client");
                        peer
                    }
                };
                return Some((client, prelude));
            }
            Ok(None) => {}
            Err(refusal) => {
                metrics::inc(&shared.metrics.proxy_header_rejected);
                log::warn!("peer={peer} closed: {refusal}");
                return None;
            }
        }
        // The parser refuses anything longer than MAX_PROXY_HEADER, so a
        // full buffer cannot be "incomplete"; checked anyway.
        if prelude.end == prelude.buf.len() {
            metrics::inc(&shared.metrics.proxy_header_rejected);
            return None;
        }
        let wait = deadline.saturating_duration_since(Instant::now());
        let mut reader = stream;
        let read = async { Some(reader.read(&mut prelude.buf[prelude.end..]).await) }
            .or(async {
                Timer::after(wait).await;
                None
            })
            .await;
        match read {
            Some(Ok(0)) => {
                // Closed before a header: a TCP health check or a port scan.
                // Nothing malformed was received, so it is not counted.
                log::debug!("peer={peer} closed before sending a PROXY header");
                return None;
            }
            Some(Ok(n)) => prelude.end += n,
            Some(Err(e)) => {
                log::debug!("peer={peer} read failed before the PROXY header: {e}");
                return None;
            }
            None if !prelude.greeted && !may_greet => {
                prelude.greeted = true;
                deadline = Instant::now() + config.login_timeout;
            }
            None if !prelude.greeted => {
                // The header comes with the client's first command: greet.
                // A fresh socket's send buffer takes the few bytes at once;
                // if it does not, the peer is not reading: close.
                let greeting = session::greeting();
                if !matches!(reply::try_send(stream, greeting.as_bytes()), Ok(None)) {
                    return None;
                }
                prelude.greeted = true;
                deadline = Instant::now() + config.login_timeout;
            }
            None => {
                metrics::inc(&shared.metrics.proxy_header_rejected);
                log::warn!("peer={peer} closed: no PROXY header before the login timeout");
                return None;
            }
        }
    }
}
