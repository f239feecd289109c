//! A slow, lossy link (100 ms each way, 1 % loss each way): a minimal
//! device uploads 4 KiB files in active mode through a user-space relay
//! (tests/slowlink/relay.py; the kernel has no sch_netem) between two
//! namespaces, with nftables dropping 1 % of the packets on the link. The
//! relay logs every chunk; from its log each upload's round trips are
//! counted (a turn: the server speaks after the client did) and the time
//! the server takes before each answer. The client's own exchanges from
//! PORT to 226 are four (PORT/200, STOR, the data connection, data and
//! EOF/226); the server must add none and no waits, and nothing may fail.
//!
//! `SLOWLINK_UPLOADS` sets the count (5 by default, what CI runs); run
//! with `--nocapture` to see the figures.

mod common;
#[path = "common/netns.rs"]
mod netns;

use common::{password_hash, Scratch, PASSWORD};
use netns::{nft, Namespaces, NsServer};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

const CLIENT: &str = "d13-rc";
const SERVER: &str = "d13-rs";
const DELAY_MS: f64 = 100.0;
const RELAY_PORT: u16 = 2100;
const DATA_PORT: u16 = 40100;

struct Event {
    t: f64,
    /// True when the client sent it (towards the server).
    from_client: bool,
    /// True when the relay handed it to the server (not read from it).
    delivered_to_server: bool,
    received: bool,
}

fn events(log: &str) -> Vec<Event> {
    log.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let pipe = v["pipe"].as_str().unwrap();
            let inward = v["dir"] == "in";
            let ev = v["ev"].as_str().unwrap();
            // control: in = client -> server; data (the server connects):
            // in = server -> client.
            let towards_server = (pipe == "control") == inward;
            let received = ev == "recv" || ev == "open";
            Event {
                t: v["t"].as_f64().unwrap(),
                from_client: if ev == "open" {
                    pipe == "control"
                } else {
                    towards_server
                },
                delivered_to_server: !received && towards_server,
                received,
            }
        })
        .collect()
}

/// (turns, server think times in ms) between `start` and `end`.
fn analyse(all: &[Event], start: f64, end: f64) -> (usize, Vec<f64>) {
    let window: Vec<&Event> = all.iter().filter(|e| e.t >= start && e.t <= end).collect();
    let mut turns = 0;
    let mut last_side = None;
    let mut think = Vec::new();
    for (i, e) in window.iter().enumerate().filter(|(_, e)| e.received) {
        if last_side == Some(true) && !e.from_client {
            turns += 1;
            // What the server had been given last, before it spoke.
            if let Some(given) = window[..i].iter().rev().find(|g| g.delivered_to_server) {
                think.push((e.t - given.t) * 1000.0);
            }
        }
        last_side = Some(e.from_client);
    }
    (turns, think)
}

#[test]
fn active_upload_over_a_slow_lossy_link_costs_only_the_clients_exchanges() {
    let uploads: usize = std::env::var("SLOWLINK_UPLOADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let spaces = Namespaces::create(&[CLIENT, SERVER]);
    spaces.link(
        (CLIENT, "d13rc0", "10.13.0.1/24"),
        (SERVER, "d13rs0", "10.13.0.2/24"),
    );
    // 1 % loss each way on the link (the kernel's TCP retransmits).
    nft(
        CLIENT,
        "table inet d13loss {
           chain out {
             type filter hook output priority 0;
             oifname \"d13rc0\" numgen random mod 100 < 1 drop
           }
           chain in {
             type filter hook input priority 0;
             iifname \"d13rc0\" numgen random mod 100 < 1 drop
           }
         }\n",
    );
    let dir = Scratch::new("slowlink");
    let home = dir.0.join("home/dev");
    std::fs::create_dir_all(&home).unwrap();
    let config = dir.0.join("lakeftpd.conf");
    std::fs::write(
        &config,
        format!(
            "listen = 10.13.0.2:0\nroot = {}\nactive_address = peer\n[user dev]\npassword = {}\n",
            dir.0.join("home").display(),
            password_hash()
        ),
    )
    .unwrap();
    let server = NsServer::start(SERVER, &config);
    let scripts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slowlink");
    let log_path = dir.0.join("relay.jsonl");
    let mut relay = Command::new("ip")
        .args(["netns", "exec", CLIENT, "python3"])
        .arg(scripts.join("relay.py"))
        .args(["--delay-ms", &DELAY_MS.to_string(), "--log"])
        .arg(&log_path)
        .args([
            "--pipe",
            "control",
            &format!("127.0.0.1:{RELAY_PORT}"),
            &server.addr.to_string(),
        ])
        .args([
            "--pipe",
            "data",
            &format!("10.13.0.1:{DATA_PORT}"),
            &format!("127.0.0.1:{DATA_PORT}"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the relay");
    let mut ready = String::new();
    BufReader::new(relay.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "relay ready");
    let out = Command::new("ip")
        .args(["netns", "exec", CLIENT, "timeout", "300", "python3"])
        .arg(scripts.join("client.py"))
        .args([
            &format!("127.0.0.1:{RELAY_PORT}"),
            &DATA_PORT.to_string(),
            "dev",
            PASSWORD,
            &uploads.to_string(),
            "4096",
        ])
        .output()
        .unwrap();
    // Closing its stdin stops the relay.
    let _ = relay.stdin.take().map(|mut s| s.flush());
    let _ = relay.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    let all = events(&std::fs::read_to_string(&log_path).unwrap());
    let rtt = 2.0 * DELAY_MS;
    let (mut worst_turns, mut thinks, mut elapsed) = (0, Vec::new(), Vec::new());
    // The server's time before its 226: the upload made durable (fsync).
    let mut durable = Vec::new();
    for line in stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["reply"].as_str().unwrap().starts_with("226"), "{line}");
        let (start, end) = (v["start"].as_f64().unwrap(), v["end"].as_f64().unwrap());
        let (turns, think) = analyse(&all, start, end);
        worst_turns = worst_turns.max(turns);
        durable.extend(think.last().copied());
        thinks.extend(think);
        elapsed.push((end - start) * 1000.0);
    }
    assert_eq!(elapsed.len(), uploads, "{stdout}");
    for i in 0..uploads {
        assert!(home.join(format!("up{i}.bin")).metadata().unwrap().len() == 4096);
    }
    thinks.sort_by(f64::total_cmp);
    durable.sort_by(f64::total_cmp);
    elapsed.sort_by(f64::total_cmp);
    let median = |v: &[f64]| v[v.len() / 2];
    println!(
        "slowlink: {uploads} uploads of 4 KiB, {DELAY_MS} ms each way, 1 % loss each way: \
         round trips (relay) at most {worst_turns} (client exchanges: 4); \
         PORT-to-226 median {:.0} ms ({:.2} RTT), max {:.0} ms; \
         server time before answering median {:.1} ms, max {:.1} ms; \
         before the 226 (fsync) median {:.1} ms",
        median(&elapsed),
        median(&elapsed) / rtt,
        elapsed[elapsed.len() - 1],
        median(&thinks),
        thinks[thinks.len() - 1],
        median(&durable),
    );
    // No more round trips than the client's own exchanges.
    assert!(worst_turns <= 4, "{worst_turns} round trips");
    // The server adds no waits: its answers follow what it was given at
    // once (the median; a lost packet delays a few by a retransmission).
    assert!(median(&thinks) < 50.0, "{thinks:?}");
    // And the whole upload takes about three RTTs (the data connection
    // opens alongside the 150), never fewer.
    assert!(median(&elapsed) >= 3.0 * rtt - 5.0, "{elapsed:?}");
    drop(spaces);
}
