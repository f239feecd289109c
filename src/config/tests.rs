//! The parser's tests: whole texts in, a `Config` or its problems out.

use super::*;
use std::path::PathBuf;
use std::time::Duration;

const HASH: &str = "$6$saltsalt$hashhashhash";

fn problems(text: &str) -> Vec<Problem> {
    parse(text).expect_err("expected problems")
}

fn one_problem(text: &str) -> Problem {
    let found = problems(text);
    assert_eq!(found.len(), 1, "{found:?}");
    found.into_iter().next().unwrap()
}

#[test]
fn empty_text_gives_defaults() {
    assert_eq!(parse("").unwrap(), Config::defaults());
}

#[test]
fn comments_and_blank_lines_are_ignored() {
    let c = parse("# a comment\n\n   \nlisten = 127.0.0.1:2121  # trailing\n").unwrap();
    assert_eq!(c.listen, "127.0.0.1:2121".parse().unwrap());
}

#[test]
fn design_sketch_parses() {
    let text = format!(
        "listen = 0.0.0.0:21\nroot = /srv/ftp\nactive = on\nactive_source_port = 20\n\
         passive = on\npassive_ports = 50000-50999\npublic_address = imds\nmax_sessions = 20000\n\
         idle_timeout = 300s\n\n[user device01]\npassword = {HASH}\npermissions = upload\n"
    );
    let c = parse(&text).unwrap();
    assert_eq!(c.public_address, PublicAddress::Imds);
    assert_eq!(c.users.len(), 1);
    assert_eq!(&*c.users[0].home, std::path::Path::new("/srv/ftp/device01"));
    assert_eq!(c.users[0].permissions, Permissions::UPLOAD);
}

#[test]
fn unknown_key_is_an_error_with_its_line() {
    let p = one_problem("listen = 0.0.0.0:21\nlisten_port = 21\n");
    assert_eq!(p.line, 2);
    assert!(p.message.contains("unknown key `listen_port`"));
}

#[test]
fn every_problem_is_reported_at_once() {
    let p = problems("active = maybe\nidle_timeout = 30\nbogus = 1\n");
    assert_eq!(p.iter().map(|p| p.line).collect::<Vec<_>>(), vec![1, 2, 3]);
}

#[test]
fn duration_needs_a_unit() {
    assert!(one_problem("idle_timeout = 30\n").message.contains("unit"));
}

#[test]
fn zero_duration_refused_except_fail_delay() {
    assert!(parse("idle_timeout = 0s").is_err());
    assert_eq!(
        parse("login_fail_delay = 0s").unwrap().login_fail_delay,
        Duration::ZERO
    );
}

#[test]
fn key_set_twice_is_an_error() {
    assert_eq!(one_problem("active = on\nactive = off\n").line, 2);
}

#[test]
fn user_without_password_is_an_error() {
    let p = one_problem("[user a]\npermissions = read\n");
    assert_eq!(p.line, 1);
    assert!(p.message.contains("no `password`"));
}

#[test]
fn clear_text_password_refused() {
    assert!(one_problem("[user a]\npassword = secret\n")
        .message
        .contains("lakeftpd passwd"));
}

#[test]
fn sha256_hash_accepted() {
    assert!(parse("[user a]\npassword = $5$salt$abc\n").is_ok());
}

#[test]
fn permissions_combine() {
    let c = parse(&format!(
        "[user a]\npassword = {HASH}\npermissions = upload,read\n"
    ))
    .unwrap();
    let p = c.users[0].permissions;
    assert!(p.store && p.retrieve && p.mkdir && !p.modify);
}

#[test]
fn unknown_permission() {
    assert!(parse(&format!(
        "[user a]\npassword = {HASH}\npermissions = write\n"
    ))
    .is_err());
}

#[test]
fn user_home_override() {
    let c = parse(&format!("[user a]\npassword = {HASH}\nhome = /data/a\n")).unwrap();
    assert_eq!(&*c.users[0].home, std::path::Path::new("/data/a"));
}

#[test]
fn duplicate_user() {
    let text = format!("[user a]\npassword = {HASH}\n[user a]\npassword = {HASH}\n");
    assert_eq!(one_problem(&text).line, 3);
}

#[test]
fn bad_user_name() {
    assert!(parse(&format!("[user ../x]\npassword = {HASH}\n")).is_err());
    assert!(parse(&format!("[user .hidden]\npassword = {HASH}\n")).is_err());
}

#[test]
fn unknown_section() {
    assert!(one_problem("[group a]\n")
        .message
        .contains("unknown section"));
}

#[test]
fn unterminated_section() {
    assert!(one_problem("[user a\n").message.contains("closing"));
}

#[test]
fn line_without_equals() {
    assert!(one_problem("listen\n").message.contains("key = value"));
}

#[test]
fn empty_value() {
    assert!(one_problem("listen =\n").message.contains("no value"));
}

#[test]
fn global_key_after_section_is_rejected() {
    let p = one_problem(&format!(
        "[user a]\npassword = {HASH}\nlisten = 0.0.0.0:21\n"
    ));
    assert_eq!(p.line, 3);
}

#[test]
fn user_key_in_global_part_is_rejected() {
    assert!(one_problem("password = $6$a$b\n")
        .message
        .contains("section"));
}

#[test]
fn public_address_forms() {
    assert_eq!(
        parse("public_address = 203.0.113.9")
            .unwrap()
            .public_address,
        PublicAddress::Fixed("203.0.113.9".parse().unwrap())
    );
    assert_eq!(
        parse("public_address = imds-private")
            .unwrap()
            .public_address,
        PublicAddress::ImdsPrivate
    );
    assert!(parse("public_address = example.com").is_err());
    assert_eq!(
        parse("public_address = file:/run/lakeftpd-claim/address")
            .unwrap()
            .public_address,
        PublicAddress::File("/run/lakeftpd-claim/address".into())
    );
    // Relative: it would depend on the working directory.
    assert!(parse("public_address = file:address").is_err());
    assert!(parse("public_address = file:").is_err());
}

#[test]
fn relative_root_refused() {
    assert!(parse("root = data").is_err());
}

#[test]
fn switch_values() {
    assert!(!parse("epsv = off").unwrap().epsv);
    assert!(parse("epsv = 0").is_err());
}

#[test]
fn zero_max_sessions_refused() {
    assert!(parse("max_sessions = 0").is_err());
}

// S3 delivery: the keys reach s3.rs, with line numbers.
#[test]
fn s3_keys() {
    let c = parse("s3_bucket = lake\ns3_key = raw/{user}/{path}\nack = disk\n").unwrap();
    assert_eq!(c.s3.bucket.as_deref(), Some("lake"));
    assert_eq!(c.s3.ack(), crate::config::s3::Ack::Disk);
    assert_eq!(one_problem("s3_bucket = lake\ns3_key = {nope}\n").line, 2);
    assert_eq!(one_problem("ack = s3\n").line, 0);
}

#[test]
fn proxy_v2_with_sources() {
    let c = parse("proxy_protocol = v2\nproxy_from = 10.0.0.0/16, 10.1.0.0/16\n").unwrap();
    assert_eq!(c.proxy_protocol, Some(proxy::Version::V2));
    assert_eq!(c.proxy_from.len(), 2);
}

#[test]
fn proxy_v1_accepted() {
    let c = parse("proxy_protocol = v1\nproxy_from = 127.0.0.1\n").unwrap();
    assert_eq!(c.proxy_protocol, Some(proxy::Version::V1));
}

#[test]
fn proxy_protocol_unknown_value() {
    assert!(one_problem("proxy_protocol = yes\n").message.contains("v2"));
}

#[test]
fn proxy_on_without_sources_is_an_error() {
    assert!(one_problem("proxy_protocol = v2\n")
        .message
        .contains("proxy_from"));
}

#[test]
fn proxy_sources_without_proxy_is_an_error() {
    assert!(one_problem("proxy_from = 10.0.0.0/8\n")
        .message
        .contains("proxy_protocol = off"));
}

#[test]
fn proxy_from_bad_block() {
    let p = problems("proxy_protocol = v2\nproxy_from = 10.0.0.1/8\n");
    assert!(p.iter().any(|p| p.line == 2));
}

#[test]
fn proxy_header_timeout_value() {
    let c = parse("proxy_header_timeout = 1s").unwrap();
    assert_eq!(c.proxy_header_timeout, Duration::from_secs(1));
}

#[test]
fn tcp_keepalive_default_and_off() {
    assert_eq!(
        Config::defaults().tcp_keepalive,
        Some(Duration::from_secs(60))
    );
    assert_eq!(parse("tcp_keepalive = off").unwrap().tcp_keepalive, None);
    assert_eq!(
        parse("tcp_keepalive = 2m").unwrap().tcp_keepalive,
        Some(Duration::from_secs(120))
    );
}

#[test]
fn tcp_keepalive_needs_whole_seconds() {
    assert!(parse("tcp_keepalive = 500ms").is_err());
}

#[test]
fn health_listen_address_and_off() {
    assert_eq!(
        parse("health_listen = 0.0.0.0:8021").unwrap().health_listen,
        Some("0.0.0.0:8021".parse().unwrap())
    );
    assert_eq!(parse("health_listen = off").unwrap().health_listen, None);
    assert!(parse("health_listen = 8021").is_err());
}

#[test]
fn drain_delay_may_be_zero() {
    assert_eq!(
        parse("drain_delay = 0s").unwrap().drain_delay,
        Duration::ZERO
    );
    assert_eq!(Config::defaults().drain_delay, Duration::from_secs(25));
}

#[test]
fn metrics_emf_and_interval() {
    let c = parse("metrics_emf = tcp:127.0.0.1:25888\nmetrics_interval = 10s\n").unwrap();
    assert_eq!(
        c.metrics_emf,
        Some(EmfTarget::Tcp("127.0.0.1:25888".parse().unwrap()))
    );
    assert_eq!(c.metrics_interval, Duration::from_secs(10));
}

#[test]
fn metrics_interval_below_a_second_refused() {
    assert!(parse("metrics_interval = 500ms").is_err());
}

#[test]
fn health_s3_failing_after_value() {
    assert_eq!(
        parse("health_s3_failing_after = 2m")
            .unwrap()
            .health_s3_failing_after,
        Duration::from_secs(120)
    );
}

#[test]
fn oversized_text_refused() {
    let text = "#".repeat(limits::MAX_CONFIG_BYTES + 1);
    assert_eq!(one_problem(&text).line, 0);
}

#[test]
fn metrics_group_names_the_fleet() {
    assert_eq!(
        parse("metrics_group = lakeftpd-prod")
            .unwrap()
            .metrics_group
            .as_deref(),
        Some("lakeftpd-prod")
    );
    assert!(parse("metrics_group = a b").is_err());
}

#[test]
fn users_source_s3() {
    let c = parse("users = s3://fleet-config/users/prod.conf\n").unwrap();
    assert_eq!(
        c.users_source,
        Some(UsersSource::S3 {
            bucket: "fleet-config".into(),
            key: "users/prod.conf".into()
        })
    );
    assert_eq!(c.users_poll_interval, Duration::from_secs(60));
    assert_eq!(c.users_boot_timeout, Duration::from_secs(20));
}

#[test]
fn users_source_file() {
    let c = parse("users = /etc/lakeftpd/users.conf\nusers_poll_interval = 5s\n").unwrap();
    assert_eq!(
        c.users_source,
        Some(UsersSource::File("/etc/lakeftpd/users.conf".into()))
    );
    assert_eq!(c.users_poll_interval, Duration::from_secs(5));
}

#[test]
fn users_source_s3_without_a_key_is_refused() {
    assert!(one_problem("users = s3://bucket\n")
        .message
        .contains("s3://BUCKET/KEY"));
}

#[test]
fn users_source_relative_path_is_refused() {
    assert_eq!(one_problem("users = users.conf\n").line, 1);
}

#[test]
fn users_cache_defaults_beside_the_spool() {
    let c = parse("spool = /srv/state/spool\n").unwrap();
    assert_eq!(
        c.users_cache_path(),
        PathBuf::from("/srv/state/users.cache")
    );
    assert_eq!(
        Config::defaults().users_cache_path(),
        PathBuf::from("/var/lib/lakeftpd/users.cache")
    );
}

#[test]
fn users_cache_without_an_s3_source_is_refused() {
    let p = one_problem("users = /etc/u.conf\nusers_cache = /var/cache/u\n");
    assert!(p.message.contains("users_cache"));
}

#[test]
fn users_boot_timeout_without_an_s3_source_is_refused() {
    assert!(one_problem("users_boot_timeout = 5s\n")
        .message
        .contains("users_boot_timeout"));
}

#[test]
fn allow_from_and_s3_key_in_a_configuration_section() {
    let c = parse(&format!(
        "[user a]\npassword = {HASH}\nallow_from = 10.0.0.0/8\ns3_key = t/{{user}}/{{path}}\n"
    ))
    .unwrap();
    assert!(c.users[0].allows("10.2.3.4".parse().unwrap()));
    assert!(!c.users[0].allows("192.0.2.1".parse().unwrap()));
    assert!(c.users[0].s3_key.is_some());
}

#[test]
fn allow_from_above_the_sections_is_refused() {
    assert!(one_problem("allow_from = 10.0.0.0/8\n")
        .message
        .contains("belongs in a `[user NAME]` section"));
}

#[test]
fn device_keys_global_and_per_user() {
    // A user's own setting wins; the others come from the global ones.
    let text = format!(
        "auto_mkdir = on\nfilename_encoding = latin1\n[user cam]\npassword = {HASH}\nfilename_encoding = shift_jis\nactive_address = peer\n[user dev]\npassword = {HASH}\n"
    );
    let config = parse(&text).unwrap();
    let (cam, dev) = (&config.users[0].device, &config.users[1].device);
    assert_eq!(cam.filename_encoding.label(), "shift_jis");
    assert_eq!(cam.active_address, super::device::ActiveAddress::Peer);
    assert!(cam.auto_mkdir && dev.auto_mkdir);
    assert_eq!(dev.filename_encoding.label(), "latin1");
    assert_eq!(dev.active_address, super::device::ActiveAddress::Strict);
}

#[test]
fn bad_device_value_has_its_line() {
    let text = format!("[user cam]\npassword = {HASH}\nfilename_encoding = ebcdic\n");
    let p = one_problem(&text);
    assert_eq!(p.line, 3);
    assert!(p.message.contains("user `cam`"), "{}", p.message);
}

#[test]
fn an_ipv6_exemption_smaller_than_a_client_is_refused() {
    // Clients are counted by their /64: exempting a /128 inside one could
    // not work; a /64 or a longer ipv6_prefix can.
    let p = one_problem("ban_exempt = 2001:db8::5/128\n");
    assert!(p.message.contains("smaller than one client"), "{p}");
    assert!(parse("ban_exempt = 2001:db8::/64, 10.0.0.0/8\n").is_ok());
    assert!(parse("ban_exempt = 2001:db8::5/128\nipv6_prefix = 128\n").is_ok());
}

#[test]
fn tls_session_reuse_per_user() {
    let text = format!(
        "tls = on\ntls_cert = /c.pem\ntls_key = /k.pem\n\
         [user old]\npassword = {HASH}\ntls_session_reuse = off\n\
         [user new]\npassword = {HASH}\n"
    );
    let c = parse(&text).unwrap();
    assert_eq!(c.users[0].tls_session_reuse, Some(false));
    assert_eq!(c.users[1].tls_session_reuse, None);
    // In a users file, the same key.
    let users = users::parse_users(
        &format!("[user d]\npassword = {HASH}\ntls_session_reuse = required\n"),
        &c,
        usize::MAX,
    )
    .unwrap();
    assert_eq!(users[0].tls_session_reuse, Some(true));
}

#[test]
fn tls_session_reuse_per_user_bad_value_and_without_tls() {
    let p = one_problem(&format!(
        "tls = on\ntls_cert = /c.pem\ntls_key = /k.pem\n\
         [user a]\npassword = {HASH}\ntls_session_reuse = on\n"
    ));
    assert_eq!(p.line, 6, "{p:?}");
    assert!(p.message.contains("expected `required` or `off`"), "{p:?}");
    let p = one_problem(&format!(
        "[user a]\npassword = {HASH}\ntls_session_reuse = off\n"
    ));
    assert!(p.message.contains("`tls = off`"), "{p:?}");
}
