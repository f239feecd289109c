//! The Prometheus text exposition format (version 0.0.4) of the metrics:
//! `# HELP`, `# TYPE`, then `name value`, one metric per group. Pure: the
//! HTTP side is `health.rs`.

use crate::limits::LATENCY_BUCKETS_MICROS;
use crate::ops::metrics::{HistogramSample, Kind, Sample};
use std::fmt::Write as _;

/// The Content-Type Prometheus expects for this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every name is prefixed, so lakeftpd's metrics group together.
const PREFIX: &str = "lakeftpd_";

/// The exposed name: prefixed, and counters end in `_total` (the naming
/// convention; OpenMetrics requires it).
pub fn name(sample: &Sample) -> String {
    let mut name = format!("{PREFIX}{}", sample.name);
    if sample.kind == Kind::Counter && !name.ends_with("_total") {
        name.push_str("_total");
    }
    name
}

/// HELP text escaping: backslash and line feed (the format's only escapes
/// in HELP lines). Doc comments arrive with a leading space per line.
fn help(text: &str) -> String {
    text.trim().replace('\\', "\\\\").replace('\n', "\\n")
}

pub fn render(samples: &[Sample]) -> String {
    let mut out = String::new();
    for sample in samples {
        let name = name(sample);
        let kind = match sample.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        // Writing to a String cannot fail.
        let _ = writeln!(out, "# HELP {name} {}", help(sample.help));
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name} {}", sample.value);
    }
    out
}

/// `lakeftpd_build_info{version="..."} 1`: the build as a label, the
/// usual form (a constant 1, so `max by (version)` shows what runs where).
pub fn build_info(version: &str) -> String {
    format!(
        "# HELP {PREFIX}build_info The running build (label version).\n\
         # TYPE {PREFIX}build_info gauge\n\
         {PREFIX}build_info{{version=\"{}\"}} 1\n",
        version.replace('\\', "\\\\").replace('"', "\\\"")
    )
}

/// Microseconds as seconds, the unit Prometheus histograms use, with no
/// trailing zeros (`0.0025`, `1`, `120`).
fn seconds(micros: u64) -> String {
    let text = format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Histograms: `_bucket{le="..."}` lines with cumulative counts, `+Inf`
/// last, then `_sum` (seconds) and `_count`.
pub fn render_histograms(histograms: &[HistogramSample]) -> String {
    let mut out = String::new();
    for h in histograms {
        let name = format!("{PREFIX}{}", h.name);
        let _ = writeln!(out, "# HELP {name} {}", help(h.help));
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (bound, count) in LATENCY_BUCKETS_MICROS.iter().zip(&h.cumulative) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{}\"}} {count}", seconds(*bound));
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(out, "{name}_sum {}", seconds(h.sum_micros));
        let _ = writeln!(out, "{name}_count {}", h.count);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_info_is_a_labelled_constant() {
        assert_eq!(
            build_info("0.1.0"),
            "# HELP lakeftpd_build_info The running build (label version).\n\
             # TYPE lakeftpd_build_info gauge\n\
             lakeftpd_build_info{version=\"0.1.0\"} 1\n"
        );
    }

    fn sample(name: &'static str, help: &'static str, kind: Kind, value: u64) -> Sample {
        Sample {
            name,
            help,
            kind,
            value,
        }
    }

    #[test]
    fn gauge_keeps_its_name() {
        let out = render(&[sample(
            "sessions_now",
            " Sessions open now.",
            Kind::Gauge,
            3,
        )]);
        assert_eq!(
            out,
            "# HELP lakeftpd_sessions_now Sessions open now.\n\
             # TYPE lakeftpd_sessions_now gauge\n\
             lakeftpd_sessions_now 3\n"
        );
    }

    #[test]
    fn counter_gets_total_suffix() {
        let out = render(&[sample("bytes_in", " Bytes.", Kind::Counter, 10)]);
        assert!(out.contains("# TYPE lakeftpd_bytes_in_total counter\n"));
        assert!(out.contains("\nlakeftpd_bytes_in_total 10\n"));
    }

    #[test]
    fn counter_already_ending_in_total_is_not_doubled() {
        let s = sample("sessions_total", " x", Kind::Counter, 1);
        assert_eq!(name(&s), "lakeftpd_sessions_total");
    }

    #[test]
    fn help_escapes_backslash_and_newline() {
        let out = render(&[sample("x", " a\\b\nc", Kind::Gauge, 0)]);
        assert!(out.starts_with("# HELP lakeftpd_x a\\\\b\\nc\n"));
    }

    #[test]
    fn every_real_metric_renders_three_lines() {
        let m = crate::ops::metrics::Metrics::default();
        let samples = m.snapshot();
        let out = render(&samples);
        assert_eq!(out.lines().count(), samples.len() * 3);
        assert!(out.contains("lakeftpd_port_refused_foreign_address_total 0"));
    }

    #[test]
    fn seconds_drop_trailing_zeros() {
        assert_eq!(seconds(2_500), "0.0025");
        assert_eq!(seconds(120_000_000), "120");
        assert_eq!(seconds(0), "0");
    }

    #[test]
    fn histogram_renders_buckets_sum_and_count() {
        let h = crate::ops::metrics::Histogram::default();
        h.record(std::time::Duration::from_millis(3));
        let out = render_histograms(&[h.sample("upload_ack_seconds", " Latency.")]);
        assert!(out.starts_with(
            "# HELP lakeftpd_upload_ack_seconds Latency.\n# TYPE lakeftpd_upload_ack_seconds histogram\n"
        ));
        assert!(out.contains("\nlakeftpd_upload_ack_seconds_bucket{le=\"0.0025\"} 0\n"));
        assert!(out.contains("\nlakeftpd_upload_ack_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(out.contains("\nlakeftpd_upload_ack_seconds_bucket{le=\"+Inf\"} 1\n"));
        assert!(out.contains("\nlakeftpd_upload_ack_seconds_sum 0.003\n"));
        assert!(out.ends_with("\nlakeftpd_upload_ack_seconds_count 1\n"));
        assert_eq!(
            out.lines().count(),
            2 + LATENCY_BUCKETS_MICROS.len() + 1 + 2
        );
    }
}
