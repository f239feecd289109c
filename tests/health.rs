//! The health/metrics listener, the SIGTERM drain, TCP keepalive and EMF
//! records, against the real binary. Timings are measured and compared with
//! the configured values, with tolerances for a loaded 2-core CI machine.

mod common;
#[path = "common/http.rs"]
mod http;

use common::{Control, Server};
use http::{get, health_addr, metric, request, scrape};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

fn server(extra: &str) -> Server {
    Server::start(
        &format!("health_listen = 127.0.0.1:0\n{extra}"),
        &[("dev", "upload,read")],
    )
}

#[test]
fn healthz_is_200_while_accepting() {
    let s = server("");
    let (status, body) = get(health_addr(&s), "/healthz");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
}

#[test]
fn head_healthz_has_no_body() {
    let s = server("");
    let (status, body) = request(health_addr(&s), "HEAD /healthz HTTP/1.0\r\n\r\n");
    assert_eq!((status, body.as_str()), (200, ""));
}

#[test]
fn metrics_are_prometheus_text_with_help_and_type() {
    let s = server("");
    let h = health_addr(&s);
    let mut c = Control::login(s.addr, "dev");
    let (status, body) = get(h, "/metrics");
    assert_eq!(status, 200);
    for line in body.lines() {
        assert!(
            line.starts_with("# HELP lakeftpd_")
                || line.starts_with("# TYPE lakeftpd_")
                || line.starts_with("lakeftpd_"),
            "unexpected line {line:?}"
        );
    }
    assert!(body.contains("# TYPE lakeftpd_sessions_now gauge\n"));
    assert!(
        body.contains(&format!(
            "\nlakeftpd_build_info{{version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        )),
        "{body}"
    );
    assert!(body.contains("# TYPE lakeftpd_logins_ok_total counter\n"));
    assert_eq!(metric(&body, "lakeftpd_sessions_now"), 1);
    assert_eq!(metric(&body, "lakeftpd_logins_ok_total"), 1);
    assert_eq!(metric(&body, "lakeftpd_draining"), 0);
    for name in [
        "lakeftpd_sessions_total",
        "lakeftpd_logins_failed_total",
        "lakeftpd_transfers_now",
        "lakeftpd_bytes_in_total",
        "lakeftpd_bytes_out_total",
        "lakeftpd_uploads_ok_total",
        "lakeftpd_uploads_failed_total",
        "lakeftpd_port_refused_foreign_address_total",
        "lakeftpd_port_refused_low_port_total",
        "lakeftpd_active_connect_failures_total",
        "lakeftpd_active_connect_micros_total",
        "lakeftpd_passive_accept_timeouts_total",
        "lakeftpd_proxy_header_rejected_total",
        "lakeftpd_s3_queue_depth",
    ] {
        metric(&body, name);
    }
    // A refused PORT shows up by reason.
    assert_eq!(c.cmd("PORT 127,0,0,1,0,21").0, 501);
    let (_, body) = get(h, "/metrics");
    assert_eq!(metric(&body, "lakeftpd_port_refused_low_port_total"), 1);
}

#[test]
fn upload_ack_latency_is_a_histogram_counting_every_upload() {
    let s = server("");
    let h = health_addr(&s);
    let dir = common::Scratch::new("histogram-src");
    let uploads = 3;
    for i in 0..uploads {
        let file = dir.0.join(format!("f{i}.csv"));
        std::fs::write(&file, common::pattern(10_000 + i * 1000, i as u64 + 1)).unwrap();
        let url = format!("{}/f{i}.csv", s.url("dev"));
        let (ok, _, err) = common::run(
            "curl",
            &["-sS", "-T", file.to_str().unwrap(), &url],
            None,
            None,
        );
        assert!(ok, "curl: {err}");
    }
    let (_, body) = get(h, "/metrics");
    let name = "lakeftpd_upload_ack_seconds";
    assert!(
        body.contains(&format!("# TYPE {name} histogram\n")),
        "{body}"
    );
    assert_eq!(metric(&body, &format!("{name}_count")), uploads as u64);
    assert_eq!(
        metric(&body, &format!("{name}_bucket{{le=\"+Inf\"}}")),
        uploads as u64
    );
    assert!(body.contains(&format!("\n{name}_sum ")), "{body}");
    // Cumulative: the bucket counts never decrease and end at the count.
    let counts: Vec<u64> = body
        .lines()
        .filter(|l| l.starts_with(&format!("{name}_bucket{{")))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(
        counts.len() > 2 && counts.windows(2).all(|w| w[0] <= w[1]),
        "{counts:?}"
    );
    // No S3 here: nothing reached S3, so the 226-to-S3 histogram is empty.
    assert_eq!(metric(&body, "lakeftpd_ack_to_s3_seconds_count"), 0);
}

#[test]
fn unknown_paths_methods_and_junk_are_refused() {
    let s = server("");
    let h = health_addr(&s);
    assert_eq!(get(h, "/").0, 404);
    assert_eq!(request(h, "POST /healthz HTTP/1.1\r\n\r\n").0, 405);
    assert_eq!(request(h, "hello\r\n").0, 400);
    // An over-long request line is refused without reading further.
    let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(1000));
    assert_eq!(request(h, &long).0, 400);
    // A silent client is dropped after the timeout; the listener stays up.
    let _silent = TcpStream::connect(h).unwrap();
    assert_eq!(get(h, "/healthz").0, 200);
}

#[test]
fn control_sockets_get_tcp_keepalive() {
    let s = server("tcp_keepalive = 42s\n");
    let _c = Control::open(s.addr);
    // ss -o shows the keepalive timer of the server's side of the socket.
    let (ok, out, err) = common::run(
        "ss",
        &[
            "-tno",
            "state",
            "established",
            &format!("( sport = :{} )", s.port()),
        ],
        None,
        None,
    );
    assert!(ok, "{err}");
    assert!(out.contains("timer:(keepalive,4"), "{out}");
}

#[test]
fn tcp_keepalive_off() {
    let s = server("tcp_keepalive = off\n");
    let _c = Control::open(s.addr);
    let (_, out, _) = common::run(
        "ss",
        &[
            "-tno",
            "state",
            "established",
            &format!("( sport = :{} )", s.port()),
        ],
        None,
        None,
    );
    assert!(out.contains(&format!(":{}", s.port())), "{out}");
    assert!(!out.contains("keepalive"), "{out}");
}

/// The whole drain: 503 at once, still accepting for drain_delay, then
/// refused; idle sessions get 421 at the end of drain_delay; a running
/// upload completes with 226; exit 0.
#[test]
fn sigterm_drains_in_order() {
    let delay = Duration::from_millis(1500);
    let mut s = server("drain_delay = 1500ms\ndrain_timeout = 10s\n");
    let h = health_addr(&s);

    // An idle session, and one in the middle of a passive upload.
    let mut idle = Control::login(s.addr, "dev");
    let mut up = Control::login(s.addr, "dev");
    assert_eq!(up.cmd("TYPE I").0, 200);
    let data_addr = up.pasv();
    up.send("STOR drained.bin");
    let mut data = TcpStream::connect(data_addr).unwrap();
    assert_eq!(up.reply().0, 150);
    let body = common::pattern(300_000, 11);
    data.write_all(&body[..100_000]).unwrap();

    let t0 = Instant::now();
    s.signal("TERM");
    // 1. /healthz turns 503 at once.
    loop {
        let (status, text) = get(h, "/healthz");
        if status == 503 {
            assert_eq!(text, "draining\n");
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "/healthz still {status}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let to_503 = t0.elapsed();

    // 2. During drain_delay new sessions are accepted and idle ones served.
    let mut late = Control::login(s.addr, "dev");
    assert_eq!(idle.cmd("NOOP").0, 200);
    assert!(
        t0.elapsed() < delay,
        "test too slow to check the delay window"
    );

    // 3. At the end of drain_delay idle sessions get 421...
    let (code, _) = idle.reply();
    let to_421 = t0.elapsed();
    assert_eq!(code, 421);
    assert_eq!(late.reply().0, 421);
    assert!(
        to_421 >= delay - Duration::from_millis(100),
        "421 after {to_421:?}"
    );
    assert!(
        to_421 < delay + Duration::from_secs(1),
        "421 after {to_421:?}"
    );
    // ...and new connections are refused.
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        TcpStream::connect(s.addr).is_err(),
        "still accepting after drain_delay"
    );

    // 4. The running upload completes.
    data.write_all(&body[100_000..]).unwrap();
    drop(data);
    assert_eq!(up.reply().0, 226);
    assert_eq!(up.reply().0, 421);
    assert_eq!(
        std::fs::read(s.home("dev").join("drained.bin")).unwrap(),
        body
    );

    // 5. Exit 0, well before drain_timeout since nothing is left.
    assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0));
    let to_exit = t0.elapsed();
    eprintln!(
        "drain timings: 503 after {to_503:?}, 421 after {to_421:?} (drain_delay {delay:?}), exit after {to_exit:?}"
    );
    assert!(to_exit < delay + Duration::from_secs(5));
}

#[test]
fn sigint_drains_like_sigterm() {
    let mut s = server("drain_delay = 200ms\n");
    let h = health_addr(&s);
    s.signal("INT");
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(get(h, "/healthz").0, 503);
    assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn second_signal_ends_drain_delay() {
    let mut s = server("drain_delay = 60s\n");
    let t0 = Instant::now();
    s.signal("TERM");
    std::thread::sleep(Duration::from_millis(200));
    s.signal("TERM");
    assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(t0.elapsed() < Duration::from_secs(10));
}

#[test]
fn emf_records_reach_a_tcp_listener_as_valid_json() {
    let agent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = agent.local_addr().unwrap().port();
    let s = server(&format!(
        "metrics_emf = tcp:127.0.0.1:{port}\nmetrics_interval = 1s\n"
    ));
    let _c = Control::login(s.addr, "dev");
    agent.set_nonblocking(false).unwrap();
    let (stream, _) = agent.accept().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut lines = BufReader::new(stream);
    let mut records = Vec::new();
    for _ in 0..2 {
        let mut line = String::new();
        lines.read_line(&mut line).unwrap();
        records.push(line);
    }
    for line in &records {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let aws = &v["_aws"];
        assert!(aws["Timestamp"].as_u64().unwrap() > 1_600_000_000_000);
        let directive = &aws["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "lakeftpd");
        assert_eq!(directive["Dimensions"], serde_json::json!([["InstanceId"]]));
        assert_eq!(v["InstanceId"], "local");
        let metrics = directive["Metrics"].as_array().unwrap();
        assert!(metrics.len() <= 100);
        for m in metrics {
            let name = m["Name"].as_str().unwrap();
            assert!(m["Unit"].is_string());
            assert!(v[name].is_number(), "{name} has no value in {line}");
        }
    }
    let first: serde_json::Value = serde_json::from_str(&records[0]).unwrap();
    let second: serde_json::Value = serde_json::from_str(&records[1]).unwrap();
    // A gauge is its value; a counter is the increase over the interval.
    assert_eq!(first["ActiveSessions"], 1);
    assert_eq!(first["LoginsOk"], 1);
    assert_eq!(second["ActiveSessions"], 1);
    assert_eq!(second["LoginsOk"], 0);
    assert!(first["SessionsPerSecond"].as_f64().unwrap() > 0.0);
}

/// Six 1-second sessions that come and go between two EMF records: the
/// sampled `ActiveSessions` says 0, `ActiveSessionsPeak` says 6, both at
/// 1-second storage resolution; `UploadsPerSecond` and `Version` are there.
#[test]
fn emf_peak_sees_sessions_that_came_and_went_within_the_interval() {
    let agent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = agent.local_addr().unwrap().port();
    let s = server(&format!(
        "metrics_emf = tcp:127.0.0.1:{port}\nmetrics_interval = 2s\n"
    ));
    let (stream, _) = agent.accept().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut lines = BufReader::new(stream);
    let mut next = || {
        let mut line = String::new();
        lines.read_line(&mut line).unwrap();
        serde_json::from_str::<serde_json::Value>(&line).unwrap()
    };
    // A record just went: the burst falls in the next interval.
    next();
    let burst: Vec<Control> = (0..6).map(|_| Control::login(s.addr, "dev")).collect();
    drop(burst);
    let end = Instant::now() + Duration::from_secs(5);
    while scrape(health_addr(&s), "lakeftpd_sessions_now") > 0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Normally the next record; on a slow machine the burst may straddle
    // a boundary (a session open at it starts the next interval's peak).
    let mut peak = 0;
    let record = loop {
        let record = next();
        peak = peak.max(record["ActiveSessionsPeak"].as_u64().unwrap());
        if record["ActiveSessions"] == 0 {
            break record;
        }
    };
    assert!(peak >= 6, "{record}");
    assert!(record["UploadsPerSecond"].is_number(), "{record}");
    assert_eq!(record["Version"], env!("CARGO_PKG_VERSION"));
    let defs = record["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap();
    for name in [
        "ActiveSessionsPeak",
        "UploadsPerSecond",
        "SessionsPerSecond",
    ] {
        let def = defs.iter().find(|d| d["Name"] == name).unwrap();
        assert_eq!(def["StorageResolution"], 1, "{name}");
    }
    // The next interval starts from what is open now: none.
    assert_eq!(next()["ActiveSessionsPeak"], 0);
}

#[test]
fn emf_over_udp() {
    let agent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    agent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let port = agent.local_addr().unwrap().port();
    let _s = server(&format!(
        "metrics_emf = udp:127.0.0.1:{port}\nmetrics_interval = 1s\n"
    ));
    let mut buf = [0u8; 65536];
    let n = agent.recv(&mut buf).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
    assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "lakeftpd");
}

#[test]
fn health_listener_bind_failure_stops_start_up() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = common::Scratch::new("hbind");
    let config = dir.0.join("c.conf");
    std::fs::write(
        &config,
        format!(
            "listen = 127.0.0.1:0\nroot = {}\nhealth_listen = {}\n",
            dir.0.display(),
            taken.local_addr().unwrap()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(common::bin())
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let mut err = String::new();
    out.stderr.as_slice().read_to_string(&mut err).unwrap();
    assert!(err.contains("health_listen"), "{err}");
}

/// Unmounts a tmpfs at drop.
struct Mount(std::path::PathBuf);

/// A server on `dir` with health on and a 2 MiB disk reserve
/// (`max_file_size` 1 MiB plus the 1 MiB margin).
fn reserve_server(dir: common::Scratch) -> Server {
    let config = common::config_text(
        &dir,
        "health_listen = 127.0.0.1:0\nmax_file_size = 1MiB\n",
        &[("dev", "upload")],
    );
    Server::start_with_text(dir, &config)
}

/// `dir/home` on a 4 MiB tmpfs of its own, unmounted when dropped.
fn small_home(dir: &common::Scratch) -> (std::path::PathBuf, Mount) {
    let home = dir.0.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&home)
        .status()
        .is_ok_and(|s| s.success());
    assert!(mounted, "cannot mount a tmpfs: the tests run as root");
    (home.clone(), Mount(home))
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Polls `path` until it answers `want`, for up to 5 s (the disk is
/// measured every second); returns the last answer.
fn wait_for(addr: std::net::SocketAddr, path: &str, want: u16) -> (u16, String) {
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = get(addr, path);
        if answer.0 == want || Instant::now() > end {
            return answer;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The home filesystem (a 4 MiB tmpfs) filled until less than one upload
/// of max_file_size (1 MiB, plus the 1 MiB margin) fits: /healthz says
/// `disk full` before an upload could fail, /livez stays 200 (just full is
/// not broken), the free bytes are a metric; space freed: 200 again.
#[test]
fn full_disk_is_not_ready_until_space_returns() {
    let dir = common::Scratch::new("hdisk");
    let (home, _mount) = small_home(&dir);
    let s = reserve_server(dir);
    let h = health_addr(&s);
    assert_eq!(wait_for(h, "/healthz", 200), (200, "ok\n".to_string()));
    let free = scrape(h, "lakeftpd_home_free_bytes");
    assert!((3 << 20..=4 << 20).contains(&free), "free {free}");
    assert!(scrape(h, "lakeftpd_home_free_inodes") > 0);

    // Fill: 2.5 MiB taken leaves 1.5 MiB, less than 1 MiB + 1 MiB.
    let filler = home.join("filler");
    std::fs::write(&filler, vec![7u8; 5 << 19]).unwrap();
    assert_eq!(
        wait_for(h, "/healthz", 503),
        (503, "disk full\n".to_string())
    );
    assert_eq!(get(h, "/livez"), (200, "live\n".to_string()));
    assert_eq!(scrape(h, "lakeftpd_disk_full"), 1);
    assert_eq!(scrape(h, "lakeftpd_ready"), 0);
    assert!(s.log().contains("disk full"), "{}", s.log());

    // Space returns.
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(wait_for(h, "/healthz", 200), (200, "ok\n".to_string()));
    assert_eq!(scrape(h, "lakeftpd_disk_full"), 0);
    assert_eq!(scrape(h, "lakeftpd_ready"), 1);
}

/// A disk already full when the server starts: its very first answers
/// (no polling) say `disk full` and give the real free bytes, so a
/// balancer never sees this instance ready, not even for a second.
#[test]
fn a_disk_full_at_start_is_never_ready() {
    let dir = common::Scratch::new("hfull0");
    let (home, _mount) = small_home(&dir);
    std::fs::write(home.join("filler"), vec![7u8; 5 << 19]).unwrap();
    let s = reserve_server(dir);
    let h = health_addr(&s);
    assert_eq!(get(h, "/healthz"), (503, "disk full\n".to_string()));
    let free = scrape(h, "lakeftpd_home_free_bytes");
    assert!((1 << 20..2 << 20).contains(&free), "free {free}");
    assert_eq!(scrape(h, "lakeftpd_ready"), 0);
}

#[test]
fn livez_is_200_while_live() {
    let s = server("");
    let (status, body) = get(health_addr(&s), "/livez");
    assert_eq!((status, body.as_str()), (200, "live\n"));
}

/// Datagrams systemd would receive on NOTIFY_SOCKET, in order, until
/// `limit` passes.
fn notifications(socket: &std::os::unix::net::UnixDatagram, limit: Duration) -> Vec<String> {
    let end = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while Instant::now() < end {
        if let Ok(n) = socket.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    got
}

/// Liveness against the real binary under a systemd-like watchdog: a home
/// filesystem remounted read-only (what ext4 does after I/O errors) is a
/// fault of this instance alone: /livez and /healthz answer 503, and
/// WATCHDOG=1 stops, so systemd restarts it; remounted read-write, both
/// answer 200 again and the watchdog is fed.
#[test]
fn a_read_only_disk_is_not_live_and_starves_the_watchdog() {
    let dir = common::Scratch::new("hlive");
    let (home, _mount) = small_home(&dir);
    let socket_path = dir.0.join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    // max_file_size: the reserve fits the 4 MiB tmpfs (it is not full).
    let config = common::config_text(
        &dir,
        "health_listen = 127.0.0.1:0\nmax_file_size = 1MiB\n",
        &[("dev", "upload")],
    );
    let config_path = dir.0.join("lakeftpd.conf");
    std::fs::write(&config_path, config).unwrap();
    let config_arg = config_path.to_str().unwrap().to_string();
    let s = Server::spawn_with(
        dir,
        &["serve", "--config", &config_arg],
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            // A ping every 100 ms.
            ("WATCHDOG_USEC", "200000"),
        ],
    );
    let h = health_addr(&s);
    let fed = notifications(&socket, Duration::from_secs(1));
    assert!(fed.iter().any(|n| n == "READY=1"), "{fed:?}");
    assert!(
        fed.iter().filter(|n| *n == "WATCHDOG=1").count() >= 3,
        "{fed:?}"
    );
    assert_eq!(get(h, "/livez"), (200, "live\n".to_string()));
    assert_eq!(wait_for(h, "/healthz", 200), (200, "ok\n".to_string()));

    let remount = |mode: &str| {
        let ok = std::process::Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&home)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "remount {mode}");
    };
    remount("ro");
    assert_eq!(
        wait_for(h, "/livez", 503),
        (503, "not live: disk read-only\n".to_string())
    );
    assert_eq!(get(h, "/healthz"), (503, "disk read-only\n".to_string()));
    assert_eq!(scrape(h, "lakeftpd_live"), 0);
    // Drain what was sent before the watchdog saw it; then nothing.
    notifications(&socket, Duration::from_millis(300));
    let starved = notifications(&socket, Duration::from_secs(1));
    assert!(!starved.iter().any(|n| n == "WATCHDOG=1"), "{starved:?}");
    assert!(
        s.log().contains("no longer feeding systemd's watchdog"),
        "{}",
        s.log()
    );

    remount("rw");
    assert_eq!(wait_for(h, "/livez", 200), (200, "live\n".to_string()));
    assert_eq!(get(h, "/healthz"), (200, "ok\n".to_string()));
    let fed = notifications(&socket, Duration::from_secs(1));
    assert!(fed.iter().any(|n| n == "WATCHDOG=1"), "{fed:?}");
}
