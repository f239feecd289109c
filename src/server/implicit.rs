//! The implicit FTPS listener (`implicit_tls_listen`, port 990 by
//! custom): TLS from the first byte, then the same session as on `listen`
//! with data connections protected. With PROXY protocol the header comes
//! first (the balancer adds it in front of the client's ClientHello), and
//! the bytes read after it start the handshake.

use crate::session::{self, Prelude};
use crate::shared::Shared;
use crate::sys;
use crate::tls::stream::Stream;
use smol::Async;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

/// After admission (`super::connection`): the TLS handshake, with the bytes
/// a PROXY handshake read after its header, then the session. `prelude`
/// keeps the connection's place in the unauthenticated share.
pub(super) async fn serve(
    shared: &Arc<Shared>,
    stream: Async<TcpStream>,
    client: SocketAddr,
    local: SocketAddr,
    prelude: Prelude,
) {
    let Some(tls) = shared.tls.clone() else {
        return;
    };
    // SECURITY: a bound on one client's handshakes in flight.
    let key = super::admission::client_key(shared, client.ip());
    let Some(handshake) = shared.handshakes.take(key) else {
        crate::ops::metrics::inc(&shared.metrics.tls_handshakes_refused);
        log::debug!("client={key} implicit TLS refused: too many handshakes in flight");
        return;
    };
    let tag = sys::random_bytes();
    let accepted = tls
        .accept(stream, &tag, prelude.bytes(), &shared.metrics)
        .await;
    // The handshake is over: no longer in flight.
    drop(handshake);
    match accepted {
        Ok(tls_stream) => {
            let control = Stream::Tls(Box::new(tls_stream));
            let rest = Prelude {
                pending: prelude.pending,
                ..Prelude::empty()
            };
            session::run_implicit(shared.clone(), control, tag, client, local, rest).await;
        }
        Err(e) => tls.failures.log(client, "implicit", &e),
    }
}
