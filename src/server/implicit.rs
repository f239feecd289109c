//! The implicit FTPS listener (`implicit_tls_listen`, port 990 by
//! custom): TLS from the first byte, then the same session as on `listen`
//! with data connections protected. With PROXY protocol the header comes
//! first (the balancer adds it in front of the client's ClientHello), and
//! the bytes read after it start the handshake.

use super::handshake;
use crate::session::{self, Prelude};
use crate::shared::Shared;
use crate::sys;
use crate::tls::stream::Stream;
use crate::tls::Role;
use smol::{Async, Executor, Timer};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;

pub(super) async fn accept_loop(
    executor: Arc<Executor<'static>>,
    shared: Arc<Shared>,
    listener: Async<TcpListener>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                log::warn!("accept failed on the implicit TLS listener: {e}");
                Timer::after(crate::limits::POLL_PAUSE).await;
                continue;
            }
        };
        let Ok(local) = stream.get_ref().local_addr() else {
            continue;
        };
        let _ = stream.get_ref().set_nodelay(true);
        if let Some(idle) = shared.config.tcp_keepalive {
            // Ignore errors: keepalive is an optimisation for long transfers.
            let _ = sys::set_keepalive(stream.get_ref(), idle);
        }
        let shared = shared.clone();
        executor
            .spawn(async move { serve(shared, stream, peer, local).await })
            .detach();
    }
}

async fn serve(shared: Arc<Shared>, stream: Async<TcpStream>, peer: SocketAddr, local: SocketAddr) {
    let (client, prelude) = match shared.config.proxy_protocol {
        // FTP speaks first, TLS does not: never greet before the handshake.
        Some(version) => match handshake::handshake(&shared, &stream, peer, version, false).await {
            Some(found) => found,
            None => return,
        },
        None => (peer, Prelude::empty()),
    };
    let Some(tls) = shared.tls.clone() else {
        return;
    };
    // Admission before the handshake: a refused client costs no TLS work
    // (it gets no 421 either: nothing can be said before TLS).
    let Some(guard) = super::admit(&shared, client.ip().to_canonical()) else {
        crate::ops::metrics::inc(&shared.metrics.sessions_refused);
        return;
    };
    let tag = sys::random_bytes();
    match tls
        .accept(
            stream,
            Role::Control,
            &tag,
            prelude.bytes(),
            &shared.metrics,
        )
        .await
    {
        Ok(tls_stream) => {
            let control = Stream::Tls(Box::new(tls_stream));
            session::run_implicit(shared, control, tag, client, local).await;
        }
        Err((failure, e)) => {
            log::info!(
                "client={client} implicit TLS handshake failed ({}): {e}",
                failure.as_str()
            );
        }
    }
    drop(guard);
}
