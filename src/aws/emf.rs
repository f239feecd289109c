//! Metrics as CloudWatch Embedded Metric Format records (`metrics_emf`),
//! one JSON line every `metrics_interval`, sent to the CloudWatch agent
//! (`{"logs": {"metrics_collected": {"emf": {}}}}` listens on
//! 127.0.0.1:25888, TCP and UDP), which turns them into CloudWatch metrics
//! in the `lakeftpd` namespace with the instance id as dimension.
//!
//! Record layout (EMF specification): a root object with `_aws` holding
//! `Timestamp` (ms since the epoch) and `CloudWatchMetrics`, one directive
//! {Namespace, Dimensions: [["InstanceId"]], Metrics: [{Name, Unit}]}; then
//! the dimension value and one member per metric. Counters are sent as the
//! increase over the interval (so CloudWatch's Sum is meaningful), gauges
//! as their value now; `SessionsPerSecond`, `UploadsPerSecond` and
//! `ActiveConnectLatency` are derived per interval, and `ActiveSessionsPeak`
//! is the most sessions open at once within it. The scaling metrics
//! (`HIGH_RESOLUTION`) carry `StorageResolution: 1`. The root holds a
//! `Version` member (the build) beside the metrics. Each latency histogram gives `<Name>Latency`, the
//! interval's mean in ms, and `<Name>LatencyP99`, the upper bound of the
//! bucket holding its 99th percentile (omitted in an interval without
//! values).

use crate::config::EmfTarget;
use crate::limits::EMF_IO_TIMEOUT;
use crate::ops::metrics::Metrics;
use crate::ops::metrics::{HistogramSample, Kind, Sample};
use crate::sys::timeout;
use smol::io::AsyncWriteExt;
use smol::{Async, Timer};
use std::fmt::Write as _;
use std::io;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The namespace every metric is published in.
pub const NAMESPACE: &str = "lakeftpd";

/// The instance id used when none is known (not on EC2, or IMDS off).
pub const NO_INSTANCE_ID: &str = "local";

/// The CloudWatch name of a metric: CamelCase of its name, except where a
/// clearer name is published (the scaling metric is `ActiveSessions`).
/// `None`: not published as is (feeds a derived metric).
fn emf_name(name: &str) -> Option<String> {
    let fixed = match name {
        "sessions_now" => "ActiveSessions",
        "sessions_peak" => "ActiveSessionsPeak",
        "transfers_now" => "ActiveTransfers",
        "sessions_total" => "Sessions",
        "active_connect_micros" => return None,
        _ => "",
    };
    if !fixed.is_empty() {
        return Some(fixed.to_string());
    }
    let mut out = String::with_capacity(name.len());
    for word in name.split('_').filter(|w| !w.is_empty()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    Some(out)
}

/// Metrics stored at 1-second resolution (EMF `StorageResolution: 1`), so
/// that a 10-second record is kept as such and an alarm or a scaling policy
/// can act on 10-second periods: a fleet's devices connect for about a
/// second, in bursts on the clock, which a minute's average flattens.
const HIGH_RESOLUTION: &[&str] = &[
    "ActiveSessions",
    "ActiveSessionsPeak",
    "SessionsPerSecond",
    "UploadsPerSecond",
];

// The version in every record (a `Version` member, not a metric): which
// build an instance runs.
use crate::ops::VERSION;

fn unit(name: &str) -> &'static str {
    if name.starts_with("bytes_") || name.ends_with("_free_bytes") {
        "Bytes"
    } else if name.ends_with("_seconds") {
        "Seconds"
    } else {
        "Count"
    }
}

/// A JSON string literal (RFC 8259 §7).
fn json_string(s: &str) -> String {
    crate::ops::json::string(s)
}

/// The EMF name of a latency histogram: `upload_ack_seconds` is
/// `UploadAckLatency`.
fn latency_name(name: &str) -> String {
    let base = name.strip_suffix("_seconds").unwrap_or(name);
    emf_name(base).unwrap_or_default() + "Latency"
}

/// The derived latency values of the interval from `previous` to `now`
/// (the same histograms in the same order).
pub fn latencies(
    now: &[HistogramSample],
    previous: Option<&[HistogramSample]>,
) -> Vec<(String, &'static str, String)> {
    let mut values = Vec::new();
    for (i, h) in now.iter().enumerate() {
        let before = previous.and_then(|p| p.get(i));
        let count = h.count.saturating_sub(before.map_or(0, |b| b.count));
        let sum = h
            .sum_micros
            .saturating_sub(before.map_or(0, |b| b.sum_micros));
        if count == 0 {
            continue;
        }
        let name = latency_name(h.name);
        let mean_ms = sum as f64 / count as f64 / 1000.0;
        values.push((name.clone(), "Milliseconds", format!("{mean_ms:.3}")));
        if let Some(bound) = h.quantile_bound(before, 0.99).filter(|&b| b != u64::MAX) {
            let p99_ms = bound as f64 / 1000.0;
            values.push((name + "P99", "Milliseconds", format!("{p99_ms:.3}")));
        }
    }
    values
}

/// One EMF record for the interval from `previous` to `now` (the same
/// metrics in the same order; `None` at the first record: counters then
/// count from process start, when they were 0). Pure.
pub fn record(
    now: &[Sample],
    previous: Option<&[Sample]>,
    elapsed: Duration,
    instance_id: &str,
    group: Option<&str>,
    timestamp_ms: u64,
) -> String {
    record_with(
        now,
        previous,
        Vec::new(),
        elapsed,
        instance_id,
        group,
        timestamp_ms,
    )
}

/// `record` with derived values added (`latencies`).
pub fn record_with(
    now: &[Sample],
    previous: Option<&[Sample]>,
    derived: Vec<(String, &'static str, String)>,
    elapsed: Duration,
    instance_id: &str,
    group: Option<&str>,
    timestamp_ms: u64,
) -> String {
    let before = |i: usize| previous.and_then(|p| p.get(i)).map_or(0, |s| s.value);
    let mut values: Vec<(String, &'static str, String)> = Vec::new();
    let delta_of = |name: &str| -> u64 {
        now.iter()
            .position(|s| s.name == name)
            .map_or(0, |i| now[i].value.saturating_sub(before(i)))
    };
    let sessions = delta_of("sessions_total");
    let uploads = delta_of("uploads_ok");
    let connects = delta_of("active_connects");
    let connect_micros = delta_of("active_connect_micros");
    for (i, sample) in now.iter().enumerate() {
        let Some(name) = emf_name(sample.name) else {
            continue;
        };
        let value = match sample.kind {
            Kind::Gauge => sample.value,
            Kind::Counter => sample.value.saturating_sub(before(i)),
        };
        values.push((name, unit(sample.name), value.to_string()));
    }
    let seconds = elapsed.as_secs_f64().max(0.001);
    values.push((
        "SessionsPerSecond".into(),
        "Count/Second",
        format!("{:.3}", sessions as f64 / seconds),
    ));
    values.push((
        "UploadsPerSecond".into(),
        "Count/Second",
        format!("{:.3}", uploads as f64 / seconds),
    ));
    // Omitted in an interval without active connects: there is no latency
    // to report, and a 0 would drag averages down.
    if connects > 0 {
        values.push((
            "ActiveConnectLatency".into(),
            "Milliseconds",
            format!("{:.3}", connect_micros as f64 / connects as f64 / 1000.0),
        ));
    }
    values.extend(derived);

    let mut out = String::with_capacity(2048);
    let _ = write!(
        out,
        "{{\"_aws\":{{\"Timestamp\":{timestamp_ms},\"CloudWatchMetrics\":[{{\"Namespace\":{},\"Dimensions\":{},\"Metrics\":[",
        json_string(NAMESPACE),
        // Per instance, and (with `metrics_group`) per fleet: a scaling
        // policy reads the fleet's Average (docs/deploy-aws.md, "Scaling metric").
        if group.is_some() {
            "[[\"InstanceId\"],[\"Group\"]]"
        } else {
            "[[\"InstanceId\"]]"
        }
    );
    for (i, (name, unit, _)) in values.iter().enumerate() {
        let comma = if i == 0 { "" } else { "," };
        let resolution = if HIGH_RESOLUTION.contains(&name.as_str()) {
            ",\"StorageResolution\":1"
        } else {
            ""
        };
        let _ = write!(
            out,
            "{comma}{{\"Name\":\"{name}\",\"Unit\":\"{unit}\"{resolution}}}"
        );
    }
    let _ = write!(
        out,
        "]}}]}},\"Version\":{},\"InstanceId\":{}",
        json_string(VERSION),
        json_string(instance_id)
    );
    if let Some(group) = group {
        let _ = write!(out, ",\"Group\":{}", json_string(group));
    }
    for (name, _, value) in &values {
        let _ = write!(out, ",\"{name}\":{value}");
    }
    out.push_str("}\n");
    out
}

/// Sends a record every `metrics_interval` until the process ends. A
/// failed send is logged once per outage and retried at the next interval
/// (the record is dropped: the next one carries the counters on).
pub async fn run(
    metrics: Arc<Metrics>,
    target: EmfTarget,
    interval: Duration,
    group: Option<String>,
    instance_id: String,
) {
    let mut previous: Option<Vec<Sample>> = None;
    let mut previous_histograms: Option<Vec<HistogramSample>> = None;
    let mut last = Instant::now();
    let mut tcp: Option<Async<TcpStream>> = None;
    let mut failing = false;
    loop {
        Timer::after(interval).await;
        let peak = crate::ops::metrics::take_peak(&metrics);
        let mut now = metrics.snapshot();
        if let Some(sample) = now.iter_mut().find(|s| s.name == "sessions_peak") {
            sample.value = peak;
        }
        let histograms = metrics.histograms();
        let derived = latencies(&histograms, previous_histograms.as_deref());
        let timestamp_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let line = record_with(
            &now,
            previous.as_deref(),
            derived,
            last.elapsed(),
            &instance_id,
            group.as_deref(),
            timestamp_ms,
        );
        last = Instant::now();
        previous = Some(now);
        previous_histograms = Some(histograms);
        match send(target, &mut tcp, line.as_bytes()).await {
            Ok(()) if failing => {
                log::info!("metrics_emf: sending again");
                failing = false;
            }
            Ok(()) => {}
            Err(e) => {
                tcp = None;
                if !failing {
                    log::warn!("metrics_emf: cannot send to {target:?}: {e}");
                    failing = true;
                }
            }
        }
    }
}

async fn send(
    target: EmfTarget,
    tcp: &mut Option<Async<TcpStream>>,
    line: &[u8],
) -> io::Result<()> {
    match target {
        EmfTarget::Udp(addr) => {
            let bind: SocketAddr = if addr.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let socket = Async::<UdpSocket>::bind(bind)?;
            timeout::within(EMF_IO_TIMEOUT, socket.send_to(line, addr)).await?;
            Ok(())
        }
        EmfTarget::Tcp(addr) => {
            if tcp.is_none() {
                *tcp =
                    Some(timeout::within(EMF_IO_TIMEOUT, Async::<TcpStream>::connect(addr)).await?);
            }
            let mut stream = tcp.as_ref().expect("connected above");
            timeout::within(EMF_IO_TIMEOUT, stream.write_all(line)).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(name: &'static str, kind: Kind, value: u64) -> Sample {
        Sample {
            name,
            help: "",
            kind,
            value,
        }
    }

    #[test]
    fn names() {
        assert_eq!(emf_name("sessions_now").unwrap(), "ActiveSessions");
        assert_eq!(
            emf_name("port_refused_low_port").unwrap(),
            "PortRefusedLowPort"
        );
        assert_eq!(emf_name("active_connect_micros"), None);
    }

    #[test]
    fn json_string_escapes() {
        assert_eq!(json_string("i-0a\"\\\n"), "\"i-0a\\\"\\\\\\n\"");
    }

    #[test]
    fn record_layout() {
        let now = [
            s("sessions_now", Kind::Gauge, 4),
            s("bytes_in", Kind::Counter, 100),
        ];
        let line = record(
            &now,
            None,
            Duration::from_secs(60),
            "i-0abc",
            None,
            1_700_000_000_000,
        );
        assert_eq!(
            line,
            format!(
                "{{\"_aws\":{{\"Timestamp\":1700000000000,\"CloudWatchMetrics\":[{{\"Namespace\":\"lakeftpd\",\
                 \"Dimensions\":[[\"InstanceId\"]],\"Metrics\":[\
                 {{\"Name\":\"ActiveSessions\",\"Unit\":\"Count\",\"StorageResolution\":1}},\
                 {{\"Name\":\"BytesIn\",\"Unit\":\"Bytes\"}},\
                 {{\"Name\":\"SessionsPerSecond\",\"Unit\":\"Count/Second\",\"StorageResolution\":1}},\
                 {{\"Name\":\"UploadsPerSecond\",\"Unit\":\"Count/Second\",\"StorageResolution\":1}}]}}]}},\
                 \"Version\":\"{VERSION}\",\"InstanceId\":\"i-0abc\",\"ActiveSessions\":4,\"BytesIn\":100,\
                 \"SessionsPerSecond\":0.000,\"UploadsPerSecond\":0.000}}\n"
            )
        );
    }

    #[test]
    fn counters_are_deltas_and_gauges_are_values() {
        let before = [
            s("sessions_now", Kind::Gauge, 9),
            s("sessions_total", Kind::Counter, 100),
        ];
        let now = [
            s("sessions_now", Kind::Gauge, 4),
            s("sessions_total", Kind::Counter, 160),
        ];
        let line = record(
            &now,
            Some(&before),
            Duration::from_secs(60),
            "local",
            None,
            0,
        );
        assert!(line.contains("\"ActiveSessions\":4,"));
        assert!(line.contains("\"Sessions\":60,"));
        assert!(line.contains("\"SessionsPerSecond\":1.000,"));
    }

    #[test]
    fn uploads_per_second_and_the_peak_are_high_resolution() {
        let before = [
            s("sessions_peak", Kind::Gauge, 0),
            s("uploads_ok", Kind::Counter, 1000),
        ];
        let now = [
            s("sessions_peak", Kind::Gauge, 67),
            s("uploads_ok", Kind::Counter, 1500),
        ];
        let line = record(
            &now,
            Some(&before),
            Duration::from_secs(10),
            "local",
            None,
            0,
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["UploadsPerSecond"], 50.0);
        assert_eq!(v["ActiveSessionsPeak"], 67);
        assert_eq!(v["UploadsOk"], 500);
        let defs = v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap();
        let resolution = |name: &str| {
            defs.iter()
                .find(|d| d["Name"] == name)
                .map(|d| d["StorageResolution"].clone())
                .unwrap()
        };
        assert_eq!(resolution("ActiveSessionsPeak"), 1);
        assert_eq!(resolution("UploadsPerSecond"), 1);
        assert!(resolution("UploadsOk").is_null(), "standard resolution");
        assert_eq!(v["Version"], VERSION);
    }

    #[test]
    fn connect_latency_is_the_interval_mean_in_ms() {
        let before = [
            s("active_connects", Kind::Counter, 10),
            s("active_connect_micros", Kind::Counter, 1_000_000),
        ];
        let now = [
            s("active_connects", Kind::Counter, 14),
            s("active_connect_micros", Kind::Counter, 1_010_000),
        ];
        let line = record(
            &now,
            Some(&before),
            Duration::from_secs(60),
            "local",
            None,
            0,
        );
        assert!(line.contains("\"ActiveConnectLatency\":2.500"));
        assert!(line.contains("{\"Name\":\"ActiveConnectLatency\",\"Unit\":\"Milliseconds\"}"));
        assert!(!line.contains("ActiveConnectMicros"));
    }

    #[test]
    fn histogram_latency_is_the_interval_mean_and_p99_in_ms() {
        let h = crate::ops::metrics::Histogram::default();
        h.record(Duration::from_secs(100));
        let before = [h.sample("upload_ack_seconds", "")];
        h.record(Duration::from_millis(2));
        h.record(Duration::from_millis(4));
        let now = [h.sample("upload_ack_seconds", "")];
        let values = latencies(&now, Some(&before));
        let line = record_with(&[], None, values, Duration::from_secs(60), "x", None, 0);
        assert!(line.contains("\"UploadAckLatency\":3.000"), "{line}");
        assert!(line.contains("\"UploadAckLatencyP99\":5.000"), "{line}");
        assert!(line.contains("{\"Name\":\"UploadAckLatency\",\"Unit\":\"Milliseconds\"}"));
    }

    #[test]
    fn no_histogram_latency_in_an_interval_without_values() {
        let h = crate::ops::metrics::Histogram::default();
        h.record(Duration::from_millis(2));
        let s = [h.sample("ack_to_s3_seconds", "")];
        assert!(latencies(&s, Some(&s)).is_empty());
        assert_eq!(latencies(&s, None)[0].0, "AckToS3Latency");
    }

    #[test]
    fn no_latency_without_connects() {
        let now = [s("active_connects", Kind::Counter, 0)];
        assert!(!record(&now, None, Duration::from_secs(1), "x", None, 0).contains("Latency"));
    }

    #[test]
    fn every_real_metric_fits_one_directive() {
        // EMF: at most 100 metrics per directive.
        let samples = crate::ops::metrics::Metrics::default().snapshot();
        let line = record(&samples, None, Duration::from_secs(60), "local", None, 0);
        assert!(line.matches("\"Name\":").count() <= 100);
        assert!(line.ends_with("}\n") && !line[..line.len() - 1].contains('\n'));
    }
}

#[cfg(test)]
mod group_tests {
    use super::*;
    use crate::ops::metrics::{Kind, Sample};

    #[test]
    fn group_adds_a_fleet_dimension() {
        let now = [Sample {
            name: "sessions_now",
            help: "",
            kind: Kind::Gauge,
            value: 7,
        }];
        let line = record(
            &now,
            None,
            Duration::from_secs(60),
            "i-1",
            Some("lakeftpd-prod"),
            0,
        );
        assert!(
            line.contains("\"Dimensions\":[[\"InstanceId\"],[\"Group\"]]"),
            "{line}"
        );
        assert!(line.contains("\"Group\":\"lakeftpd-prod\""), "{line}");
        assert!(line.contains("\"ActiveSessions\":7"), "{line}");
    }
}
