//! Why a TLS handshake failed: the reason counted in the metrics
//! (`tls_handshakes_failed_{version,cipher,certificate,timeout,other}`),
//! and the log line that tells an operator what the device offered,
//! rate-limited so a scan of the port cannot flood the log.

use super::hello::Offered;
use crate::limits;
use crate::ops::metrics::Metrics;
use crate::sys::ratelimit::LogBudget;
use std::io;
use std::net::SocketAddr;

/// A failed handshake.
pub struct HandshakeError {
    pub failure: Failure,
    pub error: io::Error,
    /// What the ClientHello offered, when one arrived.
    pub offered: Option<Offered>,
}

impl HandshakeError {
    /// Classifies `error`; a client that offered neither TLS 1.2 nor 1.3
    /// is a version failure, whatever alert ended the handshake.
    pub fn new(error: io::Error, offered: Option<Offered>) -> HandshakeError {
        let failure = match offered {
            Some(o) if o.only_old() && error.kind() != io::ErrorKind::TimedOut => Failure::Version,
            _ => Failure::of(&error),
        };
        HandshakeError {
            failure,
            error,
            offered,
        }
    }
}

/// Why a handshake failed, as counted in the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No protocol version in common (a TLS 1.0/1.1-only client, or TLS
    /// 1.2 under `tls_min_version = 1.3`).
    Version,
    /// No cipher suite, key exchange group or signature scheme in common.
    Cipher,
    /// The client refused our certificate (an alert such as bad_certificate
    /// or unknown_ca: expired, wrong name, or a CA it does not trust).
    Certificate,
    Timeout,
    /// Anything else: not TLS at all, a reset, a protocol error.
    Other,
}

impl Failure {
    /// Classifies the error a handshake ended with.
    pub fn of(e: &io::Error) -> Failure {
        use rustls::{AlertDescription as A, Error as E, PeerIncompatible as P};
        if e.kind() == io::ErrorKind::TimedOut {
            return Failure::Timeout;
        }
        let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<E>()) else {
            return Failure::Other;
        };
        match tls {
            E::PeerIncompatible(
                P::NoCipherSuitesInCommon | P::NoKxGroupsInCommon | P::NoSignatureSchemesInCommon,
            ) => Failure::Cipher,
            E::PeerIncompatible(
                P::Tls12NotOffered
                | P::Tls12NotOfferedOrEnabled
                | P::SupportedVersionsExtensionRequired
                | P::ServerDoesNotSupportTls12Or13
                | P::ServerTlsVersionIsDisabledByOurConfig,
            ) => Failure::Version,
            E::AlertReceived(A::ProtocolVersion) => Failure::Version,
            E::AlertReceived(A::HandshakeFailure | A::InsufficientSecurity) => Failure::Cipher,
            E::AlertReceived(
                A::BadCertificate
                | A::UnsupportedCertificate
                | A::CertificateRevoked
                | A::CertificateExpired
                | A::CertificateUnknown
                | A::UnknownCA,
            ) => Failure::Certificate,
            _ => Failure::Other,
        }
    }

    pub(super) fn counter(self, m: &Metrics) -> &std::sync::atomic::AtomicU64 {
        match self {
            Failure::Version => &m.tls_handshakes_failed_version,
            Failure::Cipher => &m.tls_handshakes_failed_cipher,
            Failure::Certificate => &m.tls_handshakes_failed_certificate,
            Failure::Timeout => &m.tls_handshakes_failed_timeout,
            Failure::Other => &m.tls_handshakes_failed_other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Version => "no protocol version in common",
            Failure::Cipher => "no cipher suite in common",
            Failure::Certificate => "the client refused the certificate",
            Failure::Timeout => "handshake timeout",
            Failure::Other => "handshake failed",
        }
    }
}

/// Logs handshake failures within a budget of `TLS_FAILURE_LOG_PER_SECOND`
/// lines a second (an attacker repeats them at will); the next line
/// written after some were left out says how many.
pub struct FailureLog {
    budget: LogBudget,
}

impl Default for FailureLog {
    fn default() -> FailureLog {
        FailureLog {
            budget: LogBudget::new(limits::TLS_FAILURE_LOG_PER_SECOND),
        }
    }
}

impl FailureLog {
    /// Logs that the handshake on `client`'s `connection` (control, data,
    /// implicit) failed, unless the budget is used up.
    pub fn log(&self, client: SocketAddr, connection: &str, e: &HandshakeError) {
        let Some(left_out) = self.budget.admit() else {
            return;
        };
        let offered = match e.offered {
            Some(o) => o.to_string(),
            None => "no ClientHello".into(),
        };
        let more = if left_out > 0 {
            format!(" ({left_out} failed handshakes before this one not logged)")
        } else {
            String::new()
        };
        log::warn!(
            "client={client} TLS handshake on the {connection} connection failed ({}; versions offered: {offered}): {}{more}",
            e.failure.as_str(),
            e.error
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls_error(e: rustls::Error) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }

    #[test]
    fn timeout_is_its_own_reason() {
        let e = io::Error::from(io::ErrorKind::TimedOut);
        assert_eq!(Failure::of(&e), Failure::Timeout);
    }

    #[test]
    fn no_shared_cipher() {
        let e = tls_error(rustls::PeerIncompatible::NoCipherSuitesInCommon.into());
        assert_eq!(Failure::of(&e), Failure::Cipher);
    }

    #[test]
    fn old_client_is_a_version_failure() {
        // A TLS 1.0/1.1-only client sends no supported_versions with 1.2+.
        let e = tls_error(rustls::PeerIncompatible::Tls12NotOfferedOrEnabled.into());
        assert_eq!(Failure::of(&e), Failure::Version);
    }

    #[test]
    fn client_refusing_our_certificate() {
        let e = tls_error(rustls::Error::AlertReceived(
            rustls::AlertDescription::UnknownCA,
        ));
        assert_eq!(Failure::of(&e), Failure::Certificate);
    }

    #[test]
    fn plain_text_on_the_tls_port_is_other() {
        let e = tls_error(rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType,
        ));
        assert_eq!(Failure::of(&e), Failure::Other);
    }

    #[test]
    fn tls10_hello_is_a_version_failure_whatever_the_alert() {
        // rustls refuses a TLS 1.0 hello for its missing signature_algorithms.
        let e = tls_error(rustls::PeerIncompatible::SignatureAlgorithmsExtensionRequired.into());
        assert_eq!(Failure::of(&e), Failure::Other);
        let old = Offered::parse(&[22, 3, 1, 0, 45, 1, 0, 0, 41, 3, 1]).unwrap();
        assert_eq!(HandshakeError::new(e, Some(old)).failure, Failure::Version);
    }
}
