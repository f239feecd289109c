//! Counters kept per event, read by the log and (later) the metrics endpoint.
//! Plain relaxed atomics: each is independent and only ever added to.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        #[derive(Default, Debug)]
        pub struct Metrics {
            $($(#[$doc])* pub $name: AtomicU64,)*
        }

        // `snapshot` feeds the metrics endpoint (issue 5), merged separately.
        #[allow(dead_code)]
        impl Metrics {
            /// Every counter with its name, for rendering.
            pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name.load(Ordering::Relaxed)),)*]
            }
        }
    };
}

counters! {
    /// Sessions open now (a gauge).
    sessions_now,
    /// Sessions accepted since start.
    sessions_total,
    /// Connections refused because `max_sessions` or `max_sessions_per_ip` was reached.
    sessions_refused,
    logins_ok,
    logins_failed,
    /// Transfers running now (a gauge).
    transfers_now,
    bytes_in,
    bytes_out,
    uploads_ok,
    uploads_failed,
    downloads_ok,
    downloads_failed,
    /// SECURITY: PORT/EPRT refused because the address was not the client's.
    port_refused_foreign_address,
    /// SECURITY: PORT/EPRT refused because the port was below 1024.
    port_refused_low_port,
    active_connect_failures,
    /// Sum of active connect times, in microseconds (mean = sum / count).
    active_connect_micros,
    active_connects,
    passive_accept_timeouts,
    /// SECURITY: passive data connections from another address, closed.
    passive_refused_foreign,
    /// Sessions closed for an over-long command line.
    lines_too_long,
}

pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

pub fn inc(counter: &AtomicU64) {
    add(counter, 1);
}

pub fn dec(counter: &AtomicU64) {
    counter.fetch_sub(1, Ordering::Relaxed);
}

pub fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}
