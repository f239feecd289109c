//! The server: the accept loop, the session caps, the executor, and the
//! graceful stop (SIGTERM/SIGINT; the sequence is described in `drain.rs`).

mod admission;
mod bans;
pub mod certs;
mod drain;
mod handshake;
mod implicit;

use crate::auth::defender::{self, Defender};
use crate::aws::emf;
use crate::config::{Config, PublicAddress};
use crate::data::passive::PassivePool;
use crate::limits;
use crate::ops::health::{self, Health};
use crate::ops::metrics::{self, Metrics};
use crate::session::{self, Prelude};
use crate::shared::Shared;
use crate::sys;
use crate::sys::budget::FdBudget;
use crate::sys::inflight::InFlight;
use crate::sys::unauthenticated::{Probe, Share};
use crate::tls::Tls;
use smol::{Async, Executor, Timer};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    crate::auth::set_unknown_user_cost(&config.users);

    // S3 delivery: replay the spool before accepting uploads.
    // The instance id (for `{instance}`) comes from IMDS (aws/imds).
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

    let records = config
        .transfer_log
        .as_deref()
        .map(|path| {
            let instance = instance_id
                .clone()
                .unwrap_or_else(|| emf::NO_INSTANCE_ID.to_string());
            crate::ops::records::TransferLog::open(path, instance, metrics.clone()).map(Arc::new)
        })
        .transpose()?;
    let (tls, tls_watch) = start_tls(&config)?;
    let listener = sys::listen(config.listen, limits::LISTEN_BACKLOG).map_err(|e| {
        io::Error::new(e.kind(), format!("cannot listen on {}: {e}", config.listen))
    })?;
    let implicit_listener = config
        .tls
        .implicit_listen
        .map(|addr| {
            sys::listen(addr, limits::LISTEN_BACKLOG)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
        })
        .transpose()?;
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
        passive: PassivePool::new(config.passive_ports, {
            let pool = usize::from(config.passive_ports.1 - config.passive_ports.0) + 1;
            config.defence.passive_per_ip_limit(pool)
        }),
        public_ip,
        per_ip: Mutex::new(HashMap::new()),
        fds: FdBudget::new(capacity, limits::TRANSFER_RESERVE_FDS),
        unauthenticated: {
            let limit = config.defence.unauthenticated_limit(config.max_sessions);
            let per_ip = (limit / limits::UNAUTHENTICATED_PER_IP_DIVISOR)
                .clamp(1, config.max_sessions_per_ip);
            Share::new(limit, per_ip)
        },
        handshakes: InFlight::new(limits::MAX_HANDSHAKES_PER_CLIENT),
        defender: Mutex::new(Defender::new(defender::Settings {
            ban_after: config.defence.ban_after,
            ban_window: config.defence.ban_window,
            ban_time: config.defence.ban_time,
            exempt: config.defence.ban_exempt.clone(),
        })),
        health,
        metrics,
        delivery,
        stopping: stop_rx,
        hard_stopping: hard_rx,
        records,
        tls,
        config,
    });

    bans::start(&shared.config, shared.clone(), instance_id.as_deref());

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

    // The disk is looked at once before the health listener answers; the
    // watch then runs whether or not health_listen is set: its gauges feed
    // /metrics and EMF, and the watchdog reads liveness from it.
    let watched = crate::ops::disk::Watched {
        home: shared.config.root.clone(),
        spool: shared
            .delivery
            .as_ref()
            .map(|_| shared.config.s3.spool.clone()),
        reserve: crate::ops::disk::reserve(shared.config.max_file_size),
        failing_after: shared.config.health_s3_failing_after,
    };
    let warned = crate::ops::disk::first_look(&watched, &shared.health, &shared.metrics);
    executor
        .spawn(crate::ops::disk::watch(
            watched,
            shared.health.clone(),
            shared.metrics.clone(),
            warned,
        ))
        .detach();
    executor
        .spawn(crate::ops::disk::heartbeat(shared.health.clone()))
        .detach();
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
                shared.config.defence.health_from.clone(),
                shared.config.defence.ipv6_prefix,
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
    if let (Some(tls), Some((reader, version))) = (shared.tls.clone(), tls_watch) {
        let interval = shared.config.tls.reload_interval;
        let watch = certs::watch(tls, reader, version, interval, shared.metrics.clone());
        executor.spawn(watch).detach();
    }
    let mut signals = drain::signals()?;
    log::info!("listening on {local}");
    sys::notify_systemd("READY=1");

    let result = smol::block_on(executor.run(async {
        let watchdog = executor.spawn(watchdog(shared.clone()));
        // The accept loop is a task of its own: polled only when the
        // listener is ready, not whenever this main future is woken.
        let accepting = executor.spawn(accept_loop(
            executor.clone(),
            shared.clone(),
            listener,
            Listener::Control,
        ));
        let implicit = implicit_listener.map(|listener| {
            if let Ok(addr) = listener.get_ref().local_addr() {
                log::info!("implicit FTPS on tls://{addr}");
            }
            executor.spawn(accept_loop(
                executor.clone(),
                shared.clone(),
                listener,
                Listener::ImplicitTls,
            ))
        });
        drain::next_signal(&mut signals).await?;
        health::start_draining(&shared.health, &shared.metrics);
        sys::notify_systemd("STOPPING=1");
        drain::delay(&shared, &mut signals).await?;
        // Cancelling the task drops the listener: new connections are refused.
        accepting.cancel().await;
        if let Some(implicit) = implicit {
            implicit.cancel().await;
        }
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

/// Sends WATCHDOG=1 at half the interval systemd asks for
/// (sd_watchdog_enabled(3)), from a task of the executor, and only while
/// the instance is live (ops/probe.rs): a stalled executor sends nothing,
/// and an instance broken by itself stops feeding the watchdog, so systemd
/// restarts it (WatchdogSec= in the unit).
async fn watchdog(shared: Arc<Shared>) {
    let Some(usec) = std::env::var("WATCHDOG_USEC")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    let interval = Duration::from_micros(usec / 2);
    let mut fed = true;
    loop {
        Timer::after(interval).await;
        match shared
            .health
            .probe(shared.config.health_s3_failing_after)
            .live
        {
            Ok(()) => {
                sys::notify_systemd("WATCHDOG=1");
                fed = true;
            }
            Err(why) if fed => {
                log::error!(
                    "not live ({}): no longer feeding systemd's watchdog",
                    why.as_str()
                );
                fed = false;
            }
            Err(_) => {}
        }
    }
}

/// Accepts on `listener` until cancelled; each connection is a task.
async fn accept_loop(
    executor: Arc<Executor<'static>>,
    shared: Arc<Shared>,
    listener: Async<TcpListener>,
    kind: Listener,
) {
    let shared = &shared;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // EMFILE/ENFILE and friends: the server stays responsive to
                // the sessions it has; back off briefly rather than spin.
                log::warn!("accept failed ({kind:?}): {e}");
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
        let shared = shared.clone();
        executor
            .spawn(connection(shared, stream, peer, local, kind))
            .detach();
        // SECURITY: let the connection tasks run between accepts. A flood
        // waiting in the backlog would otherwise be accepted faster than
        // its tasks count, shed and close it, and the descriptors of
        // accepted but not yet counted connections would run out (EMFILE).
        smol::future::yield_now().await;
    }
}

/// The TLS configuration with the pair read now, and what the reload
/// watch needs; nothing with `tls = off`. A pair that cannot be read or is
/// refused stops the start (as `lakeftpd check` would report it).
#[allow(clippy::type_complexity)]
fn start_tls(
    config: &Config,
) -> io::Result<(Option<Arc<Tls>>, Option<(certs::Reader, certs::Version)>)> {
    let Some(reader) = certs::Reader::new(config) else {
        return Ok((None, None));
    };
    let (pair, version) = reader.load(certs::now()).map_err(|problems| {
        io::Error::other(format!("tls_cert/tls_key: {}", problems.join("; ")))
    })?;
    log::info!(
        "tls: serving {} ({} days left); session reuse {}",
        pair.subject,
        pair.seconds_left(certs::now()) / 86_400,
        if config.tls.session_reuse_required {
            "required"
        } else {
            "not required"
        }
    );
    let mut tls = Tls::new(&config.tls, pair).map_err(io::Error::other)?;
    tls.handshake_timeout = config.defence.tls_handshake_timeout;
    Ok((Some(Arc::new(tls)), Some((reader, version))))
}

/// Which listener accepted a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Listener {
    /// `listen`: plain FTP, explicit FTPS after AUTH TLS.
    Control,
    /// `implicit_tls_listen`: TLS from the first byte.
    ImplicitTls,
}

/// One accepted connection, from its first moment: counted (a slot, a place
/// in the unauthenticated share), then the PROXY header if configured, the
/// ban and per-address checks on the client's address, then the session.
/// Until the session logs in, the whole of it races the share's shed signal:
/// a shed connection is dropped, closing its socket.
async fn connection(
    shared: Arc<Shared>,
    stream: Async<std::net::TcpStream>,
    peer: std::net::SocketAddr,
    local: std::net::SocketAddr,
    listener: Listener,
) {
    let proxy = shared.config.proxy_protocol;
    let implicit = listener == Listener::ImplicitTls;
    // FTP speaks first, TLS does not: on the implicit listener nothing is
    // said before the handshake, so a refusal there is only a close.
    let refuse = |stream: &Async<std::net::TcpStream>, text: &str| {
        if !implicit {
            admission::refuse(stream, text);
        }
    };
    // Without PROXY protocol the peer is the client: a banned address is
    // refused before it costs a slot.
    if proxy.is_none() && admission::banned(&shared, admission::client_key(&shared, peer.ip())) {
        refuse(
            &stream,
            "Too many failed logins from your address, try later",
        );
        return;
    }
    if proxy.is_some() && !handshake::believed(&shared, peer) {
        return;
    }
    let Some(slot) = admission::slot(&shared, peer) else {
        metrics::inc(&shared.metrics.sessions_refused);
        refuse(&stream, "Too many sessions, try again later");
        return;
    };
    let known = proxy
        .is_none()
        .then(|| admission::client_key(&shared, peer.ip()));
    // Awaiting a PROXY header: a probe of the socket, so that a header
    // already arrived keeps this connection when the share sheds.
    let probe = proxy.and_then(|_| {
        let fd = shared.fds.spare(1)?;
        let socket = stream.get_ref().try_clone().ok()?;
        Some(Probe::new(socket.into(), fd))
    });
    let (mut pending, shed_count) = shared.unauthenticated.enter_with(known, probe);
    metrics::add(&shared.metrics.unauthenticated_shed, shed_count as u64);
    let shed = pending.shed();
    let serve = async {
        let (client, mut prelude) = match proxy {
            None => (peer, Prelude::empty()),
            // With PROXY protocol the client is known only after the header:
            // the bans and caps apply to the header's address.
            Some(version) => {
                // Boxed: its state is needed only until the header is
                // read, and inline it would sit in every connection's task
                // for the session's whole life.
                let handshake = Box::pin(handshake::handshake(
                    &shared, &stream, peer, version, !implicit,
                ));
                let stop = async {
                    shared.stopping().await;
                    None
                };
                let Some((client, prelude)) = smol::future::or(handshake, stop).await else {
                    return;
                };
                let key = admission::client_key(&shared, client.ip());
                let shed_count = pending.set_client(key);
                metrics::add(&shared.metrics.unauthenticated_shed, shed_count as u64);
                if admission::banned(&shared, key) {
                    refuse(
                        &stream,
                        "Too many failed logins from your address, try later",
                    );
                    return;
                }
                (client, prelude)
            }
        };
        let Some(per_ip) = admission::per_ip(&shared, admission::client_key(&shared, client.ip()))
        else {
            metrics::inc(&shared.metrics.sessions_refused);
            refuse(&stream, "Too many sessions, try again later");
            return;
        };
        prelude.pending = Some(pending);
        // Boxed: this future lives as long as the session, and the two
        // branches' states (a TLS handshake, a session) would otherwise
        // both be laid out in it, idle or not.
        if implicit {
            Box::pin(implicit::serve(&shared, stream, client, local, prelude)).await;
        } else {
            Box::pin(session::run(shared.clone(), stream, client, local, prelude)).await;
        }
        drop(per_ip);
    };
    let shed_wait = async {
        shed.wait().await;
        log::info!("peer={peer} closed: not logged in, shed to make room (max_unauthenticated)");
    };
    smol::future::or(serve, shed_wait).await;
    drop(slot);
}

/// Creates missing homes and removes temporaries a crash left behind. A
/// home made here is synced into its parent: an upload acknowledged right
/// after the first start must not vanish with the directory entry.
fn prepare_homes(config: &Config) -> io::Result<()> {
    let mut dirs: Vec<&std::path::Path> = vec![&config.root];
    dirs.extend(config.users.iter().map(|u| &*u.home));
    for user in &config.users {
        crate::storage::durable::create_dir_all(&user.home).map_err(|e| {
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
