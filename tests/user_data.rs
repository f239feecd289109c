//! `serve --user-data` and `check --user-data` against a fake IMDS
//! (tests/fake_imds.py) that follows AWS's documented IMDSv2 behaviour;
//! `public_address = imds | imds-private`; every failure in one line.
//! The endpoint is set with AWS_EC2_METADATA_SERVICE_ENDPOINT: no test ever
//! reaches 169.254.169.254.

mod common;

use common::*;
use std::net::{IpAddr, TcpListener};
use std::time::Duration;

const ENDPOINT: &str = "AWS_EC2_METADATA_SERVICE_ENDPOINT";

/// The fake serving a configuration for a fresh scratch directory.
fn imds_with_config(global: &str) -> (FakeImds, Scratch, ImdsState) {
    let dir = Scratch::new("ud");
    let state = ImdsState::new(Some(&config_text(&dir, global, &[("dev1", "upload")])));
    (FakeImds::start(&state), dir, state)
}

fn serve_user_data(imds: &FakeImds, dir: Scratch) -> Server {
    Server::spawn_with(
        dir,
        &["serve", "--user-data"],
        &[(ENDPOINT, &imds.endpoint)],
    )
}

/// The address in the 227 reply.
fn advertised(server: &Server) -> IpAddr {
    let mut c = Control::login(server.addr, "dev1");
    c.pasv().ip()
}

/// Lines on stderr that start with `lakeftpd:` (log lines have timestamps).
fn console_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("lakeftpd: "))
        .collect()
}

/// A port on 127.0.0.1 where nothing listens.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn serve_user_data_uploads_and_advertises_public_ipv4() {
    let (imds, dir, _) = imds_with_config("public_address = imds");
    // A proxy in the environment must not be used for the link-local endpoint.
    let server = Server::spawn_with(
        dir,
        &["serve", "--user-data"],
        &[
            (ENDPOINT, &imds.endpoint),
            ("HTTP_PROXY", "http://127.0.0.1:1"),
            ("ALL_PROXY", "http://127.0.0.1:1"),
        ],
    );
    assert!(
        server
            .log()
            .contains("instance i-0123456789abcdef0 in ap-northeast-1a"),
        "{}",
        server.log()
    );
    assert_eq!(advertised(&server), "127.0.0.9".parse::<IpAddr>().unwrap());

    // A real client uploads through PASV (told to use the control address,
    // since 127.0.0.9 is only what the NAT'ed instance would advertise).
    let data = pattern(100_000, 3);
    let src = server.dir.0.join("src.bin");
    std::fs::write(&src, &data).unwrap();
    let url = format!("{}/up.bin", server.url("dev1"));
    let (ok, _, err) = run(
        "curl",
        &[
            "-sS",
            "--disable-epsv",
            "--ftp-skip-pasv-ip",
            "-T",
            src.to_str().unwrap(),
            &url,
        ],
        None,
        None,
    );
    assert!(ok, "curl: {err}");
    assert_eq!(
        std::fs::read(server.home("dev1").join("up.bin")).unwrap(),
        data
    );

    // IMDSv2 only: a token first, and every GET succeeded with it.
    let requests = imds.requests();
    assert_eq!(
        requests.first().map(String::as_str),
        Some("PUT /latest/api/token 200")
    );
    assert!(requests.iter().all(|r| r.ends_with(" 200")), "{requests:?}");
}

#[test]
fn imds_private_advertises_local_ipv4() {
    let (imds, dir, _) = imds_with_config("public_address = imds-private");
    let server = serve_user_data(&imds, dir);
    assert_eq!(advertised(&server), "127.0.0.8".parse::<IpAddr>().unwrap());
    // The public address is not even asked for.
    assert!(!imds.requests().iter().any(|r| r.contains("public-ipv4")));
}

#[test]
fn imds_without_public_ipv4_advertises_local_ipv4() {
    let dir = Scratch::new("ud");
    let mut state = ImdsState::new(Some(&config_text(
        &dir,
        "public_address = imds",
        &[("dev1", "upload")],
    )));
    state.public_ipv4 = None;
    let imds = FakeImds::start(&state);
    let server = serve_user_data(&imds, dir);
    assert_eq!(advertised(&server), "127.0.0.8".parse::<IpAddr>().unwrap());
    assert!(imds
        .requests()
        .contains(&"GET /latest/meta-data/public-ipv4 404".to_string()));
}

/// The direct topology: lakeftpd-claim wrote the Elastic IP it took to a file
/// before lakeftpd starts; PASV advertises that, not IMDS's public-ipv4
/// (127.0.0.9 here), and the public address is not even asked for.
#[test]
fn claimed_address_file_is_advertised() {
    let dir = Scratch::new("ud");
    let file = dir.0.join("claimed-address");
    std::fs::write(&file, "127.0.0.23\n").unwrap();
    let global = format!("public_address = file:{}", file.display());
    let state = ImdsState::new(Some(&config_text(&dir, &global, &[("dev1", "upload")])));
    let imds = FakeImds::start(&state);
    let server = serve_user_data(&imds, dir);
    assert_eq!(advertised(&server), "127.0.0.23".parse::<IpAddr>().unwrap());
    assert!(!imds.requests().iter().any(|r| r.contains("public-ipv4")));
}

/// No claimed address (the claim failed, or ran nowhere): lakeftpd does not
/// start, so it never advertises an address the instance does not hold.
#[test]
fn missing_address_file_stops_serve_in_one_line() {
    let dir = Scratch::new("ud");
    let file = dir.0.join("never-written");
    let global = format!("public_address = file:{}", file.display());
    let state = ImdsState::new(Some(&config_text(&dir, &global, &[("dev1", "upload")])));
    let imds = FakeImds::start(&state);
    let run = run_bin(
        &["serve", "--user-data"],
        &[(ENDPOINT, &imds.endpoint)],
        Duration::from_secs(20),
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let lines = console_lines(&run.stderr);
    assert_eq!(lines.len(), 1, "{}", run.stderr);
    assert!(
        lines[0].contains(&format!("public_address = file:{}", file.display())),
        "{}",
        lines[0]
    );
    assert!(!run.stderr.contains("listening on"), "{}", run.stderr);
    // `check` takes the same text: the file is read at serve, not by check.
    let run = run_bin(
        &["check", "--user-data"],
        &[(ENDPOINT, &imds.endpoint)],
        Duration::from_secs(20),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
}

#[test]
fn config_file_with_public_address_imds_asks_imds() {
    // The fake serves no user-data: only the metadata is used.
    let imds = FakeImds::start(&ImdsState::new(None));
    let dir = Scratch::new("ud");
    let path = dir.0.join("lakeftpd.conf");
    std::fs::write(
        &path,
        config_text(&dir, "public_address = imds", &[("dev1", "upload")]),
    )
    .unwrap();
    let path = path.to_str().unwrap().to_string();
    let server = Server::spawn_with(
        dir,
        &["serve", "--config", &path],
        &[(ENDPOINT, &imds.endpoint)],
    );
    assert_eq!(advertised(&server), "127.0.0.9".parse::<IpAddr>().unwrap());
    assert!(server
        .log()
        .contains("instance i-0123456789abcdef0 in ap-northeast-1a"));
    assert!(!imds.requests().iter().any(|r| r.contains("user-data")));
}

#[test]
fn config_file_with_local_address_never_asks_imds() {
    let dir = Scratch::new("ud");
    let path = dir.0.join("lakeftpd.conf");
    std::fs::write(&path, config_text(&dir, "", &[("dev1", "upload")])).unwrap();
    let path = path.to_str().unwrap().to_string();
    // An endpoint where nothing listens: asking it would delay or fail the start.
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let server = Server::spawn_with(dir, &["serve", "--config", &path], &[(ENDPOINT, &endpoint)]);
    assert!(!server.log().contains("IMDS"), "{}", server.log());
    assert_eq!(advertised(&server), "127.0.0.1".parse::<IpAddr>().unwrap());
}

#[test]
fn check_user_data_ok() {
    let (imds, _dir, _) = imds_with_config("public_address = imds");
    let run = run_bin(
        &["check", "--user-data"],
        &[(ENDPOINT, &imds.endpoint)],
        Duration::from_secs(20),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.contains("configuration ok: 1 users"),
        "{}",
        run.stdout
    );
}

/// user-data with four problems, on lines 2 (unknown key), 4 (bad value),
/// 5 (user without password) and 6 (bad permissions).
const INVALID: &str = "listen = 127.0.0.1:0\nlisten_on = 0.0.0.0:21\n# a comment\nmax_sessions = many\n[user dev1]\npermissions = everything\n";

fn assert_lists_every_problem(run: &Finished) {
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let lines = console_lines(&run.stderr);
    assert_eq!(lines[0], "lakeftpd: user-data: 4 problem(s):", "{lines:?}");
    assert_eq!(lines.len(), 5, "{lines:?}");
    // Each problem alone on a line that makes sense on the serial console.
    for n in [2, 4, 5, 6] {
        let prefix = format!("lakeftpd: user-data: line {n}: ");
        assert!(
            lines.iter().any(|l| l.starts_with(&prefix)),
            "no {prefix:?} in {lines:?}"
        );
    }
}

#[test]
fn check_invalid_user_data_lists_every_problem() {
    let imds = FakeImds::start(&ImdsState::new(Some(INVALID)));
    let run = run_bin(
        &["check", "--user-data"],
        &[(ENDPOINT, &imds.endpoint)],
        Duration::from_secs(20),
    );
    assert_lists_every_problem(&run);
    // check prints nothing but the problems.
    assert_eq!(console_lines(&run.stderr).len(), run.stderr.lines().count());
}

#[test]
fn serve_invalid_user_data_lists_every_problem_and_exits_1() {
    let imds = FakeImds::start(&ImdsState::new(Some(INVALID)));
    let run = run_bin(
        &["serve", "--user-data"],
        &[(ENDPOINT, &imds.endpoint)],
        Duration::from_secs(20),
    );
    assert_lists_every_problem(&run);
    assert!(!run.stderr.contains("listening on"));
}

#[test]
fn no_user_data_is_one_line() {
    let imds = FakeImds::start(&ImdsState::new(None));
    for command in ["check", "serve"] {
        let run = run_bin(
            &[command, "--user-data"],
            &[(ENDPOINT, &imds.endpoint)],
            Duration::from_secs(20),
        );
        assert_eq!(run.code, Some(1), "{command}: {}", run.stderr);
        let lines = console_lines(&run.stderr);
        assert_eq!(lines.len(), 1, "{command}: {}", run.stderr);
        assert!(lines[0].contains("no user-data"), "{command}: {}", lines[0]);
        assert!(lines[0].contains("404"), "{command}: {}", lines[0]);
    }
    assert!(imds
        .requests()
        .contains(&"GET /latest/user-data 404".to_string()));
}

#[test]
fn unreachable_imds_is_one_line_after_bounded_retries() {
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let run = run_bin(
        &["serve", "--user-data"],
        &[(ENDPOINT, &endpoint), ("LAKEFTPD_IMDS_PATIENCE", "2s")],
        Duration::from_secs(30),
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    // It kept trying for the whole patience, and not much longer.
    assert!(
        run.took >= Duration::from_secs(2),
        "gave up after {:?}",
        run.took
    );
    assert!(run.took < Duration::from_secs(8), "took {:?}", run.took);
    let lines = console_lines(&run.stderr);
    assert_eq!(lines.len(), 1, "{}", run.stderr);
    assert!(
        lines[0].contains(&format!("IMDS) at {endpoint} unreachable: tried for 2.")),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("refused"), "{}", lines[0]);
    // The retries were announced once, not once per attempt.
    assert_eq!(
        run.stderr.matches("not answering yet").count(),
        1,
        "{}",
        run.stderr
    );
}

#[test]
fn check_unreachable_imds_is_one_line() {
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let run = run_bin(
        &["check", "--user-data"],
        &[(ENDPOINT, &endpoint), ("LAKEFTPD_IMDS_PATIENCE", "500ms")],
        Duration::from_secs(30),
    );
    assert_eq!(run.code, Some(1));
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("lakeftpd: instance metadata (IMDS) at "),
        "{}",
        run.stderr
    );
}

#[test]
fn slow_imds_is_retried_then_works() {
    // Connections refused for 1 s, then 503 ("try again") for 1 s more.
    let dir = Scratch::new("ud");
    let mut state = ImdsState::new(Some(&config_text(
        &dir,
        "public_address = imds",
        &[("dev1", "upload")],
    )));
    state.not_ready_seconds = 1.0;
    let imds = FakeImds::start_listening_after(&state, 1.0);
    let server = serve_user_data(&imds, dir);
    assert!(
        server.log().contains("not answering yet"),
        "{}",
        server.log()
    );
    assert_eq!(advertised(&server), "127.0.0.9".parse::<IpAddr>().unwrap());
    let requests = imds.requests();
    assert!(requests.iter().any(|r| r.ends_with(" 503")), "{requests:?}");
    assert!(
        requests.contains(&"GET /latest/user-data 200".to_string()),
        "{requests:?}"
    );
}

#[test]
fn rejected_token_is_fetched_again() {
    // Each token dies after one GET, as if it expired: every later GET is
    // first refused with 401, then retried with a fresh token.
    let dir = Scratch::new("ud");
    let mut state = ImdsState::new(Some(&config_text(
        &dir,
        "public_address = imds",
        &[("dev1", "upload")],
    )));
    state.tokens_valid_for_gets = Some(1);
    let imds = FakeImds::start(&state);
    let server = serve_user_data(&imds, dir);
    assert_eq!(advertised(&server), "127.0.0.9".parse::<IpAddr>().unwrap());
    let requests = imds.requests();
    let refused = requests.iter().filter(|r| r.ends_with(" 401")).count();
    let tokens = requests
        .iter()
        .filter(|r| r.starts_with("PUT /latest/api/token 200"))
        .count();
    assert!(refused >= 1, "{requests:?}");
    // Every refusal was followed by a new token.
    for (i, r) in requests.iter().enumerate() {
        if r.ends_with(" 401") {
            assert_eq!(
                requests.get(i + 1).map(String::as_str),
                Some("PUT /latest/api/token 200"),
                "{requests:?}"
            );
        }
    }
    assert!(tokens > refused, "{requests:?}");
    server.wait_log("fetching a new one", Duration::from_secs(5));
}

#[test]
fn imds_turned_off_fails_at_once() {
    // 403: retrying cannot help; the line says what happened.
    let mut state = ImdsState::new(Some("listen = 127.0.0.1:0\n"));
    state.disabled = true;
    let imds = FakeImds::start(&state);
    let run = run_bin(
        &["check", "--user-data"],
        &[(ENDPOINT, &imds.endpoint)],
        Duration::from_secs(20),
    );
    assert_eq!(run.code, Some(1));
    assert!(run.took < Duration::from_secs(5), "took {:?}", run.took);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("PUT /latest/api/token with HTTP 403"),
        "{}",
        run.stderr
    );
}

#[test]
fn bad_endpoint_variable_is_one_line() {
    let run = run_bin(
        &["check", "--user-data"],
        &[(ENDPOINT, "https://169.254.169.254")],
        Duration::from_secs(20),
    );
    assert_eq!(run.code, Some(1));
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains(ENDPOINT), "{}", run.stderr);
}

/// The fake itself answers as AWS documents (so the tests above mean something).
#[test]
fn fake_follows_documented_imdsv2_behaviour() {
    let imds = FakeImds::start(&ImdsState::new(None));
    let e = &imds.endpoint;
    let status = |args: &[&str]| -> String {
        let mut all = vec!["-s", "-o", "/dev/null", "-w", "%{http_code}"];
        all.extend_from_slice(args);
        run("curl", &all, None, None).1
    };
    let token_url = format!("{e}/latest/api/token");
    let ttl = "X-aws-ec2-metadata-token-ttl-seconds: 21600";
    assert_eq!(status(&["-X", "PUT", &token_url]), "400", "PUT without TTL");
    assert_eq!(
        status(&[
            "-X",
            "PUT",
            "-H",
            "X-aws-ec2-metadata-token-ttl-seconds: 0",
            &token_url
        ]),
        "400"
    );
    assert_eq!(
        status(&[
            "-X",
            "PUT",
            "-H",
            "X-aws-ec2-metadata-token-ttl-seconds: 21601",
            &token_url
        ]),
        "400"
    );
    assert_eq!(
        status(&[
            "-X",
            "PUT",
            "-H",
            ttl,
            "-H",
            "X-Forwarded-For: 1.2.3.4",
            &token_url
        ]),
        "403"
    );
    assert_eq!(
        status(&["-X", "PUT", "-H", ttl, &format!("{e}/2021-03-23/api/token")]),
        "403"
    );
    let id_url = format!("{e}/latest/meta-data/instance-id");
    assert_eq!(status(&[&id_url]), "401", "IMDSv1 refused");
    assert_eq!(
        status(&["-H", "X-aws-ec2-metadata-token: forged", &id_url]),
        "401"
    );
    let (ok, token, _) = run(
        "curl",
        &["-sf", "-X", "PUT", "-H", ttl, &token_url],
        None,
        None,
    );
    assert!(ok && !token.is_empty());
    let auth = format!("X-aws-ec2-metadata-token: {token}");
    let (ok, id, _) = run("curl", &["-sf", "-H", &auth, &id_url], None, None);
    assert!(ok);
    assert_eq!(id, "i-0123456789abcdef0");
    assert_eq!(
        status(&["-H", &auth, &format!("{e}/latest/user-data")]),
        "404",
        "no user-data"
    );
}

#[path = "common/s3.rs"]
mod s3;

/// `check --user-data` with `users = s3://...`: the object is read as the
/// server would read it (credentials from the environment here, the
/// instance role on EC2), and its users are counted.
#[test]
fn check_user_data_reads_the_users_object_and_counts_its_users() {
    let dir = Scratch::new("ud-users");
    let s3 = s3::S3::start(&dir.0);
    let hash = password_hash();
    let object = s3.object_path("config/users.conf");
    std::fs::create_dir_all(object.parent().unwrap()).unwrap();
    std::fs::write(
        &object,
        format!("[user d1]\npassword = {hash}\n[user d2]\npassword = {hash}\n[user d3]\npassword = {hash}\n"),
    )
    .unwrap();
    let global = format!(
        "s3_bucket = {b}\ns3_endpoint = {}\nspool = {}\nusers = s3://{b}/config/users.conf\n",
        s3.endpoint(),
        dir.0.join("spool").display(),
        b = s3::BUCKET
    );
    let state = ImdsState::new(Some(&config_text(&dir, &global, &[("dev1", "upload")])));
    let imds = FakeImds::start(&state);
    let env = [
        (ENDPOINT, imds.endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", s3::ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", s3::SECRET_KEY),
    ];
    let run = run_bin(&["check", "--user-data"], &env, Duration::from_secs(30));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout
            .contains("users file ok: 3 users from s3://lake/config/users.conf"),
        "{}",
        run.stdout
    );

    // The stack's old mistake: the bucket taken from the key's first
    // folder. The object cannot be read: the check fails, saying so.
    let wrong = global.replace(
        &format!("users = s3://{}/config/users.conf", s3::BUCKET),
        "users = s3://config/users.conf",
    );
    imds.set_state(&ImdsState::new(Some(&config_text(
        &dir,
        &wrong,
        &[("dev1", "upload")],
    ))));
    let run = run_bin(&["check", "--user-data"], &env, Duration::from_secs(60));
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("users = s3://config/users.conf:"),
        "{}",
        run.stderr
    );
}

/// `users = config/users.conf` (a UsersObject without `s3://BUCKET/`) is
/// refused with a message that says how to write it.
#[test]
fn a_users_value_without_bucket_is_refused_clearly() {
    let (imds, _dir, _) = imds_with_config("users = config/users.conf");
    let run = run_bin(
        &["check", "--user-data"],
        &[(ENDPOINT, &imds.endpoint)],
        Duration::from_secs(20),
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("`config/users.conf` is neither an S3 object nor an absolute path: write `s3://BUCKET/KEY`"),
        "{}",
        run.stderr
    );
}
