//! The passive port pool (`passive_ports`). A port is "taken" exactly while
//! a listener is bound to it, so ports return to the pool when the listener
//! is dropped, whatever happened to the session: the pool cannot leak.

use crate::{limits, sys};
use smol::Async;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};

pub struct PassivePool {
    first: u16,
    count: u32,
    /// Where the next search starts: round robin spreads reuse of a port as
    /// far apart in time as the range allows (fewer stray late connections).
    cursor: AtomicU32,
}

impl PassivePool {
    pub fn new((first, last): (u16, u16)) -> PassivePool {
        PassivePool {
            first,
            count: u32::from(last - first) + 1,
            cursor: AtomicU32::new(0),
        }
    }

    /// Binds a listener on `ip` at a free port of the range.
    pub fn bind(&self, ip: IpAddr) -> io::Result<(Async<TcpListener>, u16)> {
        for _ in 0..self.count {
            let offset = self.cursor.fetch_add(1, Ordering::Relaxed) % self.count;
            let port = self.first + offset as u16;
            match sys::listen(SocketAddr::new(ip, port), limits::PASSIVE_BACKLOG) {
                Ok(listener) => return Ok((listener, port)),
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
        let pool = PassivePool::new((base, base + 1));
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = pool.bind(ip).unwrap();
        let b = pool.bind(ip).unwrap();
        assert_ne!(a.1, b.1);
        assert!(
            pool.bind(ip).is_err(),
            "a two-port pool holds two listeners"
        );
        drop(a);
        let c = pool.bind(ip).unwrap();
        assert!(c.1 >= base && c.1 <= base + 1);
    }
}
