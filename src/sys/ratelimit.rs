//! A budget of log lines per second for events an attacker can repeat at
//! will (failed TLS handshakes): past it, lines are counted instead of
//! written, and the next line written says how many were left out. A flood
//! of failures then costs a few lines a second, not megabytes.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct LogBudget {
    per_second: u32,
    state: Mutex<State>,
}

struct State {
    /// When the current second began (`None`: no line yet).
    since: Option<Instant>,
    written: u32,
    /// Lines left out since the last one written.
    suppressed: u64,
}

impl LogBudget {
    pub const fn new(per_second: u32) -> LogBudget {
        LogBudget {
            per_second,
            state: Mutex::new(State {
                since: None,
                written: 0,
                suppressed: 0,
            }),
        }
    }

    /// May a line be written now? `Some(n)`: yes, and `n` were left out
    /// before it; `None`: no (it is counted).
    pub fn admit(&self) -> Option<u64> {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = s
            .since
            .is_none_or(|since| now.saturating_duration_since(since) >= Duration::from_secs(1));
        if fresh {
            s.since = Some(now);
            s.written = 0;
        }
        if s.written >= self.per_second {
            s.suppressed += 1;
            return None;
        }
        s.written += 1;
        Some(std::mem::take(&mut s.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_past_the_budget_are_counted_and_reported() {
        // Three a second: the fourth and fifth are left out, and the first
        // line of the next second says so.
        let budget = LogBudget::new(3);
        let t = Instant::now();
        assert_eq!(budget.admit_at(t), Some(0));
        assert_eq!(budget.admit_at(t), Some(0));
        assert_eq!(budget.admit_at(t), Some(0));
        assert_eq!(budget.admit_at(t), None);
        assert_eq!(budget.admit_at(t), None);
        let later = t + Duration::from_secs(1);
        assert_eq!(budget.admit_at(later), Some(2));
        assert_eq!(budget.admit_at(later), Some(0));
    }
}
