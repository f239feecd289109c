//! The session's side of the transfer records (`transfer_log`,
//! ops/records.rs): what a transfer or a failed login was, written from
//! the one place each ends (`finish` in outcome.rs, `pass` in login.rs).

use super::Session;
use crate::ops::records::{Event, Record};
use crate::storage::jail::VirtualPath;
use std::time::Instant;

/// What an upload that landed left for its record: set by the transfer
/// just before it reports `Outcome::Done`, taken by `finish`. Boxed in the
/// session: it exists only between the two.
pub(super) struct Landed {
    /// The object key it was queued under (`None`: no S3 delivery).
    pub s3_key: Option<String>,
    pub crc64nvme: Option<u64>,
}

impl Session {
    /// The control connection's TLS version, as records name it.
    fn tls_version(&self) -> Option<&'static str> {
        let version = self.control.connection()?.protocol_version()?;
        Some(match version {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
            _ => "TLS",
        })
    }

    /// One transfer's record; nothing without `transfer_log`.
    pub(super) async fn record_transfer(
        &mut self,
        verb: &'static str,
        virt: &VirtualPath,
        started: Instant,
        bytes: u64,
        reply: u16,
    ) {
        let landed = self.landed.take();
        let Some(log) = self.shared.records.clone() else {
            return;
        };
        let record = Record {
            event: Event::Transfer,
            user: self.user_name(),
            client: self.client,
            verb: Some(verb),
            path: Some(virt.as_str()),
            bytes,
            ms: started.elapsed().as_millis() as u64,
            reply,
            s3_key: landed.as_ref().and_then(|l| l.s3_key.as_deref()),
            crc64nvme: landed.as_ref().and_then(|l| l.crc64nvme),
            tls: self.tls_version(),
            data_tls: self.security.data_private(),
        };
        log.write(&record).await;
    }

    /// A failed login's record (`name` as the client sent it).
    pub(super) async fn record_login_failure(&self, name: &str, reply: u16) {
        let Some(log) = self.shared.records.clone() else {
            return;
        };
        let record = Record {
            event: Event::LoginFailed,
            user: name,
            client: self.client,
            verb: None,
            path: None,
            bytes: 0,
            ms: 0,
            reply,
            s3_key: None,
            crc64nvme: None,
            tls: self.tls_version(),
            data_tls: false,
        };
        log.write(&record).await;
    }
}
