//! Sessions as transcripts: what the client sends, what the server answers,
//! and what the home holds after.

use super::Fixture;
use crate::ops::metrics;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Every command that needs a login gets 530 before it, and changes
/// nothing: no file made, no directory, no data connection planned.
#[test]
fn commands_after_login_are_refused_before_it() {
    let f = Fixture::new();
    let mut s = f.connect();
    for line in [
        "PWD",
        "CWD /",
        "CDUP",
        "MKD made",
        "RMD made",
        "DELE a.csv",
        "RNFR a.csv",
        "RNTO b.csv",
        "SIZE a.csv",
        "MDTM a.csv",
        "MFMT 20260101000000 a.csv",
        "MLST",
        "LIST",
        "NLST",
        "MLSD",
        "RETR a.csv",
        "STOR a.csv",
        "APPE a.csv",
        "STOU",
        "REST 5",
        "ABOR",
        "PORT 127,0,0,1,200,10",
        "EPRT |1|127.0.0.1|51210|",
        "PASV",
        "EPSV",
        "TYPE I",
        "MODE S",
        "STRU F",
        "ALLO 10",
        "STAT",
    ] {
        send!(s, "{line}");
        let text = expect!(s, 530);
        assert!(text.contains("log in"), "{line}: {text}");
    }
    // Those allowed before login still work.
    send!(s, "NOOP");
    expect!(s, 200);
    send!(s, "FEAT");
    expect!(s, 211);
    assert!(f.names().is_empty(), "{:?}", f.names());
    // A failed login changes nothing either.
    send!(s, "USER {}", super::USER);
    expect!(s, 331);
    send!(s, "PASS wrong");
    expect!(s, 530);
    send!(s, "STOR a.csv");
    expect!(s, 530);
    assert!(f.names().is_empty(), "{:?}", f.names());
}

/// A passive upload lands under its name with its bytes, and reads back.
#[test]
fn passive_stor_then_retr() {
    let f = Fixture::new();
    let mut s = f.logged_in();
    send!(s, "TYPE I");
    expect!(s, 200);
    let csv = b"ts,temp\n1,20.5\n2,20.7\n";
    s.stor("a.csv", csv);
    assert_eq!(f.names(), ["a.csv"]);
    assert_eq!(std::fs::read(f.home.join("a.csv")).unwrap(), csv);
    assert_eq!(s.retr("a.csv"), csv);
    assert_eq!(metrics::get(&f.shared.metrics.uploads_ok), 1);
    assert_eq!(metrics::get(&f.shared.metrics.downloads_ok), 1);
    assert_eq!(metrics::get(&f.shared.metrics.transfers_now), 0);
}

/// A transfer uses its data channel up (vsftpd's `port_cleanup`): the next
/// transfer without PORT or PASV gets 425. A command refused before its
/// transfer starts leaves the plan for the next one.
#[test]
fn the_data_channel_is_cleared_by_each_transfer() {
    let f = Fixture::new();
    let mut s = f.logged_in();
    s.stor("a.csv", b"1\n");
    send!(s, "STOR b.csv");
    let text = expect!(s, 425);
    assert!(text.contains("PASV"), "{text}");
    s.retr("a.csv");
    send!(s, "RETR a.csv");
    expect!(s, 425);
    // Refused by its handler: no transfer, the plan stays.
    let addr = s.pasv();
    send!(s, "RETR missing.csv");
    expect!(s, 550);
    send!(s, "NLST");
    let mut data = TcpStream::connect(addr).unwrap();
    expect!(s, 150);
    let mut listing = String::new();
    std::io::Read::read_to_string(&mut data, &mut listing).unwrap();
    expect!(s, 226);
    assert_eq!(listing.trim_end(), "a.csv");
    send!(s, "NLST");
    expect!(s, 425);
    // Active mode: the same.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    send!(s, "PORT 127,0,0,1,{},{}", port >> 8, port & 0xff);
    expect!(s, 200);
    send!(s, "STOR c.csv");
    let (mut data, _) = listener.accept().unwrap();
    expect!(s, 150);
    data.write_all(b"2\n").unwrap();
    drop(data);
    expect!(s, 226);
    send!(s, "STOR d.csv");
    expect!(s, 425);
    assert_eq!(f.names(), ["a.csv", "c.csv"]);
}

/// ABOR during an upload: 426 for the transfer, 226 for the ABOR; the
/// partial file is gone (never under its name), the gauge is back to 0,
/// and the session goes on.
#[test]
fn abor_during_an_upload() {
    let f = Fixture::new();
    let mut s = f.logged_in();
    let addr = s.pasv();
    send!(s, "STOR big.bin");
    let mut data = TcpStream::connect(addr).unwrap();
    expect!(s, 150);
    data.write_all(&[7u8; 64 * 1024]).unwrap();
    // The transfer is running: its temporary exists, the gauge counts it.
    wait_for(|| metrics::get(&f.shared.metrics.transfers_now) == 1);
    send!(s, "ABOR");
    expect!(s, 426);
    expect!(s, 226);
    assert_eq!(metrics::get(&f.shared.metrics.transfers_now), 0);
    assert!(f.names().is_empty(), "{:?}", f.names());
    // The server closed the data connection (with a reset: it had not
    // read all we sent).
    data.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rest = Vec::new();
    match std::io::Read::read_to_end(&mut data, &mut rest) {
        Ok(n) => assert_eq!(n, 0),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
    }
    // The session goes on; the aborted transfer used the channel up.
    send!(s, "STOR big.bin");
    expect!(s, 425);
    s.stor("big.bin", b"small");
    assert_eq!(f.names(), ["big.bin"]);
}

/// REST n then STOR keeps the first n bytes of the file and writes the
/// new ones after them (RFC 3659 §5.3); REST survives the PASV between.
#[test]
fn rest_then_stor_resumes_an_upload() {
    let f = Fixture::new();
    let mut s = f.logged_in();
    send!(s, "TYPE I");
    expect!(s, 200);
    s.stor("log.txt", b"hello world");
    send!(s, "REST 5");
    expect!(s, 350);
    s.stor("log.txt", b", again");
    assert_eq!(
        std::fs::read(f.home.join("log.txt")).unwrap(),
        b"hello, again"
    );
    // REST applies once: the next STOR replaces the file.
    s.stor("log.txt", b"new");
    assert_eq!(std::fs::read(f.home.join("log.txt")).unwrap(), b"new");
    // REST then RETR sends the file from there.
    send!(s, "REST 1");
    expect!(s, 350);
    assert_eq!(s.retr("log.txt"), b"ew");
}

/// Waits (bounded) until `ready` holds.
fn wait_for(ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(5));
    }
}
