//! Data connections (RFC 959 §3.2): the active connect, the passive port
//! pool, and the transfers that run over them.

pub mod active;
pub mod passive;
pub mod transfer;
