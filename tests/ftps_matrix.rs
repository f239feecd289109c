//! The FTPS client matrix: every client at its own defaults (only what
//! FTPS needs set) against lakeftpd at its defaults (`tls = on`,
//! `tls_session_reuse = required`), and, where a client cannot resume,
//! again as a user with `tls_session_reuse = off`. Each cell asserts its
//! expected result; `docs/interop.md` ("FTPS") holds the same table, and
//! `interop_doc_matches_the_matrix` fails when the two differ (its message
//! prints the table to paste).
//!
//! Uploads store three files on one control connection (the second and
//! third data connections are where clients that use a TLS 1.3 ticket once
//! fail) and are compared byte for byte on the server's disk. A result is
//! `ok`, `522 at #N` (transfer N refused: the data connection did not
//! resume), `425` (the data connection's TLS failed), `refused (version)`
//! (no handshake), `handshake ok`, or `timeout`.

mod common;

use common::{pattern, tls, Scratch, Server, PASSWORD};
use std::path::Path;

const CLIENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients");
const FILES: [&str; 3] = ["m1.bin", "m2.bin", "m3.bin"];

/// One row: the client, how it is run, the result at the defaults, and as
/// a user with `tls_session_reuse = off` (`—`: not run, the default works).
struct Cell {
    id: &'static str,
    client: &'static str,
    how: &'static str,
    at_defaults: &'static str,
    reuse_off: &'static str,
    note: &'static str,
}

const MATRIX: &[Cell] = &[
    Cell {
        id: "curl-tls12",
        client: "curl 7.88 (OpenSSL 3.0)",
        how: "`--ssl-reqd --tls-max 1.2 -T \"{a,b,c}\"`, passive",
        at_defaults: "ok",
        reuse_off: "—",
        note: "resumes by ticket",
    },
    Cell {
        id: "curl-tls13",
        client: "curl 7.88 (OpenSSL 3.0)",
        how: "`--ssl-reqd -T \"{a,b,c}\"` (TLS 1.3), passive",
        at_defaults: "ok",
        reuse_off: "—",
        note: "uses each TLS 1.3 ticket once; starts TLS before STOR, so each data connection hands it a new one before the transfer",
    },
    Cell {
        id: "curl-active",
        client: "curl 7.88 (OpenSSL 3.0)",
        how: "`--ssl-reqd -P -`, active",
        at_defaults: "425",
        reuse_off: "425",
        note: "curl before 8.0 cannot do active FTPS (curl#10666): use passive",
    },
    Cell {
        id: "lftp-tls13-passive",
        client: "lftp 4.9.2 (GnuTLS 3.7)",
        how: "`mirror -R`, passive, TLS 1.3",
        at_defaults: "ok",
        reuse_off: "—",
        note: "",
    },
    Cell {
        id: "lftp-tls13-active",
        client: "lftp 4.9.2 (GnuTLS 3.7)",
        how: "`mirror -R`, active, TLS 1.3",
        at_defaults: "ok",
        reuse_off: "—",
        note: "",
    },
    Cell {
        id: "lftp-tls12-passive",
        client: "lftp 4.9.2 (GnuTLS 3.7)",
        how: "`mirror -R`, passive, `ssl:priority` TLS 1.2 only",
        at_defaults: "ok",
        reuse_off: "—",
        note: "",
    },
    Cell {
        id: "lftp-tls12-active",
        client: "lftp 4.9.2 (GnuTLS 3.7)",
        how: "`mirror -R`, active, `ssl:priority` TLS 1.2 only",
        at_defaults: "ok",
        reuse_off: "—",
        note: "",
    },
    Cell {
        id: "rclone-tls13",
        client: "rclone 1.60",
        how: "`copy --ftp-explicit-tls` (4 connections), passive",
        at_defaults: "ok",
        reuse_off: "—",
        note: "one ticket cache for all its connections: same user, accepted; a ticket of a connection not yet logged in gets 522, which rclone retries",
    },
    Cell {
        id: "rclone-tls12",
        client: "rclone 1.60",
        how: "`copy --ftp-explicit-tls --ftp-disable-tls13`, passive",
        at_defaults: "ok",
        reuse_off: "—",
        note: "",
    },
    Cell {
        id: "ftplib-stock",
        client: "Python 3.11 ftplib `FTP_TLS`",
        how: "`prot_p()`, passive",
        at_defaults: "522 at #1",
        reuse_off: "ok",
        note: "never resumes",
    },
    Cell {
        id: "ftplib-reuse",
        client: "Python 3.11 ftplib `FTP_TLS`",
        how: "`prot_p()`, `session=` in `ntransfercmd`, passive",
        at_defaults: "ok",
        reuse_off: "—",
        note: "the usual recipe for servers that require reuse",
    },
    Cell {
        id: "commons-net",
        client: "Apache Commons Net 3.9 `FTPSClient` (Java 17)",
        how: "`execPBSZ(0)`, `execPROT(\"P\")`, passive",
        at_defaults: "522 at #1",
        reuse_off: "ok",
        note: "never resumes (JSSE keeps sessions per host:port)",
    },
    Cell {
        id: "perl-passive",
        client: "Perl Net::FTP 3.14 + IO::Socket::SSL 2.081",
        how: "`starttls`, `prot('P')`, passive",
        at_defaults: "522 at #1",
        reuse_off: "ok",
        note: "does not resume in passive mode",
    },
    Cell {
        id: "perl-active",
        client: "Perl Net::FTP 3.14 + IO::Socket::SSL 2.081",
        how: "`starttls`, `prot('P')`, active",
        at_defaults: "522 at #3",
        reuse_off: "ok",
        note: "uses each of the control connection's two TLS 1.3 tickets once",
    },
    Cell {
        id: "php",
        client: "PHP 8.2 `ftp_ssl_connect`",
        how: "`ftp_put` ×3, passive",
        at_defaults: "522 at #2",
        reuse_off: "ok",
        note: "uses a TLS 1.3 ticket once and never reads an upload's data connection",
    },
    Cell {
        id: "aioftp-implicit",
        client: "aioftp 0.24.1 (PyPI)",
        how: "`ssl=`: implicit TLS, data TLS before the command, passive",
        at_defaults: "522 at #1",
        reuse_off: "ok",
        note: "starts TLS on the data connection before STOR (served: the handshake is made while the session waits for the command); never resumes",
    },
    Cell {
        id: "openssl-tls1.0",
        client: "openssl s_client 3.0",
        how: "`-starttls ftp -tls1`",
        at_defaults: "refused (version)",
        reuse_off: "—",
        note: "counted as `tls_handshakes_failed_version`",
    },
    Cell {
        id: "openssl-tls1.1",
        client: "openssl s_client 3.0",
        how: "`-starttls ftp -tls1_1`",
        at_defaults: "refused (version)",
        reuse_off: "—",
        note: "",
    },
    Cell {
        id: "openssl-tls1.2",
        client: "openssl s_client 3.0",
        how: "`-starttls ftp -tls1_2`",
        at_defaults: "handshake ok",
        reuse_off: "—",
        note: "",
    },
    Cell {
        id: "openssl-tls1.3",
        client: "openssl s_client 3.0",
        how: "`-starttls ftp -tls1_3`",
        at_defaults: "handshake ok",
        reuse_off: "—",
        note: "",
    },
    Cell {
        id: "gnutls-tls1.0",
        client: "gnutls-cli 3.7",
        how: "`--starttls-proto=ftp`, priority TLS 1.0 only",
        at_defaults: "refused (version)",
        reuse_off: "—",
        note: "",
    },
    Cell {
        id: "gnutls-tls1.1",
        client: "gnutls-cli 3.7",
        how: "`--starttls-proto=ftp`, priority TLS 1.1 only",
        at_defaults: "refused (version)",
        reuse_off: "—",
        note: "",
    },
    Cell {
        id: "gnutls-tls1.2",
        client: "gnutls-cli 3.7",
        how: "`--starttls-proto=ftp`, priority TLS 1.2 only",
        at_defaults: "handshake ok",
        reuse_off: "—",
        note: "",
    },
    Cell {
        id: "gnutls-tls1.3",
        client: "gnutls-cli 3.7",
        how: "`--starttls-proto=ftp`, priority TLS 1.3 only",
        at_defaults: "handshake ok",
        reuse_off: "—",
        note: "",
    },
];

fn cell(id: &str) -> &'static Cell {
    MATRIX
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no cell {id}"))
}

/// The server every row runs against: `tls = on` and the defaults, an
/// implicit listener, `dev` at the defaults and `old` with
/// `tls_session_reuse = off`.
struct Lake {
    server: Server,
    /// The files uploaded, and where clients run.
    work: Scratch,
    /// The server's certificate pair (kept while it runs).
    _certs: Scratch,
    implicit: u16,
}

impl Lake {
    fn start() -> Lake {
        let work = Scratch::new("matrix");
        for (i, name) in FILES.iter().enumerate() {
            std::fs::write(work.0.join(name), content(i)).unwrap();
        }
        let (server, certs) = tls::start(
            "on",
            "implicit_tls_listen = 127.0.0.1:0\n",
            &[("dev", "full")],
            &[("old", "tls_session_reuse = off\n")],
        );
        let implicit = tls::implicit_port(&server);
        Lake {
            server,
            work,
            _certs: certs,
            implicit,
        }
    }

    fn port(&self) -> String {
        self.server.port().to_string()
    }

    fn files(&self) -> Vec<String> {
        FILES
            .iter()
            .map(|f| self.work.0.join(f).to_str().unwrap().to_string())
            .collect()
    }

    /// `ok` when the three files are in `user`'s `dir` byte for byte.
    fn stored(&self, user: &str, dir: &str) -> String {
        let home = self.server.home(user).join(dir);
        for (i, name) in FILES.iter().enumerate() {
            if std::fs::read(home.join(name)).ok() != Some(content(i)) {
                return format!("{name} missing or different");
            }
        }
        "ok".into()
    }

    /// The outcome of an upload that printed `out`: `ok` if the files
    /// arrived, else the first refusal the client reported.
    fn upload_result(&self, user: &str, dir: &str, out: &str) -> String {
        if out.trim() == "OK" {
            return self.stored(user, dir);
        }
        refusal(out)
    }
}

fn content(i: usize) -> Vec<u8> {
    pattern(20_000 + i * 30_000, 40 + i as u64)
}

/// `522 at #N` from a client line like `ERR put #2 522 ...` or
/// `ERR put #2 ftp_put(): the data connection must resume ...`.
fn refusal(out: &str) -> String {
    let line = out.lines().find(|l| l.starts_with("ERR")).unwrap_or(out);
    let n = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix('#'))
        .unwrap_or("1");
    if line.contains("522") || line.contains("must resume") {
        return format!("522 at #{n}");
    }
    if line.contains("TimeoutError") {
        return "timeout".into();
    }
    format!("unexpected: {}", line.trim())
}

/// Asserts both results of `id` (`off` is `None` where the cell says `—`).
fn check(id: &str, defaults: String, off: Option<String>, lake: &Lake) {
    let c = cell(id);
    assert_eq!(
        defaults,
        c.at_defaults,
        "{id} at the defaults\n{}",
        lake.server.log()
    );
    let off = off.unwrap_or_else(|| "—".into());
    assert_eq!(
        off,
        c.reuse_off,
        "{id} with tls_session_reuse = off\n{}",
        lake.server.log()
    );
}

fn curl(lake: &Lake, user: &str, dir: &str, extra: &[&str]) -> String {
    let url = format!("ftp://{user}:{PASSWORD}@127.0.0.1:{}/{dir}/", lake.port());
    let mut args = vec!["-sS", "--ssl-reqd", "-k", "--ftp-create-dirs"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-T", "{m1.bin,m2.bin,m3.bin}", &url]);
    let (ok, _, err) = common::run(
        "timeout",
        &[&["60", "curl"][..], &args].concat(),
        None,
        Some(&lake.work.0),
    );
    if ok {
        return lake.stored(user, dir);
    }
    if err.contains("got 522") {
        let stored = FILES
            .iter()
            .take_while(|f| lake.server.home(user).join(dir).join(f).exists())
            .count();
        return format!("522 at #{}", stored + 1);
    }
    if err.contains("got 425") || lake.server.log().contains("reply=425") {
        return "425".into();
    }
    format!("unexpected: {err}")
}

#[test]
fn curl_rows() {
    let lake = Lake::start();
    let tls12 = curl(&lake, "dev", "c12", &["--tls-max", "1.2"]);
    check("curl-tls12", tls12, None, &lake);
    check("curl-tls13", curl(&lake, "dev", "c13", &[]), None, &lake);
    let active = curl(&lake, "dev", "ca", &["-P", "-"]);
    let active_off = curl(&lake, "old", "ca", &["-P", "-"]);
    check("curl-active", active, Some(active_off), &lake);
}

fn lftp(lake: &Lake, passive: bool, settings: &str, dir: &str) -> String {
    let tree = lake.work.0.join(format!("tree-{dir}"));
    std::fs::create_dir_all(&tree).unwrap();
    for (i, name) in FILES.iter().enumerate() {
        std::fs::write(tree.join(name), content(i)).unwrap();
    }
    let commands = format!(
        "set ssl:verify-certificate no; set ftp:ssl-force yes; set ftp:ssl-protect-data yes; \
         set ftp:passive-mode {}; set net:max-retries 1; {settings} mirror -R {} {dir}; bye",
        if passive { "on" } else { "off" },
        tree.display()
    );
    let (ok, out, err) = common::run(
        "timeout",
        &[
            "60",
            "lftp",
            "-u",
            &format!("dev,{PASSWORD}"),
            "-e",
            &commands,
            &format!("127.0.0.1:{}", lake.port()),
        ],
        None,
        None,
    );
    if ok && !err.contains("Access failed") {
        return lake.stored("dev", dir);
    }
    refusal(&format!("ERR {out} {err}"))
}

#[test]
fn lftp_rows() {
    let lake = Lake::start();
    let tls12 = "set ssl:priority NORMAL:-VERS-ALL:+VERS-TLS1.2;";
    check(
        "lftp-tls13-passive",
        lftp(&lake, true, "", "l13p"),
        None,
        &lake,
    );
    check(
        "lftp-tls13-active",
        lftp(&lake, false, "", "l13a"),
        None,
        &lake,
    );
    check(
        "lftp-tls12-passive",
        lftp(&lake, true, tls12, "l12p"),
        None,
        &lake,
    );
    check(
        "lftp-tls12-active",
        lftp(&lake, false, tls12, "l12a"),
        None,
        &lake,
    );
}

fn rclone(lake: &Lake, extra: &[&str], dir: &str) -> String {
    let tree = lake.work.0.join(format!("tree-{dir}"));
    std::fs::create_dir_all(&tree).unwrap();
    for (i, name) in FILES.iter().enumerate() {
        std::fs::write(tree.join(name), content(i)).unwrap();
    }
    let (ok, obscured, err) = common::run("rclone", &["obscure", PASSWORD], None, None);
    assert!(ok, "{err}");
    let remote = format!(
        ":ftp,host=127.0.0.1,port={},user=dev,pass={},explicit_tls=true,no_check_certificate=true:{dir}",
        lake.port(),
        obscured.trim()
    );
    let mut args = vec!["60", "rclone", "copy"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[tree.to_str().unwrap(), &remote]);
    let (ok, _, err) = common::run("timeout", &args, None, None);
    if !ok {
        return refusal(&format!("ERR {err}"));
    }
    // A data connection may resume a ticket of another of its connections
    // that has not logged in yet (522); rclone retries it: the copy is
    // what counts.
    lake.stored("dev", dir)
}

#[test]
fn rclone_rows() {
    let lake = Lake::start();
    check("rclone-tls13", rclone(&lake, &[], "r13"), None, &lake);
    check(
        "rclone-tls12",
        rclone(&lake, &["--ftp-disable-tls13"], "r12"),
        None,
        &lake,
    );
}

/// Runs `program pre... PORT USER PASSWORD post... FILE...`, a client that
/// stores the files by their base names in the user's home and prints OK
/// or `ERR put #N reply`; returns the cell's result and empties the home.
fn stored_by(lake: &Lake, program: &str, pre: &[&str], post: &[&str], user: &str) -> String {
    let mut args: Vec<String> = pre.iter().map(|s| s.to_string()).collect();
    args.extend([lake.port(), user.to_string(), PASSWORD.to_string()]);
    args.extend(post.iter().map(|s| s.to_string()));
    args.extend(lake.files());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_, out, err) = common::run(
        "timeout",
        &[&["90", program][..], &args].concat(),
        None,
        Some(&lake.work.0),
    );
    if out.trim().is_empty() {
        return format!("unexpected: {err}");
    }
    let result = lake.upload_result(user, "", &out);
    // The next client of the same user starts from an empty home.
    for name in FILES {
        let _ = std::fs::remove_file(lake.server.home(user).join(name));
    }
    result
}

#[test]
fn ftplib_rows() {
    let lake = Lake::start();
    let py = format!("{CLIENTS}/ftps_ftplib.py");
    let run = |user: &str, options: &[&str]| {
        let mut post = vec!["passive", "store-files"];
        post.extend_from_slice(options);
        stored_by(&lake, "python3", &[&py], &post, user)
    };
    let stock = run("dev", &[]);
    let stock_off = run("old", &[]);
    check("ftplib-stock", stock, Some(stock_off), &lake);
    check("ftplib-reuse", run("dev", &["reuse"]), None, &lake);
}

#[test]
fn commons_net_row() {
    let lake = Lake::start();
    let java = format!("{CLIENTS}/FtpsCommons.java");
    let run = |user: &str| {
        stored_by(
            &lake,
            "java",
            &["-cp", "/usr/share/java/commons-net.jar", &java],
            &[],
            user,
        )
    };
    let defaults = run("dev");
    check("commons-net", defaults, Some(run("old")), &lake);
}

#[test]
fn perl_rows() {
    let lake = Lake::start();
    let pl = format!("{CLIENTS}/ftps_perl.pl");
    let run = |user: &str, mode: &str| stored_by(&lake, "perl", &[&pl], &[mode], user);
    let passive = run("dev", "passive");
    check("perl-passive", passive, Some(run("old", "passive")), &lake);
    let active = run("dev", "active");
    check("perl-active", active, Some(run("old", "active")), &lake);
}

#[test]
fn php_row() {
    let lake = Lake::start();
    let php = format!("{CLIENTS}/ftps_php.php");
    let run = |user: &str| stored_by(&lake, "php", &[&php], &[], user);
    let defaults = run("dev");
    check("php", defaults, Some(run("old")), &lake);
}

#[test]
fn aioftp_implicit_row() {
    let lake = Lake::start();
    let py = format!("{CLIENTS}/ftps_aioftp.py");
    let implicit = lake.implicit.to_string();
    let run = |user: &str| {
        let mut args = vec![
            "90",
            "python3",
            py.as_str(),
            implicit.as_str(),
            user,
            PASSWORD,
        ];
        let files = lake.files();
        args.extend(files.iter().map(String::as_str));
        let (_, out, err) = common::run("timeout", &args, None, None);
        if out.trim().is_empty() {
            return format!("unexpected: {err}");
        }
        let result = lake.upload_result(user, "", &out);
        for name in FILES {
            let _ = std::fs::remove_file(lake.server.home(user).join(name));
        }
        result
    };
    let defaults = run("dev");
    check("aioftp-implicit", defaults, Some(run("old")), &lake);
}

/// `handshake ok` or `refused (version)` (the server counted a version
/// failure for it).
fn handshake(lake: &Lake, program: &str, args: &[&str], completed: &str) -> String {
    let refused = "(no protocol version in common;";
    let before = lake.server.log().matches(refused).count();
    let args = [&["10", program][..], args].concat();
    let (_, out, err) = common::run("timeout", &args, Some("QUIT\n"), None);
    if out.contains(completed) || err.contains(completed) {
        return "handshake ok".into();
    }
    let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < end {
        if lake.server.log().matches(refused).count() > before {
            return "refused (version)".into();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    format!("unexpected: {out} {err}\n{}", lake.server.log())
}

#[test]
fn raw_version_rows() {
    let lake = Lake::start();
    let connect = format!("127.0.0.1:{}", lake.port());
    for (id, flag) in [
        ("openssl-tls1.0", "-tls1"),
        ("openssl-tls1.1", "-tls1_1"),
        ("openssl-tls1.2", "-tls1_2"),
        ("openssl-tls1.3", "-tls1_3"),
    ] {
        // SECLEVEL=0: Debian's OpenSSL offers 1.0 and 1.1 only then.
        let args = [
            "s_client",
            "-connect",
            &connect,
            "-starttls",
            "ftp",
            flag,
            "-cipher",
            "DEFAULT:@SECLEVEL=0",
        ];
        check(
            id,
            handshake(&lake, "openssl", &args, "New, TLSv1."),
            None,
            &lake,
        );
    }
    let port = lake.port();
    for (id, version) in [
        ("gnutls-tls1.0", "1.0"),
        ("gnutls-tls1.1", "1.1"),
        ("gnutls-tls1.2", "1.2"),
        ("gnutls-tls1.3", "1.3"),
    ] {
        let priority = format!("NORMAL:-VERS-ALL:+VERS-TLS{version}");
        let args = [
            "--insecure",
            "--starttls-proto=ftp",
            "--priority",
            &priority,
            "-p",
            &port,
            "127.0.0.1",
        ];
        check(
            id,
            handshake(&lake, "gnutls-cli", &args, "Handshake was completed"),
            None,
            &lake,
        );
    }
}

/// The table of docs/interop.md's FTPS section, from `MATRIX`.
fn table() -> String {
    let mut out = String::from(
        "| client | how | at the defaults | user with `tls_session_reuse = off` | notes |\n|---|---|---|---|---|\n",
    );
    for c in MATRIX {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            c.client, c.how, c.at_defaults, c.reuse_off, c.note
        ));
    }
    out
}

#[test]
fn interop_doc_matches_the_matrix() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/interop.md"))
            .unwrap();
    let (begin, end) = ("<!-- ftps-matrix: begin -->\n", "<!-- ftps-matrix: end -->");
    let start = doc.find(begin).expect("docs/interop.md has no FTPS matrix") + begin.len();
    let stop = doc[start..]
        .find(end)
        .expect("the FTPS matrix is not closed")
        + start;
    let expected = table();
    assert!(
        doc[start..stop] == expected,
        "docs/interop.md's FTPS table differs from tests/ftps_matrix.rs; put this between the markers:\n{expected}"
    );
}
