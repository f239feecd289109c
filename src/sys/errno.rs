//! The errno values lakeftpd tells apart, by name: rustix's `Errno`
//! constants instead of raw numbers (which differ between architectures
//! for some errors).

use rustix::io::Errno;
use std::io;

/// ENOSPC or EDQUOT: the filesystem, or the owner's quota, is full
/// (RFC 959 reply 452, insufficient storage space).
pub fn is_storage_full(e: &io::Error) -> bool {
    matches!(Errno::from_io_error(e), Some(Errno::NOSPC | Errno::DQUOT))
}

/// EPIPE or ECONNRESET: the peer of a socket went away.
pub fn is_peer_gone(e: &io::Error) -> bool {
    matches!(
        Errno::from_io_error(e),
        Some(Errno::PIPE | Errno::CONNRESET)
    )
}

/// EXDEV: a link or rename across filesystems.
pub fn is_cross_device(e: &io::Error) -> bool {
    Errno::from_io_error(e) == Some(Errno::XDEV)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(e: Errno) -> io::Error {
        io::Error::from_raw_os_error(e.raw_os_error())
    }

    #[test]
    fn enospc_is_storage_full() {
        assert!(is_storage_full(&os(Errno::NOSPC)));
    }

    #[test]
    fn edquot_is_storage_full() {
        assert!(is_storage_full(&os(Errno::DQUOT)));
    }

    #[test]
    fn eio_is_not_storage_full() {
        assert!(!is_storage_full(&os(Errno::IO)));
    }

    #[test]
    fn an_error_without_errno_is_nothing() {
        let e = io::Error::other("no errno");
        assert!(!is_storage_full(&e) && !is_peer_gone(&e) && !is_cross_device(&e));
    }

    #[test]
    fn epipe_and_econnreset_are_peer_gone() {
        assert!(is_peer_gone(&os(Errno::PIPE)) && is_peer_gone(&os(Errno::CONNRESET)));
    }

    #[test]
    fn exdev_is_cross_device() {
        assert!(is_cross_device(&os(Errno::XDEV)));
    }
}
