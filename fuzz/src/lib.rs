//! The fuzz target bodies, shared by the libFuzzer binaries
//! (`fuzz_targets/*.rs`, nightly) and the stable runner (`src/bin/stable.rs`).
//!
//! One body per parser of untrusted input. Each must never panic on any
//! input (the release build aborts on a panic, ending every session), and
//! each asserts a property where one exists: a round trip through a
//! formatter, a containment, or agreement with a simple reference. A failed
//! assertion is a panic, so both runners report it with the input.

use lakeftpd::config;
use lakeftpd::config::keytemplate::{KeyFields, KeyTemplate};
use lakeftpd::limits::{MAX_PATH, MAX_PROXY_HEADER, PROXY_V1_MAX, TEMP_PREFIX};
use lakeftpd::protocol::address;
use lakeftpd::protocol::command::{self, Command, EpsvArg, Mechanism, Name, Prot, SetTime, Type};
use lakeftpd::protocol::http::{parse_request_line, Route};
use lakeftpd::protocol::proxy::{self, Header, V2_SIGNATURE};
use lakeftpd::storage::jail::{self, VirtualPath};
use lakeftpd::storage::spool::Meta;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Component, Path, PathBuf};

/// One target's body: panics when the input breaks the parser's property.
pub type Body = fn(&[u8]);

/// Every target, by name (the names of `fuzz_targets/*.rs` and of
/// `corpus/<name>/`).
pub const TARGETS: &[(&str, Body)] = &[
    ("command_line", command_line),
    ("port_eprt", port_eprt),
    ("proxy_v1", proxy_v1),
    ("proxy_v2", proxy_v2),
    ("config", config),
    ("spool_sidecar", spool_sidecar),
    ("http_request_line", http_request_line),
    ("key_template", key_template),
    ("jail_resolve", jail_resolve),
];

/// Bytes handed out in order; zeros once used up, so any input builds a value.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |n, _| n << 8 | u64::from(self.u8()))
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        out.iter_mut().for_each(|b| *b = self.u8());
        out
    }

    /// A string of at most `max` bytes' worth, lossily decoded.
    fn text(&mut self, max: usize) -> String {
        let n = usize::from(self.u8()).min(max).min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        String::from_utf8_lossy(head).into_owned()
    }

    fn addr(&mut self, v6: bool) -> SocketAddr {
        let ip = if v6 {
            IpAddr::V6(Ipv6Addr::from(self.array::<16>()))
        } else {
            IpAddr::V4(Ipv4Addr::from(self.array::<4>()))
        };
        SocketAddr::new(ip, self.u16())
    }
}

/// A command as a client would send it (verb upper case, one space), for
/// the property `parse(wire(parse(x))) == parse(x)`. Names stay bytes (the
/// session decodes them). `None`: no line can give this command (not
/// reached by `parse`).
fn wire(cmd: &Command<'_>) -> Option<Vec<u8>> {
    let with = |verb: &str, arg: &[u8]| [verb.as_bytes(), b" ", arg].concat();
    let name = |verb: &str, n: &Name<'_>| with(verb, n.0);
    let maybe = |verb: &str, arg: &Option<Name<'_>>| match arg {
        Some(a) => with(verb, a.0),
        None => verb.as_bytes().to_vec(),
    };
    let text = |s: &str| s.as_bytes().to_vec();
    Some(match cmd {
        Command::User(a) => with("USER", a.as_bytes()),
        Command::Pass(a) => with("PASS", a.as_bytes()),
        Command::Quit => text("QUIT"),
        Command::Noop => text("NOOP"),
        Command::Syst => text("SYST"),
        Command::Feat => text("FEAT"),
        Command::Opts(a) => with("OPTS", a.as_bytes()),
        Command::Help => text("HELP"),
        Command::Stat(a) => maybe("STAT", a),
        Command::Type(Type::Ascii) => text("TYPE A"),
        Command::Type(Type::Image) => text("TYPE I"),
        Command::Mode => text("MODE S"),
        Command::Stru => text("STRU F"),
        Command::Allo => text("ALLO"),
        Command::Clnt(a) => with("CLNT", a.as_bytes()),
        Command::Pwd => text("PWD"),
        Command::Cwd(a) => name("CWD", a),
        Command::Cdup => text("CDUP"),
        Command::Mkd(a) => name("MKD", a),
        Command::Rmd(a) => name("RMD", a),
        Command::Dele(a) => name("DELE", a),
        Command::Rnfr(a) => name("RNFR", a),
        Command::Rnto(a) => name("RNTO", a),
        Command::Size(a) => name("SIZE", a),
        Command::Mdtm(a) => name("MDTM", a),
        Command::SetTime { verb, time, path } => {
            let verb = match verb {
                SetTime::Mdtm => "MDTM",
                SetTime::Mfmt => "MFMT",
                SetTime::SiteUtime => "SITE UTIME",
            };
            with(verb, &[time.time_val().as_bytes(), b" ", path.0].concat())
        }
        Command::List(a) => maybe("LIST", a),
        Command::Nlst(a) => maybe("NLST", a),
        Command::Mlsd(a) => maybe("MLSD", a),
        Command::Mlst(a) => maybe("MLST", a),
        Command::Stor(a) => name("STOR", a),
        Command::Stou => text("STOU"),
        Command::Appe(a) => name("APPE", a),
        Command::Retr(a) => name("RETR", a),
        Command::Rest(n) => text(&format!("REST {n}")),
        Command::Abor => text("ABOR"),
        Command::Port(addr) => text(&format!("PORT {}", port_arg(addr)?)),
        Command::Eprt(addr) => text(&format!("EPRT {}", eprt_arg(addr))),
        Command::Pasv => text("PASV"),
        Command::Epsv(EpsvArg::Any) => text("EPSV"),
        Command::Epsv(EpsvArg::All) => text("EPSV ALL"),
        Command::Epsv(EpsvArg::Protocol(n)) => text(&format!("EPSV {n}")),
        Command::Auth(Mechanism::Tls) => text("AUTH TLS"),
        Command::Auth(Mechanism::Unknown) => text("AUTH KERBEROS"),
        Command::Pbsz(n) => text(&format!("PBSZ {n}")),
        Command::Prot(Prot::Clear) => text("PROT C"),
        Command::Prot(Prot::Safe) => text("PROT S"),
        Command::Prot(Prot::Confidential) => text("PROT E"),
        Command::Prot(Prot::Private) => text("PROT P"),
        Command::Ccc => text("CCC"),
        // One line per refusal text.
        Command::NotOffered(what) => text(match *what {
            "MODE B and MODE C are" => "MODE B",
            _ => "SITE CHMOD",
        }),
    })
}

/// `h1,h2,h3,h4,p1,p2` (RFC 959 §4.1.2); IPv4 only.
fn port_arg(addr: &SocketAddr) -> Option<String> {
    let IpAddr::V4(ip) = addr.ip() else {
        return None;
    };
    let [a, b, c, d] = ip.octets();
    let [p1, p2] = addr.port().to_be_bytes();
    Some(format!("{a},{b},{c},{d},{p1},{p2}"))
}

/// `|1|ip|port|` or `|2|ip|port|` (RFC 2428 §2).
fn eprt_arg(addr: &SocketAddr) -> String {
    let proto = if addr.is_ipv4() { 1 } else { 2 };
    format!("|{proto}|{}|{}|", addr.ip(), addr.port())
}

/// `protocol::command::parse`: never panics; what parses re-parses the
/// same from its canonical form; a path argument is at most `MAX_PATH`.
pub fn command_line(data: &[u8]) {
    let Ok(cmd) = command::parse(data) else {
        return;
    };
    if let Command::Cwd(p) | Command::Stor(p) | Command::Retr(p) | Command::Dele(p) = &cmd {
        assert!(p.0.len() <= MAX_PATH, "path argument over MAX_PATH");
    }
    let line = wire(&cmd).expect("every parsed command has a wire form");
    assert_eq!(
        command::parse(&line),
        Ok(cmd),
        "canonical form {:?} parses differently",
        String::from_utf8_lossy(&line)
    );
}

/// `address::parse_port` / `parse_eprt`: each address re-parses from its canonical
/// form, and an IPv4 address reads the same through the other command.
pub fn port_eprt(data: &[u8]) {
    let arg = String::from_utf8_lossy(data);
    if let Ok(addr) = address::parse_port(&arg) {
        assert!(addr.is_ipv4());
        let canonical = port_arg(&addr).unwrap();
        assert_eq!(address::parse_port(&canonical), Ok(addr), "{canonical}");
        if addr.port() != 0 {
            assert_eq!(address::parse_eprt(&eprt_arg(&addr)), Ok(addr));
        }
    }
    if let Ok(addr) = address::parse_eprt(&arg) {
        assert_ne!(addr.port(), 0, "EPRT refuses port 0");
        assert_eq!(address::parse_eprt(&eprt_arg(&addr)), Ok(addr));
        if let Some(canonical) = port_arg(&addr) {
            assert_eq!(address::parse_port(&canonical), Ok(addr));
        }
    }
    // Built from bytes: every address formats and parses back.
    let mut b = Bytes(data);
    let v6 = b.u8() & 1 == 1;
    let addr = b.addr(v6);
    if addr.port() != 0 {
        assert_eq!(address::parse_eprt(&eprt_arg(&addr)), Ok(addr));
    }
    if let Some(canonical) = port_arg(&addr) {
        assert_eq!(address::parse_port(&canonical), Ok(addr));
    }
}

/// What every PROXY parse must respect, whatever the version: a complete
/// header's length fits the buffer and the limit; the header alone parses
/// the same; shorter prefixes ask for more (segmentation never changes the
/// verdict); a refusal stays a refusal when more bytes arrive.
fn proxy_properties(version: proxy::Version, data: &[u8], limit: usize) {
    let parsed = proxy::parse(version, data);
    match parsed {
        Ok(Some((_, n))) => {
            assert!(n <= data.len() && n <= limit, "length {n} out of bounds");
            assert_eq!(proxy::parse(version, &data[..n]), parsed);
            let probes = [
                0,
                1,
                5,
                11,
                12,
                13,
                15,
                16,
                n / 2,
                n.saturating_sub(2),
                n - 1,
            ];
            for k in probes.into_iter().filter(|&k| k < n) {
                assert_eq!(
                    proxy::parse(version, &data[..k]),
                    Ok(None),
                    "prefix of {k} bytes of a complete header refused"
                );
            }
        }
        Ok(None) => assert!(data.len() < limit, "incomplete past the limit"),
        Err(_) => {
            let mut more = data.to_vec();
            more.extend_from_slice(b"\r\n\0");
            assert!(proxy::parse(version, &more).is_err(), "refusal undone");
        }
    }
}

fn v1_line(source: SocketAddr, destination: SocketAddr) -> String {
    let family = if source.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {family} {} {} {} {}\r\n",
        source.ip(),
        destination.ip(),
        source.port(),
        destination.port()
    )
}

fn v2_header(source: SocketAddr, destination: SocketAddr, tlvs: &[u8]) -> Vec<u8> {
    let mut block = Vec::new();
    let fam = match (source.ip(), destination.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            block.extend_from_slice(&s.octets());
            block.extend_from_slice(&d.octets());
            0x11
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            block.extend_from_slice(&s.octets());
            block.extend_from_slice(&d.octets());
            0x21
        }
        _ => unreachable!("one family per header"),
    };
    block.extend_from_slice(&source.port().to_be_bytes());
    block.extend_from_slice(&destination.port().to_be_bytes());
    block.extend_from_slice(tlvs);
    let mut h = V2_SIGNATURE.to_vec();
    h.extend_from_slice(&[0x21, fam]);
    h.extend_from_slice(&(block.len() as u16).to_be_bytes());
    h.extend_from_slice(&block);
    h
}

/// Two addresses of one family built from the input.
fn address_pair(b: &mut Bytes<'_>) -> (SocketAddr, SocketAddr) {
    let v6 = b.u8() & 1 == 1;
    (b.addr(v6), b.addr(v6))
}

/// PROXY v1: the shared properties, and a header formatted from addresses
/// parses back to them.
pub fn proxy_v1(data: &[u8]) {
    proxy_properties(proxy::Version::V1, data, PROXY_V1_MAX);
    let (source, destination) = address_pair(&mut Bytes(data));
    let line = v1_line(source, destination);
    let expected = Header::Proxied {
        source,
        destination,
    };
    assert_eq!(
        proxy::parse_v1(line.as_bytes()),
        Ok(Some((expected, line.len()))),
        "{line:?}"
    );
}

/// PROXY v2: the shared properties, and a header encoded from addresses
/// (with well-formed TLVs after them) parses back to them.
pub fn proxy_v2(data: &[u8]) {
    proxy_properties(proxy::Version::V2, data, MAX_PROXY_HEADER);
    let mut b = Bytes(data);
    let (source, destination) = address_pair(&mut b);
    let mut tlvs = Vec::new();
    for _ in 0..b.u8() % 4 {
        let kind = b.u8();
        let value = b.text(64).into_bytes();
        tlvs.push(kind);
        tlvs.extend_from_slice(&(value.len() as u16).to_be_bytes());
        tlvs.extend_from_slice(&value);
    }
    let h = v2_header(source, destination, &tlvs);
    let expected = Header::Proxied {
        source,
        destination,
    };
    if h.len() <= MAX_PROXY_HEADER {
        assert_eq!(proxy::parse_v2(&h), Ok(Some((expected, h.len()))));
    } else {
        assert_eq!(proxy::parse_v2(&h), Err(proxy::Refusal::TooLong));
    }
}

/// `config::parse` (user-data is untrusted in transit): never panics; an
/// accepted text passes `check`; problems are sorted and name real lines.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match config::parse(&text) {
        Ok(c) => {
            assert_eq!(c.check(), vec![], "accepted but incoherent");
            for (i, u) in c.users.iter().enumerate() {
                assert!(u.home.is_absolute(), "relative home");
                assert!(!c.users[..i].iter().any(|o| o.name == u.name), "twice");
            }
        }
        Err(problems) => {
            assert!(!problems.is_empty(), "refused without a reason");
            let lines = text.lines().count();
            assert!(
                problems.iter().all(|p| p.line <= lines),
                "line past the end"
            );
            assert!(problems.windows(2).all(|w| w[0].line <= w[1].line));
        }
    }
}

/// The spool sidecar: `parse(format(m)) == m` for any `Meta` (values may
/// hold `%`, CR, LF, `=`), and whatever text parses re-parses the same.
pub fn spool_sidecar(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(m) = Meta::parse(&text) {
        assert_eq!(
            Meta::parse(&m.format()),
            Ok(m),
            "normalised sidecar differs"
        );
    }
    let mut b = Bytes(data);
    let m = Meta {
        user: b.text(64),
        client: b.text(64),
        uploaded_ms: b.u64(),
        path: b.text(255),
        home_file: PathBuf::from(b.text(255)),
        home_id: b.text(32),
        size: b.u64(),
        crc64nvme: if b.u64() % 2 == 0 { Some(b.u64()) } else { None },
        key: b.text(255),
        clnt: (b.u8() & 1 == 1).then(|| b.text(64)),
    };
    let formatted = m.format();
    assert_eq!(Meta::parse(&formatted), Ok(m), "{formatted:?}");
}

/// The health listener's request line: agrees with a plain reading of
/// RFC 9112 §3 for the three routes it serves, and a request formatted from
/// parts parses to what it asks.
pub fn http_request_line(data: &[u8]) {
    let route = parse_request_line(data);
    let expected_path = match route {
        Route::Health { .. } => Some("/healthz"),
        Route::Metrics { .. } => Some("/metrics"),
        Route::Live { .. } => Some("/livez"),
        _ => None,
    };
    if let (
        Some(expected),
        Route::Health { head } | Route::Metrics { head } | Route::Live { head },
    ) =
        (expected_path, route)
    {
        let line = std::str::from_utf8(data).expect("served lines are UTF-8");
        let parts: Vec<&str> = line.split(' ').collect();
        assert_eq!(parts.len(), 3, "{line:?}");
        assert_eq!(parts[0], if head { "HEAD" } else { "GET" });
        assert!(parts[2] == "HTTP/1.1" || parts[2] == "HTTP/1.0");
        assert_eq!(parts[1].split('?').next(), Some(expected));
    }
    let mut b = Bytes(data);
    let method = ["GET", "HEAD", "POST", "get"][usize::from(b.u8() % 4)];
    let path = ["/healthz", "/metrics", "/", "/healthz/", "/livez"][usize::from(b.u8() % 5)];
    let query: String = b.text(32).chars().filter(|c| !c.is_whitespace()).collect();
    let line = format!("{method} {path}?{query} HTTP/1.1");
    let route = parse_request_line(line.as_bytes());
    let want = match (method, path) {
        ("GET", "/healthz") => Route::Health { head: false },
        ("HEAD", "/healthz") => Route::Health { head: true },
        ("GET", "/metrics") => Route::Metrics { head: false },
        ("HEAD", "/metrics") => Route::Metrics { head: true },
        ("GET", "/livez") => Route::Live { head: false },
        ("HEAD", "/livez") => Route::Live { head: true },
        ("GET" | "HEAD", _) => Route::NotFound,
        ("POST", _) => Route::MethodNotAllowed,
        _ => Route::BadRequest,
    };
    assert_eq!(route, want, "{line:?}");
}

/// A reference renderer: every `{name}` replaced by its value, in one pass.
fn render_reference(text: &str, values: &[(&str, &str)]) -> Option<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}')? + open;
        let name = &rest[open + 1..close];
        out.push_str(values.iter().find(|(n, _)| *n == name)?.1);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// The key template (`s3_key`): the first line is the template, the rest
/// gives the fields. What parses renders like a one-pass reference.
pub fn key_template(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (template, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let Ok(t) = KeyTemplate::parse(template) else {
        return;
    };
    let mut b = Bytes(rest.as_bytes());
    let user = b.text(32);
    let path = b.text(128);
    let instance = b.text(32);
    let uuid = b.text(36);
    let time = lakeftpd::clock::Utc {
        year: i64::from(b.u16()),
        month: u32::from(b.u8() % 12 + 1),
        day: u32::from(b.u8() % 31 + 1),
        hour: u32::from(b.u8() % 24),
        minute: u32::from(b.u8() % 60),
        second: u32::from(b.u8() % 60),
    };
    let key = t.render(&KeyFields {
        user: &user,
        path: &path,
        time,
        instance: &instance,
        uuid: &uuid,
    });
    let trimmed = path.trim_start_matches('/');
    let filename = trimmed.rsplit('/').next().unwrap_or(trimmed);
    let (yyyy, mm, dd, hh, mi, ss) = (
        format!("{:04}", time.year),
        format!("{:02}", time.month),
        format!("{:02}", time.day),
        format!("{:02}", time.hour),
        format!("{:02}", time.minute),
        format!("{:02}", time.second),
    );
    let values = [
        ("user", user.as_str()),
        ("path", trimmed),
        ("filename", filename),
        ("yyyy", &yyyy),
        ("mm", &mm),
        ("dd", &dd),
        ("hh", &hh),
        ("mi", &mi),
        ("ss", &ss),
        ("instance", &instance),
        ("uuid", &uuid),
    ];
    let reference = render_reference(template, &values);
    assert!(!template.starts_with('/'), "accepted a leading `/`");
    assert_eq!(Some(key), reference, "template {template:?}");
}

/// The jail's lexical `resolve`: the first line is the working directory
/// (itself resolved from `/`), the rest the argument. An accepted path is
/// normalised (no empty, `.` or `..` component, no temporary's name, at most
/// `MAX_PATH`), stays inside any home it is joined to, and resolves to
/// itself from anywhere.
pub fn jail_resolve(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (cwd, arg) = text.split_once('\n').unwrap_or(("/", &text));
    let Ok(cwd) = jail::resolve(&VirtualPath::root(), cwd) else {
        return;
    };
    let Ok(path) = jail::resolve(&cwd, arg) else {
        return;
    };
    let p = path.as_str();
    assert!(p.starts_with('/'), "{p:?} not rooted");
    assert!(p.len() <= MAX_PATH, "over MAX_PATH");
    assert!(!p.contains('\0') && !p.contains('\\'));
    if p != "/" {
        for part in p[1..].split('/') {
            assert!(!matches!(part, "" | "." | ".."), "{p:?} not normalised");
            assert!(!part.starts_with(TEMP_PREFIX), "temporary addressable");
        }
    }
    let home = Path::new("/srv/ftp/user");
    let real = home.join(p.trim_start_matches('/'));
    assert!(real.starts_with(home), "{real:?} outside the home");
    assert!(
        real.components()
            .skip(1)
            .all(|c| matches!(c, Component::Normal(_))),
        "{real:?} has a non-normal component"
    );
    assert_eq!(jail::resolve(&VirtualPath::root(), p).as_ref(), Ok(&path));
    assert_eq!(jail::resolve(&cwd, p).as_ref(), Ok(&path));
}
