//! The passive port pool (`passive_ports`). A port is "taken" exactly while
//! a listener is bound to it, so ports return to the pool when the listener
//! is dropped, whatever happened to the session: the pool cannot leak.
//! One client (`ClientKey`: an IPv4 address or an IPv6 prefix) may hold at
//! most `max_passive_per_ip` listeners at once, so a single client cannot
//! take the whole pool.

use crate::sys::client::ClientKey;
use crate::{limits, sys};
use smol::Async;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

pub struct PassivePool {
    first: u16,
    count: u32,
    /// Where the next search starts: round robin spreads reuse of a port as
    /// far apart in time as the range allows (fewer stray late connections).
    cursor: AtomicU32,
    per_ip_limit: usize,
    /// Listeners held per client address.
    held: Arc<Mutex<HashMap<ClientKey, usize>>>,
}

/// A bound passive listener; its port and its client's share return when
/// it drops.
pub struct Passive {
    pub listener: Async<TcpListener>,
    _hold: Hold,
}

struct Hold {
    held: Arc<Mutex<HashMap<ClientKey, usize>>>,
    client: ClientKey,
}

impl Drop for Hold {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = held.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.client);
            }
        }
    }
}

impl PassivePool {
    /// The range `first..=last`; one client may hold `per_ip_limit` ports.
    pub fn new((first, last): (u16, u16), per_ip_limit: usize) -> PassivePool {
        PassivePool {
            first,
            count: u32::from(last - first) + 1,
            cursor: AtomicU32::new(0),
            per_ip_limit,
            held: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Ports in the range.
    pub fn size(&self) -> usize {
        self.count as usize
    }

    /// Binds a listener on `ip` at a free port of the range, for `client`.
    pub fn bind(&self, ip: IpAddr, client: ClientKey) -> io::Result<(Passive, u16)> {
        let hold = {
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            let n = held.entry(client).or_insert(0);
            // SECURITY: one address may not hoard the pool (others would
            // get 425 for every PASV).
            if *n >= self.per_ip_limit {
                return Err(io::Error::other(format!(
                    "max_passive_per_ip ({}) reached for {client}",
                    self.per_ip_limit
                )));
            }
            *n += 1;
            Hold {
                held: self.held.clone(),
                client,
            }
        };
        for _ in 0..self.count {
            let offset = self.cursor.fetch_add(1, Ordering::Relaxed) % self.count;
            let port = self.first + offset as u16;
            match sys::listen(SocketAddr::new(ip, port), limits::PASSIVE_BACKLOG) {
                Ok(listener) => {
                    let passive = Passive {
                        listener,
                        _hold: hold,
                    };
                    return Ok((passive, port));
                }
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "every passive port is in use",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_come_back_when_listeners_drop() {
        let base = 40000 + (std::process::id() % 1000) as u16 * 10;
        let pool = PassivePool::new((base, base + 1), 10);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let client = ClientKey::new(ip, 64);
        let a = pool.bind(ip, client).unwrap();
        let b = pool.bind(ip, client).unwrap();
        assert_ne!(a.1, b.1);
        assert!(
            pool.bind(ip, client).is_err(),
            "a two-port pool holds two listeners"
        );
        drop(a);
        let c = pool.bind(ip, client).unwrap();
        assert!(c.1 >= base && c.1 <= base + 1);
    }

    #[test]
    fn one_client_holds_at_most_its_share() {
        // The third listener for the same client is refused; another
        // client still gets one; a dropped listener gives the share back.
        let base = 45000 + (std::process::id() % 1000) as u16 * 5;
        let pool = PassivePool::new((base, base + 4), 2);
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let hoarder = ClientKey::new("127.0.0.9".parse().unwrap(), 64);
        let other = ClientKey::new("127.0.0.10".parse().unwrap(), 64);
        let a = pool.bind(local, hoarder).unwrap();
        let _b = pool.bind(local, hoarder).unwrap();
        let refused = pool.bind(local, hoarder).err().unwrap();
        assert!(refused.to_string().contains("max_passive_per_ip"));
        assert!(pool.bind(local, other).is_ok());
        drop(a);
        assert!(pool.bind(local, hoarder).is_ok());
    }
}
