//! FTP command lines parsed once, by a pure function, into `Command`.
//!
//! RFC 959 §4.1 (verbs, case-insensitive), RFC 2389 (FEAT, OPTS), RFC 2428
//! (EPRT, EPSV), RFC 3659 (SIZE, MDTM, REST, MLST, MLSD), RFC 2228 and
//! RFC 4217 (AUTH, PBSZ, PROT, CCC). Arguments borrow
//! from the session's fixed line buffer: parsing allocates nothing.

use crate::limits;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

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
    Stat(Option<&'a str>),
    Type(Type),
    /// MODE S only; anything else is refused at parse.
    Mode,
    /// STRU F only.
    Stru,
    Allo,
    Pwd,
    Cwd(&'a str),
    Cdup,
    Mkd(&'a str),
    Rmd(&'a str),
    Dele(&'a str),
    Rnfr(&'a str),
    Rnto(&'a str),
    Size(&'a str),
    Mdtm(&'a str),
    /// LIST and NLST take an optional path; `-la`-style options are dropped.
    List(Option<&'a str>),
    Nlst(Option<&'a str>),
    Mlsd(Option<&'a str>),
    Mlst(Option<&'a str>),
    Stor(&'a str),
    Stou,
    Appe(&'a str),
    Retr(&'a str),
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
}

/// Why a line is not a command we can run. Each maps to one reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// 500: not a verb we know.
    Unknown,
    /// 501: the verb needs an argument, or the argument is malformed.
    BadArgument,
    /// 504: a parameter we do not implement (TYPE E, MODE B, STRU R...).
    NotImplementedParameter,
    /// 522: EPRT network protocol we do not support (RFC 2428 §2).
    BadNetworkProtocol,
    /// 501: a path argument longer than `MAX_PATH`.
    PathTooLong,
    /// 500: the line is not UTF-8.
    NotUtf8,
}

/// Parses one command line, without its line end.
pub fn parse(line: &[u8]) -> Result<Command<'_>, ParseError> {
    // Telnet IP and Synch (RFC 959 §4.1.3) may precede ABOR: drop the IAC
    // bytes (0xF0..=0xFF can never start an ASCII verb).
    let start = line.iter().position(|&b| b < 0xF0).unwrap_or(line.len());
    let line = std::str::from_utf8(&line[start..]).map_err(|_| ParseError::NotUtf8)?;
    let (verb, arg) = match line.split_once(' ') {
        Some((verb, arg)) => (verb, Some(arg)),
        None => (line, None),
    };
    // Paths may contain spaces and may begin or end with them; only the single
    // separating space is removed (RFC 959 §5.3.2: <SP> is one space).
    let arg = arg.filter(|a| !a.is_empty());
    if verb.len() > 4 {
        return Err(ParseError::Unknown);
    }
    let mut upper = [0u8; 4];
    for (u, b) in upper.iter_mut().zip(verb.bytes()) {
        *u = b.to_ascii_uppercase();
    }
    let verb = &upper[..verb.len()];

    let path = || -> Result<&str, ParseError> {
        let a = arg.ok_or(ParseError::BadArgument)?;
        if a.len() > limits::MAX_PATH {
            Err(ParseError::PathTooLong)
        } else {
            Ok(a)
        }
    };
    let optional_path = || -> Result<Option<&str>, ParseError> {
        match arg {
            None => Ok(None),
            Some(_) => path().map(Some),
        }
    };
    let no_arg = |c: Command<'static>| -> Result<Command<'static>, ParseError> { Ok(c) };

    match verb {
        b"USER" => Ok(Command::User(arg.ok_or(ParseError::BadArgument)?)),
        // An empty password is a password (anonymous-style clients send one).
        b"PASS" => Ok(Command::Pass(arg.unwrap_or(""))),
        b"QUIT" => no_arg(Command::Quit),
        b"NOOP" => no_arg(Command::Noop),
        b"SYST" => no_arg(Command::Syst),
        b"FEAT" => no_arg(Command::Feat),
        b"OPTS" => Ok(Command::Opts(arg.ok_or(ParseError::BadArgument)?)),
        b"HELP" => no_arg(Command::Help),
        b"STAT" => Ok(Command::Stat(optional_path()?)),
        b"TYPE" => parse_type(arg).map(Command::Type),
        b"MODE" => match arg.map(str::trim) {
            Some(m) if m.eq_ignore_ascii_case("S") => Ok(Command::Mode),
            Some(_) => Err(ParseError::NotImplementedParameter),
            None => Err(ParseError::BadArgument),
        },
        b"STRU" => match arg.map(str::trim) {
            Some(s) if s.eq_ignore_ascii_case("F") => Ok(Command::Stru),
            Some(_) => Err(ParseError::NotImplementedParameter),
            None => Err(ParseError::BadArgument),
        },
        b"ALLO" => no_arg(Command::Allo),
        b"PWD" | b"XPWD" => no_arg(Command::Pwd),
        b"CWD" | b"XCWD" => Ok(Command::Cwd(path()?)),
        b"CDUP" | b"XCUP" => no_arg(Command::Cdup),
        b"MKD" | b"XMKD" => Ok(Command::Mkd(path()?)),
        b"RMD" | b"XRMD" => Ok(Command::Rmd(path()?)),
        b"DELE" => Ok(Command::Dele(path()?)),
        b"RNFR" => Ok(Command::Rnfr(path()?)),
        b"RNTO" => Ok(Command::Rnto(path()?)),
        b"SIZE" => Ok(Command::Size(path()?)),
        b"MDTM" => Ok(Command::Mdtm(path()?)),
        b"LIST" => Ok(Command::List(strip_list_options(optional_path()?))),
        b"NLST" => Ok(Command::Nlst(strip_list_options(optional_path()?))),
        b"MLSD" => Ok(Command::Mlsd(optional_path()?)),
        b"MLST" => Ok(Command::Mlst(optional_path()?)),
        b"STOR" => Ok(Command::Stor(path()?)),
        b"STOU" => no_arg(Command::Stou),
        b"APPE" => Ok(Command::Appe(path()?)),
        b"RETR" => Ok(Command::Retr(path()?)),
        b"REST" => arg
            .and_then(|a| a.trim().parse::<u64>().ok())
            .map(Command::Rest)
            .ok_or(ParseError::BadArgument),
        b"ABOR" => no_arg(Command::Abor),
        b"PORT" => parse_port(arg.ok_or(ParseError::BadArgument)?).map(Command::Port),
        b"EPRT" => parse_eprt(arg.ok_or(ParseError::BadArgument)?).map(Command::Eprt),
        b"PASV" => no_arg(Command::Pasv),
        b"EPSV" => match arg.map(str::trim) {
            None => Ok(Command::Epsv(EpsvArg::Any)),
            Some(a) if a.eq_ignore_ascii_case("ALL") => Ok(Command::Epsv(EpsvArg::All)),
            Some("1") => Ok(Command::Epsv(EpsvArg::Protocol(1))),
            Some("2") => Ok(Command::Epsv(EpsvArg::Protocol(2))),
            Some(_) => Err(ParseError::BadNetworkProtocol),
        },
        b"AUTH" => match arg.map(str::trim) {
            Some(m) if m.eq_ignore_ascii_case("TLS") || m.eq_ignore_ascii_case("SSL") => {
                Ok(Command::Auth(Mechanism::Tls))
            }
            // Not "TLS-C"/"TLS-P" (drafts before RFC 4217): 504 later.
            Some(_) => Ok(Command::Auth(Mechanism::Unknown)),
            None => Err(ParseError::BadArgument),
        },
        b"PBSZ" => arg
            .and_then(|a| a.trim().parse::<u64>().ok())
            .map(Command::Pbsz)
            .ok_or(ParseError::BadArgument),
        b"PROT" => match arg.map(str::trim) {
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

/// Many clients send `LIST -la` or `LIST -a path` (ls options): drop them.
fn strip_list_options(arg: Option<&str>) -> Option<&str> {
    let mut rest = arg?;
    while rest.starts_with('-') {
        match rest.split_once(' ') {
            Some((_, after)) => rest = after.trim_start(),
            None => return None,
        }
    }
    if rest.is_empty() {
        None
    } else {
        Some(rest)
    }
}

/// `PORT h1,h2,h3,h4,p1,p2` (RFC 959 §4.1.2): exactly six numbers 0-255.
pub fn parse_port(arg: &str) -> Result<SocketAddr, ParseError> {
    let mut numbers = [0u8; 6];
    let mut count = 0;
    for part in arg.trim().split(',') {
        if count == 6
            || part.is_empty()
            || part.len() > 3
            || !part.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(ParseError::BadArgument);
        }
        numbers[count] = part.parse().map_err(|_| ParseError::BadArgument)?;
        count += 1;
    }
    if count != 6 {
        return Err(ParseError::BadArgument);
    }
    let [a, b, c, d, p1, p2] = numbers;
    let ip = IpAddr::V4(Ipv4Addr::new(a, b, c, d));
    Ok(SocketAddr::new(ip, u16::from(p1) << 8 | u16::from(p2)))
}

/// `EPRT |1|132.235.1.2|6275|` or `EPRT |2|::1|5282|` (RFC 2428 §2). The
/// first character is the delimiter; protocol 1 is IPv4, 2 is IPv6.
pub fn parse_eprt(arg: &str) -> Result<SocketAddr, ParseError> {
    let arg = arg.trim();
    let delimiter = arg.chars().next().ok_or(ParseError::BadArgument)?;
    // RFC 2428 §2: the delimiter is a printable ASCII character 33-126.
    if !('!'..='~').contains(&delimiter) || delimiter.is_ascii_alphanumeric() {
        return Err(ParseError::BadArgument);
    }
    let fields: Vec<&str> = arg.split(delimiter).collect();
    // "" | proto | address | port | ""
    let ["", proto, address, port, ""] = fields.as_slice() else {
        return Err(ParseError::BadArgument);
    };
    let ip: IpAddr = match *proto {
        "1" => IpAddr::V4(address.parse().map_err(|_| ParseError::BadArgument)?),
        "2" => IpAddr::V6(address.parse().map_err(|_| ParseError::BadArgument)?),
        _ => return Err(ParseError::BadNetworkProtocol),
    };
    let port: u16 = port.parse().map_err(|_| ParseError::BadArgument)?;
    if port == 0 {
        return Err(ParseError::BadArgument);
    }
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<Command<'_>, ParseError> {
        parse(line.as_bytes())
    }

    #[test]
    fn auth_tls() {
        assert_eq!(p("AUTH TLS"), Ok(Command::Auth(Mechanism::Tls)));
    }

    #[test]
    fn auth_ssl_is_an_alias() {
        // Older clients (and curl's fallback) send AUTH SSL.
        assert_eq!(p("auth ssl"), Ok(Command::Auth(Mechanism::Tls)));
    }

    #[test]
    fn auth_unknown_mechanism() {
        // Answered 504, not a parse error: the verb is known.
        assert_eq!(p("AUTH GSSAPI"), Ok(Command::Auth(Mechanism::Unknown)));
    }

    #[test]
    fn auth_needs_a_mechanism() {
        assert_eq!(p("AUTH"), Err(ParseError::BadArgument));
    }

    #[test]
    fn pbsz_zero() {
        assert_eq!(p("PBSZ 0"), Ok(Command::Pbsz(0)));
    }

    #[test]
    fn pbsz_not_a_number() {
        assert_eq!(p("PBSZ x"), Err(ParseError::BadArgument));
    }

    #[test]
    fn prot_levels() {
        assert_eq!(p("PROT P"), Ok(Command::Prot(Prot::Private)));
        assert_eq!(p("prot c"), Ok(Command::Prot(Prot::Clear)));
        assert_eq!(p("PROT S"), Ok(Command::Prot(Prot::Safe)));
        assert_eq!(p("PROT E"), Ok(Command::Prot(Prot::Confidential)));
    }

    #[test]
    fn prot_unknown_level() {
        assert_eq!(p("PROT X"), Err(ParseError::BadArgument));
    }

    #[test]
    fn ccc() {
        assert_eq!(p("CCC"), Ok(Command::Ccc));
    }

    #[test]
    fn verbs_are_case_insensitive() {
        assert_eq!(p("user demo"), Ok(Command::User("demo")));
        assert_eq!(p("QuIt"), Ok(Command::Quit));
    }

    #[test]
    fn x_variants_map_to_their_verbs() {
        assert_eq!(p("XPWD"), Ok(Command::Pwd));
        assert_eq!(p("XCWD a"), Ok(Command::Cwd("a")));
        assert_eq!(p("XCUP"), Ok(Command::Cdup));
        assert_eq!(p("XMKD a"), Ok(Command::Mkd("a")));
        assert_eq!(p("XRMD a"), Ok(Command::Rmd("a")));
    }

    #[test]
    fn path_keeps_inner_and_trailing_spaces() {
        assert_eq!(p("STOR my file .txt "), Ok(Command::Stor("my file .txt ")));
    }

    #[test]
    fn utf8_path() {
        assert_eq!(p("STOR データ.csv"), Ok(Command::Stor("データ.csv")));
    }

    #[test]
    fn non_utf8_line_refused() {
        assert_eq!(parse(b"STOR \xff\xfe"), Err(ParseError::NotUtf8));
    }

    #[test]
    fn unknown_verb() {
        assert_eq!(p("SITE CHMOD 777 x"), Err(ParseError::Unknown));
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
        assert_eq!(p("MODE B"), Err(ParseError::NotImplementedParameter));
        assert_eq!(p("STRU F"), Ok(Command::Stru));
        assert_eq!(p("STRU R"), Err(ParseError::NotImplementedParameter));
    }

    #[test]
    fn list_options_dropped() {
        assert_eq!(p("LIST -la"), Ok(Command::List(None)));
        assert_eq!(p("LIST -a dir one"), Ok(Command::List(Some("dir one"))));
        assert_eq!(p("LIST"), Ok(Command::List(None)));
        assert_eq!(p("NLST sub"), Ok(Command::Nlst(Some("sub"))));
    }

    #[test]
    fn rest_offset() {
        assert_eq!(p("REST 100"), Ok(Command::Rest(100)));
        assert_eq!(p("REST -1"), Err(ParseError::BadArgument));
        assert_eq!(p("REST"), Err(ParseError::BadArgument));
    }

    #[test]
    fn port_valid() {
        assert_eq!(
            parse_port("127,0,0,1,4,1"),
            Ok("127.0.0.1:1025".parse().unwrap())
        );
    }

    #[test]
    fn port_needs_six_numbers() {
        assert_eq!(parse_port("127,0,0,1,4"), Err(ParseError::BadArgument));
        assert_eq!(parse_port("127,0,0,1,4,1,1"), Err(ParseError::BadArgument));
    }

    #[test]
    fn port_numbers_at_most_255() {
        assert_eq!(parse_port("127,0,0,256,4,1"), Err(ParseError::BadArgument));
    }

    #[test]
    fn port_rejects_signs_and_spaces_inside() {
        assert_eq!(parse_port("127,0,0,+1,4,1"), Err(ParseError::BadArgument));
        assert_eq!(parse_port("127, 0,0,1,4,1"), Err(ParseError::BadArgument));
        assert_eq!(parse_port("127,,0,1,4,1"), Err(ParseError::BadArgument));
        assert_eq!(parse_port("0127,0,0,1,4,1"), Err(ParseError::BadArgument));
    }

    #[test]
    fn eprt_ipv4() {
        assert_eq!(
            parse_eprt("|1|132.235.1.2|6275|"),
            Ok("132.235.1.2:6275".parse().unwrap())
        );
    }

    #[test]
    fn eprt_ipv6() {
        assert_eq!(
            parse_eprt("|2|1080::8:800:200C:417A|5282|"),
            Ok("[1080::8:800:200C:417A]:5282".parse().unwrap())
        );
    }

    #[test]
    fn eprt_other_delimiter() {
        assert_eq!(
            parse_eprt("!1!10.0.0.1!2000!"),
            Ok("10.0.0.1:2000".parse().unwrap())
        );
    }

    #[test]
    fn eprt_unknown_protocol() {
        assert_eq!(
            parse_eprt("|3|1.2.3.4|2000|"),
            Err(ParseError::BadNetworkProtocol)
        );
    }

    #[test]
    fn eprt_protocol_address_mismatch() {
        assert_eq!(parse_eprt("|1|::1|2000|"), Err(ParseError::BadArgument));
        assert_eq!(parse_eprt("|2|1.2.3.4|2000|"), Err(ParseError::BadArgument));
    }

    #[test]
    fn eprt_malformed() {
        assert_eq!(parse_eprt("|1|1.2.3.4|2000"), Err(ParseError::BadArgument));
        assert_eq!(
            parse_eprt("|1|1.2.3.4|70000|"),
            Err(ParseError::BadArgument)
        );
        assert_eq!(parse_eprt("|1|1.2.3.4|0|"), Err(ParseError::BadArgument));
        assert_eq!(parse_eprt("11.2.3.4120001"), Err(ParseError::BadArgument));
        assert_eq!(parse_eprt(""), Err(ParseError::BadArgument));
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
