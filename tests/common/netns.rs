//! Network namespaces as hosts, for tests that need routers, NAT or loss
//! (tests/nat.rs, tests/slowlink.rs; included with `#[path]`). Every name
//! starts with `d13-`; the `Namespaces` guard deletes them (and so their
//! veth pairs and nftables tables) when dropped, also after a panic.
#![allow(dead_code)]

use super::common::{bin, watch};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// Runs `ip ARGS`, panicking with its error.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a command inside namespace `ns`; returns (success, stdout, stderr).
pub fn exec(ns: &str, program: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, program])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ip netns exec");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Like `exec`, panicking on failure.
pub fn must(ns: &str, program: &str, args: &[&str]) -> String {
    let (ok, out, err) = exec(ns, program, args);
    assert!(ok, "{ns}: {program} {}: {err}", args.join(" "));
    out
}

/// Loads an nftables ruleset into namespace `ns`.
pub fn nft(ns: &str, rules: &str) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run nft");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(rules.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "nft in {ns}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Namespaces deleted at drop.
pub struct Namespaces(Vec<String>);

impl Namespaces {
    /// Creates `names` (each must start with `d13-`), removing leftovers
    /// of an earlier run first; loopback is up in each.
    pub fn create(names: &[&str]) -> Namespaces {
        for name in names {
            assert!(name.starts_with("d13-"), "{name}");
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
        let guard = Namespaces(names.iter().map(|n| n.to_string()).collect());
        for name in names {
            ip(&["netns", "add", name]);
            ip(&["-n", name, "link", "set", "lo", "up"]);
        }
        guard
    }

    /// A veth pair between two namespaces, addressed and up.
    pub fn link(&self, a: (&str, &str, &str), b: (&str, &str, &str)) {
        let (ns_a, if_a, addr_a) = a;
        let (ns_b, if_b, addr_b) = b;
        ip(&[
            "link", "add", if_a, "netns", ns_a, "type", "veth", "peer", "name", if_b, "netns", ns_b,
        ]);
        for (ns, dev, addr) in [(ns_a, if_a, addr_a), (ns_b, if_b, addr_b)] {
            if addr.contains(':') {
                // No duplicate address detection: usable at once.
                ip(&["-n", ns, "-6", "addr", "add", addr, "dev", dev, "nodad"]);
            } else {
                ip(&["-n", ns, "-4", "addr", "add", addr, "dev", dev]);
            }
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in &self.0 {
            // Ignore errors: the namespace may never have been made.
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}

/// lakeftpd started inside a namespace, killed at drop.
pub struct NsServer {
    child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl NsServer {
    pub fn start(ns: &str, config: &Path) -> NsServer {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(bin())
            .args(["serve", "--config"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start lakeftpd in a namespace");
        let (addr, log) = watch(&mut child);
        NsServer { child, addr, log }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for NsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
