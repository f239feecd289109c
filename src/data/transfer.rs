//! Moving bytes over a data connection: RETR (sendfile in binary mode),
//! STOR/APPE/STOU into a `TempUpload`, and listings. A TLS data connection
//! (PROT P) cannot use sendfile: its bytes go through the
//! transfer buffer and rustls, in both directions. Each transfer owns one
//! buffer of `TRANSFER_BUFFER` bytes for its lifetime only; every read and
//! write on the data connection is raced against `data_timeout` (a stalled
//! transfer ends, it never hangs a session).

use crate::limits::{SENDFILE_CHUNK, TRANSFER_BUFFER};
use crate::ops::metrics::{self, Metrics};
use crate::protocol::command::Type;
use crate::protocol::encoding::NameEncoding;
use crate::protocol::listing::{self, Entry, Format};
use crate::storage::upload::TempUpload;
use crate::sys;
use crate::tls::stream::Stream;
use smol::future::FutureExt;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::{Async, Timer};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

/// How a transfer failed; each maps to one reply in the session.
#[derive(Debug)]
pub enum TransferError {
    /// The data connection failed or stalled: 426.
    Network(io::Error),
    /// Reading or writing the file failed: 451 (550 when permission is denied).
    Local(io::Error),
    /// The disk (or quota) is full: 452.
    DiskFull,
    /// `max_file_size` exceeded: 552.
    TooLarge,
}

impl TransferError {
    fn local(e: io::Error) -> TransferError {
        if sys::errno::is_storage_full(&e) {
            TransferError::DiskFull
        } else {
            TransferError::Local(e)
        }
    }
}

impl std::fmt::Display for TransferError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransferError::Network(e) => write!(f, "data connection: {e}"),
            TransferError::Local(e) => write!(f, "local error: {e}"),
            TransferError::DiskFull => f.write_str("disk full"),
            TransferError::TooLarge => f.write_str("file size limit exceeded"),
        }
    }
}

async fn timed<T>(
    limit: Duration,
    fut: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    fut.or(async {
        Timer::after(limit).await;
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "data transfer stalled",
        ))
    })
    .await
}

/// Sends `path` (inside `home`, opened beneath it: `jail::open_regular`)
/// from `offset` (REST). Returns bytes sent.
pub async fn send_file(
    mut data: Stream,
    home: PathBuf,
    path: PathBuf,
    offset: u64,
    kind: Type,
    stall: Duration,
    metrics: &Metrics,
) -> Result<u64, TransferError> {
    let file = smol::unblock(move || -> io::Result<File> {
        let mut file = crate::storage::jail::open_regular(&home, &path)?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(file)
    })
    .await
    .map_err(TransferError::local)?;
    let sent = match (kind, &data) {
        (Type::Image, Stream::Plain(socket)) => {
            send_binary(socket, file, offset, stall, metrics).await?
        }
        (Type::Image, _) => send_buffered(&mut data, file, false, stall, metrics).await?,
        (Type::Ascii, _) => send_buffered(&mut data, file, true, stall, metrics).await?,
    };
    timed(stall, data.close())
        .await
        .map_err(TransferError::Network)?;
    Ok(sent)
}

/// Binary RETR through sendfile(2): the bytes never enter user space.
async fn send_binary(
    data: &Async<TcpStream>,
    file: File,
    mut offset: u64,
    stall: Duration,
    metrics: &Metrics,
) -> Result<u64, TransferError> {
    let mut sent = 0;
    loop {
        match sys::sendfile(data.get_ref(), &file, &mut offset, SENDFILE_CHUNK) {
            Ok(0) => return Ok(sent),
            Ok(n) => {
                sent += n as u64;
                metrics::add(&metrics.bytes_out, n as u64);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => timed(stall, data.writable())
                .await
                .map_err(TransferError::Network)?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // The client went away.
            Err(e) if sys::errno::is_peer_gone(&e) => return Err(TransferError::Network(e)),
            Err(e) => return Err(TransferError::local(e)),
        }
    }
}

/// RETR through the transfer buffer: ASCII (LF becomes CRLF on the wire,
/// RFC 959 §3.1.1.1) and every TLS download.
async fn send_buffered(
    data: &mut Stream,
    mut file: File,
    ascii: bool,
    stall: Duration,
    metrics: &Metrics,
) -> Result<u64, TransferError> {
    let mut chunk = vec![0u8; TRANSFER_BUFFER];
    let mut wire = Vec::with_capacity(if ascii { 2 * TRANSFER_BUFFER } else { 0 });
    let mut previous = 0u8;
    let mut sent = 0;
    loop {
        let (f, c, result) = smol::unblock(move || {
            let result = file.read(&mut chunk);
            (file, chunk, result)
        })
        .await;
        (file, chunk) = (f, c);
        let n = result.map_err(TransferError::local)?;
        if n == 0 {
            return Ok(sent);
        }
        let out: &[u8] = if ascii {
            wire.clear();
            previous = lf_to_crlf(&chunk[..n], previous, &mut wire);
            &wire
        } else {
            &chunk[..n]
        };
        timed(stall, data.write_all(out))
            .await
            .map_err(TransferError::Network)?;
        sent += out.len() as u64;
        metrics::add(&metrics.bytes_out, out.len() as u64);
    }
}

/// Appends `input` to `out` with each bare LF made CRLF; returns the last
/// input byte (the next chunk's "previous").
pub fn lf_to_crlf(input: &[u8], mut previous: u8, out: &mut Vec<u8>) -> u8 {
    for &b in input {
        if b == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        previous = b;
    }
    previous
}

/// Appends `input` to `out` with each CRLF made LF (ASCII STOR). A CR at
/// the end of `input` may be the first half of a CRLF split across reads:
/// it is held back, and the function returns true; the caller passes that
/// back as `held_cr` with the next chunk (or writes the CR at the end).
pub fn crlf_to_lf(input: &[u8], held_cr: bool, out: &mut Vec<u8>) -> bool {
    let mut pending_cr = held_cr;
    for &b in input {
        if pending_cr && b != b'\n' {
            out.push(b'\r');
        }
        pending_cr = b == b'\r';
        if !pending_cr {
            out.push(b);
        }
    }
    pending_cr
}

/// Receives into `upload` until the client closes the data connection,
/// `TRANSFER_BUFFER` bytes at a time (a device's metric file usually fits:
/// one read, one write). Every byte passes through the buffer, so the
/// upload's CRC64NVME is computed as it arrives and never by a second read
/// of the file (splice(2) saved that copy but cost the re-read: measured in
/// docs/s3-and-durability.md).
pub async fn receive(
    mut data: Stream,
    upload: &mut TempUpload,
    kind: Type,
    max_size: Option<u64>,
    stall: Duration,
    metrics: &Metrics,
) -> Result<u64, TransferError> {
    let mut buf = vec![0u8; TRANSFER_BUFFER];
    let mut converted = Vec::new();
    let mut held_cr = false;
    let mut received = 0u64;
    loop {
        // Fill the buffer as far as the client sends before writing, so a
        // 4 KiB upload costs one write.
        let mut filled = 0;
        while filled < buf.len() {
            let n = timed(stall, data.read(&mut buf[filled..]))
                .await
                .map_err(TransferError::Network)?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        received += filled as u64;
        metrics::add(&metrics.bytes_in, filled as u64);
        let eof = filled < buf.len();
        let out: &[u8] = match kind {
            Type::Image => &buf[..filled],
            Type::Ascii => {
                converted.clear();
                held_cr = crlf_to_lf(&buf[..filled], held_cr, &mut converted);
                if held_cr && eof {
                    converted.push(b'\r');
                }
                &converted
            }
        };
        if let Some(limit) = max_size {
            if upload.size + out.len() as u64 > limit {
                return Err(TransferError::TooLarge);
            }
        }
        upload.write(out).map_err(TransferError::local)?;
        if eof {
            // TLS: answer the client's close_notify with ours (RFC 8446
            // §6.1); clients such as Python's ssl `unwrap()` wait for it.
            if data.is_tls() {
                timed(stall, data.close())
                    .await
                    .map_err(TransferError::Network)?;
            }
            return Ok(received);
        }
    }
}

/// A name on disk (UTF-8) as the session's wire shows it. A character the
/// encoding lacks shows as `?`; a name on disk that is not UTF-8 shows
/// U+FFFD where it is not (as `?` outside UTF-8).
fn wire_name(name: &std::ffi::OsStr, encoding: NameEncoding) -> Vec<u8> {
    match name.to_str().and_then(|n| encoding.encode(n)) {
        Some(bytes) => bytes.into_owned(),
        None => encoding.encode_text(name.as_encoded_bytes()),
    }
}

/// Sends a listing of `dir` (or of the single file `dir` names) in `format`.
/// Entries are read and formatted in batches so that a huge directory never
/// sits whole in memory. Temporaries are never shown.
pub async fn send_listing(
    mut data: Stream,
    home: PathBuf,
    target: PathBuf,
    format: Format,
    encoding: NameEncoding,
    stall: Duration,
    metrics: &Metrics,
) -> Result<u64, TransferError> {
    /// Entries formatted per trip to the blocking pool.
    const BATCH: usize = 256;
    let now = crate::clock::unix_seconds(std::time::SystemTime::now());
    let meta = {
        let (home, target) = (home.clone(), target.clone());
        smol::unblock(move || crate::storage::beneath::metadata(&home, &target))
            .await
            .map_err(TransferError::local)?
    };
    let mut sent = 0u64;
    if !meta.is_dir() {
        let mut out = Vec::new();
        let name = target.file_name().unwrap_or_default();
        let name = wire_name(name, encoding);
        listing::write_entry(&mut out, format, &name, &Entry::from_metadata(&meta), now);
        timed(stall, data.write_all(&out))
            .await
            .map_err(TransferError::Network)?;
        timed(stall, data.close())
            .await
            .map_err(TransferError::Network)?;
        return Ok(out.len() as u64);
    }
    // SECURITY: read through a descriptor opened beneath the home, so a
    // directory swapped for an outward symlink since the check lists nothing
    // of the outside.
    let listing = smol::unblock(move || crate::storage::beneath::Listing::open(&home, &target))
        .await
        .map_err(TransferError::local)?;
    let mut entries = Some(listing);
    loop {
        let Some(mut iter) = entries.take() else {
            break;
        };
        let (iter, out) = smol::unblock(move || {
            let mut out = Vec::new();
            let mut count = 0;
            while let Some((os_name, meta)) = iter.next_entry() {
                if os_name
                    .as_encoded_bytes()
                    .starts_with(crate::limits::TEMP_PREFIX.as_bytes())
                {
                    continue;
                }
                let name = wire_name(&os_name, encoding);
                listing::write_entry(&mut out, format, &name, &Entry::from_metadata(&meta), now);
                count += 1;
                if count == BATCH {
                    return (Some(iter), out);
                }
            }
            (None, out)
        })
        .await;
        entries = iter;
        timed(stall, data.write_all(&out))
            .await
            .map_err(TransferError::Network)?;
        sent += out.len() as u64;
    }
    metrics::add(&metrics.bytes_out, sent);
    timed(stall, data.close())
        .await
        .map_err(TransferError::Network)?;
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lf_becomes_crlf() {
        let mut out = Vec::new();
        lf_to_crlf(b"a\nb\r\nc\n", 0, &mut out);
        assert_eq!(out, b"a\r\nb\r\nc\r\n");
    }

    #[test]
    fn lf_after_cr_in_previous_chunk_kept() {
        let mut out = Vec::new();
        lf_to_crlf(b"\nx", b'\r', &mut out);
        assert_eq!(out, b"\nx");
    }

    #[test]
    fn crlf_becomes_lf() {
        let mut out = Vec::new();
        assert!(!crlf_to_lf(b"a\r\nb\r\n", false, &mut out));
        assert_eq!(out, b"a\nb\n");
    }

    #[test]
    fn lone_cr_kept() {
        let mut out = Vec::new();
        crlf_to_lf(b"a\rb", false, &mut out);
        assert_eq!(out, b"a\rb");
    }

    #[test]
    fn cr_held_across_chunks() {
        let mut out = Vec::new();
        assert!(crlf_to_lf(b"a\r", false, &mut out));
        assert_eq!(out, b"a");
        assert!(!crlf_to_lf(b"\nb", true, &mut out));
        assert_eq!(out, b"a\nb");
    }

    #[test]
    fn held_cr_not_followed_by_lf_is_kept() {
        let mut out = Vec::new();
        crlf_to_lf(b"b", true, &mut out);
        assert_eq!(out, b"\rb");
    }
}
