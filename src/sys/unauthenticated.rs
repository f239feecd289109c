//! The unauthenticated share: connections that have not logged in yet (a
//! PROXY header awaited, the greeting sent, USER/PASS not done) are listed
//! here from their first moment, oldest first. The share has a size and
//! each client (`ClientKey`: an IPv4 address or an IPv6 /64) a part of it. When a new connection would exceed
//! its address's part, that address's oldest waiting connection is shed
//! (its task is told to close); when it would exceed the share, the oldest
//! waiting connection of the address that holds the most is shed
//! (connections still awaiting a PROXY header count as one address). A
//! logged-in session is never listed, so it is never shed. Silent
//! connections therefore cost an attacker the oldest of their own slots
//! rather than a device's login that is a few milliseconds old, even when
//! the flood renews its connections faster than a device logs in.
//!
//! Connections awaiting a PROXY header all come from the balancer, so age
//! is the only order among them, and a flood that opens more connections
//! between a device's accept and the parse of its header than the share
//! holds would shed the device. Each such entry therefore keeps a probe (a
//! duplicate of its socket, when a descriptor is spare): the one shed is
//! the oldest whose socket holds no bytes. A header that has arrived but
//! is not parsed yet keeps its connection; a silent one does not.

use crate::limits::MAX_SHED_SCAN;
use crate::sys::budget::FdPermit;
use crate::sys::client::ClientKey;
use event_listener::Event;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Connections waiting to log in, oldest first.
pub struct Share {
    limit: usize,
    per_ip_limit: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    by_age: BTreeMap<u64, Entry>,
    /// Ids of each client address's waiting connections, oldest first
    /// (`None`: the client is not known yet).
    per_ip: HashMap<Option<ClientKey>, VecDeque<u64>>,
}

struct Entry {
    ip: Option<ClientKey>,
    shed: Arc<Shed>,
    /// While the client is unknown: a look at its socket (see the module
    /// doc).
    probe: Option<Probe>,
}

/// A duplicate of a connection's socket, held only to see whether bytes
/// have arrived, with the descriptor it takes in the budget.
pub struct Probe {
    socket: OwnedFd,
    _fd: FdPermit,
}

impl Probe {
    pub fn new(socket: OwnedFd, fd: FdPermit) -> Probe {
        Probe { socket, _fd: fd }
    }

    /// Bytes (a PROXY header, most likely) wait in the socket. Never blocks;
    /// a closed or failed socket has none worth keeping.
    fn has_bytes(&self) -> bool {
        use rustix::net::RecvFlags;
        let mut byte = [0u8; 1];
        matches!(
            rustix::net::recv(&self.socket, &mut byte, RecvFlags::PEEK | RecvFlags::DONTWAIT),
            Ok((n, _)) if n > 0
        )
    }
}

/// Set when a connection is shed; its task waits on it.
#[derive(Default)]
pub struct Shed {
    flag: AtomicBool,
    event: Event,
}

impl Shed {
    /// Resolves once the connection is shed (never, after its login).
    pub async fn wait(&self) {
        loop {
            if self.flag.load(Ordering::Acquire) {
                return;
            }
            let listener = self.event.listen();
            if self.flag.load(Ordering::Acquire) {
                return;
            }
            listener.await;
        }
    }

    fn fire(&self) {
        self.flag.store(true, Ordering::Release);
        self.event.notify(usize::MAX);
    }
}

/// A connection's place in the share; leaving it (drop, e.g. at login)
/// makes room at once.
pub struct Pending {
    share: Arc<Share>,
    id: u64,
    shed: Arc<Shed>,
}

impl Share {
    /// `limit` waiting connections in all, `per_ip_limit` per address.
    pub fn new(limit: usize, per_ip_limit: usize) -> Arc<Share> {
        Arc::new(Share {
            limit: limit.max(1),
            per_ip_limit: per_ip_limit.max(1),
            inner: Mutex::new(Inner::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lists a new connection (`ip`: its client, when already known).
    /// Returns its place and how many older connections were shed for it.
    pub fn enter(self: &Arc<Self>, ip: Option<ClientKey>) -> (Pending, usize) {
        self.enter_with(ip, None)
    }

    /// `enter` for a connection whose client is not known yet, with a probe
    /// of its socket (see the module doc).
    pub fn enter_with(
        self: &Arc<Self>,
        ip: Option<ClientKey>,
        probe: Option<Probe>,
    ) -> (Pending, usize) {
        let shed = Arc::new(Shed::default());
        let mut inner = self.lock();
        let id = inner.next;
        inner.next += 1;
        let mut dropped = 0;
        // SECURITY: the share never grows past its limit; the oldest
        // waiting connection makes room (a slow or silent client has had
        // the longest chance).
        while inner.by_age.len() >= self.limit {
            if !inner.shed_biggest() {
                break;
            }
            dropped += 1;
        }
        inner.by_age.insert(
            id,
            Entry {
                ip,
                shed: shed.clone(),
                probe,
            },
        );
        dropped += self.add_ip(&mut inner, id, ip);
        drop(inner);
        let pending = Pending {
            share: self.clone(),
            id,
            shed,
        };
        (pending, dropped)
    }

    /// Counts `id` for `ip`, shedding that address's oldest over its part.
    fn add_ip(&self, inner: &mut Inner, id: u64, ip: Option<ClientKey>) -> usize {
        let mut dropped = 0;
        while ip.is_some() && inner.per_ip.get(&ip).map_or(0, VecDeque::len) >= self.per_ip_limit {
            if !inner.shed_front(ip) {
                break;
            }
            dropped += 1;
        }
        inner.per_ip.entry(ip).or_default().push_back(id);
        dropped
    }

    /// Sheds the oldest waiting connection to make room for a new one when
    /// the session cap is reached; false when none is waiting.
    pub fn shed_oldest(&self) -> bool {
        self.lock().shed_biggest()
    }

    /// Connections waiting now.
    pub fn len(&self) -> usize {
        self.lock().by_age.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    /// Sheds the oldest entry of the address holding the most (the oldest
    /// overall among equals). False when there is none.
    fn shed_biggest(&mut self) -> bool {
        let biggest = self
            .per_ip
            .iter()
            .max_by_key(|(_, ids)| (ids.len(), std::cmp::Reverse(ids.front().copied())))
            .map(|(ip, _)| *ip);
        match biggest {
            Some(ip) => self.shed_front(ip),
            None => false,
        }
    }

    /// Sheds the oldest entry of `ip` (among unknown clients: the oldest of
    /// the first `MAX_SHED_SCAN` whose socket holds no bytes). False when
    /// there is none.
    fn shed_front(&mut self, ip: Option<ClientKey>) -> bool {
        let Some(ids) = self.per_ip.get(&ip) else {
            return false;
        };
        let Some(&oldest) = ids.front() else {
            return false;
        };
        let silent = ids.iter().take(MAX_SHED_SCAN).copied().find(|id| {
            self.by_age
                .get(id)
                .and_then(|entry| entry.probe.as_ref())
                .is_none_or(|probe| !probe.has_bytes())
        });
        let id = silent.unwrap_or(oldest);
        if let Some(entry) = self.remove(id) {
            entry.shed.fire();
        }
        true
    }

    fn remove(&mut self, id: u64) -> Option<Entry> {
        let entry = self.by_age.remove(&id)?;
        if let Some(ids) = self.per_ip.get_mut(&entry.ip) {
            ids.retain(|&other| other != id);
            if ids.is_empty() {
                self.per_ip.remove(&entry.ip);
            }
        }
        Some(entry)
    }
}

impl Pending {
    /// The client became known (the PROXY header named it). Returns how
    /// many of that address's older connections were shed for it.
    pub fn set_client(&mut self, ip: ClientKey) -> usize {
        let share = self.share.clone();
        let mut inner = share.lock();
        let Some(entry) = inner.remove(self.id) else {
            return 0; // Already shed.
        };
        // The client is known: the probe's descriptor goes back.
        inner.by_age.insert(
            self.id,
            Entry {
                ip: Some(ip),
                shed: entry.shed,
                probe: None,
            },
        );
        share.add_ip(&mut inner, self.id, Some(ip))
    }

    /// What the connection's task waits on.
    pub fn shed(&self) -> Arc<Shed> {
        self.shed.clone()
    }

    pub fn is_shed(&self) -> bool {
        self.shed.flag.load(Ordering::Acquire)
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.share.lock().remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Option<ClientKey> {
        Some(key(last))
    }

    fn key(last: u8) -> ClientKey {
        ClientKey::new(std::net::IpAddr::from([127, 0, 0, last]), 64)
    }

    #[test]
    fn under_the_limit_nothing_is_shed() {
        // Room for three: three wait side by side.
        let share = Share::new(3, 3);
        let a = share.enter(ip(1));
        let b = share.enter(ip(2));
        let c = share.enter(ip(3));
        assert_eq!(a.1 + b.1 + c.1, 0);
        assert_eq!(share.len(), 3);
    }

    #[test]
    fn a_full_share_sheds_the_oldest() {
        // The fourth connection displaces the first, not the newest.
        let share = Share::new(3, 3);
        let (a, _) = share.enter(ip(1));
        let (b, _) = share.enter(ip(2));
        let (_c, _) = share.enter(ip(3));
        let (_d, dropped) = share.enter(ip(4));
        assert_eq!(dropped, 1);
        assert!(a.is_shed() && !b.is_shed());
        assert_eq!(share.len(), 3);
    }

    #[test]
    fn a_full_share_sheds_from_the_biggest_holder() {
        // 127.0.0.9 holds three, the device one (older): the flood loses
        // its own oldest, not the device's login.
        let share = Share::new(4, 4);
        let (device, _) = share.enter(ip(1));
        let (flood1, _) = share.enter(ip(9));
        let (_flood2, _) = share.enter(ip(9));
        let (_flood3, _) = share.enter(ip(9));
        let (_new, dropped) = share.enter(ip(9));
        assert_eq!(dropped, 1);
        assert!(flood1.is_shed() && !device.is_shed());
    }

    #[test]
    fn an_address_over_its_part_sheds_its_own_oldest() {
        // 127.0.0.1 floods: its own first connection goes, 127.0.0.2 stays.
        let share = Share::new(10, 2);
        let (other, _) = share.enter(ip(2));
        let (first, _) = share.enter(ip(1));
        let (_second, _) = share.enter(ip(1));
        let (_third, dropped) = share.enter(ip(1));
        assert_eq!(dropped, 1);
        assert!(first.is_shed());
        assert!(!other.is_shed());
    }

    #[test]
    fn leaving_makes_room() {
        // A login (drop) frees the place at once: nobody is shed.
        let share = Share::new(1, 1);
        let (a, _) = share.enter(ip(1));
        drop(a);
        let (b, dropped) = share.enter(ip(1));
        assert_eq!(dropped, 0);
        assert!(!b.is_shed());
    }

    #[test]
    fn header_names_the_client_later() {
        // Unknown while the PROXY header is awaited, counted for its
        // address once known.
        let share = Share::new(10, 1);
        let (old, _) = share.enter(ip(7));
        let (mut new, _) = share.enter(None);
        assert_eq!(new.set_client(key(7)), 1);
        assert!(old.is_shed() && !new.is_shed());
    }

    /// A probe of one end of a socket pair; bytes written to the other end
    /// (kept alive with it) are what the probe sees.
    fn probe(bytes: &[u8]) -> (Probe, std::os::unix::net::UnixStream) {
        use std::io::Write;
        let (mut far, near) = std::os::unix::net::UnixStream::pair().unwrap();
        far.write_all(bytes).unwrap();
        let fd = crate::sys::budget::FdBudget::new(10, 0).spare(1).unwrap();
        (Probe::new(near.into(), fd), far)
    }

    #[test]
    fn a_header_already_arrived_keeps_its_connection() {
        // Two awaiting their header: the older has its header in the socket
        // (its task has not run yet), the newer is silent. A third sheds the
        // silent one, not the older.
        let share = Share::new(2, 10);
        let (arrived, _a) = probe(b"\r\n\r\n\0\r\nQUIT\n");
        let (silent, _b) = probe(b"");
        let (device, _) = share.enter_with(None, Some(arrived));
        let (flood, _) = share.enter_with(None, Some(silent));
        let (_new, dropped) = share.enter(None);
        assert_eq!(dropped, 1);
        assert!(flood.is_shed() && !device.is_shed());
    }

    #[test]
    fn when_every_socket_has_bytes_the_oldest_goes() {
        let share = Share::new(2, 10);
        let (one, _a) = probe(b"x");
        let (two, _b) = probe(b"y");
        let (first, _) = share.enter_with(None, Some(one));
        let (second, _) = share.enter_with(None, Some(two));
        let _third = share.enter(None);
        assert!(first.is_shed() && !second.is_shed());
    }

    #[test]
    fn shed_wakes_the_waiter() {
        // The task racing `wait` learns of it.
        let share = Share::new(1, 1);
        let (a, _) = share.enter(None);
        let waiter = a.shed();
        let _b = share.enter(None);
        smol::block_on(waiter.wait());
    }
}
