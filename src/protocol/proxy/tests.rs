//! The PROXY header parsers' table: one case per rule of the spec.

use super::v2::V2_FIXED;
use super::*;
use crate::limits::{MAX_PROXY_HEADER, PROXY_V1_MAX};
use std::net::Ipv6Addr;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn proxied(src: &str, dst: &str) -> Header {
    Header::Proxied {
        source: addr(src),
        destination: addr(dst),
    }
}

/// A v2 header: ver_cmd, fam, then the block (addresses + TLVs).
fn v2(ver_cmd: u8, fam: u8, block: &[u8]) -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.push(ver_cmd);
    h.push(fam);
    h.extend_from_slice(&(block.len() as u16).to_be_bytes());
    h.extend_from_slice(block);
    h
}

/// IPv4 block: 192.0.2.10:40000 -> 198.51.100.1:21.
fn v4_block() -> Vec<u8> {
    let mut b = vec![192, 0, 2, 10, 198, 51, 100, 1];
    b.extend_from_slice(&40000u16.to_be_bytes());
    b.extend_from_slice(&21u16.to_be_bytes());
    b
}

fn tlv(kind: u8, value: &[u8]) -> Vec<u8> {
    let mut t = vec![kind];
    t.extend_from_slice(&(value.len() as u16).to_be_bytes());
    t.extend_from_slice(value);
    t
}

// --- version 1 -------------------------------------------------------

#[test]
fn v1_tcp4() {
    let h = b"PROXY TCP4 192.0.2.10 198.51.100.1 40000 21\r\n";
    assert_eq!(
        parse_v1(h),
        Ok(Some((
            proxied("192.0.2.10:40000", "198.51.100.1:21"),
            h.len()
        )))
    );
}

#[test]
fn v1_tcp6() {
    let h = b"PROXY TCP6 2001:db8::1 2001:db8::2 40000 21\r\n";
    assert_eq!(
        parse_v1(h),
        Ok(Some((
            proxied("[2001:db8::1]:40000", "[2001:db8::2]:21"),
            h.len()
        )))
    );
}

#[test]
fn v1_followed_by_a_command_reports_only_the_header_length() {
    let h = b"PROXY TCP4 192.0.2.10 198.51.100.1 40000 21\r\nUSER a\r\n";
    assert_eq!(parse_v1(h).unwrap().unwrap().1, h.len() - 8);
}

#[test]
fn v1_unknown_uses_real_endpoints() {
    assert_eq!(
        parse_v1(b"PROXY UNKNOWN\r\n"),
        Ok(Some((Header::Local, 15)))
    );
}

#[test]
fn v1_unknown_with_trailing_fields() {
    let h = b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
    assert_eq!(parse_v1(h), Ok(Some((Header::Local, h.len()))));
}

#[test]
fn v1_partial_prefix_wants_more() {
    assert_eq!(parse_v1(b"PRO"), Ok(None));
}

#[test]
fn v1_empty_wants_more() {
    assert_eq!(parse_v1(b""), Ok(None));
}

#[test]
fn v1_without_line_end_wants_more() {
    assert_eq!(parse_v1(b"PROXY TCP4 192.0.2.10 198.51.100.1 4"), Ok(None));
}

#[test]
fn v1_ftp_command_is_not_a_header() {
    assert_eq!(parse_v1(b"USER a\r\n"), Err(Refusal::NoSignature));
}

#[test]
fn v1_lowercase_signature_refused() {
    assert_eq!(parse_v1(b"proxy TCP4"), Err(Refusal::NoSignature));
}

#[test]
fn v1_longer_than_107_bytes_refused() {
    let mut h = b"PROXY UNKNOWN ".to_vec();
    h.resize(PROXY_V1_MAX, b'x');
    assert_eq!(parse_v1(&h), Err(Refusal::TooLong));
}

#[test]
fn v1_exactly_107_bytes_accepted() {
    let mut h = b"PROXY UNKNOWN ".to_vec();
    h.resize(PROXY_V1_MAX - 2, b'x');
    h.extend_from_slice(b"\r\n");
    assert_eq!(parse_v1(&h), Ok(Some((Header::Local, PROXY_V1_MAX))));
}

#[test]
fn v1_bare_lf_refused() {
    assert!(matches!(
        parse_v1(b"PROXY TCP4 192.0.2.10 198.51.100.1 40000 21\n"),
        Err(Refusal::Malformed(_))
    ));
}

#[test]
fn v1_double_space_refused() {
    assert!(matches!(
        parse_v1(b"PROXY TCP4  192.0.2.10 198.51.100.1 40000 21\r\n"),
        Err(Refusal::Malformed(_))
    ));
}

#[test]
fn v1_missing_field_refused() {
    assert!(matches!(
        parse_v1(b"PROXY TCP4 192.0.2.10 198.51.100.1 40000\r\n"),
        Err(Refusal::Malformed(_))
    ));
}

#[test]
fn v1_extra_field_refused() {
    assert!(matches!(
        parse_v1(b"PROXY TCP4 192.0.2.10 198.51.100.1 40000 21 x\r\n"),
        Err(Refusal::Malformed(_))
    ));
}

#[test]
fn v1_unknown_protocol_refused() {
    assert!(matches!(
        parse_v1(b"PROXY UDP4 192.0.2.10 198.51.100.1 40000 21\r\n"),
        Err(Refusal::Malformed(_))
    ));
}

#[test]
fn v1_ipv6_address_under_tcp4_refused() {
    assert!(matches!(
        parse_v1(b"PROXY TCP4 2001:db8::1 198.51.100.1 40000 21\r\n"),
        Err(Refusal::Malformed(_))
    ));
}

#[test]
fn v1_ipv4_leading_zero_refused() {
    assert!(matches!(
        parse_v1(b"PROXY TCP4 192.0.2.010 198.51.100.1 40000 21\r\n"),
        Err(Refusal::Malformed(_))
    ));
}

#[test]
fn v1_port_above_65535_refused() {
    assert!(matches!(
        parse_v1(b"PROXY TCP4 192.0.2.10 198.51.100.1 65536 21\r\n"),
        Err(Refusal::Malformed(_))
    ));
}

#[test]
fn v1_port_with_sign_refused() {
    assert!(matches!(
        parse_v1(b"PROXY TCP4 192.0.2.10 198.51.100.1 +4000 21\r\n"),
        Err(Refusal::Malformed(_))
    ));
}

#[test]
fn v1_port_with_leading_zero_refused() {
    assert!(matches!(
        parse_v1(b"PROXY TCP4 192.0.2.10 198.51.100.1 040000 21\r\n"),
        Err(Refusal::Malformed(_))
    ));
}

#[test]
fn v1_non_ascii_refused() {
    assert!(matches!(
        parse_v1(b"PROXY TCP4 \xff 198.51.100.1 40000 21\r\n"),
        Err(Refusal::Malformed(_))
    ));
}

#[test]
fn v1_refuses_a_v2_header() {
    assert_eq!(
        parse_v1(&v2(0x21, 0x11, &v4_block())),
        Err(Refusal::NoSignature)
    );
}

// --- version 2 -------------------------------------------------------

#[test]
fn v2_ipv4() {
    let h = v2(0x21, 0x11, &v4_block());
    assert_eq!(
        parse_v2(&h),
        Ok(Some((proxied("192.0.2.10:40000", "198.51.100.1:21"), 28)))
    );
}

#[test]
fn v2_ipv6() {
    let mut block = Vec::new();
    block.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    block.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
    block.extend_from_slice(&40000u16.to_be_bytes());
    block.extend_from_slice(&21u16.to_be_bytes());
    let h = v2(0x21, 0x21, &block);
    assert_eq!(
        parse_v2(&h),
        Ok(Some((
            proxied("[2001:db8::1]:40000", "[2001:db8::2]:21"),
            52
        )))
    );
}

#[test]
fn v2_local_is_accepted_without_addresses() {
    assert_eq!(
        parse_v2(&v2(0x20, 0x00, &[])),
        Ok(Some((Header::Local, 16)))
    );
}

#[test]
fn v2_local_with_addresses_ignores_them() {
    assert_eq!(
        parse_v2(&v2(0x20, 0x11, &v4_block())),
        Ok(Some((Header::Local, 28)))
    );
}

#[test]
fn v2_aws_vpce_tlv_skipped() {
    // What an NLB sends for PrivateLink: 0xEA, subtype 0x01, endpoint id.
    let mut block = v4_block();
    let mut value = vec![0x01];
    value.extend_from_slice(b"vpce-08d2bf15fac5001c9");
    block.extend(tlv(0xEA, &value));
    let h = v2(0x21, 0x11, &block);
    assert_eq!(
        parse_v2(&h),
        Ok(Some((
            proxied("192.0.2.10:40000", "198.51.100.1:21"),
            h.len()
        )))
    );
}

#[test]
fn v2_crc32c_and_noop_tlvs_skipped() {
    let mut block = v4_block();
    block.extend(tlv(0x03, &[1, 2, 3, 4]));
    block.extend(tlv(0x04, &[0; 7]));
    let h = v2(0x21, 0x11, &block);
    assert_eq!(parse_v2(&h).unwrap().unwrap().1, h.len());
}

#[test]
fn v2_empty_tlv_skipped() {
    let mut block = v4_block();
    block.extend(tlv(0x04, &[]));
    assert!(parse_v2(&v2(0x21, 0x11, &block)).unwrap().is_some());
}

#[test]
fn v2_followed_by_a_command_reports_only_the_header_length() {
    let mut h = v2(0x21, 0x11, &v4_block());
    h.extend_from_slice(b"USER a\r\n");
    assert_eq!(parse_v2(&h).unwrap().unwrap().1, 28);
}

#[test]
fn v2_signature_prefix_wants_more() {
    assert_eq!(parse_v2(&V2_SIGNATURE[..5]), Ok(None));
}

#[test]
fn v2_empty_wants_more() {
    assert_eq!(parse_v2(&[]), Ok(None));
}

#[test]
fn v2_truncated_addresses_want_more() {
    let h = v2(0x21, 0x11, &v4_block());
    assert_eq!(parse_v2(&h[..20]), Ok(None));
}

#[test]
fn v2_truncated_fixed_part_wants_more() {
    let h = v2(0x21, 0x11, &v4_block());
    assert_eq!(parse_v2(&h[..14]), Ok(None));
}

#[test]
fn v2_ftp_command_is_not_a_header() {
    assert_eq!(parse_v2(b"USER a\r\n"), Err(Refusal::NoSignature));
}

#[test]
fn v2_refuses_a_v1_header() {
    assert_eq!(
        parse_v2(b"PROXY TCP4 192.0.2.10 198.51.100.1 40000 21\r\n"),
        Err(Refusal::NoSignature)
    );
}

#[test]
fn v2_wrong_version_refused_before_the_rest_arrives() {
    let h = v2(0x11, 0x11, &v4_block());
    assert!(matches!(parse_v2(&h[..13]), Err(Refusal::Malformed(_))));
}

#[test]
fn v2_unknown_command_refused() {
    assert!(matches!(
        parse_v2(&v2(0x22, 0x11, &v4_block())),
        Err(Refusal::Malformed(_))
    ));
}

#[test]
fn v2_oversized_length_refused_at_once() {
    // The length field says 60000: refused without waiting for the bytes.
    let mut h = V2_SIGNATURE.to_vec();
    h.extend_from_slice(&[0x21, 0x11]);
    h.extend_from_slice(&60000u16.to_be_bytes());
    assert_eq!(parse_v2(&h), Err(Refusal::TooLong));
}

#[test]
fn v2_largest_allowed_header_accepted() {
    let mut block = v4_block();
    let pad = MAX_PROXY_HEADER - V2_FIXED - block.len() - 3;
    block.extend(tlv(0x04, &vec![0; pad]));
    let h = v2(0x21, 0x11, &block);
    assert_eq!(h.len(), MAX_PROXY_HEADER);
    assert!(parse_v2(&h).unwrap().is_some());
}

#[test]
fn v2_one_byte_over_the_limit_refused() {
    let mut block = v4_block();
    let pad = MAX_PROXY_HEADER - V2_FIXED - block.len() - 3 + 1;
    block.extend(tlv(0x04, &vec![0; pad]));
    assert_eq!(parse_v2(&v2(0x21, 0x11, &block)), Err(Refusal::TooLong));
}

#[test]
fn v2_length_shorter_than_ipv4_addresses_refused() {
    assert!(matches!(
        parse_v2(&v2(0x21, 0x11, &v4_block()[..8])),
        Err(Refusal::Malformed(_))
    ));
}

#[test]
fn v2_length_shorter_than_ipv6_addresses_refused() {
    assert!(matches!(
        parse_v2(&v2(0x21, 0x21, &v4_block())),
        Err(Refusal::Malformed(_))
    ));
}

#[test]
fn v2_truncated_tlv_header_refused() {
    let mut block = v4_block();
    block.extend_from_slice(&[0x04, 0x00]);
    assert!(matches!(
        parse_v2(&v2(0x21, 0x11, &block)),
        Err(Refusal::Malformed(_))
    ));
}

#[test]
fn v2_tlv_running_past_the_header_refused() {
    let mut block = v4_block();
    block.extend_from_slice(&[0xEA, 0x00, 0x10, 0x01]);
    assert!(matches!(
        parse_v2(&v2(0x21, 0x11, &block)),
        Err(Refusal::Malformed(_))
    ));
}

#[test]
fn v2_udp_refused() {
    assert!(matches!(
        parse_v2(&v2(0x21, 0x12, &v4_block())),
        Err(Refusal::Unsupported(_))
    ));
}

#[test]
fn v2_unix_socket_refused() {
    assert!(matches!(
        parse_v2(&v2(0x21, 0x31, &[0; 216])),
        Err(Refusal::Unsupported(_))
    ));
}

#[test]
fn v2_proxy_with_unspec_family_refused() {
    assert!(matches!(
        parse_v2(&v2(0x21, 0x01, &[])),
        Err(Refusal::Unsupported(_))
    ));
}

#[test]
fn v2_unknown_family_refused() {
    assert!(matches!(
        parse_v2(&v2(0x21, 0x41, &v4_block())),
        Err(Refusal::Malformed(_))
    ));
}

#[test]
fn dispatch_by_version() {
    assert_eq!(
        parse(Version::V1, b"PROXY UNKNOWN\r\n").unwrap().unwrap().0,
        Header::Local
    );
    assert_eq!(
        parse(Version::V2, &v2(0x20, 0, &[])).unwrap().unwrap().0,
        Header::Local
    );
}
