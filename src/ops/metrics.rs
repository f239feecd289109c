//! Counters and gauges kept per event, read by `/metrics` (Prometheus text,
//! `health.rs`) and the EMF records (`emf.rs`). Plain relaxed atomics: each
//! is independent; a counter is only ever added to. Latency histograms
//! (`histogram.rs`) are listed apart: they render as several lines each.

pub use crate::ops::histogram::{Histogram, HistogramSample};
use std::sync::atomic::{AtomicU64, Ordering};

/// Whether a value only ever grows (a counter: rates and per-interval
/// deltas are derived from it) or goes up and down (a gauge: read as is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// One metric's value at one moment, with what renders it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub name: &'static str,
    /// The doc comment: Prometheus HELP text.
    pub help: &'static str,
    pub kind: Kind,
    pub value: u64,
}

macro_rules! metrics {
    ($($(#[doc = $doc:literal])+ $kind:ident $name:ident),* $(,)?
     histograms { $($(#[doc = $hdoc:literal])+ $hname:ident),* $(,)? }) => {
        #[derive(Default, Debug)]
        pub struct Metrics {
            $($(#[doc = $doc])+ pub $name: AtomicU64,)*
            $($(#[doc = $hdoc])+ pub $hname: Histogram,)*
        }

        impl Metrics {
            /// Every metric with its name, help text, kind and value.
            pub fn snapshot(&self) -> Vec<Sample> {
                // Counted where the flushes are made, process-wide (storage/durable.rs).
                self.flushes.store(crate::storage::durable::flushes(), Ordering::Relaxed);
                vec![$(Sample {
                    name: stringify!($name),
                    help: concat!($($doc),+),
                    kind: Kind::$kind,
                    value: self.$name.load(Ordering::Relaxed),
                },)*]
            }

            /// Every histogram with its name, help text and counts.
            pub fn histograms(&self) -> Vec<HistogramSample> {
                vec![$(self.$hname.sample(stringify!($hname), concat!($($hdoc),+)),)*]
            }
        }
    };
}

metrics! {
    /// Sessions open now.
    Gauge sessions_now,
    /// Highest sessions_now within the current EMF interval (since the last record; since start without EMF): sees the bursts of 1-second sessions a sampled gauge misses.
    Gauge sessions_peak,
    /// Sessions accepted since start.
    Counter sessions_total,
    /// Connections refused because max_sessions or max_sessions_per_ip was reached.
    Counter sessions_refused,
    /// Successful logins.
    Counter logins_ok,
    /// Failed logins.
    Counter logins_failed,
    /// Transfers (uploads, downloads, listings) running now.
    Gauge transfers_now,
    /// Bytes received on data connections.
    Counter bytes_in,
    /// Bytes sent on data connections.
    Counter bytes_out,
    /// Uploads acknowledged with 226.
    Counter uploads_ok,
    /// Uploads that failed or were aborted.
    Counter uploads_failed,
    /// Flushes made to keep uploads, the spool and directories durable (fsync of a file or directory, syncfs of a filesystem; each a round trip to the volume). flushes / uploads_ok is what an acknowledged upload costs.
    Counter flushes,
    /// Downloads completed.
    Counter downloads_ok,
    /// Downloads that failed or were aborted.
    Counter downloads_failed,
    /// SECURITY: PORT/EPRT refused because the address was not the client's.
    Counter port_refused_foreign_address,
    /// SECURITY: PORT/EPRT refused because the port was below 1024.
    Counter port_refused_low_port,
    /// PORT/EPRT whose address was replaced by the client's own
    /// (`active_address = peer`: devices behind NAT).
    Counter port_address_rewritten,
    /// Active-mode data connections that could not be made.
    Counter active_connect_failures,
    /// Sum of active connect times, in microseconds (mean = sum / active_connects).
    Counter active_connect_micros,
    /// Active-mode data connections made.
    Counter active_connects,
    /// Passive data connections that did not arrive in time.
    Counter passive_accept_timeouts,
    /// SECURITY: passive data connections from another address, closed.
    Counter passive_refused_foreign,
    /// Sessions closed for an over-long command line.
    Counter lines_too_long,
    /// SECURITY: connections closed because PROXY protocol is on and they did not come from proxy_from.
    Counter proxy_refused_source,
    /// SECURITY: connections closed for a missing, malformed or unsupported PROXY header.
    Counter proxy_header_rejected,
    /// SECURITY: connections not yet logged in, closed to make room for a new one (oldest first).
    Counter unauthenticated_shed,
    /// SECURITY: bans begun by the defender (an address, or an address and user name).
    Counter bans,
    /// SECURITY: connections and logins refused because their address is banned.
    Counter banned_refused,
    /// SECURITY: TLS handshakes refused because the client had as many in flight as allowed.
    Counter tls_handshakes_refused,
    /// SECURITY: password checks begun, each after the defender counted it (at most ban_after per client per ban_window).
    Counter password_checks,
    /// SECURITY: PASV/EPSV refused because the client held max_passive_per_ip listeners.
    Counter passive_refused_per_ip,
    /// SECURITY: health connections closed: not in health_from, idle past the request deadline, or evicted for a new one.
    Counter health_closed,
    /// 1 while draining (SIGTERM received; /healthz answers 503), else 0.
    Gauge draining,
    /// Files S3 confirmed.
    Counter s3_delivered,
    /// Bytes of the files S3 confirmed.
    Counter s3_delivered_bytes,
    /// S3 delivery attempts that failed (each is retried).
    Counter s3_delivery_failures,
    /// Attempts that were retries of an earlier failed one.
    Counter s3_retries,
    /// Files in the spool waiting for S3.
    Gauge s3_queue_depth,
    /// Age in seconds of the oldest file waiting for S3 (0: none).
    Gauge s3_oldest_pending_seconds,
    /// Sum of upload-to-confirmation times in microseconds (mean = sum / s3_delivered).
    Counter s3_delivery_micros,
    /// ack = s3 uploads answered 451 because S3 did not confirm within s3_timeout.
    Counter s3_ack_timeouts,
    /// Uploads refused (452) because the spool was full.
    Counter s3_spool_full,
    /// Users that can log in now (configuration and users file).
    Gauge users_loaded,
    /// Unix time of the last good load of the users file (0: none yet).
    Gauge users_last_load_timestamp_seconds,
    /// Users files refused (any problem) or unreadable; the previous set stays.
    Counter users_reload_failures,
    /// Reads of the users source (S3 GETs, conditional when a copy is held; file stats).
    Counter users_fetches,
    /// Reads that found the users source unchanged (304, same ETag, same mtime and size).
    Counter users_unchanged,
    /// Sessions ended (421) because their user was removed or changed.
    Counter users_sessions_ended,
    /// TLS handshakes completed (control and data connections).
    Counter tls_handshakes_ok,
    /// TLS handshakes failed: no protocol version in common.
    Counter tls_handshakes_failed_version,
    /// TLS handshakes failed: no cipher suite, group or signature scheme in common.
    Counter tls_handshakes_failed_cipher,
    /// TLS handshakes failed: the client refused the certificate.
    Counter tls_handshakes_failed_certificate,
    /// TLS handshakes failed: not finished within the handshake timeout.
    Counter tls_handshakes_failed_timeout,
    /// TLS handshakes failed for another reason (not TLS, reset, protocol error).
    Counter tls_handshakes_failed_other,
    /// Logins over a plain control connection.
    Counter sessions_plain,
    /// Logins after AUTH TLS (explicit FTPS).
    Counter sessions_explicit_tls,
    /// Logins on the implicit FTPS listener.
    Counter sessions_implicit_tls,
    /// Transfers whose data connection was TLS (PROT P).
    Counter tls_protected_transfers,
    /// Control connections returned to plain text by CCC (tls_allow_ccc = on).
    Counter tls_ccc,
    /// SECURITY: PROT P data connections refused (522) because they did not resume the control connection's TLS session.
    Counter tls_reuse_refused,
    /// Seconds until the served TLS certificate expires (0: expired or no TLS).
    Gauge tls_cert_expiry_seconds,
    /// Times a changed tls_cert/tls_key pair was loaded and served.
    Counter tls_cert_reloads,
    /// Times a changed tls_cert/tls_key could not be read or was refused (the old pair stays).
    Counter tls_cert_reload_failures,
    /// Bytes an upload may still write on the home filesystem (`root`).
    Gauge home_free_bytes,
    /// Inodes free on the home filesystem.
    Gauge home_free_inodes,
    /// Bytes an upload may still write on the spool filesystem (0 without S3 delivery).
    Gauge spool_free_bytes,
    /// Inodes free on the spool filesystem (0 without S3 delivery).
    Gauge spool_free_inodes,
    /// 1 while the home or spool filesystem cannot take an upload of max_file_size (/healthz: disk full).
    Gauge disk_full,
    /// 1 while /healthz answers 200 (ready for new devices), else 0.
    Gauge ready,
    /// 1 while /livez answers 200 (not broken by itself), else 0.
    Gauge live,
    /// Transfer and login-failure records written to transfer_log.
    Counter transfer_records,
    /// Records that could not be written to transfer_log (logged).
    Counter transfer_record_failures,
    histograms {
        /// Seconds from an upload's last data byte to its 226 (fsync, rename, spool; with ack = s3 the S3 confirmation too).
        upload_ack_seconds,
        /// Seconds from an upload's 226 (its spooling) to S3's confirmation, for ack = disk.
        ack_to_s3_seconds,
    }
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

/// A session opened: `sessions_now` up, and `sessions_peak` raised to it.
pub fn session_opened(m: &Metrics) {
    let now = m.sessions_now.fetch_add(1, Ordering::Relaxed) + 1;
    m.sessions_peak.fetch_max(now, Ordering::Relaxed);
}

/// The peak of the interval that ends now; the next one starts from the
/// sessions open now (they are its first concurrent sessions).
pub fn take_peak(m: &Metrics) -> u64 {
    let open = get(&m.sessions_now);
    m.sessions_peak.swap(open, Ordering::Relaxed).max(open)
}

/// Sets a gauge.
pub fn set(gauge: &AtomicU64, value: u64) {
    gauge.store(value, Ordering::Relaxed);
}
pub fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_sees_sessions_that_came_and_went_within_the_interval() {
        let m = Metrics::default();
        for _ in 0..5 {
            session_opened(&m);
        }
        for _ in 0..4 {
            dec(&m.sessions_now);
        }
        // Sampled now, the gauge says 1; the interval had 5 at once.
        assert_eq!(get(&m.sessions_now), 1);
        assert_eq!(take_peak(&m), 5);
        // The next interval starts from the one still open.
        assert_eq!(take_peak(&m), 1);
        session_opened(&m);
        assert_eq!(take_peak(&m), 2);
    }
}
