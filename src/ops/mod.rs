//! Operating the server: metrics, their Prometheus text, the health
//! endpoint the balancer polls, and the drain at SIGTERM.

pub mod drain;
pub mod health;
pub mod metrics;
pub mod prometheus;
