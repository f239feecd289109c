//! A connection that is plain TCP or TLS over TCP: the control connection
//! (plain until `AUTH TLS`, or TLS from the first byte on the implicit
//! listener) and a data connection (TLS under PROT P, RFC 4217 §9).
//!
//! The plain case is the socket itself, as before: a plain session pays
//! one word for the enum and nothing else. The TLS case is boxed: the
//! rustls connection (its keys, and send buffers bounded by
//! `TLS_BUFFER_LIMIT`) lives on the heap only for sessions that use TLS.

use crate::limits;
use crate::sys::timeout;
use futures_rustls::server::TlsStream;
use smol::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use smol::Async;
use std::io::{self, Write as _};
use std::net::TcpStream;
use std::pin::Pin;
use std::task::{Context, Poll};

pub enum Stream {
    Plain(Async<TcpStream>),
    Tls(Box<TlsStream<Async<TcpStream>>>),
    /// Only while the control connection is handed to a TLS handshake;
    /// every operation fails with `NotConnected`.
    Closed,
}

fn closed<T>() -> io::Result<T> {
    Err(io::ErrorKind::NotConnected.into())
}

impl Stream {
    /// The TCP socket under the stream (keepalive, peeking for a close).
    pub fn socket(&self) -> Option<&TcpStream> {
        match self {
            Stream::Plain(s) => Some(s.get_ref()),
            Stream::Tls(s) => Some(s.get_ref().0.get_ref()),
            Stream::Closed => None,
        }
    }

    /// Takes the plain socket out (for a TLS handshake), leaving `Closed`.
    pub fn take_plain(&mut self) -> Option<Async<TcpStream>> {
        match std::mem::replace(self, Stream::Closed) {
            Stream::Plain(s) => Some(s),
            other => {
                *self = other;
                None
            }
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// The rustls connection, for a TLS stream.
    pub fn connection(&self) -> Option<&rustls::ServerConnection> {
        match self {
            Stream::Plain(_) | Stream::Closed => None,
            Stream::Tls(s) => Some(s.get_ref().1),
        }
    }

    /// Writes `bytes` without waiting; returns what could not be taken
    /// now (the caller awaits `write_all` and `flush` for it). For TLS the
    /// bytes are sealed into rustls' send buffer and as much of it as the
    /// socket takes is written.
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<Option<Vec<u8>>> {
        match self {
            Stream::Plain(s) => crate::protocol::reply::try_send(s, bytes),
            Stream::Tls(s) => {
                let (io, conn) = s.get_mut();
                let taken = conn.writer().write(bytes)?;
                let mut socket = io.get_ref();
                while conn.wants_write() {
                    match conn.write_tls(&mut socket) {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok((taken < bytes.len()).then(|| bytes[taken..].to_vec()))
            }
            Stream::Closed => closed(),
        }
    }

    /// Ends a TLS stream as RFC 8446 §6.1 asks: close_notify, within
    /// `TLS_CLOSE_NOTIFY_TIMEOUT`, then the socket's write side shut. A
    /// client that warns on a truncated session (PHP's `ftp_close`) reads
    /// a clean end. Plain: nothing (dropping the socket closes it).
    pub async fn finish(&mut self) {
        if self.is_tls() {
            // Ignore errors because the client may have closed first.
            let close = smol::io::AsyncWriteExt::close(self);
            let _ =
                crate::sys::timeout::within(crate::limits::TLS_CLOSE_NOTIFY_TIMEOUT, close).await;
        }
    }

    /// Whether rustls holds bytes the client sent that were not read yet
    /// (decrypted or still to decrypt).
    pub fn has_unread(&mut self) -> bool {
        match self {
            Stream::Tls(s) => {
                let conn = s.get_mut().1;
                conn.process_new_packets()
                    .map_or(true, |state| state.plaintext_bytes_to_read() > 0)
            }
            Stream::Plain(_) | Stream::Closed => false,
        }
    }

    /// CCC (RFC 2228 §5.3, RFC 4217 §12.3): ends TLS with close_notify
    /// both ways, keeps the TCP connection and goes on in plain text.
    /// Clients differ in who closes first: curl 7.88 sends close_notify
    /// and waits for ours; lftp 4.9 waits for ours, and takes it for the
    /// end of the connection if it comes in the same read as the 200. So
    /// the client's is awaited for `CCC_CLIENT_CLOSE_WAIT`, then ours is
    /// sent, then (if the client had not sent one) its answer is awaited
    /// for `CCC_PEER_CLOSE_WAIT`. The client's TLS records are read and
    /// dropped; its next command in plain is left for the line reader.
    pub async fn clear(&mut self) -> io::Result<()> {
        let Stream::Tls(mut tls) = std::mem::replace(self, Stream::Closed) else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        let first = drop_tls_records(tls.get_mut().0);
        let client_closed = matches!(
            timeout::within(limits::CCC_CLIENT_CLOSE_WAIT, first).await,
            Ok(n) if n > 0
        );
        tls.get_mut().1.send_close_notify();
        // Not `close`: that would shut the socket's write side too.
        tls.flush().await?;
        let (mut socket, _) = tls.into_inner();
        if !client_closed {
            // Ignore a timeout because a client may never answer ours.
            let answer = drop_tls_records(&mut socket);
            let _ = timeout::within(limits::CCC_PEER_CLOSE_WAIT, answer).await;
        }
        *self = Stream::Plain(socket);
        Ok(())
    }

    /// Whether TLS bytes wait in rustls' send buffer (`flush` sends them).
    pub fn has_pending(&self) -> bool {
        self.connection().is_some_and(|c| c.wants_write())
    }
}

/// Reads and drops the TLS records that come next on `socket`, up to
/// `CCC_MAX_RECORDS`; returns how many.
async fn drop_tls_records(socket: &mut Async<TcpStream>) -> io::Result<usize> {
    let mut dropped = 0;
    while dropped < limits::CCC_MAX_RECORDS && drop_tls_record(socket).await? {
        dropped += 1;
    }
    Ok(dropped)
}

/// Reads and drops one TLS record if the next bytes on `socket` are one
/// (an alert, or in TLS 1.3 an encrypted record: content type 21 or 23,
/// then version 3.x, RFC 8446 §5.1); leaves anything else (plain text: an
/// FTP command never starts with those bytes). Returns whether it did.
async fn drop_tls_record(socket: &mut Async<TcpStream>) -> io::Result<bool> {
    let mut first = [0u8; 1];
    if socket.peek(&mut first).await? == 0 || !matches!(first[0], 21 | 23) {
        return Ok(false);
    }
    let mut header = [0u8; 5];
    socket.read_exact(&mut header).await?;
    let length = usize::from(u16::from_be_bytes([header[3], header[4]]));
    if header[1] != 3 || length > limits::CCC_MAX_RECORD {
        return Err(io::ErrorKind::InvalidData.into());
    }
    let mut body = vec![0u8; length];
    socket.read_exact(&mut body).await?;
    Ok(true)
}

/// A TLS peer that closes the TCP connection without a close_notify alert
/// (RFC 8446 §6.1) is taken as having closed, as vsftpd does by default
/// (`strict_ssl_read_eof=NO`): many device TLS stacks never send one.
fn eof_is_close(result: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
    match result {
        Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Poll::Ready(Ok(0)),
        other => other,
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => eof_is_close(Pin::new(&mut **s).poll_read(cx, buf)),
            Stream::Closed => Poll::Ready(closed()),
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
            Stream::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
            Stream::Closed => Poll::Ready(closed()),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
            Stream::Closed => Poll::Ready(closed()),
        }
    }

    /// TLS: sends close_notify, then shuts the socket's write side.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_close(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_close(cx),
            Stream::Closed => Poll::Ready(closed()),
        }
    }
}
