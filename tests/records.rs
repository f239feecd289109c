//! Transfer records (`transfer_log`) against the real binary: a burst of
//! uploads at a fleet's top-of-the-minute rate gives one JSON record per
//! upload and per failed login, none lost; an upload's record names its S3
//! key and CRC64NVME as S3 has them.
//!
//! The burst's size is `LAKEFTPD_RECORDS_UPLOADS` (2,000 in CI, about 12 s
//! at the target rate); the full minute of the issue is
//! `LAKEFTPD_RECORDS_UPLOADS=10000 LAKEFTPD_BIN=... cargo test --test records`.

mod common;
#[path = "common/s3.rs"]
mod s3;

use common::{pattern, Control, Scratch, Server};
use s3::{key_env, stor, Lake, S3};
use std::collections::BTreeSet;
use std::io::Write;
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// 10,000 uploads a minute.
const TARGET_PER_SECOND: f64 = 10_000.0 / 60.0;

/// Devices uploading at once.
const DEVICES: usize = 8;

fn records(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// One upload on a logged-in control connection, in active mode as the
/// fleet's devices upload (PORT to the device's own listener).
fn upload(c: &mut Control, listener: &TcpListener, name: &str, data: &[u8]) -> u16 {
    let port = listener.local_addr().unwrap().port();
    let (code, text) = c.cmd(&format!("PORT 127,0,0,1,{},{}", port >> 8, port & 255));
    assert_eq!(code, 200, "{text}");
    c.send(&format!("STOR {name}"));
    let (code, text) = c.reply();
    assert_eq!(code, 150, "{text}");
    let (mut stream, _) = listener.accept().unwrap();
    stream.write_all(data).unwrap();
    drop(stream);
    c.reply().0
}

#[test]
fn a_burst_of_uploads_gives_one_record_each_none_lost() {
    let uploads: usize = std::env::var("LAKEFTPD_RECORDS_UPLOADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let logs = Scratch::new("records");
    let path = logs.0.join("transfers.jsonl");
    let server = Server::start(
        &format!("transfer_log = {}\n", path.display()),
        &[("dev", "upload")],
    );
    let data = pattern(120, 1);
    let started = Instant::now();
    let threads: Vec<_> = (0..DEVICES)
        .map(|t| {
            let addr = server.addr;
            let data = data.clone();
            std::thread::spawn(move || {
                let mut c = Control::login(addr, "dev");
                assert_eq!(c.cmd("TYPE I").0, 200);
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                for i in (t..uploads).step_by(DEVICES) {
                    let code = upload(&mut c, &listener, &format!("f{i}.csv"), &data);
                    if code != 226 {
                        return Err(format!("f{i}.csv: {code}"));
                    }
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        if let Err(e) = t.join().unwrap() {
            panic!("{e}\n{}", server.log());
        }
    }
    let elapsed = started.elapsed();
    // Failed logins are records too.
    for _ in 0..3 {
        let mut c = Control::open(server.addr);
        assert_eq!(c.cmd("USER nobody").0, 331);
        assert_eq!(c.cmd("PASS wrong").0, 530);
    }
    let rate = uploads as f64 / elapsed.as_secs_f64();
    eprintln!("{uploads} uploads in {elapsed:.1?}: {rate:.0}/s (target {TARGET_PER_SECOND:.0}/s)");
    assert!(
        rate >= TARGET_PER_SECOND,
        "the burst ran slower than 10,000 a minute: {rate:.0}/s"
    );

    // The writer flushes whenever its queue is empty: within moments.
    let end = Instant::now() + Duration::from_secs(10);
    let mut all = records(&path);
    while all.len() < uploads + 3 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
        all = records(&path);
    }
    let transfers: Vec<_> = all.iter().filter(|r| r["event"] == "transfer").collect();
    let failures: Vec<_> = all
        .iter()
        .filter(|r| r["event"] == "login_failed")
        .collect();
    assert_eq!(transfers.len(), uploads, "records lost");
    assert_eq!(failures.len(), 3);
    let paths: BTreeSet<String> = transfers
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(paths.len(), uploads, "one record per upload");
    for r in &transfers {
        assert_eq!(r["verb"], "STOR");
        assert_eq!(r["user"], "dev");
        assert_eq!(r["reply"], 226);
        assert_eq!(r["bytes"], 120);
        assert!(r["client"].as_str().unwrap().starts_with("127.0.0.1:"));
        assert!(r["time"].as_str().unwrap().ends_with('Z'));
        assert!(r["crc64nvme"].is_string() && r["s3_key"].is_null() && r["tls"].is_null());
    }
    assert_eq!(failures[0]["user"], "nobody");
    assert_eq!(failures[0]["reply"], 530);
    // The process counts them too.
    assert!(
        !server.log().contains("transfer_log"),
        "no write error: {}",
        server.log()
    );
}

#[test]
fn an_upload_record_names_its_s3_key_and_checksum() {
    let dir = Scratch::new("records-s3");
    let s3 = S3::start(&dir.0);
    let path = dir.0.join("transfers.jsonl");
    let lake = Lake::start(
        &dir,
        &format!(
            "s3_bucket = {}\ns3_endpoint = {}\ntransfer_log = {}\n",
            s3::BUCKET,
            s3.endpoint(),
            path.display()
        ),
        &["dev01"],
        key_env(),
    );
    let data = pattern(50_000, 9);
    let (code, text) = stor(lake.addr, "dev01", "LOG.CSV", &data);
    assert_eq!(code, 226, "{text}");
    let end = Instant::now() + Duration::from_secs(5);
    while records(&path).is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    let all = records(&path);
    assert_eq!(all.len(), 1, "{all:?}");
    let r = &all[0];
    let key = r["s3_key"].as_str().unwrap();
    assert_eq!(s3.object(key).as_deref(), Some(&data[..]), "{key}");
    let mut crc = crc64fast_nvme::Digest::new();
    crc.write(&data);
    use base64_check::encode;
    assert_eq!(r["crc64nvme"], encode(crc.sum64()));
    assert_eq!(r["path"], "/LOG.CSV");
    assert_eq!(r["bytes"], 50_000);
}

/// An FTPS upload by curl at its defaults (`--ssl-reqd`: AUTH TLS, PROT P):
/// the record names the control connection's TLS version and a protected
/// data connection.
#[test]
fn an_ftps_upload_record_names_its_tls_version() {
    let dir = Scratch::new("records-tls");
    let path = dir.0.join("transfers.jsonl");
    let (server, _certs) = common::tls::start(
        "on",
        &format!("transfer_log = {}\n", path.display()),
        &[("dev", "upload")],
        &[],
    );
    let local = dir.0.join("up.csv");
    std::fs::write(&local, pattern(3000, 5)).unwrap();
    let url = format!("{}/up.csv", server.url("dev"));
    let (ok, _, err) = common::run(
        "curl",
        &[
            "-sS",
            "--ssl-reqd",
            "-k",
            "-T",
            local.to_str().unwrap(),
            &url,
        ],
        None,
        None,
    );
    assert!(ok, "{err}\n{}", server.log());
    let end = Instant::now() + Duration::from_secs(5);
    while records(&path).is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    let all = records(&path);
    let r = all
        .iter()
        .find(|r| r["verb"] == "STOR")
        .unwrap_or_else(|| panic!("{all:?}"));
    assert_eq!(r["tls"], "TLSv1.3", "{r}");
    assert_eq!(r["data_tls"], true, "{r}");
    assert_eq!(r["reply"], 226);
}

/// Base64 of 8 big-endian bytes (RFC 4648 §4), as S3 shows a CRC64NVME;
/// written out here so the test does not share the server's encoder.
mod base64_check {
    pub fn encode(crc: u64) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let b = crc.to_be_bytes();
        let mut out = String::new();
        for chunk in b.chunks(3) {
            let n = chunk.iter().fold(0u32, |n, &x| n << 8 | x as u32) << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        while out.len() % 4 != 0 {
            out.push('=');
        }
        out
    }

    #[test]
    fn zero() {
        assert_eq!(encode(0), "AAAAAAAAAAA=");
    }
}
