//! Files on disk: the jail that turns client paths into real paths, durable
//! uploads (bytes flushed → rename → flushed), the barrier that shares those
//! flushes, directory changes made durable, and the spool that holds uploads
//! until S3 has them.

pub mod barrier;
pub mod beneath;
pub mod dirs;
pub mod durable;
pub mod jail;
pub mod sidecar;
pub mod spool;
pub mod upload;
