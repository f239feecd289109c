//! Active mode from behind NAT, in network namespaces: a device on a
//! private network (192.168.1.0/24) behind a masquerading router whose
//! public side (203.0.113.1) forwards the device's data port, uploading to
//! lakeftpd (203.0.113.2) with curl in active mode. The device names its
//! private address in EPRT/PORT: `active_address = peer` connects to the
//! router's address instead (which forwards to the device); `strict`
//! refuses it, so curl fails.

mod common;
#[path = "common/netns.rs"]
mod netns;

use common::{password_hash, pattern, Scratch, PASSWORD};
use netns::{must, nft, Namespaces, NsServer};

const DEV: &str = "d13-dev";
const RTR: &str = "d13-rtr";
const SRV: &str = "d13-srv";
/// The device's data ports (one per upload: a port just used waits in
/// TIME_WAIT), forwarded by the router.
const DATA_PORT: u16 = 40_000;

fn topology() -> Namespaces {
    let spaces = Namespaces::create(&[DEV, RTR, SRV]);
    spaces.link(
        (DEV, "d13dev0", "192.168.1.10/24"),
        (RTR, "d13lan0", "192.168.1.1/24"),
    );
    spaces.link(
        (RTR, "d13wan0", "203.0.113.1/24"),
        (SRV, "d13srv0", "203.0.113.2/24"),
    );
    must(
        DEV,
        "ip",
        &["route", "add", "default", "via", "192.168.1.1"],
    );
    must(RTR, "sysctl", &["-qw", "net.ipv4.ip_forward=1"]);
    // A home router: masquerade outgoing, forward the data port inward.
    nft(
        RTR,
        &format!(
            "table ip d13nat {{
               chain pre {{
                 type nat hook prerouting priority dstnat;
                 iifname \"d13wan0\" tcp dport {DATA_PORT}-{last} dnat to 192.168.1.10
               }}
               chain post {{
                 type nat hook postrouting priority srcnat;
                 oifname \"d13wan0\" masquerade
               }}
             }}\n",
            last = DATA_PORT + 1
        ),
    );
    spaces
}

#[test]
fn device_behind_nat_uploads_in_active_mode_only_under_peer() {
    let _spaces = topology();
    let dir = Scratch::new("nat");
    let home = dir.0.join("home");
    for user in ["natdev", "strictdev"] {
        std::fs::create_dir_all(home.join(user)).unwrap();
    }
    let config = dir.0.join("lakeftpd.conf");
    std::fs::write(
        &config,
        format!(
            "listen = 203.0.113.2:0\nroot = {}\nlog_level = debug\n\
             [user natdev]\npassword = {hash}\nactive_address = peer\n\
             [user strictdev]\npassword = {hash}\n",
            home.display(),
            hash = password_hash()
        ),
    )
    .unwrap();
    let server = NsServer::start(SRV, &config);
    let file = dir.0.join("m.csv");
    std::fs::write(&file, pattern(4096, 9)).unwrap();
    let curl = |user: &str, data_port: u16| {
        let url = format!("ftp://{user}:{PASSWORD}@{}/m.csv", server.addr);
        let port = format!("192.168.1.10:{data_port}");
        netns::exec(
            DEV,
            "curl",
            &[
                "-sS",
                "--max-time",
                "20",
                "-P",
                &port,
                "-T",
                file.to_str().unwrap(),
                &url,
            ],
        )
    };
    // peer: EPRT |1|192.168.1.10|40000| is sent to 203.0.113.1:40000,
    // which the router forwards to the device.
    let (ok, _, err) = curl("natdev", DATA_PORT);
    assert!(ok, "{err}\n{}", server.log());
    assert_eq!(
        std::fs::read(home.join("natdev/m.csv")).unwrap(),
        pattern(4096, 9)
    );
    assert!(
        server
            .log()
            .contains("replaced by the client's own (active_address = peer)"),
        "{}",
        server.log()
    );
    // strict: EPRT and PORT refused, nothing stored.
    let (ok, _, err) = curl("strictdev", DATA_PORT + 1);
    assert!(!ok, "strict accepted a private address");
    assert!(!home.join("strictdev/m.csv").exists(), "{err}");
    let refused = "PORT/EPRT to foreign address 192.168.1.10 refused";
    let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !server.log().contains(refused) && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(server.log().contains(refused), "{err}\n{}", server.log());
}
