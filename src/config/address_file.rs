//! `public_address = file:PATH`: the address PASV advertises, decided by
//! another program before lakeftpd starts and read once at `serve`. On AWS
//! that program is `lakeftpd-claim` (image/lakeftpd-claim.sh), which writes
//! the Elastic IP it took for this instance; a missing or bad file stops the
//! start, so lakeftpd never advertises an address the instance does not hold.

use crate::limits;
use std::io::Read;
use std::net::IpAddr;
use std::path::Path;

/// The one address in the file at `path` (surrounding whitespace ignored).
pub fn read(path: &Path) -> Result<IpAddr, String> {
    let what = |e: &dyn std::fmt::Display| format!("public_address = file:{}: {e}", path.display());
    let file = std::fs::File::open(path).map_err(|e| what(&e))?;
    let mut text = String::new();
    // One byte more than allowed, to tell a long file from a full one.
    file.take(limits::MAX_ADDRESS_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| what(&e))?;
    parse(&text).map_err(|e| what(&e))
}

/// The file's text into an address (pure).
// SECURITY: the value is advertised to every client in PASV; accept exactly
// one IP address, nothing else.
fn parse(text: &str) -> Result<IpAddr, String> {
    if text.len() as u64 > limits::MAX_ADDRESS_FILE {
        return Err(format!("longer than {} bytes", limits::MAX_ADDRESS_FILE));
    }
    let value = text.trim();
    value
        .parse()
        .map_err(|_| format!("{value:?} is not one IP address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_with_the_newline_the_claim_writes() {
        assert_eq!(parse("203.0.113.7\n"), Ok("203.0.113.7".parse().unwrap()));
    }

    #[test]
    fn ipv6() {
        assert_eq!(parse("2001:db8::7"), Ok("2001:db8::7".parse().unwrap()));
    }

    #[test]
    fn empty_file_refused() {
        assert!(parse("").is_err());
        assert!(parse("\n").is_err());
    }

    #[test]
    fn two_addresses_refused() {
        assert!(parse("203.0.113.7\n203.0.113.8\n").is_err());
    }

    #[test]
    fn name_refused() {
        assert!(parse("ftp.example.com").is_err());
    }

    #[test]
    fn long_file_refused() {
        assert!(parse(&format!("203.0.113.7{}", " ".repeat(64))).is_err());
    }

    #[test]
    fn missing_file_names_the_key_and_path() {
        let e = read(Path::new("/nonexistent/lakeftpd-address")).unwrap_err();
        assert!(
            e.contains("public_address = file:/nonexistent/lakeftpd-address"),
            "{e}"
        );
    }

    #[test]
    fn reads_a_written_file() {
        let dir = std::env::temp_dir().join(format!("lakeftpd-address-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("address");
        std::fs::write(&path, "198.51.100.4\n").unwrap();
        assert_eq!(read(&path), Ok("198.51.100.4".parse().unwrap()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
