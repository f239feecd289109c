//! The command line: demo, check, passwd, --help.

mod common;

use common::{bin, run, Control, Scratch, Server};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn lakeftpd(
    args: &[&str],
    stdin: Option<&str>,
    cwd: Option<&std::path::Path>,
) -> (bool, String, String) {
    run(bin().to_str().unwrap(), args, stdin, cwd)
}

#[test]
fn check_reports_every_problem_with_its_line_and_exits_1() {
    let dir = Scratch::new("check");
    let path = dir.0.join("bad.conf");
    std::fs::write(
        &path,
        "listen = 0.0.0.0:21\nidle_timeout = 30\nbogus = 1\n[user a]\npassword = plain\n",
    )
    .unwrap();
    let (ok, out, err) = lakeftpd(&["check", "--config", path.to_str().unwrap()], None, None);
    assert!(!ok);
    assert!(out.is_empty());
    for expected in ["line 2:", "line 3: unknown key `bogus`", "line 5:"] {
        assert!(err.contains(expected), "{expected} missing:\n{err}");
    }
    assert!(err.contains("3 problem(s)"), "{err}");
}

#[test]
fn check_accepts_a_good_file() {
    let dir = Scratch::new("check-ok");
    let path = dir.0.join("good.conf");
    std::fs::write(
        &path,
        format!(
            "listen = 0.0.0.0:21\n[user a]\npassword = {}\n",
            common::password_hash()
        ),
    )
    .unwrap();
    let (ok, out, err) = lakeftpd(&["check", "--config", path.to_str().unwrap()], None, None);
    assert!(ok, "{err}");
    assert!(out.contains("1 users"), "{out}");
}

#[test]
fn world_readable_config_with_hashes_warns() {
    use std::os::unix::fs::PermissionsExt;
    let dir = Scratch::new("perm");
    let path = dir.0.join("c.conf");
    std::fs::write(
        &path,
        format!("[user a]\npassword = {}\n", common::password_hash()),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (_, _, err) = lakeftpd(&["check", "--config", path.to_str().unwrap()], None, None);
    assert!(err.contains("readable by every user"), "{err}");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (_, _, err) = lakeftpd(&["check", "--config", path.to_str().unwrap()], None, None);
    assert!(!err.contains("readable by every user"), "{err}");
}

#[test]
fn missing_file_is_one_clear_line() {
    let (ok, _, err) = lakeftpd(
        &["check", "--config", "/nonexistent/lakeftpd.conf"],
        None,
        None,
    );
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cannot read /nonexistent/lakeftpd.conf"));
}

#[test]
fn passwd_prints_a_sha512_crypt_hash() {
    let (ok, out, _) = lakeftpd(&["passwd"], Some("hunter2\n"), None);
    assert!(ok);
    assert!(out.starts_with("$6$"), "{out}");
    assert!(!out.contains("hunter2"));
    let (ok, _, err) = lakeftpd(&["passwd"], Some(""), None);
    assert!(!ok);
    assert!(err.contains("empty password"));
}

#[test]
fn help_on_each_command() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["check", "--help"],
        vec!["passwd", "--help"],
    ] {
        let (ok, out, _) = lakeftpd(&args, None, None);
        assert!(ok, "{args:?}");
        assert!(out.contains("Usage: "), "{args:?}: {out}");
    }
    let (_, out, _) = lakeftpd(&["serve", "--help"], None, None);
    assert!(out.contains("--config") && out.contains("--user-data"));
}

#[test]
fn serve_needs_a_source() {
    let (ok, _, err) = lakeftpd(&["serve"], None, None);
    assert!(!ok);
    assert!(err.contains("--config FILE or --user-data"), "{err}");
}

#[test]
fn serve_without_health_listen_stops_within_a_second() {
    let mut server = Server::start("drain_delay = 10s\n", &[("dev", "upload")]);
    let mut idle = Control::login(server.addr, "dev");
    let signalled = Instant::now();
    server.signal("TERM");
    let code = server.wait_exit(Duration::from_secs(5));
    let took = signalled.elapsed();
    assert_eq!(code, Some(0), "exit code; log:\n{}", server.log());
    assert!(
        took < Duration::from_secs(1),
        "took {took:?} to stop; log:\n{}",
        server.log()
    );
    // The idle session was told why it was closed.
    assert_eq!(idle.reply().0, 421);
}

#[test]
fn demo_serves_with_a_printed_password() {
    let dir = Scratch::new("demo");
    // The demo's port is fixed (README's first command); nothing else in
    // the suite uses it.
    assert!(
        std::net::TcpListener::bind("127.0.0.1:2121").is_ok(),
        "port 2121 is busy"
    );
    let mut child = Command::new(bin())
        .current_dir(&dir.0)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let password = first
        .split("ftp://demo:")
        .nth(1)
        .and_then(|r| r.split('@').next())
        .expect("password printed")
        .to_string();
    std::fs::write(dir.0.join("hello.txt"), b"hello demo").unwrap();
    let url = format!("ftp://demo:{password}@127.0.0.1:2121/hello.txt");
    let mut ok = false;
    for _ in 0..50 {
        if run(
            "curl",
            &["-sS", "-T", dir.0.join("hello.txt").to_str().unwrap(), &url],
            None,
            None,
        )
        .0
        {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Ctrl-C: the demo has no health listener, so no drain_delay applies
    // and, with nothing transferring, it exits within a second.
    let interrupted = Instant::now();
    assert!(Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let mut exited = None;
    while interrupted.elapsed() < Duration::from_secs(5) {
        if let Some(status) = child.try_wait().unwrap() {
            exited = Some((status, interrupted.elapsed()));
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "upload to the demo failed");
    let (status, took) = exited.expect("the demo did not exit within 5 s of SIGINT");
    assert!(status.success(), "demo exit status {status:?}");
    assert!(
        took < Duration::from_secs(1),
        "the demo took {took:?} to stop"
    );
    assert_eq!(
        std::fs::read(dir.0.join("lakeftpd-data/hello.txt")).unwrap(),
        b"hello demo"
    );
}

#[test]
fn version_prints_the_version() {
    let (ok, out, _) = lakeftpd(&["--version"], None, None);
    assert!(ok);
    assert_eq!(out, format!("lakeftpd {}\n", env!("CARGO_PKG_VERSION")));
}

/// `passwd` on a terminal (a pseudo-terminal driven by Python's pty
/// module): asked twice, nothing echoed, one hash printed. The same two
/// lines that differ are refused.
#[test]
fn passwd_on_a_terminal_asks_twice_without_echo() {
    let drive = r#"
import os, pty, sys, time
def run(answers):
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(sys.argv[1], [sys.argv[1], "passwd"])
    out = b""
    for prompt, answer in answers:
        while prompt not in out:
            chunk = os.read(fd, 1024)
            if not chunk:
                break
            out += chunk
        time.sleep(0.1)
        os.write(fd, answer)
    while True:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    return out.decode(), os.waitstatus_to_exitcode(status)
out, code = run([(b"Password: ", b"tty-secret-77\n"), (b"Again: ", b"tty-secret-77\n")])
print(repr(out)); print(code)
out, code = run([(b"Password: ", b"tty-secret-77\n"), (b"Again: ", b"other\n")])
print(repr(out)); print(code)
"#;
    let (ok, out, err) = run(
        "python3",
        &["-c", drive, bin().to_str().unwrap()],
        None,
        None,
    );
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    let (same, same_code, differ, differ_code) = (lines[0], lines[1], lines[2], lines[3]);
    assert!(
        same.contains("Password: ") && same.contains("Again: "),
        "{same}"
    );
    assert!(!same.contains("tty-secret-77"), "echoed: {same}");
    assert!(same.contains("$6$"), "{same}");
    assert_eq!(same_code, "0");
    assert!(differ.contains("the two passwords differ"), "{differ}");
    assert!(
        !differ.contains("tty-secret-77") && !differ.contains("other"),
        "{differ}"
    );
    assert_eq!(differ_code, "1");
}
