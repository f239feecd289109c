//! Test harness: starts the real `lakeftpd` binary on port 0 with a
//! configuration written for the test, reads the bound address back from its
//! log, and offers a raw control-connection client for protocol checks.
//! Real clients (curl, lftp, inetutils ftp, Python's ftplib) are run as
//! subprocesses by the tests themselves.
#![allow(dead_code)]

pub mod tls;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The password every test user has.
pub const PASSWORD: &str = "s3cret.pass";

/// The binary under test: `LAKEFTPD_BIN` (CI sets the static musl build) or
/// the one cargo built for this test run.
pub fn bin() -> PathBuf {
    match std::env::var_os("LAKEFTPD_BIN") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_BIN_EXE_lakeftpd")),
    }
}

/// `$6$` hash of `PASSWORD`, made once by `lakeftpd passwd`.
pub fn password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let mut child = Command::new(bin())
            .arg("passwd")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run lakeftpd passwd");
        writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    })
}

/// A scratch directory removed at drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "lakeftpd-test-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A distinct passive range per server in this test process and across
/// concurrently running test binaries (spread by process id).
pub fn passive_range() -> (u16, u16) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let slot = (std::process::id() * 7 + NEXT.fetch_add(1, Ordering::Relaxed)) % 400;
    let first = 30000 + slot as u16 * 50;
    (first, first + 49)
}

pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub dir: Scratch,
    pub config_path: PathBuf,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts with `global` config lines and `users` (name, permissions).
    pub fn start(global: &str, users: &[(&str, &str)]) -> Server {
        let dir = Scratch::new("srv");
        let text = config_text(&dir, global, users);
        Server::start_with_text(dir, &text)
    }

    pub fn start_with_text(dir: Scratch, config: &str) -> Server {
        let config_path = dir.0.join("lakeftpd.conf");
        std::fs::write(&config_path, config).unwrap();
        Server::spawn(dir, config_path)
    }

    /// Starts (or restarts) the binary on an existing configuration.
    pub fn spawn(dir: Scratch, config_path: PathBuf) -> Server {
        let mut child = Command::new(bin())
            .args(["serve", "--config"])
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start lakeftpd");
        let (addr, log) = watch(&mut child);
        Server {
            child,
            addr,
            dir,
            config_path,
            log,
        }
    }

    /// A server started by the test itself (e.g. under prlimit).
    pub fn adopt(
        child: Child,
        addr: SocketAddr,
        dir: Scratch,
        config_path: PathBuf,
        log: Arc<Mutex<String>>,
    ) -> Server {
        Server {
            child,
            addr,
            dir,
            config_path,
            log,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn url(&self, user: &str) -> String {
        format!("ftp://{user}:{}@127.0.0.1:{}", PASSWORD, self.port())
    }

    pub fn home(&self, user: &str) -> PathBuf {
        self.dir.0.join("home").join(user)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle` (or panics after `limit`).
    pub fn wait_log(&self, needle: &str, limit: Duration) {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if self.log().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("log never contained {needle:?}:\n{}", self.log());
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// SIGKILL, then hand back the directory for a restart.
    pub fn kill(mut self) -> (Scratch, PathBuf) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = std::mem::replace(&mut self.dir, Scratch(PathBuf::new()));
        let path = self.config_path.clone();
        (dir, path)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Collects a started binary's stderr into a shared log and waits (20 s at
/// most) for its `listening on ADDR` line; panics with the log otherwise.
pub fn watch(child: &mut Child) -> (SocketAddr, Arc<Mutex<String>>) {
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().expect("stderr piped");
    let sink = log.clone();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(at) = line.find("listening on ") {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(line[at + 13..].trim().to_string());
                }
            }
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(addr) => (addr.parse().unwrap(), log),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            // Let the reader thread take the last lines.
            std::thread::sleep(Duration::from_millis(100));
            panic!("lakeftpd did not start:\n{}", log.lock().unwrap());
        }
    }
}

/// A raw control connection, for exact protocol checks.
pub struct Control {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Control {
    pub fn connect(addr: SocketAddr) -> Control {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Control { stream, reader }
    }

    /// Wraps an already connected stream.
    pub fn from_stream(stream: TcpStream) -> Control {
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Control { stream, reader }
    }

    /// Connects and reads the greeting.
    pub fn open(addr: SocketAddr) -> Control {
        let mut c = Control::connect(addr);
        let (code, _) = c.reply();
        assert_eq!(code, 220);
        c
    }

    /// Connects, logs in as `user`.
    pub fn login(addr: SocketAddr, user: &str) -> Control {
        let mut c = Control::open(addr);
        assert_eq!(c.cmd(&format!("USER {user}")).0, 331);
        assert_eq!(c.cmd(&format!("PASS {PASSWORD}")).0, 230);
        c
    }

    pub fn send(&mut self, line: &str) {
        self.stream
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads one reply (all lines of a multi-line one): (code, full text).
    pub fn reply(&mut self) -> (u16, String) {
        let mut text = String::new();
        let mut first = String::new();
        if self.reader.read_line(&mut first).unwrap_or(0) == 0 {
            return (0, String::new());
        }
        text.push_str(&first);
        let code: u16 = first.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
        if first.as_bytes().get(3) == Some(&b'-') {
            let end = format!("{code} ");
            loop {
                let mut line = String::new();
                if self.reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                text.push_str(&line);
                if line.starts_with(&end) {
                    break;
                }
            }
        }
        (code, text)
    }

    pub fn cmd(&mut self, line: &str) -> (u16, String) {
        self.send(line);
        self.reply()
    }

    /// True when the server closed the connection (EOF within `limit`).
    pub fn closed_within(&mut self, limit: Duration) -> bool {
        self.stream.set_read_timeout(Some(limit)).unwrap();
        let mut buf = [0u8; 256];
        loop {
            match self.reader.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }

    /// PASV: the data address the server advertised.
    pub fn pasv(&mut self) -> SocketAddr {
        let (code, text) = self.cmd("PASV");
        assert_eq!(code, 227, "{text}");
        let inner = &text[text.find('(').unwrap() + 1..text.find(')').unwrap()];
        let n: Vec<u16> = inner.split(',').map(|x| x.parse().unwrap()).collect();
        format!("{}.{}.{}.{}:{}", n[0], n[1], n[2], n[3], n[4] * 256 + n[5])
            .parse()
            .unwrap()
    }
}

/// Runs a command, returns (success, stdout, stderr).
pub fn run(
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
    cwd: Option<&Path>,
) -> (bool, String, String) {
    let mut command = Command::new(program);
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    if let Some(dir) = cwd {
        command.current_dir(dir);
    }
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Names of a directory's entries, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

// ============================================================================
// EC2 user-data over IMDSv2 (used by tests/user_data.rs).
// A fake IMDS (tests/fake_imds.py) and ways to run the binary against it.
// ============================================================================

/// What the fake IMDS serves; written as its JSON state file.
#[derive(Clone, Debug)]
pub struct ImdsState {
    /// `None`: the instance has no user-data (404).
    pub user_data: Option<String>,
    pub instance_id: String,
    pub availability_zone: String,
    pub local_ipv4: Option<String>,
    /// `None`: the instance has no public address (404).
    pub public_ipv4: Option<String>,
    /// 503 to everything for this long after the fake starts listening.
    pub not_ready_seconds: f64,
    /// A token dies after this many GETs (the next GET with it gets 401).
    pub tokens_valid_for_gets: Option<u32>,
    /// 403 to everything (metadata access turned off).
    pub disabled: bool,
}

impl ImdsState {
    pub fn new(user_data: Option<&str>) -> ImdsState {
        ImdsState {
            user_data: user_data.map(str::to_string),
            instance_id: "i-0123456789abcdef0".into(),
            availability_zone: "ap-northeast-1a".into(),
            // Loopback-looking addresses: only the 227 reply shows them.
            local_ipv4: Some("127.0.0.8".into()),
            public_ipv4: Some("127.0.0.9".into()),
            not_ready_seconds: 0.0,
            tokens_valid_for_gets: None,
            disabled: false,
        }
    }

    fn to_json(&self) -> String {
        fn s(v: &Option<String>) -> String {
            v.as_deref().map_or("null".into(), json_string)
        }
        format!(
            "{{\"user_data\": {}, \"instance_id\": {}, \"availability_zone\": {}, \
             \"local_ipv4\": {}, \"public_ipv4\": {}, \"not_ready_seconds\": {}, \
             \"tokens_valid_for_gets\": {}, \"disabled\": {}}}",
            s(&self.user_data),
            json_string(&self.instance_id),
            json_string(&self.availability_zone),
            s(&self.local_ipv4),
            s(&self.public_ipv4),
            self.not_ready_seconds,
            self.tokens_valid_for_gets
                .map_or("null".into(), |n| n.to_string()),
            self.disabled,
        )
    }
}

/// A JSON string literal.
pub fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// tests/fake_imds.py on 127.0.0.1, port 0; stopped at drop.
pub struct FakeImds {
    child: Child,
    pub endpoint: String,
    pub dir: Scratch,
}

impl FakeImds {
    pub fn start(state: &ImdsState) -> FakeImds {
        FakeImds::start_listening_after(state, 0.0)
    }

    /// The port is bound at once but connections are refused for `seconds`.
    pub fn start_listening_after(state: &ImdsState, seconds: f64) -> FakeImds {
        let dir = Scratch::new("imds");
        std::fs::write(dir.0.join("state.json"), state.to_json()).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake_imds.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg("--state")
            .arg(dir.0.join("state.json"))
            .arg("--log")
            .arg(dir.0.join("requests.log"))
            .arg("--listen-after")
            .arg(seconds.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run python3 tests/fake_imds.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("fake IMDS printed {line:?}"));
        FakeImds {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            dir,
        }
    }

    /// Replaces the state atomically (the fake re-reads it per request).
    pub fn set_state(&self, state: &ImdsState) {
        let tmp = self.dir.0.join("state.json.tmp");
        std::fs::write(&tmp, state.to_json()).unwrap();
        std::fs::rename(tmp, self.dir.0.join("state.json")).unwrap();
    }

    /// Every request so far: "METHOD PATH STATUS".
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.0.join("requests.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for FakeImds {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A configuration text for a scratch directory, as `Server::start` writes
/// it: listen on 127.0.0.1:0, a private passive range and a short
/// `login_fail_delay` (unless `global` sets them), then `global`, then
/// `users` with `PASSWORD`. Everything else is lakeftpd's default.
pub fn config_text(dir: &Scratch, global: &str, users: &[(&str, &str)]) -> String {
    let (first, last) = passive_range();
    let mut config = format!(
        "listen = 127.0.0.1:0\nroot = {}\n",
        dir.0.join("home").display()
    );
    // Tests run in parallel: each server has a range of its own.
    if !global.contains("passive_ports") {
        config.push_str(&format!("passive_ports = {first}-{last}\n"));
    }
    // Fast failures keep tests quick, unless the test is about them.
    if !global.contains("login_fail_delay") {
        config.push_str("login_fail_delay = 100ms\n");
    }
    config.push_str(global);
    config.push('\n');
    for (name, permissions) in users {
        config.push_str(&user_section(name, permissions, ""));
    }
    config
}

/// A `[user NAME]` section with `PASSWORD`, `permissions`, and `lines` of
/// its own (each ending in a newline).
pub fn user_section(name: &str, permissions: &str, lines: &str) -> String {
    format!(
        "[user {name}]\npassword = {}\npermissions = {permissions}\n{lines}",
        password_hash()
    )
}

impl Server {
    /// Starts the binary with `args` and extra environment variables, and
    /// waits for "listening on" as `spawn` does.
    pub fn spawn_with(dir: Scratch, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(bin())
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start lakeftpd");
        let (addr, log) = watch(&mut child);
        let config_path = dir.0.join("lakeftpd.conf");
        Server {
            child,
            addr,
            dir,
            config_path,
            log,
        }
    }
}

/// What a finished run of the binary left: exit code, stdout, stderr, time.
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

/// Runs the binary to completion with extra environment variables; kills it
/// after `limit`.
pub fn run_bin(args: &[&str], env: &[(&str, &str)], limit: Duration) -> Finished {
    let started = Instant::now();
    let mut child = Command::new(bin())
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run lakeftpd");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("lakeftpd {args:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = started.elapsed();
    Finished {
        code,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        took,
    }
}
