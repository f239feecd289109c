//! PORT and EPRT arguments (RFC 959 §4.1.2, RFC 2428 §2) parsed into a
//! socket address. Whether the address may be used is the session's
//! decision (the bounce check, `active_address`), not the parser's.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Why a PORT/EPRT argument is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressError {
    /// 501: not the form the RFC gives.
    Malformed,
    /// 522: an EPRT network protocol other than 1 (IPv4) and 2 (IPv6).
    NetworkProtocol,
}

/// `PORT h1,h2,h3,h4,p1,p2` (RFC 959 §4.1.2): exactly six numbers 0-255.
pub fn parse_port(arg: &str) -> Result<SocketAddr, AddressError> {
    let mut numbers = [0u8; 6];
    let mut count = 0;
    for part in arg.trim().split(',') {
        if count == 6
            || part.is_empty()
            || part.len() > 3
            || !part.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(AddressError::Malformed);
        }
        numbers[count] = part.parse().map_err(|_| AddressError::Malformed)?;
        count += 1;
    }
    if count != 6 {
        return Err(AddressError::Malformed);
    }
    let [a, b, c, d, p1, p2] = numbers;
    let ip = IpAddr::V4(Ipv4Addr::new(a, b, c, d));
    Ok(SocketAddr::new(ip, u16::from(p1) << 8 | u16::from(p2)))
}

/// `EPRT |1|132.235.1.2|6275|` or `EPRT |2|::1|5282|` (RFC 2428 §2). The
/// first character is the delimiter; protocol 1 is IPv4, 2 is IPv6.
pub fn parse_eprt(arg: &str) -> Result<SocketAddr, AddressError> {
    let arg = arg.trim();
    let delimiter = arg.chars().next().ok_or(AddressError::Malformed)?;
    // RFC 2428 §2: the delimiter is a printable ASCII character 33-126.
    if !('!'..='~').contains(&delimiter) || delimiter.is_ascii_alphanumeric() {
        return Err(AddressError::Malformed);
    }
    let fields: Vec<&str> = arg.split(delimiter).collect();
    // "" | proto | address | port | ""
    let ["", proto, address, port, ""] = fields.as_slice() else {
        return Err(AddressError::Malformed);
    };
    let ip: IpAddr = match *proto {
        "1" => IpAddr::V4(address.parse().map_err(|_| AddressError::Malformed)?),
        "2" => IpAddr::V6(address.parse().map_err(|_| AddressError::Malformed)?),
        _ => return Err(AddressError::NetworkProtocol),
    };
    let port: u16 = port.parse().map_err(|_| AddressError::Malformed)?;
    if port == 0 {
        return Err(AddressError::Malformed);
    }
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_valid() {
        assert_eq!(
            parse_port("127,0,0,1,4,1"),
            Ok("127.0.0.1:1025".parse().unwrap())
        );
    }

    #[test]
    fn port_needs_six_numbers() {
        assert_eq!(parse_port("127,0,0,1,4"), Err(AddressError::Malformed));
        assert_eq!(parse_port("127,0,0,1,4,1,1"), Err(AddressError::Malformed));
    }

    #[test]
    fn port_numbers_at_most_255() {
        assert_eq!(parse_port("127,0,0,256,4,1"), Err(AddressError::Malformed));
    }

    #[test]
    fn port_rejects_signs_and_spaces_inside() {
        assert_eq!(parse_port("127,0,0,+1,4,1"), Err(AddressError::Malformed));
        assert_eq!(parse_port("127, 0,0,1,4,1"), Err(AddressError::Malformed));
        assert_eq!(parse_port("127,,0,1,4,1"), Err(AddressError::Malformed));
        assert_eq!(parse_port("0127,0,0,1,4,1"), Err(AddressError::Malformed));
    }

    #[test]
    fn eprt_ipv4() {
        assert_eq!(
            parse_eprt("|1|132.235.1.2|6275|"),
            Ok("132.235.1.2:6275".parse().unwrap())
        );
    }

    #[test]
    fn eprt_ipv6() {
        assert_eq!(
            parse_eprt("|2|1080::8:800:200C:417A|5282|"),
            Ok("[1080::8:800:200C:417A]:5282".parse().unwrap())
        );
    }

    #[test]
    fn eprt_other_delimiter() {
        assert_eq!(
            parse_eprt("!1!10.0.0.1!2000!"),
            Ok("10.0.0.1:2000".parse().unwrap())
        );
    }

    #[test]
    fn eprt_unknown_protocol() {
        assert_eq!(
            parse_eprt("|3|1.2.3.4|2000|"),
            Err(AddressError::NetworkProtocol)
        );
    }

    #[test]
    fn eprt_protocol_address_mismatch() {
        assert_eq!(parse_eprt("|1|::1|2000|"), Err(AddressError::Malformed));
        assert_eq!(parse_eprt("|2|1.2.3.4|2000|"), Err(AddressError::Malformed));
    }

    #[test]
    fn eprt_malformed() {
        assert_eq!(parse_eprt("|1|1.2.3.4|2000"), Err(AddressError::Malformed));
        assert_eq!(
            parse_eprt("|1|1.2.3.4|70000|"),
            Err(AddressError::Malformed)
        );
        assert_eq!(parse_eprt("|1|1.2.3.4|0|"), Err(AddressError::Malformed));
        assert_eq!(parse_eprt("11.2.3.4120001"), Err(AddressError::Malformed));
        assert_eq!(parse_eprt(""), Err(AddressError::Malformed));
    }
}
