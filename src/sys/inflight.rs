//! Work in flight per client (`ClientKey`), bounded: a guard per piece of
//! work, the count dropping with it. Used for TLS handshakes
//! (`MAX_HANDSHAKES_PER_CLIENT`): a handshake costs a signature and, while
//! it waits, a buffer, so one client flooding them must not take the CPU
//! and memory every device's handshake needs.

use crate::sys::client::ClientKey;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub struct InFlight {
    limit: usize,
    counts: Arc<Mutex<HashMap<ClientKey, usize>>>,
}

/// One piece of work in flight; dropped, it is no longer counted.
pub struct Held {
    counts: Arc<Mutex<HashMap<ClientKey, usize>>>,
    key: ClientKey,
}

impl InFlight {
    pub fn new(limit: usize) -> InFlight {
        InFlight {
            limit: limit.max(1),
            counts: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Counts one more for `key`; `None` when it already holds `limit`.
    pub fn take(&self, key: ClientKey) -> Option<Held> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(key).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(Held {
            counts: self.counts.clone(),
            key,
        })
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_holds_at_most_the_limit_and_gets_it_back() {
        let inflight = InFlight::new(2);
        let a = ClientKey::new("192.0.2.1".parse().unwrap(), 64);
        let b = ClientKey::new("192.0.2.2".parse().unwrap(), 64);
        let one = inflight.take(a).unwrap();
        let _two = inflight.take(a).unwrap();
        assert!(inflight.take(a).is_none());
        assert!(inflight.take(b).is_some());
        drop(one);
        assert!(inflight.take(a).is_some());
    }
}
