//! Errors mapped to replies, in one place: parse errors, jail refusals,
//! storage errors (one errno table for commands and transfers), failed
//! transfers and delivery refusals. Pure functions, tested below; the
//! `Session` methods at the end queue the reply.

use super::{Replied, Session};
use crate::data::transfer::TransferError;
use crate::delivery::Refusal;
use crate::protocol::command::ParseError;
use crate::protocol::reply::{Code, Reply};
use crate::storage::jail::JailError;
use rustix::io::Errno;
use std::io;

/// Where a storage error happened: the wording, and for some errors the
/// reply, differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum During {
    /// A command without a data connection (MKD, DELE, SIZE...).
    Command,
    /// A transfer: an upload's temporary, reading or writing the file.
    Transfer,
}

/// The one table from a storage error to a reply.
pub(super) fn storage_reply(e: &io::Error, during: During) -> (Code, &'static str) {
    use During::{Command, Transfer};
    let errno = Errno::from_io_error(e);
    match (e.kind(), errno, during) {
        (io::ErrorKind::NotFound, _, Command) => {
            (Code::FileUnavailable, "no such file or directory")
        }
        (io::ErrorKind::AlreadyExists, _, Command) => (Code::FileUnavailable, "already exists"),
        (io::ErrorKind::PermissionDenied, _, _) => (Code::FileUnavailable, "permission denied"),
        (io::ErrorKind::DirectoryNotEmpty, _, Command) => {
            (Code::FileUnavailable, "directory not empty")
        }
        // rename(2) of a file onto a directory, or of a directory onto a
        // file: the client's mistake, not a fault.
        (_, Some(Errno::ISDIR), Command) => (Code::FileUnavailable, "is a directory"),
        (_, Some(Errno::NOTDIR), Command) => (Code::FileUnavailable, "not a directory"),
        (_, Some(Errno::NAMETOOLONG), _) => (Code::FileNameNotAllowed, "file name too long"),
        // RFC 959 452: insufficient storage space.
        (_, Some(Errno::NOSPC), Command) => {
            (Code::InsufficientStorage, "insufficient storage space")
        }
        (_, Some(Errno::NOSPC | Errno::DQUOT), Transfer) => (
            Code::InsufficientStorage,
            "insufficient storage space; nothing was stored",
        ),
        (_, _, Command) => (Code::ActionAbortedLocalError, "local error"),
        (_, _, Transfer) => (
            Code::ActionAbortedLocalError,
            "local error; nothing was stored",
        ),
    }
}

/// The reply to a transfer that failed while the bytes moved.
pub(super) fn transfer_reply(e: &TransferError) -> (Code, &'static str) {
    match e {
        TransferError::Network(_) => (
            Code::ConnectionClosedTransferAborted,
            "data connection failed; transfer aborted",
        ),
        TransferError::DiskFull => (
            Code::InsufficientStorage,
            "insufficient storage space; nothing was stored",
        ),
        TransferError::Local(e) => storage_reply(e, During::Transfer),
        TransferError::TooLarge => (
            Code::ExceededStorageAllocation,
            "file exceeds the size limit; nothing was stored",
        ),
    }
}

/// The reply to a path the jail refused.
pub(super) fn path_reply(e: JailError) -> (Code, &'static str) {
    match e {
        JailError::InvalidName => (Code::FileNameNotAllowed, "file name not allowed"),
        JailError::Escape => (Code::FileUnavailable, "permission denied"),
        JailError::NotFound => (Code::FileUnavailable, "no such file or directory"),
    }
}

/// The reply to a line that is not a command we can run.
pub(super) fn parse_error_reply(e: ParseError) -> (Code, &'static str) {
    match e {
        ParseError::Unknown => (Code::SyntaxError, "unknown command"),
        ParseError::BadArgument => (
            Code::SyntaxErrorInArguments,
            "missing or malformed argument",
        ),
        ParseError::PathTooLong => (Code::SyntaxErrorInArguments, "path too long"),
        ParseError::NotImplementedParameter => (
            Code::NotImplementedForParameter,
            "parameter not implemented",
        ),
        ParseError::BadNetworkProtocol => (
            Code::NetworkProtocolNotSupported,
            "network protocol not supported, use (1,2)",
        ),
    }
}

/// The reply to an upload that delivery did not accept.
pub(super) fn refusal_reply(refusal: &Refusal) -> (Code, &'static str) {
    match refusal {
        Refusal::SpoolFull => (
            Code::InsufficientStorage,
            "insufficient storage space in the delivery spool; send the file again later",
        ),
        Refusal::KeyTooLong => (
            Code::FileNameNotAllowed,
            "path too long for an S3 object key; not delivered",
        ),
        Refusal::KeyReserved => (
            Code::FileNameNotAllowed,
            "this name maps to a reserved S3 key (ban_share_prefix); not delivered",
        ),
        Refusal::Local => (
            Code::ActionAbortedLocalError,
            "local error while queueing for S3; send the file again",
        ),
        Refusal::Timeout => (
            Code::ActionAbortedLocalError,
            "S3 did not confirm the file in time; it is queued and will be delivered",
        ),
    }
}

impl Session {
    /// Refuses a name whose bytes are not valid in the session's encoding:
    /// 553 (RFC 959: file name not allowed), naming the setting to change.
    pub(super) fn refuse_undecodable(&mut self) -> Replied {
        let encoding = self.encoding();
        let text = if encoding.is_utf8() {
            format_args!(
                "file name is not valid UTF-8; set filename_encoding for this device's code page"
            )
        } else {
            let label = encoding.label();
            return Replied(say!(
                self,
                Code::FileNameNotAllowed,
                "file name is not valid {label} (filename_encoding = {label})"
            ));
        };
        Replied(say!(self, Code::FileNameNotAllowed, "{text}"))
    }

    /// Refuses a path the jail did not accept.
    pub(super) fn refuse_path(&mut self, e: JailError) -> Replied {
        let (code, text) = path_reply(e);
        Replied(say!(self, code, "{text}"))
    }

    /// Refuses after a filesystem error of a command without a data
    /// connection; an unexpected one is logged.
    pub(super) fn refuse_io(&mut self, e: io::Error) -> Replied {
        let (code, text) = storage_reply(&e, During::Command);
        if code == Code::ActionAbortedLocalError {
            log::warn!("client={} file operation failed: {e}", self.client);
        }
        Replied(say!(self, code, "{text}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use During::{Command, Transfer};

    fn errno(e: Errno) -> io::Error {
        io::Error::from_raw_os_error(e.raw_os_error())
    }

    #[test]
    fn rename_onto_a_directory_is_550() {
        // RNTO onto an existing directory answered 451.
        let e = errno(Errno::ISDIR);
        assert_eq!(storage_reply(&e, Command).0, Code::FileUnavailable);
    }

    #[test]
    fn name_too_long_is_553() {
        // ENAMETOOLONG is the name's fault (RFC 959 553).
        let e = errno(Errno::NAMETOOLONG);
        assert_eq!(storage_reply(&e, Command).0, Code::FileNameNotAllowed);
    }

    #[test]
    fn enoent_is_550_for_a_command() {
        let e = errno(Errno::NOENT);
        assert_eq!(storage_reply(&e, Command).0, Code::FileUnavailable);
    }

    #[test]
    fn enoent_is_a_local_error_in_a_transfer() {
        // The jail found the file; losing it mid-transfer is our fault.
        let e = errno(Errno::NOENT);
        assert_eq!(storage_reply(&e, Transfer).0, Code::ActionAbortedLocalError);
    }

    #[test]
    fn eexist_is_550() {
        assert_eq!(
            storage_reply(&errno(Errno::EXIST), Command),
            (Code::FileUnavailable, "already exists")
        );
    }

    #[test]
    fn eacces_is_550_everywhere() {
        for during in [Command, Transfer] {
            let e = errno(Errno::ACCESS);
            assert_eq!(
                storage_reply(&e, during),
                (Code::FileUnavailable, "permission denied")
            );
        }
    }

    #[test]
    fn enotempty_is_550() {
        assert_eq!(
            storage_reply(&errno(Errno::NOTEMPTY), Command),
            (Code::FileUnavailable, "directory not empty")
        );
    }

    #[test]
    fn enospc_is_452_for_a_command() {
        assert_eq!(
            storage_reply(&errno(Errno::NOSPC), Command).0,
            Code::InsufficientStorage
        );
    }

    #[test]
    fn edquot_is_a_local_error_for_a_command() {
        // Only ENOSPC is 452 outside a transfer.
        assert_eq!(
            storage_reply(&errno(Errno::DQUOT), Command).0,
            Code::ActionAbortedLocalError
        );
    }

    #[test]
    fn enospc_and_edquot_are_452_in_a_transfer() {
        for e in [Errno::NOSPC, Errno::DQUOT] {
            assert_eq!(
                storage_reply(&errno(e), Transfer),
                (
                    Code::InsufficientStorage,
                    "insufficient storage space; nothing was stored"
                )
            );
        }
    }

    #[test]
    fn eio_is_451() {
        assert_eq!(
            storage_reply(&errno(Errno::IO), Transfer),
            (
                Code::ActionAbortedLocalError,
                "local error; nothing was stored"
            )
        );
    }

    #[test]
    fn disk_full_transfer_reads_like_enospc() {
        assert_eq!(
            transfer_reply(&TransferError::DiskFull),
            storage_reply(&errno(Errno::NOSPC), Transfer)
        );
    }

    #[test]
    fn network_failure_is_426() {
        let e = TransferError::Network(errno(Errno::CONNRESET));
        assert_eq!(transfer_reply(&e).0, Code::ConnectionClosedTransferAborted);
    }

    #[test]
    fn too_large_is_552() {
        assert_eq!(
            transfer_reply(&TransferError::TooLarge).0,
            Code::ExceededStorageAllocation
        );
    }

    #[test]
    fn escape_reads_like_permission_denied() {
        // SECURITY: a path outside the home is not confirmed to exist.
        assert_eq!(
            path_reply(JailError::Escape),
            (Code::FileUnavailable, "permission denied")
        );
    }

    #[test]
    fn unknown_verb_is_500() {
        assert_eq!(parse_error_reply(ParseError::Unknown).0, Code::SyntaxError);
    }

    #[test]
    fn full_spool_is_452() {
        assert_eq!(
            refusal_reply(&Refusal::SpoolFull).0,
            Code::InsufficientStorage
        );
    }
}
