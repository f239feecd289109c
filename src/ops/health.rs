//! Health and metrics over HTTP (`health_listen`), for the load balancer's
//! health check and for scrapers:
//!
//! - `GET /healthz` (readiness): 200 while the instance takes new sessions;
//!   503 with the reason (`draining`, `disk full`, `users not loaded`,
//!   `s3 delivery failing`, ...) when new devices should go elsewhere.
//! - `GET /livez` (liveness): 200 unless the instance is broken by itself
//!   (a read-only disk, a stalled executor, a disk full with nothing to
//!   deliver); a shared outage never fails it. probe.rs decides both.
//! - `GET /metrics`: the counters in Prometheus text format.
//!
//! SECURITY: this listener parses only the request line (bounded, with a
//! timeout, framed by `protocol::line`); what follows it (headers, a body)
//! is read into a small scratch buffer and dropped unparsed, up to
//! `HEALTH_DISCARD_MAX`. It only ever writes one of a few fixed responses.
//! The request line has a short deadline (`HEALTH_REQUEST_TIMEOUT`). Only
//! peers in `health_from` are served (others are closed at once). At most
//! `MAX_HEALTH_CONNECTIONS` are held; a new connection evicts the oldest
//! one held by the client (an IPv4 address, an IPv6 `ipv6_prefix`) that
//! holds the most, rather than being refused, so idle connections from
//! elsewhere cannot starve the balancer's check (which comes from the
//! balancer's own addresses, sends its request at once and is answered in
//! well under a millisecond).

use crate::config::cidr::Cidr;
use crate::limits::{
    HEALTH_BACKLOG, HEALTH_DISCARD_MAX, HEALTH_IO_TIMEOUT, HEALTH_REQUEST_TIMEOUT,
    MAX_HEALTH_CONNECTIONS, MAX_HEALTH_REQUEST_LINE,
};
use crate::ops::metrics;
use crate::ops::metrics::Metrics;
use crate::ops::probe::{self, Probe, States};
use crate::ops::prometheus;
use crate::protocol::http::{parse_request_line, Route};
use crate::protocol::line::{self, Frame};
use crate::sys;
use crate::sys::client::ClientKey;
use crate::sys::timeout;
use crate::sys::unauthenticated::Share;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::{Async, Executor, Timer};
use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What `/healthz` and `/livez` report on (probe.rs decides). Shared by
/// the server (draining), S3 delivery (failing since), the users store and
/// the disk watch (disk.rs, which also beats for the executor).
///
/// Interface for S3 delivery: call `delivery_failed()` after every failed
/// delivery attempt and `delivery_ok()` after every success; `/healthz`
/// turns 503 once failures have lasted `health_s3_failing_after` without a
/// success in between.
pub struct Health {
    draining: AtomicBool,
    /// A users file is configured and none has loaded yet.
    users_missing: AtomicBool,
    /// Milliseconds since `base` (plus one) when delivery started failing;
    /// 0 while it works. Monotonic, so a clock step changes nothing.
    failing_since: AtomicU64,
    /// The last failed delivery was refused for its credentials.
    credentials_refused: AtomicBool,
    /// The same for the disk being full; 0 while it has room.
    disk_full_since: AtomicU64,
    disk_read_only: AtomicBool,
    spool_pending: AtomicU64,
    /// S3 delivery is on (set by the disk watch).
    delivers: AtomicBool,
    /// Milliseconds since `base` of the executor's last heartbeat.
    last_beat: AtomicU64,
    base: Instant,
}

impl Default for Health {
    fn default() -> Health {
        Health {
            draining: AtomicBool::new(false),
            users_missing: AtomicBool::new(false),
            failing_since: AtomicU64::new(0),
            credentials_refused: AtomicBool::new(false),
            disk_full_since: AtomicU64::new(0),
            disk_read_only: AtomicBool::new(false),
            spool_pending: AtomicU64::new(0),
            delivers: AtomicBool::new(false),
            last_beat: AtomicU64::new(0),
            base: Instant::now(),
        }
    }
}

impl Health {
    /// Milliseconds since `base`, plus one (0 means "not set").
    fn now_mark(&self) -> u64 {
        self.base.elapsed().as_millis() as u64 + 1
    }

    fn since(&self, mark: &AtomicU64) -> Option<Duration> {
        match mark.load(Ordering::Relaxed) {
            0 => None,
            since => Some(
                self.base
                    .elapsed()
                    .saturating_sub(Duration::from_millis(since - 1)),
            ),
        }
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// The users store: whether its users are missing (no file has loaded).
    pub fn set_users_missing(&self, missing: bool) {
        self.users_missing.store(missing, Ordering::Relaxed);
    }

    /// S3 delivery: an attempt failed because S3 refused the credentials
    /// (a failure like any other, said apart in `/healthz`).
    pub fn delivery_refused_credentials(&self) {
        self.credentials_refused.store(true, Ordering::Relaxed);
        self.start_failing_clock();
    }

    /// S3 delivery: an attempt failed. The first failure after a success
    /// starts the clock; later ones keep it.
    pub fn delivery_failed(&self) {
        self.credentials_refused.store(false, Ordering::Relaxed);
        self.start_failing_clock();
    }

    fn start_failing_clock(&self) {
        let now = self.now_mark();
        let _ = self
            .failing_since
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// S3 delivery: an attempt succeeded; the clock stops.
    pub fn delivery_ok(&self) {
        self.failing_since.store(0, Ordering::Relaxed);
        self.credentials_refused.store(false, Ordering::Relaxed);
    }

    /// How long delivery has been failing, if it is.
    pub fn failing_for(&self) -> Option<Duration> {
        self.since(&self.failing_since)
    }

    /// The disk watch: whether a filesystem is below its reserve or
    /// read-only, how many files wait for S3 (`None`: no S3 delivery).
    pub fn set_disk(&self, full: bool, read_only: bool, spool_pending: Option<u64>) {
        self.delivers
            .store(spool_pending.is_some(), Ordering::Relaxed);
        let spool_pending = spool_pending.unwrap_or(0);
        if full {
            let now = self.now_mark();
            let _ =
                self.disk_full_since
                    .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        } else {
            self.disk_full_since.store(0, Ordering::Relaxed);
        }
        self.disk_read_only.store(read_only, Ordering::Relaxed);
        self.spool_pending.store(spool_pending, Ordering::Relaxed);
    }

    pub fn disk_full(&self) -> bool {
        self.disk_full_since.load(Ordering::Relaxed) != 0
    }

    /// The executor ran its heartbeat task now.
    pub fn beat(&self) {
        self.last_beat.store(self.now_mark(), Ordering::Relaxed);
    }

    /// Everything the decision needs, now.
    pub fn states(&self) -> States {
        States {
            draining: self.is_draining(),
            users_missing: self.users_missing.load(Ordering::Relaxed),
            delivery_failing_for: self.failing_for(),
            credentials_refused: self.credentials_refused.load(Ordering::Relaxed),
            disk_full_for: self.since(&self.disk_full_since),
            disk_read_only: self.disk_read_only.load(Ordering::Relaxed),
            spool_pending: self.spool_pending.load(Ordering::Relaxed),
            // Before the first beat the executor has not started (the
            // start reads the spool and the users first): not a stall.
            executor_silent_for: self.since(&self.last_beat).unwrap_or_default(),
            delivers: self.delivers.load(Ordering::Relaxed),
        }
    }

    pub fn probe(&self, failing_after: Duration) -> Probe {
        probe::decide(&self.states(), failing_after)
    }
}

/// Listens on `health_listen` until the process ends.
pub async fn serve(
    executor: Arc<Executor<'static>>,
    listener: Async<TcpListener>,
    state: Arc<Health>,
    metrics: Arc<Metrics>,
    s3_failing_after: Duration,
    health_from: Vec<Cidr>,
    ipv6_prefix: u8,
) {
    // Every connection held, oldest first; a new one evicts the oldest of
    // the client holding the most.
    let held = Share::new(MAX_HEALTH_CONNECTIONS, MAX_HEALTH_CONNECTIONS);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                log::warn!("health: accept failed: {e}");
                Timer::after(crate::limits::POLL_PAUSE).await;
                continue;
            }
        };
        // SECURITY: only the balancer's subnets (and scrapers) listed in
        // health_from may ask; anyone else is closed unanswered.
        if !health_from.is_empty() && !health_from.iter().any(|c| c.contains(peer.ip())) {
            metrics::inc(&metrics.health_closed);
            log::debug!("health: peer={peer} closed: not in health_from");
            continue;
        }
        let (place, evicted) = held.enter(Some(ClientKey::new(peer.ip(), ipv6_prefix)));
        metrics::add(&metrics.health_closed, evicted as u64);
        let evict = place.shed();
        let state = state.clone();
        let metrics = metrics.clone();
        executor
            .spawn(async move {
                // Ignore errors: a checker may hang up at any point.
                let answer = answer(&state, &metrics, s3_failing_after, stream);
                let answer = timeout::within(2 * HEALTH_IO_TIMEOUT, answer);
                smol::future::or(
                    async {
                        let _ = answer.await;
                    },
                    evict.wait(),
                )
                .await;
                drop(place);
            })
            .detach();
        // SECURITY: let the new connection's task read its request before
        // the next accept. A flood waiting in the backlog would otherwise
        // be accepted in one run, each accept evicting the oldest held,
        // and a balancer's check accepted in the middle of it would be
        // evicted before its task was ever polled.
        smol::future::yield_now().await;
    }
}

/// Binds the health listener (a failure stops start-up: a health check
/// that can never pass would only get the instance replaced in a loop).
pub fn bind(addr: std::net::SocketAddr) -> io::Result<Async<TcpListener>> {
    sys::listen(addr, HEALTH_BACKLOG).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot listen on {addr} (health_listen): {e}"),
        )
    })
}

async fn answer(
    state: &Health,
    metrics: &Metrics,
    s3_failing_after: Duration,
    stream: Async<TcpStream>,
) -> io::Result<()> {
    let route = match read_request_line(&stream).await {
        Some(line) => parse_request_line(&line),
        None => Route::BadRequest,
    };
    let (status, content_type, body, head) = match route {
        Route::Health { head } => {
            let (status, body) = match state.probe(s3_failing_after).ready {
                Ok(()) => ("200 OK", "ok\n".to_string()),
                Err(why) => ("503 Service Unavailable", format!("{}\n", why.as_str())),
            };
            (status, "text/plain; charset=utf-8", body, head)
        }
        Route::Live { head } => {
            let (status, body) = match state.probe(s3_failing_after).live {
                Ok(()) => ("200 OK", "live\n".to_string()),
                Err(why) => (
                    "503 Service Unavailable",
                    format!("not live: {}\n", why.as_str()),
                ),
            };
            (status, "text/plain; charset=utf-8", body, head)
        }
        Route::Metrics { head } => (
            "200 OK",
            prometheus::CONTENT_TYPE,
            prometheus::build_info(crate::ops::VERSION)
                + &prometheus::render(&metrics.snapshot())
                + &prometheus::render_histograms(&metrics.histograms()),
            head,
        ),
        Route::NotFound => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found\n".to_string(),
            false,
        ),
        Route::MethodNotAllowed => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "GET or HEAD only\n".to_string(),
            false,
        ),
        Route::BadRequest => (
            "400 Bad Request",
            "text/plain; charset=utf-8",
            "bad request\n".to_string(),
            false,
        ),
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if !head {
        response.push_str(&body);
    }
    let mut writer = &stream;
    timeout::within(HEALTH_IO_TIMEOUT, writer.write_all(response.as_bytes())).await?;
    stream.get_ref().shutdown(Shutdown::Write)?;
    // Read and drop what the client still sends (its headers) until it
    // closes: closing with unread input would send a reset, which may
    // destroy the response in the client's receive queue (RFC 9112 §9.6).
    let mut sink = [0u8; 512];
    let mut discarded = 0;
    let discard = async {
        let mut reader = &stream;
        while discarded < HEALTH_DISCARD_MAX {
            match reader.read(&mut sink).await? {
                0 => break,
                n => discarded += n,
            }
        }
        Ok(())
    };
    timeout::within(HEALTH_IO_TIMEOUT, discard).await
}

/// The request line without its line end; `None` when it is too long, not
/// finished in time, or the client closed first.
async fn read_request_line(stream: &Async<TcpStream>) -> Option<Vec<u8>> {
    let mut buf = [0u8; MAX_HEALTH_REQUEST_LINE];
    let mut len = 0;
    let read = async {
        let mut reader = stream;
        loop {
            match line::frame(&buf[..len], buf.len()) {
                Frame::Line(line) => return Ok(Some(buf[..line.len].to_vec())),
                Frame::TooLong => return Ok(None),
                Frame::More => {}
            }
            match reader.read(&mut buf[len..]).await? {
                0 => return Ok(None),
                n => len += n,
            }
        }
    };
    timeout::within(HEALTH_REQUEST_TIMEOUT, read)
        .await
        .ok()
        .flatten()
}

/// Marks the instance as draining: `/healthz` answers 503 from now on.
pub fn start_draining(state: &Health, metrics: &Metrics) {
    state.start_draining();
    metrics::set(&metrics.draining, 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_clock_starts_at_first_failure_and_stops_on_success() {
        let h = Health::default();
        assert_eq!(h.failing_for(), None);
        h.delivery_failed();
        let first = h.failing_for().unwrap();
        h.delivery_failed();
        assert!(h.failing_for().unwrap() >= first);
        h.delivery_ok();
        assert_eq!(h.failing_for(), None);
    }

    #[test]
    fn refused_credentials_are_said_apart_until_another_outcome() {
        let h = Health::default();
        let zero = Duration::ZERO;
        h.delivery_refused_credentials();
        assert_eq!(
            h.probe(zero).ready,
            Err(probe::NotReady::CredentialsRefused)
        );
        h.delivery_failed();
        assert_eq!(h.probe(zero).ready, Err(probe::NotReady::DeliveryFailing));
        h.delivery_refused_credentials();
        h.delivery_ok();
        assert_eq!(h.probe(zero).ready, Ok(()));
    }

    #[test]
    fn disk_clock_starts_when_full_and_stops_when_space_returns() {
        let h = Health::default();
        h.beat();
        assert_eq!(h.probe(Duration::from_secs(60)).ready, Ok(()));
        h.set_disk(true, false, Some(0));
        assert!(h.states().disk_full_for.is_some());
        assert_eq!(
            h.probe(Duration::from_secs(60)).ready,
            Err(probe::NotReady::DiskFull)
        );
        h.set_disk(false, false, Some(0));
        assert_eq!(h.probe(Duration::from_secs(60)).ready, Ok(()));
    }
}
