//! FTP command lines parsed once, by a pure function, into `Command`.
//!
//! RFC 959 §4.1 (verbs, case-insensitive), RFC 2389 (FEAT, OPTS), RFC 2428
//! (EPRT, EPSV), RFC 3659 (SIZE, MDTM, REST, MLST, MLSD), RFC 2228 and
//! RFC 4217 (AUTH, PBSZ, PROT, CCC). Arguments borrow
//! from the session's fixed line buffer: parsing allocates nothing.

use super::address::{self, AddressError};
use super::listing;
use super::timeval::{self, time_then_path};
use crate::clock::Utc;
use crate::limits;
use std::net::SocketAddr;

/// Representation type (RFC 959 §3.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// ASCII: line ends are CRLF on the wire.
    Ascii,
    /// Image: bytes as they are.
    Image,
}

/// EPSV's argument (RFC 2428 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpsvArg {
    Any,
    /// `EPSV 1` / `EPSV 2`: the network protocol the client wants.
    Protocol(u8),
    /// `EPSV ALL`: from now on only EPSV (no PORT, EPRT, PASV).
    All,
}

/// PROT's argument (RFC 2228 §3, RFC 4217 §9): the data channel
/// protection level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prot {
    /// C: no protection.
    Clear,
    /// S: integrity only (not offered by TLS, RFC 4217 §9).
    Safe,
    /// E: confidentiality only (not offered by TLS).
    Confidential,
    /// P: integrity and confidentiality: TLS on the data connection.
    Private,
}

/// AUTH's mechanism (RFC 4217 §4): `TLS` (and `SSL`, which many clients
/// still send, RFC 4217 §6 notes it), or something else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Tls,
    Unknown,
}

/// A file name argument as the client sent it: bytes in the session's
/// `filename_encoding` (RFC 2640 §2.2), decoded by the session, never here.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Name<'a>(pub &'a [u8]);

impl std::fmt::Debug for Name<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Logs show names escaped; bytes that are not UTF-8 as U+FFFD.
        write!(f, "{:?}", String::from_utf8_lossy(self.0))
    }
}

impl<'a> From<&'a str> for Name<'a> {
    fn from(s: &'a str) -> Name<'a> {
        Name(s.as_bytes())
    }
}

/// Which command set a file's time, for its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetTime {
    /// `MDTM YYYYMMDDHHMMSS path`, the write form (rclone, FileZilla).
    Mdtm,
    /// `MFMT YYYYMMDDHHMMSS path` (draft-somers-ftp-mfxx §3).
    Mfmt,
    /// `SITE UTIME YYYYMMDDHHMM[SS] path` or
    /// `SITE UTIME path ATIME MTIME CTIME UTC` (ProFTPD, Pure-FTPd).
    SiteUtime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    User(&'a str),
    Pass(&'a str),
    Quit,
    Noop,
    Syst,
    Feat,
    /// `OPTS UTF8 ON` and friends; the whole argument.
    Opts(&'a str),
    Help,
    Stat(Option<Name<'a>>),
    Type(Type),
    /// MODE S only; B and C are `NotOffered`.
    Mode,
    /// STRU F only.
    Stru,
    Allo,
    /// `CLNT name`: the client software's name (Serv-U, sent by many
    /// device firmwares); printable ASCII, cut to `MAX_CLIENT_NAME`.
    Clnt(&'a str),
    Pwd,
    Cwd(Name<'a>),
    Cdup,
    Mkd(Name<'a>),
    Rmd(Name<'a>),
    Dele(Name<'a>),
    Rnfr(Name<'a>),
    Rnto(Name<'a>),
    Size(Name<'a>),
    Mdtm(Name<'a>),
    /// Sets a file's modification time (UTC) to `time`.
    SetTime {
        verb: SetTime,
        time: Utc,
        path: Name<'a>,
    },
    /// LIST and NLST take an optional path; `-a`, `-l`, `-la`-style `ls`
    /// flags before it are flags.
    List(Option<Name<'a>>),
    Nlst(Option<Name<'a>>),
    Mlsd(Option<Name<'a>>),
    Mlst(Option<Name<'a>>),
    Stor(Name<'a>),
    Stou,
    Appe(Name<'a>),
    Retr(Name<'a>),
    Rest(u64),
    Abor,
    Port(SocketAddr),
    Eprt(SocketAddr),
    Pasv,
    Epsv(EpsvArg),
    Auth(Mechanism),
    /// PBSZ's buffer size (RFC 4217 §8: 0 for TLS).
    Pbsz(u64),
    Prot(Prot),
    Ccc,
    /// Recognised, but not offered: 502 (RFC 959 §4.2: not implemented),
    /// not 500 (not understood). The name is for the reply.
    NotOffered(&'static str),
}

/// Why a line is not a command we can run. Each maps to one reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// 500: not a verb we know.
    Unknown,
    /// 501: the verb needs an argument, or the argument is malformed (a
    /// non-name argument that is not UTF-8 too).
    BadArgument,
    /// 504: a parameter we do not implement (TYPE E, STRU R...).
    NotImplementedParameter,
    /// 522: EPRT network protocol we do not support (RFC 2428 §2).
    BadNetworkProtocol,
    /// 501: a path argument longer than `MAX_PATH`.
    PathTooLong,
}

/// Parses one command line, without its line end. The verb is ASCII;
/// name arguments stay bytes (see `Name`); other arguments must be UTF-8.
pub fn parse(line: &[u8]) -> Result<Command<'_>, ParseError> {
    // Telnet IP and Synch (RFC 959 §4.1.3) may precede ABOR: drop the IAC
    // bytes (0xF0..=0xFF can never start an ASCII verb).
    let start = line.iter().position(|&b| b < 0xF0).unwrap_or(line.len());
    let line = &line[start..];
    let (verb, arg) = match line.iter().position(|&b| b == b' ') {
        Some(at) => (&line[..at], Some(&line[at + 1..])),
        None => (line, None),
    };
    // Paths may contain spaces and may begin or end with them; only the single
    // separating space is removed (RFC 959 §5.3.2: <SP> is one space).
    let arg = arg.filter(|a| !a.is_empty());
    if verb.len() > 4 || !verb.is_ascii() {
        return Err(ParseError::Unknown);
    }
    let mut upper = [0u8; 4];
    for (u, b) in upper.iter_mut().zip(verb) {
        *u = b.to_ascii_uppercase();
    }
    let verb = &upper[..verb.len()];

    let path = || -> Result<Name<'_>, ParseError> { name(arg.ok_or(ParseError::BadArgument)?) };
    let optional_path = || -> Result<Option<Name<'_>>, ParseError> {
        match arg {
            None => Ok(None),
            Some(_) => path().map(Some),
        }
    };
    // Arguments that are not names: UTF-8 (in practice ASCII) or 501.
    let text = || -> Result<Option<&str>, ParseError> {
        arg.map(|a| std::str::from_utf8(a).map_err(|_| ParseError::BadArgument))
            .transpose()
    };
    let needed = || text()?.ok_or(ParseError::BadArgument);
    let no_arg = |c: Command<'static>| -> Result<Command<'static>, ParseError> { Ok(c) };

    match verb {
        b"USER" => Ok(Command::User(needed()?)),
        // An empty password is a password (anonymous-style clients send one).
        b"PASS" => Ok(Command::Pass(text()?.unwrap_or(""))),
        b"QUIT" => no_arg(Command::Quit),
        b"NOOP" => no_arg(Command::Noop),
        b"SYST" => no_arg(Command::Syst),
        b"FEAT" => no_arg(Command::Feat),
        b"OPTS" => Ok(Command::Opts(needed()?)),
        b"HELP" => no_arg(Command::Help),
        b"STAT" => Ok(Command::Stat(optional_path()?)),
        b"TYPE" => parse_type(text()?).map(Command::Type),
        b"MODE" => match text()?.map(str::trim) {
            Some(m) if m.eq_ignore_ascii_case("S") => Ok(Command::Mode),
            // Block and compressed modes (RFC 959 §3.4.2-3) are defined
            // but not offered.
            Some(m) if m.eq_ignore_ascii_case("B") || m.eq_ignore_ascii_case("C") => {
                Ok(Command::NotOffered("MODE B and MODE C are"))
            }
            Some(_) => Err(ParseError::NotImplementedParameter),
            None => Err(ParseError::BadArgument),
        },
        b"STRU" => match text()?.map(str::trim) {
            Some(s) if s.eq_ignore_ascii_case("F") => Ok(Command::Stru),
            Some(_) => Err(ParseError::NotImplementedParameter),
            None => Err(ParseError::BadArgument),
        },
        b"ALLO" => no_arg(Command::Allo),
        b"CLNT" => Ok(Command::Clnt(client_name(needed()?))),
        b"PWD" | b"XPWD" => no_arg(Command::Pwd),
        b"CWD" | b"XCWD" => Ok(Command::Cwd(path()?)),
        b"CDUP" | b"XCUP" => no_arg(Command::Cdup),
        b"MKD" | b"XMKD" => Ok(Command::Mkd(path()?)),
        b"RMD" | b"XRMD" => Ok(Command::Rmd(path()?)),
        b"DELE" => Ok(Command::Dele(path()?)),
        b"RNFR" => Ok(Command::Rnfr(path()?)),
        b"RNTO" => Ok(Command::Rnto(path()?)),
        b"SIZE" => Ok(Command::Size(path()?)),
        b"MDTM" => {
            let arg = arg.ok_or(ParseError::BadArgument)?;
            match time_then_path(arg) {
                Some((time, rest)) => Ok(Command::SetTime {
                    verb: SetTime::Mdtm,
                    time,
                    path: name(rest)?,
                }),
                None => Ok(Command::Mdtm(name(arg)?)),
            }
        }
        b"MFMT" => {
            let (time, rest) = time_then_path(arg.ok_or(ParseError::BadArgument)?)
                .ok_or(ParseError::BadArgument)?;
            Ok(Command::SetTime {
                verb: SetTime::Mfmt,
                time,
                path: name(rest)?,
            })
        }
        b"SITE" => parse_site(arg.ok_or(ParseError::BadArgument)?),
        b"LIST" => Ok(Command::List(list_path(arg)?)),
        b"NLST" => Ok(Command::Nlst(list_path(arg)?)),
        b"MLSD" => Ok(Command::Mlsd(optional_path()?)),
        b"MLST" => Ok(Command::Mlst(optional_path()?)),
        b"STOR" => Ok(Command::Stor(path()?)),
        b"STOU" => no_arg(Command::Stou),
        b"APPE" => Ok(Command::Appe(path()?)),
        b"RETR" => Ok(Command::Retr(path()?)),
        b"REST" => text()?
            .and_then(|a| a.trim().parse::<u64>().ok())
            .map(Command::Rest)
            .ok_or(ParseError::BadArgument),
        b"ABOR" => no_arg(Command::Abor),
        b"PORT" => address::parse_port(needed()?)
            .map(Command::Port)
            .map_err(address_error),
        b"EPRT" => address::parse_eprt(needed()?)
            .map(Command::Eprt)
            .map_err(address_error),
        b"PASV" => no_arg(Command::Pasv),
        b"EPSV" => match text()?.map(str::trim) {
            None => Ok(Command::Epsv(EpsvArg::Any)),
            Some(a) if a.eq_ignore_ascii_case("ALL") => Ok(Command::Epsv(EpsvArg::All)),
            Some("1") => Ok(Command::Epsv(EpsvArg::Protocol(1))),
            Some("2") => Ok(Command::Epsv(EpsvArg::Protocol(2))),
            Some(_) => Err(ParseError::BadNetworkProtocol),
        },
        b"AUTH" => match text()?.map(str::trim) {
            Some(m) if m.eq_ignore_ascii_case("TLS") || m.eq_ignore_ascii_case("SSL") => {
                Ok(Command::Auth(Mechanism::Tls))
            }
            // Not "TLS-C"/"TLS-P" (drafts before RFC 4217): 504 later.
            Some(_) => Ok(Command::Auth(Mechanism::Unknown)),
            None => Err(ParseError::BadArgument),
        },
        b"PBSZ" => text()?
            .and_then(|a| a.trim().parse::<u64>().ok())
            .map(Command::Pbsz)
            .ok_or(ParseError::BadArgument),
        b"PROT" => match text()?.map(str::trim) {
            Some(l) if l.eq_ignore_ascii_case("C") => Ok(Command::Prot(Prot::Clear)),
            Some(l) if l.eq_ignore_ascii_case("S") => Ok(Command::Prot(Prot::Safe)),
            Some(l) if l.eq_ignore_ascii_case("E") => Ok(Command::Prot(Prot::Confidential)),
            Some(l) if l.eq_ignore_ascii_case("P") => Ok(Command::Prot(Prot::Private)),
            _ => Err(ParseError::BadArgument),
        },
        b"CCC" => no_arg(Command::Ccc),
        _ => Err(ParseError::Unknown),
    }
}

fn address_error(e: AddressError) -> ParseError {
    match e {
        AddressError::Malformed => ParseError::BadArgument,
        AddressError::NetworkProtocol => ParseError::BadNetworkProtocol,
    }
}

/// A name argument, at most `MAX_PATH` bytes.
fn name(arg: &[u8]) -> Result<Name<'_>, ParseError> {
    if arg.len() > limits::MAX_PATH {
        Err(ParseError::PathTooLong)
    } else {
        Ok(Name(arg))
    }
}

/// CLNT's text: printable ASCII only (it goes into logs and S3 metadata),
/// at most `MAX_CLIENT_NAME` bytes; the rest is dropped.
fn client_name(text: &str) -> &str {
    let end = text
        .bytes()
        .position(|b| !(b' '..=b'~').contains(&b))
        .unwrap_or(text.len())
        .min(limits::MAX_CLIENT_NAME);
    text[..end].trim()
}

/// `SITE UTIME ...`; any other SITE subcommand is recognised, not offered.
fn parse_site(arg: &[u8]) -> Result<Command<'_>, ParseError> {
    let (sub, rest) = match arg.iter().position(|&b| b == b' ') {
        Some(at) => (&arg[..at], &arg[at + 1..]),
        None => (arg, &b""[..]),
    };
    if !sub.eq_ignore_ascii_case(b"UTIME") {
        return Ok(Command::NotOffered("this SITE command is"));
    }
    let (time, path) = timeval::site_utime(rest).ok_or(ParseError::BadArgument)?;
    Ok(Command::SetTime {
        verb: SetTime::SiteUtime,
        time,
        path: name(path)?,
    })
}

/// LIST/NLST's argument without its `ls` flags (listing.rs).
fn list_path(arg: Option<&[u8]>) -> Result<Option<Name<'_>>, ParseError> {
    match arg.map(listing::strip_flags) {
        None | Some(b"") => Ok(None),
        Some(rest) => name(rest).map(Some),
    }
}

/// `TYPE A`, `TYPE A N`, `TYPE I`, `TYPE L 8` (RFC 959 §4.1.2).
fn parse_type(arg: Option<&str>) -> Result<Type, ParseError> {
    let arg = arg.ok_or(ParseError::BadArgument)?;
    let mut words = arg.split_whitespace();
    let code = words.next().ok_or(ParseError::BadArgument)?;
    let second = words.next();
    if words.next().is_some() {
        return Err(ParseError::BadArgument);
    }
    match (code.to_ascii_uppercase().as_str(), second) {
        ("A", None) => Ok(Type::Ascii),
        ("A", Some(f)) if f.eq_ignore_ascii_case("N") => Ok(Type::Ascii),
        ("I", None) => Ok(Type::Image),
        ("L", Some("8")) => Ok(Type::Image),
        ("A" | "E", Some(_)) | ("E", None) | ("L", _) => Err(ParseError::NotImplementedParameter),
        _ => Err(ParseError::BadArgument),
    }
}

#[cfg(test)]
mod tests;
