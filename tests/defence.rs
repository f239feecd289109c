//! Defence on the open internet, against the real binary: connections
//! counted from their first moment (PROXY header wait included), the
//! unauthenticated share and its shedding, the health listener under idle
//! floods and `health_from`, the jail's contained opens, the defender's
//! bans, `max_passive_per_ip`, and signals that must not stop the server.

mod common;
#[path = "common/http.rs"]
mod http;

use common::{Control, Scratch, Server, PASSWORD};
use http::{get, health_addr, scrape, v2_header};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Lets this test process hold thousands of sockets.
fn raise_nofile() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    );
}

/// A TCP connection to `addr` from the local address `from` (127.x).
fn connect_from(from: &str, addr: SocketAddr) -> std::io::Result<TcpStream> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    // CLOEXEC: a server started meanwhile must not inherit these.
    let fd = rustix::net::socket_with(
        AddressFamily::INET,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )?;
    let ip: IpAddr = from.parse().unwrap();
    rustix::net::bind(&fd, &SocketAddr::new(ip, 0))?;
    rustix::net::connect(&fd, &addr)?;
    Ok(TcpStream::from(fd))
}

/// How soon a device's login or a health check must be answered during an
/// attack. The goal is 1 s, measured in the attack soak
/// (tests/bench/attack.sh) on the release binary; this bound still fails
/// without the defences (the device then waits for login_timeout, or is
/// refused) and leaves room for a debug build on a loaded machine.
const PROMPT: Duration = Duration::from_secs(3);

/// Logs in from `from`; the time it took, or the reply that refused it.
fn login_from(from: &str, addr: SocketAddr, user: &str) -> Result<Duration, (u16, String)> {
    let started = Instant::now();
    let stream = connect_from(from, addr).map_err(|e| (0, e.to_string()))?;
    let mut c = Control::from_stream(stream);
    let greeting = c.reply();
    if greeting.0 != 220 {
        return Err(greeting);
    }
    let user_reply = c.cmd(&format!("USER {user}"));
    if user_reply.0 != 331 {
        return Err(user_reply);
    }
    let pass = c.cmd(&format!("PASS {PASSWORD}"));
    if pass.0 != 230 {
        return Err(pass);
    }
    Ok(started.elapsed())
}

/// Descriptors the process holds now.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Starts the binary under `prlimit --nofile=N:N` (a fixed open-file limit,
/// as on an instance whose unit sets LimitNOFILE).
fn start_limited(nofile: u32, global: &str, users: &[(&str, &str)]) -> (Server, u32) {
    let dir = Scratch::new("limited");
    let text = common::config_text(&dir, global, users);
    let path = dir.0.join("lakeftpd.conf");
    std::fs::write(&path, text).unwrap();
    let mut child = Command::new("prlimit")
        .arg(format!("--nofile={nofile}:{nofile}"))
        .arg("--")
        .arg(common::bin())
        .args(["serve", "--config"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("prlimit (util-linux)");
    let (addr, log) = common::watch(&mut child);
    let pid = child.id();
    (Server::adopt(child, addr, dir, path, log), pid)
}

#[test]
fn silent_proxy_connections_are_counted_and_shed() {
    // 1,200 connections through the "balancer" that never send a PROXY
    // header: descriptors stay bounded and a device with a header logs in
    // within a second.
    raise_nofile();
    let (server, pid) = start_limited(
        1024,
        "proxy_protocol = v2\nproxy_from = 127.0.0.1/32\nmax_sessions = 50\nmax_sessions_per_ip = 10\nproxy_header_timeout = 5s\nlogin_timeout = 60s",
        &[("dev", "upload")],
    );
    let mut silent = Vec::new();
    for _ in 0..1200 {
        if let Ok(s) = TcpStream::connect(server.addr) {
            silent.push(s);
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let fds = open_fds(pid);
    assert!(fds < 200, "the server holds {fds} descriptors");

    let started = Instant::now();
    let mut device = TcpStream::connect(server.addr).unwrap();
    device
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let client: SocketAddr = "198.51.100.20:40000".parse().unwrap();
    let mut first = v2_header(client, server.addr, &[]);
    first.extend_from_slice(format!("USER dev\r\nPASS {PASSWORD}\r\n").as_bytes());
    device.write_all(&first).unwrap();
    let mut c = Control::from_stream(device);
    assert_eq!(c.reply().0, 220);
    assert_eq!(c.reply().0, 331);
    let (code, text) = c.reply();
    assert_eq!(code, 230, "{text}");
    let took = started.elapsed();
    assert!(took < PROMPT, "login took {took:?}");
    assert!(!server.log().contains("Too many open files"));
    server.wait_log("shed to make room", Duration::from_secs(5));
    drop(silent);
}

#[test]
fn silent_connections_from_ten_addresses_do_not_keep_a_device_out() {
    // 10 addresses x 200 silent connections under max_sessions = 2000: the
    // oldest unauthenticated ones make room, a device logs in within 1 s.
    raise_nofile();
    let server = Server::start(
        "max_sessions = 2000\nhealth_listen = 127.0.0.1:0",
        &[("dev", "upload")],
    );
    let mut silent = Vec::new();
    for a in 0..10 {
        let from = format!("127.0.1.{}", 10 + a);
        for _ in 0..200 {
            if let Ok(s) = connect_from(&from, server.addr) {
                silent.push(s);
            }
        }
    }
    assert_eq!(silent.len(), 2000);
    let h = health_addr(&server);
    let deadline = Instant::now() + Duration::from_secs(10);
    while scrape(h, "lakeftpd_sessions_total") < 2000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = login_from("127.0.0.1", server.addr, "dev").expect("the device logs in");
    assert!(took < PROMPT, "login took {took:?}");
    assert!(scrape(h, "lakeftpd_unauthenticated_shed_total") > 0);
    drop(silent);
}

#[test]
fn health_answers_while_idle_connections_are_held() {
    // 500 idle sockets on the health port from another address (renewed
    // when closed, so each accept evicts one): every check from the
    // balancer's address is answered within the prompt.
    raise_nofile();
    let server = Server::start("health_listen = 127.0.0.1:0", &[]);
    let h = health_addr(&server);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let holder = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Keep the sockets the server has not closed yet.
                held.retain(|s| {
                    let mut b = [0u8; 1];
                    matches!((&*s).read(&mut b), Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock)
                });
                while held.len() < 500 {
                    match connect_from("127.0.0.2", h) {
                        Ok(s) => {
                            s.set_nonblocking(true).unwrap();
                            held.push(s)
                        }
                        Err(_) => break,
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let mut slow = Vec::new();
    for check in 0..20 {
        let started = Instant::now();
        let (status, _) = get(h, "/healthz");
        let took = started.elapsed();
        if status != 200 || took > PROMPT {
            slow.push(format!("check {check}: status {status} after {took:?}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    holder.join().unwrap();
    assert!(
        slow.is_empty(),
        "checks failed or took over {PROMPT:?}: {slow:?}"
    );
}

#[test]
fn idle_health_connections_evict_their_own_client_first() {
    // A checker that has connected but not yet sent its request (a slow
    // first packet) survives 300 idle connections opened after it from
    // another address: each new one evicts that address's oldest. Its own
    // oldest idle connection is evicted (the flood does reach the limit).
    let server = Server::start("health_listen = 127.0.0.1:0", &[]);
    let h = health_addr(&server);
    let mut checker = connect_from("127.0.0.1", h).expect("the checker connects");
    let mut flood = Vec::new();
    for _ in 0..150 {
        flood.push(connect_from("127.0.0.2", h).expect("an idle connection"));
    }
    // The first idle connection was evicted for a later one of its own
    // address: the server closed it without an answer.
    flood[0]
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut first = Vec::new();
    assert_eq!(
        (&flood[0])
            .read_to_end(&mut first)
            .map(|_| first.len())
            .unwrap_or(0),
        0,
        "the oldest idle connection is closed unanswered"
    );
    checker
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    checker
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut answer = String::new();
    checker.read_to_string(&mut answer).expect("an answer");
    assert!(
        answer.starts_with("HTTP/1.1 200 OK"),
        "the checker is answered: {answer:?}"
    );
    assert!(scrape(h, "lakeftpd_health_closed_total") >= 150 - 64);
}

#[test]
fn health_from_limits_who_is_answered() {
    // Only 127.0.0.2 may ask; 127.0.0.1 is closed unanswered.
    let server = Server::start(
        "health_listen = 127.0.0.1:0\nhealth_from = 127.0.0.2/32",
        &[],
    );
    let h = health_addr(&server);
    assert_eq!(get(h, "/healthz").0, 0, "refused peers get no answer");
    let mut s = connect_from("127.0.0.2", h).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\n\r\n").unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

/// A home with `leak` pointing at a file outside it, and `zero` at /dev/zero.
fn jailed_server() -> (Server, std::path::PathBuf) {
    let server = Server::start("", &[("dev", "full")]);
    let home = server.home("dev");
    std::fs::create_dir_all(&home).unwrap();
    let outside = server.dir.0.join("outside.txt");
    std::fs::write(&outside, vec![b'S'; 4000]).unwrap();
    std::os::unix::fs::symlink(&outside, home.join("leak")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", home.join("zero")).unwrap();
    (server, outside)
}

/// Sends `verb` with an empty upload in passive mode; the final reply.
fn empty_upload(c: &mut Control, verb: &str) -> (u16, String) {
    let data = c.pasv();
    c.send(verb);
    let conn = TcpStream::connect(data);
    let first = c.reply();
    drop(conn);
    if first.0 == 150 {
        c.reply()
    } else {
        first
    }
}

#[test]
fn appe_through_a_symlink_out_of_the_home_is_refused() {
    // APPE onto a link to an outside file copied its bytes into the home.
    let (server, outside) = jailed_server();
    let mut c = Control::login(server.addr, "dev");
    let (code, text) = empty_upload(&mut c, "APPE leak");
    assert_eq!(code, 550, "{text}");
    assert_eq!(std::fs::read(&outside).unwrap().len(), 4000);
    assert!(std::fs::symlink_metadata(server.home("dev").join("leak"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn rest_stor_through_a_symlink_out_of_the_home_is_refused() {
    // REST 1000 + STOR copied the outside file's first 1000 bytes.
    let (server, _outside) = jailed_server();
    let mut c = Control::login(server.addr, "dev");
    assert_eq!(c.cmd("TYPE I").0, 200);
    assert_eq!(c.cmd("REST 1000").0, 350);
    let (code, text) = empty_upload(&mut c, "STOR leak");
    assert_eq!(code, 550, "{text}");
}

#[test]
fn appe_onto_a_device_is_refused_at_once() {
    // APPE onto a link to /dev/zero wrote gigabytes with no reply.
    let (server, _outside) = jailed_server();
    let mut c = Control::login(server.addr, "dev");
    let started = Instant::now();
    let (code, text) = empty_upload(&mut c, "APPE zero");
    assert_eq!(code, 550, "{text}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn repeated_failures_ban_the_address_before_hashing() {
    // 5 failed logins over two connections: the address gets 421 at
    // connect; another address still logs in; the ban is counted once.
    let server = Server::start(
        "ban_after = 5\nban_window = 1m\nban_time = 1m\nhealth_listen = 127.0.0.1:0",
        &[("dev", "upload")],
    );
    let h = health_addr(&server);
    let mut failures = 0;
    while failures < 5 {
        let mut c = Control::from_stream(connect_from("127.0.2.5", server.addr).unwrap());
        assert_eq!(c.reply().0, 220);
        for _ in 0..3 {
            if failures == 5 {
                break;
            }
            c.cmd("USER dev");
            let (code, _) = c.cmd("PASS wrong");
            if code != 530 {
                break;
            }
            failures += 1;
        }
    }
    let mut c = Control::from_stream(connect_from("127.0.2.5", server.addr).unwrap());
    let (code, text) = c.reply();
    assert_eq!(code, 421, "{text}");
    assert!(login_from("127.0.2.6", server.addr, "dev").is_ok());
    assert_eq!(scrape(h, "lakeftpd_bans_total"), 1);
    assert!(scrape(h, "lakeftpd_banned_refused_total") >= 1);
    assert_eq!(server.log().matches("banned (address)").count(), 1);
}

#[test]
fn concurrent_guesses_get_at_most_ban_after_checks() {
    // 200 connections from one address send a wrong PASS at the same
    // moment: each check takes its place in the score before its hash
    // runs, so at most ban_after (10) are checked; the rest are refused.
    raise_nofile();
    let server = Server::start(
        "ban_after = 10\nban_window = 10m\nban_time = 10m\nhealth_listen = 127.0.0.1:0",
        &[("dev", "upload")],
    );
    let h = health_addr(&server);
    let mut clients: Vec<Control> = (0..200)
        .map(|_| {
            let mut c = Control::from_stream(connect_from("127.0.6.1", server.addr).unwrap());
            assert_eq!(c.reply().0, 220);
            assert_eq!(c.cmd("USER dev").0, 331);
            c
        })
        .collect();
    for c in &mut clients {
        c.send("PASS wrong");
    }
    let refused = clients
        .iter_mut()
        .map(|c| c.reply().0)
        .filter(|code| *code == 421)
        .count();
    let failed = server.log().matches("login failed").count();
    assert!(failed <= 10, "{failed} failed checks logged");
    let checks = scrape(h, "lakeftpd_password_checks_total");
    assert!(checks <= 10, "{checks} password checks");
    assert!(refused >= 190, "{refused} refused");
    assert_eq!(scrape(h, "lakeftpd_bans_total"), 1);
}

#[test]
fn devices_logging_in_at_once_behind_one_address_all_get_in() {
    // 40 devices behind one NAT address log in at the same moment, more
    // than ban_after (10): their checks queue for places in the score
    // (successes give them back), and none is refused.
    raise_nofile();
    let server = Server::start("ban_after = 10", &[("dev", "upload")]);
    let mut clients: Vec<Control> = (0..40)
        .map(|_| {
            let mut c = Control::from_stream(connect_from("127.0.6.2", server.addr).unwrap());
            assert_eq!(c.reply().0, 220);
            assert_eq!(c.cmd("USER dev").0, 331);
            c
        })
        .collect();
    for c in &mut clients {
        c.send(&format!("PASS {PASSWORD}"));
    }
    let codes: Vec<u16> = clients.iter_mut().map(|c| c.reply().0).collect();
    assert!(codes.iter().all(|code| *code == 230), "{codes:?}");
}

#[test]
fn a_shared_address_keeps_its_known_devices() {
    // Carrier-grade NAT: a device logged in from the address before; the
    // neighbours' guessing bans the address, yet the device still logs in,
    // and the guessed user is refused before any hashing.
    let server = Server::start(
        "ban_after = 3\nban_window = 1m\nban_time = 1m\nmax_login_failures = 10",
        &[("dev", "upload"), ("other", "upload")],
    );
    assert!(login_from("127.0.3.7", server.addr, "dev").is_ok());
    let mut c = Control::from_stream(connect_from("127.0.3.7", server.addr).unwrap());
    assert_eq!(c.reply().0, 220);
    for _ in 0..3 {
        c.cmd("USER root");
        assert_eq!(c.cmd("PASS guess").0, 530);
    }
    assert!(login_from("127.0.3.7", server.addr, "dev").is_ok());
    let refused = login_from("127.0.3.7", server.addr, "other").unwrap_err();
    assert_eq!(refused.0, 421, "{}", refused.1);
}

#[test]
fn ban_exempt_networks_are_never_banned() {
    // The operator's own network is never refused at connect, and a
    // device there logs in; but a name guessed from it is banned for that
    // address (the pair), so a guesser behind it does not get to try
    // that name forever.
    let server = Server::start(
        "ban_after = 2\nban_exempt = 127.0.4.0/24\nmax_login_failures = 10",
        &[("dev", "upload"), ("other", "upload")],
    );
    let mut c = Control::from_stream(connect_from("127.0.4.9", server.addr).unwrap());
    assert_eq!(c.reply().0, 220);
    for _ in 0..2 {
        c.cmd("USER other");
        assert_eq!(c.cmd("PASS wrong").0, 530);
    }
    c.cmd("USER other");
    assert_eq!(c.cmd("PASS wrong").0, 421, "the pair is banned");
    for _ in 0..3 {
        assert!(login_from("127.0.4.9", server.addr, "dev").is_ok());
    }
}

#[test]
fn one_address_cannot_take_the_passive_pool() {
    // max_passive_per_ip = 3: the fourth PASV from one address gets 425,
    // another address still gets a port.
    let server = Server::start("max_passive_per_ip = 3", &[("dev", "full")]);
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = Control::login(server.addr, "dev");
        c.pasv();
        held.push(c);
    }
    let mut fourth = Control::login(server.addr, "dev");
    let (code, text) = fourth.cmd("PASV");
    assert_eq!(code, 425, "{text}");
    let stream = connect_from("127.0.5.2", server.addr).unwrap();
    let mut other = Control::from_stream(stream);
    assert_eq!(other.reply().0, 220);
    other.cmd("USER dev");
    assert_eq!(other.cmd(&format!("PASS {PASSWORD}")).0, 230);
    other.pasv();
    drop(held);
}

#[test]
fn hup_usr1_usr2_do_not_stop_the_server() {
    // Each is logged (SIGHUP reloads the users: none here); the server
    // keeps serving.
    let mut server = Server::start("", &[("dev", "upload")]);
    for signal in ["HUP", "USR1", "USR2"] {
        server.signal(signal);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.wait_exit(Duration::from_millis(100)), None);
    Control::login(server.addr, "dev");
    server.wait_log("Usr2 received and ignored", Duration::from_secs(2));
    assert!(server
        .log()
        .contains("SIGHUP: no users file configured (`users`), nothing to reload"));
}

#[test]
fn control_bytes_from_clients_never_reach_the_log_raw() {
    // A CR in USER forged a `login ok` line; ESC and BEL drove terminals.
    let server = Server::start("", &[("dev", "upload")]);
    let mut c = Control::open(server.addr);
    c.send_raw(b"USER x\rlogin ok client=1.2.3.4 user=admin\x1b[2J\x07\r\n")
        .unwrap();
    assert_eq!(c.reply().0, 331);
    assert_eq!(c.cmd("PASS wrong").0, 530);
    drop(c);
    server.wait_log("login failed", Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(200));
    let log = server.log();
    assert!(!log.contains('\r') && !log.contains('\x1b') && !log.contains('\x07'));
    assert!(log.contains("user=x\\x0dlogin ok"), "{log}");
}

#[test]
fn names_with_control_characters_are_refused_with_553() {
    // `STOR cr\rname.txt` and `MKD d\rx` succeeded, the 257 carrying a CR.
    let server = Server::start("", &[("dev", "full")]);
    let mut c = Control::login(server.addr, "dev");
    c.send_raw(b"MKD d\rx\r\n").unwrap();
    assert_eq!(c.reply().0, 553);
    c.send_raw(b"STOR cr\rname.txt\r\n").unwrap();
    assert_eq!(c.reply().0, 553);
    assert!(common::names(&server.home("dev")).is_empty());
}

#[test]
fn listings_skip_names_with_control_characters() {
    // A local file whose name holds CR LF and a fake LIST line.
    let server = Server::start("", &[("dev", "full")]);
    let home = server.home("dev");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        home.join("x\r\n-rw-r--r-- 1 ftp ftp 9 Jan 1 00:00 forged"),
        b"",
    )
    .unwrap();
    std::fs::write(home.join("real.csv"), b"1").unwrap();
    let mut c = Control::login(server.addr, "dev");
    for verb in ["LIST", "NLST", "MLSD"] {
        let data = c.pasv();
        c.send(verb);
        let mut conn = TcpStream::connect(data).unwrap();
        assert_eq!(c.reply().0, 150);
        let mut listing = String::new();
        conn.read_to_string(&mut listing).unwrap();
        assert_eq!(c.reply().0, 226);
        assert!(listing.contains("real.csv"), "{verb}: {listing}");
        assert!(!listing.contains("forged"), "{verb}: {listing}");
    }
}

#[test]
fn unknown_users_cost_what_the_configured_hash_costs() {
    // With rounds=100000 a known user took 62.7 ms and an unknown one 4.1.
    let hash = {
        let out = Command::new("python3")
            .args([
                "-c",
                &format!(
                    "import crypt; print(crypt.crypt('{PASSWORD}', '$6$rounds=100000$saltsalt$'))"
                ),
            ])
            .output();
        match out {
            Ok(o) if o.status.success() && o.stdout.starts_with(b"$6$") => {
                String::from_utf8(o.stdout).unwrap().trim().to_string()
            }
            _ => {
                eprintln!("python3 crypt unavailable: skipped");
                return;
            }
        }
    };
    let dir = Scratch::new("timing");
    let text = format!(
        "listen = 127.0.0.1:0\nroot = {}\nlogin_fail_delay = 0ms\nmax_login_failures = 100\n[user dev]\npassword = {hash}\n",
        dir.0.join("home").display()
    );
    let server = Server::start_with_text(dir, &text);
    let mut c = Control::open(server.addr);
    let mut time = |user: &str| {
        let mut best = Duration::MAX;
        for _ in 0..3 {
            c.cmd(&format!("USER {user}"));
            let started = Instant::now();
            assert_eq!(c.cmd("PASS wrong").0, 530);
            best = best.min(started.elapsed());
        }
        best
    };
    let known = time("dev");
    let unknown = time("nobody");
    assert!(
        unknown * 2 > known,
        "known user {known:?}, unknown user {unknown:?}"
    );
}

#[test]
fn small_replies_name_the_problem() {
    // A 256-byte name is 553, RNTO onto a directory 550, and the login
    // timeout reply shows the setting.
    let server = Server::start("login_timeout = 3s", &[("dev", "full")]);
    let mut c = Control::login(server.addr, "dev");
    let (code, text) = c.cmd(&format!("MKD {}", "n".repeat(256)));
    assert_eq!(code, 553, "{text}");
    assert_eq!(c.cmd("MKD dir").0, 257);
    let data = c.pasv();
    c.send("STOR file");
    drop(TcpStream::connect(data).unwrap());
    assert_eq!(c.reply().0, 150);
    assert_eq!(c.reply().0, 226);
    assert_eq!(c.cmd("RNFR file").0, 350);
    let (code, text) = c.cmd("RNTO dir");
    assert!(code == 550 || code == 553, "{code} {text}");

    let mut idle = Control::open(server.addr);
    std::thread::sleep(Duration::from_millis(1500));
    idle.send("NOOP");
    assert_eq!(idle.reply().0, 200);
    let (code, text) = idle.reply();
    assert_eq!(code, 421);
    assert!(text.contains("(3 s)"), "{text}");
}

/// Reads a listing of `dir` in passive mode ("" when refused).
fn listing(c: &mut Control, dir: &str) -> String {
    let data = c.pasv();
    c.send(&format!("LIST {dir}"));
    let conn = TcpStream::connect(data);
    let first = c.reply();
    let mut text = String::new();
    if first.0 == 150 {
        if let Ok(mut conn) = conn {
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = std::io::Read::read_to_string(&mut conn, &mut text);
        }
        c.reply();
    }
    text
}

#[test]
fn a_directory_swapped_for_an_outward_symlink_is_never_followed() {
    // Another process swaps `d` (a directory in the home) for a symlink to
    // a directory outside it, over and over, while the client deletes,
    // makes, renames into and lists `d`: every one acts on what it checked
    // or fails, never on the outside.
    let server = Server::start("", &[("dev", "full")]);
    let home = server.home("dev");
    let outside = server.dir.0.join("outside");
    std::fs::create_dir_all(home.join("d")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("victim"), b"outside").unwrap();
    std::fs::write(outside.join("outside-only-name"), b"outside").unwrap();
    let before = common::names(&outside);

    /// Swaps, bounded in count and time.
    const SWAPS: usize = 20_000;
    const FOR: Duration = Duration::from_secs(6);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (home, outside, stop) = (home.clone(), outside.clone(), stop.clone());
        std::thread::spawn(move || {
            let start = Instant::now();
            for _ in 0..SWAPS {
                if start.elapsed() > FOR || stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                // The inside directory always has a victim of its own.
                let _ = std::fs::write(home.join("d/victim"), b"inside");
                if std::fs::rename(home.join("d"), home.join("parked")).is_err() {
                    continue;
                }
                let _ = std::os::unix::fs::symlink(&outside, home.join("d"));
                std::thread::yield_now();
                let _ = std::fs::remove_file(home.join("d"));
                let _ = std::fs::rename(home.join("parked"), home.join("d"));
            }
        })
    };

    let mut c = Control::login(server.addr, "dev");
    let start = Instant::now();
    let mut listed = 0;
    let mut rounds = 0;
    while start.elapsed() < FOR && rounds < 2_000 {
        rounds += 1;
        c.cmd("DELE d/victim");
        if c.cmd("MKD d/made").0 == 257 {
            c.cmd("RMD d/made");
        }
        std::fs::write(home.join("src"), b"moved").unwrap();
        if c.cmd("RNFR src").0 == 350 {
            c.cmd("RNTO d/moved");
        }
        let text = listing(&mut c, "d");
        if !text.is_empty() {
            listed += 1;
        }
        assert!(
            !text.contains("outside-only-name"),
            "LIST showed the outside: {text}"
        );
        assert_eq!(common::names(&outside), before, "round {rounds}");
        assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"outside");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    swapper.join().unwrap();
    assert!(rounds > 20, "only {rounds} rounds");
    assert!(listed > 0, "no listing succeeded in {rounds} rounds");
}

/// `lakeftpd passwd --scheme SCHEME` of `PASSWORD`.
fn hash_of(scheme: &str) -> String {
    let mut child = Command::new(common::bin())
        .args(["passwd", "--scheme", scheme])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A server whose users are `users` (name, hash), exempt from bans (the
/// tests guess on purpose), without a delay after a failure.
fn server_with_hashes(users: &[(&str, String)]) -> Server {
    let dir = Scratch::new("decoys");
    let mut text = format!(
        "listen = 127.0.0.1:0\nroot = {}\nlogin_fail_delay = 0ms\nmax_login_failures = 1000\nlogin_timeout = 10m\nban_exempt = 127.0.0.0/8\n",
        dir.0.join("home").display()
    );
    for (name, hash) in users {
        text.push_str(&format!("[user {name}]\npassword = {hash}\n"));
    }
    Server::start_with_text(dir, &text)
}

/// The fastest of two wrong passwords for `user`, on one connection.
fn wrong_password_time(c: &mut Control, user: &str) -> Duration {
    (0..2)
        .map(|_| {
            assert_eq!(c.cmd(&format!("USER {user}")).0, 331);
            let started = Instant::now();
            let (code, text) = c.cmd("PASS wrong");
            assert_eq!(code, 530, "{user}: {text}");
            started.elapsed()
        })
        .min()
        .unwrap()
}

#[test]
fn unknown_names_cost_what_known_names_of_a_mixed_set_cost() {
    // Two $6$ users and one bcrypt user. A known $6$ name answers a wrong
    // password in milliseconds, a bcrypt one in tenths of a second; an
    // unknown name used to cost bcrypt always. Now 40 unknown names split
    // like the users (about a third slow), and each name always the same.
    let sha = hash_of("sha512");
    let bcrypt = hash_of("bcrypt");
    let server = server_with_hashes(&[("s1", sha.clone()), ("s2", sha), ("b1", bcrypt)]);
    let mut c = Control::open(server.addr);
    // The quickest of several, interleaved: other tests load the machine
    // in bursts (one pair read 102 / 152 ms where a quiet one reads 40 /
    // 145 ms).
    let (mut fast, mut slow) = (Duration::MAX, Duration::MAX);
    for _ in 0..3 {
        fast = fast.min(wrong_password_time(&mut c, "s1"));
        slow = slow.min(wrong_password_time(&mut c, "b1"));
    }
    assert!(slow > fast * 2, "sha {fast:?}, bcrypt {slow:?}");
    // Half way: a loaded machine spreads the fast ones upwards.
    let threshold = (fast + slow) / 2;
    let mut slow_names = Vec::new();
    for i in 0..40 {
        let name = format!("ghost{i}");
        if wrong_password_time(&mut c, &name) > threshold {
            slow_names.push(name);
        }
    }
    let n = slow_names.len();
    eprintln!("{n} of 40 unknown names slow; sha {fast:?}, bcrypt {slow:?}");
    assert!(
        (3..=30).contains(&n),
        "{n} of 40 unknown names as slow as bcrypt (expected about a third; sha {fast:?}, bcrypt {slow:?})"
    );
    // The same name costs the same again.
    let again = wrong_password_time(&mut c, &slow_names[0]);
    assert!(again > threshold, "{again:?} for {} again", slow_names[0]);
}

#[test]
fn an_unknown_name_flood_does_not_delay_an_argon2id_login() {
    // 24 connections guess made-up names as fast as they can; with the
    // argon2id user's hash the costliest, every guess used to take one of
    // the argon2id permits, and a device's first login waited behind them
    // (0.8-5.4 s). Unknown names now have their own budget.
    let argon = hash_of("argon2id");
    let server = server_with_hashes(&[("dev", argon.clone()), ("cam", argon)]);
    let addr = server.addr;
    let login = |user: &str| {
        let mut c = Control::open(addr);
        assert_eq!(c.cmd(&format!("USER {user}")).0, 331);
        let started = Instant::now();
        assert_eq!(c.cmd(&format!("PASS {PASSWORD}")).0, 230);
        started.elapsed()
    };
    let quiet = login("dev");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood: Vec<_> = (0..24)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut c = Control::open(addr);
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 10_000 {
                    c.cmd(&format!("USER ghost{t}x{i}"));
                    c.cmd("PASS guess");
                    i += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    // Another user: the first check of its credentials (not cached).
    let flooded = login("cam");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in flood {
        t.join().unwrap();
    }
    eprintln!("argon2id login: {quiet:?} quiet, {flooded:?} during the flood");
    assert!(
        flooded < quiet * 5 + Duration::from_secs(1),
        "argon2id login {flooded:?} during the flood, {quiet:?} without"
    );
}

/// A server with implicit FTPS on its own port (a fresh pair from
/// tests/clients/make_cert.py), plus `extra`; its implicit port.
fn implicit_tls_server(extra: &str) -> (Server, u16, Scratch) {
    let (server, certs) = common::tls::start(
        "on",
        &format!("implicit_tls_listen = 127.0.0.1:0\n{extra}"),
        &[("dev", "upload")],
        &[],
    );
    let port = common::tls::implicit_port(&server);
    (server, port, certs)
}

/// Whether the server closed `s` (EOF or reset) within `limit`.
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut byte = [0u8; 1];
    match s.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn one_client_holds_few_tls_handshakes_and_each_has_a_deadline() {
    // 12 silent implicit-TLS connections from one client: 4 handshakes in
    // flight at most, the 8 others closed at once; the 4 are closed at
    // tls_handshake_timeout (2 s), not the old fixed 10 s. Meanwhile
    // another client's handshake goes through.
    let (server, port, _certs) = implicit_tls_server("tls_handshake_timeout = 2s");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut held: Vec<TcpStream> = (0..12)
        .map(|_| connect_from("127.0.7.1", addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let closed_at_once = held
        .iter_mut()
        .map(|s| closed_within(s, Duration::from_millis(200)))
        .filter(|closed| *closed)
        .count();
    assert!(
        closed_at_once >= 8,
        "{closed_at_once} of 12 handshakes from one client closed at once"
    );
    let script = format!(
        "import socket, ssl\ns = socket.socket()\ns.bind(('127.0.7.2', 0))\ns.connect(('127.0.0.1', {port}))\nt = ssl._create_unverified_context().wrap_socket(s)\nprint(t.recv(100)[:3].decode())"
    );
    let (ok, out, err) = common::run("python3", &["-c", &script], None, None);
    assert!(ok && out.trim() == "220", "{out} {err}");
    let started = Instant::now();
    let all_closed = held
        .iter_mut()
        .all(|s| closed_within(s, Duration::from_secs(4)));
    assert!(
        all_closed,
        "a silent handshake outlived tls_handshake_timeout"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
    drop(server);
}

#[test]
fn failed_tls_handshakes_are_logged_within_a_budget() {
    // 100 failed handshakes (bytes that are no ClientHello) from 100
    // addresses: a few lines a second, and a count of those left out.
    let (server, port, _certs) = implicit_tls_server("");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let started = Instant::now();
    for i in 0..100 {
        let mut s = connect_from(&format!("127.0.9.{}", i + 1), addr).unwrap();
        let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n");
        let _ = closed_within(&mut s, Duration::from_secs(2));
    }
    let seconds = started.elapsed().as_secs() + 1;
    std::thread::sleep(Duration::from_millis(1100));
    // One more, after the budget's second, carries the count.
    let mut s = connect_from("127.0.9.200", addr).unwrap();
    let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n");
    let _ = closed_within(&mut s, Duration::from_secs(2));
    std::thread::sleep(Duration::from_millis(200));
    let log = server.log();
    let lines = log
        .matches("TLS handshake on the implicit connection failed")
        .count() as u64;
    assert!(
        lines <= 5 * (seconds + 1) + 1,
        "{lines} lines for 101 failures in {seconds} s"
    );
    assert!(log.contains("not logged"), "no count of the lines left out");
}
