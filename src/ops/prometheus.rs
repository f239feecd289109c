//! The Prometheus text exposition format (version 0.0.4) of the metrics:
//! `# HELP`, `# TYPE`, then `name value`, one metric per group. Pure: the
//! HTTP side is `health.rs`.

use crate::ops::metrics::{Kind, Sample};
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
