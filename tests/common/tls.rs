//! FTPS fixtures for the tests that start a TLS server: a certificate pair
//! made by tests/clients/make_cert.py, the configuration lines that name
//! it, a server with it, and the implicit listener's port.

use super::{config_text, run, user_section, Scratch, Server};
use std::path::{Path, PathBuf};
use std::time::Duration;

const MAKE_CERT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/make_cert.py");

/// Writes `dir/NAME-cert.pem` and `dir/NAME-key.pem`, made by make_cert.py
/// with `args` (`--days N`, `--expired`, `--chain-ca`, ...).
pub fn make_pair(dir: &Path, name: &str, args: &[&str]) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}-cert.pem"));
    let key = dir.join(format!("{name}-key.pem"));
    let mut all = vec![MAKE_CERT, cert.to_str().unwrap(), key.to_str().unwrap()];
    all.extend_from_slice(args);
    let (ok, _, err) = run("python3", &all, None, None);
    assert!(ok, "make_cert.py: {err}");
    (cert, key)
}

/// `tls = MODE` with the pair, as configuration lines.
pub fn tls_lines(mode: &str, cert: &Path, key: &Path) -> String {
    format!(
        "tls = {mode}\ntls_cert = {}\ntls_key = {}\n",
        cert.display(),
        key.display()
    )
}

/// A server with `tls = MODE` and a fresh pair, `extra` global lines,
/// `users` (name, permissions) and `sections`: users with full permissions
/// and lines of their own (name, lines). The scratch folder holds the pair.
pub fn start(
    mode: &str,
    extra: &str,
    users: &[(&str, &str)],
    sections: &[(&str, &str)],
) -> (Server, Scratch) {
    let certs = Scratch::new("certs");
    let (cert, key) = make_pair(&certs.0, "a", &[]);
    let dir = Scratch::new("srv");
    let global = tls_lines(mode, &cert, &key) + extra;
    let mut text = config_text(&dir, &global, users);
    for (name, lines) in sections {
        text.push_str(&user_section(name, "full", lines));
    }
    (Server::start_with_text(dir, &text), certs)
}

/// The implicit FTPS listener's port, from the log.
pub fn implicit_port(server: &Server) -> u16 {
    let needle = "implicit FTPS on tls://";
    server.wait_log(needle, Duration::from_secs(5));
    let log = server.log();
    let at = log.find(needle).unwrap() + needle.len();
    let addr: std::net::SocketAddr = log[at..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    addr.port()
}
