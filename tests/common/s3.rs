//! S3 test helpers: a real S3 API server on loopback (s3s-fs, which verifies
//! SigV4 signatures and checksums), lakeftpd started with chosen environment
//! variables (credentials, metadata endpoint), the fake IMDS, and readers for
//! what s3s-fs stored on disk.
#![allow(dead_code)]

use crate::common::{bin, names, passive_range, password_hash, Control, Scratch, PASSWORD};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "AKIALAKEFTPDTEST";
pub const SECRET_KEY: &str = "lakeftpd/test+secret/KEY0123456789abcdef";
pub const BUCKET: &str = "lake";

/// The s3s-fs binary: `S3S_FS`, else on PATH, else in ~/.cargo/bin.
pub fn s3s_fs() -> PathBuf {
    if let Some(path) = std::env::var_os("S3S_FS") {
        return PathBuf::from(path);
    }
    if let Ok(out) = Command::new("which").arg("s3s-fs").output() {
        let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !path.is_empty() {
            return PathBuf::from(path);
        }
    }
    PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo/bin/s3s-fs")
}

/// A loopback port free right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_port(port: u16, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// s3s-fs on a fixed loopback port, serving `root` (buckets are directories).
pub struct S3 {
    pub port: u16,
    pub root: PathBuf,
    child: Option<Child>,
}

impl S3 {
    /// A root with the bucket, and a port; not started.
    pub fn prepare(dir: &Path) -> S3 {
        let root = dir.join("s3");
        std::fs::create_dir_all(root.join(BUCKET)).unwrap();
        S3 {
            port: free_port(),
            root,
            child: None,
        }
    }

    pub fn start(dir: &Path) -> S3 {
        let mut s3 = S3::prepare(dir);
        s3.run();
        s3
    }

    pub fn run(&mut self) {
        assert!(self.child.is_none());
        let child = Command::new(s3s_fs())
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(&self.root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3s-fs (cargo install s3s-fs --features binary)");
        self.child = Some(child);
        assert!(
            wait_port(self.port, Duration::from_secs(10)),
            "s3s-fs did not start"
        );
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn object_path(&self, key: &str) -> PathBuf {
        self.root.join(BUCKET).join(key)
    }

    pub fn object(&self, key: &str) -> Option<Vec<u8>> {
        std::fs::read(self.object_path(key)).ok()
    }

    /// Waits until the object exists with `len` bytes.
    pub fn wait_object(&self, key: &str, len: usize, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if std::fs::metadata(self.object_path(key)).is_ok_and(|m| m.len() as usize == len) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The user metadata s3s-fs keeps beside the object (its own layout:
    /// `.bucket-B64(bucket).object-B64(key).metadata.json`, URL-safe base64
    /// without padding).
    pub fn metadata(&self, key: &str) -> Option<String> {
        let name = format!(
            ".bucket-{}.object-{}.metadata.json",
            base64url(BUCKET.as_bytes()),
            base64url(key.as_bytes())
        );
        std::fs::read_to_string(self.root.join(name)).ok()
    }

    /// Every object key under the bucket (files only).
    pub fn keys(&self) -> Vec<String> {
        let base = self.root.join(BUCKET);
        let mut keys = Vec::new();
        let mut pending = vec![base.clone()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    keys.push(
                        path.strip_prefix(&base)
                            .unwrap()
                            .to_string_lossy()
                            .into_owned(),
                    );
                }
            }
        }
        keys.sort();
        keys
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        self.stop();
    }
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// lakeftpd with its own environment.
pub struct Lake {
    child: Child,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    pub config_path: PathBuf,
    env: Vec<(String, Option<String>)>,
    log: Arc<Mutex<String>>,
}

/// Environment with the test credentials.
pub fn key_env() -> Vec<(String, Option<String>)> {
    vec![
        ("AWS_ACCESS_KEY_ID".into(), Some(ACCESS_KEY.into())),
        ("AWS_SECRET_ACCESS_KEY".into(), Some(SECRET_KEY.into())),
        ("AWS_SESSION_TOKEN".into(), None),
    ]
}

impl Lake {
    /// Writes a configuration (`global` lines after the test defaults, users
    /// with `PASSWORD`) into `dir` and starts lakeftpd with `env`
    /// (`None` removes a variable).
    pub fn start(
        dir: &Scratch,
        global: &str,
        users: &[&str],
        env: Vec<(String, Option<String>)>,
    ) -> Lake {
        let (first, last) = passive_range();
        let mut config = format!(
            "listen = 127.0.0.1:0\nroot = {}\npassive_ports = {first}-{last}\nlogin_fail_delay = 100ms\nspool = {}\n",
            dir.0.join("home").display(),
            dir.0.join("spool").display()
        );
        config.push_str(global);
        config.push('\n');
        for name in users {
            config.push_str(&format!(
                "[user {name}]\npassword = {}\npermissions = full\n",
                password_hash()
            ));
        }
        let config_path = dir.0.join("lakeftpd.conf");
        std::fs::write(&config_path, config).unwrap();
        Lake::spawn(dir.0.clone(), config_path, env)
    }

    pub fn spawn(dir: PathBuf, config_path: PathBuf, env: Vec<(String, Option<String>)>) -> Lake {
        let mut command = Command::new(bin());
        command
            .args(["serve", "--config"])
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in &env {
            match value {
                Some(v) => command.env(name, v),
                None => command.env_remove(name),
            };
        }
        let mut child = command.spawn().expect("start lakeftpd");
        let (addr, log) = crate::common::watch(&mut child);
        Lake {
            child,
            addr,
            dir,
            config_path,
            env,
            log,
        }
    }

    /// SIGKILL and start again on the same configuration and directories.
    pub fn kill_and_restart(mut self) -> Lake {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let env = std::mem::take(&mut self.env);
        Lake::spawn(self.dir.clone(), self.config_path.clone(), env)
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, user: &str) -> String {
        format!(
            "ftp://{user}:{}@127.0.0.1:{}",
            PASSWORD.replace(' ', "%20"),
            self.addr.port()
        )
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn wait_log(&self, needle: &str, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Sends `signal` (`TERM`, `INT`, ...) with kill(1).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The exit code once the process exited; `None` while it runs.
    pub fn exited(&mut self) -> Option<Option<i32>> {
        self.child.try_wait().unwrap().map(|status| status.code())
    }

    pub fn spool_files(&self) -> Vec<String> {
        names(&self.dir.join("spool"))
    }
}

impl Drop for Lake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// STOR over a raw control connection and passive data: the final reply.
pub fn stor(addr: SocketAddr, user: &str, name: &str, data: &[u8]) -> (u16, String) {
    let mut c = Control::login(addr, user);
    assert_eq!(c.cmd("TYPE I").0, 200);
    let data_addr = c.pasv();
    c.send(&format!("STOR {name}"));
    let mut stream = TcpStream::connect(data_addr).unwrap();
    let (code, text) = c.reply();
    assert_eq!(code, 150, "{text}");
    // Ignore write errors: the server may refuse early; its reply tells.
    let _ = stream.write_all(data);
    drop(stream);
    c.stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    c.reply()
}

/// The fake IMDS (tests/fake_imds_creds.py), serving the credentials in
/// `creds_file` (rewritten by the test to rotate them).
pub struct Imds {
    child: Child,
    pub port: u16,
    pub creds_file: PathBuf,
}

impl Imds {
    pub fn start(dir: &Path, key: &str, secret: &str) -> Imds {
        let creds_file = dir.join("imds-creds.json");
        Imds::write(&creds_file, key, secret);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake_imds_creds.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(&creds_file)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("fake IMDS prints its port");
        Imds {
            child,
            port,
            creds_file,
        }
    }

    pub fn write(path: &Path, key: &str, secret: &str) {
        let temp = path.with_extension("tmp");
        std::fs::write(
            &temp,
            format!("{{\"AccessKeyId\": \"{key}\", \"SecretAccessKey\": \"{secret}\"}}"),
        )
        .unwrap();
        std::fs::rename(temp, path).unwrap();
    }

    pub fn rotate(&self, key: &str, secret: &str) {
        Imds::write(&self.creds_file, key, secret);
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Imds {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads a whole file (test convenience).
pub fn read(path: &Path) -> Vec<u8> {
    let mut v = Vec::new();
    std::fs::File::open(path)
        .unwrap()
        .read_to_end(&mut v)
        .unwrap();
    v
}
