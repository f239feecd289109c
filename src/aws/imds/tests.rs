//! The tables of the IMDS module: endpoint and patience variables, statuses,
//! backoff, metadata values, the PASV address.

use super::client::{
    backoff, classify, parse_endpoint, parse_patience, Action, Error, DEFAULT_ENDPOINT,
};
use super::*;
use std::time::Duration;

#[test]
fn endpoint_defaults_to_the_link_local_address() {
    assert_eq!(parse_endpoint(None).unwrap(), "http://169.254.169.254");
}

#[test]
fn endpoint_empty_is_the_default() {
    assert_eq!(parse_endpoint(Some(" ")).unwrap(), DEFAULT_ENDPOINT);
}

#[test]
fn endpoint_with_port() {
    // The form the AWS SDKs document for the variable.
    assert_eq!(
        parse_endpoint(Some("http://127.0.0.1:8111")).unwrap(),
        "http://127.0.0.1:8111"
    );
}

#[test]
fn endpoint_trailing_slash_dropped() {
    // Paths are appended as /latest/...; a double slash would be a different path.
    assert_eq!(
        parse_endpoint(Some("http://127.0.0.1:8111/")).unwrap(),
        "http://127.0.0.1:8111"
    );
}

#[test]
fn endpoint_ipv6() {
    // The IPv6 IMDS endpoint (Nitro instances).
    assert_eq!(
        parse_endpoint(Some("http://[fd00:ec2::254]")).unwrap(),
        "http://[fd00:ec2::254]"
    );
}

#[test]
fn endpoint_https_refused() {
    // IMDS speaks plain HTTP, and this build has no TLS for it.
    assert!(parse_endpoint(Some("https://169.254.169.254")).is_err());
}

#[test]
fn endpoint_with_path_refused() {
    // A path would be silently replaced by /latest/...
    assert!(parse_endpoint(Some("http://127.0.0.1:8111/imds")).is_err());
}

#[test]
fn endpoint_without_scheme_refused() {
    assert!(parse_endpoint(Some("127.0.0.1:8111")).is_err());
}

#[test]
fn endpoint_with_credentials_refused() {
    // user@host would be a confusing way to point the token elsewhere.
    assert!(parse_endpoint(Some("http://user@127.0.0.1")).is_err());
}

#[test]
fn patience_default() {
    assert_eq!(parse_patience(None).unwrap(), limits::IMDS_PATIENCE);
}

#[test]
fn patience_override() {
    assert_eq!(parse_patience(Some("2s")).unwrap(), Duration::from_secs(2));
}

#[test]
fn patience_needs_a_unit() {
    assert!(parse_patience(Some("2")).is_err());
}

#[test]
fn classify_table() {
    // (status, action, why)
    let table = [
        (200, Action::Done, "the value"),
        (404, Action::Absent, "no user-data, no public IPv4"),
        (
            401,
            Action::Renew,
            "token invalid or expired: get a new one",
        ),
        (503, Action::Retry, "documented: try again"),
        (500, Action::Retry, "server fault at boot"),
        (429, Action::Retry, "throttled"),
        (
            400,
            Action::Fail,
            "our PUT is not valid: retrying cannot help",
        ),
        (403, Action::Fail, "IMDS turned off or X-Forwarded-For"),
        (301, Action::Fail, "IMDS never redirects"),
    ];
    for (status, action, why) in table {
        assert_eq!(classify(status), action, "{status}: {why}");
    }
}

#[test]
fn backoff_doubles_then_caps() {
    assert_eq!(backoff(1), Duration::from_millis(100));
    assert_eq!(backoff(2), Duration::from_millis(200));
    assert_eq!(backoff(4), Duration::from_millis(800));
    assert_eq!(backoff(7), limits::IMDS_BACKOFF_MAX);
    assert_eq!(backoff(u32::MAX), limits::IMDS_BACKOFF_MAX);
}

#[test]
fn instance_id_forms() {
    assert!(parse_instance_id("i-0123456789abcdef0").is_ok());
    assert!(parse_instance_id("i-12345678").is_ok(), "old 8-digit ids");
    assert!(
        parse_instance_id("i-0123/../x").is_err(),
        "would shape S3 keys"
    );
    assert!(parse_instance_id("0123456789abcdef0").is_err());
    assert!(parse_instance_id("i-").is_err());
}

#[test]
fn zone_forms() {
    assert!(parse_zone("ap-northeast-1a").is_ok());
    assert!(parse_zone("us-east-1-bos-1a").is_ok(), "Local Zones");
    assert!(parse_zone("").is_err());
    assert!(parse_zone("ap northeast").is_err());
}

#[test]
fn ipv4_forms() {
    assert_eq!(parse_ipv4("203.0.113.9"), Ok(Ipv4Addr::new(203, 0, 113, 9)));
    assert!(parse_ipv4("2001:db8::1").is_err());
    assert!(parse_ipv4("").is_err());
}

const PUBLIC: Option<Ipv4Addr> = Some(Ipv4Addr::new(203, 0, 113, 9));
const LOCAL: Option<Ipv4Addr> = Some(Ipv4Addr::new(10, 0, 1, 5));

#[test]
fn imds_prefers_the_public_address() {
    assert_eq!(
        pasv_address(&PublicAddress::Imds, PUBLIC, LOCAL),
        Ok(PUBLIC.map(IpAddr::V4))
    );
}

#[test]
fn imds_without_public_address_uses_the_private_one() {
    assert_eq!(
        pasv_address(&PublicAddress::Imds, None, LOCAL),
        Ok(LOCAL.map(IpAddr::V4))
    );
}

#[test]
fn imds_private_ignores_the_public_address() {
    assert_eq!(
        pasv_address(&PublicAddress::ImdsPrivate, PUBLIC, LOCAL),
        Ok(LOCAL.map(IpAddr::V4))
    );
}

#[test]
fn imds_without_any_ipv4_is_an_error() {
    assert!(pasv_address(&PublicAddress::Imds, None, None).is_err());
    assert!(pasv_address(&PublicAddress::ImdsPrivate, PUBLIC, None).is_err());
}

#[test]
fn local_and_fixed_need_no_imds_address() {
    assert_eq!(pasv_address(&PublicAddress::Local, PUBLIC, LOCAL), Ok(None));
    let fixed = PublicAddress::Fixed("198.51.100.1".parse().unwrap());
    assert_eq!(pasv_address(&fixed, PUBLIC, LOCAL), Ok(None));
}

#[test]
fn unreachable_is_one_line() {
    let e = Error::Unreachable {
        endpoint: DEFAULT_ENDPOINT.into(),
        tried: Duration::from_millis(60_200),
        attempts: 17,
        last: "connection refused".into(),
    };
    let line = e.to_string();
    assert!(!line.contains('\n'));
    assert!(line.contains("tried for 60.2s (17 attempts)"), "{line}");
}
