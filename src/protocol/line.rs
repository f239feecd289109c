//! Line framing: where the first line of a buffer ends, and when a buffer is
//! full without one. One framer for the FTP control connection (RFC 959
//! §4.1: a command ends with CRLF; a bare LF is accepted, as vsftpd does)
//! and the health listener's HTTP request line (RFC 9112 §2.2 allows a bare
//! LF too). Pure: the callers own the buffers and do the reading.

/// The first complete line of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    /// Length of the line without its LF or CRLF.
    pub len: usize,
    /// Where the next line starts (just after the LF).
    pub next: usize,
}

/// What a buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// A complete line is at the front.
    Line(Line),
    /// No line end yet, and the buffer is full: the line is too long.
    TooLong,
    /// No line end yet; there is room to read more.
    More,
}

/// The first complete line of `filled`, if its LF arrived.
pub fn find(filled: &[u8]) -> Option<Line> {
    let lf = filled.iter().position(|&b| b == b'\n')?;
    let len = if lf > 0 && filled[lf - 1] == b'\r' {
        lf - 1
    } else {
        lf
    };
    Some(Line { len, next: lf + 1 })
}

/// Frames `filled`, the bytes read so far into a buffer of `capacity`
/// bytes. A line whose LF is the buffer's last byte still fits.
pub fn frame(filled: &[u8], capacity: usize) -> Frame {
    match find(filled) {
        Some(line) => Frame::Line(line),
        None if filled.len() >= capacity => Frame::TooLong,
        None => Frame::More,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(len: usize, next: usize) -> Frame {
        Frame::Line(Line { len, next })
    }

    #[test]
    fn crlf_ends_a_line() {
        // RFC 959 §4.1: the Telnet end of line.
        assert_eq!(frame(b"NOOP\r\n", 16), line(4, 6));
    }

    #[test]
    fn bare_lf_ends_a_line() {
        // Clients and scripts that send LF alone are served.
        assert_eq!(frame(b"NOOP\n", 16), line(4, 5));
    }

    #[test]
    fn bare_cr_does_not_end_a_line() {
        assert_eq!(frame(b"NOOP\r", 16), Frame::More);
    }

    #[test]
    fn cr_inside_a_line_is_kept() {
        assert_eq!(frame(b"a\rb\n", 16), line(3, 4));
    }

    #[test]
    fn empty_line() {
        assert_eq!(frame(b"\r\n", 16), line(0, 2));
    }

    #[test]
    fn only_the_first_line_is_framed() {
        // Pipelined commands: the second waits for the next call.
        assert_eq!(frame(b"USER a\r\nPASS b\r\n", 64), line(6, 8));
    }

    #[test]
    fn nothing_read_yet() {
        assert_eq!(frame(b"", 16), Frame::More);
    }

    #[test]
    fn partial_line_with_room() {
        assert_eq!(frame(b"RETR fi", 16), Frame::More);
    }

    #[test]
    fn full_buffer_without_lf_is_too_long() {
        // The buffer never grows: vsftpd's "Input line too long."
        assert_eq!(frame(b"abcd", 4), Frame::TooLong);
    }

    #[test]
    fn lf_as_the_last_byte_still_fits() {
        assert_eq!(frame(b"abc\n", 4), line(3, 4));
    }

    #[test]
    fn crlf_split_at_the_end_of_a_full_buffer_is_too_long() {
        // The CR fills the buffer; the LF can never arrive.
        assert_eq!(frame(b"abc\r", 4), Frame::TooLong);
    }
}
