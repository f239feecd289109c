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
//! 4. What still runs is aborted with 421 (2 s to send it).
//! 5. The stop waits, up to `drain_spool_timeout`, until the spool reached
//!    S3 (an instance that terminates takes its disk with it: with
//!    `ack = disk` a file still spooled would be lost); what is left is
//!    logged. Then the process exits 0.
//!
//! A second signal during `drain_delay` ends the delay at once. Without
//! `health_listen` step 2 is skipped: no health check would read the 503.
//! Worst case from the signal to exit: drain_delay + drain_timeout + 2 s +
//! drain_spool_timeout; systemd's TimeoutStopSec and the termination
//! lifecycle hook must cover it.

use crate::ops::metrics;
use crate::protocol::escape::Escaped;
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
/// waits for sessions to end, up to `drain_timeout`; aborts the rest; then
/// waits for the spool to reach S3, up to `drain_spool_timeout`.
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
    drop(hard_tx);
    // Give the aborted sessions a moment to send their 421.
    let grace = Instant::now() + ABORT_GRACE;
    while metrics::get(&shared.metrics.sessions_now) > 0 && Instant::now() < grace {
        Timer::after(Duration::from_millis(20)).await;
    }
    flush_delivery_spool(shared).await;
}

/// Lets S3 delivery empty the spool, for up to `drain_spool_timeout`. The
/// delivery threads keep working (with their retries) while we wait; what
/// is left stays in the spool, durable, and is delivered after the next
/// start on this disk: logged, so an operator knows what a terminated
/// instance took with it.
async fn flush_delivery_spool(shared: &Arc<Shared>) {
    if shared.delivery.is_none() {
        return;
    }
    let pending = || metrics::get(&shared.metrics.s3_queue_depth);
    if pending() > 0 {
        log::info!(
            "draining: waiting up to {} s (drain_spool_timeout) for {} spooled files to reach S3",
            shared.config.drain_spool_timeout.as_secs(),
            pending()
        );
    }
    let until = Instant::now() + shared.config.drain_spool_timeout;
    while pending() > 0 && Instant::now() < until {
        Timer::after(crate::limits::POLL_PAUSE).await;
    }
    let left = pending();
    if left == 0 {
        log::info!("spool flushed to S3");
        return;
    }
    log::warn!(
        "drain_spool_timeout: stopping with {left} files still in the spool {} (oldest {} s); they are delivered after the next start on this disk",
        shared.config.s3.spool.display(),
        metrics::get(&shared.metrics.s3_oldest_pending_seconds)
    );
    if let Some(delivery) = &shared.delivery {
        for (user, path, key) in delivery.waiting(crate::limits::DRAIN_LEFT_LOGGED) {
            log::warn!(
                "left in the spool: user={} path={:?} key={key:?}",
                Escaped(&user),
                path
            );
        }
    }
}
