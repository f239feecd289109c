//! The configuration text into a `Config`: lines, comments, `[user NAME]`
//! sections, one `set_global` / `set_user` per key. Every bad line is one
//! `Problem` with its line number; the rules between keys are in `check.rs`.

use super::value::{
    parse_abs_path, parse_count, parse_duration, parse_duration_or_zero, parse_emf_target,
    parse_log_level, parse_permissions, parse_port_range, parse_size, parse_switch,
};
use super::{cidr, s3, Config, Permissions, Problem, PublicAddress, User};
use crate::limits;
use crate::protocol::proxy;
use std::path::PathBuf;

/// A user section while it is being read: fields not yet known.
struct UserDraft {
    line: usize,
    name: String,
    password_hash: Option<String>,
    home: Option<PathBuf>,
    permissions: Option<Permissions>,
    /// A `password` line was present (even if its value was refused).
    password_given: bool,
    /// A second section for the same name: its lines are checked, then dropped.
    duplicate: bool,
}

/// Parses a whole configuration text. Returns every problem found, or the
/// configuration when there are none.
pub fn parse(text: &str) -> Result<Config, Vec<Problem>> {
    let mut config = Config::defaults();
    let mut problems = Vec::new();
    let mut drafts: Vec<UserDraft> = Vec::new();
    let mut seen_global: Vec<&str> = Vec::new();

    if text.len() > limits::MAX_CONFIG_BYTES {
        problems.push(Problem {
            line: 0,
            message: format!(
                "configuration is {} bytes, more than the {} allowed",
                text.len(),
                limits::MAX_CONFIG_BYTES
            ),
        });
        return Err(problems);
    }

    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let content = strip_comment(raw).trim();
        if content.is_empty() {
            continue;
        }
        let mut fail = |message: String| problems.push(Problem { line, message });

        if let Some(section) = content.strip_prefix('[') {
            let Some(section) = section.strip_suffix(']') else {
                fail(format!("section header `{content}` lacks its closing `]`"));
                continue;
            };
            let mut words = section.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some("user"), Some(name), None) => {
                    let duplicate = drafts.iter().any(|d| d.name == name);
                    if duplicate {
                        fail(format!("user `{name}` is defined twice"));
                    }
                    if let Err(message) = check_user_name(name) {
                        fail(message);
                    }
                    drafts.push(UserDraft {
                        line,
                        name: name.to_string(),
                        password_hash: None,
                        home: None,
                        permissions: None,
                        password_given: false,
                        duplicate,
                    });
                }
                _ => fail(format!(
                    "unknown section `[{section}]` (expected `[user NAME]`)"
                )),
            }
            continue;
        }

        let Some((key, value)) = content.split_once('=') else {
            fail(format!("expected `key = value`, found `{content}`"));
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if value.is_empty() {
            fail(format!("`{key}` has no value"));
            continue;
        }
        let result = match drafts.last_mut() {
            Some(draft) => set_user(draft, key, value),
            None => {
                if seen_global.contains(&key) {
                    Err(format!("`{key}` is set twice"))
                } else {
                    seen_global.push(key);
                    set_global(&mut config, key, value)
                }
            }
        };
        if let Err(message) = result {
            fail(message);
        }
    }

    for draft in drafts {
        if draft.duplicate {
            continue;
        }
        let Some(password_hash) = draft.password_hash else {
            if !draft.password_given {
                problems.push(Problem {
                    line: draft.line,
                    message: format!("user `{}` has no `password`", draft.name),
                });
            }
            continue;
        };
        config.users.push(User {
            home: draft.home.unwrap_or_else(|| config.root.join(&draft.name)),
            name: draft.name,
            password_hash,
            permissions: draft.permissions.unwrap_or(Permissions::UPLOAD),
        });
    }

    problems.extend(config.check());
    if problems.is_empty() {
        Ok(config)
    } else {
        problems.sort_by_key(|p| p.line);
        Err(problems)
    }
}

/// `#` starts a comment anywhere on a line. (A crypt hash never contains `#`.)
fn strip_comment(line: &str) -> &str {
    match line.find('#') {
        Some(at) => &line[..at],
        None => line,
    }
}

fn set_global(config: &mut Config, key: &str, value: &str) -> Result<(), String> {
    let bad = |what: &str| format!("`{key}`: {what}, found `{value}`");
    match key {
        "listen" => config.listen = value.parse().map_err(|_| bad("expected ADDRESS:PORT"))?,
        "root" => config.root = parse_abs_path(value).map_err(|e| bad(&e))?,
        "active" => config.active = parse_switch(value).map_err(|e| bad(&e))?,
        "active_source_port" => {
            config.active_source_port = value.parse().map_err(|_| bad("expected a port 0-65535"))?
        }
        "active_connect_timeout" => {
            config.active_connect_timeout = parse_duration(value).map_err(|e| bad(&e))?
        }
        "passive" => config.passive = parse_switch(value).map_err(|e| bad(&e))?,
        "passive_ports" => config.passive_ports = parse_port_range(value).map_err(|e| bad(&e))?,
        "passive_accept_timeout" => {
            config.passive_accept_timeout = parse_duration(value).map_err(|e| bad(&e))?
        }
        "public_address" => {
            config.public_address = match value {
                "local" => PublicAddress::Local,
                "imds" => PublicAddress::Imds,
                "imds-private" => PublicAddress::ImdsPrivate,
                ip => PublicAddress::Fixed(ip.parse().map_err(|_| {
                    bad("expected an IP address, `imds`, `imds-private` or `local`")
                })?),
            }
        }
        "epsv" => config.epsv = parse_switch(value).map_err(|e| bad(&e))?,
        "max_sessions" => config.max_sessions = parse_count(value).map_err(|e| bad(&e))?,
        "max_sessions_per_ip" => {
            config.max_sessions_per_ip = parse_count(value).map_err(|e| bad(&e))?
        }
        "idle_timeout" => config.idle_timeout = parse_duration(value).map_err(|e| bad(&e))?,
        "data_timeout" => config.data_timeout = parse_duration(value).map_err(|e| bad(&e))?,
        "login_timeout" => config.login_timeout = parse_duration(value).map_err(|e| bad(&e))?,
        "login_fail_delay" => {
            config.login_fail_delay = parse_duration_or_zero(value).map_err(|e| bad(&e))?
        }
        "max_login_failures" => {
            config.max_login_failures = parse_count(value)
                .map_err(|e| bad(&e))?
                .try_into()
                .map_err(|_| bad("too large"))?
        }
        "max_file_size" => config.max_file_size = parse_size(value).map_err(|e| bad(&e))?,
        "drain_timeout" => config.drain_timeout = parse_duration(value).map_err(|e| bad(&e))?,
        "log_level" => config.log_level = parse_log_level(value).map_err(|e| bad(&e))?,
        "proxy_protocol" => {
            config.proxy_protocol = match value {
                "off" => None,
                "v1" => Some(proxy::Version::V1),
                "v2" => Some(proxy::Version::V2),
                _ => return Err(bad("expected `off`, `v1` or `v2`")),
            }
        }
        "proxy_from" => config.proxy_from = cidr::parse_list(value).map_err(|e| bad(&e))?,
        "proxy_header_timeout" => {
            config.proxy_header_timeout = parse_duration(value).map_err(|e| bad(&e))?
        }
        "tcp_keepalive" => {
            config.tcp_keepalive = match value {
                "off" => None,
                _ => Some(
                    parse_duration(value)
                        .ok()
                        .filter(|d| d.as_secs() >= 1 && d.subsec_millis() == 0)
                        .ok_or_else(|| bad("expected whole seconds such as `60s`, or `off`"))?,
                ),
            }
        }
        "health_listen" => {
            config.health_listen = match value {
                "off" => None,
                _ => Some(
                    value
                        .parse()
                        .map_err(|_| bad("expected ADDRESS:PORT or `off`"))?,
                ),
            }
        }
        "health_s3_failing_after" => {
            config.health_s3_failing_after = parse_duration(value).map_err(|e| bad(&e))?
        }
        "drain_delay" => config.drain_delay = parse_duration_or_zero(value).map_err(|e| bad(&e))?,
        "metrics_emf" => config.metrics_emf = parse_emf_target(value).map_err(|e| bad(&e))?,
        "metrics_group" => {
            let valid = value.len() <= 255
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b));
            if !valid {
                return Err(bad("expected up to 255 letters, digits, `-_.:/`"));
            }
            config.metrics_group = Some(value.to_string());
        }
        "metrics_interval" => {
            config.metrics_interval = parse_duration(value)
                .ok()
                .filter(|d| d.as_secs() >= 1)
                .ok_or_else(|| bad("expected a duration of 1s or more"))?
        }
        // S3 delivery: parsed in s3.rs.
        key if s3::KEYS.contains(&key) => config.s3.set(key, value)?,
        "password" | "home" | "permissions" => {
            return Err(format!("`{key}` belongs in a `[user NAME]` section"))
        }
        _ => return Err(format!("unknown key `{key}`")),
    }
    Ok(())
}

fn set_user(draft: &mut UserDraft, key: &str, value: &str) -> Result<(), String> {
    let bad = |what: &str| format!("`{key}` of user `{}`: {what}", draft.name);
    match key {
        "password" if draft.password_given => Err(bad("set twice")),
        "password" => {
            draft.password_given = true;
            check_hash(value).map_err(|e| bad(&e))?;
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
        _ => Err(format!(
            "unknown key `{key}` in section of user `{}` (user keys: password, home, permissions; global keys go above the first section)",
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

/// Only crypt hashes are stored; a clear-text password is refused.
fn check_hash(value: &str) -> Result<(), String> {
    let is_sha_crypt = (value.starts_with("$6$") || value.starts_with("$5$"))
        && value.split('$').count() >= 4
        && !value.contains(char::is_whitespace);
    if is_sha_crypt {
        Ok(())
    } else {
        Err("expected a `$6$` (SHA-512) or `$5$` (SHA-256) crypt hash; make one with `lakeftpd passwd`".into())
    }
}
