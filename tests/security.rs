//! Security properties, each tested against the real binary: the bounce
//! checks (RFC 2577), passive peer checks, the jail, line limits, login
//! throttling, session caps, idle timeouts and permissions.

mod common;

use common::{Control, Server, PASSWORD};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

fn port_arg(addr: SocketAddr) -> String {
    let SocketAddr::V4(v4) = addr else {
        panic!("ipv4 only")
    };
    let [a, b, c, d] = v4.ip().octets();
    format!("{a},{b},{c},{d},{},{}", v4.port() >> 8, v4.port() & 0xff)
}

/// A listener that must never see a connection.
fn trap(ip: &str) -> TcpListener {
    let listener = TcpListener::bind((ip, 0)).unwrap();
    listener.set_nonblocking(true).unwrap();
    listener
}

fn assert_untouched(listener: &TcpListener) {
    std::thread::sleep(Duration::from_millis(300));
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("a connection was attempted: {other:?}"),
    }
}

#[test]
fn port_to_another_address_is_refused_without_connecting() {
    let server = Server::start("", &[("dev", "full")]);
    let trap = trap("127.0.0.2");
    let mut c = Control::login(server.addr, "dev");
    let (code, text) = c.cmd(&format!("PORT {}", port_arg(trap.local_addr().unwrap())));
    assert_eq!(code, 501, "{text}");
    assert!(text.contains("RFC 2577"));
    // The refused PORT left no data plan: a transfer cannot use it.
    assert_eq!(c.cmd("NLST").0, 425);
    assert_untouched(&trap);
    server.wait_log("foreign address 127.0.0.2 refused", Duration::from_secs(5));
}

#[test]
fn eprt_to_another_address_is_refused_without_connecting() {
    let server = Server::start("", &[("dev", "full")]);
    let trap = trap("127.0.0.3");
    let mut c = Control::login(server.addr, "dev");
    let (code, _) = c.cmd(&format!(
        "EPRT |1|127.0.0.3|{}|",
        trap.local_addr().unwrap().port()
    ));
    assert_eq!(code, 501);
    assert_eq!(c.cmd("LIST").0, 425);
    assert_untouched(&trap);
}

#[test]
fn port_below_1024_is_refused() {
    let server = Server::start("", &[("dev", "full")]);
    let mut c = Control::login(server.addr, "dev");
    assert_eq!(c.cmd("PORT 127,0,0,1,0,22").0, 501);
    assert_eq!(c.cmd("EPRT |1|127.0.0.1|1023|").0, 501);
    assert_eq!(c.cmd("NLST").0, 425);
    server.wait_log("privileged port 22 refused", Duration::from_secs(5));
}

#[test]
fn active_off_disables_port() {
    let server = Server::start("active = off", &[("dev", "full")]);
    let mut c = Control::login(server.addr, "dev");
    assert_eq!(c.cmd("PORT 127,0,0,1,200,1").0, 502);
    let (_, feat) = c.cmd("FEAT");
    assert!(!feat.contains("EPRT"));
}

#[test]
fn epsv_off_refuses_epsv_and_pasv_still_works() {
    let server = Server::start("epsv = off", &[("dev", "full")]);
    let mut c = Control::login(server.addr, "dev");
    assert_eq!(c.cmd("EPSV").0, 502);
    c.pasv();
}

/// Connects to `dest` from `source` (a loopback alias std cannot bind
/// before connecting), reads until EOF; prints `connected`, then `got N`.
const THIEF: &str = "import socket,sys\ns=socket.socket()\ns.bind((sys.argv[1],0))\ns.connect((sys.argv[2],int(sys.argv[3])))\nprint('connected',flush=True)\ns.settimeout(10)\nn=0\ntry:\n  while True:\n    x=s.recv(4096)\n    if not x: break\n    n+=len(x)\nexcept OSError: pass\nprint('got',n,flush=True)\n";

#[test]
fn passive_connection_from_another_address_is_refused() {
    use std::io::BufRead;
    let server = Server::start("", &[("dev", "full")]);
    std::fs::write(server.home("dev").join("f"), b"data").unwrap();
    let mut c = Control::login(server.addr, "dev");
    c.cmd("TYPE I");
    let data_addr = c.pasv();
    // A thief from 127.0.0.2 connects first.
    let mut thief = std::process::Command::new("python3")
        .args([
            "-c",
            THIEF,
            "127.0.0.2",
            &data_addr.ip().to_string(),
            &data_addr.port().to_string(),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut report = std::io::BufReader::new(thief.stdout.take().unwrap()).lines();
    assert_eq!(report.next().unwrap().unwrap(), "connected");
    c.send("RETR f");
    // The thief is closed without data.
    assert_eq!(report.next().unwrap().unwrap(), "got 0");
    thief.wait().unwrap();
    // The real client still gets the file.
    let mut real = TcpStream::connect(data_addr).unwrap();
    assert_eq!(c.reply().0, 150);
    let mut got = Vec::new();
    real.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"data");
    assert_eq!(c.reply().0, 226);
    assert!(server
        .log()
        .contains("passive data connection from 127.0.0.2"));
}

#[test]
fn traversal_forms_are_refused() {
    let server = Server::start("", &[("dev", "full")]);
    // A file outside the home that must stay unreachable.
    let secret = server.dir.0.join("secret.txt");
    std::fs::write(&secret, b"secret").unwrap();
    std::os::unix::fs::symlink(&secret, server.home("dev").join("link")).unwrap();
    std::os::unix::fs::symlink(server.dir.0.as_path(), server.home("dev").join("dirlink")).unwrap();
    let mut c = Control::login(server.addr, "dev");
    for (cmd, expected) in [
        ("CWD ..", 550),
        ("CWD ../..", 550),
        ("SIZE ../secret.txt", 550),
        ("SIZE /../secret.txt", 550),
        ("SIZE link", 550),
        ("SIZE dirlink/secret.txt", 550),
        ("CWD dirlink", 550),
        ("SIZE ..\\secret.txt", 553),
        ("MKD dirlink/x", 550),
        ("DELE ../secret.txt", 550),
        ("RNFR ../secret.txt", 550),
        ("MDTM /etc/passwd", 550),
    ] {
        let (code, text) = c.cmd(cmd);
        assert_eq!(code, expected, "{cmd}: {text}");
    }
    // NUL inside a path.
    c.send_raw(b"SIZE a\0b\r\n").unwrap();
    assert_eq!(c.reply().0, 553);
    // Over-long path.
    let (code, _) = c.cmd(&format!("MKD {}", "a".repeat(1001)));
    assert_eq!(code, 501);
    // A listing through a symlink to outside is refused; nothing is sent.
    c.pasv();
    assert_eq!(c.cmd("LIST dirlink").0, 550);
    c.pasv();
    assert_eq!(c.cmd("RETR link").0, 550);
    // STOR through a symlinked directory is refused; the secret is untouched.
    c.pasv();
    assert_eq!(c.cmd("STOR dirlink/secret.txt").0, 550);
    assert_eq!(std::fs::read(&secret).unwrap(), b"secret");
    // Absolute paths are rooted at the home.
    assert_eq!(c.cmd("MKD /inside").0, 257);
    assert!(server.home("dev").join("inside").is_dir());
}

#[test]
fn temporaries_cannot_be_addressed() {
    let server = Server::start("", &[("dev", "full")]);
    std::fs::write(server.home("dev").join(".lakeftpd-tmp-abc"), b"partial").unwrap();
    let mut c = Control::login(server.addr, "dev");
    assert_eq!(c.cmd("SIZE .lakeftpd-tmp-abc").0, 553);
    assert_eq!(c.cmd("DELE .lakeftpd-tmp-abc").0, 553);
}

#[test]
fn over_long_line_closes_that_session_only() {
    let server = Server::start("", &[("dev", "full")]);
    let mut other = Control::login(server.addr, "dev");
    let mut c = Control::open(server.addr);
    // 4 KiB without a line end: more than MAX_LINE.
    let _ = c.send_raw(&[b'A'; 4096]);
    let (code, _) = c.reply();
    assert_eq!(code, 500);
    assert!(c.closed_within(Duration::from_secs(5)));
    assert_eq!(other.cmd("NOOP").0, 200, "other sessions keep working");
    server.wait_log("reason=line too long", Duration::from_secs(5));
}

#[test]
fn wrong_passwords_are_delayed_then_disconnected() {
    let server = Server::start(
        "login_fail_delay = 400ms\nmax_login_failures = 2",
        &[("dev", "full")],
    );
    let mut c = Control::open(server.addr);
    c.cmd("USER dev");
    let started = Instant::now();
    let (code, _) = c.cmd("PASS wrong");
    assert_eq!(code, 530);
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "failure reply was not delayed"
    );
    c.cmd("USER dev");
    let (code, text) = c.cmd("PASS wrong-again");
    assert_eq!(code, 530);
    assert!(text.contains("too many"));
    assert!(c.closed_within(Duration::from_secs(5)));
    assert!(
        !server.log().contains("wrong-again"),
        "passwords never reach the log"
    );
    // The right password still works in a new session.
    Control::login(server.addr, "dev");
}

#[test]
fn unknown_user_gets_the_same_answers() {
    let server = Server::start("", &[("dev", "full")]);
    let mut c = Control::open(server.addr);
    assert_eq!(c.cmd("USER nobody").0, 331);
    assert_eq!(c.cmd(&format!("PASS {PASSWORD}")).0, 530);
}

#[test]
fn commands_before_login_are_refused() {
    let server = Server::start("", &[("dev", "full")]);
    let mut c = Control::open(server.addr);
    for cmd in [
        "PWD",
        "LIST",
        "RETR x",
        "STOR x",
        "PASV",
        "PORT 127,0,0,1,200,1",
        "CWD /",
    ] {
        assert_eq!(c.cmd(cmd).0, 530, "{cmd}");
    }
    assert_eq!(c.cmd("FEAT").0, 211);
}

#[test]
fn max_sessions_plus_one_gets_421() {
    // Both slots held by logged-in devices: nothing can be shed, so the
    // third connection is refused. (Connections not logged in yet would be
    // shed oldest first instead: tests/defence.rs.)
    let server = Server::start("max_sessions = 2", &[("dev", "full")]);
    let mut a = Control::login(server.addr, "dev");
    let _b = Control::login(server.addr, "dev");
    let mut third = Control::connect(server.addr);
    let (code, _) = third.reply();
    assert_eq!(code, 421);
    assert!(third.closed_within(Duration::from_secs(5)));
    assert_eq!(a.cmd("NOOP").0, 200, "the server stays responsive");
    drop(a);
    std::thread::sleep(Duration::from_millis(200));
    Control::open(server.addr);
}

#[test]
fn max_sessions_per_ip() {
    let server = Server::start("max_sessions_per_ip = 1", &[("dev", "full")]);
    let _a = Control::open(server.addr);
    let mut b = Control::connect(server.addr);
    assert_eq!(b.reply().0, 421);
}

#[test]
fn idle_sessions_are_closed() {
    let server = Server::start("idle_timeout = 1s", &[("dev", "full")]);
    let mut c = Control::login(server.addr, "dev");
    let started = Instant::now();
    let (code, text) = c.reply();
    assert_eq!(code, 421, "{text}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(c.closed_within(Duration::from_secs(5)));
}

#[test]
fn login_deadline_closes_silent_connections() {
    let server = Server::start("login_timeout = 1s", &[("dev", "full")]);
    let mut c = Control::open(server.addr);
    let (code, _) = c.reply();
    assert_eq!(code, 421);
}

#[test]
fn upload_permission_cannot_read_delete_or_rename() {
    let server = Server::start("", &[("device", "upload")]);
    let mut c = Control::login(server.addr, "device");
    c.cmd("TYPE I");
    let data = c.pasv();
    c.send("STOR m.csv");
    let mut s = TcpStream::connect(data).unwrap();
    assert_eq!(c.reply().0, 150);
    s.write_all(b"1,2,3\n").unwrap();
    drop(s);
    assert_eq!(c.reply().0, 226);
    // Re-sending under the same name replaces the file.
    let data = c.pasv();
    c.send("STOR m.csv");
    let mut s = TcpStream::connect(data).unwrap();
    assert_eq!(c.reply().0, 150);
    s.write_all(b"4,5,6\n").unwrap();
    drop(s);
    assert_eq!(c.reply().0, 226);
    assert_eq!(
        std::fs::read(server.home("device").join("m.csv")).unwrap(),
        b"4,5,6\n"
    );
    assert_eq!(c.cmd("MKD sub").0, 257);
    c.pasv();
    assert_eq!(c.cmd("RETR m.csv").0, 550);
    assert_eq!(c.cmd("DELE m.csv").0, 550);
    assert_eq!(c.cmd("RNFR m.csv").0, 550);
    assert_eq!(c.cmd("RMD sub").0, 550);
    assert!(server.home("device").join("m.csv").exists());
}

#[test]
fn read_permission_cannot_store() {
    let server = Server::start("", &[("reader", "read")]);
    let mut c = Control::login(server.addr, "reader");
    c.pasv();
    assert_eq!(c.cmd("STOR x").0, 550);
    assert_eq!(c.cmd("MKD d").0, 550);
}
