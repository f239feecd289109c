//! Counters kept per event, read by the log and (later) the metrics endpoint.
//! Plain relaxed atomics: each is independent and only ever added to.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        #[derive(Default, Debug)]
        pub struct Metrics {
            $($(#[$doc])* pub $name: AtomicU64,)*
        }

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
    // ---- S3 delivery (issue 4) ----
    /// Files S3 confirmed.
    s3_delivered,
    /// Bytes of the files S3 confirmed.
    s3_delivered_bytes,
    /// Delivery attempts that failed (each is retried).
    s3_attempts_failed,
    /// Attempts that were retries of an earlier failed one.
    s3_retries,
    /// Files in the spool waiting for S3 (a gauge).
    s3_queue_depth,
    /// Age in seconds of the oldest file waiting for S3 (a gauge; 0: none).
    s3_oldest_pending_seconds,
    /// Sum of upload-to-confirmation times in microseconds (mean = sum / s3_delivered).
    s3_delivery_micros,
    /// `ack = s3` uploads answered 451 because S3 did not confirm in `s3_timeout`.
    s3_ack_timeouts,
    /// Uploads refused (452) because the spool was full.
    s3_spool_full,
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

pub fn set(counter: &AtomicU64, n: u64) {
    counter.store(n, Ordering::Relaxed);
}

pub fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}
