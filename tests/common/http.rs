//! Helpers for the health/metrics listener and PROXY headers, shared by
//! tests/proxy.rs and tests/health.rs (included with `#[path]`, so the
//! common harness stays untouched).
#![allow(dead_code)]

use super::common::Server;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The health listener's address, read back from the log.
pub fn health_addr(server: &Server) -> SocketAddr {
    health_in_log(&server.log())
}

/// The health listener's address, from a server's log.
pub fn health_in_log(log: &str) -> SocketAddr {
    let at = log
        .find("health and metrics on http://")
        .expect("health listener in the log");
    let rest = &log[at + "health and metrics on http://".len()..];
    rest[..rest.find('/').unwrap()].parse().unwrap()
}

/// One request; returns (status, body). Status 0 when the connection failed.
pub fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: test\r\nUser-Agent: t\r\n\r\n"),
    )
}

pub fn request(addr: SocketAddr, raw: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(raw.as_bytes());
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// The value of one metric line in Prometheus text.
pub fn metric(body: &str, name: &str) -> u64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{name} missing from:\n{body}"))
        .trim()
        .parse()
        .unwrap()
}

pub fn scrape(addr: SocketAddr, name: &str) -> u64 {
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200);
    metric(&body, name)
}

/// A PROXY v2 header (PROXY command, TCP over IPv4) with optional TLVs.
pub fn v2_header(src: SocketAddr, dst: SocketAddr, tlvs: &[u8]) -> Vec<u8> {
    let (SocketAddr::V4(src), SocketAddr::V4(dst)) = (src, dst) else {
        panic!("IPv4 only")
    };
    let mut h = vec![
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11,
    ];
    h.extend_from_slice(&((12 + tlvs.len()) as u16).to_be_bytes());
    h.extend_from_slice(&src.ip().octets());
    h.extend_from_slice(&dst.ip().octets());
    h.extend_from_slice(&src.port().to_be_bytes());
    h.extend_from_slice(&dst.port().to_be_bytes());
    h.extend_from_slice(tlvs);
    h
}

/// A PROXY v2 LOCAL header (what a balancer's own health check sends).
pub fn v2_local() -> Vec<u8> {
    vec![
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x20, 0x00, 0, 0,
    ]
}

/// The TLVs an NLB adds: AWS 0xEA (VPC endpoint id), CRC32C 0x03, NOOP 0x04.
pub fn nlb_tlvs() -> Vec<u8> {
    let mut t = vec![0xEA, 0x00, 0x17, 0x01];
    t.extend_from_slice(b"vpce-08d2bf15fac5001c9");
    t.extend_from_slice(&[0x03, 0x00, 0x04, 1, 2, 3, 4]);
    t.extend_from_slice(&[0x04, 0x00, 0x03, 0, 0, 0]);
    t
}

/// A raw connection that writes `bytes` at once, then reads replies.
pub fn connect_raw(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}
