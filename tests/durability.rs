//! Durability: a 226 means the file is in place; anything else leaves
//! nothing behind — no partial file under the final name, no temporary.

mod common;

use common::{names, pattern, Control, Scratch, Server, PASSWORD};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Starts a passive STOR of `name` and sends `bytes` without finishing.
fn start_upload(server: &Server, name: &str, bytes: &[u8]) -> (Control, TcpStream) {
    let mut c = Control::login(server.addr, "dev");
    c.cmd("TYPE I");
    let data = c.pasv();
    c.send(&format!("STOR {name}"));
    let mut s = TcpStream::connect(data).unwrap();
    assert_eq!(c.reply().0, 150);
    s.write_all(bytes).unwrap();
    (c, s)
}

fn wait_for_temporary(dir: &std::path::Path) {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if names(dir).iter().any(|n| n.starts_with(".lakeftpd-tmp-")) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no temporary appeared in {}", dir.display());
}

const KILLED_CLIENT: &str = r#"
import ftplib, os, sys, time
ftp = ftplib.FTP()
ftp.connect("127.0.0.1", int(sys.argv[1]), timeout=10)
ftp.login("dev", sys.argv[2])
conn = ftp.transfercmd("STOR victim.bin")
conn.sendall(os.urandom(100000))
print("sent", flush=True)
time.sleep(0.3)
os.kill(os.getpid(), 9)
"#;

#[test]
fn client_killed_mid_stor_leaves_nothing() {
    let server = Server::start("", &[("dev", "full")]);
    for round in 0..5 {
        let out = Command::new("python3")
            .args(["-c", KILLED_CLIENT, &server.port().to_string(), PASSWORD])
            .stdout(Stdio::piped())
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("sent"),
            "round {round}"
        );
        let end = Instant::now() + Duration::from_secs(5);
        while !names(&server.home("dev")).is_empty() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            names(&server.home("dev")).is_empty(),
            "round {round}: {:?}",
            names(&server.home("dev"))
        );
    }
    server.wait_log("verb=STOR path=\"/victim.bin\"", Duration::from_secs(5));
}

#[test]
fn dropped_data_connection_with_reset_leaves_nothing() {
    let server = Server::start("", &[("dev", "full")]);
    let (mut c, s) = start_upload(&server, "r.bin", &pattern(50_000, 1));
    wait_for_temporary(&server.home("dev"));
    // SO_LINGER 0 makes close send RST: an unambiguous abort.
    let sock = socket_with_linger_zero(s);
    drop(sock);
    let (code, _) = c.reply();
    assert_eq!(code, 426);
    assert!(names(&server.home("dev")).is_empty());
    assert_eq!(c.cmd("NOOP").0, 200, "the session goes on");
}

fn socket_with_linger_zero(s: TcpStream) -> TcpStream {
    rustix::net::sockopt::set_socket_linger(&s, Some(Duration::ZERO)).unwrap();
    s
}

#[test]
fn abor_mid_stor_leaves_nothing() {
    let server = Server::start("", &[("dev", "full")]);
    let (mut c, mut s) = start_upload(&server, "abort.bin", &pattern(80_000, 2));
    wait_for_temporary(&server.home("dev"));
    // Telnet IP + Synch before ABOR, as RFC 959 §4.1.3 describes.
    c.send_raw(b"\xff\xf4\xff\xf2ABOR\r\n").unwrap();
    assert_eq!(c.reply().0, 426);
    assert_eq!(c.reply().0, 226);
    // The server dropped the data connection.
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 16];
    assert!(matches!(s.read(&mut buf), Ok(0) | Err(_)));
    assert!(
        names(&server.home("dev")).is_empty(),
        "{:?}",
        names(&server.home("dev"))
    );
    assert_eq!(c.cmd("NOOP").0, 200);
}

#[test]
fn server_killed_mid_stor_then_restarted_leaves_nothing() {
    let server = Server::start("", &[("dev", "full")]);
    let home = server.home("dev");
    let (_c, _s) = start_upload(&server, "crash.bin", &pattern(60_000, 3));
    wait_for_temporary(&home);
    let (dir, config) = server.kill();
    assert!(
        !home.join("crash.bin").exists(),
        "no file under the final name"
    );
    let restarted = Server::spawn(dir, config);
    assert!(
        names(&home).is_empty(),
        "the stale temporary is removed at start: {:?}",
        names(&home)
    );
    restarted.wait_log("removed 1 partial uploads", Duration::from_secs(5));
}

#[test]
fn disk_full_gives_452_and_leaves_nothing() {
    let server = Server::start("", &[("dev", "full")]);
    let home = server.home("dev");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&home)
        .status()
        .unwrap();
    assert!(mounted.success(), "mount tmpfs (tests run as root)");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            // Lazy: the server, still running, keeps the filesystem's top
            // open for its flushes (storage/barrier.rs).
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _guard = Unmount(home.clone());
    let mut c = Control::login(server.addr, "dev");
    c.cmd("TYPE I");
    let data = c.pasv();
    c.send("STOR big.bin");
    let mut s = TcpStream::connect(data).unwrap();
    assert_eq!(c.reply().0, 150);
    // 2 MiB into 1 MiB: the server fails mid-way and stops reading.
    let _ = s.write_all(&pattern(2 << 20, 4));
    drop(s);
    let (code, text) = c.reply();
    assert_eq!(code, 452, "{text}");
    assert!(names(&home).is_empty(), "{:?}", names(&home));
    // Service continues: a small file fits.
    let data = c.pasv();
    c.send("STOR small.bin");
    let mut s = TcpStream::connect(data).unwrap();
    assert_eq!(c.reply().0, 150);
    s.write_all(b"small").unwrap();
    drop(s);
    assert_eq!(c.reply().0, 226);
    assert_eq!(std::fs::read(home.join("small.bin")).unwrap(), b"small");
}

#[test]
fn max_file_size_gives_552_and_leaves_nothing() {
    let server = Server::start("max_file_size = 10KiB", &[("dev", "full")]);
    let (mut c, s) = start_upload(&server, "too-big.bin", &pattern(20_000, 5));
    drop(s);
    assert_eq!(c.reply().0, 552);
    assert!(names(&server.home("dev")).is_empty());
}

#[test]
fn max_file_size_holds_past_the_first_buffer() {
    // Beyond the first 64 KiB buffer the upload is received in a loop; the
    // limit must hold there too.
    let server = Server::start("max_file_size = 100KiB", &[("dev", "full")]);
    let (mut c, s) = start_upload(&server, "big.bin", &pattern(300_000, 9));
    drop(s);
    assert_eq!(c.reply().0, 552);
    assert!(names(&server.home("dev")).is_empty());
    // Just under the limit is fine, and arrives intact.
    let data = pattern(100 * 1024, 10);
    let (mut c, s) = start_upload(&server, "fits.bin", &data);
    drop(s);
    assert_eq!(c.reply().0, 226);
    assert_eq!(
        std::fs::read(server.home("dev").join("fits.bin")).unwrap(),
        data
    );
}

#[test]
fn sigterm_lets_a_running_upload_finish_and_exits_zero() {
    let mut server = Server::start("drain_delay = 0s\ndrain_timeout = 20s", &[("dev", "full")]);
    let mut idle = Control::login(server.addr, "dev");
    let first = pattern(30_000, 6);
    let (mut c, mut s) = start_upload(&server, "slow.bin", &first);
    wait_for_temporary(&server.home("dev"));
    server.signal("TERM");
    // The idle session is told at once.
    assert_eq!(idle.reply().0, 421);
    // The transfer keeps going after the signal.
    std::thread::sleep(Duration::from_millis(300));
    let second = pattern(30_000, 7);
    s.write_all(&second).unwrap();
    drop(s);
    assert_eq!(c.reply().0, 226);
    assert_eq!(c.reply().0, 421, "then the session is closed");
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
    let mut expected = first;
    expected.extend(second);
    assert_eq!(
        std::fs::read(server.home("dev").join("slow.bin")).unwrap(),
        expected
    );
}

#[test]
fn drain_timeout_aborts_stalled_uploads_and_exits_zero() {
    let mut server = Server::start("drain_delay = 0s\ndrain_timeout = 1s", &[("dev", "full")]);
    let (mut c, _s) = start_upload(&server, "stalled.bin", &pattern(10_000, 8));
    wait_for_temporary(&server.home("dev"));
    let started = Instant::now();
    server.signal("TERM");
    assert_eq!(c.reply().0, 421);
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(names(&server.home("dev")).is_empty());
}

#[test]
fn stou_appe_and_rest_stor_are_atomic() {
    let server = Server::start("", &[("dev", "full")]);
    let home = server.home("dev");
    std::fs::write(home.join("log.txt"), b"one\n").unwrap();
    let mut c = Control::login(server.addr, "dev");
    c.cmd("TYPE I");
    // APPE
    let data = c.pasv();
    c.send("APPE log.txt");
    let mut s = TcpStream::connect(data).unwrap();
    assert_eq!(c.reply().0, 150);
    s.write_all(b"two\n").unwrap();
    drop(s);
    assert_eq!(c.reply().0, 226);
    assert_eq!(std::fs::read(home.join("log.txt")).unwrap(), b"one\ntwo\n");
    // REST + STOR resumes an upload at an offset.
    assert_eq!(c.cmd("REST 4").0, 350);
    let data = c.pasv();
    c.send("STOR log.txt");
    let mut s = TcpStream::connect(data).unwrap();
    assert_eq!(c.reply().0, 150);
    s.write_all(b"TWO\n").unwrap();
    drop(s);
    assert_eq!(c.reply().0, 226);
    assert_eq!(std::fs::read(home.join("log.txt")).unwrap(), b"one\nTWO\n");
    // STOU names the file.
    let data = c.pasv();
    c.send("STOU");
    let mut s = TcpStream::connect(data).unwrap();
    let (code, text) = c.reply();
    assert_eq!(code, 150);
    let name = text.trim().rsplit(' ').next().unwrap().to_string();
    s.write_all(b"unique").unwrap();
    drop(s);
    assert_eq!(c.reply().0, 226);
    assert_eq!(std::fs::read(home.join(&name)).unwrap(), b"unique");
    let _ = Scratch::new("unused");
}
