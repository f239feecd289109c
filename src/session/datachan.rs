//! The data channel's set-up: PORT and EPRT (active, RFC 959 §4.1.2,
//! RFC 2428 §2), PASV and EPSV (passive, RFC 2428 §3), ABOR with no
//! transfer running. They set the session's `DataChannel`.

use super::login::LoggedIn;
use super::{Handled, Session};
use crate::config::device::ActiveAddress;
use crate::data::channel::DataChannel;
use crate::ops::metrics;
use crate::protocol::command::EpsvArg;
use crate::protocol::reply::Code;
use crate::sys::budget::FdPermit;
use crate::sys::timeout;
use std::net::{IpAddr, SocketAddr};

impl Session {
    /// The client's address as the data connection must see it.
    pub(super) fn client_ip(&self) -> IpAddr {
        self.client.ip().to_canonical()
    }

    pub(super) fn port(&mut self, me: &mut LoggedIn, addr: SocketAddr) -> Handled {
        if !self.shared.config.active {
            return self.answer(
                Code::NotImplemented,
                format_args!("active mode is disabled; use PASV"),
            );
        }
        if me.epsv_all {
            return self.answer(
                Code::BadSequence,
                format_args!("EPSV ALL was sent; only EPSV is allowed"),
            );
        }
        // SECURITY (RFC 2577 §3, the FTP bounce attack):
        // 1) the data connection may only go to the control connection's
        //    client address: with `active_address = peer` the address
        //    given is replaced by it (a device behind NAT names its private
        //    address, or `::` as lftp does), so the target is still the
        //    device itself;
        // 2) never to a privileged port.
        // Nothing is connected when either check fails.
        let mut addr = addr;
        if me.user.device.active_address == ActiveAddress::Peer
            && addr.ip().to_canonical() != self.client_ip()
        {
            metrics::inc(&self.metrics().port_address_rewritten);
            log::debug!(
                "client={} PORT/EPRT address {} replaced by the client's own (active_address = peer)",
                self.client,
                addr.ip()
            );
            addr = SocketAddr::new(self.client_ip(), addr.port());
        }
        if addr.ip().to_canonical() != self.client_ip() {
            metrics::inc(&self.metrics().port_refused_foreign_address);
            log::warn!(
                "client={} PORT/EPRT to foreign address {} refused",
                self.client,
                addr.ip()
            );
            return self.answer(
                Code::SyntaxErrorInArguments,
                format_args!("refused: the data address must be your own (RFC 2577)"),
            );
        }
        if addr.port() < 1024 {
            metrics::inc(&self.metrics().port_refused_low_port);
            log::warn!(
                "client={} PORT/EPRT to privileged port {} refused",
                self.client,
                addr.port()
            );
            return self.answer(
                Code::SyntaxErrorInArguments,
                format_args!("refused: the data port must be 1024 or above (RFC 2577)"),
            );
        }
        me.data = DataChannel::active(addr);
        self.answer(Code::CommandOk, format_args!("PORT command successful"))
    }

    /// Descriptors for a transfer (see budget.rs): waits while the process
    /// is at its open-file limit, up to `data_timeout`.
    pub(super) async fn transfer_fds(&self) -> Option<FdPermit> {
        let budget = self.shared.fds.clone();
        let limit = self.shared.config.data_timeout;
        timeout::within(limit, async { Ok(budget.transfer().await) })
            .await
            .ok()
    }

    /// Binds a passive listener on the control connection's local address.
    /// The listener and the transfer after it hold descriptors from the
    /// budget from now on.
    async fn passive_listener(&mut self, me: &mut LoggedIn) -> Option<u16> {
        // The old listener goes (its port back to the pool); the
        // descriptors it held serve the new one.
        let (_, held) = me.data.take().into_parts();
        let fds = match held {
            Some(fds) => Some(fds),
            None => self.transfer_fds().await,
        };
        let Some(fds) = fds else {
            log::warn!(
                "client={} no passive port: open-file limit reached",
                self.client
            );
            return None;
        };
        match self.shared.passive.bind(self.local.ip(), self.client_ip()) {
            Ok((listener, port)) => {
                me.data = DataChannel::passive(listener, fds);
                Some(port)
            }
            Err(e) => {
                log::warn!("client={} no passive port: {e}", self.client);
                None
            }
        }
    }

    pub(super) async fn pasv(&mut self, me: &mut LoggedIn) -> Handled {
        if !self.shared.config.passive {
            return self.answer(
                Code::NotImplemented,
                format_args!("passive mode is disabled; use PORT"),
            );
        }
        if me.epsv_all {
            return self.answer(
                Code::BadSequence,
                format_args!("EPSV ALL was sent; only EPSV is allowed"),
            );
        }
        let advertised = self
            .shared
            .public_ip
            .unwrap_or(self.local.ip().to_canonical());
        let IpAddr::V4(v4) = advertised else {
            return self.answer(
                Code::NetworkProtocolNotSupported,
                format_args!("PASV needs IPv4; use EPSV"),
            );
        };
        let Some(port) = self.passive_listener(me).await else {
            return self.answer(
                Code::CantOpenDataConnection,
                format_args!("no passive port free, try again"),
            );
        };
        let [a, b, c, d] = v4.octets();
        self.answer(
            Code::EnteringPassive,
            format_args!(
                "Entering Passive Mode ({a},{b},{c},{d},{},{}).",
                port >> 8,
                port & 0xff
            ),
        )
    }

    pub(super) async fn epsv(&mut self, me: &mut LoggedIn, arg: EpsvArg) -> Handled {
        if !self.shared.config.passive || !self.shared.config.epsv {
            return self.answer(
                Code::NotImplemented,
                format_args!("EPSV is disabled; use PASV"),
            );
        }
        let family = if self.local.ip().to_canonical().is_ipv4() {
            1
        } else {
            2
        };
        match arg {
            EpsvArg::All => {
                me.epsv_all = true;
                return self.answer(Code::CommandOk, format_args!("EPSV ALL ok"));
            }
            EpsvArg::Protocol(p) if p != family => {
                return self.answer(
                    Code::NetworkProtocolNotSupported,
                    format_args!("network protocol not supported, use ({family})"),
                );
            }
            _ => {}
        }
        let Some(port) = self.passive_listener(me).await else {
            return self.answer(
                Code::CantOpenDataConnection,
                format_args!("no passive port free, try again"),
            );
        };
        self.answer(
            Code::EnteringExtendedPassive,
            format_args!("Entering Extended Passive Mode (|||{port}|)"),
        )
    }

    /// ABOR with no transfer running: drops a prepared data connection.
    pub(super) fn abor(&mut self, me: &mut LoggedIn) -> Handled {
        me.data.clear();
        self.answer(
            Code::ClosingDataConnection,
            format_args!("no transfer to abort"),
        )
    }
}
