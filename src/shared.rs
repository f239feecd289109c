//! What every session shares: the read-only configuration, the users, the
//! counters, the passive port pool, the open-file budget, and the stop
//! signals. It sits below the session and the server; the modules under it
//! (ops, delivery, data) take the fields they need, never the whole struct.

use crate::auth::defender::Defender;
use crate::config::{Config, User};
use crate::data::passive::PassivePool;
use crate::delivery::Delivery;
use crate::ops::health::Health;
use crate::ops::metrics::Metrics;
use crate::sys::budget::FdBudget;
use crate::sys::client::ClientKey;
use crate::sys::inflight::InFlight;
use crate::sys::unauthenticated::Share;
use crate::tls::Tls;
use crate::users::Users;
use smol::channel::Receiver;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// What every session shares: read-only configuration, counters, the port
/// pool, and the stop signals.
pub struct Shared {
    pub config: Config,
    /// The users who may log in now; a reload swaps them whole.
    pub users: Arc<Users>,
    /// Shared with the S3 delivery threads.
    pub metrics: Arc<Metrics>,
    /// S3 delivery; `None` without `s3_bucket`.
    pub delivery: Option<Arc<Delivery>>,
    pub passive: PassivePool,
    /// What PASV advertises; `None`: the control connection's local address.
    pub public_ip: Option<IpAddr>,
    /// Sessions per client (`max_sessions_per_ip`).
    pub per_ip: Mutex<HashMap<ClientKey, usize>>,
    /// Open files: one per session, two more per transfer.
    pub fds: Arc<FdBudget>,
    /// Connections not logged in yet, oldest first (`max_unauthenticated`).
    pub unauthenticated: Arc<Share>,
    /// TLS handshakes in flight per client (`MAX_HANDSHAKES_PER_CLIENT`).
    pub handshakes: InFlight,
    /// Failed-login scores and bans. Held only for a lookup or an update,
    /// never across `.await`.
    pub defender: Mutex<Defender>,
    /// What `/healthz` reports: draining, S3 delivery failing.
    pub health: Arc<Health>,
    /// Closed when the listener closes (after `drain_delay`); every waiter wakes.
    pub stopping: Receiver<()>,
    /// Closed when `drain_timeout` has passed.
    pub hard_stopping: Receiver<()>,
    /// `transfer_log`: the transfer records' writer; `None`: off.
    pub records: Option<Arc<crate::ops::records::TransferLog>>,
    /// FTPS: the TLS configuration and current certificate; `None` with
    /// `tls = off`.
    pub tls: Option<Arc<Tls>>,
}

impl Shared {
    pub fn user(&self, name: &str) -> Option<Arc<User>> {
        self.users.get(name)
    }

    /// Runs `f` on the defender (the lock is held only for it).
    pub fn defender<T>(&self, f: impl FnOnce(&mut Defender) -> T) -> T {
        f(&mut self.defender.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.is_closed()
    }

    /// Resolves when the stop begins.
    pub async fn stopping(&self) {
        // recv fails once the channel is closed: that is the signal.
        let _ = self.stopping.recv().await;
    }

    /// Resolves when running transfers must be aborted.
    pub async fn hard_stopping(&self) {
        let _ = self.hard_stopping.recv().await;
    }
}
