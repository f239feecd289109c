//! FTP command lines parsed once, by a pure function, into `Command`.
//!
//! RFC 959 §4.1 (verbs, case-insensitive), RFC 2389 (FEAT, OPTS), RFC 2428
//! (EPRT, EPSV), RFC 3659 (SIZE, MDTM, REST, MLST, MLSD). Arguments borrow
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
        // RFC 4217 (FTP over TLS) with TLS off.
        b"AUTH" => Ok(Command::NotOffered("AUTH (TLS) is")),
        b"PBSZ" | b"PROT" | b"CCC" => Ok(Command::NotOffered("TLS is")),
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
mod tests {
    use super::*;

    fn p(line: &str) -> Result<Command<'_>, ParseError> {
        parse(line.as_bytes())
    }

    fn n(name: &str) -> Name<'_> {
        Name::from(name)
    }

    fn at(stamp: &str) -> Utc {
        crate::protocol::timeval::parse_time_val(stamp).unwrap()
    }

    #[test]
    fn verbs_are_case_insensitive() {
        assert_eq!(p("user demo"), Ok(Command::User("demo")));
        assert_eq!(p("QuIt"), Ok(Command::Quit));
    }

    #[test]
    fn x_variants_map_to_their_verbs() {
        assert_eq!(p("XPWD"), Ok(Command::Pwd));
        assert_eq!(p("XCWD a"), Ok(Command::Cwd(n("a"))));
        assert_eq!(p("XCUP"), Ok(Command::Cdup));
        assert_eq!(p("XMKD a"), Ok(Command::Mkd(n("a"))));
        assert_eq!(p("XRMD a"), Ok(Command::Rmd(n("a"))));
    }

    #[test]
    fn path_keeps_inner_and_trailing_spaces() {
        assert_eq!(
            p("STOR my file .txt "),
            Ok(Command::Stor(n("my file .txt ")))
        );
    }

    #[test]
    fn utf8_path() {
        assert_eq!(p("STOR データ.csv"), Ok(Command::Stor(n("データ.csv"))));
    }

    #[test]
    fn name_bytes_are_kept_for_the_session_to_decode() {
        // Shift_JIS データ.csv: not UTF-8, still a STOR (the session decodes).
        let line = b"STOR \x83\x66\x81\x5b\x83\x5e.csv";
        assert_eq!(
            parse(line),
            Ok(Command::Stor(Name(b"\x83\x66\x81\x5b\x83\x5e.csv")))
        );
    }

    #[test]
    fn non_ascii_verb_is_unknown() {
        assert_eq!(parse(b"ST\xffR x"), Err(ParseError::Unknown));
    }

    #[test]
    fn non_utf8_non_name_argument_is_501() {
        // USER, TYPE, PORT... are not names: their bytes must be text.
        assert_eq!(parse(b"USER \xff"), Err(ParseError::BadArgument));
        assert_eq!(parse(b"PORT \xff"), Err(ParseError::BadArgument));
    }

    #[test]
    fn allo_and_its_arguments() {
        // ALLO 4096 and ALLO 4096 R 512 both mean nothing here.
        assert_eq!(p("ALLO 4096 R 512"), Ok(Command::Allo));
    }

    #[test]
    fn clnt_keeps_printable_ascii() {
        assert_eq!(p("CLNT DH-IPC V2.8"), Ok(Command::Clnt("DH-IPC V2.8")));
        assert_eq!(parse(b"CLNT cam\x07x"), Ok(Command::Clnt("cam")));
        let long = format!("CLNT {}", "m".repeat(200));
        assert_eq!(
            p(&long),
            Ok(Command::Clnt(&long[5..5 + limits::MAX_CLIENT_NAME]))
        );
    }

    #[test]
    fn mdtm_read_form() {
        assert_eq!(p("MDTM a.csv"), Ok(Command::Mdtm(n("a.csv"))));
    }

    #[test]
    fn mdtm_write_form() {
        // rclone --ftp-writing-mdtm: `MDTM YYYYMMDDHHMMSS path`.
        assert_eq!(
            p("MDTM 20261201083000 dir/a b.csv"),
            Ok(Command::SetTime {
                verb: SetTime::Mdtm,
                time: at("20261201083000"),
                path: n("dir/a b.csv")
            })
        );
    }

    #[test]
    fn mdtm_with_digits_only_is_a_name() {
        // No path after the time: a file called 20261201083000.
        assert_eq!(
            p("MDTM 20261201083000"),
            Ok(Command::Mdtm(n("20261201083000")))
        );
    }

    #[test]
    fn mfmt_with_fraction() {
        assert_eq!(
            p("MFMT 20261201083000.123 a"),
            Ok(Command::SetTime {
                verb: SetTime::Mfmt,
                time: at("20261201083000"),
                path: n("a")
            })
        );
    }

    #[test]
    fn mfmt_needs_a_valid_time() {
        assert_eq!(p("MFMT 20261301083000 a"), Err(ParseError::BadArgument));
        assert_eq!(p("MFMT 20260230083000 a"), Err(ParseError::BadArgument));
        assert_eq!(p("MFMT a"), Err(ParseError::BadArgument));
    }

    #[test]
    fn site_utime_time_first() {
        assert_eq!(
            p("SITE UTIME 202612010830 a.jpg"),
            Ok(Command::SetTime {
                verb: SetTime::SiteUtime,
                time: at("20261201083000"),
                path: n("a.jpg")
            })
        );
    }

    #[test]
    fn other_site_commands_are_not_offered() {
        // Recognised (502), not unknown (500).
        assert_eq!(
            p("SITE CHMOD 777 x"),
            Ok(Command::NotOffered("this SITE command is"))
        );
    }

    #[test]
    fn tls_verbs_are_not_offered() {
        for line in ["AUTH TLS", "AUTH SSL", "PBSZ 0", "PROT P", "CCC"] {
            assert!(matches!(p(line), Ok(Command::NotOffered(_))), "{line}");
        }
    }

    #[test]
    fn unknown_verb() {
        assert_eq!(p("FOOBAR"), Err(ParseError::Unknown));
    }

    #[test]
    fn missing_path_is_bad_argument() {
        assert_eq!(p("RETR"), Err(ParseError::BadArgument));
        assert_eq!(p("STOR "), Err(ParseError::BadArgument));
    }

    #[test]
    fn over_long_path_refused() {
        let line = format!("STOR {}", "a".repeat(limits::MAX_PATH + 1));
        assert_eq!(p(&line), Err(ParseError::PathTooLong));
    }

    #[test]
    fn telnet_interrupt_before_abor_is_dropped() {
        assert_eq!(parse(b"\xff\xf4\xffABOR"), Ok(Command::Abor));
    }

    #[test]
    fn empty_password_allowed() {
        assert_eq!(p("PASS"), Ok(Command::Pass("")));
    }

    #[test]
    fn type_forms() {
        assert_eq!(p("TYPE I"), Ok(Command::Type(Type::Image)));
        assert_eq!(p("TYPE a"), Ok(Command::Type(Type::Ascii)));
        assert_eq!(p("TYPE A N"), Ok(Command::Type(Type::Ascii)));
        assert_eq!(p("TYPE L 8"), Ok(Command::Type(Type::Image)));
        assert_eq!(p("TYPE E"), Err(ParseError::NotImplementedParameter));
        assert_eq!(p("TYPE A T"), Err(ParseError::NotImplementedParameter));
        assert_eq!(p("TYPE X"), Err(ParseError::BadArgument));
    }

    #[test]
    fn mode_and_stru() {
        assert_eq!(p("MODE S"), Ok(Command::Mode));
        assert_eq!(
            p("MODE B"),
            Ok(Command::NotOffered("MODE B and MODE C are"))
        );
        assert_eq!(p("MODE X"), Err(ParseError::NotImplementedParameter));
        assert_eq!(p("STRU F"), Ok(Command::Stru));
        assert_eq!(p("STRU R"), Err(ParseError::NotImplementedParameter));
    }

    #[test]
    fn list_flags_are_flags() {
        for line in ["LIST -a", "LIST -l", "LIST -la", "LIST -al", "NLST -a"] {
            assert!(
                matches!(p(line), Ok(Command::List(None) | Command::Nlst(None))),
                "{line}"
            );
        }
        assert_eq!(p("LIST -la sub"), Ok(Command::List(Some(n("sub")))));
    }

    #[test]
    fn a_name_starting_with_a_dash_is_a_path() {
        // `-data.csv` is not made of ls flags.
        assert_eq!(p("LIST -data.csv"), Ok(Command::List(Some(n("-data.csv")))));
    }

    #[test]
    fn list_options_dropped() {
        assert_eq!(p("LIST -la"), Ok(Command::List(None)));
        assert_eq!(p("LIST -a dir one"), Ok(Command::List(Some(n("dir one")))));
        assert_eq!(p("LIST"), Ok(Command::List(None)));
        assert_eq!(p("NLST sub"), Ok(Command::Nlst(Some(n("sub")))));
    }

    #[test]
    fn rest_offset() {
        assert_eq!(p("REST 100"), Ok(Command::Rest(100)));
        assert_eq!(p("REST -1"), Err(ParseError::BadArgument));
        assert_eq!(p("REST"), Err(ParseError::BadArgument));
    }

    #[test]
    fn epsv_forms() {
        assert_eq!(p("EPSV"), Ok(Command::Epsv(EpsvArg::Any)));
        assert_eq!(p("EPSV ALL"), Ok(Command::Epsv(EpsvArg::All)));
        assert_eq!(p("EPSV 2"), Ok(Command::Epsv(EpsvArg::Protocol(2))));
        assert_eq!(p("EPSV 7"), Err(ParseError::BadNetworkProtocol));
    }

    #[test]
    fn long_verb_is_unknown_not_truncated() {
        assert_eq!(p("STORE x"), Err(ParseError::Unknown));
    }
}
