//! Devices as they are, against the real binary: names in Shift_JIS and
//! other code pages (`filename_encoding`, `OPTS UTF8 ON`), folders made on
//! STOR (`auto_mkdir`), active mode to the peer's address
//! (`active_address = peer`), and the small commands device firmwares send
//! (ALLO, CLNT, MDTM/MFMT/SITE UTIME, LIST flags, 502s). Byte-exact checks
//! use a raw client that reads replies as bytes (a Shift_JIS reply is not
//! UTF-8); the S3 side runs against s3s-fs.

mod common;
#[path = "common/http.rs"]
mod http;
#[path = "common/s3.rs"]
mod s3;

use common::{password_hash, pattern, run, Scratch, Server, PASSWORD};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// `データ_2026.csv` in Shift_JIS.
const SJIS_NAME: &[u8] = b"\x83\x66\x81\x5b\x83\x5e_2026.csv";
const UTF8_NAME: &str = "データ_2026.csv";

/// A configuration with `global` lines and users given as (name, lines of
/// their section).
fn config(dir: &Scratch, global: &str, users: &[(&str, &str)]) -> String {
    let (first, last) = common::passive_range();
    let mut text = format!(
        "listen = 127.0.0.1:0\nroot = {}\npassive_ports = {first}-{last}\nlogin_fail_delay = 100ms\n{global}\n",
        dir.0.join("home").display()
    );
    for (name, lines) in users {
        let permissions = if lines.contains("permissions") {
            ""
        } else {
            "permissions = full\n"
        };
        text.push_str(&format!(
            "[user {name}]\npassword = {}\n{permissions}{lines}\n",
            password_hash()
        ));
    }
    text
}

fn start(global: &str, users: &[(&str, &str)]) -> Server {
    let dir = Scratch::new("devices");
    let text = config(&dir, global, users);
    for (name, _) in users {
        std::fs::create_dir_all(dir.0.join("home").join(name)).unwrap();
    }
    Server::start_with_text(dir, &text)
}

/// A control connection whose lines are bytes.
struct Raw {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Raw {
    fn login(addr: SocketAddr, user: &str) -> Raw {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        let mut raw = Raw { stream, reader };
        assert_eq!(raw.reply().0, 220);
        assert_eq!(raw.cmd(format!("USER {user}").as_bytes()).0, 331);
        assert_eq!(raw.cmd(format!("PASS {PASSWORD}").as_bytes()).0, 230);
        raw
    }

    fn send(&mut self, line: &[u8]) {
        let mut bytes = line.to_vec();
        bytes.extend_from_slice(b"\r\n");
        self.stream.write_all(&bytes).unwrap();
    }

    fn reply(&mut self) -> (u16, Vec<u8>) {
        let mut all = Vec::new();
        loop {
            let mut line = Vec::new();
            if self.reader.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                return (0, all);
            }
            all.extend_from_slice(&line);
            let code = std::str::from_utf8(&all[..3])
                .ok()
                .and_then(|c| c.parse().ok());
            let last = line.len() > 3 && line[3] == b' ' && line[..3] == all[..3];
            if last {
                return (code.unwrap_or(0), all);
            }
        }
    }

    fn cmd(&mut self, line: &[u8]) -> (u16, Vec<u8>) {
        self.send(line);
        self.reply()
    }

    fn pasv(&mut self) -> SocketAddr {
        let (code, text) = self.cmd(b"PASV");
        assert_eq!(code, 227);
        let text = String::from_utf8_lossy(&text);
        let inner = &text[text.find('(').unwrap() + 1..text.find(')').unwrap()];
        let n: Vec<u16> = inner.split(',').map(|x| x.parse().unwrap()).collect();
        format!("{}.{}.{}.{}:{}", n[0], n[1], n[2], n[3], n[4] * 256 + n[5])
            .parse()
            .unwrap()
    }

    /// STOR over passive: the final reply's code.
    fn stor(&mut self, name: &[u8], data: &[u8]) -> (u16, Vec<u8>) {
        let addr = self.pasv();
        let mut line = b"STOR ".to_vec();
        line.extend_from_slice(name);
        self.send(&line);
        let mut stream = TcpStream::connect(addr).unwrap();
        let (code, text) = self.reply();
        if code != 150 {
            return (code, text);
        }
        stream.write_all(data).unwrap();
        drop(stream);
        self.reply()
    }

    /// A command with a passive data connection (RETR, LIST, NLST): the
    /// bytes received and the final reply's code.
    fn fetch(&mut self, line: &[u8]) -> (Vec<u8>, u16) {
        let addr = self.pasv();
        self.send(line);
        let mut stream = TcpStream::connect(addr).unwrap();
        let (code, text) = self.reply();
        assert_eq!(code, 150, "{}", String::from_utf8_lossy(&text));
        let mut got = Vec::new();
        stream.read_to_end(&mut got).unwrap();
        (got, self.reply().0)
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn shift_jis_name_is_stored_as_utf8_and_read_back_in_shift_jis() {
    let server = start("", &[("cam", "filename_encoding = shift_jis"), ("ops", "")]);
    let data = pattern(4096, 13);
    let mut sjis = Raw::login(server.addr, "cam");
    assert_eq!(sjis.cmd(b"TYPE I").0, 200);
    let (code, text) = sjis.stor(SJIS_NAME, &data);
    assert_eq!(code, 226, "{}", String::from_utf8_lossy(&text));
    // On disk: the UTF-8 name.
    assert_eq!(
        std::fs::read(server.home("cam").join(UTF8_NAME)).unwrap(),
        data
    );
    // LIST and NLST in Shift_JIS show the Shift_JIS bytes.
    let (listing, code) = sjis.fetch(b"LIST");
    assert_eq!(code, 226);
    assert!(
        contains(&listing, SJIS_NAME),
        "{}",
        String::from_utf8_lossy(&listing)
    );
    let (names, _) = sjis.fetch(b"NLST");
    assert_eq!(names, [SJIS_NAME, b"\r\n"].concat());
    // RETR by the Shift_JIS name returns the file.
    let mut retr = b"RETR ".to_vec();
    retr.extend_from_slice(SJIS_NAME);
    let (got, code) = sjis.fetch(&retr);
    assert_eq!((got == data, code), (true, 226));
    // Replies quoting the name are in Shift_JIS too.
    let mut mkd = b"MKD ".to_vec();
    mkd.extend_from_slice(b"\x83\x66\x81\x5b\x83\x5e");
    let (code, text) = sjis.cmd(&mkd);
    assert_eq!(code, 257);
    assert!(
        contains(&text, b"\"/\x83\x66\x81\x5b\x83\x5e\""),
        "{text:?}"
    );
    // After OPTS UTF8 ON the same session speaks UTF-8 (RFC 2640 §3.1).
    assert_eq!(sjis.cmd(b"OPTS UTF8 ON").0, 200);
    let (names, _) = sjis.fetch(b"NLST");
    assert!(contains(&names, UTF8_NAME.as_bytes()), "{names:?}");
    // A UTF-8 user whose home holds the same file sees the UTF-8 name.
    std::fs::copy(
        server.home("cam").join(UTF8_NAME),
        server.home("ops").join(UTF8_NAME),
    )
    .unwrap();
    let mut utf8 = Raw::login(server.addr, "ops");
    assert_eq!(utf8.cmd(b"TYPE I").0, 200);
    let (names, _) = utf8.fetch(b"NLST");
    assert_eq!(names, [UTF8_NAME.as_bytes(), b"\r\n"].concat());
    let mut retr = b"RETR ".to_vec();
    retr.extend_from_slice(UTF8_NAME.as_bytes());
    assert!(utf8.fetch(&retr).0 == data, "RETR in UTF-8 differs");
}

#[test]
fn undecodable_name_is_553_naming_the_setting() {
    let server = start("", &[("cam", "filename_encoding = shift_jis"), ("dev", "")]);
    let mut sjis = Raw::login(server.addr, "cam");
    // 0x81 without its trail byte: not Shift_JIS.
    let (code, text) = sjis.cmd(b"MKD a\x81");
    assert_eq!(code, 553, "{text:?}");
    assert!(
        contains(&text, b"filename_encoding = shift_jis"),
        "{text:?}"
    );
    // A UTF-8 user sending Latin-1 bytes: 553 (not 500: the command was
    // understood), naming the setting to change.
    let mut utf8 = Raw::login(server.addr, "dev");
    let (code, text) = utf8.cmd(b"CWD caf\xe9");
    assert_eq!(code, 553, "{text:?}");
    assert!(contains(&text, b"filename_encoding"), "{text:?}");
}

#[test]
fn latin1_and_gbk_names_are_decoded() {
    let server = start(
        "",
        &[
            ("eu", "filename_encoding = latin1"),
            ("cn", "filename_encoding = gbk"),
        ],
    );
    let mut eu = Raw::login(server.addr, "eu");
    assert_eq!(eu.stor(b"caf\xe9.csv", b"x").0, 226);
    assert!(server.home("eu").join("café.csv").exists());
    let mut cn = Raw::login(server.addr, "cn");
    assert_eq!(cn.stor(b"\xd6\xd0.csv", b"y").0, 226);
    assert!(server.home("cn").join("中.csv").exists());
}

#[test]
fn global_encoding_applies_to_users_without_their_own() {
    let server = start("filename_encoding = euc-jp", &[("cam", "")]);
    let mut c = Raw::login(server.addr, "cam");
    assert_eq!(c.stor(b"\xa5\xc7.txt", b"z").0, 226);
    assert!(server.home("cam").join("デ.txt").exists());
}

#[test]
fn shift_jis_upload_lands_in_s3_as_utf8_with_clnt() {
    use s3::{key_env, Lake, S3};
    let dir = Scratch::new("devices-s3");
    let s3 = S3::start(&dir.0);
    let global = format!(
        "s3_bucket = {}\ns3_endpoint = {}\ns3_key = {{user}}/{{path}}\nfilename_encoding = shift_jis\n",
        s3::BUCKET,
        s3.endpoint()
    );
    let lake = Lake::start(&dir, &global, &["cam"], key_env());
    std::fs::create_dir_all(dir.0.join("home/cam")).unwrap();
    let mut c = Raw::login(lake.addr, "cam");
    assert_eq!(c.cmd(b"CLNT DH-IPC-HFW1230S V2.800").0, 200);
    let data = pattern(4096, 5);
    let (code, text) = c.stor(SJIS_NAME, &data);
    assert_eq!(code, 226, "{}", String::from_utf8_lossy(&text));
    let key = format!("cam/{UTF8_NAME}");
    assert_eq!(
        s3.object(&key).as_deref(),
        Some(&data[..]),
        "{:?}",
        s3.keys()
    );
    let meta = s3.metadata(&key).unwrap();
    // Metadata values are percent-encoded UTF-8 (s3.rs): the path is the
    // UTF-8 name, never Shift_JIS bytes.
    assert!(
        meta.contains("\"clnt\":\"DH-IPC-HFW1230S%20V2.800\""),
        "{meta}"
    );
    assert!(
        meta.contains("\"path\":\"/%E3%83%87%E3%83%BC%E3%82%BF_2026.csv\""),
        "{meta}"
    );
    assert!(
        lake.log().contains("CLNT \"DH-IPC-HFW1230S V2.800\""),
        "{}",
        lake.log()
    );
}

#[test]
fn auto_mkdir_makes_the_folders_a_camera_stores_into() {
    let server = start("", &[("cam", "auto_mkdir = on"), ("dev", "")]);
    let local = Scratch::new("cam-img");
    let img = local.0.join("img.jpg");
    std::fs::write(&img, pattern(5000, 3)).unwrap();
    // curl without --ftp-create-dirs, and with no CWD: one STOR of the
    // whole path into folders that do not exist, as the cameras do.
    let url = |user: &str| {
        format!(
            "ftp://{user}:{PASSWORD}@127.0.0.1:{}/2026/12/01/cam1/img.jpg",
            server.port()
        )
    };
    let (ok, _, err) = run(
        "curl",
        &[
            "-sS",
            "--ftp-method",
            "nocwd",
            "-T",
            img.to_str().unwrap(),
            &url("cam"),
        ],
        None,
        None,
    );
    assert!(ok, "{err}");
    let stored = server.home("cam").join("2026/12/01/cam1/img.jpg");
    assert_eq!(std::fs::read(stored).unwrap(), pattern(5000, 3));
    // Without auto_mkdir: refused, nothing made.
    let (ok, _, _) = run(
        "curl",
        &[
            "-sS",
            "--ftp-method",
            "nocwd",
            "-T",
            img.to_str().unwrap(),
            &url("dev"),
        ],
        None,
        None,
    );
    assert!(!ok);
    assert!(!server.home("dev").join("2026").exists());
}

#[test]
fn auto_mkdir_mkd_makes_parents_and_stays_in_the_jail() {
    let server = start("", &[("cam", "auto_mkdir = on"), ("dev", "")]);
    let outside = Scratch::new("outside");
    std::os::unix::fs::symlink(&outside.0, server.home("cam").join("out")).unwrap();
    let mut c = Raw::login(server.addr, "cam");
    assert_eq!(c.cmd(b"MKD a/b/c").0, 257);
    assert!(server.home("cam").join("a/b/c").is_dir());
    assert_eq!(c.cmd(b"MKD a/b/c").0, 550);
    // SECURITY: never through a symlink out of the home, never above it.
    assert_eq!(c.cmd(b"MKD out/x/y").0, 550);
    assert_eq!(c.stor(b"out/x/f", b"1").0, 550);
    assert_eq!(c.cmd(b"MKD ../../x").0, 550);
    assert!(std::fs::read_dir(&outside.0).unwrap().next().is_none());
    // auto_mkdir off: MKD a/b/c needs a/b.
    let mut d = Raw::login(server.addr, "dev");
    assert_eq!(d.cmd(b"MKD a/b/c").0, 550);
}

/// A listener for active-mode data: the port, and a thread that returns
/// what it receives (None when nothing connected within 5 s).
fn data_sink() -> (u16, std::thread::JoinHandle<Option<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let handle = std::thread::spawn(move || {
        let end = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < end {
            if let Ok((mut s, _)) = listener.accept() {
                s.set_nonblocking(false).unwrap();
                let mut got = Vec::new();
                s.read_to_end(&mut got).ok()?;
                return Some(got);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    });
    (port, handle)
}

#[test]
fn active_address_peer_replaces_a_private_address() {
    let server = start(
        "health_listen = 127.0.0.1:0",
        &[("nat", "active_address = peer"), ("dev", "")],
    );
    std::fs::write(server.home("nat").join("f.txt"), b"from the server").unwrap();
    let mut c = Raw::login(server.addr, "nat");
    // The device reports its private address; the data connection goes to
    // where the control connection came from (127.0.0.1), same port.
    let (port, sink) = data_sink();
    let line = format!("PORT 192,168,1,10,{},{}", port >> 8, port & 0xff);
    assert_eq!(c.cmd(line.as_bytes()).0, 200);
    c.send(b"RETR f.txt");
    assert_eq!(c.reply().0, 150);
    assert_eq!(c.reply().0, 226);
    assert_eq!(
        sink.join().unwrap().as_deref(),
        Some(&b"from the server"[..])
    );
    // EPRT with the unspecified IPv6 address (lftp on some hosts).
    let (port, sink) = data_sink();
    assert_eq!(c.cmd(format!("EPRT |2|::|{port}|").as_bytes()).0, 200);
    c.send(b"RETR f.txt");
    assert_eq!(c.reply().0, 150);
    assert_eq!(c.reply().0, 226);
    assert!(sink.join().unwrap().is_some());
    // Still no privileged port (RFC 2577).
    assert_eq!(c.cmd(b"PORT 192,168,1,10,0,21").0, 501);
    let metrics = http::health_addr(&server);
    assert_eq!(
        http::scrape(metrics, "lakeftpd_port_address_rewritten_total"),
        3
    );
    // strict (the other user, the default): refused, nothing connected.
    let mut d = Raw::login(server.addr, "dev");
    let (port, sink) = data_sink();
    let line = format!("PORT 192,168,1,10,{},{}", port >> 8, port & 0xff);
    let (code, text) = d.cmd(line.as_bytes());
    assert_eq!(code, 501, "{text:?}");
    assert_eq!(d.cmd(format!("EPRT |2|::|{port}|").as_bytes()).0, 501);
    assert!(sink.join().unwrap().is_none());
}

#[test]
fn small_commands_fleets_send() {
    let server = start("", &[("cam", ""), ("reader", "permissions = read")]);
    let home = server.home("cam");
    std::fs::write(home.join("a.jpg"), b"1").unwrap();
    let mut c = Raw::login(server.addr, "cam");
    // ALLO is 200: some cameras loop on 202.
    assert_eq!(c.cmd(b"ALLO 4096").0, 200);
    assert_eq!(c.cmd(b"CLNT Hikvision DS-2CD").0, 200);
    // Setting a file's time: MDTM's write form, MFMT, SITE UTIME.
    let (code, text) = c.cmd(b"MDTM 20200102030405 a.jpg");
    assert_eq!(code, 213, "{text:?}");
    assert_eq!(
        c.cmd(b"MDTM a.jpg"),
        (213, b"213 20200102030405\r\n".to_vec())
    );
    let (code, text) = c.cmd(b"MFMT 20210102030405 a.jpg");
    assert_eq!(
        (code, text),
        (213, b"213 Modify=20210102030405; /a.jpg\r\n".to_vec())
    );
    assert_eq!(c.cmd(b"SITE UTIME 202201020304 a.jpg").0, 200);
    assert_eq!(c.cmd(b"MDTM a.jpg").1, b"213 20220102030400\r\n");
    assert_eq!(
        c.cmd(b"SITE UTIME a.jpg 20230102030405 20230102030405 20230102030405 UTC")
            .0,
        200
    );
    assert_eq!(c.cmd(b"MDTM a.jpg").1, b"213 20230102030405\r\n");
    assert_eq!(c.cmd(b"MFMT 20211301000000 a.jpg").0, 501);
    // Recognised but not offered: 502, not 500.
    for line in [
        &b"SITE CHMOD 644 a.jpg"[..],
        b"AUTH TLS",
        b"CCC",
        b"MODE B",
        b"PBSZ 0",
    ] {
        assert_eq!(c.cmd(line).0, 502, "{}", String::from_utf8_lossy(line));
    }
    assert_eq!(c.cmd(b"XYZZ").0, 500);
    // LIST/NLST flags are flags.
    for line in [&b"LIST -a"[..], b"LIST -l", b"LIST -la", b"LIST -al"] {
        let (listing, code) = c.fetch(line);
        assert_eq!(code, 226);
        assert!(contains(&listing, b" a.jpg\r\n"), "{listing:?}");
    }
    let (names, _) = c.fetch(b"NLST -a");
    assert_eq!(names, b"a.jpg\r\n");
    // FEAT lists MFMT and CLNT; HELP lists SITE.
    let (_, feat) = c.cmd(b"FEAT");
    assert!(
        contains(&feat, b" MFMT\r\n") && contains(&feat, b" CLNT\r\n"),
        "{feat:?}"
    );
    // Only for users who may store.
    let mut r = Raw::login(server.addr, "reader");
    std::fs::write(server.home("reader").join("b"), b"2").unwrap();
    assert_eq!(r.cmd(b"MFMT 20210102030405 b").0, 550);
    server.wait_log("CLNT \"Hikvision DS-2CD\"", Duration::from_secs(5));
}
