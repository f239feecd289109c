//! Load generator for the lakeftpd benchmark (tests/bench/run.sh).
//!
//! One scenario per invocation; prints one JSON object per line on stdout
//! (the script collects them and prints the table). Every loop is bounded in
//! count and in time, and every network operation has a timeout. Targets are
//! loopback addresses only: the server address must be in 127.0.0.0/8 and
//! client source addresses are taken from 127.0.0.0/8 too.
//!
//! Usage (see run.sh for real values):
//!   loadgen idle   --addr 127.0.0.1:2121 --user U --pass P --n 1000 --pid PID --hold 3
//!   loadgen upload --addr ... --c 50 --secs 10 --mode active|passive [--rate R]
//!                  (--rate: open loop, R uploads/s in all, each device on a
//!                  fixed schedule; latency counts from the scheduled start,
//!                  so a server that falls behind is not excused by it)
//!   loadgen storm  --addr ... --n 10000 --users 100 --procs 4
//!   loadgen bulk   --addr ... --bytes 1073741824 --pid PID
//!   loadgen login  --addr ... --c 10 --secs 10          (log in and QUIT, no transfer)
//! Common: --src-ips K (source addresses 127.0.1.1.. spread), --timeout S,
//!         --fail-on-error (exit 1 when any error was seen),
//!         --tls (explicit FTPS, RFC 4217: AUTH TLS, PBSZ 0, PROT P; data
//!         connections resume the control connection's TLS session),
//!         --tls-version 1.2|1.3 (--tls offering that version only).

mod tls;

use smol::future::FutureExt;
use smol::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use smol::Async;
use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tls::Stream;

/// Hard bounds, whatever the arguments say.
const MAX_SESSIONS: usize = 20_000;
const MAX_SECS: u64 = 300;
const MAX_BYTES: u64 = 4 << 30;
/// Longest reply line we accept.
const MAX_LINE: usize = 4096;

#[derive(Clone)]
struct Opts {
    cmd: String,
    addr: SocketAddr,
    user: String,
    pass: String,
    users: usize,
    n: usize,
    c: usize,
    secs: u64,
    hold: u64,
    mode: String,
    size: usize,
    bytes: u64,
    pid: u32,
    src_ips: usize,
    timeout: Duration,
    procs: usize,
    shard: usize,
    start_at_ms: u64,
    fail_on_error: bool,
    label: String,
    ramp: usize,
    /// Uploads per second in all (open loop); 0: closed loop, as fast as
    /// the server answers.
    rate: u64,
    /// Explicit FTPS: the client configuration every device session copies.
    tls: Option<Arc<rustls::ClientConfig>>,
}

fn parse_args() -> Result<Opts, String> {
    let mut args = std::env::args().skip(1);
    let cmd = args
        .next()
        .ok_or("missing scenario: idle|upload|storm|bulk|login")?;
    let mut o = Opts {
        cmd,
        addr: "127.0.0.1:2121".parse().unwrap(),
        user: "bench".into(),
        pass: "bench".into(),
        users: 1,
        n: 100,
        c: 10,
        secs: 5,
        hold: 1,
        mode: "active".into(),
        size: 4096,
        bytes: 1 << 30,
        pid: 0,
        src_ips: 64,
        timeout: Duration::from_secs(30),
        procs: 1,
        shard: 0,
        start_at_ms: 0,
        fail_on_error: false,
        label: String::new(),
        ramp: 256,
        rate: 0,
        tls: None,
    };
    while let Some(flag) = args.next() {
        if flag == "--fail-on-error" {
            o.fail_on_error = true;
            continue;
        }
        if flag == "--tls" {
            o.tls = Some(tls::base_config(&tls::versions(None)?));
            continue;
        }
        let v = args.next().ok_or(format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--addr" => o.addr = v.parse().map_err(|e| format!("--addr: {e}"))?,
            "--user" => o.user = v,
            "--pass" => o.pass = v,
            "--users" => o.users = num(&v)?.max(1) as usize,
            "--n" => o.n = num(&v)? as usize,
            "--c" => o.c = num(&v)? as usize,
            "--secs" => o.secs = num(&v)?,
            "--hold" => o.hold = num(&v)?,
            "--mode" => o.mode = v,
            "--size" => o.size = num(&v)? as usize,
            "--bytes" => o.bytes = num(&v)?,
            "--pid" => o.pid = num(&v)? as u32,
            "--src-ips" => o.src_ips = num(&v)?.clamp(1, 250 * 250) as usize,
            "--timeout" => o.timeout = Duration::from_secs(num(&v)?),
            "--procs" => o.procs = num(&v)?.max(1) as usize,
            "--shard" => o.shard = num(&v)? as usize,
            "--start-at-ms" => o.start_at_ms = num(&v)?,
            "--label" => o.label = v,
            "--ramp" => o.ramp = num(&v)?.max(1) as usize,
            "--rate" => o.rate = num(&v)?,
            // Implies --tls, offering that version only.
            "--tls-version" => o.tls = Some(tls::base_config(&tls::versions(Some(&v))?)),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    // SECURITY: this tool only ever talks to this machine.
    if !o.addr.ip().is_loopback() {
        return Err("--addr must be a loopback address (127.0.0.0/8)".into());
    }
    if o.mode != "active" && o.mode != "passive" {
        return Err("--mode is active or passive".into());
    }
    o.n = o.n.min(MAX_SESSIONS);
    o.c = o.c.min(MAX_SESSIONS);
    o.secs = o.secs.min(MAX_SECS);
    o.hold = o.hold.min(MAX_SECS);
    o.bytes = o.bytes.min(MAX_BYTES);
    Ok(o)
}

/// The i-th client source address: 127.0.1.1, 127.0.1.2, ... (all loopback).
fn src_ip(o: &Opts, i: usize) -> IpAddr {
    let k = i % o.src_ips;
    IpAddr::V4(Ipv4Addr::new(
        127,
        1 + (k / 250) as u8,
        1 + (k % 250) as u8,
        1,
    ))
}

fn user_of(o: &Opts, i: usize) -> String {
    if o.users > 1 {
        format!("{}{:03}", o.user, i % o.users)
    } else {
        o.user.clone()
    }
}

fn err(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

async fn timeout<T>(
    d: Duration,
    what: &str,
    f: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    let what = what.to_string();
    f.or(async move {
        smol::Timer::after(d).await;
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("timeout: {what}"),
        ))
    })
    .await
}

/// A TCP connection from `src` (port chosen by the kernel) to `dst`.
async fn connect(src: IpAddr, dst: SocketAddr) -> io::Result<Async<TcpStream>> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::new(src, 0).into())?;
    match s.connect(&dst.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(115) => {} // EINPROGRESS
        Err(e) => return Err(e),
    }
    let stream = Async::new(TcpStream::from(s))?;
    stream.writable().await?;
    if let Some(e) = stream.get_ref().take_error()? {
        return Err(e);
    }
    let _ = stream.get_ref().set_nodelay(true);
    Ok(stream)
}

/// One control connection.
struct Ctl {
    io: BufReader<Stream>,
    line: String,
    t: Duration,
    /// Set once AUTH TLS succeeded: data connections are TLS with it.
    tls: Option<futures_rustls::TlsConnector>,
}

impl Ctl {
    /// Connects and reads the greeting; with `tls`, also AUTH TLS, the
    /// handshake, PBSZ 0 and PROT P (RFC 4217 §§4, 8, 9).
    async fn open(
        src: IpAddr,
        dst: SocketAddr,
        t: Duration,
        tls: Option<&Arc<rustls::ClientConfig>>,
    ) -> io::Result<Ctl> {
        let s = timeout(t, "connect", connect(src, dst)).await?;
        let mut c = Ctl {
            io: BufReader::with_capacity(1024, Stream::Plain(s)),
            line: String::new(),
            t,
            tls: None,
        };
        c.expect("greeting", 220).await?;
        if let Some(base) = tls {
            c.cmd("AUTH TLS", 234).await?;
            if !c.io.buffer().is_empty() {
                return Err(err("bytes after 234 before the TLS handshake"));
            }
            let connector = tls::device_connector(base);
            let plain = std::mem::replace(&mut c.io, BufReader::new(Stream::Gone));
            let Stream::Plain(tcp) = plain.into_inner() else {
                return Err(err("AUTH TLS twice"));
            };
            let s = timeout(t, "TLS handshake", tls::connect(&connector, tcp)).await?;
            c.io = BufReader::with_capacity(1024, s);
            c.tls = Some(connector);
            c.cmd("PBSZ 0", 200).await?;
            c.cmd("PROT P", 200).await?;
        }
        Ok(c)
    }

    /// The negotiated TLS version of the control connection ("-": plain).
    fn tls_version(&self) -> &'static str {
        self.io.get_ref().version()
    }

    /// Reads one reply (multi-line replies per RFC 959 §4.2) and returns its code.
    async fn reply(&mut self) -> io::Result<u16> {
        let t = self.t;
        timeout(t, "reply", async {
            let mut first: Option<u16> = None;
            loop {
                self.line.clear();
                let n = (&mut self.io)
                    .take(MAX_LINE as u64)
                    .read_line(&mut self.line)
                    .await?;
                if n == 0 {
                    return Err(err("connection closed"));
                }
                let b = self.line.as_bytes();
                let code = if b.len() >= 4 && b[..3].iter().all(u8::is_ascii_digit) {
                    Some(
                        ((b[0] - b'0') as u16) * 100
                            + ((b[1] - b'0') as u16) * 10
                            + (b[2] - b'0') as u16,
                    )
                } else {
                    None
                };
                match (first, code) {
                    (None, Some(c)) if b[3] == b'-' => first = Some(c),
                    (None, Some(c)) => return Ok(c),
                    (Some(f), Some(c)) if c == f && b[3] == b' ' => return Ok(c),
                    (Some(_), _) => continue,
                    (None, None) => {
                        return Err(err(format!("bad reply {:?}", self.line.trim_end())))
                    }
                }
            }
        })
        .await
    }

    async fn expect(&mut self, what: &str, code: u16) -> io::Result<()> {
        let got = self.reply().await?;
        if got != code {
            return Err(err(format!("{what}: {got} {}", self.line.trim_end())));
        }
        Ok(())
    }

    async fn send(&mut self, cmd: &str) -> io::Result<()> {
        let t = self.t;
        let s = self.io.get_mut();
        timeout(t, "send", async {
            s.write_all(cmd.as_bytes()).await?;
            s.write_all(b"\r\n").await
        })
        .await
    }

    async fn cmd(&mut self, cmd: &str, code: u16) -> io::Result<()> {
        self.send(cmd).await?;
        let verb = cmd.split(' ').next().unwrap_or(cmd).to_string();
        self.expect(&verb, code).await
    }

    async fn login(&mut self, user: &str, pass: &str) -> io::Result<()> {
        self.send(&format!("USER {user}")).await?;
        match self.reply().await? {
            230 => return Ok(()),
            331 => {}
            c => return Err(err(format!("USER: {c} {}", self.line.trim_end()))),
        }
        self.cmd(&format!("PASS {pass}"), 230).await
    }

    /// Opens the data connection for a transfer command (`STOR x`/`RETR x`)
    /// and returns it once the server has answered 150/125.
    async fn transfer(&mut self, src: IpAddr, active: bool, command: &str) -> io::Result<Stream> {
        let (tcp, code) = self.data_tcp(src, active, command).await?;
        let Some(connector) = self.tls.clone() else {
            let code = match code {
                Some(c) => c,
                None => self.reply().await?,
            };
            return preliminary(command, code, &self.line).map(|()| Stream::Plain(tcp));
        };
        // The server may answer 150 before or after the handshake: do both
        // at once (RFC 4217 §7: the server is the TLS server in both modes).
        let t = self.t;
        let hs = async { timeout(t, "data TLS handshake", tls::connect(&connector, tcp)).await };
        let reply = async {
            match code {
                Some(c) => Ok(c),
                None => self.reply().await,
            }
        };
        let (data, code) = smol::future::zip(hs, reply).await;
        let code = code?;
        preliminary(command, code, &self.line)?;
        let data = data?;
        if !data.resumed() {
            return Err(err(
                "data connection did not resume the control TLS session",
            ));
        }
        Ok(data)
    }

    /// The data connection's TCP stream, and the transfer command's reply
    /// if it was already read.
    async fn data_tcp(
        &mut self,
        src: IpAddr,
        active: bool,
        command: &str,
    ) -> io::Result<(Async<TcpStream>, Option<u16>)> {
        let t = self.t;
        if active {
            let listener = Async::<TcpListener>::bind(SocketAddr::new(src, 0))?;
            let port = listener.get_ref().local_addr()?.port();
            let IpAddr::V4(ip) = src else {
                return Err(err("ipv4 only"));
            };
            let o = ip.octets();
            self.cmd(
                &format!(
                    "PORT {},{},{},{},{},{}",
                    o[0],
                    o[1],
                    o[2],
                    o[3],
                    port >> 8,
                    port & 255
                ),
                200,
            )
            .await?;
            self.send(command).await?;
            // The server may connect before or after its 150: race the two.
            enum First {
                Conn(Async<TcpStream>),
                Reply(u16),
            }
            let first = {
                let accept = async {
                    timeout(t, "accept", listener.accept())
                        .await
                        .map(|(s, _)| First::Conn(s))
                };
                let reply = async { self.reply().await.map(First::Reply) };
                accept.or(reply).await?
            };
            match first {
                First::Conn(s) => Ok((s, None)),
                First::Reply(code) if code == 150 || code == 125 => {
                    Ok((timeout(t, "accept", listener.accept()).await?.0, Some(code)))
                }
                First::Reply(code) => {
                    Err(err(format!("{command}: {code} {}", self.line.trim_end())))
                }
            }
        } else {
            self.send("PASV").await?;
            let code = self.reply().await?;
            if code != 227 {
                return Err(err(format!("PASV: {code} {}", self.line.trim_end())));
            }
            let dst = parse_227(&self.line)
                .ok_or_else(|| err(format!("bad 227 {:?}", self.line.trim_end())))?;
            if !dst.ip().is_loopback() {
                return Err(err("PASV address is not loopback"));
            }
            let data = timeout(t, "data connect", connect(src, dst)).await?;
            self.send(command).await?;
            Ok((data, None))
        }
    }
}

/// Sends the TCP FIN (async-io's close only flushes), then reads what the
/// server still sends on an upload's data connection until it closes. A TLS server may have sent
/// bytes we never read (OpenSSL sends TLS 1.3 session tickets on every
/// connection): closing with them unread makes the kernel send a reset,
/// which can reach the server before it has read the whole upload (vsftpd
/// then answers 426). Errors end the drain: the upload is already sent.
async fn drain(data: &mut Stream) {
    // Ignore errors: the server may have closed already.
    let _ = data.shutdown_write();
    let mut buf = [0u8; 1024];
    // Bounded: at most this many reads (tickets are a few hundred bytes).
    for _ in 0..64 {
        match data.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// A transfer command's preliminary reply must be 150 or 125 (RFC 959 §4.2).
fn preliminary(command: &str, code: u16, line: &str) -> io::Result<()> {
    if code != 150 && code != 125 {
        return Err(err(format!("{command}: {code} {}", line.trim_end())));
    }
    Ok(())
}

fn parse_227(line: &str) -> Option<SocketAddr> {
    let start = line.find('(')?;
    let end = line[start..].find(')')? + start;
    let n: Vec<u16> = line[start + 1..end]
        .split(',')
        .map(|x| x.trim().parse().ok())
        .collect::<Option<_>>()?;
    if n.len() != 6 || n.iter().any(|&x| x > 255) {
        return None;
    }
    let ip = Ipv4Addr::new(n[0] as u8, n[1] as u8, n[2] as u8, n[3] as u8);
    Some(SocketAddr::new(IpAddr::V4(ip), n[4] * 256 + n[5]))
}

/// One device session: connect, [AUTH TLS,] log in, TYPE I, PORT/PASV,
/// STOR, QUIT; without `payload` (the login scenario) no transfer. Returns
/// the control connection's TLS version ("-" for plain FTP).
async fn device_upload(
    o: &Opts,
    i: usize,
    name: &str,
    payload: Option<&[u8]>,
) -> io::Result<&'static str> {
    let src = src_ip(o, i);
    let mut c = Ctl::open(src, o.addr, o.timeout, o.tls.as_ref()).await?;
    c.login(&user_of(o, i), &o.pass).await?;
    if let Some(payload) = payload {
        c.cmd("TYPE I", 200).await?;
        let mut data = c
            .transfer(src, o.mode == "active", &format!("STOR {name}"))
            .await?;
        timeout(o.timeout, "data write", async {
            data.write_all(payload).await?;
            data.flush().await?;
            if o.tls.is_some() {
                // close_notify before the TCP FIN (RFC 4217 §10: the end
                // of a protected transfer is the TLS closure).
                data.close().await?;
                drain(&mut data).await;
            }
            Ok(())
        })
        .await?;
        drop(data);
        c.expect("STOR", 226).await?;
    }
    c.cmd("QUIT", 221).await?;
    Ok(c.tls_version())
}

#[derive(Default)]
struct Stats {
    ok: u64,
    errors: u64,
    lat_us: Vec<u64>,
    kinds: HashMap<String, u64>,
    /// The TLS version sessions negotiated ("-": plain FTP).
    tls: &'static str,
}

impl Stats {
    fn error(&mut self, e: &io::Error) {
        self.errors += 1;
        // Group by message without numbers (ports, counts).
        let k: String = e
            .to_string()
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .take(80)
            .collect();
        *self.kinds.entry(k).or_default() += 1;
    }
    fn pct(&mut self, p: f64) -> f64 {
        if self.lat_us.is_empty() {
            return 0.0;
        }
        self.lat_us.sort_unstable();
        let idx = ((self.lat_us.len() as f64 - 1.0) * p).round() as usize;
        self.lat_us[idx] as f64 / 1000.0
    }
    fn kinds_json(&self) -> String {
        let mut v: Vec<_> = self.kinds.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1));
        let items: Vec<String> = v
            .iter()
            .take(5)
            .map(|(k, n)| format!("{}:{}", json_str(k), n))
            .collect();
        format!("{{{}}}", items.join(","))
    }
}

/// The TLS version for the JSON line: "-" for plain FTP, "?" when TLS was
/// asked for but no session completed.
fn tls_label(o: &Opts, seen: &'static str) -> &'static str {
    match (o.tls.is_some(), seen) {
        (false, _) => "-",
        (true, "") => "?",
        (true, v) => v,
    }
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---- /proc: memory and CPU of a server's whole process tree ----

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Numeric fields of /proc/PID/stat from ppid on: field 4 (ppid) is index
/// 0, so field N is index N - 4 (the state letter, field 3, is skipped).
fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let s = read(&format!("/proc/{pid}/stat"))?;
    let rest = &s[s.rfind(')')? + 2..];
    Some(
        rest.split(' ')
            .skip(1)
            .map(|x| x.parse().unwrap_or(0))
            .collect(),
    )
}

/// `root` and all its descendants.
fn tree(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(f) = stat_fields(pid) {
                children.entry(f[0] as u32).or_default().push(pid); // ppid
            }
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        if let Some(c) = children.get(&out[i]) {
            out.extend(c);
        }
        i += 1;
    }
    out
}

/// Sum of Pss (KiB) over the tree, and the number of processes.
fn pss_kib(root: u32) -> (u64, usize) {
    let pids = tree(root);
    let mut total = 0;
    for &p in &pids {
        if let Some(s) = read(&format!("/proc/{p}/smaps_rollup")) {
            for l in s.lines() {
                if let Some(v) = l.strip_prefix("Pss:") {
                    total += v
                        .trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .unwrap_or(0);
                }
            }
        }
    }
    (total, pids.len())
}

/// CPU seconds (user+system, own and reaped children) over the tree.
fn cpu_secs(root: u32) -> f64 {
    let ticks: u64 = tree(root)
        .iter()
        .filter_map(|&p| stat_fields(p))
        // stat_fields starts at ppid (field 4): utime, stime, cutime and
        // cstime (fields 14-17) are indices 10-13.
        .map(|f| f[10] + f[11] + f[12] + f[13])
        .sum();
    ticks as f64 / 100.0 // USER_HZ is 100 on Linux
}

/// CPU seconds this process used (user + system).
fn own_cpu_secs() -> f64 {
    stat_fields(std::process::id()).map_or(0.0, |f| (f[10] + f[11]) as f64 / 100.0)
}

// ---- scenarios ----

async fn idle(o: &Opts) -> String {
    let (pss0, procs0) = pss_kib(o.pid);
    let sem = Rc::new(smol::lock::Semaphore::new(o.ramp));
    let stats = Rc::new(RefCell::new(Stats::default()));
    let held: Rc<RefCell<Vec<Ctl>>> = Rc::new(RefCell::new(Vec::new()));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(o.secs.max(1));
    let mut tasks = Vec::new();
    let ex = smol::LocalExecutor::new();
    for i in 0..o.n {
        let (sem, stats, held, o) = (sem.clone(), stats.clone(), held.clone(), o.clone());
        tasks.push(ex.spawn(async move {
            let _permit = sem.acquire().await;
            if Instant::now() > deadline {
                stats.borrow_mut().error(&err("ramp deadline passed"));
                return;
            }
            let r = async {
                let mut c = Ctl::open(src_ip(&o, i), o.addr, o.timeout, o.tls.as_ref()).await?;
                c.login(&user_of(&o, i), &o.pass).await?;
                Ok::<_, io::Error>(c)
            }
            .await;
            match r {
                Ok(c) => {
                    stats.borrow_mut().ok += 1;
                    held.borrow_mut().push(c);
                }
                Err(e) => stats.borrow_mut().error(&e),
            }
        }));
    }
    ex.run(async {
        for t in tasks {
            t.await;
        }
    })
    .await;
    let ramp_s = start.elapsed().as_secs_f64();
    // Let the server settle (lazy allocations, reaped processes).
    smol::Timer::after(Duration::from_secs(o.hold.max(1))).await;
    let (pss_n, procs_n) = pss_kib(o.pid);
    // Sessions must still be alive: one NOOP on a sample of them.
    let mut alive_errors = 0;
    {
        let mut h = held.borrow_mut();
        let len = h.len();
        for c in h.iter_mut().step_by((len / 20).max(1)) {
            if c.cmd("NOOP", 200).await.is_err() {
                alive_errors += 1;
            }
        }
    }
    let version = held.borrow().first().map_or("", Ctl::tls_version);
    let s = stats.borrow();
    let n = s.ok.max(1);
    format!(
        "{{\"scenario\":\"idle\",\"label\":{},\"tls\":\"{}\",\"n\":{},\"ok\":{},\"errors\":{},\"dead_after\":{},\"pss0_kib\":{},\"pssn_kib\":{},\"procs0\":{},\"procsn\":{},\"kib_per_session\":{:.2},\"ramp_s\":{:.2},\"error_kinds\":{}}}",
        json_str(&o.label), tls_label(o, version), o.n, s.ok, s.errors, alive_errors, pss0, pss_n, procs0, procs_n,
        (pss_n as f64 - pss0 as f64) / n as f64, ramp_s, s.kinds_json()
    )
}

async fn upload(o: &Opts) -> String {
    let stats = Rc::new(RefCell::new(Stats::default()));
    let payload: Rc<Vec<u8>> = Rc::new((0..o.size).map(|i| (i % 251) as u8).collect());
    let start = Instant::now();
    let deadline = start + Duration::from_secs(o.secs.max(1));
    let cpu0 = if o.pid != 0 { cpu_secs(o.pid) } else { 0.0 };
    let own0 = own_cpu_secs();
    let ex = smol::LocalExecutor::new();
    let mut tasks = Vec::new();
    // Bound on iterations per device, whatever the rate.
    let max_iters = 1_000_000u64;
    for d in 0..o.c {
        let (stats, payload, o) = (stats.clone(), payload.clone(), o.clone());
        tasks.push(ex.spawn(async move {
            let name = format!("d{d}.bin");
            // Open loop: device d uploads every c / rate seconds, staggered.
            let interval =
                (o.rate > 0).then(|| Duration::from_secs_f64(o.c as f64 / o.rate as f64));
            let first =
                start + interval.map_or(Duration::ZERO, |i| i.mul_f64(d as f64 / o.c as f64));
            let mut k = 0u64;
            while Instant::now() < deadline && k < max_iters {
                let t0 = match interval {
                    Some(i) => {
                        let at = first + i.mul_f64(k as f64);
                        if at >= deadline {
                            break;
                        }
                        smol::Timer::at(at).await;
                        at
                    }
                    None => Instant::now(),
                };
                k += 1;
                let body = (o.cmd == "upload").then_some(&payload[..]);
                let r = device_upload(&o, d + (k as usize) * o.c, &name, body).await;
                let mut s = stats.borrow_mut();
                match r {
                    Ok(version) => {
                        s.tls = version;
                        s.ok += 1;
                        s.lat_us.push(t0.elapsed().as_micros() as u64);
                    }
                    Err(e) => {
                        s.error(&e);
                        drop(s);
                        // Back off a little so a failing server is not spun on.
                        smol::Timer::after(Duration::from_millis(20)).await;
                    }
                }
            }
        }));
    }
    ex.run(async {
        for t in tasks {
            t.await;
        }
    })
    .await;
    let wall = start.elapsed().as_secs_f64();
    let cpu = if o.pid != 0 {
        cpu_secs(o.pid) - cpu0
    } else {
        0.0
    };
    let own = own_cpu_secs() - own0;
    let mut s = stats.borrow_mut();
    let (p50, p99, max) = (s.pct(0.5), s.pct(0.99), s.pct(1.0));
    format!(
        "{{\"scenario\":\"{}\",\"label\":{},\"mode\":\"{}\",\"tls\":\"{}\",\"c\":{},\"rate\":{},\"secs\":{:.2},\"ok\":{},\"errors\":{},\"per_s\":{:.1},\"p50_ms\":{:.2},\"p99_ms\":{:.2},\"max_ms\":{:.2},\"server_cpu_s\":{:.2},\"loadgen_cpu_s\":{:.2},\"error_kinds\":{}}}",
        o.cmd, json_str(&o.label), o.mode, tls_label(o, s.tls), o.c, o.rate, wall, s.ok, s.errors, s.ok as f64 / wall, p50, p99, max, cpu, own, s.kinds_json()
    )
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The storm: `--procs` shard processes (each has its own open-file limit),
/// all starting at the same instant.
fn storm_parent(o: &Opts) -> String {
    let exe = std::env::current_exe().expect("own path");
    let start_at = now_ms() + 1500;
    let cpu0 = if o.pid != 0 { cpu_secs(o.pid) } else { 0.0 };
    let mut kids = Vec::new();
    for shard in 0..o.procs {
        let mut args: Vec<String> = std::env::args().skip(1).collect();
        args.extend([
            "--shard".into(),
            shard.to_string(),
            "--start-at-ms".into(),
            start_at.to_string(),
        ]);
        args.retain(|a| a != "--fail-on-error");
        kids.push(
            std::process::Command::new(&exe)
                .args(&args)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("spawn shard"),
        );
    }
    let (mut ok, mut errors, mut last_ms, mut kinds) = (0u64, 0u64, 0f64, Vec::new());
    let mut peak_fds: Vec<u64> = Vec::new();
    let mut lat: Vec<f64> = Vec::new();
    for k in kids {
        let out = k.wait_with_output().expect("shard output");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let get = |key: &str| -> f64 {
            let pat = format!("\"{key}\":");
            text.find(&pat)
                .and_then(|i| text[i + pat.len()..].split([',', '}']).next()?.parse().ok())
                .unwrap_or(0.0)
        };
        ok += get("ok") as u64;
        errors += get("errors") as u64;
        last_ms = last_ms.max(get("last_226_ms"));
        lat.push(get("p50_ms"));
        peak_fds.push(get("peak_fds") as u64);
        if let Some(i) = text.find("\"error_kinds\":") {
            kinds.push(text[i + 14..].trim().trim_end_matches('}').to_string() + "}");
        }
        if !out.status.success() {
            errors += 1;
        }
    }
    // CPU the shards used (this process's reaped children), and the server's:
    // if the shards' CPU approaches the machine's cores x wall time, the load
    // generator, not the server, is what the storm measures.
    let own = stat_fields(std::process::id()).unwrap_or_default();
    let loadgen_cpu = own
        .get(13)
        .zip(own.get(14))
        .map_or(0.0, |(a, b)| (a + b) as f64 / 100.0);
    let server_cpu = if o.pid != 0 {
        cpu_secs(o.pid) - cpu0
    } else {
        0.0
    };
    let peaks: Vec<String> = peak_fds.iter().map(u64::to_string).collect();
    format!(
        "{{\"scenario\":\"storm\",\"label\":{},\"mode\":\"{}\",\"n\":{},\"users\":{},\"procs\":{},\"ok\":{},\"errors\":{},\"all_226_s\":{:.2},\"loadgen_cpu_s\":{:.2},\"server_cpu_s\":{:.2},\"shard_peak_fds\":[{}],\"shard_error_kinds\":[{}]}}",
        json_str(&o.label), o.mode, o.n, o.users, o.procs, ok, errors, last_ms / 1000.0, loadgen_cpu, server_cpu,
        peaks.join(","), kinds.join(",")
    )
}

async fn storm_shard(o: &Opts) -> String {
    let stats = Rc::new(RefCell::new(Stats::default()));
    let payload: Rc<Vec<u8>> = Rc::new((0..o.size).map(|i| (i % 251) as u8).collect());
    let devices: Vec<usize> = (0..o.n).filter(|i| i % o.procs == o.shard).collect();
    let wait = o.start_at_ms.saturating_sub(now_ms());
    smol::Timer::after(Duration::from_millis(wait)).await;
    let start = Instant::now();
    let last = Rc::new(RefCell::new(0f64));
    let ex = smol::LocalExecutor::new();
    let mut tasks = Vec::new();
    // Peak descriptors this shard held (sampled every 100 ms), to show the
    // load generator stays clear of the per-process open-file limit.
    let peak_fds = Rc::new(RefCell::new(0u64));
    let done = Rc::new(std::cell::Cell::new(false));
    let sampler = {
        let (peak, done) = (peak_fds.clone(), done.clone());
        let end = Instant::now() + Duration::from_secs(MAX_SECS);
        ex.spawn(async move {
            while !done.get() && Instant::now() < end {
                let n = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
                let mut p = peak.borrow_mut();
                *p = (*p).max(n);
                drop(p);
                smol::Timer::after(Duration::from_millis(100)).await;
            }
        })
    };
    for d in devices {
        let (stats, payload, o, last) = (stats.clone(), payload.clone(), o.clone(), last.clone());
        tasks.push(ex.spawn(async move {
            let r = device_upload(&o, d, &format!("storm{d}.bin"), Some(&payload)).await;
            let mut s = stats.borrow_mut();
            match r {
                Ok(_) => {
                    s.ok += 1;
                    let t = start.elapsed().as_secs_f64() * 1000.0;
                    s.lat_us.push((t * 1000.0) as u64);
                    let mut l = last.borrow_mut();
                    *l = l.max(t);
                }
                Err(e) => s.error(&e),
            }
        }));
    }
    ex.run(async {
        for t in tasks {
            t.await;
        }
        done.set(true);
        sampler.await;
    })
    .await;
    let mut s = stats.borrow_mut();
    let p50 = s.pct(0.5);
    let l = *last.borrow();
    let peak = *peak_fds.borrow();
    format!(
        "{{\"ok\":{},\"errors\":{},\"last_226_ms\":{:.1},\"p50_ms\":{:.1},\"peak_fds\":{},\"error_kinds\":{}}}",
        s.ok, s.errors, l, p50, peak, s.kinds_json()
    )
}

async fn bulk(o: &Opts) -> io::Result<String> {
    let src = src_ip(o, 0);
    let t = Duration::from_secs(MAX_SECS);
    let mut c = Ctl::open(src, o.addr, o.timeout, o.tls.as_ref()).await?;
    c.t = t;
    c.login(&o.user, &o.pass).await?;
    c.cmd("TYPE I", 200).await?;
    let chunk: Vec<u8> = (0..256 * 1024).map(|i| (i % 251) as u8).collect();

    let cpu0 = cpu_secs(o.pid);
    let t0 = Instant::now();
    let mut data = c.transfer(src, o.mode == "active", "STOR bulk.bin").await?;
    let mut left = o.bytes;
    timeout(t, "bulk write", async {
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            data.write_all(&chunk[..n]).await?;
            left -= n as u64;
        }
        data.flush().await?;
        if o.tls.is_some() {
            data.close().await?;
            drain(&mut data).await;
        }
        Ok(())
    })
    .await?;
    drop(data);
    c.expect("STOR", 226).await?;
    let up_s = t0.elapsed().as_secs_f64();
    let cpu_up = cpu_secs(o.pid) - cpu0;

    let cpu1 = cpu_secs(o.pid);
    let t1 = Instant::now();
    let mut data = c.transfer(src, o.mode == "active", "RETR bulk.bin").await?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0u64;
    timeout(t, "bulk read", async {
        loop {
            let n = match data.read(&mut buf).await {
                Ok(n) => n,
                // A TLS server that closes without close_notify: the
                // byte count below still tells a short transfer.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Ok(());
            }
            got += n as u64;
        }
    })
    .await?;
    // Answer the server's close_notify and close: a TLS server may wait
    // for that before its 226 (vsftpd does).
    if o.tls.is_some() {
        let _ = data.close().await;
    }
    drop(data);
    c.expect("RETR", 226).await?;
    let down_s = t1.elapsed().as_secs_f64();
    let cpu_down = cpu_secs(o.pid) - cpu1;
    let version = c.tls_version();
    let _ = c.cmd("QUIT", 221).await;
    if got != o.bytes {
        return Err(err(format!(
            "RETR returned {got} bytes, expected {}",
            o.bytes
        )));
    }
    let gib = o.bytes as f64 / (1u64 << 30) as f64;
    let mib = o.bytes as f64 / (1u64 << 20) as f64;
    Ok(format!(
        "{{\"scenario\":\"bulk\",\"label\":{},\"mode\":\"{}\",\"tls\":\"{}\",\"bytes\":{},\"ok\":2,\"errors\":0,\"up_mib_s\":{:.1},\"down_mib_s\":{:.1},\"up_cpu_s_per_gib\":{:.3},\"down_cpu_s_per_gib\":{:.3}}}",
        json_str(&o.label), o.mode, tls_label(o, version), o.bytes, mib / up_s, mib / down_s, cpu_up / gib, cpu_down / gib
    ))
}

fn main() {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(2);
        }
    };
    let line = match o.cmd.as_str() {
        "idle" => smol::block_on(idle(&o)),
        "upload" | "login" => smol::block_on(upload(&o)),
        "storm" if o.start_at_ms == 0 => storm_parent(&o),
        "storm" => smol::block_on(storm_shard(&o)),
        "bulk" => match smol::block_on(bulk(&o)) {
            Ok(l) => l,
            Err(e) => format!(
                "{{\"scenario\":\"bulk\",\"label\":{},\"tls\":\"{}\",\"ok\":0,\"errors\":1,\"error_kinds\":{{{}:1}}}}",
                json_str(&o.label),
                if o.tls.is_some() { "?" } else { "-" },
                json_str(&e.to_string())
            ),
        },
        other => {
            eprintln!("loadgen: unknown scenario {other}");
            std::process::exit(2);
        }
    };
    println!("{line}");
    let errors = line
        .find("\"errors\":")
        .and_then(|i| line[i + 9..].split([',', '}']).next()?.parse::<u64>().ok())
        .unwrap_or(1);
    let dead = line.contains("\"dead_after\":") && !line.contains("\"dead_after\":0");
    if o.fail_on_error && (errors > 0 || dead) {
        eprintln!("loadgen: {} saw errors", o.cmd);
        std::process::exit(1);
    }
}
