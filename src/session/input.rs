//! The control connection's input: a fixed buffer of `MAX_LINE` bytes
//! holding at most one command line plus what followed it, framed by
//! `protocol::line`. It starts with the `Prelude`, the bytes a PROXY
//! handshake read after the header.

use crate::limits::{MAX_LINE, MAX_PROXY_HEADER};
use crate::protocol::line::{self, Frame};
use crate::sys::unauthenticated::Pending;
use crate::tls::stream::Stream;
use smol::io::AsyncReadExt;
use std::io;

/// What the session starts with: bytes already read after the header, and
/// whether the greeting was already sent.
pub struct Prelude {
    /// Empty without PROXY protocol; `MAX_PROXY_HEADER` bytes while a
    /// header is read (on the heap: this value is part of every
    /// connection's task, and most never carry a header).
    pub buf: Vec<u8>,
    pub start: usize,
    pub end: usize,
    pub greeted: bool,
    /// The connection's place among those not logged in yet; left at login.
    pub pending: Option<Pending>,
}

impl Prelude {
    /// No header read, nothing sent: a connection without PROXY protocol.
    pub fn empty() -> Prelude {
        Prelude {
            buf: Vec::new(),
            start: 0,
            end: 0,
            greeted: false,
            pending: None,
        }
    }

    /// Room for a PROXY header and what follows it in the same read.
    pub fn for_header() -> Prelude {
        Prelude {
            buf: vec![0; MAX_PROXY_HEADER],
            ..Prelude::empty()
        }
    }

    /// The bytes the client sent after the header.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }
}

/// The control connection's input buffer; it never grows.
pub(super) struct LineReader {
    buf: [u8; MAX_LINE],
    len: usize,
}

pub(super) enum Input {
    /// A complete line is at the front of the buffer, this long (line end excluded).
    Line(usize),
    Closed,
    TooLong,
}

impl LineReader {
    /// Starts with the bytes the PROXY handshake read after the header
    /// (at most `MAX_PROXY_HEADER`, less than `MAX_LINE`).
    pub(super) fn with_prelude(bytes: &[u8]) -> LineReader {
        let mut buf = [0; MAX_LINE];
        let len = bytes.len().min(MAX_LINE);
        buf[..len].copy_from_slice(&bytes[..len]);
        LineReader { buf, len }
    }

    /// Waits until a complete line is buffered. Cancel-safe: bytes read are
    /// kept in the buffer.
    pub(super) async fn fill(&mut self, socket: &mut Stream) -> io::Result<Input> {
        loop {
            match line::frame(&self.buf[..self.len], self.buf.len()) {
                Frame::Line(line) => return Ok(Input::Line(line.len)),
                Frame::TooLong => return Ok(Input::TooLong),
                Frame::More => {}
            }
            let n = socket.read(&mut self.buf[self.len..]).await?;
            if n == 0 {
                return Ok(Input::Closed);
            }
            self.len += n;
        }
    }

    pub(super) fn line(&self, n: usize) -> &[u8] {
        &self.buf[..n]
    }

    /// Whether bytes beyond the lines consumed are buffered.
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Drops the first line and its line end.
    pub(super) fn consume(&mut self) {
        let next = line::find(&self.buf[..self.len]).map_or(self.len, |line| line.next);
        self.buf.copy_within(next..self.len, 0);
        self.len -= next;
    }
}
