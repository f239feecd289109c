//! A certificate chain and its key, from PEM bytes to a checked `Pair`: the
//! same function serves `lakeftpd check`, the start and every reload, so a
//! pair the server would refuse is refused by `check` with the same words.
//!
//! Checked: the PEM holds at least one certificate and one key; every
//! certificate parses (x509-parser) and is valid now; the chain is in
//! order (each certificate issued by the next one, RFC 8446 §4.4.2 and
//! RFC 5246 §7.4.2: "the sender's certificate MUST come first"); the key
//! matches the first certificate (rustls `CertifiedKey::keys_match`).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use std::sync::Arc;
use x509_parser::prelude::{FromDer, X509Certificate};

/// A checked certificate chain with its key, ready for handshakes.
#[derive(Debug, Clone)]
pub struct Pair {
    pub key: Arc<CertifiedKey>,
    /// The end-entity certificate's notAfter, in Unix seconds.
    pub not_after: i64,
    /// The end-entity certificate's subject, for logs.
    pub subject: String,
}

impl Pair {
    /// Seconds from `now` until the end-entity certificate expires (0 once
    /// it has).
    pub fn seconds_left(&self, now: i64) -> u64 {
        u64::try_from(self.not_after.saturating_sub(now)).unwrap_or(0)
    }
}

/// Parses and checks a chain (`cert_pem`) and its key (`key_pem`) at Unix
/// time `now`. Returns every problem found, or the pair.
pub fn load(cert_pem: &[u8], key_pem: &[u8], now: i64) -> Result<Pair, Vec<String>> {
    let mut problems = Vec::new();
    let chain: Vec<CertificateDer<'static>> =
        match CertificateDer::pem_slice_iter(cert_pem).collect::<Result<Vec<_>, _>>() {
            Ok(chain) if chain.is_empty() => {
                return Err(vec!["tls_cert holds no PEM certificate".into()]);
            }
            Ok(chain) => chain,
            Err(e) => return Err(vec![format!("tls_cert is not valid PEM: {e}")]),
        };
    let key = match PrivateKeyDer::from_pem_slice(key_pem) {
        Ok(key) => Some(key),
        Err(e) => {
            problems.push(format!("tls_key holds no usable PEM private key: {e}"));
            None
        }
    };

    let mut not_after = 0;
    let mut subject = String::new();
    let mut previous_issuer: Option<(usize, String, String)> = None;
    for (index, der) in chain.iter().enumerate() {
        let n = index + 1;
        let cert = match X509Certificate::from_der(der.as_ref()) {
            Ok((_, cert)) => cert,
            Err(e) => {
                problems.push(format!("tls_cert: certificate {n} does not parse: {e}"));
                continue;
            }
        };
        let validity = cert.validity();
        let name = cert.subject().to_string();
        if index == 0 {
            not_after = validity.not_after.timestamp();
            subject = name.clone();
        }
        if validity.not_after.timestamp() < now {
            problems.push(format!(
                "tls_cert: certificate {n} ({name}) expired on {}",
                validity.not_after
            ));
        }
        if validity.not_before.timestamp() > now {
            problems.push(format!(
                "tls_cert: certificate {n} ({name}) is not valid before {}",
                validity.not_before
            ));
        }
        // Each certificate must be issued by the one after it.
        if let Some((earlier, issuer, earlier_name)) = previous_issuer.take() {
            if issuer != name {
                problems.push(format!(
                    "tls_cert: certificate {earlier} ({earlier_name}) is issued by {issuer}, \
                     but certificate {n} is {name}: put the server's certificate first, then each issuer in turn"
                ));
            }
        }
        previous_issuer = Some((n, cert.issuer().to_string(), name));
    }

    let certified = key.and_then(|key| {
        let provider = rustls::crypto::ring::default_provider();
        match CertifiedKey::from_der(chain.clone(), key, &provider) {
            Ok(certified) => Some(certified),
            Err(rustls::Error::InconsistentKeys(_)) => {
                problems.push("tls_key does not match the first certificate of tls_cert".into());
                None
            }
            Err(e) => {
                problems.push(format!("tls_key is not usable: {e}"));
                None
            }
        }
    });
    match certified {
        Some(certified) if problems.is_empty() => Ok(Pair {
            key: Arc::new(certified),
            not_after,
            subject,
        }),
        _ => Err(problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_certificate_in_the_text() {
        // A key file given as tls_cert, or an empty object.
        let problems = load(b"not pem at all", b"", 0).unwrap_err();
        assert!(problems[0].contains("no PEM certificate"), "{problems:?}");
    }

    #[test]
    fn garbage_inside_pem_armour() {
        // The armour is right but the DER inside is not a certificate.
        let pem = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let problems = load(pem, b"", 0).unwrap_err();
        assert!(
            problems.iter().any(|p| p.contains("does not parse")),
            "{problems:?}"
        );
    }
}
