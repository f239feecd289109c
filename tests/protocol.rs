//! Protocol details on the wire (RFC 959, 2389, 2428, 3659): reply codes,
//! multi-line replies, line framing, verbs, listings.

mod common;

use common::{Control, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn verbs_are_case_insensitive_and_bare_lf_and_empty_lines_work() {
    let server = Server::start("", &[("dev", "full")]);
    let mut c = Control::open(server.addr);
    c.send_raw(b"user dev\n").unwrap();
    assert_eq!(c.reply().0, 331);
    c.send_raw(format!("\r\n\npAsS {}\n", common::PASSWORD).as_bytes())
        .unwrap();
    assert_eq!(c.reply().0, 230);
    c.send_raw(b"NoOp\r\n").unwrap();
    assert_eq!(c.reply().0, 200);
}

#[test]
fn pipelined_commands_are_answered_in_order() {
    let server = Server::start("", &[("dev", "full")]);
    let mut c = Control::login(server.addr, "dev");
    c.send_raw(b"NOOP\r\nPWD\r\nSYST\r\n").unwrap();
    assert_eq!(c.reply().0, 200);
    assert_eq!(c.reply().0, 257);
    assert_eq!(c.reply().0, 215);
}

#[test]
fn feat_is_a_proper_multi_line_reply() {
    let server = Server::start("", &[("dev", "full")]);
    let mut c = Control::open(server.addr);
    let (code, text) = c.cmd("FEAT");
    assert_eq!(code, 211);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("211-"));
    assert!(lines.last().unwrap().starts_with("211 "));
    for feature in [
        "EPRT",
        "EPSV",
        "MDTM",
        "PASV",
        "REST STREAM",
        "SIZE",
        "UTF8",
        "TVFS",
    ] {
        assert!(
            lines.contains(&format!(" {feature}").as_str()),
            "{feature} missing:\n{text}"
        );
    }
    assert!(lines.iter().any(|l| l.starts_with(" MLST ")));
}

#[test]
fn simple_commands() {
    let server = Server::start("", &[("dev", "full")]);
    let mut c = Control::login(server.addr, "dev");
    assert_eq!(c.cmd("SYST"), (215, "215 UNIX Type: L8\r\n".into()));
    assert_eq!(c.cmd("OPTS UTF8 ON").0, 200);
    assert_eq!(c.cmd("OPTS BOGUS").0, 501);
    assert_eq!(c.cmd("HELP").0, 214);
    let (code, stat) = c.cmd("STAT");
    assert_eq!(code, 211);
    assert!(stat.contains("Logged in as dev"));
    assert_eq!(c.cmd("TYPE I").0, 200);
    assert_eq!(c.cmd("TYPE A").0, 200);
    assert_eq!(c.cmd("TYPE E").0, 504);
    assert_eq!(c.cmd("MODE S").0, 200);
    // Recognised but not offered: 502 (not 504, not 500).
    assert_eq!(c.cmd("MODE B").0, 502);
    assert_eq!(c.cmd("STRU F").0, 200);
    assert_eq!(c.cmd("STRU R").0, 504);
    // 200: some cameras take 202 for a failure.
    assert_eq!(c.cmd("ALLO 100").0, 200);
    assert_eq!(c.cmd("SITE CHMOD 777 x").0, 502);
    assert_eq!(c.cmd("RETR").0, 501);
    assert_eq!(c.cmd("ABOR").0, 226);
    assert_eq!(c.cmd("RNTO x").0, 503);
    assert_eq!(c.cmd("QUIT").0, 221);
    assert!(c.closed_within(Duration::from_secs(5)));
}

#[test]
fn directories_pwd_cwd_cdup_and_x_variants() {
    let server = Server::start("", &[("dev", "full")]);
    let mut c = Control::login(server.addr, "dev");
    assert_eq!(
        c.cmd("PWD"),
        (257, "257 \"/\" is the current directory\r\n".into())
    );
    assert_eq!(c.cmd("MKD a \"quoted\" dir").0, 257);
    assert_eq!(c.cmd("XMKD second").0, 257);
    assert_eq!(c.cmd("CWD a \"quoted\" dir").0, 250);
    let (code, text) = c.cmd("XPWD");
    assert_eq!(code, 257);
    assert_eq!(
        text, "257 \"/a \"\"quoted\"\" dir\" is the current directory\r\n",
        "quotes doubled (RFC 959 §7)"
    );
    assert_eq!(c.cmd("CDUP").0, 250);
    assert_eq!(c.cmd("XCWD second").0, 250);
    assert_eq!(c.cmd("XCUP").0, 250);
    assert_eq!(c.cmd("XRMD second").0, 250);
    assert_eq!(c.cmd("RMD a \"quoted\" dir").0, 250);
    assert_eq!(c.cmd("CWD missing").0, 550);
    assert_eq!(c.cmd("RMD /").0, 550);
}

#[test]
fn mlst_and_mdtm_and_size() {
    let server = Server::start("", &[("dev", "full")]);
    std::fs::write(server.home("dev").join("f.csv"), b"12345").unwrap();
    let mut c = Control::login(server.addr, "dev");
    let (code, text) = c.cmd("MLST f.csv");
    assert_eq!(code, 250);
    assert!(text.contains(" type=file;size=5;modify="), "{text}");
    assert_eq!(c.cmd("SIZE f.csv"), (213, "213 5\r\n".into()));
    let (code, mdtm) = c.cmd("MDTM f.csv");
    assert_eq!(code, 213);
    assert_eq!(mdtm.trim().len(), "213 YYYYMMDDHHMMSS".len());
    assert_eq!(c.cmd("SIZE /").0, 550);
}

#[test]
fn pasv_and_epsv_replies_and_epsv_all() {
    let server = Server::start("", &[("dev", "full")]);
    let mut c = Control::login(server.addr, "dev");
    let data = c.pasv();
    assert_eq!(data.ip().to_string(), "127.0.0.1");
    let (code, text) = c.cmd("EPSV");
    assert_eq!(code, 229);
    assert!(
        text.contains("(|||") && text.trim_end().ends_with("|)"),
        "{text}"
    );
    assert_eq!(c.cmd("EPSV 2").0, 522);
    assert_eq!(c.cmd("EPSV ALL").0, 200);
    assert_eq!(c.cmd("PASV").0, 503);
    assert_eq!(c.cmd("PORT 127,0,0,1,200,1").0, 503);
}

#[test]
fn public_address_is_advertised_in_pasv() {
    let server = Server::start("public_address = 203.0.113.7", &[("dev", "full")]);
    let mut c = Control::login(server.addr, "dev");
    let (code, text) = c.cmd("PASV");
    assert_eq!(code, 227);
    assert!(text.contains("(203,0,113,7,"), "{text}");
}

#[test]
fn list_shows_names_with_spaces_and_utf8_and_hides_temporaries() {
    let server = Server::start("", &[("dev", "full")]);
    let home = server.home("dev");
    std::fs::write(home.join("with space.csv"), b"1").unwrap();
    std::fs::write(home.join("データ.csv"), b"22").unwrap();
    std::fs::write(home.join(".lakeftpd-tmp-0123"), b"partial").unwrap();
    std::fs::create_dir(home.join("sub")).unwrap();
    let mut c = Control::login(server.addr, "dev");
    for (verb, expect) in [("LIST", "-rw"), ("NLST", ""), ("MLSD", "type=file;size=1;")] {
        let data = c.pasv();
        c.send(verb);
        let mut s = TcpStream::connect(data).unwrap();
        assert_eq!(c.reply().0, 150);
        let mut listing = String::new();
        s.read_to_string(&mut listing).unwrap();
        assert_eq!(c.reply().0, 226);
        assert!(
            !listing.contains("lakeftpd-tmp"),
            "{verb} shows a temporary:\n{listing}"
        );
        let line = listing
            .lines()
            .find(|l| l.ends_with("with space.csv"))
            .unwrap_or_else(|| panic!("{verb}:\n{listing}"));
        assert!(
            line.starts_with(expect) || line.contains(expect),
            "{verb}: {line}"
        );
        assert!(
            listing.lines().any(|l| l.ends_with("データ.csv")),
            "{verb}:\n{listing}"
        );
        assert!(listing.lines().any(|l| l.ends_with("sub")));
        assert!(listing.ends_with("\r\n"));
    }
}

#[test]
fn list_with_options_and_a_path() {
    let server = Server::start("", &[("dev", "full")]);
    std::fs::create_dir(server.home("dev").join("d")).unwrap();
    std::fs::write(server.home("dev").join("d/inner.txt"), b"x").unwrap();
    let mut c = Control::login(server.addr, "dev");
    let data = c.pasv();
    c.send("LIST -la d");
    let mut s = TcpStream::connect(data).unwrap();
    assert_eq!(c.reply().0, 150);
    let mut listing = String::new();
    s.read_to_string(&mut listing).unwrap();
    assert_eq!(c.reply().0, 226);
    assert!(listing.contains(" inner.txt\r\n"), "{listing}");
}

#[test]
fn data_connection_timeout_gives_425() {
    let server = Server::start("passive_accept_timeout = 300ms", &[("dev", "full")]);
    let mut c = Control::login(server.addr, "dev");
    c.pasv();
    let (code, _) = c.cmd("NLST");
    assert_eq!(code, 425);
    assert_eq!(c.cmd("NOOP").0, 200);
}

#[test]
fn active_connect_failure_gives_425() {
    let server = Server::start("active_connect_timeout = 1s", &[("dev", "full")]);
    // A port with nothing listening: connection refused at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut c = Control::login(server.addr, "dev");
    assert_eq!(
        c.cmd(&format!("PORT 127,0,0,1,{},{}", port >> 8, port & 0xff))
            .0,
        200
    );
    let (code, text) = c.cmd("NLST");
    assert_eq!(code, 425, "{text}");
    assert!(text.contains("cannot connect"), "{text}");
}

#[test]
fn stalled_upload_is_ended_by_data_timeout() {
    let server = Server::start("data_timeout = 500ms", &[("dev", "full")]);
    let mut c = Control::login(server.addr, "dev");
    let data = c.pasv();
    c.send("STOR stall.bin");
    let mut s = TcpStream::connect(data).unwrap();
    assert_eq!(c.reply().0, 150);
    s.write_all(b"some").unwrap();
    let (code, _) = c.reply();
    assert_eq!(code, 426);
    assert!(common::names(&server.home("dev")).is_empty());
}

#[test]
fn passive_ports_return_to_the_pool() {
    // A pool of two ports serves many more transfers than two.
    let (first, _) = common::passive_range();
    let server = Server::start(
        &format!(
            "passive_ports = {first}-{}\npassive_accept_timeout = 300ms",
            first + 1
        ),
        &[("dev", "full")],
    );
    let mut c = Control::login(server.addr, "dev");
    for i in 0..20 {
        if i % 3 == 0 {
            // Abandoned PASV (no transfer): the next PASV replaces it.
            c.pasv();
        }
        let data = c.pasv();
        assert!(data.port() == first || data.port() == first + 1);
        c.send("NLST");
        let mut s = TcpStream::connect(data).unwrap();
        assert_eq!(c.reply().0, 150);
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        assert_eq!(c.reply().0, 226, "round {i}");
    }
    // Sessions that end with a PASV open give their port back too.
    for _ in 0..4 {
        let mut other = Control::login(server.addr, "dev");
        other.pasv();
        other.cmd("QUIT");
    }
    std::thread::sleep(Duration::from_millis(200));
    c.pasv();
}
