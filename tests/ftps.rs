//! FTPS against the real binary with real clients: explicit TLS (RFC 4217)
//! and implicit TLS, PROT P data connections in passive and active mode,
//! content byte for byte; session reuse required and off; `tls = required`
//! globally and per user; a certificate replaced on disk served without a
//! restart, and a pair read from S3 (s3s-fs) replaced by new objects;
//! `check` refusing expired and mismatched pairs; implicit TLS behind a
//! PROXY v2 header.
//!
//! curl is used in passive mode only: Debian 12's curl 7.88 sends active
//! FTPS data without TLS (curl#10666, fixed in 8.0); active mode is tested
//! with lftp and ftplib.

mod common;
#[path = "common/http.rs"]
mod http;
#[path = "common/s3.rs"]
mod s3;

use common::tls::{self, implicit_port, make_pair};
use common::{pattern, Control, Scratch, Server, PASSWORD};
use std::path::{Path, PathBuf};
use std::time::Duration;

const CLIENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients");

/// A TLS server: `tls = MODE` with a fresh pair, plus `extra` lines.
fn tls_server(mode: &str, extra: &str, users: &[(&str, &str)]) -> (Server, Scratch) {
    tls::start(mode, extra, users, &[])
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn curl_explicit_passive_upload_and_download() {
    let (server, certs) = tls_server("on", "", &[("dev", "full")]);
    let content = pattern(300_000, 11);
    let local = write_file(&certs.0, "up.bin", &content);
    let url = format!("{}/up.bin", server.url("dev"));
    let (ok, _, err) = common::run(
        "curl",
        &[
            "-sS",
            "--ssl-reqd",
            "-k",
            "-T",
            local.to_str().unwrap(),
            &url,
        ],
        None,
        None,
    );
    assert!(ok, "{err}\n{}", server.log());
    assert_eq!(
        std::fs::read(server.home("dev").join("up.bin")).unwrap(),
        content
    );
    let back = certs.0.join("back.bin");
    let (ok, _, err) = common::run(
        "curl",
        &[
            "-sS",
            "--ssl-reqd",
            "-k",
            "-o",
            back.to_str().unwrap(),
            &url,
        ],
        None,
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(std::fs::read(back).unwrap(), content);
    assert!(server
        .log()
        .contains("verb=STOR path=\"/up.bin\" bytes=300000"));
    server.wait_log("protected=yes", Duration::from_secs(5));
}

#[test]
fn curl_implicit_passive() {
    let (server, certs) = tls_server(
        "on",
        "implicit_tls_listen = 127.0.0.1:0\n",
        &[("dev", "full")],
    );
    let port = implicit_port(&server);
    let content = pattern(70_000, 12);
    let local = write_file(&certs.0, "imp.bin", &content);
    let url = format!("ftps://dev:{PASSWORD}@127.0.0.1:{port}/imp.bin");
    let (ok, _, err) = common::run(
        "curl",
        &["-sS", "-k", "-T", local.to_str().unwrap(), &url],
        None,
        None,
    );
    assert!(ok, "{err}\n{}", server.log());
    assert_eq!(
        std::fs::read(server.home("dev").join("imp.bin")).unwrap(),
        content
    );
    let back = certs.0.join("imp-back.bin");
    let (ok, _, err) = common::run(
        "curl",
        &["-sS", "-k", "-o", back.to_str().unwrap(), &url],
        None,
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(std::fs::read(back).unwrap(), content);
    server.wait_log("security=implicit", Duration::from_secs(5));
}

fn lftp(server: &Server, passive: bool, script: &str, cwd: &Path) -> (bool, String, String) {
    let commands = format!(
        "set ssl:verify-certificate no; set ftp:ssl-force yes; set ftp:ssl-protect-data yes; \
         set ftp:passive-mode {}; set net:max-retries 1; {script}; bye",
        if passive { "on" } else { "off" }
    );
    lftp_commands(server, &commands, cwd)
}

fn lftp_commands(server: &Server, commands: &str, cwd: &Path) -> (bool, String, String) {
    common::run(
        "timeout",
        &[
            "60",
            "lftp",
            "-u",
            &format!("dev,{PASSWORD}"),
            "-e",
            commands,
            &format!("127.0.0.1:{}", server.port()),
        ],
        None,
        Some(cwd),
    )
}

/// lftp's GnuTLS priority string that offers TLS 1.2 only.
const LFTP_TLS12: &str = "set ssl:priority NORMAL:-VERS-ALL:+VERS-TLS1.2";

fn lftp_round_trip(passive: bool, settings: &str) {
    let (server, certs) = tls_server("required", "", &[("dev", "full")]);
    let tree = certs.0.join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    let files = [
        ("a.bin", 5_000, 1),
        ("sub/b.bin", 200_000, 2),
        ("sub/c.csv", 4_096, 3),
    ];
    for (name, len, seed) in files {
        std::fs::write(tree.join(name), pattern(len, seed)).unwrap();
    }
    let (ok, out, err) = lftp(
        &server,
        passive,
        &format!("{settings}; mirror -R tree up; mirror up down"),
        &certs.0,
    );
    assert!(ok, "{out}\n{err}\n{}", server.log());
    for (name, len, seed) in files {
        let uploaded = std::fs::read(server.home("dev").join("up").join(name)).unwrap();
        assert_eq!(uploaded, pattern(len, seed), "{name} uploaded");
        let downloaded = std::fs::read(certs.0.join("down").join(name)).unwrap();
        assert_eq!(downloaded, pattern(len, seed), "{name} downloaded");
    }
    assert!(!server.log().contains("protected=no"), "{}", server.log());
    assert!(!server.log().contains("reply=522"), "{}", server.log());
}

#[test]
fn lftp_passive_mirror_both_ways() {
    lftp_round_trip(true, "");
}

#[test]
fn lftp_active_mirror_both_ways() {
    lftp_round_trip(false, "");
}

/// TLS 1.2 resumption (by ticket: GnuTLS offers one) under the default
/// `tls_session_reuse = required`.
#[test]
fn lftp_tls12_passive_mirror_both_ways() {
    lftp_round_trip(true, LFTP_TLS12);
}

#[test]
fn lftp_tls12_active_mirror_both_ways() {
    lftp_round_trip(false, LFTP_TLS12);
}

/// Runs tests/clients/ftps_ftplib.py; returns its output line.
fn ftplib(port: u16, mode: &str, action: &str) -> String {
    ftplib_with(port, mode, action, &[])
}

/// The same with `options` (`reuse`, `tls1.2`).
fn ftplib_with(port: u16, mode: &str, action: &str, options: &[&str]) -> String {
    let script = format!("{CLIENTS}/ftps_ftplib.py");
    let port = port.to_string();
    let mut args = vec![script.as_str(), &port, "dev", PASSWORD, mode, action];
    args.extend_from_slice(options);
    let (ok, out, err) = common::run("python3", &args, None, None);
    assert!(ok, "{out}\n{err}");
    out.trim().to_string()
}

#[test]
fn ftplib_prot_p_both_modes_with_reuse_off() {
    // Python's ftplib never resumes the control session on data connections.
    let (server, _certs) = tls_server("on", "tls_session_reuse = off\n", &[("dev", "full")]);
    assert_eq!(
        ftplib(server.port(), "passive", "roundtrip"),
        "OK",
        "{}",
        server.log()
    );
    assert_eq!(
        ftplib(server.port(), "active", "roundtrip"),
        "OK",
        "{}",
        server.log()
    );
}

/// curl stores three files on one control connection at the default
/// `tls_session_reuse = required`: every data connection resumes.
fn curl_three_files(tls_args: &[&str]) {
    let (server, certs) = tls_server("on", "health_listen = 127.0.0.1:0\n", &[("dev", "full")]);
    let names = ["a.bin", "b.bin", "c.bin"];
    for (i, name) in names.iter().enumerate() {
        write_file(&certs.0, name, &pattern(1_000 + i * 7_000, i as u64));
    }
    let url = format!("{}/", server.url("dev"));
    let mut args = vec!["-sS", "--ssl-reqd", "-k", "-T", "{a.bin,b.bin,c.bin}"];
    args.extend_from_slice(tls_args);
    args.push(&url);
    let (ok, _, err) = common::run("curl", &args, None, Some(&certs.0));
    assert!(ok, "{err}\n{}", server.log());
    for (i, name) in names.iter().enumerate() {
        let got = std::fs::read(server.home("dev").join(name)).unwrap();
        assert_eq!(got, pattern(1_000 + i * 7_000, i as u64), "{name}");
    }
    let health = http::health_addr(&server);
    assert_eq!(http::scrape(health, "lakeftpd_tls_reuse_refused_total"), 0);
    assert_eq!(
        http::scrape(health, "lakeftpd_tls_protected_transfers_total"),
        3
    );
}

#[test]
fn curl_tls12_stores_three_files_on_one_connection() {
    curl_three_files(&["--tls-max", "1.2"]);
}

#[test]
fn curl_tls13_stores_three_files_on_one_connection() {
    // curl uses each TLS 1.3 ticket once and starts TLS on the passive
    // data connection before STOR: the handshake is made before the 150,
    // with a fresh ticket for the next transfer.
    curl_three_files(&[]);
}

/// Both orders of the data handshake (RFC 4217 leaves it open): aioftp
/// with implicit TLS starts TLS on the passive data connection as soon as
/// it is made and sends STOR only once the handshake is done; it never
/// resumes, so its user has `tls_session_reuse = off`.
#[test]
fn aioftp_starts_data_tls_before_the_command() {
    let (server, certs) = tls::start(
        "on",
        "implicit_tls_listen = 127.0.0.1:0\n",
        &[("dev", "full")],
        &[("old", "tls_session_reuse = off\n")],
    );
    let port = implicit_port(&server).to_string();
    let files: Vec<PathBuf> = (0..3)
        .map(|i| {
            write_file(
                &certs.0,
                &format!("e{i}.bin"),
                &pattern(9_000 * (i + 1), i as u64),
            )
        })
        .collect();
    let script = format!("{CLIENTS}/ftps_aioftp.py");
    let mut args = vec!["60", "python3", &script, &port, "old", PASSWORD];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let (_, out, err) = common::run("timeout", &args, None, None);
    assert_eq!(out.trim(), "OK", "{err}\n{}", server.log());
    for i in 0..3usize {
        let got = std::fs::read(server.home("old").join(format!("e{i}.bin"))).unwrap();
        assert_eq!(got, pattern(9_000 * (i + 1), i as u64));
    }
    // At the default, its data connections (full handshakes) get 522,
    // answered instead of the 150 rather than after a timeout.
    args[4] = "dev";
    let (_, out, _) = common::run("timeout", &args, None, None);
    assert!(out.contains("522"), "{out}");
}

#[test]
fn ftplib_with_session_reuse_tls13_both_modes() {
    let (server, _certs) = tls_server("on", "", &[("dev", "full")]);
    for mode in ["passive", "active"] {
        let out = ftplib_with(server.port(), mode, "roundtrip", &["reuse"]);
        assert_eq!(out, "OK", "{mode}\n{}", server.log());
    }
}

#[test]
fn ftplib_with_session_reuse_tls12_both_modes() {
    let (server, _certs) = tls_server("on", "", &[("dev", "full")]);
    for mode in ["passive", "active"] {
        let out = ftplib_with(server.port(), mode, "roundtrip", &["reuse", "tls1.2"]);
        assert_eq!(out, "OK", "{mode}\n{}", server.log());
    }
}

/// TLS 1.2 resumption by session id (RFC 5246 §7.4.1.2; no ticket): the
/// cache entry carries the control session's tag.
#[test]
fn ftplib_resuming_a_tls12_session_id() {
    let (server, _certs) = tls_server("on", "", &[("dev", "full"), ("other", "full")]);
    let options = ["reuse", "tls1.2", "no-ticket"];
    for mode in ["passive", "active"] {
        let out = ftplib_with(server.port(), mode, "roundtrip", &options);
        assert_eq!(out, "OK", "{mode}\n{}", server.log());
    }
    // Another user's session id is refused.
    let out = ftplib_with(server.port(), "passive", "foreign:other", &options);
    assert!(out.starts_with("ERR 522"), "{out}\n{}", server.log());
}

/// SECURITY: a data connection that resumes a session of another user's
/// control connection is refused, on TLS 1.2 (session id or ticket) as on
/// TLS 1.3.
#[test]
fn resuming_another_users_session_gets_522() {
    let (server, _certs) = tls_server("on", "", &[("dev", "full"), ("other", "full")]);
    for options in [&["reuse"][..], &["reuse", "tls1.2"][..]] {
        let out = ftplib_with(server.port(), "passive", "foreign:other", options);
        assert!(
            out.starts_with("ERR 522"),
            "{options:?}: {out}\n{}",
            server.log()
        );
    }
    assert!(!server.home("dev").join("small.bin").exists());
}

#[test]
fn non_resuming_client_gets_522_under_required() {
    let (server, _certs) = tls_server("on", "health_listen = 127.0.0.1:0\n", &[("dev", "full")]);
    let out = ftplib(server.port(), "passive", "store-small");
    assert!(out.starts_with("ERR 522"), "{out}\n{}", server.log());
    assert!(!server.home("dev").join("small.bin").exists());
    let health = http::health_addr(&server);
    assert_eq!(http::scrape(health, "lakeftpd_tls_reuse_refused_total"), 1);
}

#[test]
fn prot_c_refused_under_required() {
    let (server, _certs) = tls_server("required", "", &[("dev", "full")]);
    let out = ftplib(server.port(), "passive", "prot-c");
    assert!(out.starts_with("ERR 534"), "{out}");
}

#[test]
fn rclone_explicit_tls() {
    let (server, certs) = tls_server("on", "", &[("dev", "full")]);
    let tree = certs.0.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    for i in 0..4u64 {
        std::fs::write(
            tree.join(format!("f{i}.bin")),
            pattern(10_000 + i as usize * 30_000, i),
        )
        .unwrap();
    }
    let (ok, obscured, err) = common::run("rclone", &["obscure", PASSWORD], None, None);
    assert!(ok, "{err}");
    let remote = format!(
        ":ftp,host=127.0.0.1,port={},user=dev,pass={},explicit_tls=true,no_check_certificate=true:up",
        server.port(),
        obscured.trim()
    );
    let (ok, out, err) = common::run(
        "timeout",
        // One connection at a time: rclone shares one ticket cache across
        // its connections, and with several a data connection may resume a
        // ticket of another connection that has not logged in yet, which
        // `tls_session_reuse = required` answers with 522 (rclone retries;
        // docs/security.md, FTPS).
        &[
            "60",
            "rclone",
            "copy",
            "--ftp-concurrency",
            "1",
            tree.to_str().unwrap(),
            &remote,
        ],
        None,
        None,
    );
    // rclone warns that MFMT is not offered; the copy itself must succeed.
    assert!(ok, "{out}\n{err}\n{}", server.log());
    for i in 0..4u64 {
        let got = std::fs::read(server.home("dev").join("up").join(format!("f{i}.bin"))).unwrap();
        assert_eq!(got, pattern(10_000 + i as usize * 30_000, i));
    }
    assert!(!server.log().contains("reply=522"), "{}", server.log());
}

#[test]
fn tls_required_refuses_a_plain_login() {
    let (server, _certs) = tls_server("required", "", &[("dev", "full")]);
    let mut c = Control::open(server.addr);
    let (code, text) = c.cmd("USER dev");
    assert_eq!(code, 530, "{text}");
    assert!(text.contains("AUTH TLS"), "{text}");
    // curl without --ssl-reqd logs in plain and is refused.
    let (ok, _, _) = common::run(
        "curl",
        &["-sS", &format!("{}/", server.url("dev"))],
        None,
        None,
    );
    assert!(!ok);
}

#[test]
fn per_user_tls_required() {
    let (server, _certs) = tls::start(
        "on",
        "",
        &[("plain", "full")],
        &[("secure", "tls = required\n")],
    );
    let mut c = Control::open(server.addr);
    assert_eq!(c.cmd("USER secure").0, 530);
    assert_eq!(c.cmd("USER plain").0, 331);
    assert_eq!(c.cmd(&format!("PASS {PASSWORD}")).0, 230);
    // The same user over TLS logs in.
    let url = format!("ftp://secure:{PASSWORD}@127.0.0.1:{}/", server.port());
    let (ok, _, err) = common::run("curl", &["-sS", "--ssl-reqd", "-k", &url], None, None);
    assert!(ok, "{err}\n{}", server.log());
}

/// Runs tests/clients/ftps_ftplib.py as `user`.
fn ftplib_as(port: u16, user: &str, action: &str) -> String {
    let script = format!("{CLIENTS}/ftps_ftplib.py");
    let port = port.to_string();
    let args = [script.as_str(), &port, user, PASSWORD, "passive", action];
    let (ok, out, err) = common::run("python3", &args, None, None);
    assert!(ok, "{out}\n{err}");
    out.trim().to_string()
}

/// `tls_session_reuse` in a `[user]` section and in the users file: old
/// devices pinned to `off` transfer without resuming while the rest of the
/// fleet stays at the default `required`, and the reverse.
#[test]
fn per_user_tls_session_reuse() {
    let users = Scratch::new("users");
    let users_file = users.0.join("users.conf");
    std::fs::write(
        &users_file,
        common::user_section("filed", "full", "tls_session_reuse = off\n"),
    )
    .unwrap();
    let (server, _certs) = tls::start(
        "on",
        &format!("users = {}\n", users_file.display()),
        &[("dev", "full")],
        &[("legacy", "tls_session_reuse = off\n")],
    );
    // Python's stock ftplib never resumes.
    assert_eq!(ftplib_as(server.port(), "legacy", "store-small"), "STORED");
    assert_eq!(ftplib_as(server.port(), "filed", "store-small"), "STORED");
    let out = ftplib_as(server.port(), "dev", "store-small");
    assert!(out.starts_with("ERR 522"), "{out}");
    assert!(
        out.contains("tls_session_reuse = required on this server"),
        "{out}"
    );
    assert!(!server.home("dev").join("small.bin").exists());

    // The reverse: off for the server, required for one user.
    let (server, _certs) = tls::start(
        "on",
        "tls_session_reuse = off\n",
        &[("dev", "full")],
        &[("strict", "tls_session_reuse = required\n")],
    );
    assert_eq!(ftplib_as(server.port(), "dev", "store-small"), "STORED");
    let out = ftplib_as(server.port(), "strict", "store-small");
    assert!(
        out.starts_with("ERR 522")
            && out.contains("tls_session_reuse = required in this user's section"),
        "{out}"
    );
}

/// RFC 8446 §6.1: the control connection ends with close_notify (PHP's
/// `ftp_close()` warns about a truncated session otherwise). Data
/// connections are covered by ftplib's RETR, which `unwrap()`s them.
#[test]
fn control_connection_ends_with_close_notify() {
    let (server, _certs) = tls_server("on", "", &[("dev", "full")]);
    let script = format!("{CLIENTS}/ftps_close.py");
    let port = server.port().to_string();
    let (ok, out, err) = common::run("python3", &[&script, &port, "dev", PASSWORD], None, None);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "CLEAN", "{}", server.log());
}

/// A TLS 1.0 or 1.1 client is counted as a version failure, and the log
/// says what it offered.
#[test]
fn old_tls_versions_are_counted_as_version_failures() {
    let (server, _certs) = tls_server(
        "on",
        "implicit_tls_listen = 127.0.0.1:0\nhealth_listen = 127.0.0.1:0\n",
        &[("dev", "full")],
    );
    let port = implicit_port(&server);
    let connect = format!("127.0.0.1:{port}");
    for version in ["-tls1", "-tls1_1"] {
        // SECLEVEL=0: Debian's OpenSSL refuses to offer 1.0/1.1 otherwise.
        let (ok, _, _) = common::run(
            "timeout",
            &[
                "10",
                "openssl",
                "s_client",
                "-connect",
                &connect,
                version,
                "-cipher",
                "DEFAULT:@SECLEVEL=0",
            ],
            Some(""),
            None,
        );
        assert!(!ok, "{version} connected");
    }
    let health = http::health_addr(&server);
    assert_eq!(
        http::scrape(health, "lakeftpd_tls_handshakes_failed_version_total"),
        2,
        "{}",
        server.log()
    );
    assert_eq!(
        http::scrape(health, "lakeftpd_tls_handshakes_failed_other_total"),
        0
    );
    server.wait_log("versions offered: 1.0)", Duration::from_secs(5));
    server.wait_log("versions offered: 1.0,1.1)", Duration::from_secs(5));
}

/// A server with `tls_allow_ccc = on`: `dev` at the defaults, `nat` with
/// `tls_session_reuse = off` (lftp and curl drop the control connection's
/// TLS session with CCC, so their data connections cannot resume it), and
/// `strict` with `tls = required`.
fn ccc_server() -> (Server, Scratch) {
    tls::start(
        "on",
        "tls_allow_ccc = on\nhealth_listen = 127.0.0.1:0\n",
        &[("dev", "full")],
        &[
            ("nat", "tls_session_reuse = off\n"),
            ("strict", "tls = required\n"),
        ],
    )
}

/// RFC 2228 §5.3: after CCC the control connection is plain text on the
/// same TCP connection (so a NAT router's FTP helper can read PORT).
#[test]
fn ccc_returns_the_control_connection_to_plain_text() {
    let (server, _certs) = ccc_server();
    let script = format!("{CLIENTS}/ftps_ccc.py");
    let port = server.port().to_string();
    let (ok, out, err) = common::run("python3", &[&script, &port, "dev", PASSWORD], None, None);
    assert!(ok, "{err}");
    assert!(
        out.trim().starts_with("PLAIN 257"),
        "{out}\n{}",
        server.log()
    );
    server.wait_log("security=explicit-ccc", Duration::from_secs(5));
    let health = http::health_addr(&server);
    assert_eq!(http::scrape(health, "lakeftpd_tls_ccc_total"), 1);
    // A `tls = required` user keeps the control connection protected.
    let (ok, out, _) = common::run("python3", &[&script, &port, "strict", PASSWORD], None, None);
    assert!(ok);
    assert!(out.trim().starts_with("534"), "{out}");
}

#[test]
fn ccc_refused_by_default_before_login_and_in_plain() {
    let (server, _certs) = tls_server("on", "", &[("dev", "full")]);
    let script = format!("{CLIENTS}/ftps_ccc.py");
    let port = server.port().to_string();
    let (_, out, _) = common::run("python3", &[&script, &port, "dev", PASSWORD], None, None);
    assert!(
        out.trim().starts_with("534") && out.contains("tls_allow_ccc = off"),
        "{out}"
    );
    let (server, _certs) = ccc_server();
    let mut c = Control::open(server.addr);
    assert_eq!(c.cmd("CCC").0, 533, "CCC in plain text");
    // SECURITY: the password never travels in clear.
    let port = server.port().to_string();
    let args = [script.as_str(), &port, "dev", PASSWORD, "before-login"];
    let (_, out, _) = common::run("python3", &args, None, None);
    assert!(out.trim().starts_with("503"), "{out}");
}

/// lftp (`ftp:ssl-use-ccc`) in active and passive mode and curl
/// (`--ftp-ssl-ccc`, passive: Debian's curl 7.88 sends active FTPS data in
/// clear) clear the control connection after login and move files over
/// PROT P data connections.
#[test]
fn lftp_and_curl_with_ccc() {
    let (server, certs) = ccc_server();
    let tree = certs.0.join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("a.bin"), pattern(5_000, 1)).unwrap();
    std::fs::write(tree.join("sub/b.bin"), pattern(70_000, 2)).unwrap();
    for (passive, target) in [(false, "active"), (true, "passive")] {
        let commands = format!(
            "set ssl:verify-certificate no; set ftp:ssl-force yes; set ftp:ssl-protect-data yes; \
             set ftp:ssl-use-ccc yes; set ftp:passive-mode {}; set net:max-retries 1; \
             mirror -R tree {target}; bye",
            if passive { "on" } else { "off" }
        );
        let (ok, out, err) = common::run(
            "timeout",
            &[
                "60",
                "lftp",
                "-u",
                &format!("nat,{PASSWORD}"),
                "-e",
                &commands,
                &format!("127.0.0.1:{}", server.port()),
            ],
            None,
            Some(&certs.0),
        );
        assert!(ok, "{out}\n{err}\n{}", server.log());
        let home = server.home("nat").join(target);
        assert_eq!(
            std::fs::read(home.join("a.bin")).unwrap(),
            pattern(5_000, 1)
        );
        assert_eq!(
            std::fs::read(home.join("sub/b.bin")).unwrap(),
            pattern(70_000, 2)
        );
    }
    let url = format!("ftp://nat:{PASSWORD}@127.0.0.1:{}/c/", server.port());
    let (ok, _, err) = common::run(
        "curl",
        &[
            "-sS",
            "--ssl-reqd",
            "-k",
            "--ftp-ssl-ccc",
            "--ftp-create-dirs",
            "-T",
            "{tree/a.bin,tree/sub/b.bin}",
            &url,
        ],
        None,
        Some(&certs.0),
    );
    assert!(ok, "{err}\n{}", server.log());
    assert_eq!(
        std::fs::read(server.home("nat").join("c/b.bin")).unwrap(),
        pattern(70_000, 2)
    );
    // The last session's end line follows curl's exit (after its close).
    let end = std::time::Instant::now() + Duration::from_secs(5);
    while server.log().matches("security=explicit-ccc").count() < 3
        && std::time::Instant::now() < end
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = server.log();
    assert_eq!(log.matches("security=explicit-ccc").count(), 3, "{log}");
    assert!(!log.contains("protected=no"), "{log}");
    let health = http::health_addr(&server);
    assert_eq!(http::scrape(health, "lakeftpd_tls_ccc_total"), 3);
}

#[test]
fn auth_without_tls_is_502_and_feat_does_not_offer_it() {
    let server = Server::start("", &[("dev", "full")]);
    let mut c = Control::open(server.addr);
    let (code, features) = c.cmd("FEAT");
    assert_eq!(code, 211);
    assert!(!features.contains("AUTH"), "{features}");
    assert_eq!(c.cmd("AUTH TLS").0, 502);
    // lftp's default (ftp:ssl-allow yes) falls back to plain after the 502.
    let (ok, _, err) = common::run(
        "timeout",
        &[
            "30",
            "lftp",
            "-u",
            &format!("dev,{PASSWORD}"),
            "-e",
            "ls; bye",
            &format!("127.0.0.1:{}", server.port()),
        ],
        None,
        None,
    );
    assert!(ok, "{err}");
}

#[test]
fn feat_offers_auth_pbsz_prot_with_tls() {
    let (server, _certs) = tls_server("on", "", &[("dev", "full")]);
    let mut c = Control::open(server.addr);
    let (_, features) = c.cmd("FEAT");
    for f in ["AUTH TLS", "PBSZ", "PROT"] {
        assert!(features.contains(f), "{features}");
    }
    assert_eq!(c.cmd("AUTH GSSAPI").0, 504);
    assert_eq!(c.cmd("PBSZ 0").0, 503, "PBSZ before AUTH TLS");
    assert_eq!(c.cmd("CCC").0, 534);
}

#[test]
fn bytes_pipelined_after_auth_tls_end_the_session() {
    // SECURITY: a plain command smuggled behind AUTH TLS must never run as
    // if it had come over TLS (CVE-2011-0411).
    let (server, _certs) = tls_server("on", "", &[("dev", "full")]);
    let mut c = Control::open(server.addr);
    c.send_raw(b"AUTH TLS\r\nUSER dev\r\n").unwrap();
    assert_eq!(c.reply().0, 234);
    assert!(c.closed_within(Duration::from_secs(5)));
    server.wait_log("bytes after AUTH TLS", Duration::from_secs(5));
}

/// The certificate the implicit listener serves now, as PEM.
fn served_certificate(port: u16) -> String {
    let (ok, out, err) = common::run(
        "python3",
        &[
            "-c",
            &format!("import ssl; print(ssl.get_server_certificate(('127.0.0.1', {port})))"),
        ],
        None,
        None,
    );
    assert!(ok, "{err}");
    out.split_whitespace().collect()
}

fn pem_text(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .split_whitespace()
        .collect()
}

#[test]
fn certificate_replaced_on_disk_is_served_without_restart() {
    let certs = Scratch::new("certs");
    let (cert, key) = make_pair(&certs.0, "live", &["--days", "20"]);
    let first = pem_text(&cert);
    let server = Server::start(
        &(tls::tls_lines("on", &cert, &key)
            + "tls_reload_interval = 1s\n\
               implicit_tls_listen = 127.0.0.1:0\nhealth_listen = 127.0.0.1:0\n"),
        &[("dev", "full")],
    );
    let port = implicit_port(&server);
    assert_eq!(served_certificate(port), first);
    // A session opened before the change keeps working after it.
    let mut before = Control::open(server.addr);
    assert_eq!(before.cmd("NOOP").0, 200);

    // Replace both files (new names renamed over the old: one change each).
    let (new_cert, new_key) = make_pair(&certs.0, "next", &["--days", "60"]);
    std::fs::rename(&new_key, &key).unwrap();
    std::fs::rename(&new_cert, &cert).unwrap();
    let second = pem_text(&cert);
    assert_ne!(first, second);
    server.wait_log("tls: serving a new certificate", Duration::from_secs(10));
    assert_eq!(served_certificate(port), second);
    assert_eq!(before.cmd("NOOP").0, 200);
    let health = http::health_addr(&server);
    assert_eq!(http::scrape(health, "lakeftpd_tls_cert_reloads_total"), 1);

    // A bad replacement (a key of another pair) keeps the served one.
    let (_, other_key) = make_pair(&certs.0, "other", &[]);
    std::fs::rename(&other_key, &key).unwrap();
    server.wait_log("the old pair stays", Duration::from_secs(10));
    assert_eq!(served_certificate(port), second);
}

#[test]
fn expiry_metric_counts_down_from_the_served_certificate() {
    let certs = Scratch::new("certs");
    let (cert, key) = make_pair(&certs.0, "e", &["--days", "40"]);
    let server = Server::start(
        &(tls::tls_lines("on", &cert, &key) + "health_listen = 127.0.0.1:0\n"),
        &[("dev", "full")],
    );
    let health = http::health_addr(&server);
    let seconds = http::scrape(health, "lakeftpd_tls_cert_expiry_seconds");
    assert!((39 * 86_400..=40 * 86_400).contains(&seconds), "{seconds}");
}

fn check_with(cert: &Path, key: &Path) -> common::Finished {
    let dir = Scratch::new("chk");
    let text = common::config_text(&dir, &tls::tls_lines("on", cert, key), &[]);
    let path = dir.0.join("c.conf");
    std::fs::write(&path, text).unwrap();
    common::run_bin(
        &["check", "--config", path.to_str().unwrap()],
        &[],
        Duration::from_secs(20),
    )
}

#[test]
fn check_accepts_a_good_pair_with_its_chain() {
    let certs = Scratch::new("certs");
    let (cert, key) = make_pair(&certs.0, "g", &["--chain-ca"]);
    let out = check_with(&cert, &key);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("tls: certificate ok"), "{}", out.stdout);
}

#[test]
fn check_refuses_an_expired_certificate() {
    let certs = Scratch::new("certs");
    let (cert, key) = make_pair(&certs.0, "x", &["--expired"]);
    let out = check_with(&cert, &key);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("expired on"), "{}", out.stderr);
}

#[test]
fn check_refuses_a_key_of_another_certificate() {
    let certs = Scratch::new("certs");
    let (cert, _) = make_pair(&certs.0, "m1", &[]);
    let (_, key) = make_pair(&certs.0, "m2", &[]);
    let out = check_with(&cert, &key);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("does not match"), "{}", out.stderr);
}

#[test]
fn check_refuses_a_chain_in_the_wrong_order() {
    let certs = Scratch::new("certs");
    let (cert, key) = make_pair(&certs.0, "w", &["--chain-ca", "--wrong-order"]);
    let out = check_with(&cert, &key);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("put the server's certificate first"),
        "{}",
        out.stderr
    );
}

#[test]
fn implicit_tls_behind_a_proxy_v2_header() {
    let (server, certs) = tls_server(
        "on",
        "implicit_tls_listen = 127.0.0.1:0\nproxy_protocol = v2\nproxy_from = 127.0.0.0/8\n",
        &[("dev", "full")],
    );
    let port = implicit_port(&server);
    let content = pattern(50_000, 21);
    let local = write_file(&certs.0, "p.bin", &content);
    // The header names 127.0.0.1 (the passive data connection's real source).
    let src: std::net::SocketAddr = "127.0.0.1:41234".parse().unwrap();
    let dst: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let header: String = http::v2_header(src, dst, &http::nlb_tlvs())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let script = format!("{CLIENTS}/ftps_proxy.py");
    let (ok, out, err) = common::run(
        "python3",
        &[
            &script,
            &port.to_string(),
            "dev",
            PASSWORD,
            local.to_str().unwrap(),
            &header,
        ],
        None,
        None,
    );
    assert!(ok && out.trim() == "OK", "{out}\n{err}\n{}", server.log());
    assert_eq!(
        std::fs::read(server.home("dev").join("proxied.bin")).unwrap(),
        content
    );
    server.wait_log(
        "session start client=127.0.0.1:41234",
        Duration::from_secs(5),
    );
}

/// How often `needle` appears in `log`.
fn count(log: &str, needle: &str) -> usize {
    log.matches(needle).count()
}

/// Waits until `needle` appears more than `seen` times in the lake's log.
fn wait_more(lake: &s3::Lake, needle: &str, seen: usize, limit: Duration) -> bool {
    let end = std::time::Instant::now() + limit;
    while std::time::Instant::now() < end {
        if count(&lake.log(), needle) > seen {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Puts `from` as the object `key` as one change (s3s-fs keeps objects as
/// files; its ETag is the content's MD5, so new bytes are a new ETag).
fn put_object(s3: &s3::S3, from: &Path, key: &str) {
    let to = s3.object_path(key);
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    let staged = s3.root.join(format!(".staged-{}", key.replace('/', "-")));
    std::fs::copy(from, &staged).unwrap();
    std::fs::rename(&staged, &to).unwrap();
}

#[test]
fn certificate_from_s3_is_served_and_replaced_by_etag() {
    let dir = Scratch::new("tls-s3");
    let s3 = s3::S3::start(&dir.0);
    let (cert, key) = make_pair(&dir.0, "s3a", &["--days", "20"]);
    put_object(&s3, &cert, "tls/cert.pem");
    put_object(&s3, &key, "tls/key.pem");
    let lake = s3::Lake::start(
        &dir,
        &format!(
            "s3_bucket = {bucket}\ns3_endpoint = {}\ns3_region = us-east-1\nkeep_local = on\n\
             tls = on\ntls_cert = s3://{bucket}/tls/cert.pem\ntls_key = s3://{bucket}/tls/key.pem\n\
             tls_reload_interval = 1s\nimplicit_tls_listen = 127.0.0.1:0\n",
            s3.endpoint(),
            bucket = s3::BUCKET,
        ),
        &["dev"],
        s3::key_env(),
    );
    assert!(
        lake.wait_log("implicit FTPS on tls://", Duration::from_secs(10)),
        "{}",
        lake.log()
    );
    let log = lake.log();
    let at = log.find("implicit FTPS on tls://").unwrap() + "implicit FTPS on tls://".len();
    let port = log[at..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse::<std::net::SocketAddr>()
        .unwrap()
        .port();
    let first = pem_text(&cert);
    assert_eq!(served_certificate(port), first);

    // An explicit FTPS login and upload with the pair read from S3.
    let content = pattern(50_000, 21);
    let local = write_file(&dir.0, "up.bin", &content);
    let url = format!("{}/up.bin", lake.url("dev"));
    let (ok, _, err) = common::run(
        "curl",
        &[
            "-sS",
            "--ssl-reqd",
            "-k",
            "-T",
            local.to_str().unwrap(),
            &url,
        ],
        None,
        None,
    );
    assert!(ok, "{err}\n{}", lake.log());
    assert_eq!(
        std::fs::read(dir.0.join("home/dev/up.bin")).unwrap(),
        content
    );

    // New objects (new ETags): the next handshake serves the new pair.
    let served = "tls: serving a new certificate";
    let kept = "the old pair stays";
    let (next_cert, next_key) = make_pair(&dir.0, "s3b", &["--days", "60"]);
    let second = pem_text(&next_cert);
    assert_ne!(first, second);
    put_object(&s3, &next_key, "tls/key.pem");
    put_object(&s3, &next_cert, "tls/cert.pem");
    assert!(
        wait_more(&lake, served, 0, Duration::from_secs(10)),
        "{}",
        lake.log()
    );
    assert_eq!(served_certificate(port), second);

    // A bad new pair (another pair's key) keeps the served one.
    let (_, other_key) = make_pair(&dir.0, "s3c", &[]);
    let refusals = count(&lake.log(), kept);
    put_object(&s3, &other_key, "tls/key.pem");
    assert!(
        wait_more(&lake, kept, refusals, Duration::from_secs(10)),
        "{}",
        lake.log()
    );
    assert_eq!(served_certificate(port), second);
    assert_eq!(count(&lake.log(), served), 1, "{}", lake.log());
}
