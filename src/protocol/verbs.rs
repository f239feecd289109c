//! The verbs lakeftpd answers, in one table: HELP lists them (RFC 959
//! §4.1.3) and FEAT (RFC 2389 §3) lists the features some of them bring.
//! `command::parse` recognises each of them (a test checks it).

/// When FEAT lists a feature: some follow the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    Always,
    /// With `active = on`.
    Active,
    /// With `passive = on`.
    Passive,
    /// With `passive = on` and `epsv = on`.
    Epsv,
    /// With `tls = on` or `required` (RFC 4217 §6).
    Tls,
}

/// One verb: its name, and the FEAT line it adds, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verb {
    pub name: &'static str,
    pub feat: Option<(&'static str, Offered)>,
}

const fn plain(name: &'static str) -> Verb {
    Verb { name, feat: None }
}

const fn feature(name: &'static str, text: &'static str, offered: Offered) -> Verb {
    Verb {
        name,
        feat: Some((text, offered)),
    }
}

/// Every verb, in alphabetical order (the order HELP shows).
pub const VERBS: &[Verb] = &[
    plain("ABOR"),
    plain("ALLO"),
    plain("APPE"),
    // RFC 4217 §6: FEAT lists the AUTH mechanisms, PBSZ and PROT.
    feature("AUTH", "AUTH TLS", Offered::Tls),
    plain("CCC"),
    plain("CDUP"),
    // Serv-U's CLNT: the device names its software.
    feature("CLNT", "CLNT", Offered::Always),
    // RFC 3659 §6: paths are `/`-separated, the same for every command.
    feature("CWD", "TVFS", Offered::Always),
    plain("DELE"),
    feature("EPRT", "EPRT", Offered::Active),
    feature("EPSV", "EPSV", Offered::Epsv),
    plain("FEAT"),
    plain("HELP"),
    plain("LIST"),
    feature("MDTM", "MDTM", Offered::Always),
    // draft-somers-ftp-mfxx: set a file's modification time.
    feature("MFMT", "MFMT", Offered::Always),
    plain("MKD"),
    plain("MLSD"),
    feature("MLST", "MLST type*;size*;modify*;", Offered::Always),
    plain("MODE"),
    plain("NLST"),
    plain("NOOP"),
    // RFC 2640 §3.1: paths are UTF-8; `OPTS UTF8 ON` is accepted.
    feature("OPTS", "UTF8", Offered::Always),
    plain("PASS"),
    feature("PASV", "PASV", Offered::Passive),
    feature("PBSZ", "PBSZ", Offered::Tls),
    plain("PORT"),
    feature("PROT", "PROT", Offered::Tls),
    plain("PWD"),
    plain("QUIT"),
    feature("REST", "REST STREAM", Offered::Always),
    plain("RETR"),
    plain("RMD"),
    plain("RNFR"),
    plain("RNTO"),
    // SITE UTIME only; other SITE commands get 502.
    plain("SITE"),
    feature("SIZE", "SIZE", Offered::Always),
    plain("STAT"),
    plain("STOR"),
    plain("STOU"),
    plain("STRU"),
    plain("SYST"),
    plain("TYPE"),
    plain("USER"),
    plain("XCUP"),
    plain("XCWD"),
    plain("XMKD"),
    plain("XPWD"),
    plain("XRMD"),
];

/// Verbs per HELP line: 13 columns of 5 fit an 80-column terminal.
const HELP_COLUMNS: usize = 13;

/// The lines of HELP's verb list: names padded to 4, `HELP_COLUMNS` a line.
pub fn help_lines() -> impl Iterator<Item = String> {
    VERBS.chunks(HELP_COLUMNS).map(|row| {
        let mut line = String::new();
        for verb in row {
            line.push_str(&format!("{:<4} ", verb.name));
        }
        line.trim_end().to_string()
    })
}

/// FEAT's lines for the features `offered` accepts, sorted (RFC 2389 §3.2
/// leaves the order free; sorted, a client's diff stays stable).
pub fn features(offered: impl Fn(Offered) -> bool) -> Vec<&'static str> {
    let mut lines: Vec<&'static str> = VERBS
        .iter()
        .filter_map(|verb| verb.feat)
        .filter(|&(_, when)| offered(when))
        .map(|(text, _)| text)
        .collect();
    lines.sort_unstable();
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::command::{parse, ParseError};

    #[test]
    fn every_verb_is_parsed() {
        // HELP must not list a verb the parser calls unknown.
        for verb in VERBS {
            let line = format!("{} x", verb.name);
            assert_ne!(
                parse(line.as_bytes()),
                Err(ParseError::Unknown),
                "{}",
                verb.name
            );
        }
    }

    #[test]
    fn help_lists_only_what_is_offered() {
        // A verb HELP lists must not be one answered 502 (SITE is listed
        // for SITE UTIME, its one offered subcommand).
        use crate::protocol::command::Command;
        for verb in VERBS.iter().filter(|v| v.name != "SITE") {
            let line = format!("{} x", verb.name);
            assert!(
                !matches!(parse(line.as_bytes()), Ok(Command::NotOffered(_))),
                "{}",
                verb.name
            );
        }
    }

    #[test]
    fn verbs_are_sorted_and_unique() {
        // HELP shows them in table order.
        assert!(VERBS.windows(2).all(|w| w[0].name < w[1].name));
    }

    #[test]
    fn help_lines_are_columns_of_four() {
        let lines: Vec<String> = help_lines().collect();
        assert_eq!(
            lines,
            [
                "ABOR ALLO APPE AUTH CCC  CDUP CLNT CWD  DELE EPRT EPSV FEAT HELP",
                "LIST MDTM MFMT MKD  MLSD MLST MODE NLST NOOP OPTS PASS PASV PBSZ",
                "PORT PROT PWD  QUIT REST RETR RMD  RNFR RNTO SITE SIZE STAT STOR",
                "STOU STRU SYST TYPE USER XCUP XCWD XMKD XPWD XRMD",
            ]
        );
    }

    #[test]
    fn all_features_sorted() {
        assert_eq!(
            features(|_| true),
            [
                "AUTH TLS",
                "CLNT",
                "EPRT",
                "EPSV",
                "MDTM",
                "MFMT",
                "MLST type*;size*;modify*;",
                "PASV",
                "PBSZ",
                "PROT",
                "REST STREAM",
                "SIZE",
                "TVFS",
                "UTF8"
            ]
        );
    }

    #[test]
    fn features_follow_the_configuration() {
        // active = off and passive = off: no EPRT, EPSV or PASV.
        assert_eq!(
            features(|o| o == Offered::Always),
            [
                "CLNT",
                "MDTM",
                "MFMT",
                "MLST type*;size*;modify*;",
                "REST STREAM",
                "SIZE",
                "TVFS",
                "UTF8"
            ]
        );
    }

    #[test]
    fn tls_features_only_with_tls() {
        // tls = off: FEAT must not offer AUTH, or clients would try it.
        let lines = features(|o| o != Offered::Tls);
        assert!(!lines
            .iter()
            .any(|l| l.starts_with("AUTH") || *l == "PBSZ" || *l == "PROT"));
    }

    #[test]
    fn epsv_only_with_its_switch() {
        assert!(!features(|o| o != Offered::Epsv).contains(&"EPSV"));
    }
}
