//! The delivery queue's schedule, without I/O, threads or a clock: which
//! file runs next, when the next one is due, and the pause after S3's
//! SlowDown. `now` is always given, so the tests run without waiting (like
//! ntpd-rs's sources, which return actions and leave the I/O to the daemon).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// A queued item, known by an id that sorts by upload time (spool ids do).
pub trait Queued {
    fn id(&self) -> &str;
}

/// What a delivery thread does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Action<J> {
    /// Deliver this one now.
    Run(J),
    /// Nothing is due: the next one is due at this time.
    Wait(Instant),
    /// S3 asked to slow down: nothing starts before this time.
    Pause(Instant),
    /// Nothing queued.
    Idle,
}

/// Items by the time they may run; every item not yet delivered (waiting
/// or being delivered) by id.
pub struct Schedule<J> {
    /// By due time, then by the order they were added.
    waiting: BTreeMap<(Instant, u64), J>,
    added: u64,
    pending: BTreeSet<String>,
    /// After a SlowDown, no attempt starts before this.
    paused_until: Option<Instant>,
}

impl<J> Default for Schedule<J> {
    fn default() -> Schedule<J> {
        Schedule {
            waiting: BTreeMap::new(),
            added: 0,
            pending: BTreeSet::new(),
            paused_until: None,
        }
    }
}

impl<J: Queued> Schedule<J> {
    /// Queues `item` to run at `at`.
    pub fn add(&mut self, item: J, at: Instant) {
        self.added += 1;
        self.pending.insert(item.id().to_string());
        self.waiting.insert((at, self.added), item);
    }

    /// What to do at `now`: the first item due, unless paused.
    pub fn next(&mut self, now: Instant) -> Action<J> {
        if let Some(until) = self.paused_until.filter(|until| *until > now) {
            return Action::Pause(until);
        }
        let Some(entry) = self.waiting.first_entry() else {
            return Action::Idle;
        };
        let (at, _) = *entry.key();
        if at > now {
            return Action::Wait(at);
        }
        Action::Run(entry.remove())
    }

    /// A failed attempt: `item` runs again after `delay`; with a SlowDown
    /// (`pause`), nothing starts before `now + pause` (a longer pause
    /// already set stays).
    pub fn retry(&mut self, item: J, now: Instant, delay: Duration, pause: Option<Duration>) {
        if let Some(pause) = pause {
            let until = now + pause;
            self.paused_until = Some(self.paused_until.map_or(until, |t| t.max(until)));
        }
        self.add(item, now + delay);
    }

    /// `id` left the queue: delivered, or given up.
    pub fn done(&mut self, id: &str) {
        self.pending.remove(id);
    }

    /// Items not yet delivered, waiting or being delivered.
    pub fn depth(&self) -> usize {
        self.pending.len()
    }

    /// The oldest item not yet delivered.
    pub fn oldest(&self) -> Option<&str> {
        self.pending.first().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Eq)]
    struct Item(&'static str);

    impl Queued for Item {
        fn id(&self) -> &str {
            self.0
        }
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn nothing_queued_is_idle() {
        let mut s = Schedule::<Item>::default();
        assert_eq!(s.next(Instant::now()), Action::Idle);
        assert_eq!(s.depth(), 0);
    }

    #[test]
    fn an_item_due_now_runs_now() {
        let (mut s, t0) = (Schedule::default(), Instant::now());
        s.add(Item("1"), t0);
        assert_eq!(s.next(t0), Action::Run(Item("1")));
        assert_eq!(s.next(t0), Action::Idle);
    }

    #[test]
    fn a_later_item_waits_for_its_time() {
        let (mut s, t0) = (Schedule::default(), Instant::now());
        s.add(Item("1"), t0 + secs(5));
        assert_eq!(s.next(t0), Action::Wait(t0 + secs(5)));
        assert_eq!(s.next(t0 + secs(4)), Action::Wait(t0 + secs(5)));
        assert_eq!(s.next(t0 + secs(5)), Action::Run(Item("1")));
    }

    #[test]
    fn items_due_together_run_in_the_order_added() {
        let (mut s, t0) = (Schedule::default(), Instant::now());
        s.add(Item("b"), t0);
        s.add(Item("a"), t0);
        s.add(Item("c"), t0 - secs(1));
        assert_eq!(s.next(t0), Action::Run(Item("c")));
        assert_eq!(s.next(t0), Action::Run(Item("b")));
        assert_eq!(s.next(t0), Action::Run(Item("a")));
    }

    #[test]
    fn an_item_being_delivered_still_counts_until_done() {
        let (mut s, t0) = (Schedule::default(), Instant::now());
        s.add(Item("1"), t0);
        let Action::Run(item) = s.next(t0) else {
            panic!("due")
        };
        assert_eq!((s.depth(), s.oldest()), (1, Some("1")));
        s.done(item.id());
        assert_eq!((s.depth(), s.oldest()), (0, None));
    }

    #[test]
    fn a_retry_runs_after_its_delay_and_counts_once() {
        let (mut s, t0) = (Schedule::default(), Instant::now());
        s.add(Item("1"), t0);
        let Action::Run(item) = s.next(t0) else {
            panic!("due")
        };
        s.retry(item, t0, secs(2), None);
        assert_eq!(s.depth(), 1);
        assert_eq!(s.next(t0 + secs(1)), Action::Wait(t0 + secs(2)));
        assert_eq!(s.next(t0 + secs(2)), Action::Run(Item("1")));
    }

    #[test]
    fn a_slow_down_pauses_every_item() {
        let (mut s, t0) = (Schedule::default(), Instant::now());
        s.add(Item("1"), t0);
        s.add(Item("2"), t0);
        let Action::Run(item) = s.next(t0) else {
            panic!("due")
        };
        s.retry(item, t0, secs(1), Some(secs(10)));
        // "2" is due, but S3 said slow down.
        assert_eq!(s.next(t0 + secs(1)), Action::Pause(t0 + secs(10)));
        assert_eq!(s.next(t0 + secs(10)), Action::Run(Item("2")));
        assert_eq!(s.next(t0 + secs(10)), Action::Run(Item("1")));
    }

    #[test]
    fn a_shorter_slow_down_keeps_the_longer_pause() {
        let (mut s, t0) = (Schedule::default(), Instant::now());
        s.add(Item("1"), t0);
        s.add(Item("2"), t0);
        let Action::Run(one) = s.next(t0) else {
            panic!("due")
        };
        let Action::Run(two) = s.next(t0) else {
            panic!("due")
        };
        s.retry(one, t0, secs(0), Some(secs(30)));
        s.retry(two, t0, secs(0), Some(secs(5)));
        assert_eq!(s.next(t0 + secs(6)), Action::Pause(t0 + secs(30)));
    }

    #[test]
    fn the_oldest_is_the_smallest_id() {
        let (mut s, t0) = (Schedule::default(), Instant::now());
        s.add(Item("200-b"), t0);
        s.add(Item("100-a"), t0 + secs(9));
        assert_eq!(s.oldest(), Some("100-a"));
    }
}
