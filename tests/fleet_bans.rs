//! Bans shared across the fleet through S3 (`ban_share_interval`), against
//! two real instances and a real S3 API server (s3s-fs, which supports
//! ListObjectsV2 and conditional PUTs): a ban made on one instance refuses
//! the client on the other within the interval, and an object that is not
//! a bans text is ignored with a log line.

mod common;
#[path = "common/s3.rs"]
mod s3;

use common::{Control, Scratch};
use s3::{key_env, Lake, S3};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A TCP connection to `addr` from the local address `from` (127.x).
fn connect_from(from: &str, addr: SocketAddr) -> TcpStream {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let fd = rustix::net::socket_with(
        AddressFamily::INET,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    let ip: IpAddr = from.parse().unwrap();
    rustix::net::bind(&fd, &SocketAddr::new(ip, 0)).unwrap();
    rustix::net::connect(&fd, &addr).unwrap();
    TcpStream::from(fd)
}

/// The greeting's code for a connection from `from`.
fn greeting(from: &str, addr: SocketAddr) -> u16 {
    Control::from_stream(connect_from(from, addr)).reply().0
}

fn instance(dir: &Scratch, s3: &S3) -> Lake {
    let global = format!(
        "s3_bucket = {}\ns3_endpoint = {}\nack = disk\nban_after = 3\nban_window = 10m\nban_time = 10m\nban_share_interval = 1s\nmax_login_failures = 10",
        s3::BUCKET,
        s3.endpoint()
    );
    Lake::start(dir, &global, &["dev"], key_env())
}

#[test]
fn a_ban_on_one_instance_refuses_the_client_on_the_other() {
    let dir = Scratch::new("fleet-bans");
    let s3 = S3::start(&dir.0);
    // Someone else's object under the prefix: ignored, logged.
    let foreign = s3.object_path("lakeftpd/bans/foreign.bans");
    std::fs::create_dir_all(foreign.parent().unwrap()).unwrap();
    std::fs::write(&foreign, "not a bans object\n").unwrap();
    let (dir_a, dir_b) = (Scratch::new("fleet-a"), Scratch::new("fleet-b"));
    let a = instance(&dir_a, &s3);
    let b = instance(&dir_b, &s3);
    assert_eq!(greeting("127.0.11.1", b.addr), 220);
    // Three wrong passwords on A ban 127.0.11.1 there.
    let mut c = Control::from_stream(connect_from("127.0.11.1", a.addr));
    assert_eq!(c.reply().0, 220);
    for _ in 0..3 {
        c.cmd("USER dev");
        c.cmd("PASS wrong");
    }
    assert!(a.wait_log("banned (address)", Duration::from_secs(5)));
    let banned_at = Instant::now();
    // B refuses it within the interval (1 s), plus a poll's time.
    let mut code = 220;
    while banned_at.elapsed() < Duration::from_secs(5) && code != 421 {
        std::thread::sleep(Duration::from_millis(200));
        code = greeting("127.0.11.1", b.addr);
    }
    let took = banned_at.elapsed();
    eprintln!("refused on the other instance after {took:?}");
    assert_eq!(
        code,
        421,
        "B still serves the client banned on A:\nA:\n{}\nB:\n{}",
        a.log(),
        b.log()
    );
    // Others are still served on B.
    assert_eq!(greeting("127.0.11.2", b.addr), 220);
    assert!(b.log().contains("foreign.bans ignored"), "{}", b.log());
    // Each wrote its own object with conditional writes, never refused.
    for log in [a.log(), b.log()] {
        assert!(!log.contains("cannot write"), "{log}");
        assert!(!log.contains("written elsewhere"), "{log}");
    }
}
