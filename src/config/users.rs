//! The one reader of a text's lines and `[user NAME]` sections, for the
//! configuration text (`parse.rs` gives it the global keys) and for a users
//! file (`users = ...`), which holds sections and nothing else.
//!
//! A users file may hold 100,000 users: every check here is a hash look-up
//! or a scan of one line, never a scan of the users read so far.

use super::keytemplate::KeyTemplate;
use super::value::{parse_abs_path, parse_permissions};
use super::{cidr, device, hash, tls, Config, Permissions, Problem, User};
use crate::limits;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher as _;
use std::path::PathBuf;
use std::sync::Arc;

/// The problems of one text, as they are found. At most `keep` are stored:
/// past them the text is refused anyway, and a users file of 64 MiB of bad
/// lines would otherwise keep millions of messages (6 GB was measured)
/// only for the first hundred to be logged. `scan` stops reading once the
/// store is full.
pub struct Problems {
    list: Vec<Problem>,
    keep: usize,
    /// The line at which reading stopped, the store being full.
    stopped_at: Option<usize>,
}

impl Problems {
    /// Stores at most `keep` problems (`usize::MAX`: all of them).
    pub fn keeping(keep: usize) -> Problems {
        Problems {
            list: Vec::new(),
            keep,
            stopped_at: None,
        }
    }

    pub fn push(&mut self, problem: Problem) {
        if self.list.len() < self.keep {
            self.list.push(problem);
        } else if self.stopped_at.is_none() {
            self.stopped_at = Some(problem.line);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    fn refused(self) -> Refused {
        let stopped_at = self.stopped_at;
        Refused {
            problems: self.into_sorted(),
            stopped_at,
        }
    }

    /// Past `keep`: reading stops.
    fn full(&self) -> bool {
        self.stopped_at.is_some()
    }

    /// The stored problems in line order.
    pub fn into_sorted(mut self) -> Vec<Problem> {
        self.list.sort_by_key(|p| p.line);
        self.list
    }
}

/// Why a users file was refused: its first problems (all of them, if
/// there were no more than were kept), in line order.
#[derive(Debug)]
pub struct Refused {
    pub problems: Vec<Problem>,
    /// Reading stopped at this line, more problems than kept being found.
    pub stopped_at: Option<usize>,
}

/// A user section while it is being read: fields not yet known.
struct Draft {
    line: usize,
    name: String,
    password_hash: Option<String>,
    home: Option<PathBuf>,
    permissions: Option<Permissions>,
    allow_from: Option<Vec<cidr::Cidr>>,
    s3_key: Option<Arc<KeyTemplate>>,
    tls_required: Option<bool>,
    tls_session_reuse: Option<bool>,
    device: device::DeviceDraft,
    /// A `password` line was present (even if its value was refused).
    password_given: bool,
    /// A second section for the same name: its lines are checked, then dropped.
    duplicate: bool,
}

/// The sections of one text, as they are read.
#[derive(Default)]
pub(super) struct Sections {
    drafts: Vec<Draft>,
    /// A hash of each name to its first draft: one table, no allocation per
    /// name (100,000 small allocations freed after a load would stay in the
    /// heap as fragments).
    names: HashMap<u64, usize>,
    hasher: std::hash::RandomState,
}

impl Sections {
    /// True once a section has begun: later `key = value` lines are its own.
    pub(super) fn open(&self) -> bool {
        !self.drafts.is_empty()
    }

    /// A `[...]` line (without its `[`); problems go to `fail`.
    pub(super) fn header(&mut self, section: &str, line: usize, fail: &mut dyn FnMut(String)) {
        let mut words = section.split_whitespace();
        let (Some("user"), Some(name), None) = (words.next(), words.next(), words.next()) else {
            fail(format!(
                "unknown section `[{section}]` (expected `[user NAME]`)"
            ));
            return;
        };
        let duplicate = self.seen(name);
        if duplicate {
            fail(format!("user `{name}` is defined twice"));
        }
        if let Err(message) = check_user_name(name) {
            fail(message);
        }
        self.drafts.push(Draft {
            line,
            name: name.to_string(),
            password_hash: None,
            home: None,
            permissions: None,
            allow_from: None,
            s3_key: None,
            tls_required: None,
            tls_session_reuse: None,
            device: device::DeviceDraft::default(),
            password_given: false,
            duplicate,
        });
    }

    /// The previous section, if it ended without a `password` line: its
    /// draft is dropped at once (a text of headers alone must not hold a
    /// draft per line until the end) and its name and line returned.
    fn drop_unfinished(&mut self) -> Option<(String, usize)> {
        let last = self.drafts.last()?;
        if last.password_given || last.duplicate {
            return None;
        }
        let index = self.drafts.len() - 1;
        let key = self.hasher.hash_one(&last.name);
        if self.names.get(&key) == Some(&index) {
            self.names.remove(&key);
        }
        let last = self.drafts.pop()?;
        Some((last.name, last.line))
    }

    /// Whether a section of `name` came before; records it if not.
    fn seen(&mut self, name: &str) -> bool {
        let key = self.hasher.hash_one(name);
        match self.names.get(&key) {
            Some(&first) if self.drafts[first].name == name => true,
            // Two names with one 64-bit hash: compare by name.
            Some(_) => self.drafts.iter().any(|d| d.name == name),
            None => {
                self.names.insert(key, self.drafts.len());
                false
            }
        }
    }

    /// A `key = value` line of the current section.
    pub(super) fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let draft = self
            .drafts
            .last_mut()
            .expect("set is called only inside a section");
        set_user(draft, key, value)
    }

    /// The users, in the order of the text; a missing password is a problem.
    /// `root` gives the default homes.
    pub(super) fn finish(self, config: &Config, problems: &mut Problems) -> Vec<User> {
        let users = self.finish_with_lines(config, problems);
        users.into_iter().map(|(u, _)| u).collect()
    }

    /// `finish`, each user with the line of its section.
    fn finish_with_lines(self, config: &Config, problems: &mut Problems) -> Vec<(User, usize)> {
        let (root, device) = (&config.root, config.device);
        let mut users = Vec::with_capacity(self.drafts.len());
        for draft in self.drafts {
            if draft.duplicate {
                continue;
            }
            let Some(password_hash) = draft.password_hash else {
                if !draft.password_given {
                    problems.push(no_password(&draft.name, draft.line));
                }
                continue;
            };
            let line = draft.line;
            // Boxed: `join` leaves room to grow, and a fleet of 100,000
            // homes should not keep it (docs/benchmark.md: bytes per user).
            let home = draft.home.unwrap_or_else(|| root.join(&draft.name));
            users.push((
                User {
                    home: home.into_boxed_path(),
                    name: draft.name.into(),
                    password_hash: password_hash.into(),
                    permissions: draft.permissions.unwrap_or(Permissions::UPLOAD),
                    allow_from: draft.allow_from.unwrap_or_default(),
                    s3_key: draft.s3_key,
                    tls_required: draft.tls_required.unwrap_or(false),
                    tls_session_reuse: draft.tls_session_reuse,
                    device: draft.device.over(device),
                },
                line,
            ));
        }
        users
    }

    /// The line of each user's section, for problems found after reading.
    fn lines(&self) -> impl Iterator<Item = (&str, usize)> {
        self.drafts.iter().map(|d| (d.name.as_str(), d.line))
    }
}

/// Parses a users file: `[user NAME]` sections only. `config` gives the
/// default homes (`root`) and the users it defines itself: a name in both
/// is a problem, as are homes the spool rules refuse. Every problem at once.
/// At most `keep` problems are stored; reading stops past them (`Refused`).
pub fn parse_users(text: &str, config: &Config, keep: usize) -> Result<Vec<User>, Refused> {
    let mut problems = Problems::keeping(keep);
    if text.len() > limits::MAX_USERS_FILE_BYTES {
        problems.push(Problem {
            line: 0,
            message: format!(
                "users file is {} bytes, more than the {} allowed",
                text.len(),
                limits::MAX_USERS_FILE_BYTES
            ),
        });
        return Err(problems.refused());
    }
    let mut sections = Sections::default();
    scan(text, &mut sections, &mut problems, &mut |key, _| {
        Err(format!(
            "`{key}` above the first section: a users file holds `[user NAME]` sections only"
        ))
    });
    let configured: HashSet<&str> = config.users.iter().map(|u| &*u.name).collect();
    for (name, line) in sections.lines() {
        if configured.contains(name) {
            problems.push(Problem {
                line,
                message: format!("user `{name}` is also defined in the configuration"),
            });
        }
    }
    let found = sections.finish_with_lines(config, &mut problems);
    let homes = config.check_homes(found.iter().map(|(u, _)| u));
    if !homes.is_empty() {
        let lines: HashMap<&str, usize> = found.iter().map(|(u, l)| (&*u.name, *l)).collect();
        for (name, message) in homes {
            let line = lines.get(name.as_str()).copied().unwrap_or(0);
            problems.push(Problem { line, message });
        }
    }
    let users: Vec<User> = found.into_iter().map(|(u, _)| u).collect();
    if problems.is_empty() {
        Ok(users)
    } else {
        Err(problems.refused())
    }
}

/// The one reader of the text's lines: comments, `key = value`, and
/// `[user NAME]` sections (given to `sections`). Keys above the first
/// section go to `global`. Every bad line is one problem.
pub(super) fn scan(
    text: &str,
    sections: &mut Sections,
    problems: &mut Problems,
    global: &mut dyn FnMut(&str, &str) -> Result<(), String>,
) {
    for (index, raw) in text.lines().enumerate() {
        // SECURITY: a text with more problems than are kept is refused
        // anyway; reading on would only spend memory and time.
        if problems.full() {
            return;
        }
        let line = index + 1;
        let content = strip_comment(raw).trim();
        if content.is_empty() {
            continue;
        }
        if let Some(section) = content.strip_prefix('[') {
            if let Some((name, at)) = sections.drop_unfinished() {
                problems.push(no_password(&name, at));
            }
            let mut fail = |message: String| problems.push(Problem { line, message });
            match section.strip_suffix(']') {
                Some(section) => sections.header(section, line, &mut fail),
                None => fail(format!("section header `{content}` lacks its closing `]`")),
            }
            continue;
        }

        let mut fail = |message: String| problems.push(Problem { line, message });
        let Some((key, value)) = content.split_once('=') else {
            fail(format!("expected `key = value`, found `{content}`"));
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if value.is_empty() {
            fail(format!("`{key}` has no value"));
            continue;
        }
        let result = if sections.open() {
            sections.set(key, value)
        } else {
            global(key, value)
        };
        if let Err(message) = result {
            fail(message);
        }
    }
}

fn no_password(name: &str, line: usize) -> Problem {
    Problem {
        line,
        message: format!("user `{name}` has no `password`"),
    }
}

/// `#` starts a comment anywhere on a line. (A crypt hash never contains `#`.)
fn strip_comment(line: &str) -> &str {
    match line.find('#') {
        Some(at) => &line[..at],
        None => line,
    }
}

fn set_user(draft: &mut Draft, key: &str, value: &str) -> Result<(), String> {
    let bad = |what: &str| format!("`{key}` of user `{}`: {what}", draft.name);
    match key {
        "password" if draft.password_given => Err(bad("set twice")),
        "password" => {
            draft.password_given = true;
            hash::check(value).map_err(|e| bad(&e))?;
            draft.password_hash = Some(value.to_string());
            Ok(())
        }
        "home" if draft.home.is_some() => Err(bad("set twice")),
        "home" => {
            draft.home = Some(parse_abs_path(value).map_err(|e| bad(&e))?);
            Ok(())
        }
        "permissions" if draft.permissions.is_some() => Err(bad("set twice")),
        "permissions" => {
            draft.permissions = Some(parse_permissions(value).map_err(|e| bad(&e))?);
            Ok(())
        }
        "allow_from" if draft.allow_from.is_some() => Err(bad("set twice")),
        "allow_from" => {
            draft.allow_from = Some(cidr::parse_list(value).map_err(|e| bad(&e))?);
            Ok(())
        }
        "s3_key" if draft.s3_key.is_some() => Err(bad("set twice")),
        "s3_key" => {
            draft.s3_key = Some(Arc::new(KeyTemplate::parse(value).map_err(|e| bad(&e))?));
            Ok(())
        }
        "tls" if draft.tls_required.is_some() => Err(bad("set twice")),
        "tls" => {
            draft.tls_required = Some(tls::parse_user_tls(value).map_err(|e| bad(&e))?);
            Ok(())
        }
        "tls_session_reuse" if draft.tls_session_reuse.is_some() => Err(bad("set twice")),
        "tls_session_reuse" => {
            draft.tls_session_reuse = Some(tls::parse_session_reuse(value).map_err(|e| bad(&e))?);
            Ok(())
        }
        key if device::KEYS.contains(&key) => (draft.device.set(key, value))
            .map_err(|e| format!("{e} (user `{}`)", draft.name)),
        _ => Err(format!(
            "unknown key `{key}` in section of user `{}` (user keys: password, home, permissions, allow_from, s3_key, tls, tls_session_reuse, active_address, filename_encoding, auto_mkdir; global keys go above the first section)",
            draft.name
        )),
    }
}

fn check_user_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= limits::MAX_USER_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
        && !name.starts_with('.');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "user name `{name}`: use 1-{} letters, digits, `.`, `_`, `-`, `@`, not starting with `.`",
            limits::MAX_USER_NAME
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$6$saltsalt$hashhashhash";

    fn users(text: &str) -> Result<Vec<User>, Vec<Problem>> {
        parse_users(text, &Config::defaults(), usize::MAX).map_err(|r| r.problems)
    }

    fn section(name: &str, extra: &str) -> String {
        format!("[user {name}]\npassword = {HASH}\n{extra}")
    }

    #[test]
    fn sections_only_parse_with_default_homes() {
        let u = users(&(section("a", "") + &section("b", "permissions = read\n"))).unwrap();
        assert_eq!(u.len(), 2);
        assert_eq!(
            &*u[1].home,
            std::path::Path::new("/var/lib/lakeftpd/home/b")
        );
        assert_eq!(u[1].permissions, Permissions::READ);
    }

    #[test]
    fn a_global_key_is_refused_with_its_line() {
        let p = users(&format!("listen = 0.0.0.0:21\n{}", section("a", ""))).unwrap_err();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].line, 1);
        assert!(p[0].message.contains("sections only"), "{}", p[0]);
    }

    #[test]
    fn a_name_also_in_the_configuration_is_refused() {
        let mut config = Config::defaults();
        config
            .users
            .push(User::new("a", HASH.into(), PathBuf::from("/h/a")));
        let p = parse_users(&format!("# c\n{}", section("a", "")), &config, 10)
            .unwrap_err()
            .problems;
        assert_eq!(p[0].line, 2);
        assert!(p[0].message.contains("also defined"));
    }

    #[test]
    fn a_duplicate_name_is_refused() {
        let p = users(&(section("a", "") + &section("a", ""))).unwrap_err();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].line, 3);
    }

    #[test]
    fn allow_from_is_parsed() {
        let u = users(&section("a", "allow_from = 10.1.0.0/16, 192.0.2.7\n")).unwrap();
        assert_eq!(u[0].allow_from.len(), 2);
        assert!(u[0].allow_from[1].contains("192.0.2.7".parse().unwrap()));
    }

    #[test]
    fn allow_from_with_host_bits_is_refused() {
        let p = users(&section("a", "allow_from = 10.1.0.1/16\n")).unwrap_err();
        assert_eq!(p[0].line, 3);
    }

    #[test]
    fn s3_key_is_parsed() {
        let u = users(&section("a", "s3_key = tenant-a/{user}/{path}\n")).unwrap();
        assert!(u[0].s3_key.is_some());
    }

    #[test]
    fn s3_key_with_an_unknown_field_is_refused() {
        assert!(users(&section("a", "s3_key = {nope}/{path}\n")).is_err());
    }

    #[test]
    fn every_problem_is_listed_with_its_line() {
        let text = format!(
            "{}[user b]\npassword = clear\n[user c]\npermissions = all\npassword = {HASH}\n",
            section("a", "")
        );
        let p = users(&text).unwrap_err();
        assert_eq!(p.iter().map(|p| p.line).collect::<Vec<_>>(), vec![4, 6]);
    }

    #[test]
    fn a_home_containing_the_spool_is_refused() {
        let mut config = Config::defaults();
        config.s3.bucket = Some("lake".into());
        config.s3.spool = PathBuf::from("/data/spool");
        let p = parse_users(&section("a", "home = /data\n"), &config, 10)
            .unwrap_err()
            .problems;
        assert_eq!(p[0].line, 1);
    }

    #[test]
    fn an_oversized_file_is_refused_before_reading() {
        let text = " ".repeat(limits::MAX_USERS_FILE_BYTES + 1);
        assert_eq!(users(&text).unwrap_err()[0].line, 0);
    }

    #[test]
    fn a_section_without_password_is_reported_at_the_next_header() {
        // Its draft is not kept to the end; the problem names its line.
        let p = users(&format!("[user a]\n{}", section("b", ""))).unwrap_err();
        assert_eq!(p.len(), 1);
        assert!(p[0].message.contains("user `a`"), "{}", p[0]);
        assert_eq!(p[0].line, 1);
        assert!(users("[user a]\n").is_err());
    }

    #[test]
    fn reading_stops_past_the_problems_kept() {
        // A million bad lines: three stored, reading stopped at the fourth.
        let text = "bad line\n".repeat(1_000_000);
        let refused = parse_users(&text, &Config::defaults(), 3).unwrap_err();
        assert_eq!(refused.problems.len(), 3);
        assert_eq!(refused.stopped_at, Some(4));
        // Headers alone, the same.
        let text: String = (0..1_000_000).map(|i| format!("[user u{i}]\n")).collect();
        let refused = parse_users(&text, &Config::defaults(), 3).unwrap_err();
        assert_eq!(refused.problems.len(), 3);
        assert!(refused.stopped_at.is_some());
    }
}
