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
use std::net::{TcpListener, TcpStream};

fn flushes(health: SocketAddr) -> u64 {
    http::scrape(health, "lakeftpd_flushes_total")
}

/// lakeftpd with S3 (s3s-fs) and `extra` keys, user dev01, its health
/// listener's address, and one upload made (the first flush on a
/// filesystem finds it: storage/barrier.rs).
fn lake_with(dir: &Scratch, s3: &S3, extra: &str) -> (Lake, SocketAddr) {
    let lake = Lake::start(
        dir,
        &format!(
            "s3_bucket = {}\ns3_endpoint = {}\nhealth_listen = 127.0.0.1:0\n{extra}",
            s3::BUCKET,
            s3.endpoint()
        ),
        &["dev01"],
        key_env(),
    );
    let health = http::health_in_log(&lake.log());
    assert_eq!(stor(lake.addr, "dev01", "first.csv", b"first").0, 226);
    (lake, health)
}

/// `count` uploads of 4 KiB, one after another; the flushes they cost.
fn flushes_of_uploads(lake: &Lake, health: SocketAddr, count: u64) -> u64 {
    let before = flushes(health);
    for i in 0..count {
        let data = pattern(4096, i);
        assert_eq!(stor(lake.addr, "dev01", &format!("m{i}.csv"), &data).0, 226);
    }
    flushes(health) - before
}

#[test]
fn a_lone_device_with_ack_disk_pays_at_most_two_flushes_per_upload() {
    // The upload's bytes before its rename, then the rename and the spool
    // entry together: 2. (Each its own fsync, plus the sidecar's and both
    // directories', was 4.)
    let dir = Scratch::new("flush-lone");
    let s3 = S3::start(&dir.0);
    let (lake, health) = lake_with(&dir, &s3, "ack = disk\n");
    let uploads = 12;
    let spent = flushes_of_uploads(&lake, health, uploads);
    assert!(
        spent >= uploads && spent <= 2 * uploads,
        "{spent} flushes for {uploads} uploads"
    );
}

#[test]
fn with_a_bucket_by_default_a_lone_device_pays_one_flush_per_upload() {
    // The defaults with a bucket, ack = s3 and keep_local = off: the 226
    // waits for S3's copy and the home copy goes once S3 has it, so only
    // the upload's bytes are flushed (before its rename, so that a home
    // copy surviving a power cut is whole). Two per upload before.
    let dir = Scratch::new("flush-s3");
    let s3 = S3::start(&dir.0);
    let (lake, health) = lake_with(&dir, &s3, "");
    let uploads = 12;
    let spent = flushes_of_uploads(&lake, health, uploads);
    assert_eq!(spent, uploads, "one flush per upload");
}

#[test]
fn devices_landing_together_share_their_flushes() {
    // No S3. Each upload needs its bytes and then its name durable, but one
    // syncfs covers every upload that landed before it started: well under
    // one flush per upload. With an fsync per file (and one per folder,
    // shared) it was at least one per upload.
    let server = Server::start("health_listen = 127.0.0.1:0\n", &[("dev", "full")]);
    let health = http::health_in_log(&server.log());
    let (spent, uploads) = land_together(server.addr, "dev", health);
    assert_eq!(
        std::fs::read_dir(server.home("dev")).unwrap().count() as u64,
        uploads
    );
    assert!(
        spent >= ROUNDS && spent < uploads,
        "{spent} flushes for {uploads} uploads"
    );
}

#[test]
fn with_a_bucket_devices_landing_together_share_their_one_flush() {
    // The bucket defaults (ack = s3, keep_local = off): only the bytes are
    // flushed, and a syncfs covers every upload that landed before it. (A
    // build that learnt of the filesystem only from a flushed directory,
    // which these uploads never flush, paid one fsync each.)
    let dir = Scratch::new("flush-s3-together");
    let s3 = S3::start(&dir.0);
    let (lake, health) = lake_with(&dir, &s3, "");
    let (spent, uploads) = land_together(lake.addr, "dev01", health);
    assert!(
        spent >= ROUNDS && spent < uploads / 2,
        "{spent} flushes for {uploads} uploads"
    );
}

/// Rounds of `DEVICES` whose uploads end together.
const ROUNDS: u64 = 8;
const DEVICES: u64 = 25;

/// `ROUNDS` rounds of `DEVICES` uploads of `user` that end together (each
/// sent its bytes, then all close their data connections at once), in
/// active mode (passive would meet the default `max_passive_per_ip`: all
/// come from 127.0.0.1). Returns (flushes spent, uploads acknowledged).
fn land_together(addr: SocketAddr, user: &str, health: SocketAddr) -> (u64, u64) {
    let before = flushes(health);
    for round in 0..ROUNDS {
        let open: Vec<_> = (0..DEVICES)
            .map(|d| {
                let data = pattern(4096, round * 100 + d);
                open_active_stor(addr, user, &format!("r{round}-d{d}.csv"), &data)
            })
            .collect();
        let (controls, streams): (Vec<_>, Vec<_>) = open.into_iter().unzip();
        drop(streams);
        for mut c in controls {
            let (code, text) = c.reply();
            assert_eq!(code, 226, "{text}");
        }
    }
    let spent = flushes(health) - before;
    let uploads = DEVICES * ROUNDS;
    eprintln!(
        "{user}: {spent} flushes for {uploads} uploads: {:.2} each",
        spent as f64 / uploads as f64
    );
    (spent, uploads)
}

/// One session at the end of an active-mode STOR (PORT to a listener of
/// ours): `data` sent, the data connection still open.
fn open_active_stor(addr: SocketAddr, user: &str, name: &str, data: &[u8]) -> (Control, TcpStream) {
    let mut c = Control::login(addr, user);
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
    (c, stream)
}
