//! Latency histograms with fixed buckets (`limits::LATENCY_BUCKETS_MICROS`):
//! one relaxed atomic per bucket plus the sum and count, so recording a
//! value is a few adds and never allocates. Read as cumulative counts, the
//! shape Prometheus histograms (`_bucket{le=..}`, `_sum`, `_count`) and the
//! EMF percentiles need.

use crate::limits::LATENCY_BUCKETS_MICROS;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const BUCKETS: usize = LATENCY_BUCKETS_MICROS.len();

#[derive(Default, Debug)]
pub struct Histogram {
    /// Values at most `LATENCY_BUCKETS_MICROS[i]` (and above the bound
    /// before); the last slot holds the rest (`+Inf`).
    buckets: [AtomicU64; BUCKETS + 1],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

/// One histogram at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramSample {
    pub name: &'static str,
    pub help: &'static str,
    /// Cumulative counts: `cumulative[i]` values were at most
    /// `LATENCY_BUCKETS_MICROS[i]`; the last is every value (`+Inf`).
    pub cumulative: [u64; BUCKETS + 1],
    pub sum_micros: u64,
    pub count: u64,
}

/// Which bucket a value falls in (the first bound not below it).
fn bucket_of(micros: u64) -> usize {
    LATENCY_BUCKETS_MICROS
        .iter()
        .position(|&bound| micros <= bound)
        .unwrap_or(BUCKETS)
}

impl Histogram {
    pub fn record(&self, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.buckets[bucket_of(micros)].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn sample(&self, name: &'static str, help: &'static str) -> HistogramSample {
        let mut cumulative = [0; BUCKETS + 1];
        let mut total = 0;
        for (slot, bucket) in cumulative.iter_mut().zip(&self.buckets) {
            total += bucket.load(Ordering::Relaxed);
            *slot = total;
        }
        // Read after the buckets: a value recorded meanwhile may make the
        // count a little larger than +Inf, never smaller; report +Inf as
        // the count so the exposition stays consistent.
        let sum_micros = self.sum_micros.load(Ordering::Relaxed);
        HistogramSample {
            name,
            help,
            cumulative,
            sum_micros,
            count: total,
        }
    }
}

impl HistogramSample {
    /// The upper bound (µs) of the bucket holding the `q` quantile of the
    /// values counted between `before` and `self` (the same histogram
    /// earlier; `None`: since start). `None` without values, `u64::MAX`
    /// when it is past the last bound.
    pub fn quantile_bound(&self, before: Option<&HistogramSample>, q: f64) -> Option<u64> {
        let earlier = |i: usize| before.map_or(0, |b| b.cumulative[i]);
        let count = self.cumulative[BUCKETS].saturating_sub(earlier(BUCKETS));
        if count == 0 {
            return None;
        }
        let rank = ((count as f64) * q).ceil().max(1.0) as u64;
        (0..BUCKETS)
            .find(|&i| self.cumulative[i].saturating_sub(earlier(i)) >= rank)
            .map(|i| LATENCY_BUCKETS_MICROS[i])
            .or(Some(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_value_on_a_bound_is_in_that_bucket() {
        // Prometheus `le`: less than or equal.
        assert_eq!(bucket_of(1_000), 0);
    }

    #[test]
    fn a_value_past_the_last_bound_is_in_inf() {
        assert_eq!(bucket_of(u64::MAX), BUCKETS);
    }

    #[test]
    fn zero_is_in_the_first_bucket() {
        assert_eq!(bucket_of(0), 0);
    }

    #[test]
    fn sample_is_cumulative_with_sum_and_count() {
        let h = Histogram::default();
        h.record(ms(1));
        h.record(ms(3));
        h.record(ms(200_000));
        let s = h.sample("x", "");
        assert_eq!(s.cumulative[0], 1, "1 ms <= 1 ms");
        assert_eq!(s.cumulative[2], 2, "3 ms <= 5 ms");
        assert_eq!(s.cumulative[BUCKETS - 1], 2, "200 s is past 120 s");
        assert_eq!(s.cumulative[BUCKETS], 3);
        assert_eq!(s.count, 3);
        assert_eq!(s.sum_micros, 1_000 + 3_000 + 200_000_000);
    }

    #[test]
    fn quantile_of_the_interval_only() {
        let h = Histogram::default();
        for _ in 0..10 {
            h.record(ms(400));
        }
        let before = h.sample("x", "");
        for _ in 0..99 {
            h.record(ms(2));
        }
        h.record(ms(20));
        let now = h.sample("x", "");
        assert_eq!(now.quantile_bound(Some(&before), 0.5), Some(2_500));
        assert_eq!(now.quantile_bound(Some(&before), 0.99), Some(2_500));
        assert_eq!(now.quantile_bound(Some(&before), 1.0), Some(25_000));
        assert_eq!(now.quantile_bound(None, 1.0), Some(500_000));
    }

    #[test]
    fn no_quantile_without_values() {
        let s = Histogram::default().sample("x", "");
        assert_eq!(s.quantile_bound(None, 0.99), None);
    }
}
