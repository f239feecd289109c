//! The graceful stop on SIGTERM (or SIGINT, the same), shaped for a load
//! balancer and an Auto Scaling group:
//!
//! 1. At the signal `/healthz` turns 503 (and `draining` = 1) at once.
//! 2. For `drain_delay`, nothing else changes: new sessions are accepted
//!    and idle ones served, while the balancer's health check sees the 503
//!    and stops sending new connections here. (Refusing at once would reset
//!    the devices the balancer still sends in that window.)
//! 3. Then the listener closes (new connections are refused), idle sessions
//!    get 421, and running transfers finish (each then gets 421) for up to
//!    `drain_timeout`.
//! 4. The S3 spool is flushed while time is left (hook below).
//! 5. What still runs is aborted with 421; the process exits 0.
//!
//! A second signal during `drain_delay` ends the delay at once. Without
//! `health_listen` step 2 is skipped: no health check would read the 503.
//! Worst case from the signal to exit: drain_delay + drain_timeout + 2 s;
//! systemd's TimeoutStopSec and the NLB deregistration delay must cover it.

use crate::ops::metrics;
use crate::shared::Shared;
use async_signal::{Signal, Signals};
use smol::channel::Sender;
use smol::future::FutureExt;
use smol::stream::StreamExt;
use smol::Timer;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long aborted sessions get to send their 421 before exit.
const ABORT_GRACE: Duration = Duration::from_secs(2);

/// SIGTERM and SIGINT stop; SIGUSR1 and SIGUSR2 are caught only so that
/// their default action (terminate at once, no drain) never happens: they
/// are logged and ignored. SIGHUP reloads the users (users/reload.rs
/// catches it, from the start on).
pub fn signals() -> io::Result<Signals> {
    Signals::new([Signal::Term, Signal::Int, Signal::Usr1, Signal::Usr2])
}

/// Resolves at the next SIGTERM/SIGINT; other caught signals are logged.
pub async fn next_signal(signals: &mut Signals) -> io::Result<()> {
    while let Some(signal) = signals.next().await {
        match signal? {
            stop @ (Signal::Term | Signal::Int) => {
                log::info!("{stop:?} received");
                return Ok(());
            }
            other => log::info!("{other:?} received and ignored (only SIGTERM and SIGINT stop)"),
        }
    }
    Ok(())
}

/// Step 2: waits `drain_delay`, or less if another signal comes. Without
/// `health_listen` no health check can see the 503, so there is nothing to
/// wait for: the delay is skipped.
pub async fn delay(shared: &Shared, signals: &mut Signals) -> io::Result<()> {
    if shared.config.health_listen.is_none() {
        log::info!("draining: no health_listen, so no drain_delay; sessions get up to {} s (drain_timeout)", shared.config.drain_timeout.as_secs());
        return Ok(());
    }
    let delay = shared.config.drain_delay;
    log::info!(
        "draining: /healthz answers 503; still accepting for {} ms (drain_delay), then sessions get up to {} s (drain_timeout)",
        delay.as_millis(),
        shared.config.drain_timeout.as_secs()
    );
    async {
        Timer::after(delay).await;
        Ok(())
    }
    .or(async {
        next_signal(signals).await?;
        log::info!("second signal: ending drain_delay now");
        Ok(())
    })
    .await
}

/// Steps 3-5, after the listener closed and the stop signal went out:
/// waits for sessions to end, up to `drain_timeout`; flushes the spool;
/// then aborts the rest.
pub async fn drain(shared: &Arc<Shared>, hard_tx: Sender<()>) {
    log::info!("draining: listener closed, idle sessions told 421");
    let deadline = Instant::now() + shared.config.drain_timeout;
    while metrics::get(&shared.metrics.sessions_now) > 0 && Instant::now() < deadline {
        Timer::after(crate::limits::POLL_PAUSE).await;
    }
    let left = metrics::get(&shared.metrics.sessions_now);
    if left > 0 {
        log::warn!("drain timeout: aborting {left} sessions");
    }
    flush_delivery_spool(shared, deadline).await;
    drop(hard_tx);
    // Give the aborted sessions a moment to send their 421.
    let grace = Instant::now() + ABORT_GRACE;
    while metrics::get(&shared.metrics.sessions_now) > 0 && Instant::now() < grace {
        Timer::after(Duration::from_millis(20)).await;
    }
}

/// Lets S3 delivery empty the spool, giving up at `until` (the end of
/// `drain_timeout`). The delivery threads keep working while we wait; what
/// is left stays in the spool, which is durable and replayed at the next
/// start, so nothing acknowledged is lost by stopping here.
async fn flush_delivery_spool(shared: &Arc<Shared>, until: Instant) {
    if shared.delivery.is_none() {
        return;
    }
    while metrics::get(&shared.metrics.s3_queue_depth) > 0 && Instant::now() < until {
        Timer::after(crate::limits::POLL_PAUSE).await;
    }
    let left = metrics::get(&shared.metrics.s3_queue_depth);
    if left > 0 {
        log::warn!("stopping with {left} files still in the spool; they are delivered after the next start");
    } else {
        log::info!("spool flushed to S3");
    }
}
