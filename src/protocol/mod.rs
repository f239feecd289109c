//! Pure parsers and formatters of what crosses the wire: no I/O, no state.
//! Every byte from a client passes through one of these exactly once.

pub mod address;
pub mod command;
pub mod encoding;
pub mod escape;
pub mod http;
pub mod line;
pub mod listing;
pub mod proxy;
pub mod reply;
pub mod timeval;
pub mod verbs;
