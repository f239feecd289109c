//! The server: the accept loop, the session caps, the executor, and the
//! graceful stop (SIGTERM/SIGINT; the sequence is described in `drain.rs`).

mod drain;
mod handshake;

use crate::aws::emf;
use crate::config::{Config, PublicAddress};
use crate::data::passive::PassivePool;
use crate::limits;
use crate::ops::health::{self, Health};
use crate::ops::metrics::{self, Metrics};
use crate::session::{self, Prelude};
use crate::shared::Shared;
use crate::sys;
use crate::sys::budget::{FdBudget, FdPermit};
use smol::{Async, Executor, Timer};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Counts a client address's sessions; the count drops with the guard.
struct PerIpGuard {
    shared: Arc<Shared>,
    ip: IpAddr,
    /// The session's control socket in the open-file budget.
    _fd: FdPermit,
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
/// `instance_id` (from IMDS, when known) is the EMF dimension.
pub fn run(
    config: Config,
    public_ip: Option<IpAddr>,
    instance_id: Option<String>,
) -> io::Result<()> {
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
    let health = Arc::new(Health::default());
    let delivery = crate::delivery::start(
        &config,
        instance_id.clone(),
        metrics.clone(),
        health.clone(),
    )?;

    // The users file: loaded (or the fallback decided) before the first
    // connection is accepted.
    let users = crate::users::reload::start(&config, metrics.clone(), health.clone())?;

    let listener = sys::listen(config.listen, limits::LISTEN_BACKLOG).map_err(|e| {
        io::Error::new(e.kind(), format!("cannot listen on {}: {e}", config.listen))
    })?;
    let local = listener.get_ref().local_addr()?;
    let health_listener = config.health_listen.map(health::bind).transpose()?;

    let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
    let (hard_tx, hard_rx) = smol::channel::bounded::<()>(1);
    let public_ip = public_ip.or(match config.public_address {
        PublicAddress::Fixed(ip) => Some(ip),
        _ => None,
    });
    let shared = Arc::new(Shared {
        users,
        passive: PassivePool::new(config.passive_ports),
        public_ip,
        per_ip: Mutex::new(HashMap::new()),
        fds: FdBudget::new(capacity, limits::TRANSFER_RESERVE_FDS),
        health,
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

    if let Some(listener) = health_listener {
        let addr = listener.get_ref().local_addr()?;
        log::info!("health and metrics on http://{addr}/healthz and /metrics");
        executor
            .spawn(health::serve(
                executor.clone(),
                listener,
                shared.health.clone(),
                shared.metrics.clone(),
                shared.config.health_s3_failing_after,
            ))
            .detach();
    }
    if let Some(target) = shared.config.metrics_emf {
        let id = instance_id.unwrap_or_else(|| emf::NO_INSTANCE_ID.to_string());
        executor
            .spawn(emf::run(
                shared.metrics.clone(),
                target,
                shared.config.metrics_interval,
                shared.config.metrics_group.clone(),
                id,
            ))
            .detach();
    }
    let mut signals = drain::signals()?;
    log::info!("listening on {local}");
    sys::notify_systemd("READY=1");

    let result = smol::block_on(executor.run(async {
        let watchdog = executor.spawn(watchdog());
        // The accept loop is a task of its own: polled only when the
        // listener is ready, not whenever this main future is woken.
        let accepting = executor.spawn(accept_loop(executor.clone(), shared.clone(), listener));
        drain::next_signal(&mut signals).await?;
        health::start_draining(&shared.health, &shared.metrics);
        sys::notify_systemd("STOPPING=1");
        drain::delay(&shared, &mut signals).await?;
        // Cancelling the task drops the listener: new connections are refused.
        accepting.cancel().await;
        drop(stop_tx);
        drain::drain(&shared, hard_tx).await;
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

async fn accept_loop(
    executor: Arc<Executor<'static>>,
    shared: Arc<Shared>,
    listener: Async<TcpListener>,
) {
    let shared = &shared;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // EMFILE/ENFILE and friends: the server stays responsive to
                // the sessions it has; back off briefly rather than spin.
                log::warn!("accept failed: {e}");
                Timer::after(crate::limits::POLL_PAUSE).await;
                continue;
            }
        };
        // A client that reset at once has no local address any more.
        let Ok(local) = stream.get_ref().local_addr() else {
            continue;
        };
        // Replies are small and latency-bound (RFC 896 is for bulk).
        let _ = stream.get_ref().set_nodelay(true);
        if let Some(idle) = shared.config.tcp_keepalive {
            // Ignore errors: keepalive is an optimisation for long transfers.
            let _ = sys::set_keepalive(stream.get_ref(), idle);
        }
        let Some(version) = shared.config.proxy_protocol else {
            let Some(guard) = admit_or_refuse(shared, &stream, peer) else {
                continue;
            };
            let shared = shared.clone();
            executor
                .spawn(async move {
                    session::run(shared, stream, peer, local, Prelude::empty()).await;
                    drop(guard);
                })
                .detach();
            continue;
        };
        // With PROXY protocol the client is known only after the header:
        // the caps apply to the header's address.
        let shared = shared.clone();
        executor
            .spawn(async move {
                let Some((client, prelude)) =
                    handshake::handshake(&shared, &stream, peer, version).await
                else {
                    return;
                };
                let Some(guard) = admit_or_refuse(&shared, &stream, client) else {
                    return;
                };
                session::run(shared, stream, client, local, prelude).await;
                drop(guard);
            })
            .detach();
    }
}

/// `admit`, or tell the client why not (421) and count it.
fn admit_or_refuse(
    shared: &Arc<Shared>,
    stream: &Async<std::net::TcpStream>,
    client: std::net::SocketAddr,
) -> Option<PerIpGuard> {
    let guard = admit(shared, client.ip().to_canonical());
    if guard.is_none() {
        metrics::inc(&shared.metrics.sessions_refused);
        // Best effort, without waiting: the client is told why.
        let _ =
            crate::protocol::reply::try_send(stream, b"421 Too many sessions, try again later\r\n");
    }
    guard
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
    let Some(fd) = shared.fds.session() else {
        log::warn!("client={ip} refused: the open-file limit is reached");
        return None;
    };
    *count += 1;
    metrics::inc(&shared.metrics.sessions_now);
    metrics::inc(&shared.metrics.sessions_total);
    Some(PerIpGuard {
        shared: shared.clone(),
        ip,
        _fd: fd,
    })
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
        match crate::storage::upload::remove_stale_temporaries(dir) {
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
