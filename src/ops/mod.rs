//! Operating the server: metrics, their Prometheus text, the health
//! endpoints (readiness for the balancer, liveness for systemd and the
//! Auto Scaling group), and the disk watch.

pub mod disk;
pub mod health;
pub mod histogram;
pub mod json;
pub mod metrics;
pub mod probe;
pub mod prometheus;
pub mod records;

/// This build's version (Cargo.toml): `lakeftpd --version`,
/// `lakeftpd_build_info` in `/metrics`, `Version` in every EMF record.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
