//! One client key for every per-address limit (`ipv6_prefix`), against the
//! real binary: the server runs in a network namespace of its own where a
//! whole IPv6 /48 (documentation range 2001:db8::/32) is local, and
//! Python clients there pick any source address in it, as an attacker with
//! a routed prefix does. `max_sessions_per_ip`, the unauthenticated share,
//! `max_passive_per_ip` and the defender's bans must count the /64 (and the
//! defender the /48), not each address.

mod common;

use common::{config_text, Scratch, PASSWORD};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The server's own address inside the namespace.
const SERVER_IP: &str = "2001:db8:ff::1";

/// Runs `ip ARGS`, panicking with its error.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A namespace (`hostile-` prefix) in which `2001:db8:1::/48` is local:
/// any address of it can be a source. Deleted at drop.
struct Namespace(String);

impl Namespace {
    fn create(tag: &str) -> Namespace {
        let name = format!("hostile-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        let ns = Namespace(name);
        ip(&["-n", &ns.0, "link", "set", "lo", "up"]);
        ip(&[
            "-n",
            &ns.0,
            "-6",
            "addr",
            "add",
            &format!("{SERVER_IP}/128"),
            "dev",
            "lo",
            "nodad",
        ]);
        // AnyIP: every address of the /48 is local (binding needs no
        // address of its own per client).
        ip(&[
            "-n",
            &ns.0,
            "-6",
            "route",
            "add",
            "local",
            "2001:db8:1::/48",
            "dev",
            "lo",
            "table",
            "local",
        ]);
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.0,
                "sysctl",
                "-qw",
                "net.ipv6.ip_nonlocal_bind=1",
            ])
            .output()
            .expect("sysctl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        ns
    }

    /// lakeftpd inside the namespace, listening on `SERVER_IP`.
    fn server(&self, global: &str, users: &[(&str, &str)]) -> (Child, SocketAddr, Scratch) {
        let dir = Scratch::new("client-key");
        let text = config_text(&dir, global, users)
            .replace("listen = 127.0.0.1:0", &format!("listen = [{SERVER_IP}]:0"));
        let path = dir.0.join("lakeftpd.conf");
        std::fs::write(&path, text).unwrap();
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.0])
            .arg(common::bin())
            .args(["serve", "--config"])
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start lakeftpd in the namespace");
        let (addr, _log) = common::watch(&mut child);
        (child, addr, dir)
    }

    /// Runs a Python script in the namespace; its stdout lines.
    fn python(&self, script: &Path, args: &[String]) -> Vec<String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.0, "timeout", "120", "python3"])
            .arg(script)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        BufReader::new(&out.stdout[..])
            .lines()
            .map(|l| l.unwrap())
            .collect()
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // Ignore errors: the namespace may already be gone.
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// The Python side: connections from rotating sources, one command each.
const CLIENTS: &str = r#"
import ftplib, socket, sys, time
mode, port = sys.argv[1], int(sys.argv[2])
server = ("2001:db8:ff::1", port)
def source(net, host):
    return "2001:db8:1:%x::%x" % (net, host)
if mode == "hold":
    # n connections from n addresses of one /64, all held; how many are
    # greeted and still open at the end.
    n = int(sys.argv[3])
    held = []
    for host in range(1, n + 1):
        s = socket.socket(socket.AF_INET6)
        s.settimeout(5)
        s.bind((source(2, host), 0))
        s.connect(server)
        line = s.makefile("rb").readline()
        held.append((s, line[:3]))
    time.sleep(1)
    open_greeted = 0
    for s, code in held:
        if code != b"220":
            continue
        s.setblocking(False)
        try:
            open_greeted += 1 if s.recv(1) else 0
        except BlockingIOError:
            open_greeted += 1
        except OSError:
            pass
    print("open", open_greeted)
elif mode == "pasv":
    # Log in from n addresses of one /64 and ask each for a passive port.
    n, password = int(sys.argv[3]), sys.argv[4]
    held, got = [], 0
    for host in range(1, n + 1):
        f = ftplib.FTP(source_address=(source(2, host), 0), timeout=10)
        f.connect(server[0], port)
        f.login("dev", password)
        try:
            f.sendcmd("EPSV")
            got += 1
        except ftplib.error_temp:
            pass
        held.append(f)
    print("passive", got)
elif mode == "guess":
    # Wrong passwords from /64s of one /48, each /64 a few times; then a
    # fresh /64 of the same /48 tries once. Prints how many were checked
    # (530) and what the fresh /64 got at connect.
    nets, per_net = int(sys.argv[3]), int(sys.argv[4])
    checked = 0
    for net in range(0x100, 0x100 + nets):
        for _ in range(per_net):
            try:
                f = ftplib.FTP(source_address=(source(net, 1), 0), timeout=10)
                f.connect(server[0], port)
                f.login("dev", "wrong")
            except ftplib.error_perm:
                checked += 1
            except (ftplib.error_temp, EOFError, OSError):
                pass
    s = socket.socket(socket.AF_INET6)
    s.settimeout(5)
    s.bind((source(0xfff, 1), 0))
    s.connect(server)
    print("checked", checked)
    print("fresh", s.makefile("rb").readline()[:3].decode())
"#;

fn script(dir: &Scratch) -> std::path::PathBuf {
    let path = dir.0.join("clients.py");
    std::fs::write(&path, CLIENTS).unwrap();
    path
}

fn value(lines: &[String], name: &str) -> String {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no `{name}` in {lines:?}"))
        .to_string()
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn sixty_addresses_of_one_64_are_capped_at_max_sessions_per_ip() {
    // 60 connections from 60 addresses of one /64, held open: at most
    // max_sessions_per_ip (5) of them are greeted and stay open; the rest
    // are refused or shed (the share's part for the client is 5 too).
    let ns = Namespace::create("sessions");
    let (server, addr, dir) = ns.server("max_sessions_per_ip = 5", &[("dev", "upload")]);
    let lines = ns.python(
        &script(&dir),
        &["hold".into(), addr.port().to_string(), "60".into()],
    );
    stop(server);
    let open: usize = value(&lines, "open").parse().unwrap();
    assert!(open <= 5, "{open} of 60 connections from one /64 held");
    assert!(open >= 1, "the client still gets its own sessions");
}

#[test]
fn one_64_cannot_take_the_passive_pool_from_many_addresses() {
    // max_passive_per_ip = 3: logged in from 6 addresses of one /64, only
    // 3 passive listeners are granted.
    let ns = Namespace::create("passive");
    let (server, addr, dir) = ns.server("max_passive_per_ip = 3", &[("dev", "full")]);
    let lines = ns.python(
        &script(&dir),
        &[
            "pasv".into(),
            addr.port().to_string(),
            "6".into(),
            PASSWORD.into(),
        ],
    );
    stop(server);
    assert_eq!(value(&lines, "passive"), "3", "{lines:?}");
}

#[test]
fn rotating_64s_of_one_48_is_banned_as_a_48() {
    // ban_after = 3: 12 /64s of one /48 guess twice each (24 guesses, none
    // reaching its own /64's ban). The /48 is banned after 4 x 3 = 12
    // checks, and a /64 of it never seen before is refused at connect.
    let ns = Namespace::create("wide");
    let (server, addr, dir) = ns.server(
        "ban_after = 3\nban_window = 10m\nban_time = 10m",
        &[("dev", "upload")],
    );
    let lines = ns.python(
        &script(&dir),
        &[
            "guess".into(),
            addr.port().to_string(),
            "12".into(),
            "2".into(),
        ],
    );
    stop(server);
    let checked: usize = value(&lines, "checked").parse().unwrap();
    assert!(checked <= 12, "{checked} password checks from one /48");
    assert_eq!(value(&lines, "fresh"), "421", "{lines:?}");
}
