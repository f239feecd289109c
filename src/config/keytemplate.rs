//! The object key template (`s3_key`), parsed once with the configuration into
//! literal text and placeholders, and rendered when an upload is spooled (so a
//! replayed file keeps the key decided at upload time).
//!
//! Placeholders: `{user}`, `{path}` (the path inside the user's home, without
//! the leading `/`), `{filename}` (its last component), `{yyyy}` `{mm}` `{dd}`
//! `{hh}` `{mi}` `{ss}` (upload time, UTC), `{instance}` (EC2 instance id,
//! else the host name), `{uuid}` (random, version 4). Anything else in
//! braces is an error. Hive-style partitions are plain text:
//! `user={user}/dt={yyyy}-{mm}-{dd}/...`.

use crate::clock::Utc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    User,
    Path,
    Filename,
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Instance,
    Uuid,
}

const FIELDS: [(&str, Field); 11] = [
    ("user", Field::User),
    ("path", Field::Path),
    ("filename", Field::Filename),
    ("yyyy", Field::Year),
    ("mm", Field::Month),
    ("dd", Field::Day),
    ("hh", Field::Hour),
    ("mi", Field::Minute),
    ("ss", Field::Second),
    ("instance", Field::Instance),
    ("uuid", Field::Uuid),
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Field(Field),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTemplate {
    pieces: Vec<Piece>,
}

/// What one upload puts into its key.
pub struct KeyFields<'a> {
    pub user: &'a str,
    /// The virtual path, with or without its leading `/`.
    pub path: &'a str,
    pub time: Utc,
    pub instance: &'a str,
    pub uuid: &'a str,
}

/// The default: Hive-style partitions that Athena and Glue read as columns
/// (`user`, `dt`), and a file name that keeps every upload: the time of day
/// and a random part before the device's own name. Devices re-send under
/// fixed names (a logger writes `LOG.CSV` every 5 minutes); with `{path}`
/// alone each upload would replace the day's previous one in the lake.
/// Every object lies directly in its partition (no deeper folders); the
/// path the device used is in the object's `x-amz-meta-path`.
pub const DEFAULT: &str = "user={user}/dt={yyyy}-{mm}-{dd}/{hh}{mi}{ss}-{uuid}-{filename}";

impl KeyTemplate {
    pub fn parse(text: &str) -> Result<KeyTemplate, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                Some(at) if rest.as_bytes()[at] == b'}' => {
                    return Err(format!("`}}` without `{{` in `{text}`"))
                }
                Some(at) => {
                    if at > 0 {
                        pieces.push(Piece::Literal(rest[..at].to_string()));
                    }
                    let close = rest[at..]
                        .find('}')
                        .ok_or_else(|| format!("`{{` without `}}` in `{text}`"))?;
                    let name = &rest[at + 1..at + close];
                    let field = FIELDS
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, f)| *f)
                        .ok_or_else(|| {
                            format!(
                                "unknown placeholder `{{{name}}}` (known: {})",
                                FIELDS
                                    .iter()
                                    .map(|(n, _)| format!("{{{n}}}"))
                                    .collect::<Vec<_>>()
                                    .join(" ")
                            )
                        })?;
                    pieces.push(Piece::Field(field));
                    rest = &rest[at + close + 1..];
                }
                None => {
                    pieces.push(Piece::Literal(rest.to_string()));
                    rest = "";
                }
            }
        }
        let has = |f: Field| pieces.contains(&Piece::Field(f));
        // Without one of these every upload of a day (or hour) would overwrite
        // the same object.
        if !has(Field::Path) && !has(Field::Filename) && !has(Field::Uuid) {
            return Err(
                "the key must contain {path}, {filename} or {uuid}, or uploads overwrite each other"
                    .into(),
            );
        }
        // S3 accepts a leading `/`, but it makes an empty first "folder" that
        // consoles and Athena show confusingly.
        if text.starts_with('/') {
            return Err("the key must not start with `/`".into());
        }
        Ok(KeyTemplate { pieces })
    }

    pub fn render(&self, f: &KeyFields<'_>) -> String {
        let path = f.path.trim_start_matches('/');
        let mut key = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => key.push_str(text),
                Piece::Field(field) => match field {
                    Field::User => key.push_str(f.user),
                    Field::Path => key.push_str(path),
                    Field::Filename => key.push_str(path.rsplit('/').next().unwrap_or(path)),
                    Field::Year => key.push_str(&format!("{:04}", f.time.year)),
                    Field::Month => key.push_str(&format!("{:02}", f.time.month)),
                    Field::Day => key.push_str(&format!("{:02}", f.time.day)),
                    Field::Hour => key.push_str(&format!("{:02}", f.time.hour)),
                    Field::Minute => key.push_str(&format!("{:02}", f.time.minute)),
                    Field::Second => key.push_str(&format!("{:02}", f.time.second)),
                    Field::Instance => key.push_str(f.instance),
                    Field::Uuid => key.push_str(f.uuid),
                },
            }
        }
        key
    }
}

/// A random UUID, version 4 (RFC 9562 §5.4).
pub fn uuid_v4() -> String {
    let mut b: [u8; 16] = crate::sys::random_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> KeyFields<'static> {
        KeyFields {
            user: "dev01",
            path: "/metrics/2026/a.csv",
            // 2024-02-29T12:34:56Z
            time: Utc::from_unix(1_709_210_096),
            instance: "i-0abc",
            uuid: "u-1",
        }
    }

    /// (template, expected key or `Err` substring, reason)
    const CASES: &[(&str, Result<&str, &str>, &str)] = &[
        (
            DEFAULT,
            Ok("user=dev01/dt=2024-02-29/123456-u-1-a.csv"),
            "the default is Hive-style, with the time of day and a unique part",
        ),
        (
            "user={user}/dt={yyyy}-{mm}-{dd}/{path}",
            Ok("user=dev01/dt=2024-02-29/metrics/2026/a.csv"),
            "the former default",
        ),
        (
            "{hh}{mi}{ss}/{path}",
            Ok("123456/metrics/2026/a.csv"),
            "time of day",
        ),
        (
            "raw/{user}/{yyyy}/{mm}/{dd}/{hh}/{filename}",
            Ok("raw/dev01/2024/02/29/12/a.csv"),
            "DESIGN.md's sketch, filename only",
        ),
        ("{instance}/{uuid}", Ok("i-0abc/u-1"), "instance and uuid"),
        ("{path}", Ok("metrics/2026/a.csv"), "leading slash dropped"),
        (
            "{user}/{date}/{path}",
            Err("unknown placeholder `{date}`"),
            "typo",
        ),
        ("{user", Err("without `}`"), "unclosed"),
        ("a}/{path}", Err("without `{`"), "stray close"),
        ("{user}/{yyyy}", Err("overwrite"), "no unique part"),
        ("/{path}", Err("start with"), "leading slash"),
        (
            "{}{path}",
            Err("unknown placeholder `{}`"),
            "empty placeholder",
        ),
    ];

    #[test]
    fn table() {
        for (template, expected, reason) in CASES {
            match (KeyTemplate::parse(template), expected) {
                (Ok(t), Ok(key)) => assert_eq!(&t.render(&fields()), key, "{reason}"),
                (Err(e), Err(part)) => assert!(e.contains(part), "{reason}: {e}"),
                (got, want) => panic!("{reason}: {template}: got {got:?}, want {want:?}"),
            }
        }
    }

    /// A logger writes LOG.CSV every 5 minutes: two uploads of the same
    /// name by the same user on the same day, even in the same second,
    /// get two keys in the same partition.
    #[test]
    fn the_default_keeps_every_upload_of_one_name() {
        let t = KeyTemplate::parse(DEFAULT).unwrap();
        let (a, b) = (uuid_v4(), uuid_v4());
        let upload = |uuid: &str| {
            t.render(&KeyFields {
                path: "/LOG.CSV",
                uuid,
                ..fields()
            })
        };
        let (first, second) = (upload(&a), upload(&b));
        assert_ne!(first, second);
        for key in [&first, &second] {
            assert!(key.starts_with("user=dev01/dt=2024-02-29/123456-"), "{key}");
            assert!(key.ends_with("-LOG.CSV"), "{key}");
            // Directly in the partition: Glue's user/dt layout.
            assert_eq!(key.matches('/').count(), 2, "{key}");
        }
    }

    #[test]
    fn uuid_shape() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
    }
}
