//! Pure parsers of one configuration value each: no key names, no line
//! numbers (the caller adds them). Shared by `parse.rs` and `s3.rs`.

use super::{EmfTarget, Permissions};
use log::LevelFilter;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub fn parse_switch(value: &str) -> Result<bool, String> {
    match value {
        "on" | "yes" | "true" => Ok(true),
        "off" | "no" | "false" => Ok(false),
        _ => Err("expected `on` or `off`".into()),
    }
}

pub fn parse_count(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(0) => Err("expected a number above 0".into()),
        Ok(n) => Ok(n),
        Err(_) => Err("expected a whole number".into()),
    }
}

/// A duration with a unit: `500ms`, `30s`, `5m`, `1h`. Zero is refused.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    match parse_duration_or_zero(value)? {
        d if d.is_zero() => Err("expected a duration above zero".into()),
        d => Ok(d),
    }
}

pub fn parse_duration_or_zero(value: &str) -> Result<Duration, String> {
    let unit_at = value
        .find(|c: char| !c.is_ascii_digit())
        .ok_or("expected a duration with a unit: ms, s, m or h (e.g. `30s`)")?;
    let (number, unit) = value.split_at(unit_at);
    let n: u64 = number
        .parse()
        .map_err(|_| "expected a duration such as `30s`".to_string())?;
    let millis = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => return Err(format!("unknown unit `{unit}` (use ms, s, m or h)")),
    };
    match millis {
        Some(ms) if ms <= 7 * 24 * 3_600_000 => Ok(Duration::from_millis(ms)),
        _ => Err("duration longer than a week".into()),
    }
}

/// A size in bytes with an optional unit: `1000`, `64KiB`, `10MiB`, `2GiB`;
/// `0` or `unlimited` means no limit.
pub fn parse_size(value: &str) -> Result<Option<u64>, String> {
    if value == "unlimited" {
        return Ok(None);
    }
    let unit_at = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(unit_at);
    let n: u64 = number
        .parse()
        .map_err(|_| "expected a size such as `100MiB`".to_string())?;
    let scale: u64 = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        _ => {
            return Err(format!(
                "unknown unit `{unit}` (use B, KiB, MiB, GiB or TiB)"
            ))
        }
    };
    match n.checked_mul(scale) {
        Some(0) => Ok(None),
        Some(bytes) => Ok(Some(bytes)),
        None => Err("size too large".into()),
    }
}

/// `FIRST-LAST`, both at or above 1024 (RFC 2577: no privileged ports).
pub fn parse_port_range(value: &str) -> Result<(u16, u16), String> {
    let (first, last) = value
        .split_once('-')
        .ok_or("expected FIRST-LAST, e.g. `50000-50999`")?;
    let port = |s: &str| -> Result<u16, String> {
        match s.trim().parse::<u16>() {
            Ok(p) if p >= 1024 => Ok(p),
            _ => Err("ports must be numbers from 1024 to 65535".into()),
        }
    };
    let (first, last) = (port(first)?, port(last)?);
    if first > last {
        return Err("the first port is above the last".into());
    }
    Ok((first, last))
}

pub fn parse_abs_path(value: &str) -> Result<PathBuf, String> {
    if value.starts_with('/') && !value.contains('\0') {
        Ok(PathBuf::from(value))
    } else {
        Err("expected an absolute path".into())
    }
}
/// `off`, `tcp:ADDRESS:PORT` or `udp:ADDRESS:PORT`.
pub fn parse_emf_target(value: &str) -> Result<Option<EmfTarget>, String> {
    if value == "off" {
        return Ok(None);
    }
    let addr = |s: &str| -> Result<SocketAddr, String> {
        s.parse()
            .map_err(|_| "expected `tcp:ADDRESS:PORT`, `udp:ADDRESS:PORT` or `off`".to_string())
    };
    if let Some(rest) = value.strip_prefix("tcp:") {
        Ok(Some(EmfTarget::Tcp(addr(rest)?)))
    } else if let Some(rest) = value.strip_prefix("udp:") {
        Ok(Some(EmfTarget::Udp(addr(rest)?)))
    } else {
        Err("expected `tcp:ADDRESS:PORT`, `udp:ADDRESS:PORT` or `off`".into())
    }
}

pub fn parse_log_level(value: &str) -> Result<LevelFilter, String> {
    match value {
        "error" => Ok(LevelFilter::Error),
        "warn" => Ok(LevelFilter::Warn),
        "info" => Ok(LevelFilter::Info),
        "debug" => Ok(LevelFilter::Debug),
        "trace" => Ok(LevelFilter::Trace),
        _ => Err("expected error, warn, info, debug or trace".into()),
    }
}

pub fn parse_permissions(value: &str) -> Result<Permissions, String> {
    let mut permissions = Permissions::default();
    for word in value.split(',').map(str::trim) {
        let one = match word {
            "upload" => Permissions::UPLOAD,
            "read" => Permissions::READ,
            "full" => Permissions::FULL,
            _ => return Err(format!("unknown permission `{word}` (use upload, read, full, or a list such as `upload,read`)")),
        };
        permissions = permissions.union(one);
    }
    Ok(permissions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn unknown_duration_unit() {
        assert!(parse_duration("3d").is_err());
    }

    #[test]
    fn sizes_with_units() {
        assert_eq!(parse_size("10MiB"), Ok(Some(10 << 20)));
        assert_eq!(parse_size("1000"), Ok(Some(1000)));
        assert_eq!(parse_size("0"), Ok(None));
        assert_eq!(parse_size("unlimited"), Ok(None));
        assert!(parse_size("10MB").is_err());
    }

    #[test]
    fn passive_range_must_be_ordered_and_unprivileged() {
        assert_eq!(parse_port_range("50000-50999"), Ok((50000, 50999)));
        assert!(parse_port_range("50999-50000").is_err());
        assert!(parse_port_range("1000-2000").is_err());
        assert!(parse_port_range("50000").is_err());
    }

    #[test]
    fn target_tcp() {
        assert_eq!(
            parse_emf_target("tcp:127.0.0.1:25888"),
            Ok(Some(EmfTarget::Tcp("127.0.0.1:25888".parse().unwrap())))
        );
    }

    #[test]
    fn target_udp_ipv6() {
        assert_eq!(
            parse_emf_target("udp:[::1]:25888"),
            Ok(Some(EmfTarget::Udp("[::1]:25888".parse().unwrap())))
        );
    }

    #[test]
    fn target_off() {
        assert_eq!(parse_emf_target("off"), Ok(None));
    }

    #[test]
    fn target_without_scheme_refused() {
        assert!(parse_emf_target("127.0.0.1:25888").is_err());
    }

    #[test]
    fn target_with_hostname_refused() {
        assert!(parse_emf_target("tcp:localhost:25888").is_err());
    }

    #[test]
    fn target_without_port_refused() {
        assert!(parse_emf_target("udp:127.0.0.1").is_err());
    }
}
