//! Replies: codes by name (RFC 959 §4.2), assembled in a fixed buffer.
//!
//! A reply is written without waiting when the socket takes it whole (the
//! common case for a few dozen bytes); only a remainder is copied out and
//! awaited. So the assembly buffer lives on the stack of a plain function and
//! never inflates an idle session's state.

use crate::limits::MAX_REPLY;
use smol::Async;
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::net::TcpStream;

/// Reply codes used by lakeftpd, named as RFC 959 §4.2.1 and RFC 2428 /
/// RFC 3659 describe them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Code {
    FileStatusOk = 150,
    CommandOk = 200,
    Superfluous = 202,
    SystemStatus = 211,
    FileStatus = 213,
    HelpMessage = 214,
    SystemType = 215,
    ServiceReady = 220,
    Closing = 221,
    ClosingDataConnection = 226,
    EnteringPassive = 227,
    EnteringExtendedPassive = 229,
    LoggedIn = 230,
    /// RFC 2228 §4: AUTH accepted, the security exchange follows.
    SecurityExchangeOk = 234,
    FileActionOk = 250,
    PathCreated = 257,
    NeedPassword = 331,
    PendingFurtherInformation = 350,
    ServiceNotAvailable = 421,
    CantOpenDataConnection = 425,
    ConnectionClosedTransferAborted = 426,
    ActionAbortedLocalError = 451,
    InsufficientStorage = 452,
    SyntaxError = 500,
    SyntaxErrorInArguments = 501,
    NotImplemented = 502,
    BadSequence = 503,
    NotImplementedForParameter = 504,
    /// RFC 4217 §9: the transfer cannot run with this PROT setting.
    DataProtectionRequired = 521,
    /// RFC 2428 §2 (and, for a data connection that did not resume the
    /// control connection's TLS session, vsftpd and Transfer Family).
    NetworkProtocolNotSupported = 522,
    NotLoggedIn = 530,
    /// RFC 2228 §4: the command must come over a protected connection
    /// (CCC in plain text).
    IntegrityRequired = 533,
    /// RFC 2228 §4: request denied for policy reasons.
    PolicyDenied = 534,
    /// RFC 2228 §4: PROT level not supported by the mechanism.
    ProtLevelNotSupported = 536,
    FileUnavailable = 550,
    ExceededStorageAllocation = 552,
    FileNameNotAllowed = 553,
}

/// A reply being assembled. Text that does not fit is cut (never for the
/// replies lakeftpd makes: `MAX_REPLY` has room for the longest path).
pub struct Reply {
    buf: heapless::Vec<u8, MAX_REPLY>,
}

impl Default for Reply {
    fn default() -> Reply {
        Reply::new()
    }
}

impl Reply {
    pub fn new() -> Reply {
        Reply {
            buf: heapless::Vec::new(),
        }
    }

    /// A whole single-line reply: `CODE text`.
    pub fn line(code: Code, text: std::fmt::Arguments<'_>) -> Reply {
        let mut reply = Reply::new();
        reply.push(code, ' ', text);
        reply
    }

    /// First line of a multi-line reply: `CODE-text` (RFC 959 §4.2).
    pub fn first(&mut self, code: Code, text: std::fmt::Arguments<'_>) -> &mut Reply {
        self.push(code, '-', text)
    }

    /// A middle line of a multi-line reply; it starts with a space so that it
    /// can never be mistaken for the last line.
    pub fn middle(&mut self, text: std::fmt::Arguments<'_>) -> &mut Reply {
        let _ = write!(Writer(&mut self.buf), " {text}\r\n");
        self
    }

    /// Last line of a multi-line reply: `CODE text`.
    pub fn last(&mut self, code: Code, text: std::fmt::Arguments<'_>) -> &mut Reply {
        self.push(code, ' ', text)
    }

    fn push(&mut self, code: Code, separator: char, text: std::fmt::Arguments<'_>) -> &mut Reply {
        let _ = write!(
            Writer(&mut self.buf),
            "{}{separator}{text}\r\n",
            code as u16
        );
        self
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }
}

/// Writes into a heapless buffer, cutting what does not fit.
struct Writer<'a>(&'a mut heapless::Vec<u8, MAX_REPLY>);

impl std::fmt::Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = self.0.capacity() - self.0.len();
        let take = s.len().min(room);
        // Cannot fail: `take` fits.
        let _ = self.0.extend_from_slice(&s.as_bytes()[..take]);
        if take < s.len() {
            Err(std::fmt::Error)
        } else {
            Ok(())
        }
    }
}

/// Tries to write `bytes` now; returns what the socket did not take.
pub fn try_send(socket: &Async<TcpStream>, bytes: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let mut stream = socket.get_ref();
    let mut sent = 0;
    while sent < bytes.len() {
        match stream.write(&bytes[sent..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(if sent == bytes.len() {
        None
    } else {
        Some(bytes[sent..].to_vec())
    })
}

/// Quotes a path for a 257 reply: embedded `"` doubled (RFC 959 §7).
pub struct Quoted<'a>(pub &'a str);

impl std::fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_char('"')?;
        for c in self.0.chars() {
            if c == '"' {
                f.write_str("\"\"")?;
            } else {
                f.write_char(c)?;
            }
        }
        f.write_char('"')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line() {
        let r = Reply::line(Code::CommandOk, format_args!("OK"));
        assert_eq!(r.as_bytes(), b"200 OK\r\n");
    }

    #[test]
    fn multi_line() {
        let mut r = Reply::new();
        r.first(Code::SystemStatus, format_args!("Features:"))
            .middle(format_args!("UTF8"))
            .last(Code::SystemStatus, format_args!("End"));
        assert_eq!(r.as_bytes(), b"211-Features:\r\n UTF8\r\n211 End\r\n");
    }

    #[test]
    fn quotes_doubled() {
        assert_eq!(Quoted("/a\"b").to_string(), "\"/a\"\"b\"");
    }

    #[test]
    fn longest_path_fits() {
        let path = "\"".repeat(crate::limits::MAX_PATH);
        let r = Reply::line(Code::PathCreated, format_args!("{} created", Quoted(&path)));
        assert!(r.as_bytes().ends_with(b" created\r\n"));
    }
}
