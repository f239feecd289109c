//! How a transfer ended, and the one place that answers it: `finish`
//! counts the metrics, logs the transfer line, writes its record
//! (`transfer_log`) and sends the reply, once.

use super::errors::{self, During};
use super::Session;
use crate::data::active::DataError;
use crate::data::transfer::TransferError;
use crate::delivery::Refusal;
use crate::ops::metrics;
use crate::protocol::escape::Escaped;
use crate::protocol::reply::{Code, Reply};
use crate::storage::jail::VirtualPath;
use std::borrow::Cow;
use std::io;
use std::time::Instant;

/// A transfer that succeeded.
pub(super) struct Done {
    pub(super) bytes: u64,
    /// When an upload's last data byte arrived: the start of the
    /// `upload_ack_seconds` histogram, ended by the 226.
    pub(super) last_data_byte: Option<Instant>,
    /// An upload's CRC64NVME, for its transfer record.
    pub(super) crc64nvme: Option<u64>,
    /// The object key delivery queued an upload under (`None`: no S3).
    pub(super) s3_key: Option<String>,
}

/// Every way a transfer ends. The `u64` is the bytes that moved.
pub(super) enum Outcome {
    /// 226: the bytes moved; an upload is durable and delivery took it.
    Done(Done),
    /// 425: no descriptors free within `data_timeout`. Not counted.
    Busy,
    /// The upload's temporary could not be made (full disk, forbidden
    /// name): nothing was started. Not counted.
    NoTemporary(io::Error),
    /// 425: the data connection could not be opened. Not counted.
    NoDataConnection(DataError),
    /// ABOR (RFC 959 §4.1.3): 426 for the transfer, then 226.
    Aborted,
    /// The control connection closed (or sent garbage) during the
    /// transfer, or before an upload was placed: no reply; the session ends.
    ClientGone(u64),
    /// The server stops at once: 421; the session ends.
    Shutdown,
    /// The data connection, the disk or the size limit ended the transfer:
    /// 426, 451, 452, 550 or 552.
    Failed(TransferError),
    /// An upload could not be made durable (fsync or rename).
    NotDurable(u64, io::Error),
    /// Delivery did not take the upload.
    Refused(u64, Refusal),
    /// 521: the transfer would be unprotected under `tls = required`
    /// (RFC 4217 §9). Not counted.
    Unprotected,
    /// 425: the TLS handshake on the data connection failed. Not counted.
    DataTls(&'static str),
    /// 522: the data connection did not resume the control connection's
    /// TLS session (`tls_session_reuse = required`, in the user's section
    /// when `per_user`). Not counted.
    NotResumed { per_user: bool },
    /// Sending the 150 on the control connection failed: the session ends
    /// with the error, the transfer neither answered nor counted.
    ControlFailed(io::Error),
}

impl From<io::Error> for Outcome {
    fn from(e: io::Error) -> Outcome {
        Outcome::ControlFailed(e)
    }
}

impl From<crate::data::active::Refusal> for Outcome {
    fn from(refusal: crate::data::active::Refusal) -> Outcome {
        match refusal {
            crate::data::active::Refusal::Tls(why) => Outcome::DataTls(why),
            crate::data::active::Refusal::NotResumed { per_user } => {
                Outcome::NotResumed { per_user }
            }
        }
    }
}

impl Outcome {
    /// The reply, the bytes for the log, and whether it counts in the
    /// upload and download counters (a transfer that never started does not).
    fn reply(&self) -> (Code, Cow<'static, str>, u64, bool) {
        let (code, text): (Code, Cow<'static, str>) = match self {
            Outcome::Done(_) => (Code::ClosingDataConnection, "transfer complete".into()),
            Outcome::Busy => (
                Code::CantOpenDataConnection,
                "server busy (open-file limit), try again".into(),
            ),
            Outcome::NoTemporary(e) | Outcome::NotDurable(_, e) => {
                let (code, text) = errors::storage_reply(e, During::Transfer);
                (code, text.into())
            }
            Outcome::NoDataConnection(e) => (Code::CantOpenDataConnection, e.to_string().into()),
            Outcome::Aborted => (
                Code::ConnectionClosedTransferAborted,
                "transfer aborted".into(),
            ),
            // No reply: nobody listens. The log shows 426.
            Outcome::ClientGone(_) | Outcome::ControlFailed(_) => {
                (Code::ConnectionClosedTransferAborted, "".into())
            }
            Outcome::Shutdown => (
                Code::ServiceNotAvailable,
                "server shutting down, transfer aborted".into(),
            ),
            Outcome::Failed(e) => {
                let (code, text) = errors::transfer_reply(e);
                (code, text.into())
            }
            Outcome::Refused(_, refusal) => {
                let (code, text) = errors::refusal_reply(refusal);
                (code, text.into())
            }
            Outcome::Unprotected => (
                Code::DataProtectionRequired,
                "data connections must be protected: send PBSZ 0 and PROT P".into(),
            ),
            Outcome::DataTls(why) => (
                Code::CantOpenDataConnection,
                format!("TLS on the data connection failed: {why}").into(),
            ),
            Outcome::NotResumed { per_user } => (
                Code::NetworkProtocolNotSupported,
                format!(
                    "the data connection must resume the control connection's TLS session \
                     (tls_session_reuse = required {})",
                    if *per_user {
                        "in this user's section"
                    } else {
                        "on this server"
                    }
                )
                .into(),
            ),
        };
        let (bytes, counted) = match self {
            Outcome::Done(Done { bytes, .. })
            | Outcome::ClientGone(bytes)
            | Outcome::NotDurable(bytes, _)
            | Outcome::Refused(bytes, _) => (*bytes, true),
            Outcome::Aborted | Outcome::Shutdown | Outcome::Failed(_) => (0, true),
            Outcome::Busy
            | Outcome::NoTemporary(_)
            | Outcome::NoDataConnection(_)
            | Outcome::Unprotected
            | Outcome::DataTls(_)
            | Outcome::NotResumed { .. }
            | Outcome::ControlFailed(_) => (0, false),
        };
        (code, text, bytes, counted)
    }
}

impl Session {
    /// Answers a transfer's outcome: counts, logs, replies. Returns a
    /// reason when the session must end.
    pub(super) async fn finish(
        &mut self,
        verb: &'static str,
        virt: &VirtualPath,
        started: Instant,
        outcome: Outcome,
    ) -> io::Result<Option<String>> {
        if let Outcome::ControlFailed(e) = outcome {
            return Err(e);
        }
        let (code, text, bytes, counted) = outcome.reply();
        if counted {
            self.count_transfer(verb, matches!(outcome, Outcome::Done(_)));
        }
        match &outcome {
            Outcome::Failed(e) => {
                log::warn!(
                    "client={} {verb} {} failed: {e}",
                    self.client,
                    Escaped(virt.as_str())
                );
            }
            Outcome::NotDurable(_, e) => {
                log::error!(
                    "client={} {verb} {}: cannot make durable: {e}",
                    self.client,
                    Escaped(virt.as_str())
                );
            }
            _ => {}
        }
        log::info!(
            "transfer client={} user={} verb={verb} path={:?} bytes={bytes} ms={} reply={} protected={}",
            self.client,
            Escaped(self.user_name()),
            virt.as_str(),
            started.elapsed().as_millis(),
            code as u16,
            if self.security.data_private() { "yes" } else { "no" }
        );
        let landed = match &outcome {
            Outcome::Done(done) => (done.s3_key.as_deref(), done.crc64nvme),
            _ => (None, None),
        };
        self.record_transfer(verb, virt, started, (bytes, code as u16), landed)
            .await;
        match outcome {
            Outcome::ClientGone(_) => Ok(Some("client closed during transfer".into())),
            Outcome::Shutdown => {
                say!(self, code, "{text}")?;
                self.flush().await?;
                Ok(Some("shutdown during transfer".into()))
            }
            Outcome::Aborted => {
                say!(self, code, "{text}")?;
                say!(self, Code::ClosingDataConnection, "ABOR successful")?;
                Ok(None)
            }
            _ => {
                say!(self, code, "{text}")?;
                if let Outcome::Done(Done {
                    last_data_byte: Some(at),
                    ..
                }) = outcome
                {
                    self.metrics().upload_ack_seconds.record(at.elapsed());
                }
                Ok(None)
            }
        }
    }

    fn count_transfer(&self, verb: &str, ok: bool) {
        let m = self.metrics();
        let counter = match (verb, ok) {
            ("STOR" | "APPE" | "STOU", true) => &m.uploads_ok,
            ("STOR" | "APPE" | "STOU", false) => &m.uploads_failed,
            ("RETR", true) => &m.downloads_ok,
            ("RETR", false) => &m.downloads_failed,
            _ => return,
        };
        metrics::inc(counter);
    }
}
