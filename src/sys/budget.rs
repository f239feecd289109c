//! The open-file budget. A process may hold only so many descriptors (here
//! the hard limit is 20,000 and root cannot raise it). An idle session holds
//! one (its control socket); a transfer holds two more (data socket and
//! file, or passive listener then data socket). Sessions are admitted while
//! descriptors remain beyond a reserve kept for transfers; a transfer waits
//! for its two descriptors instead of failing with EMFILE. So a login storm
//! of 10,000 devices queues its uploads rather than losing them.

use event_listener::Event;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Descriptors one transfer holds besides the control socket.
pub const PER_TRANSFER: i64 = 2;

pub struct FdBudget {
    free: AtomicI64,
    /// Woken when descriptors come back.
    returned: Event,
    /// Descriptors that new sessions may not take, so that admitted sessions
    /// can always transfer.
    reserve: i64,
}

/// Descriptors taken from the budget; given back on drop.
pub struct FdPermit {
    budget: Arc<FdBudget>,
    count: i64,
}

impl Drop for FdPermit {
    fn drop(&mut self) {
        self.budget.free.fetch_add(self.count, Ordering::AcqRel);
        self.budget.returned.notify(usize::MAX);
    }
}

impl FdBudget {
    pub fn new(total: u64, reserve: u64) -> Arc<FdBudget> {
        Arc::new(FdBudget {
            free: AtomicI64::new(i64::try_from(total).unwrap_or(i64::MAX)),
            returned: Event::new(),
            reserve: i64::try_from(reserve).unwrap_or(i64::MAX),
        })
    }

    fn try_take(self: &Arc<Self>, count: i64, keep: i64) -> Option<FdPermit> {
        let mut free = self.free.load(Ordering::Acquire);
        loop {
            if free - count < keep {
                return None;
            }
            match self.free.compare_exchange_weak(
                free,
                free - count,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return Some(FdPermit {
                        budget: self.clone(),
                        count,
                    })
                }
                Err(now) => free = now,
            }
        }
    }

    /// One descriptor for a new session, or `None` when only the transfer
    /// reserve is left.
    pub fn session(self: &Arc<Self>) -> Option<FdPermit> {
        self.try_take(1, self.reserve)
    }

    /// One descriptor for a new session that displaces a waiting one (which
    /// is closing and gives its descriptor back): may dip into the reserve,
    /// by at most one per displaced connection.
    pub fn displacing(self: &Arc<Self>) -> Option<FdPermit> {
        self.try_take(1, 0)
    }

    /// `count` more descriptors for an optional aid (the socket probe of a
    /// connection awaiting its PROXY header), never taken from the
    /// reserve; `None` when they are not free now.
    pub fn spare(self: &Arc<Self>, count: i64) -> Option<FdPermit> {
        self.try_take(count, self.reserve)
    }

    /// Two descriptors for a transfer; waits until they are free. (Callers
    /// bound the wait with their own timeout.)
    pub async fn transfer(self: &Arc<Self>) -> FdPermit {
        loop {
            if let Some(permit) = self.try_take(PER_TRANSFER, 0) {
                return permit;
            }
            let listener = self.returned.listen();
            if let Some(permit) = self.try_take(PER_TRANSFER, 0) {
                return permit;
            }
            listener.await;
        }
    }

    #[cfg(test)]
    pub fn free(&self) -> i64 {
        self.free.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smol::future::FutureExt;
    use std::time::Duration;

    #[test]
    fn sessions_stop_at_the_reserve() {
        let budget = FdBudget::new(5, 2);
        let a = budget.session();
        let b = budget.session();
        let c = budget.session();
        assert!(a.is_some() && b.is_some() && c.is_some());
        assert!(
            budget.session().is_none(),
            "the reserve stays for transfers"
        );
        drop(a);
        assert!(budget.session().is_some());
    }

    #[test]
    fn transfer_waits_for_descriptors_instead_of_failing() {
        let budget = FdBudget::new(3, 0);
        let held = smol::block_on(budget.transfer());
        assert_eq!(budget.free(), 1);
        let waiting = smol::block_on(async { Some(budget.transfer().await) }.or(async {
            smol::Timer::after(Duration::from_millis(50)).await;
            None
        }));
        assert!(
            waiting.is_none(),
            "only one descriptor free: the transfer waits"
        );
        let budget2 = budget.clone();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            drop(held);
            drop(budget2);
        });
        let permit = smol::block_on(budget.transfer());
        releaser.join().unwrap();
        assert_eq!(permit.count, PER_TRANSFER);
    }

    #[test]
    fn permits_return_on_drop() {
        let budget = FdBudget::new(10, 0);
        {
            let _p = smol::block_on(budget.transfer());
            let _s = budget.session();
            assert_eq!(budget.free(), 7);
        }
        assert_eq!(budget.free(), 10);
    }
}
