//! Admission: every accepted connection is counted from its first moment,
//! before a PROXY header is read or a greeting sent, against `max_sessions`
//! and the open-file budget (a `Slot`), and listed in the unauthenticated
//! share until it logs in (`sys::unauthenticated`). Its client, once known
//! (at accept, or from the PROXY header), becomes a `ClientKey` (an IPv4
//! address or an IPv6 prefix of `ipv6_prefix` bits), checked against the
//! defender's bans and counted against `max_sessions_per_ip` (a `PerIp`).
//!
//! When the session cap or the descriptor budget is reached, the oldest
//! connection still waiting to log in is shed to make room; a logged-in
//! session is never shed. Only when every slot holds a logged-in session
//! is a new connection refused with 421.

use crate::auth::defender::Gate;
use crate::ops::metrics;
use crate::shared::Shared;
use crate::sys::budget::FdPermit;
use crate::sys::client::ClientKey;
use smol::Async;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Instant;

/// One connection in `sessions_now` and one descriptor of the budget.
pub struct Slot {
    shared: Arc<Shared>,
    _fd: FdPermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        metrics::dec(&self.shared.metrics.sessions_now);
    }
}

/// Counts a client's sessions; the count drops with the guard.
pub struct PerIp {
    shared: Arc<Shared>,
    key: ClientKey,
}

impl Drop for PerIp {
    fn drop(&mut self) {
        let mut map = self.shared.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = map.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.key);
            }
        }
    }
}

/// Takes a slot for a connection just accepted, shedding the oldest
/// unauthenticated connection when the cap or the budget is reached.
/// `None`: every slot is held by a logged-in session (logged here).
pub fn slot(shared: &Arc<Shared>, peer: SocketAddr) -> Option<Slot> {
    let config = &shared.config;
    let under_cap = (metrics::get(&shared.metrics.sessions_now) as usize) < config.max_sessions;
    let fd = match under_cap.then(|| shared.fds.session()).flatten() {
        Some(fd) => fd,
        None => {
            // SECURITY: a full server makes room by closing the connection
            // that has waited longest without logging in, so silent
            // connections cannot keep a device out.
            if !shared.unauthenticated.shed_oldest() {
                log::warn!(
                    "peer={peer} refused: max_sessions ({}) or the open-file limit reached by logged-in sessions",
                    config.max_sessions
                );
                return None;
            }
            metrics::inc(&shared.metrics.unauthenticated_shed);
            shared.fds.displacing()?
        }
    };
    metrics::session_opened(&shared.metrics);
    metrics::inc(&shared.metrics.sessions_total);
    Some(Slot {
        shared: shared.clone(),
        _fd: fd,
    })
}

/// The key every per-address limit counts `ip` by (made once per
/// connection, here).
pub fn client_key(shared: &Shared, ip: IpAddr) -> ClientKey {
    ClientKey::new(ip, shared.config.defence.ipv6_prefix)
}

/// What the defender says about a client at connect.
pub fn banned(shared: &Shared, key: ClientKey) -> bool {
    match shared.defender(|d| d.connect(key, Instant::now())) {
        Gate::Open | Gate::KnownUsersOnly => false,
        Gate::Refuse(until) => {
            metrics::inc(&shared.metrics.banned_refused);
            let left = until.saturating_duration_since(Instant::now()).as_secs();
            log::debug!("client={key} refused: banned for {left} s more");
            true
        }
    }
}

/// Applies `max_sessions_per_ip` to the client (all addresses of one IPv6
/// prefix together).
pub fn per_ip(shared: &Arc<Shared>, key: ClientKey) -> Option<PerIp> {
    let mut map = shared.per_ip.lock().unwrap_or_else(|p| p.into_inner());
    let count = map.entry(key).or_insert(0);
    // SECURITY: counted by the client key: rotating addresses inside one
    // IPv6 prefix is one client.
    if *count >= shared.config.max_sessions_per_ip {
        log::warn!(
            "client={key} refused: max_sessions_per_ip ({}) reached",
            shared.config.max_sessions_per_ip
        );
        return None;
    }
    *count += 1;
    Some(PerIp {
        shared: shared.clone(),
        key,
    })
}

/// Tells the client why it is refused (421), without waiting.
pub fn refuse(stream: &Async<TcpStream>, text: &str) {
    // Best effort: the client is told why, if its socket takes the bytes.
    let _ = crate::protocol::reply::try_send(stream, format!("421 {text}\r\n").as_bytes());
}
