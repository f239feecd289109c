//! Boot-time configuration from EC2 instance metadata, over IMDSv2.
//!
//! `serve --user-data` and `check --user-data` read the configuration text
//! from `/latest/user-data`; `public_address = imds | imds-private` is
//! resolved from `meta-data/public-ipv4` / `meta-data/local-ipv4`; the
//! instance id and Availability Zone are logged (and kept for the S3 keys and
//! metric dimensions).
//!
//! Protocol (EC2 User Guide, "Use the Instance Metadata Service to access
//! instance metadata" and "Access instance metadata for an EC2 instance"):
//! - a session token from `PUT /latest/api/token` with the header
//!   `X-aws-ec2-metadata-token-ttl-seconds` (1..=21600); then every GET
//!   carries `X-aws-ec2-metadata-token`;
//! - 400: the PUT is not valid (no or bad TTL); 401: the token is invalid or
//!   expired, get a new one; 403: not allowed, or IMDS is turned off (also
//!   for a PUT carrying `X-Forwarded-For`); 404: no such item (no user-data;
//!   no public IPv4); 503: try again.
//!
//! The endpoint is `http://169.254.169.254` unless the AWS SDKs' standard
//! variable `AWS_EC2_METADATA_SERVICE_ENDPOINT` names another (the tests run
//! a fake on loopback). At boot IMDS may not answer yet: connection errors,
//! timeouts and 5xx are retried with a capped exponential backoff for at most
//! `limits::IMDS_PATIENCE`. Every failure becomes one line (it reaches the
//! serial console through the unit's `StandardError=journal+console`).
//!
//! Blocking by design: this runs in `main` before the executor starts.
//!
//! This file: what lakeftpd asks (user-data, the instance, the PASV address)
//! and the checks of each value; `client.rs`: the IMDSv2 conversation (token,
//! retries, statuses); `tests.rs`: both tables.

mod client;

pub use client::{Session, ENDPOINT_VAR, PATIENCE_VAR};

use crate::config::PublicAddress;
use crate::limits;
use client::{Client, Error};
use std::net::{IpAddr, Ipv4Addr};

const USER_DATA_PATH: &str = "/latest/user-data";
const INSTANCE_ID_PATH: &str = "/latest/meta-data/instance-id";
const ZONE_PATH: &str = "/latest/meta-data/placement/availability-zone";
const PUBLIC_IPV4_PATH: &str = "/latest/meta-data/public-ipv4";
const LOCAL_IPV4_PATH: &str = "/latest/meta-data/local-ipv4";

/// What the instance says about itself, and what PASV advertises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// `i-0123456789abcdef0`: part of S3 keys (`{instance}`) and metric
    /// dimensions.
    pub id: String,
    /// `ap-northeast-1a`.
    pub zone: String,
    /// The address PASV advertises, when `public_address` asks IMDS.
    pub pasv_address: Option<IpAddr>,
}

/// `--user-data`: the configuration text. Fails, in one line, when IMDS does
/// not answer in time, when the instance has no user-data, or when it is not
/// UTF-8 text.
pub fn user_data() -> Result<String, String> {
    let mut client = Client::from_env()?;
    let fail = |e: Error| e.to_string();
    match client
        .get(USER_DATA_PATH, limits::MAX_USER_DATA)
        .map_err(fail)?
    {
        None => Err(format!(
            "user-data: the instance has no user-data (IMDS at {} answered 404); \
             launch it with the lakeftpd configuration as user-data",
            client.endpoint
        )),
        Some(bytes) => String::from_utf8(bytes).map_err(|_| {
            "user-data: not UTF-8 text (compressed or binary user-data is not supported)".into()
        }),
    }
}

/// At `serve`: when the configuration came from user-data, or PASV must
/// advertise an address from IMDS, learns which instance this is (logged)
/// and resolves the PASV address. `None`: IMDS is not needed and not asked.
pub fn describe(from_user_data: bool, public: &PublicAddress) -> Result<Option<Instance>, String> {
    let wants_address = matches!(public, PublicAddress::Imds | PublicAddress::ImdsPrivate);
    if !from_user_data && !wants_address {
        return Ok(None);
    }
    let mut client = Client::from_env()?;
    let instance = fetch_instance(&mut client, public).map_err(|e| e.to_string())?;
    log::info!("instance {} in {}", instance.id, instance.zone);
    if let Some(ip) = instance.pasv_address {
        log::info!(
            "PASV advertises {ip} (public_address = {})",
            public_name(public)
        );
    }
    Ok(Some(instance))
}

fn public_name(public: &PublicAddress) -> &'static str {
    match public {
        PublicAddress::ImdsPrivate => "imds-private",
        _ => "imds",
    }
}

fn fetch_instance(client: &mut Client, public: &PublicAddress) -> Result<Instance, Error> {
    let id = client.value(INSTANCE_ID_PATH, parse_instance_id)?;
    let zone = client.value(ZONE_PATH, parse_zone)?;
    let public_ipv4 = match public {
        PublicAddress::Imds => client.optional_value(PUBLIC_IPV4_PATH, parse_ipv4)?,
        _ => None,
    };
    let local_ipv4 = match public {
        // The private address is needed only when there is no public one.
        PublicAddress::Imds if public_ipv4.is_some() => None,
        PublicAddress::Imds | PublicAddress::ImdsPrivate => {
            client.optional_value(LOCAL_IPV4_PATH, parse_ipv4)?
        }
        _ => None,
    };
    let pasv_address = pasv_address(public, public_ipv4, local_ipv4).map_err(Error::Invalid)?;
    Ok(Instance {
        id,
        zone,
        pasv_address,
    })
}

/// What PASV advertises for `public_address`, given what IMDS said (pure).
fn pasv_address(
    public: &PublicAddress,
    public_ipv4: Option<Ipv4Addr>,
    local_ipv4: Option<Ipv4Addr>,
) -> Result<Option<IpAddr>, String> {
    let chosen = match public {
        PublicAddress::Local | PublicAddress::Fixed(_) | PublicAddress::File(_) => return Ok(None),
        // An instance without a public address (private subnet behind the
        // NLB, VPN or Direct Connect devices) is reached at its private one.
        PublicAddress::Imds => public_ipv4.or(local_ipv4),
        PublicAddress::ImdsPrivate => local_ipv4,
    };
    match chosen {
        Some(ip) => Ok(Some(IpAddr::V4(ip))),
        None => Err(format!(
            "public_address = {}: IMDS reports no IPv4 address for this instance \
             (IPv6-only subnet?); PASV needs one: set public_address to an address",
            public_name(public)
        )),
    }
}

/// Why IMDS gave no answer; `Display` is the one console line.
// SECURITY: metadata values end up in logs, S3 keys and metric dimensions;
// accept only the documented shapes, never arbitrary bytes.
fn parse_instance_id(value: &str) -> Result<String, String> {
    let hex = value.strip_prefix("i-").unwrap_or("");
    if (8..=32).contains(&hex.len()) && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        Ok(value.into())
    } else {
        Err(format!("instance-id {value:?} is not i- and hex digits"))
    }
}

fn parse_zone(value: &str) -> Result<String, String> {
    if (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        Ok(value.into())
    } else {
        Err(format!("availability-zone {value:?} is not a zone name"))
    }
}

fn parse_ipv4(value: &str) -> Result<Ipv4Addr, String> {
    value
        .parse()
        .map_err(|_| format!("{value:?} is not an IPv4 address"))
}

#[cfg(test)]
mod tests;
