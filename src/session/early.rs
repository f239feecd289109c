//! A passive PROT P data connection made before its command (RFC 4217
//! leaves the order open): some clients connect and start TLS at once and
//! send STOR/LIST only once the handshake is done (aioftp with `ssl=`),
//! others start it and send the command meanwhile (curl). While the session
//! waits for its next command it also accepts such a connection and, when
//! the client speaks first on it, makes the TLS handshake then; the
//! transfer uses the result. A client that waits for the 150 (the RFC 4217
//! §7 order: lftp, ftplib) sends nothing first and is served as before.

use super::{Login, Session};
use crate::data::active::DataPlan;
use crate::ops::metrics::{self, Metrics};
use crate::tls::Tickets;
use smol::Async;
use std::net::{IpAddr, TcpStream};

/// What happened on the planned data connection.
pub(super) enum Early {
    /// The client connected to the passive port.
    Accepted(Async<TcpStream>),
    /// It sent bytes (its ClientHello) before the command.
    Spoke,
}

/// The plan the session's wait for a command also watches: a logged-in
/// session's, under PROT P (`private`), with a passive listener or an
/// accepted connection.
pub(super) fn watched(login: &Login, private: bool) -> Option<&DataPlan> {
    let Login::In(me) = login else {
        return None;
    };
    let plan = me.data.plan();
    let watch = private && matches!(plan, DataPlan::Passive(_) | DataPlan::Accepted(_));
    watch.then_some(plan)
}

/// Waits for the next step on a `watched` plan; never ends otherwise, or
/// when accepting fails (the transfer's own accept reports it).
pub(super) async fn watch(data: &DataPlan, client_ip: IpAddr, metrics: &Metrics) -> Early {
    match data {
        DataPlan::Passive(passive) => loop {
            let Ok((stream, from)) = passive.listener.accept().await else {
                break;
            };
            // SECURITY: only the control connection's client may connect
            // (RFC 2577 §3), as in `active::open`.
            if from.ip().to_canonical() == client_ip {
                return Early::Accepted(stream);
            }
            metrics::inc(&metrics.passive_refused_foreign);
            log::warn!(
                "passive data connection from {from} refused: the session's client is {client_ip}"
            );
        },
        // Readable also at a close: the handshake then fails, and the
        // command is answered 425.
        DataPlan::Accepted(socket) if socket.readable().await.is_ok() => return Early::Spoke,
        _ => {}
    }
    std::future::pending().await
}

impl Session {
    /// Takes the step `watch` saw: keeps the accepted connection, or makes
    /// the TLS handshake the client started (within the handshake timeout;
    /// no command is read meanwhile, and the client waits for it too).
    pub(super) async fn early_data(&mut self, early: Early) {
        let Login::In(me) = &mut self.login else {
            return;
        };
        let socket = match early {
            Early::Accepted(socket) => {
                me.data.replace_plan(DataPlan::Accepted(socket));
                return;
            }
            Early::Spoke => match me.data.replace_plan(DataPlan::None) {
                DataPlan::Accepted(socket) => socket,
                other => {
                    me.data.replace_plan(other);
                    return;
                }
            },
        };
        // Whether it uploads is not known yet: a ticket only for a client
        // that resumes (`Tickets::IfResuming`).
        let plan = match self.secure_data(socket, Tickets::IfResuming).await {
            Ok(stream) => DataPlan::Secured(stream),
            Err(refusal) => DataPlan::Refused(refusal),
        };
        if let Login::In(me) = &mut self.login {
            me.data.replace_plan(plan);
        }
    }
}
