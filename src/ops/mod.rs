//! Operating the server: metrics, their Prometheus text, and the health
//! endpoint the balancer polls.

pub mod health;
pub mod histogram;
pub mod metrics;
pub mod prometheus;
