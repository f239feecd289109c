//! S3 delivery against a real S3 API server on loopback (s3s-fs:
//! it verifies SigV4 signatures and Content-MD5), driven through FTP by curl
//! and by a raw control connection.

mod common;
#[path = "common/http.rs"]
mod http;
#[path = "common/s3.rs"]
mod s3;

use common::{pattern, run, Scratch};
use s3::{key_env, stor, Imds, Lake, ACCESS_KEY, S3, SECRET_KEY};
use std::time::Duration;

/// Today's Hive-style prefix, as lakeftpd renders `{yyyy}-{mm}-{dd}` (UTC).
fn day() -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn key(user: &str, path: &str) -> String {
    format!("user={user}/dt={}/{path}", day())
}

const TEMPLATE: &str = "s3_key = user={user}/dt={yyyy}-{mm}-{dd}/{path}\n";

fn s3_lines(s3: &S3, extra: &str) -> String {
    format!(
        "s3_bucket = {}\ns3_endpoint = {}\n{TEMPLATE}{extra}",
        s3::BUCKET,
        s3.endpoint()
    )
}

/// curl upload; active mode when `active`. True on 226.
fn curl_put(lake: &Lake, user: &str, local: &std::path::Path, remote: &str, active: bool) -> bool {
    let url = format!("{}/{remote}", lake.url(user));
    let local = local.to_str().unwrap();
    let mut args = vec!["-sS", "--ftp-create-dirs", "-T", local, url.as_str()];
    if active {
        args.splice(0..0, ["-P", "127.0.0.1"]);
    }
    let (ok, _, err) = run("curl", &args, None, None);
    if !ok {
        eprintln!("curl {remote}: {err}");
    }
    ok
}

#[test]
fn uploads_arrive_identical_under_the_templated_key_with_metadata() {
    let dir = Scratch::new("s3-deliver");
    let s3 = S3::start(&dir.0);
    let lake = Lake::start(
        &dir,
        &s3_lines(&s3, "s3_part_size = 5MiB\ns3_uploads = 3\n"),
        &["dev01", "dev02"],
        key_env(),
    );
    let files = dir.0.join("files");
    std::fs::create_dir_all(&files).unwrap();
    // (user, remote path, size, active?): small files, and two of 12 MiB
    // (three 5 MiB parts: multipart), over active and passive connections.
    let cases: Vec<(&str, String, usize, bool)> = (0..8)
        .map(|i| {
            let user = if i % 2 == 0 { "dev01" } else { "dev02" };
            let size = if i < 2 { 12 << 20 } else { 4096 + i * 1000 };
            (user, format!("metrics/m{i}.bin"), size, i % 3 != 0)
        })
        .collect();
    for (i, (_, _, size, _)) in cases.iter().enumerate() {
        std::fs::write(files.join(format!("{i}")), pattern(*size, i as u64 + 7)).unwrap();
    }
    // Several clients at once.
    std::thread::scope(|scope| {
        let handles: Vec<_> = cases
            .iter()
            .enumerate()
            .map(|(i, (user, remote, _, active))| {
                let lake = &lake;
                let local = files.join(format!("{i}"));
                scope.spawn(move || curl_put(lake, user, &local, remote, *active))
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            assert!(
                h.join().unwrap(),
                "upload {i} not acknowledged:\n{}",
                lake.log()
            );
        }
    });
    // ack = s3 (the default with a bucket): acknowledged means in S3 now.
    for (i, (user, remote, size, _)) in cases.iter().enumerate() {
        let k = key(user, remote);
        let stored = s3
            .object(&k)
            .unwrap_or_else(|| panic!("{k} missing; have {:?}", s3.keys()));
        assert_eq!(stored.len(), *size, "{k}");
        assert!(stored == pattern(*size, i as u64 + 7), "{k}: bytes differ");
        let meta = s3
            .metadata(&k)
            .unwrap_or_else(|| panic!("{k}: no metadata"));
        assert!(meta.contains(&format!("\"user\":\"{user}\"")), "{meta}");
        assert!(meta.contains(&format!("\"path\":\"/{remote}\"")), "{meta}");
        assert!(meta.contains(&format!("\"size\":\"{size}\"")), "{meta}");
        assert!(meta.contains("\"client\":\"127.0.0.1:"), "{meta}");
        assert!(
            meta.contains(&format!("\"uploaded\":\"{}T", day())),
            "{meta}"
        );
    }
    assert_eq!(s3.keys().len(), cases.len(), "{:?}", s3.keys());
    // Delivered: the spool is empty; keep_local (off by default with a
    // bucket) removed the home copies once S3 confirmed them.
    assert!(lake.spool_files().is_empty(), "{:?}", lake.spool_files());
    assert!(!dir.0.join("home/dev01/metrics/m0.bin").exists());
    lake.wait_log("reply=226", Duration::from_secs(5));
}

#[test]
fn ack_s3_with_s3_down_replies_451_then_delivers_when_s3_returns() {
    let dir = Scratch::new("s3-down");
    let mut s3 = S3::prepare(&dir.0);
    let lake = Lake::start(
        &dir,
        &s3_lines(&s3, "ack = s3\ns3_timeout = 2s\n"),
        &["dev01"],
        key_env(),
    );
    let data = pattern(50_000, 1);
    let (code, text) = stor(lake.addr, "dev01", "a.bin", &data);
    assert_eq!(code, 451, "{text}");
    assert!(text.contains("queued"), "{text}");
    // No 226 for a file not in S3.
    assert!(!lake.log().contains("reply=226"), "{}", lake.log());
    assert_eq!(lake.spool_files().len(), 2, "data and sidecar stay queued");

    s3.run();
    let k = key("dev01", "a.bin");
    assert!(
        s3.wait_object(&k, data.len(), Duration::from_secs(40)),
        "{}",
        lake.log()
    );
    assert_eq!(s3.object(&k).unwrap(), data);
    // With S3 back, the next upload gets its 226 only once it is in S3.
    let more = pattern(1000, 2);
    let (code, text) = stor(lake.addr, "dev01", "b.bin", &more);
    assert_eq!(code, 226, "{text}");
    assert_eq!(s3.object(&key("dev01", "b.bin")).unwrap(), more);
}

/// The health listener's address, read back from the log.
fn health_of(lake: &Lake) -> std::net::SocketAddr {
    http::health_in_log(&lake.log())
}

#[test]
fn ack_disk_counts_every_upload_in_the_ack_to_s3_histogram() {
    let dir = Scratch::new("s3-hist");
    let s3 = S3::start(&dir.0);
    let lake = Lake::start(
        &dir,
        &s3_lines(&s3, "ack = disk\nhealth_listen = 127.0.0.1:0\n"),
        &["dev01"],
        key_env(),
    );
    let uploads = 4;
    for i in 0..uploads {
        let data = pattern(2000 + i * 500, 40 + i as u64);
        let name = format!("h{i}.csv");
        assert_eq!(stor(lake.addr, "dev01", &name, &data).0, 226);
        assert!(s3.wait_object(&key("dev01", &name), data.len(), Duration::from_secs(20)));
    }
    let h = health_of(&lake);
    // The object is visible a moment before delivery records it.
    let end = std::time::Instant::now() + Duration::from_secs(10);
    let mut body = http::get(h, "/metrics").1;
    while http::metric(&body, "lakeftpd_s3_delivered_total") < uploads as u64
        && std::time::Instant::now() < end
    {
        std::thread::sleep(Duration::from_millis(50));
        body = http::get(h, "/metrics").1;
    }
    let name = "lakeftpd_ack_to_s3_seconds";
    assert!(
        body.contains(&format!("# TYPE {name} histogram\n")),
        "{body}"
    );
    assert_eq!(
        http::metric(&body, &format!("{name}_count")),
        uploads as u64
    );
    assert_eq!(
        http::metric(&body, &format!("{name}_bucket{{le=\"+Inf\"}}")),
        uploads as u64
    );
    assert_eq!(
        http::metric(&body, "lakeftpd_upload_ack_seconds_count"),
        uploads as u64
    );
}

#[test]
fn a_large_upload_is_spooled_with_the_crc_computed_as_it_arrived() {
    // 3 MiB in binary mode, most of it past the first 64 KiB buffer: the
    // sidecar carries the upload's CRC64NVME (S3 is down, so it waits in the
    // spool), computed while the bytes arrived, not by a second read of the
    // file later.
    let dir = Scratch::new("s3-crc");
    let s3 = S3::prepare(&dir.0);
    let lake = Lake::start(&dir, &s3_lines(&s3, "ack = disk\n"), &["dev01"], key_env());
    let data = pattern(3 << 20, 77);
    let (code, text) = stor(lake.addr, "dev01", "big.bin", &data);
    assert_eq!(code, 226, "{text}");
    let mut crc = crc64fast_nvme::Digest::new();
    crc.write(&data);
    let expected = format!("crc64nvme={:016x}", crc.sum64());
    let sidecars: Vec<String> = lake
        .spool_files()
        .into_iter()
        .filter_map(|name| std::fs::read_to_string(dir.0.join("spool").join(name)).ok())
        .filter(|text| text.starts_with("lakeftpd-spool"))
        .collect();
    assert_eq!(sidecars.len(), 1, "{:?}", lake.spool_files());
    assert!(
        sidecars[0].lines().any(|line| line == expected),
        "{expected} not in:\n{}",
        sidecars[0]
    );
}

#[test]
fn ack_disk_survives_s3_outage_and_sigkill() {
    let dir = Scratch::new("s3-kill");
    let mut s3 = S3::prepare(&dir.0);
    let lake = Lake::start(&dir, &s3_lines(&s3, "ack = disk\n"), &["dev01"], key_env());
    let files: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| (format!("f{i}.csv"), pattern(3000 + i * 777, 100 + i as u64)))
        .collect();
    for (name, data) in &files {
        let (code, text) = stor(lake.addr, "dev01", name, data);
        assert_eq!(code, 226, "{text}");
    }
    let lake = lake.kill_and_restart();
    s3.run();
    for (name, data) in &files {
        let k = key("dev01", name);
        assert!(
            s3.wait_object(&k, data.len(), Duration::from_secs(40)),
            "{k}:\n{}",
            lake.log()
        );
        assert_eq!(&s3.object(&k).unwrap(), data);
    }
    assert!(
        lake.log()
            .contains("files from before the restart are queued"),
        "{}",
        lake.log()
    );
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while !lake.spool_files().is_empty() && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(lake.spool_files().is_empty(), "{:?}", lake.spool_files());
}

#[test]
fn wrong_credentials_are_logged_and_delivery_resumes_after_rotation() {
    let dir = Scratch::new("s3-creds");
    let s3 = S3::start(&dir.0);
    let wrong_secret = "WRONG/secret/never-logged-0123456789";
    let imds = Imds::start(&dir.0, ACCESS_KEY, wrong_secret);
    let env = vec![
        ("AWS_ACCESS_KEY_ID".to_string(), None),
        ("AWS_SECRET_ACCESS_KEY".to_string(), None),
        ("AWS_SESSION_TOKEN".to_string(), None),
        (
            "AWS_EC2_METADATA_SERVICE_ENDPOINT".to_string(),
            Some(imds.endpoint()),
        ),
    ];
    let lake = Lake::start(
        &dir,
        &s3_lines(&s3, "ack = disk\nkeep_local = off\n"),
        &["dev01"],
        env,
    );
    let data = pattern(20_000, 9);
    let (code, text) = stor(lake.addr, "dev01", "c.bin", &data);
    assert_eq!(code, 226, "{text}");
    assert!(
        lake.wait_log("S3 refused the credentials", Duration::from_secs(20)),
        "{}",
        lake.log()
    );
    let k = key("dev01", "c.bin");
    assert!(s3.object(&k).is_none());
    assert_eq!(lake.spool_files().len(), 2, "nothing lost");

    imds.rotate(ACCESS_KEY, SECRET_KEY);
    assert!(
        s3.wait_object(&k, data.len(), Duration::from_secs(45)),
        "{}",
        lake.log()
    );
    assert_eq!(s3.object(&k).unwrap(), data);
    // keep_local = off: the home copy goes once S3 has the file.
    let home = dir.0.join("home/dev01/c.bin");
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while home.exists() && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!home.exists());
    let log = lake.log();
    assert!(
        !log.contains(wrong_secret) && !log.contains(SECRET_KEY),
        "a secret was logged"
    );
}

/// Unmounts the tmpfs at drop.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn full_spool_replies_452_and_stores_no_partial_object() {
    let dir = Scratch::new("s3-full");
    let spool = dir.0.join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&spool)
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        mounted,
        "cannot mount a tmpfs: the tests run as root (tests/run.sh)"
    );
    let _mount = Mount(spool.clone());
    let s3 = S3::start(&dir.0);
    let lake = Lake::start(&dir, &s3_lines(&s3, "ack = s3\n"), &["dev01"], key_env());
    let big = pattern(2 << 20, 3);
    let (code, text) = stor(lake.addr, "dev01", "big.bin", &big);
    assert_eq!(code, 452, "{text}");
    assert!(
        lake.spool_files().is_empty(),
        "half-written: {:?}",
        lake.spool_files()
    );
    assert!(s3.keys().is_empty(), "{:?}", s3.keys());
    // Service continues for files that fit.
    let small = pattern(10_000, 4);
    let (code, text) = stor(lake.addr, "dev01", "small.bin", &small);
    assert_eq!(code, 226, "{text}");
    assert_eq!(s3.object(&key("dev01", "small.bin")).unwrap(), small);
    assert_eq!(s3.keys(), vec![key("dev01", "small.bin")]);
    drop(lake);
}

/// Polls until lakeftpd exited, for up to `limit`; its exit code.
fn wait_exit(lake: &mut Lake, limit: Duration) -> Option<Option<i32>> {
    let end = std::time::Instant::now() + limit;
    while std::time::Instant::now() < end {
        if let Some(code) = lake.exited() {
            return Some(code);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// A stop that loses nothing: files acknowledged (ack = disk) while S3
/// was unreachable are still spooled at SIGTERM; the sessions are gone at
/// once (drain_timeout 1 s), but lakeftpd keeps running until S3 is back
/// and took every file, then exits 0 with an empty spool.
#[test]
fn sigterm_waits_until_the_spool_reached_s3() {
    let dir = Scratch::new("s3-stop");
    let mut s3 = S3::prepare(&dir.0);
    let mut lake = Lake::start(
        &dir,
        &s3_lines(&s3, "ack = disk\ndrain_timeout = 1s\n"),
        &["dev01"],
        key_env(),
    );
    let files: Vec<(String, Vec<u8>)> = (0..3)
        .map(|i| (format!("s{i}.csv"), pattern(2000 + i * 100, 50 + i as u64)))
        .collect();
    for (name, data) in &files {
        let (code, text) = stor(lake.addr, "dev01", name, data);
        assert_eq!(code, 226, "{text}");
    }
    assert!(!lake.spool_files().is_empty());
    lake.signal("TERM");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        lake.exited(),
        None,
        "exited with files in the spool:\n{}",
        lake.log()
    );
    assert!(lake.log().contains("drain_spool_timeout"), "{}", lake.log());
    s3.run();
    let code = wait_exit(&mut lake, Duration::from_secs(60));
    assert_eq!(code, Some(Some(0)), "{}", lake.log());
    assert!(lake.spool_files().is_empty(), "{:?}", lake.spool_files());
    for (name, data) in &files {
        assert_eq!(
            s3.object(&key("dev01", name)).as_ref(),
            Some(data),
            "{name}"
        );
    }
    assert!(lake.log().contains("spool flushed to S3"), "{}", lake.log());
}

/// The wait is bounded: with S3 gone for good, the stop ends after
/// drain_spool_timeout, logs what it left, and the files stay spooled.
#[test]
fn sigterm_with_s3_gone_stops_after_drain_spool_timeout_and_says_what_is_left() {
    let dir = Scratch::new("s3-stop-bound");
    let s3 = S3::prepare(&dir.0);
    let mut lake = Lake::start(
        &dir,
        &s3_lines(
            &s3,
            "ack = disk\ndrain_timeout = 1s\ndrain_spool_timeout = 2s\n",
        ),
        &["dev01"],
        key_env(),
    );
    let (code, text) = stor(lake.addr, "dev01", "left.csv", &pattern(500, 3));
    assert_eq!(code, 226, "{text}");
    let started = std::time::Instant::now();
    lake.signal("TERM");
    let code = wait_exit(&mut lake, Duration::from_secs(30));
    assert_eq!(code, Some(Some(0)), "{}", lake.log());
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert!(
        lake.log()
            .contains("stopping with 1 files still in the spool"),
        "{}",
        lake.log()
    );
    // And by name (the file waits for its next retry).
    assert!(
        lake.log()
            .contains("left in the spool: user=dev01 path=\"/left.csv\" key=\"user=dev01/dt="),
        "{}",
        lake.log()
    );
    assert!(!lake.spool_files().is_empty());
}

/// The default key keeps every upload: a logger that writes LOG.CSV twice
/// in a day gets two objects, both in the Hive partitions the Glue table
/// reads (`user=NAME/dt=YYYY-MM-DD/`), named by time of day, a unique part
/// and the device's file name.
#[test]
fn two_uploads_of_one_name_on_one_day_get_two_keys_by_default() {
    let dir = Scratch::new("s3-default-key");
    let s3 = S3::start(&dir.0);
    let lake = Lake::start(
        &dir,
        &format!(
            "s3_bucket = {}\ns3_endpoint = {}\n",
            s3::BUCKET,
            s3.endpoint()
        ),
        &["dev01"],
        key_env(),
    );
    let (first, second) = (pattern(900, 1), pattern(901, 2));
    for data in [&first, &second] {
        let (code, text) = stor(lake.addr, "dev01", "LOG.CSV", data);
        assert_eq!(code, 226, "{text}");
    }
    let keys = s3.keys();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let prefix = format!("user=dev01/dt={}/", day());
    for key in &keys {
        let name = key.strip_prefix(&prefix).unwrap_or_else(|| panic!("{key}"));
        assert!(!name.contains('/') && name.ends_with("-LOG.CSV"), "{key}");
        // HHMMSS, then the unique part.
        assert!(name[..6].bytes().all(|b| b.is_ascii_digit()), "{key}");
    }
    let mut stored: Vec<Vec<u8>> = keys.iter().map(|k| s3.object(k).unwrap()).collect();
    stored.sort_by_key(|d| d.len());
    assert_eq!(stored, vec![first, second]);
}

/// SECURITY: every instance applies the bans it reads below
/// `ban_share_prefix`. With a key template such as `{user}/{path}`, a
/// device whose user is named like the prefix's first folder could store
/// a bans text there and ban clients across the fleet: such an upload is
/// refused (553) and nothing is written below the prefix.
#[test]
fn an_upload_whose_key_falls_under_the_bans_prefix_is_refused() {
    let dir = Scratch::new("s3-bans-reserved");
    let s3 = S3::start(&dir.0);
    let lake = Lake::start(
        &dir,
        &format!(
            "s3_bucket = {}\ns3_endpoint = {}\ns3_key = {{user}}/{{path}}\n",
            s3::BUCKET,
            s3.endpoint()
        ),
        &["lakeftpd"],
        key_env(),
    );
    let mut c = common::Control::login(lake.addr, "lakeftpd");
    assert_eq!(c.cmd("MKD bans").0, 257);
    drop(c);
    let text = b"203.0.113.0/24 4102444800 fleet\n".to_vec();
    let (code, reply) = stor(
        lake.addr,
        "lakeftpd",
        "bans/i-0123456789abcdef0.bans",
        &text,
    );
    assert_eq!(code, 553, "{reply}");
    assert!(reply.contains("ban_share_prefix"), "{reply}");
    let keys = s3.keys();
    assert!(
        keys.iter().all(|k| !k.starts_with("lakeftpd/bans/")),
        "{keys:?}"
    );
    // The same user's other files are delivered as before.
    let (code, reply) = stor(lake.addr, "lakeftpd", "readings.csv", b"t,v\n1,2\n");
    assert_eq!(code, 226, "{reply}");
    assert!(s3.wait_object("lakeftpd/readings.csv", 8, Duration::from_secs(20)));
}
