//! The server: the accept loop, the session caps, the executor, and the
//! graceful stop (SIGTERM/SIGINT).
//!
//! Stop sequence: stop accepting; idle sessions get 421 at once; running
//! transfers finish (each then gets 421) for up to `drain_timeout`; then the
//! rest are aborted with 421 and the process exits 0.

use crate::config::{Config, PublicAddress, User};
use crate::limits;
use crate::metrics::{self, Metrics};
use crate::passive::PassivePool;
use crate::session;
use crate::sys;
use smol::channel::{Receiver, Sender};
use smol::future::FutureExt;
use smol::{Async, Executor, Timer};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What every session shares: read-only configuration, counters, the port
/// pool, and the stop signals.
pub struct Shared {
    pub config: Config,
    users: HashMap<String, Arc<User>>,
    /// Shared with the S3 delivery threads (issue 4).
    pub metrics: Arc<Metrics>,
    /// S3 delivery (issue 4); `None` without `s3_bucket`.
    pub delivery: Option<Arc<crate::delivery::Delivery>>,
    pub passive: PassivePool,
    /// What PASV advertises; `None`: the control connection's local address.
    pub public_ip: Option<IpAddr>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Closed when the stop begins; every waiter wakes.
    stopping: Receiver<()>,
    /// Closed when `drain_timeout` has passed.
    hard_stopping: Receiver<()>,
}

impl Shared {
    pub fn user(&self, name: &str) -> Option<Arc<User>> {
        self.users.get(name).cloned()
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

/// Counts a client address's sessions; the count drops with the guard.
struct PerIpGuard {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl Drop for PerIpGuard {
    fn drop(&mut self) {
        let mut map = self.shared.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = map.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.ip);
            }
        }
        metrics::dec(&self.shared.metrics.sessions_now);
    }
}

/// Runs the server until SIGTERM/SIGINT and the drain that follows.
pub fn run(config: Config, public_ip: Option<IpAddr>) -> io::Result<()> {
    let fd_limit = sys::raise_open_file_limit();
    let capacity = fd_limit.saturating_sub(limits::RESERVED_FDS);
    log::info!(
        "open-file limit {fd_limit}: room for about {capacity} idle sessions, {} transferring at once",
        capacity / limits::FDS_PER_SESSION
    );
    if config.max_sessions as u64 > capacity {
        log::warn!(
            "max_sessions = {} exceeds what the open-file limit allows ({capacity}); raise LimitNOFILE",
            config.max_sessions
        );
    }

    prepare_homes(&config)?;

    // S3 delivery (issue 4): replay the spool before accepting uploads.
    // The instance id (for `{instance}`) comes from IMDS on branch imds.
    let metrics = Arc::new(Metrics::default());
    let delivery = crate::delivery::start(&config, None, metrics.clone())?;

    let listener = sys::listen(config.listen, limits::LISTEN_BACKLOG).map_err(|e| {
        io::Error::new(e.kind(), format!("cannot listen on {}: {e}", config.listen))
    })?;
    let local = listener.get_ref().local_addr()?;

    let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
    let (hard_tx, hard_rx) = smol::channel::bounded::<()>(1);
    let public_ip = public_ip.or(match config.public_address {
        PublicAddress::Fixed(ip) => Some(ip),
        _ => None,
    });
    let shared = Arc::new(Shared {
        users: config
            .users
            .iter()
            .map(|u| (u.name.clone(), Arc::new(u.clone())))
            .collect(),
        passive: PassivePool::new(config.passive_ports),
        public_ip,
        per_ip: Mutex::new(HashMap::new()),
        metrics,
        delivery,
        stopping: stop_rx,
        hard_stopping: hard_rx,
        config,
    });

    let executor = Arc::new(Executor::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (done_tx, done_rx) = smol::channel::bounded::<()>(1);
    let mut workers = Vec::new();
    for i in 1..threads {
        let executor = executor.clone();
        let done_rx = done_rx.clone();
        workers.push(
            std::thread::Builder::new()
                .name(format!("lakeftpd-{i}"))
                .spawn(move || smol::block_on(executor.run(done_rx.recv())))?,
        );
    }

    log::info!("listening on {local}");
    sys::notify_systemd("READY=1");

    let result = smol::block_on(executor.run(async {
        let watchdog = executor.spawn(watchdog());
        let accepting = accept_loop(&executor, &shared, &listener);
        let signalled = wait_for_signal();
        match accepting.or(signalled).await {
            Ok(()) => {}
            Err(e) => return Err(e),
        }
        drop(listener);
        sys::notify_systemd("STOPPING=1");
        drop(stop_tx);
        drain(&shared, hard_tx).await;
        drop(watchdog);
        Ok(())
    }));
    drop(done_tx);
    for worker in workers {
        let _ = worker.join();
    }
    log::info!("stopped");
    result
}

/// Sends WATCHDOG=1 at half the interval systemd asks for (sd_watchdog_enabled(3)).
async fn watchdog() {
    let Some(usec) = std::env::var("WATCHDOG_USEC")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    let interval = Duration::from_micros(usec / 2);
    loop {
        Timer::after(interval).await;
        sys::notify_systemd("WATCHDOG=1");
    }
}

async fn wait_for_signal() -> io::Result<()> {
    use async_signal::{Signal, Signals};
    use smol::stream::StreamExt;
    let mut signals = Signals::new([Signal::Term, Signal::Int])?;
    if let Some(signal) = signals.next().await {
        log::info!(
            "{:?} received: stopping (drain up to the drain timeout)",
            signal?
        );
    }
    Ok(())
}

async fn accept_loop(
    executor: &Arc<Executor<'static>>,
    shared: &Arc<Shared>,
    listener: &Async<TcpListener>,
) -> io::Result<()> {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // EMFILE/ENFILE and friends: the server stays responsive to
                // the sessions it has; back off briefly rather than spin.
                log::warn!("accept failed: {e}");
                Timer::after(Duration::from_millis(50)).await;
                continue;
            }
        };
        let ip = peer.ip().to_canonical();
        let Some(guard) = admit(shared, ip) else {
            metrics::inc(&shared.metrics.sessions_refused);
            // Best effort, without waiting: the client is told why.
            let _ = crate::reply::try_send(&stream, b"421 Too many sessions, try again later\r\n");
            continue;
        };
        let local = stream.get_ref().local_addr()?;
        // Replies are small and latency-bound (RFC 896 is for bulk).
        let _ = stream.get_ref().set_nodelay(true);
        let _ = sys::set_keepalive(stream.get_ref(), Duration::from_secs(60));
        let shared = shared.clone();
        executor
            .spawn(async move {
                session::run(shared, stream, peer, local).await;
                drop(guard);
            })
            .detach();
    }
}

/// Applies `max_sessions` and `max_sessions_per_ip`.
fn admit(shared: &Arc<Shared>, ip: IpAddr) -> Option<PerIpGuard> {
    let config = &shared.config;
    let mut map = shared.per_ip.lock().unwrap_or_else(|p| p.into_inner());
    if metrics::get(&shared.metrics.sessions_now) as usize >= config.max_sessions {
        log::warn!(
            "client={ip} refused: max_sessions ({}) reached",
            config.max_sessions
        );
        return None;
    }
    let count = map.entry(ip).or_insert(0);
    if *count >= config.max_sessions_per_ip {
        log::warn!(
            "client={ip} refused: max_sessions_per_ip ({}) reached",
            config.max_sessions_per_ip
        );
        return None;
    }
    *count += 1;
    metrics::inc(&shared.metrics.sessions_now);
    metrics::inc(&shared.metrics.sessions_total);
    Some(PerIpGuard {
        shared: shared.clone(),
        ip,
    })
}

/// Waits for sessions to end, up to `drain_timeout`; then aborts the rest.
async fn drain(shared: &Arc<Shared>, hard_tx: Sender<()>) {
    let deadline = Instant::now() + shared.config.drain_timeout;
    while metrics::get(&shared.metrics.sessions_now) > 0 && Instant::now() < deadline {
        Timer::after(Duration::from_millis(50)).await;
    }
    let left = metrics::get(&shared.metrics.sessions_now);
    if left > 0 {
        log::warn!("drain timeout: aborting {left} sessions");
    }
    drop(hard_tx);
    // Give the aborted sessions a moment to send their 421.
    let grace = Instant::now() + Duration::from_secs(2);
    while metrics::get(&shared.metrics.sessions_now) > 0 && Instant::now() < grace {
        Timer::after(Duration::from_millis(20)).await;
    }
}

/// Creates missing homes and removes temporaries a crash left behind.
fn prepare_homes(config: &Config) -> io::Result<()> {
    let mut dirs: Vec<&std::path::Path> = vec![&config.root];
    dirs.extend(config.users.iter().map(|u| u.home.as_path()));
    for user in &config.users {
        std::fs::create_dir_all(&user.home).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create home {}: {e}", user.home.display()),
            )
        })?;
    }
    for dir in dirs {
        match crate::upload::remove_stale_temporaries(dir) {
            Ok(0) => {}
            Ok(n) => log::warn!(
                "removed {n} partial uploads left in {} by an earlier stop",
                dir.display()
            ),
            Err(e) => log::warn!("cannot scan {} for partial uploads: {e}", dir.display()),
        }
    }
    Ok(())
}
