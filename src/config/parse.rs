//! The configuration text into a `Config`: lines, comments, `[user NAME]`
//! sections (read by `users.rs`), one `set_global` per global key. Every bad line is one
//! `Problem` with its line number; the rules between keys are in `check.rs`.

use super::users::{scan, Problems, Sections};
use super::value::{
    parse_abs_path, parse_count, parse_duration, parse_duration_or_zero, parse_emf_target,
    parse_log_level, parse_port_range, parse_size, parse_switch,
};
use super::{cidr, defence, device, s3, tls, Config, Problem, PublicAddress, UsersSource};
use crate::limits;
use crate::protocol::proxy;

/// Parses a whole configuration text. Returns every problem found, or the
/// configuration when there are none.
pub fn parse(text: &str) -> Result<Config, Vec<Problem>> {
    let mut config = Config::defaults();
    let mut problems = Problems::keeping(usize::MAX);
    let mut seen_global: Vec<String> = Vec::new();

    if text.len() > limits::MAX_CONFIG_BYTES {
        problems.push(Problem {
            line: 0,
            message: format!(
                "configuration is {} bytes, more than the {} allowed",
                text.len(),
                limits::MAX_CONFIG_BYTES
            ),
        });
        return Err(problems.into_sorted());
    }

    let mut sections = Sections::default();
    scan(text, &mut sections, &mut problems, &mut |key, value| {
        if seen_global.iter().any(|k| k == key) {
            return Err(format!("`{key}` is set twice"));
        }
        seen_global.push(key.to_string());
        set_global(&mut config, key, value)
    });
    let users = sections.finish(&config, &mut problems);
    config.users = users;

    for problem in config.check() {
        problems.push(problem);
    }
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(problems.into_sorted())
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
                file if file.starts_with("file:") => PublicAddress::File(
                    parse_abs_path(&file["file:".len()..]).map_err(|e| bad(&e))?,
                ),
                ip => PublicAddress::Fixed(ip.parse().map_err(|_| {
                    bad("expected an IP address, `imds`, `imds-private`, `file:PATH` or `local`")
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
        "drain_spool_timeout" => {
            config.drain_spool_timeout = parse_duration_or_zero(value).map_err(|e| bad(&e))?
        }
        "transfer_log" => {
            config.transfer_log = match value {
                "off" => None,
                _ => Some(parse_abs_path(value).map_err(|e| bad(&format!("{e} or `off`")))?),
            }
        }
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
        "users" => config.users_source = Some(UsersSource::parse(value).map_err(|e| bad(&e))?),
        "users_poll_interval" => {
            config.users_poll_interval = parse_duration(value).map_err(|e| bad(&e))?
        }
        "users_cache" => config.users_cache = Some(parse_abs_path(value).map_err(|e| bad(&e))?),
        "users_boot_timeout" => {
            config.users_boot_timeout = parse_duration(value).map_err(|e| bad(&e))?
        }
        // Defence against the open internet: parsed in defence.rs.
        key if defence::KEYS.contains(&key) => config.defence.set(key, value)?,
        // FTPS: parsed in tls.rs.
        key if tls::KEYS.contains(&key) => config.tls.set(key, value)?,
        key if device::KEYS.contains(&key) => config.device.set(key, value)?,
        "password" | "home" | "permissions" | "allow_from" => {
            return Err(format!("`{key}` belongs in a `[user NAME]` section"))
        }
        _ => return Err(format!("unknown key `{key}`")),
    }
    Ok(())
}
