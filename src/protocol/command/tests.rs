//! The command-line parser's table: one case per test, each with its reason.

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
