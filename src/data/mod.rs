//! Data connections (RFC 959 §3.2): the active connect, the passive port
//! pool, the channel a session plans them on, and the transfers that run
//! over them.

pub mod active;
pub mod channel;
pub mod passive;
pub mod transfer;
