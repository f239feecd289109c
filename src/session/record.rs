//! The session's side of the transfer records (`transfer_log`,
//! ops/records.rs): what a transfer or a failed login was, written from
//! the one place each ends (`finish` in outcome.rs, `pass` in login.rs).

use super::Session;
use crate::ops::records::{Event, Record};
use crate::storage::jail::VirtualPath;
use std::time::Instant;

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

    /// One transfer's record; nothing without `transfer_log`. `moved` is
    /// (bytes, reply code); `landed` an upload's (S3 key, CRC64NVME).
    pub(super) async fn record_transfer(
        &self,
        verb: &'static str,
        virt: &VirtualPath,
        started: Instant,
        moved: (u64, u16),
        landed: (Option<&str>, Option<u64>),
    ) {
        let Some(log) = self.shared.records.clone() else {
            return;
        };
        let record = Record {
            event: Event::Transfer,
            user: self.user_name(),
            client: self.client,
            verb: Some(verb),
            path: Some(virt.as_str()),
            bytes: moved.0,
            ms: started.elapsed().as_millis() as u64,
            reply: moved.1,
            s3_key: landed.0,
            crc64nvme: landed.1,
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
