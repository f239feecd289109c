//! lakeftpd: an FTP server appliance for IoT fleets on AWS. Devices upload
//! over FTP (active or passive mode); every acknowledged file lands in S3.
//!
//! The modules, in the order an upload flows through them (dependencies only
//! point down this list; `tests/module_graph.py` checks it in CI):
//!
//! - [`cli`]: the command line and the demo; the top.
//! - [`server`]: the accept loop, admission, the executor, the stop.
//! - [`session`]: one FTP session's state machine, handlers by concern.
//! - [`shared`]: what every session shares (configuration, pools, counters).
//! - [`users`]: the users who may log in, from the configuration and a users
//!   file (S3 or local), swapped whole at each reload.
//! - [`auth`]: password hashes and the credential cache.
//! - [`delivery`]: the S3 queue, the S3 client, credentials, object keys.
//! - [`aws`]: the EC2 metadata service and CloudWatch EMF.
//! - [`ops`]: metrics, Prometheus text, the health endpoint, the drain.
//! - [`data`]: data connections (active connect, passive pool) and transfers.
//! - [`tls`]: FTPS: the rustls configuration, a certificate replaceable at
//!   run time, handshakes, the plain-or-TLS stream, session-reuse tags.
//! - [`storage`]: the jail (the only producer of real paths), durable
//!   uploads, the spool.
//! - [`config`]: the configuration text parsed once into typed values.
//! - [`protocol`]: pure parsers and formatters, no I/O: command lines,
//!   replies, PROXY headers, listings, the HTTP request line, line framing.
//! - [`sys`]: syscalls, the open-file budget, timeouts; [`limits`] and
//!   [`clock`] at the bottom.
#![forbid(unsafe_code)]

pub mod auth;
pub mod aws;
pub mod cli;
pub mod clock;
pub mod config;
pub mod data;
pub mod delivery;
pub mod limits;
pub mod ops;
pub mod protocol;
pub mod server;
pub mod session;
pub mod shared;
pub mod storage;
pub mod sys;
pub mod tls;
pub mod users;
