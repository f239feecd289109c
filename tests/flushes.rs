//! Flushes per acknowledged upload (issue 20), read from the server's own
//! `lakeftpd_flushes_total` (every fsync and syncfs it makes for uploads,
//! the spool and directories). Homes are in the test's temporary directory,
//! on this machine's root filesystem (ext4): the flushes are real ones.
//! Rates and latencies are the benchmark's business (tests/bench); these
//! are counts.

mod common;
#[path = "common/http.rs"]
mod http;
#[path = "common/s3.rs"]
mod s3;

use common::{pattern, Control, Scratch, Server};
use s3::{key_env, stor, Lake, S3};
use std::io::Write;
use std::net::SocketAddr;
use std::net::TcpListener;

fn flushes(health: SocketAddr) -> u64 {
    http::scrape(health, "lakeftpd_flushes_total")
}

fn health_of(log: &str) -> SocketAddr {
    let marker = "health and metrics on http://";
    let rest = &log[log.find(marker).expect("health listener in the log") + marker.len()..];
    rest[..rest.find('/').unwrap()].parse().unwrap()
}

#[test]
fn a_lone_device_with_ack_disk_pays_at_most_two_flushes_per_upload() {
    // The upload's bytes before its rename, then the rename and the spool
    // entry together: 2. (Each its own fsync, plus the sidecar's and both
    // directories', was 4.)
    let dir = Scratch::new("flush-lone");
    let s3 = S3::start(&dir.0);
    let lake = Lake::start(
        &dir,
        &format!(
            "s3_bucket = {}\ns3_endpoint = {}\nack = disk\nhealth_listen = 127.0.0.1:0\n",
            s3::BUCKET,
            s3.endpoint()
        ),
        &["dev01"],
        key_env(),
    );
    let health = health_of(&lake.log());
    // The first flush on a filesystem finds it (storage/barrier.rs).
    assert_eq!(stor(lake.addr, "dev01", "first.csv", b"first").0, 226);
    let uploads = 12;
    let before = flushes(health);
    for i in 0..uploads {
        let data = pattern(4096, i);
        assert_eq!(stor(lake.addr, "dev01", &format!("m{i}.csv"), &data).0, 226);
    }
    let spent = flushes(health) - before;
    assert!(
        spent >= uploads && spent <= 2 * uploads,
        "{spent} flushes for {uploads} uploads"
    );
}

#[test]
fn concurrent_devices_share_their_flushes() {
    // 25 devices × 8 uploads at once, active mode (passive would meet the
    // default `max_passive_per_ip`: all come from 127.0.0.1), no S3: each upload needs its bytes
    // and its name durable, but one syncfs covers every upload that
    // landed before it started. With an fsync per file (and a shared one
    // per folder) this was 1.5 per upload or more.
    let server = Server::start("health_listen = 127.0.0.1:0\n", &[("dev", "full")]);
    let health = health_of(&server.log());
    let (devices, each) = (25u64, 8u64);
    let before = flushes(health);
    let threads: Vec<_> = (0..devices)
        .map(|d| {
            let addr = server.addr;
            std::thread::spawn(move || {
                for i in 0..each {
                    let data = pattern(4096, d * 100 + i);
                    let (code, text) = stor_active(addr, &format!("d{d}-{i}.csv"), &data);
                    assert_eq!(code, 226, "{text}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let spent = flushes(health) - before;
    let uploads = devices * each;
    assert_eq!(
        std::fs::read_dir(server.home("dev")).unwrap().count() as u64,
        uploads
    );
    assert!(
        spent >= 1 && (spent as f64) < 1.0 * uploads as f64,
        "{spent} flushes for {uploads} concurrent uploads"
    );
    eprintln!(
        "{spent} flushes for {uploads} uploads: {:.2} each",
        spent as f64 / uploads as f64
    );
}

/// One session, one active-mode STOR (PORT to a listener of ours).
fn stor_active(addr: SocketAddr, name: &str, data: &[u8]) -> (u16, String) {
    let mut c = Control::login(addr, "dev");
    assert_eq!(c.cmd("TYPE I").0, 200);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (code, text) = c.cmd(&format!("PORT 127,0,0,1,{},{}", port >> 8, port & 255));
    assert_eq!(code, 200, "{text}");
    c.send(&format!("STOR {name}"));
    let (mut stream, _) = listener.accept().unwrap();
    let (code, text) = c.reply();
    assert_eq!(code, 150, "{text}");
    stream.write_all(data).unwrap();
    drop(stream);
    c.reply()
}
