//! In-process tests of the session: a session task over a loopback pair,
//! with a `Shared` built here (no S3, no TLS, no users file) and a home in
//! a temporary directory; no binary spawned. Tests read as transcripts,
//! like smoltcp's socket tests: `send!(s, "STOR a.csv"); expect!(s, 150);`.

use super::Prelude;
use crate::auth::defender::{self, Defender};
use crate::config::{Config, Permissions, User};
use crate::data::passive::PassivePool;
use crate::ops::health::Health;
use crate::ops::metrics::Metrics;
use crate::shared::Shared;
use crate::sys::budget::FdBudget;
use crate::sys::unauthenticated::Share;
use crate::users::Users;
use smol::channel::Sender;
use smol::Async;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The user every fixture has, with full permissions.
pub(super) const USER: &str = "dev";
const PASSWORD: &str = "secret";
/// Passive ports of the fixtures: above the integration tests' ranges
/// (30000-49999, tests/common); a port in use is skipped by the pool.
const PASSIVE_PORTS: (u16, u16) = (52000, 52999);
/// How long a reply or a data read may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(10);

/// Sends a command line: `send!(s, "REST {}", 5)`.
macro_rules! send {
    ($s:expr, $($fmt:tt)+) => {
        $s.send(&format!($($fmt)+))
    };
}

/// Reads the next reply and checks its code; yields its text.
macro_rules! expect {
    ($s:expr, $code:expr) => {
        $s.expect($code)
    };
}

// After the macros: their scope is the text that follows them.
mod transcripts;

/// A server without a listener: each `connect` runs one session.
pub(super) struct Fixture {
    pub(super) shared: Arc<Shared>,
    /// The user's home.
    pub(super) home: PathBuf,
    root: PathBuf,
    /// Held so that the stop signals stay quiet: a closed channel is the
    /// signal.
    _stop: (Sender<()>, Sender<()>),
}

/// A $6$ hash of `PASSWORD`, made once: crypt is slow in a debug build.
fn password_hash() -> String {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| crate::auth::hash(PASSWORD).expect("hashing works"))
        .clone()
}

impl Fixture {
    pub(super) fn new() -> Fixture {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let root =
            std::env::temp_dir().join(format!("lakeftpd-session-{}-{n}", std::process::id()));
        let home = root.join(USER);
        std::fs::create_dir_all(&home).expect("a temporary home");
        let mut config = Config::defaults();
        config.root = root.clone();
        config.passive_ports = PASSIVE_PORTS;
        config.login_fail_delay = Duration::ZERO;
        // Unprivileged: active connections leave from any port.
        config.active_source_port = 0;
        let mut user = User::new(USER, password_hash(), home.clone());
        user.permissions = Permissions::FULL;
        config.users.push(user);
        let (stop_tx, stop_rx) = smol::channel::bounded(1);
        let (hard_tx, hard_rx) = smol::channel::bounded(1);
        let shared = Arc::new(Shared {
            users: Arc::new(Users::new(config.users.clone())),
            passive: PassivePool::new(config.passive_ports, 100),
            public_ip: None,
            per_ip: Mutex::new(HashMap::new()),
            fds: FdBudget::new(1000, 10),
            unauthenticated: Share::new(100, 100),
            defender: Mutex::new(Defender::new(defender::Settings {
                ban_after: config.defence.ban_after,
                ban_window: config.defence.ban_window,
                ban_time: config.defence.ban_time,
                exempt: config.defence.ban_exempt.clone(),
            })),
            health: Arc::new(Health::default()),
            metrics: Arc::new(Metrics::default()),
            delivery: None,
            stopping: stop_rx,
            hard_stopping: hard_rx,
            tls: None,
            config,
        });
        Fixture {
            shared,
            home,
            root,
            _stop: (stop_tx, hard_tx),
        }
    }

    /// A new control connection, its session running on a thread of its
    /// own; the 220 greeting is read.
    pub(super) fn connect(&self) -> Client {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let client = TcpStream::connect(listener.local_addr().expect("bound")).expect("connect");
        let (server, peer) = listener.accept().expect("accept");
        let local = server.local_addr().expect("bound");
        let shared = self.shared.clone();
        std::thread::spawn(move || {
            let control = Async::new(server).expect("a nonblocking socket");
            smol::block_on(super::run(shared, control, peer, local, Prelude::empty()));
        });
        client.set_read_timeout(Some(PATIENCE)).expect("timeout");
        let mut s = Client {
            reader: BufReader::new(client.try_clone().expect("clone")),
            writer: client,
        };
        expect!(s, 220);
        s
    }

    /// A session logged in as `USER`.
    pub(super) fn logged_in(&self) -> Client {
        let mut s = self.connect();
        send!(s, "USER {USER}");
        expect!(s, 331);
        send!(s, "PASS {PASSWORD}");
        expect!(s, 230);
        s
    }

    /// The names in the home (temporaries included).
    pub(super) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.home)
            .expect("the home")
            .map(|e| e.expect("an entry").file_name().to_string_lossy().into())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Ignore errors: a session thread may still hold a file.
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The client end of a control connection.
pub(super) struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    pub(super) fn send(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("the control connection takes a line");
    }

    /// Reads one reply (all lines of a multi-line one) and checks its code.
    #[track_caller]
    pub(super) fn expect(&mut self, code: u16) -> String {
        let mut text = String::new();
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("a reply");
        let first: u16 = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
        text.push_str(&line);
        if line.as_bytes().get(3) == Some(&b'-') {
            let end = format!("{first} ");
            loop {
                line.clear();
                self.reader.read_line(&mut line).expect("a reply line");
                text.push_str(&line);
                if line.starts_with(&end) || line.is_empty() {
                    break;
                }
            }
        }
        assert_eq!(first, code, "expected {code}, got: {text:?}");
        text
    }

    /// PASV, and the data connection to the address it gave.
    #[track_caller]
    pub(super) fn pasv(&mut self) -> SocketAddr {
        send!(self, "PASV");
        let text = expect!(self, 227);
        let inner = &text[text.find('(').expect("(") + 1..text.find(')').expect(")")];
        let n: Vec<u16> = inner
            .split(',')
            .map(|x| x.parse().expect("a number"))
            .collect();
        SocketAddr::from((
            [n[0] as u8, n[1] as u8, n[2] as u8, n[3] as u8],
            n[4] * 256 + n[5],
        ))
    }

    /// Uploads `bytes` as `name` over a passive data connection: 150, 226.
    #[track_caller]
    pub(super) fn stor(&mut self, name: &str, bytes: &[u8]) {
        let addr = self.pasv();
        send!(self, "STOR {name}");
        let mut data = TcpStream::connect(addr).expect("the passive port");
        expect!(self, 150);
        data.write_all(bytes)
            .expect("the data connection takes the file");
        drop(data);
        expect!(self, 226);
    }

    /// Downloads `name` over a passive data connection: 150, 226.
    #[track_caller]
    pub(super) fn retr(&mut self, name: &str) -> Vec<u8> {
        let addr = self.pasv();
        send!(self, "RETR {name}");
        let mut data = TcpStream::connect(addr).expect("the passive port");
        expect!(self, 150);
        data.set_read_timeout(Some(PATIENCE)).expect("timeout");
        let mut bytes = Vec::new();
        data.read_to_end(&mut bytes).expect("the file");
        expect!(self, 226);
        bytes
    }
}
