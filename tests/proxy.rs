//! PROXY protocol on the control connection, against the real binary: the
//! header's address is the client everywhere (logs, per-IP caps, PORT and
//! passive peer checks); headers from elsewhere or malformed ones close the
//! connection and are counted; the header may follow the greeting.

mod common;
#[path = "common/http.rs"]
mod http;

use common::{Control, Server, PASSWORD};
use http::{connect_raw, health_addr, nlb_tlvs, scrape, v2_header, v2_local};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

fn v2_server(extra: &str) -> Server {
    Server::start(
        &format!(
            "proxy_protocol = v2\nproxy_from = 127.0.0.0/8\nhealth_listen = 127.0.0.1:0\n{extra}"
        ),
        &[("dev", "upload,read")],
    )
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Connects, sends `header` first, returns the control client after 220.
fn open_with(server: &Server, header: &[u8]) -> Control {
    let mut c = Control::connect(server.addr);
    c.send_raw(header).unwrap();
    let (code, text) = c.reply();
    assert_eq!(code, 220, "{text}\n{}", server.log());
    c
}

fn login(c: &mut Control) {
    assert_eq!(c.cmd("USER dev").0, 331);
    assert_eq!(c.cmd(&format!("PASS {PASSWORD}")).0, 230);
}

#[test]
fn v2_header_names_the_client_in_the_log() {
    let server = v2_server("");
    let mut c = open_with(
        &server,
        &v2_header(addr("192.0.2.10:40000"), server.addr, &[]),
    );
    login(&mut c);
    server.wait_log(
        "login ok client=192.0.2.10:40000 user=dev",
        Duration::from_secs(5),
    );
}

#[test]
fn v2_header_with_nlb_tlvs_is_accepted() {
    let server = v2_server("");
    let mut c = open_with(
        &server,
        &v2_header(addr("198.51.100.7:5000"), server.addr, &nlb_tlvs()),
    );
    login(&mut c);
    server.wait_log(
        "session start client=198.51.100.7:5000",
        Duration::from_secs(5),
    );
}

#[test]
fn v2_local_keeps_the_peer_as_client() {
    let server = v2_server("");
    let mut c = open_with(&server, &v2_local());
    login(&mut c);
    server.wait_log("login ok client=127.0.0.1:", Duration::from_secs(5));
}

#[test]
fn v1_header_from_curl_is_accepted() {
    let server = Server::start(
        "proxy_protocol = v1\nproxy_from = 127.0.0.1\n",
        &[("dev", "upload,read")],
    );
    std::fs::create_dir_all(server.home("dev")).unwrap();
    std::fs::write(server.home("dev").join("seen.txt"), b"x").unwrap();
    // curl sends `PROXY TCP4 127.0.0.1 127.0.0.1 PORT PORT` on connect. It
    // sends one on its data connections too (unlike a balancer), so only a
    // command without a data connection is used: -I (SIZE and MDTM).
    let (ok, out, err) = common::run(
        "curl",
        &[
            "-sS",
            "--haproxy-protocol",
            "-I",
            &format!("{}/seen.txt", server.url("dev")),
        ],
        None,
        None,
    );
    assert!(ok, "{err}\n{}", server.log());
    assert!(out.contains("Content-Length: 1"), "{out}");
    server.wait_log("login ok client=127.0.0.1:", Duration::from_secs(5));
}

#[test]
fn v1_header_in_front_of_a_command_after_the_greeting() {
    let server = Server::start(
        "proxy_protocol = v1\nproxy_from = 127.0.0.1\nproxy_header_timeout = 200ms\n",
        &[("dev", "upload")],
    );
    let mut c = Control::connect(server.addr);
    assert_eq!(c.reply().0, 220);
    c.send_raw(b"PROXY TCP4 203.0.113.9 127.0.0.1 41000 21\r\nUSER dev\r\n")
        .unwrap();
    assert_eq!(c.reply().0, 331);
    server.wait_log(
        "session start client=203.0.113.9:41000",
        Duration::from_secs(5),
    );
}

#[test]
fn header_after_the_greeting_with_the_first_command() {
    // An NLB sends the header only with the client's first bytes.
    let server = v2_server("proxy_header_timeout = 300ms\n");
    let started = Instant::now();
    let mut c = Control::connect(server.addr);
    let (code, _) = c.reply();
    let waited = started.elapsed();
    assert_eq!(code, 220);
    assert!(
        waited >= Duration::from_millis(250),
        "greeted after {waited:?}, before proxy_header_timeout"
    );
    assert!(waited < Duration::from_secs(3), "greeted after {waited:?}");
    let mut first = v2_header(addr("192.0.2.44:1234"), server.addr, &nlb_tlvs());
    first.extend_from_slice(b"USER dev\r\n");
    c.send_raw(&first).unwrap();
    assert_eq!(c.reply().0, 331);
    assert_eq!(c.cmd(&format!("PASS {PASSWORD}")).0, 230);
    server.wait_log("login ok client=192.0.2.44:1234", Duration::from_secs(5));
    // Exactly one greeting was sent.
    assert_eq!(c.cmd("NOOP").0, 200);
}

#[test]
fn header_split_across_writes() {
    let server = v2_server("");
    let header = v2_header(addr("192.0.2.45:1234"), server.addr, &nlb_tlvs());
    let mut s = connect_raw(server.addr);
    for chunk in header.chunks(5) {
        s.write_all(chunk).unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"220 "));
    server.wait_log(
        "session start client=192.0.2.45:1234",
        Duration::from_secs(5),
    );
}

#[test]
fn connection_from_outside_proxy_from_is_closed_and_counted() {
    let server = Server::start(
        "proxy_protocol = v2\nproxy_from = 10.0.0.0/8\nhealth_listen = 127.0.0.1:0\n",
        &[("dev", "upload")],
    );
    let health = health_addr(&server);
    let mut c = Control::connect(server.addr);
    // Even a valid header is not believed from here.
    c.send_raw(&v2_header(addr("192.0.2.10:1"), server.addr, &[]))
        .unwrap();
    assert!(c.closed_within(Duration::from_secs(5)));
    assert_eq!(scrape(health, "lakeftpd_proxy_refused_source_total"), 1);
    assert_eq!(scrape(health, "lakeftpd_sessions_total"), 0);
}

#[test]
fn malformed_header_is_closed_and_counted() {
    let server = v2_server("");
    let health = health_addr(&server);
    let mut bad = v2_header(addr("192.0.2.10:1"), server.addr, &[]);
    bad[12] = 0x22; // neither LOCAL nor PROXY
    let mut c = Control::connect(server.addr);
    c.send_raw(&bad).unwrap();
    assert!(c.closed_within(Duration::from_secs(5)));
    assert_eq!(scrape(health, "lakeftpd_proxy_header_rejected_total"), 1);
}

#[test]
fn command_instead_of_header_is_closed_and_counted() {
    let server = v2_server("proxy_header_timeout = 200ms\n");
    let health = health_addr(&server);
    let mut c = Control::connect(server.addr);
    assert_eq!(c.reply().0, 220);
    c.send("USER dev");
    assert!(c.closed_within(Duration::from_secs(5)));
    assert_eq!(scrape(health, "lakeftpd_proxy_header_rejected_total"), 1);
}

#[test]
fn oversized_header_is_closed_and_counted() {
    let server = v2_server("");
    let health = health_addr(&server);
    let mut h = v2_header(addr("192.0.2.10:1"), server.addr, &[]);
    h[14..16].copy_from_slice(&4000u16.to_be_bytes());
    let mut c = Control::connect(server.addr);
    c.send_raw(&h).unwrap();
    assert!(c.closed_within(Duration::from_secs(5)));
    assert_eq!(scrape(health, "lakeftpd_proxy_header_rejected_total"), 1);
}

#[test]
fn no_header_before_the_login_timeout_is_closed_and_counted() {
    let server = v2_server("proxy_header_timeout = 100ms\nlogin_timeout = 1s\n");
    let health = health_addr(&server);
    let mut c = Control::connect(server.addr);
    assert_eq!(c.reply().0, 220);
    let started = Instant::now();
    assert!(c.closed_within(Duration::from_secs(5)));
    assert!(started.elapsed() >= Duration::from_millis(800));
    assert_eq!(scrape(health, "lakeftpd_proxy_header_rejected_total"), 1);
}

#[test]
fn per_ip_limit_counts_the_header_address() {
    let server = v2_server("max_sessions_per_ip = 1\n");
    let _first = open_with(
        &server,
        &v2_header(addr("192.0.2.7:1000"), server.addr, &[]),
    );
    // Same header address, another source port: over the cap.
    let mut second = Control::connect(server.addr);
    second
        .send_raw(&v2_header(addr("192.0.2.7:1001"), server.addr, &[]))
        .unwrap();
    assert_eq!(second.reply().0, 421);
    // Another device behind the same balancer address is not affected.
    let _third = open_with(
        &server,
        &v2_header(addr("192.0.2.8:1000"), server.addr, &[]),
    );
}

#[test]
fn port_goes_only_to_the_header_address() {
    let server = v2_server("");
    let device = "127.0.0.5";
    let mut c = open_with(
        &server,
        &v2_header(addr(&format!("{device}:40000")), server.addr, &[]),
    );
    login(&mut c);
    assert_eq!(c.cmd("TYPE I").0, 200);
    // SECURITY: the balancer-facing peer (127.0.0.1) is not the client.
    let (code, text) = c.cmd("PORT 127,0,0,1,200,10");
    assert_eq!(code, 501, "{text}");
    // The device's own address is.
    let data = TcpListener::bind((device, 0)).unwrap();
    let port = data.local_addr().unwrap().port();
    let (code, text) = c.cmd(&format!("PORT 127,0,0,5,{},{}", port >> 8, port & 0xff));
    assert_eq!(code, 200, "{text}");
    c.send("STOR active.bin");
    let (mut stream, from) = data.accept().unwrap();
    assert_eq!(from.ip().to_string(), "127.0.0.1");
    assert_eq!(c.reply().0, 150);
    let body = common::pattern(50_000, 3);
    stream.write_all(&body).unwrap();
    drop(stream);
    assert_eq!(c.reply().0, 226);
    assert_eq!(
        std::fs::read(server.home("dev").join("active.bin")).unwrap(),
        body
    );
    assert_eq!(
        scrape(
            health_addr(&server),
            "lakeftpd_port_refused_foreign_address_total"
        ),
        1
    );
}

#[test]
fn passive_peer_check_uses_the_header_address() {
    let server = v2_server("passive_accept_timeout = 1s\n");
    let mut c = open_with(
        &server,
        &v2_header(addr("192.0.2.10:40000"), server.addr, &[]),
    );
    login(&mut c);
    let data_addr = c.pasv();
    c.send("STOR passive.bin");
    // SECURITY: a connection from the balancer-facing address (127.0.0.1)
    // is not the client's, so it is refused.
    let mut intruder = std::net::TcpStream::connect(data_addr).unwrap();
    let _ = intruder.write_all(b"stolen");
    let (code, _) = c.reply();
    assert_eq!(code, 425);
    assert!(!server.home("dev").join("passive.bin").exists());
    assert_eq!(
        scrape(
            health_addr(&server),
            "lakeftpd_passive_refused_foreign_total"
        ),
        1
    );
}
