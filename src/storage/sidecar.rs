//! The spool's sidecar: what is recorded about one queued file (user,
//! client, time, path, size, CRC64NVME, object key), one `name=value` per
//! line, parsed once into `Meta`. Written by storage/spool.rs in place and
//! ending in an `end` line (version 3), so a sidecar cut short by a power
//! loss is told apart from a damaged one.

use std::path::PathBuf;

/// What the sidecar records about one queued file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub user: String,
    /// The client's address as the session saw it (after PROXY).
    pub client: String,
    /// Upload time, Unix milliseconds.
    pub uploaded_ms: u64,
    /// The path inside the user's home, with its leading `/`.
    pub path: String,
    /// The home copy, for `keep_local = off`.
    pub home_file: PathBuf,
    /// The home copy's identity (`DEV:INODE`) when spooled: after delivery
    /// it is removed only if it is still that file (a later upload to the
    /// same name made a new inode, which its own entry will deliver).
    pub home_id: String,
    pub size: u64,
    /// CRC64NVME of the file, computed while it was received; `None` only
    /// in sidecars written before it existed (version 1): then the delivery
    /// computes it.
    pub crc64nvme: Option<u64>,
    /// What the device said in `CLNT`, if anything (optional: sidecars
    /// written without it stay valid).
    pub clnt: Option<String>,
    /// The object key, decided at upload time.
    pub key: String,
}

const MAGIC: &str = "lakeftpd-spool 3";
/// Sidecars of earlier versions are still read (a spool survives an
/// upgrade): version 2 has no `end` line (it was written to a temporary and
/// renamed, whole or not at all); version 1 neither checksum nor client name.
const MAGIC_V2: &str = "lakeftpd-spool 2";
const MAGIC_V1: &str = "lakeftpd-spool 1";
/// The last line of a version 3 sidecar: it was written whole.
const END: &str = "end";

/// Escapes `%`, CR and LF so a value stays on its line.
fn escape(value: &str) -> String {
    value
        .replace('%', "%25")
        .replace('\n', "%0A")
        .replace('\r', "%0D")
}

/// The inverse of `escape`, in one pass (so `%250A` stays `%0A`).
fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let (code, skip) = match rest.get(at + 1..at + 3) {
            Some("25") => ('%', 3),
            Some("0A") => ('\n', 3),
            Some("0D") => ('\r', 3),
            _ => ('%', 1),
        };
        out.push(code);
        rest = &rest[at + skip..];
    }
    out.push_str(rest);
    out
}

impl Meta {
    pub fn format(&self) -> String {
        format!(
            "{MAGIC}\nuser={}\nclient={}\nuploaded_ms={}\npath={}\nhome_file={}\nhome_id={}\nsize={}\n{}{}key={}\n{END}\n",
            escape(&self.user),
            escape(&self.client),
            self.uploaded_ms,
            escape(&self.path),
            escape(&self.home_file.to_string_lossy()),
            escape(&self.home_id),
            self.size,
            self.crc64nvme
                .map_or(String::new(), |crc| format!("crc64nvme={crc:016x}\n")),
            self.clnt
                .as_ref()
                .map_or(String::new(), |name| format!("clnt={}\n", escape(name))),
            escape(&self.key),
        )
    }

    /// Parses a sidecar; every field is required, unknown ones are refused.
    pub fn parse(text: &str) -> Result<Meta, String> {
        let mut lines = text.lines();
        let version = match lines.next() {
            Some(MAGIC) => 3,
            Some(MAGIC_V2) => 2,
            Some(MAGIC_V1) => 1,
            _ => return Err("not a lakeftpd spool sidecar (version 1 to 3)".into()),
        };
        let mut ended = false;
        let (mut user, mut client, mut uploaded_ms, mut path) = (None, None, None, None);
        let (mut home_file, mut home_id, mut size, mut key) = (None, None, None, None);
        let (mut crc64nvme, mut clnt) = (None, None);
        for line in lines {
            if ended {
                return Err("a line after `end`".into());
            }
            if version >= 3 && line == END {
                ended = true;
                continue;
            }
            let (name, value) = line
                .split_once('=')
                .ok_or_else(|| format!("bad line `{line}`"))?;
            let value = unescape(value);
            let number = || value.parse::<u64>().map_err(|_| format!("bad `{name}`"));
            match name {
                "user" => user = Some(value),
                "client" => client = Some(value),
                "uploaded_ms" => uploaded_ms = Some(number()?),
                "path" => path = Some(value),
                "home_file" => home_file = Some(PathBuf::from(value)),
                "home_id" => home_id = Some(value),
                "size" => size = Some(number()?),
                "key" => key = Some(value),
                "crc64nvme" if version >= 2 => {
                    crc64nvme = Some(
                        u64::from_str_radix(&value, 16)
                            .ok()
                            .filter(|_| value.len() == 16)
                            .ok_or("bad `crc64nvme`")?,
                    )
                }
                "clnt" => clnt = Some(value),
                _ => return Err(format!("unknown field `{name}`")),
            }
        }
        if version >= 3 && !ended {
            return Err("no `end` line: written partly".into());
        }
        let missing = |name: &str| format!("missing `{name}`");
        Ok(Meta {
            user: user.ok_or_else(|| missing("user"))?,
            client: client.ok_or_else(|| missing("client"))?,
            uploaded_ms: uploaded_ms.ok_or_else(|| missing("uploaded_ms"))?,
            path: path.ok_or_else(|| missing("path"))?,
            home_file: home_file.ok_or_else(|| missing("home_file"))?,
            home_id: home_id.ok_or_else(|| missing("home_id"))?,
            size: size.ok_or_else(|| missing("size"))?,
            crc64nvme,
            clnt,
            key: key.ok_or_else(|| missing("key"))?,
        })
    }
}

/// A sidecar cut short by a power loss: written by this version (or not
/// recognisable at all, as an empty or zero-filled file is) without its
/// `end` line. Its flush never finished, so its upload got no 226.
pub fn is_partial(text: &str) -> bool {
    let older = text.starts_with(MAGIC_V1) || text.starts_with(MAGIC_V2);
    !older && !text.ends_with(&format!("\n{END}\n"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn meta() -> Meta {
        Meta {
            user: "dev01".into(),
            client: "192.0.2.7:40000".into(),
            uploaded_ms: 1_709_210_096_000,
            path: "/a b/100%\nx%0A.csv".into(),
            home_file: PathBuf::from("/srv/dev01/a b/100%\nx.csv"),
            home_id: "2049:1234".into(),
            size: 42,
            crc64nvme: Some(0xae8b_1486_0a79_9888),
            clnt: Some("Logger 2.1\nx".into()),
            key: "user=dev01/a b/100%\nx.csv".into(),
        }
    }

    #[test]
    fn sidecar_round_trip() {
        assert_eq!(Meta::parse(&meta().format()), Ok(meta()));
    }

    #[test]
    fn sidecar_round_trip_with_clnt() {
        // CLNT is optional; when present it survives a restart.
        let with = Meta {
            clnt: Some("DH-IPC V2.8".into()),
            ..meta()
        };
        assert_eq!(Meta::parse(&with.format()), Ok(with));
    }

    #[test]
    fn sidecar_without_checksum_round_trip() {
        let m = Meta {
            crc64nvme: None,
            clnt: None,
            ..meta()
        };
        assert_eq!(Meta::parse(&m.format()), Ok(m));
    }

    #[test]
    fn version_1_sidecar_is_read() {
        // What a spool written before the checksum holds after an upgrade.
        let text = "lakeftpd-spool 1\nuser=u\nclient=c\nuploaded_ms=1\npath=/p\nhome_file=/h\nhome_id=1:2\nsize=3\nkey=k\n";
        let m = Meta::parse(text).unwrap();
        assert_eq!((m.crc64nvme, m.size), (None, 3));
    }

    /// (sidecar text, error substring, reason)
    const BAD: &[(&str, &str, &str)] = &[
        ("", "not a lakeftpd", "empty"),
        ("lakeftpd-spool 4\n", "not a lakeftpd", "future version"),
        (
            "lakeftpd-spool 3\nuser=u\nclient=c\nuploaded_ms=1\npath=/p\nhome_file=/h\nhome_id=1:2\nsize=3\nkey=k\n",
            "no `end`",
            "cut short",
        ),
        ("lakeftpd-spool 3\nend\nuser=u\n", "after `end`", "a line after end"),
        (
            "lakeftpd-spool 1\ncrc64nvme=0000000000000001\n",
            "unknown field",
            "no checksum in version 1",
        ),
        (
            "lakeftpd-spool 2\ncrc64nvme=12\n",
            "bad `crc64nvme`",
            "checksum not 16 hex digits",
        ),
        ("lakeftpd-spool 1\nuser=a\n", "missing", "truncated"),
        (
            "lakeftpd-spool 1\nwho=a\n",
            "unknown field",
            "unknown field",
        ),
        ("lakeftpd-spool 1\nsize=x\n", "bad `size`", "bad number"),
        ("lakeftpd-spool 1\nnoequals\n", "bad line", "no equals"),
    ];

    #[test]
    fn bad_sidecars() {
        for (text, part, reason) in BAD {
            let e = Meta::parse(text).unwrap_err();
            assert!(e.contains(part), "{reason}: {e}");
        }
    }

    #[test]
    fn version_2_sidecar_without_end_is_read() {
        // Written by the build before `end` (temporary and rename): whole.
        let text = meta()
            .format()
            .replace(MAGIC, MAGIC_V2)
            .replace("end\n", "");
        assert_eq!(Meta::parse(&text), Ok(meta()));
        assert!(!is_partial(&text));
    }
}
