//! The FTPS side of the load generator: a rustls client (ring provider)
//! that accepts the benchmark's self-signed certificate (its signatures
//! are still checked, so the handshake costs what a real client's does),
//! and a stream that is plain TCP or TLS.
//!
//! Each device session gets its own resumption store: its data
//! connections resume its control connection's TLS session (RFC 4217 §10;
//! lakeftpd and vsftpd require it by default), and one device never
//! resumes another's session, as real devices do not share a cache.

use futures_rustls::client::TlsStream;
use futures_rustls::TlsConnector;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use smol::io::{AsyncRead, AsyncWrite};
use smol::Async;
use std::io;
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// Resumption entries per device session (one control session; TLS 1.3
/// tickets are used once each, and a session makes at most two transfers;
/// TLS 1.2 keeps one session per server name, reused by every transfer).
const SESSIONS_PER_DEVICE: usize = 8;

/// Accepts any certificate chain (the benchmark's is self-signed) but
/// verifies the handshake signatures with the provider's algorithms.
#[derive(Debug)]
struct AcceptTestCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptTestCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The TLS versions the client offers: both (the server picks 1.3), or
/// one only (`--tls-version`), as a device whose stack knows only one.
pub fn versions(
    only: Option<&str>,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    match only {
        None => Ok(rustls::DEFAULT_VERSIONS.to_vec()),
        Some("1.2") => Ok(vec![&rustls::version::TLS12]),
        Some("1.3") => Ok(vec![&rustls::version::TLS13]),
        Some(v) => Err(format!("--tls-version: 1.2 or 1.3, not {v}")),
    }
}

/// The client configuration every device session starts from. TLS 1.2
/// sessions resume as TLS 1.3 ones do: each device's store (below) keeps
/// the control connection's session, and rustls offers its session id and
/// ticket (RFC 5246 §7.4.1.2, RFC 5077) on the data connections.
pub fn base_config(versions: &[&'static rustls::SupportedProtocolVersion]) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .expect("ring supports TLS 1.2 and 1.3")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptTestCert(provider)))
        .with_no_client_auth();
    Arc::new(config)
}

/// A connector with its own, empty resumption store: one per device session.
pub fn device_connector(base: &Arc<ClientConfig>) -> TlsConnector {
    let mut config = (**base).clone();
    config.resumption = Resumption::in_memory_sessions(SESSIONS_PER_DEVICE);
    TlsConnector::from(Arc::new(config))
}

/// The name the client resumes under (the server's address; the same for
/// the control and every data connection).
pub fn server_name() -> ServerName<'static> {
    ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into())
}

/// A control or data connection: plain TCP, or TLS over it.
pub enum Stream {
    Plain(Async<TcpStream>),
    Tls(Box<TlsStream<Async<TcpStream>>>),
    /// The moment the control connection is handed over to TLS.
    Gone,
}

fn gone<T>() -> Poll<io::Result<T>> {
    Poll::Ready(Err(io::Error::new(
        io::ErrorKind::NotConnected,
        "stream handed over to TLS",
    )))
}

impl Stream {
    /// The TLS version the connection negotiated ("-" for plain TCP).
    pub fn version(&self) -> &'static str {
        match self {
            Stream::Plain(_) | Stream::Gone => "-",
            Stream::Tls(s) => match s.get_ref().1.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_3) => "1.3",
                Some(rustls::ProtocolVersion::TLSv1_2) => "1.2",
                _ => "?",
            },
        }
    }

    /// Half-closes the TCP connection (FIN): the end of an upload.
    pub fn shutdown_write(&self) -> io::Result<()> {
        let tcp = match self {
            Stream::Plain(s) => s.get_ref(),
            Stream::Tls(s) => s.get_ref().0.get_ref(),
            Stream::Gone => return Ok(()),
        };
        tcp.shutdown(std::net::Shutdown::Write)
    }

    /// Whether the TLS handshake resumed a session.
    pub fn resumed(&self) -> bool {
        match self {
            Stream::Plain(_) | Stream::Gone => false,
            Stream::Tls(s) => {
                s.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
            }
        }
    }
}

/// The TLS handshake as client over `tcp`.
pub async fn connect(connector: &TlsConnector, tcp: Async<TcpStream>) -> io::Result<Stream> {
    Ok(Stream::Tls(Box::new(
        connector.connect(server_name(), tcp).await?,
    )))
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Gone => gone(),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Gone => gone(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Gone => gone(),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_close(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
            Stream::Gone => gone(),
        }
    }
}
