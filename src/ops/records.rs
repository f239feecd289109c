//! Transfer records (`transfer_log = PATH`): one JSON object per line for
//! every transfer that ended (session/outcome.rs, `finish`) and every
//! failed login (session/login.rs), so "did device 4711's file of 03:05
//! arrive?" has an answer after the instance is gone: the CloudWatch agent
//! ships the file to CloudWatch Logs.
//!
//! One writer thread owns the file. Sessions hand it rendered lines over a
//! bounded channel and wait when it is full (a burst slows down by the
//! time of a buffered write, no record is dropped). The thread writes
//! through a buffer and flushes whenever the channel is empty, so a burst
//! costs one write(2) per batch. At `TRANSFER_LOG_ROTATE_BYTES` the file is
//! renamed to `PATH.1` (replacing the previous one) and a new one begun:
//! the disk holds at most two files, and the agent, which follows a file
//! across a rename, reads the end of the old one before the new.

use crate::clock::Utc;
use crate::limits::{TRANSFER_LOG_QUEUE, TRANSFER_LOG_ROTATE_BYTES};
use crate::ops::json::push_string;
use crate::ops::metrics::{self, Metrics};
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// What kind of event a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Transfer,
    LoginFailed,
}

/// One record, before rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    pub event: Event,
    pub user: &'a str,
    pub client: SocketAddr,
    /// `STOR`, `RETR`, `LIST`, ...; `None` for a login.
    pub verb: Option<&'a str>,
    /// The path inside the home, with its leading `/`.
    pub path: Option<&'a str>,
    pub bytes: u64,
    pub ms: u64,
    pub reply: u16,
    /// The object key the upload was queued under.
    pub s3_key: Option<&'a str>,
    /// CRC64NVME of an upload, as S3 shows it (`ChecksumCRC64NVME`).
    pub crc64nvme: Option<u64>,
    /// The control connection's TLS version (`TLSv1.3`); `None`: plain.
    pub tls: Option<&'static str>,
    /// Whether the data connection was TLS (PROT P or implicit).
    pub data_tls: bool,
}

fn push_key(out: &mut String, key: &str) {
    out.push(',');
    push_string(out, key);
    out.push(':');
}

fn push_opt(out: &mut String, key: &str, value: Option<&str>) {
    push_key(out, key);
    match value {
        Some(v) => push_string(out, v),
        None => out.push_str("null"),
    }
}

/// `2026-12-07T11:00:00.123Z`.
pub fn timestamp(unix_ms: u64) -> String {
    let seconds = Utc::from_unix((unix_ms / 1000) as i64).iso8601();
    let (head, _) = seconds.split_at(seconds.len() - 1);
    format!("{head}.{:03}Z", unix_ms % 1000)
}

/// As S3 shows a CRC64NVME (`x-amz-checksum-crc64nvme`, the
/// `ChecksumCRC64NVME` of HeadObject): base64 of its 8 big-endian bytes.
fn crc64nvme_base64(crc: u64) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(crc.to_be_bytes())
}

/// One line, newline included. Pure.
pub fn render(r: &Record<'_>, unix_ms: u64, instance: &str) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("{\"time\":");
    push_string(&mut out, &timestamp(unix_ms));
    push_key(&mut out, "event");
    push_string(
        &mut out,
        match r.event {
            Event::Transfer => "transfer",
            Event::LoginFailed => "login_failed",
        },
    );
    push_opt(&mut out, "instance", Some(instance));
    push_opt(&mut out, "user", Some(r.user));
    push_opt(&mut out, "client", Some(&r.client.to_string()));
    push_opt(&mut out, "verb", r.verb);
    push_opt(&mut out, "path", r.path);
    let _ = write!(
        out,
        ",\"bytes\":{},\"ms\":{},\"reply\":{}",
        r.bytes, r.ms, r.reply
    );
    push_opt(&mut out, "s3_key", r.s3_key);
    let crc = r.crc64nvme.map(crc64nvme_base64);
    push_opt(&mut out, "crc64nvme", crc.as_deref());
    push_opt(&mut out, "tls", r.tls);
    let _ = write!(out, ",\"data_tls\":{}}}", r.data_tls);
    out.push('\n');
    out
}

/// The handle sessions write through.
pub struct TransferLog {
    lines: smol::channel::Sender<String>,
    instance: String,
}

impl TransferLog {
    /// Opens (appends to) `path` and starts the writer thread. A file that
    /// cannot be opened stops the start: records were asked for.
    /// Its directory is made if missing (as systemd's `LogsDirectory=`
    /// would).
    pub fn open(path: &Path, instance: String, metrics: Arc<Metrics>) -> io::Result<TransferLog> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                io::Error::new(e.kind(), format!("transfer_log {}: {e}", dir.display()))
            })?;
        }
        let file = open_append(path).map_err(|e| {
            io::Error::new(e.kind(), format!("transfer_log {}: {e}", path.display()))
        })?;
        let (lines, queue) = smol::channel::bounded(TRANSFER_LOG_QUEUE);
        let writer = Writer {
            size: file.metadata()?.len(),
            file: BufWriter::new(file),
            path: path.to_path_buf(),
            metrics,
        };
        std::thread::Builder::new()
            .name("lakeftpd-records".into())
            .spawn(move || writer.run(queue))?;
        Ok(TransferLog { lines, instance })
    }

    /// Renders and queues one record; waits while the queue is full.
    pub async fn write(&self, record: &Record<'_>) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        // Fails only once the writer thread is gone: nothing to do then.
        let _ = self.lines.send(render(record, now, &self.instance)).await;
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

struct Writer {
    file: BufWriter<File>,
    size: u64,
    path: PathBuf,
    metrics: Arc<Metrics>,
}

impl Writer {
    fn run(mut self, queue: smol::channel::Receiver<String>) {
        while let Ok(line) = queue.recv_blocking() {
            self.write(&line);
            // A burst: write what is queued, then flush once.
            while let Ok(line) = queue.try_recv() {
                self.write(&line);
            }
            if let Err(e) = self.file.flush() {
                log::error!("transfer_log {}: {e}", self.path.display());
            }
        }
    }

    fn write(&mut self, line: &str) {
        if self.size > 0 && self.size + line.len() as u64 > TRANSFER_LOG_ROTATE_BYTES {
            if let Err(e) = self.rotate() {
                log::error!("transfer_log {}: cannot rotate: {e}", self.path.display());
            }
        }
        match self.file.write_all(line.as_bytes()) {
            Ok(()) => {
                self.size += line.len() as u64;
                metrics::inc(&self.metrics.transfer_records);
            }
            Err(e) => {
                metrics::inc(&self.metrics.transfer_record_failures);
                log::error!("transfer_log {}: {e}", self.path.display());
            }
        }
    }

    /// PATH becomes PATH.1; a new PATH is begun.
    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        let mut old = self.path.clone().into_os_string();
        old.push(".1");
        std::fs::rename(&self.path, &old)?;
        self.file = BufWriter::new(open_append(&self.path)?);
        self.size = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload<'a>() -> Record<'a> {
        Record {
            event: Event::Transfer,
            user: "dev",
            client: "192.0.2.1:40000".parse().unwrap(),
            verb: Some("STOR"),
            path: Some("/LOG.CSV"),
            bytes: 1234,
            ms: 12,
            reply: 226,
            s3_key: Some("user=dev/dt=2026-12-07/LOG.CSV"),
            crc64nvme: Some(0),
            tls: Some("TLSv1.3"),
            data_tls: true,
        }
    }

    #[test]
    fn timestamp_has_milliseconds() {
        assert_eq!(timestamp(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(timestamp(5), "1970-01-01T00:00:00.005Z");
    }

    #[test]
    fn upload_record_layout() {
        assert_eq!(
            render(&upload(), 1_700_000_000_123, "i-0abc"),
            "{\"time\":\"2023-11-14T22:13:20.123Z\",\"event\":\"transfer\",\"instance\":\"i-0abc\",\
             \"user\":\"dev\",\"client\":\"192.0.2.1:40000\",\"verb\":\"STOR\",\"path\":\"/LOG.CSV\",\
             \"bytes\":1234,\"ms\":12,\"reply\":226,\"s3_key\":\"user=dev/dt=2026-12-07/LOG.CSV\",\
             \"crc64nvme\":\"AAAAAAAAAAA=\",\"tls\":\"TLSv1.3\",\"data_tls\":true}\n"
        );
    }

    #[test]
    fn login_failure_has_nulls_and_parses() {
        let r = Record {
            event: Event::LoginFailed,
            verb: None,
            path: None,
            bytes: 0,
            ms: 0,
            reply: 530,
            s3_key: None,
            crc64nvme: None,
            tls: None,
            data_tls: false,
            ..upload()
        };
        let line = render(&r, 0, "local");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["event"], "login_failed");
        assert!(v["path"].is_null() && v["s3_key"].is_null() && v["tls"].is_null());
        assert_eq!(v["reply"], 530);
    }

    #[test]
    fn a_hostile_path_stays_one_field_of_one_line() {
        let path = "/a\"b\\c\n{\"user\":\"root\"}\u{0}\u{2028}.csv";
        let r = Record {
            path: Some(path),
            ..upload()
        };
        let line = render(&r, 0, "i-1");
        assert_eq!(line.matches('\n').count(), 1);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["path"], path);
        assert_eq!(v["user"], "dev");
    }

    #[test]
    fn rotates_to_path_1_at_the_bound() {
        let dir = std::env::temp_dir().join(format!("lakeftpd-records-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.jsonl");
        let metrics = Arc::new(Metrics::default());
        let mut w = Writer {
            file: BufWriter::new(open_append(&path).unwrap()),
            size: TRANSFER_LOG_ROTATE_BYTES - 10,
            path: path.clone(),
            metrics: metrics.clone(),
        };
        w.write("0123456789abcdef\n");
        w.file.flush().unwrap();
        assert!(dir.join("t.jsonl.1").exists());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "0123456789abcdef\n"
        );
        assert_eq!(metrics::get(&metrics.transfer_records), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
