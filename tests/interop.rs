//! The interop table (docs/interop.md), row by row: each client uploads a
//! file and, where it can, downloads it again, in each mode it has, over
//! IPv4 (127.0.0.1) and IPv6 (::1), against one server listening on both.
//! Bytes are compared on disk and after the download. The clients are
//! Debian packages or PyPI (tests/install-deps.sh installs them).

mod common;

use common::{password_hash, pattern, run, Scratch, Server, PASSWORD};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn host(self) -> &'static str {
        match self {
            Family::V4 => "127.0.0.1",
            Family::V6 => "::1",
        }
    }

    /// The host as a URL writes it.
    fn url_host(self) -> &'static str {
        match self {
            Family::V4 => "127.0.0.1",
            Family::V6 => "[::1]",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Active,
    Passive,
}

const BOTH: [Family; 2] = [Family::V4, Family::V6];
const MODES: [Mode; 2] = [Mode::Active, Mode::Passive];

/// A server on `[::]` (IPv4 arrives as mapped addresses), user `dev`, with
/// the default `active_source_port = 20` (the tests run as root).
struct Rig {
    server: Server,
    local: Scratch,
    data: Vec<u8>,
}

impl Rig {
    fn start(extra: &str) -> Rig {
        let dir = Scratch::new("interop");
        let (first, last) = common::passive_range();
        let home = dir.0.join("home");
        std::fs::create_dir_all(home.join("dev")).unwrap();
        let text = format!(
            "listen = [::]:0\nroot = {}\npassive_ports = {first}-{last}\n{extra}\n[user dev]\npassword = {}\npermissions = full\n",
            home.display(),
            password_hash()
        );
        let local = Scratch::new("interop-local");
        let data = pattern(100_000, 21);
        std::fs::write(local.0.join("up.bin"), &data).unwrap();
        Rig {
            server: Server::start_with_text(dir, &text),
            local,
            data,
        }
    }

    fn port(&self) -> String {
        self.server.port().to_string()
    }

    fn up(&self) -> PathBuf {
        self.local.0.join("up.bin")
    }

    fn url(&self, family: Family, path: &str) -> String {
        format!(
            "ftp://dev:{PASSWORD}@{}:{}/{path}",
            family.url_host(),
            self.port()
        )
    }

    /// The uploaded file arrived whole as `name`.
    fn stored(&self, name: &str) {
        let path = self.server.home("dev").join(name);
        let got = std::fs::read(&path).unwrap_or_else(|e| {
            panic!("{name}: {e}\n{}", self.server.log());
        });
        assert!(got == self.data, "{name}: bytes differ");
    }

    /// A downloaded file is the uploaded one.
    fn fetched(&self, path: &Path) {
        let got = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(got == self.data, "{}: bytes differ", path.display());
    }

    fn name(client: &str, family: Family, mode: Mode) -> String {
        format!("{client}-{family:?}-{mode:?}.bin").to_lowercase()
    }
}

fn ok(result: (bool, String, String), what: &str) {
    let (ok, out, err) = result;
    assert!(ok, "{what}: {out}{err}");
}

#[test]
fn curl_both_modes_both_families() {
    let rig = Rig::start("");
    for family in BOTH {
        for mode in MODES {
            let name = Rig::name("curl", family, mode);
            let mut args = vec!["-sSg", "--max-time", "30"];
            if mode == Mode::Active {
                args.extend(["-P", "-"]);
            }
            let up = rig.up();
            let url = rig.url(family, &name);
            let mut put = args.clone();
            put.extend(["-T", up.to_str().unwrap(), &url]);
            ok(run("curl", &put, None, None), &name);
            rig.stored(&name);
            let back = rig.local.0.join(&name);
            let mut get = args.clone();
            get.extend(["-o", back.to_str().unwrap(), &url]);
            ok(run("curl", &get, None, None), &name);
            rig.fetched(&back);
        }
    }
}

/// One lftp upload and download; true when both worked.
fn lftp(rig: &Rig, family: Family, mode: Mode, name: &str) -> bool {
    let passive = if mode == Mode::Passive { "on" } else { "off" };
    let script = format!(
        "set ftp:passive-mode {passive}; set net:max-retries 1; open -u dev,{PASSWORD} -p {} {}; put up.bin -o {name}; get {name} -o back-{name}",
        rig.port(),
        family.url_host()
    );
    run("lftp", &["-c", &script], None, Some(&rig.local.0)).0
}

#[test]
fn lftp_both_modes_both_families() {
    let rig = Rig::start("");
    for family in BOTH {
        for mode in MODES {
            let name = Rig::name("lftp", family, mode);
            if (family, mode) == (Family::V6, Mode::Active) {
                // lftp sends `EPRT |2|::|port|` here: refused under strict.
                assert!(!lftp(&rig, family, mode, &name), "strict took EPRT ::");
                continue;
            }
            assert!(
                lftp(&rig, family, mode, &name),
                "{name}\n{}",
                rig.server.log()
            );
            rig.stored(&name);
            rig.fetched(&rig.local.0.join(format!("back-{name}")));
        }
    }
    // With active_address = peer the data connection goes to ::1.
    let peer = Rig::start("active_address = peer");
    let name = Rig::name("lftp-peer", Family::V6, Mode::Active);
    assert!(
        lftp(&peer, Family::V6, Mode::Active, &name),
        "{}",
        peer.server.log()
    );
    peer.stored(&name);
    peer.fetched(&peer.local.0.join(format!("back-{name}")));
}

/// inetutils `ftp` and tnftp read the same commands on stdin.
fn bsd_style(program: &str, flags: &[&str], rig: &Rig, family: Family, mode: Mode, name: &str) {
    let passive = match (program, mode) {
        // inetutils starts active; `passive` toggles.
        ("ftp", Mode::Passive) => "passive\n",
        _ => "",
    };
    let script = format!(
        "user dev {PASSWORD}\nbinary\n{passive}put up.bin {name}\nget {name} back-{name}\nquit\n"
    );
    let mut args = flags.to_vec();
    let port = rig.port();
    args.extend([family.host(), port.as_str()]);
    let (_, out, err) = run(program, &args, Some(&script), Some(&rig.local.0));
    assert!(out.contains("226"), "{program} {name}: {out}{err}");
    rig.stored(name);
    rig.fetched(&rig.local.0.join(format!("back-{name}")));
}

#[test]
fn inetutils_ftp_both_modes_both_families() {
    let rig = Rig::start("");
    for family in BOTH {
        for mode in MODES {
            let name = Rig::name("inetutils", family, mode);
            bsd_style("inetutils-ftp", &["-n", "-v"], &rig, family, mode, &name);
        }
    }
}

#[test]
fn tnftp_both_modes_both_families() {
    let rig = Rig::start("");
    for family in BOTH {
        for mode in MODES {
            let name = Rig::name("tnftp", family, mode);
            let flag = if mode == Mode::Active { "-A" } else { "-p" };
            bsd_style("tnftp", &["-n", "-v", flag], &rig, family, mode, &name);
        }
    }
}

#[test]
fn python_ftplib_both_modes_both_families() {
    let rig = Rig::start("");
    for family in BOTH {
        for mode in MODES {
            let name = Rig::name("ftplib", family, mode);
            let script = format!(
                "import ftplib\nf = ftplib.FTP()\nf.connect({host:?}, {port})\nf.login('dev', {PASSWORD:?})\nf.set_pasv({pasv})\n\
                 f.storbinary('STOR {name}', open('up.bin', 'rb'))\nf.retrbinary('RETR {name}', open('back-{name}', 'wb').write)\nf.quit()\n",
                host = family.host(),
                port = rig.port(),
                pasv = if mode == Mode::Passive { "True" } else { "False" },
            );
            ok(
                run("python3", &["-c", &script], None, Some(&rig.local.0)),
                &name,
            );
            rig.stored(&name);
            rig.fetched(&rig.local.0.join(format!("back-{name}")));
        }
    }
}

#[test]
fn perl_net_ftp_both_modes_both_families() {
    let rig = Rig::start("");
    for family in BOTH {
        for mode in MODES {
            let name = Rig::name("netftp", family, mode);
            let script = format!(
                "use Net::FTP; my $f = Net::FTP->new('{host}', Port => {port}, Passive => {pasv}) or die $@;\n\
                 $f->login('dev', '{PASSWORD}') or die $f->message; $f->binary;\n\
                 $f->put('up.bin', '{name}') or die $f->message;\n\
                 $f->get('{name}', 'back-{name}') or die $f->message; $f->quit;\n",
                host = family.host(),
                port = rig.port(),
                pasv = u8::from(mode == Mode::Passive),
            );
            ok(
                run("perl", &["-e", &script], None, Some(&rig.local.0)),
                &name,
            );
            rig.stored(&name);
            rig.fetched(&rig.local.0.join(format!("back-{name}")));
        }
    }
}

#[test]
fn wget_downloads_in_both_modes_both_families() {
    // wget only downloads.
    let rig = Rig::start("");
    std::fs::copy(rig.up(), rig.server.home("dev").join("served.bin")).unwrap();
    for family in BOTH {
        for mode in MODES {
            let back = rig.local.0.join(Rig::name("wget", family, mode));
            let mut args = vec!["-q", "--tries=1", "-O", back.to_str().unwrap()];
            if mode == Mode::Active {
                args.push("--no-passive-ftp");
            }
            let url = rig.url(family, "served.bin");
            args.push(&url);
            ok(
                run("wget", &args, None, None),
                &format!("wget {family:?} {mode:?}"),
            );
            rig.fetched(&back);
        }
    }
}

#[test]
fn busybox_ftpput_ftpget_passive_both_families() {
    // busybox's ftpput/ftpget have passive mode only (PASV, EPSV on IPv6).
    let rig = Rig::start("");
    for family in BOTH {
        let name = Rig::name("busybox", family, Mode::Passive);
        let port = rig.port();
        let common = [
            "-u",
            "dev",
            "-p",
            PASSWORD,
            "-P",
            port.as_str(),
            family.host(),
        ];
        let mut put = vec!["ftpput"];
        put.extend(common);
        put.extend([name.as_str(), "up.bin"]);
        ok(run("busybox", &put, None, Some(&rig.local.0)), &name);
        rig.stored(&name);
        let back = format!("back-{name}");
        let mut get = vec!["ftpget"];
        get.extend(common);
        get.extend([back.as_str(), name.as_str()]);
        ok(run("busybox", &get, None, Some(&rig.local.0)), &name);
        rig.fetched(&rig.local.0.join(back));
    }
}

#[test]
fn ncftp_both_modes_ipv4() {
    // ncftp 3.2 has no IPv6: ::1 fails on its side (checked, so a newer
    // ncftp that can shows up here).
    let rig = Rig::start("");
    for mode in MODES {
        let name = Rig::name("ncftp", Family::V4, mode);
        std::fs::copy(rig.up(), rig.local.0.join(&name)).unwrap();
        let port = rig.port();
        let mut args = vec!["-u", "dev", "-p", PASSWORD, "-P", port.as_str()];
        if mode == Mode::Active {
            args.push("-E");
        }
        let mut put = args.clone();
        put.extend(["127.0.0.1", "/", name.as_str()]);
        ok(run("ncftpput", &put, None, Some(&rig.local.0)), &name);
        rig.stored(&name);
        let back = Scratch::new("ncftp-back");
        let mut get = args.clone();
        let remote = format!("/{name}");
        get.extend(["127.0.0.1", back.0.to_str().unwrap(), remote.as_str()]);
        ok(run("ncftpget", &get, None, None), &name);
        rig.fetched(&back.0.join(&name));
    }
    let port = rig.port();
    let v6 = run(
        "ncftpput",
        &[
            "-u", "dev", "-p", PASSWORD, "-P", &port, "::1", "/", "up.bin",
        ],
        None,
        Some(&rig.local.0),
    );
    assert!(!v6.0, "ncftp reached ::1: update docs/interop.md");
}

fn rclone(rig: &Rig, family: Family, args: &[&str]) -> (bool, String, String) {
    let obscured = run("rclone", &["obscure", PASSWORD], None, None).1;
    let mut command = std::process::Command::new("rclone");
    command
        .args(args)
        .env("RCLONE_CONFIG", "/dev/null")
        .env("RCLONE_FTP_HOST", family.url_host())
        .env("RCLONE_FTP_PORT", rig.port())
        .env("RCLONE_FTP_USER", "dev")
        .env("RCLONE_FTP_PASS", obscured.trim());
    let out = command.output().expect("run rclone");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn rclone_passive_both_families_with_writing_mdtm() {
    // rclone's FTP backend is passive only; --ftp-writing-mdtm sets the
    // file's time after the upload (MDTM's write form).
    let rig = Rig::start("");
    let up = rig.up();
    // 2020-01-02T03:04:05Z
    std::fs::File::options()
        .write(true)
        .open(&up)
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_577_934_245))
        .unwrap();
    for family in BOTH {
        let name = Rig::name("rclone", family, Mode::Passive);
        let remote = format!(":ftp:{name}");
        ok(
            rclone(
                &rig,
                family,
                &[
                    "copyto",
                    "--ftp-writing-mdtm",
                    up.to_str().unwrap(),
                    &remote,
                ],
            ),
            &name,
        );
        rig.stored(&name);
        let mtime = rig
            .server
            .home("dev")
            .join(&name)
            .metadata()
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(
            mtime
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            1_577_934_245,
            "{name}: time not set"
        );
        let back = rig.local.0.join(format!("back-{name}"));
        ok(
            rclone(&rig, family, &["copyto", &remote, back.to_str().unwrap()]),
            &name,
        );
        rig.fetched(&back);
    }
}

#[test]
fn aioftp_passive_both_families() {
    // aioftp's client is passive only (EPSV, then PASV).
    let rig = Rig::start("");
    for family in BOTH {
        let name = Rig::name("aioftp", family, Mode::Passive);
        let script = format!(
            "import asyncio, aioftp\n\
             async def main():\n\
             \x20   async with aioftp.Client.context({host:?}, {port}, 'dev', {PASSWORD:?}) as c:\n\
             \x20       await c.upload('up.bin', '{name}', write_into=True)\n\
             \x20       await c.download('{name}', 'back-{name}', write_into=True)\n\
             asyncio.run(main())\n",
            host = family.host(),
            port = rig.port(),
        );
        ok(
            run("python3", &["-c", &script], None, Some(&rig.local.0)),
            &name,
        );
        rig.stored(&name);
        rig.fetched(&rig.local.0.join(format!("back-{name}")));
    }
}

/// Sends PORT (IPv4) or EPRT (IPv6) for a listener of its own, lists the
/// directory, and prints the data connection's source address and the
/// transfer's final reply: what a device's firewall sees.
const ACTIVE_PROBE: &str = r#"
import socket, sys
host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
family = socket.AF_INET6 if ':' in host else socket.AF_INET
control = socket.create_connection((host, port), timeout=20)
replies = control.makefile('rb')
def reply():
    line = replies.readline().decode()
    while line[3:4] == '-':
        line = replies.readline().decode()
    return line.strip()
def send(command):
    control.sendall((command + '\r\n').encode())
    return reply()
reply()
send('USER ' + user)
send('PASS ' + password)
data = socket.socket(family, socket.SOCK_STREAM)
data.bind((host, 0))
data.listen(1)
data.settimeout(20)
data_port = data.getsockname()[1]
if family == socket.AF_INET:
    print(send('PORT %s,%d,%d' % (host.replace('.', ','), data_port >> 8, data_port & 255)))
else:
    print(send('EPRT |2|%s|%d|' % (host, data_port)))
opened = send('LIST')
print(opened)
if not opened.startswith('150'):
    sys.exit(1)
connection, source = data.accept()
while connection.recv(4096):
    pass
connection.close()
print(reply())
print('source', source[0], source[1])
"#;

#[test]
fn dual_stack_active_mode_leaves_from_port_20_for_ipv4_and_ipv6_devices() {
    // `listen = [::]` with the default source port: an IPv4 device's
    // control connection is local to ::ffff:127.0.0.1, and its active data
    // connection must still leave from 127.0.0.1 port 20 (it once failed
    // with "Address family not supported by protocol (os error 97)").
    let rig = Rig::start("");
    for family in BOTH {
        let (ok, out, err) = run(
            "python3",
            &[
                "-c",
                ACTIVE_PROBE,
                family.host(),
                &rig.port(),
                "dev",
                PASSWORD,
            ],
            None,
            None,
        );
        let what = format!("{family:?}: {out}{err}\n{}", rig.server.log());
        assert!(ok, "{what}");
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("200"), "PORT/EPRT: {what}");
        assert!(lines[1].starts_with("150"), "LIST: {what}");
        assert!(lines[2].starts_with("226"), "LIST: {what}");
        assert_eq!(
            lines[3],
            format!("source {} 20", family.host()),
            "data connection source: {what}"
        );
    }
}
