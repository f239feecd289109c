//! Which control session a data connection's TLS handshake resumed.
//!
//! Every handshake stores its control session's `Tag` in the session it
//! creates (`set_resumption_data`): in TLS 1.3 tickets, TLS 1.2 tickets
//! (RFC 5077) and TLS 1.2 session-id cache entries (RFC 5246 §7.4.1.2)
//! alike, because rustls puts it in the `ServerSessionValue` it encrypts or
//! caches. On resumption rustls hands it back only on the TLS 1.3 path
//! (`received_resumption_data`). For TLS 1.2, a data handshake runs with a
//! `Witness` as its ticketer and session store: it passes every call to
//! the server's shared ones and keeps the session value a ticket decrypted
//! to, or the session id's cache entry, and `resumed_tag` reads the tag
//! out of it once the handshake is over and rustls says it resumed.

use super::{Tag, TAG_BYTES};
use rustls::server::{ProducesTickets, StoresServerSessions};
use rustls::{HandshakeKind, ProtocolVersion, ServerConnection};
use std::sync::{Arc, Mutex};

/// The shared ticketer and session store, seen by one data handshake.
#[derive(Debug)]
pub struct Witness {
    tickets: Arc<dyn ProducesTickets>,
    sessions: Arc<dyn StoresServerSessions>,
    /// The last session value the client offered that we could open (a
    /// ticket that decrypted, or a cached session id).
    offered: Mutex<Option<Vec<u8>>>,
}

impl Witness {
    pub fn new(
        tickets: Arc<dyn ProducesTickets>,
        sessions: Arc<dyn StoresServerSessions>,
    ) -> Witness {
        Witness {
            tickets,
            sessions,
            offered: Mutex::new(None),
        }
    }

    fn keep(&self, value: &Option<Vec<u8>>) {
        if value.is_some() {
            let mut offered = self.offered.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(old) = offered.as_mut() {
                old.fill(0);
            }
            *offered = value.clone();
        }
    }

    /// Takes the kept value out (the witness lives as long as the data
    /// connection's configuration).
    fn take_offered(&self) -> Option<Vec<u8>> {
        self.offered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

impl ProducesTickets for Witness {
    fn enabled(&self) -> bool {
        self.tickets.enabled()
    }

    fn lifetime(&self) -> u32 {
        self.tickets.lifetime()
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.tickets.encrypt(plain)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        let plain = self.tickets.decrypt(cipher);
        self.keep(&plain);
        plain
    }
}

impl StoresServerSessions for Witness {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.sessions.put(key, value)
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let value = self.sessions.get(key);
        self.keep(&value);
        value
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let value = self.sessions.take(key);
        self.keep(&value);
        value
    }

    fn can_cache(&self) -> bool {
        self.sessions.can_cache()
    }
}

/// The tag of the session `conn` resumed; `None` after a full handshake.
pub fn resumed_tag(conn: &ServerConnection, witness: &Witness) -> Option<Tag> {
    // SECURITY: the kept value holds the session's master secret: taken
    // out and zeroed once its tag is read, whatever the handshake was.
    let mut offered = witness.take_offered();
    let tag = resumed_tag_of(conn, offered.as_deref());
    if let Some(value) = offered.as_mut() {
        value.fill(0);
    }
    tag
}

fn resumed_tag_of(conn: &ServerConnection, offered: Option<&[u8]>) -> Option<Tag> {
    if conn.handshake_kind() != Some(HandshakeKind::Resumed) {
        return None;
    }
    if let Some(data) = conn.received_resumption_data() {
        return Tag::try_from(data).ok();
    }
    // A resumed TLS 1.2 handshake: rustls resumed the value the witness
    // saw (a ticket is tried first, and a session id only without one).
    if conn.protocol_version() != Some(ProtocolVersion::TLSv1_2) {
        return None;
    }
    tag_of(offered?)
}

/// Bytes after the application data in rustls' encoding of a session
/// value (`ServerSessionValue`: creation time u64, age offset u32).
const VALUE_TRAILER: usize = 8 + 4;

/// The tag in an encoded session value: its application data, the last
/// variable-length field (a u16 length, then the bytes), before the fixed
/// trailer. Checked by the unit test below against values rustls makes,
/// so a change of the encoding fails the build's tests, not the field.
fn tag_of(value: &[u8]) -> Option<Tag> {
    let end = value.len().checked_sub(VALUE_TRAILER)?;
    let start = end.checked_sub(TAG_BYTES)?;
    let length = value.get(start.checked_sub(2)?..start)?;
    if length != (TAG_BYTES as u16).to_be_bytes() {
        return None;
    }
    Tag::try_from(&value[start..end]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::{CertificateDer, ServerName};
    use rustls::{ClientConfig, ClientConnection, ServerConfig};

    /// A self-signed pair made by tests/clients/make_cert.py.
    fn pair() -> Arc<rustls::sign::CertifiedKey> {
        static MADE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("lakeftpd-resumption-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = (dir.join("c.pem"), dir.join("k.pem"));
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/make_cert.py");
        let ok = std::process::Command::new("python3")
            .args([script, cert.to_str().unwrap(), key.to_str().unwrap()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "make_cert.py");
        let now = crate::clock::unix_seconds(std::time::SystemTime::now());
        let pair = crate::tls::certs::load(
            &std::fs::read(&cert).unwrap(),
            &std::fs::read(&key).unwrap(),
            now,
        )
        .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        pair.key
    }

    #[derive(Debug)]
    struct AnyCert;

    impl rustls::client::danger::ServerCertVerifier for AnyCert {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }

        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            rustls::crypto::ring::default_provider()
                .signature_verification_algorithms
                .supported_schemes()
        }
    }

    /// Runs one handshake (and the tickets after it) in memory.
    fn handshake(client: &mut ClientConnection, server: &mut ServerConnection) {
        for _ in 0..10 {
            let mut wire = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut wire).unwrap();
            }
            server.read_tls(&mut &wire[..]).unwrap();
            server.process_new_packets().unwrap();
            let mut back = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut back).unwrap();
            }
            client.read_tls(&mut &back[..]).unwrap();
            client.process_new_packets().unwrap();
        }
        assert!(!client.is_handshaking() && !server.is_handshaking());
    }

    /// A control handshake tagged `tag`, then a data handshake through a
    /// witness: the tag the data handshake resumed, for `version` with
    /// tickets on or off (off: TLS 1.2 resumes by session id).
    fn resumed(version: &'static rustls::SupportedProtocolVersion, tickets: bool) -> Option<Tag> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let resolver = Arc::new(crate::tls::Rotating {
            current: std::sync::RwLock::new(pair()),
        });
        let mut config = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[version])
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(resolver);
        config.session_storage = rustls::server::ServerSessionMemoryCache::new(16);
        if tickets {
            config.ticketer = rustls::crypto::ring::Ticketer::new().unwrap();
        }
        let mut client_config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert))
            .with_no_client_auth();
        client_config.enable_sni = false;
        let client_config = Arc::new(client_config);
        let name = ServerName::try_from("localhost").unwrap();
        let tag: Tag = [7; TAG_BYTES];

        let mut server = ServerConnection::new(Arc::new(config.clone())).unwrap();
        server.set_resumption_data(&tag);
        let mut client = ClientConnection::new(client_config.clone(), name.clone()).unwrap();
        handshake(&mut client, &mut server);

        let witness = Arc::new(Witness::new(
            config.ticketer.clone(),
            config.session_storage.clone(),
        ));
        let mut data_config = config;
        data_config.ticketer = witness.clone();
        data_config.session_storage = witness.clone();
        let mut server = ServerConnection::new(Arc::new(data_config)).unwrap();
        server.set_resumption_data(&[9; TAG_BYTES]);
        let mut client = ClientConnection::new(client_config, name).unwrap();
        handshake(&mut client, &mut server);
        assert_eq!(server.handshake_kind(), Some(HandshakeKind::Resumed));
        resumed_tag(&server, &witness)
    }

    #[test]
    fn tls12_ticket_carries_the_control_tag() {
        assert_eq!(resumed(&rustls::version::TLS12, true), Some([7; TAG_BYTES]));
    }

    #[test]
    fn tls12_session_id_carries_the_control_tag() {
        assert_eq!(
            resumed(&rustls::version::TLS12, false),
            Some([7; TAG_BYTES])
        );
    }

    #[test]
    fn tls13_ticket_carries_the_control_tag() {
        assert_eq!(resumed(&rustls::version::TLS13, true), Some([7; TAG_BYTES]));
    }

    #[test]
    fn value_too_short_or_of_another_length_has_no_tag() {
        assert_eq!(tag_of(&[0; 10]), None);
        let mut value = vec![0, 15];
        value.extend_from_slice(&[1; TAG_BYTES + VALUE_TRAILER]);
        assert_eq!(tag_of(&value), None);
    }
}
