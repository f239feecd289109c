//! The data connection (RFC 959 §3.2, §3.3): active (the server connects to
//! the client's PORT/EPRT address) or passive (the client connects to a
//! listener from PASV/EPSV). Both enforce that the data connection is with
//! the control connection's client and nobody else (RFC 2577 §3).

use crate::ops::metrics::{self, Metrics};
use crate::sys;
use crate::sys::timeout;
use smol::future::FutureExt;
use smol::{Async, Timer};
use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How the next data connection will be made.
pub enum DataPlan {
    None,
    /// Connect to this address (already checked against the client's).
    Active(SocketAddr),
    /// Accept on this listener; the port returns to the pool when it drops.
    Passive(crate::data::passive::Passive),
    /// A passive connection accepted before its command (PROT P only:
    /// the client may start TLS on it before sending the command).
    Accepted(Async<TcpStream>),
    /// That connection, after a TLS handshake the client started before
    /// the command (aioftp, curl): the command's transfer uses it as is.
    Secured(crate::tls::stream::Stream),
    /// That handshake failed, or did not resume the control session: the
    /// command is answered with this.
    Refused(Refusal),
}

/// Why a data connection secured before its command was refused.
#[derive(Debug, Clone, Copy)]
pub enum Refusal {
    /// The TLS handshake failed (the reason).
    Tls(&'static str),
    /// It did not resume the control session (`per_user`: the user's own
    /// `tls_session_reuse` decided).
    NotResumed { per_user: bool },
}

/// Why a data connection could not be made: each is a 425 reply.
#[derive(Debug)]
pub enum DataError {
    NoPlan,
    Connect(io::Error),
    AcceptTimeout,
    Accept(io::Error),
}

impl std::fmt::Display for DataError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DataError::NoPlan => f.write_str("use PORT, EPRT, PASV or EPSV first"),
            DataError::Connect(e) => write!(f, "cannot connect to your data port: {e}"),
            DataError::AcceptTimeout => f.write_str("no data connection arrived in time"),
            DataError::Accept(e) => write!(f, "accepting the data connection failed: {e}"),
        }
    }
}

/// Where the data connection comes from and what to expect of it.
pub struct Peer {
    /// The control connection's client address: the only one allowed.
    pub client_ip: IpAddr,
    /// The control connection's local address: active connections leave
    /// from it (unmapped when it is an IPv4-mapped IPv6 address).
    pub local_ip: IpAddr,
    pub source_port: u16,
    pub connect_timeout: Duration,
    pub accept_timeout: Duration,
}

/// The addresses of an active connection: it leaves from the control
/// connection's local address, in the destination's family. On a dual-stack
/// listener (`[::]`) an IPv4 device's control connection is local to
/// `::ffff:a.b.c.d` while PORT names a plain IPv4 address: both are unmapped
/// so the socket (AF_INET) and the address it binds agree (RFC 4291 §2.5.5.2).
fn endpoints(local: IpAddr, dest: SocketAddr) -> io::Result<(IpAddr, SocketAddr)> {
    let source = local.to_canonical();
    let dest = SocketAddr::new(dest.ip().to_canonical(), dest.port());
    if source.is_ipv4() != dest.is_ipv4() {
        // Not reachable through PORT/EPRT (the destination is the client's
        // address, of the control connection's family); refused rather than
        // sent from another address.
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the data address is not of the control connection's family",
        ));
    }
    Ok((source, dest))
}

/// Opens the planned data connection.
pub async fn open(
    plan: DataPlan,
    peer: &Peer,
    metrics: &Metrics,
) -> Result<Async<TcpStream>, DataError> {
    match plan {
        DataPlan::None | DataPlan::Secured(_) | DataPlan::Refused(_) => Err(DataError::NoPlan),
        DataPlan::Accepted(stream) => Ok(stream),
        DataPlan::Active(dest) => {
            let started = Instant::now();
            let result = match endpoints(peer.local_ip, dest) {
                Ok((source, dest)) => {
                    let connect = sys::connect_from(source, peer.source_port, dest);
                    timeout::within(peer.connect_timeout, connect).await
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(stream) => {
                    metrics::inc(&metrics.active_connects);
                    metrics::add(
                        &metrics.active_connect_micros,
                        started.elapsed().as_micros() as u64,
                    );
                    Ok(stream)
                }
                Err(e) => {
                    metrics::inc(&metrics.active_connect_failures);
                    Err(DataError::Connect(e))
                }
            }
        }
        DataPlan::Passive(passive) => {
            let listener = &passive.listener;
            let accept = async {
                loop {
                    let (stream, from) = listener.accept().await.map_err(DataError::Accept)?;
                    // SECURITY: only the control connection's client may
                    // connect (RFC 2577 §3: no passive port theft).
                    if from.ip().to_canonical() == peer.client_ip {
                        return Ok(stream);
                    }
                    metrics::inc(&metrics.passive_refused_foreign);
                    log::warn!(
                        "passive data connection from {from} refused: the session's client is {}",
                        peer.client_ip
                    );
                    drop(stream);
                }
            };
            accept
                .or(async {
                    Timer::after(peer.accept_timeout).await;
                    metrics::inc(&metrics.passive_accept_timeouts);
                    Err(DataError::AcceptTimeout)
                })
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::endpoints;
    use std::net::{IpAddr, SocketAddr};

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn at(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ipv4_device_on_a_dual_stack_listener_leaves_from_the_plain_ipv4_address() {
        let (source, dest) = endpoints(ip("::ffff:192.0.2.7"), at("198.18.0.5:40001")).unwrap();
        assert_eq!(source, ip("192.0.2.7"));
        assert_eq!(dest, at("198.18.0.5:40001"));
    }

    #[test]
    fn mapped_eprt_destination_is_unmapped_too() {
        let (source, dest) =
            endpoints(ip("::ffff:192.0.2.7"), at("[::ffff:198.18.0.5]:40001")).unwrap();
        assert_eq!(source, ip("192.0.2.7"));
        assert_eq!(dest, at("198.18.0.5:40001"));
    }

    #[test]
    fn ipv6_device_keeps_ipv6_addresses() {
        let (source, dest) = endpoints(ip("2001:db8::1"), at("[2001:db8::9]:40001")).unwrap();
        assert_eq!(source, ip("2001:db8::1"));
        assert_eq!(dest, at("[2001:db8::9]:40001"));
    }

    #[test]
    fn ipv4_listener_keeps_ipv4_addresses() {
        let (source, dest) = endpoints(ip("192.0.2.7"), at("198.18.0.5:40001")).unwrap();
        assert_eq!(source, ip("192.0.2.7"));
        assert_eq!(dest, at("198.18.0.5:40001"));
    }

    #[test]
    fn families_that_differ_are_refused() {
        assert!(endpoints(ip("2001:db8::1"), at("198.18.0.5:40001")).is_err());
    }
}
