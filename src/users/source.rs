//! Reading the users file: from S3 with a conditional GET (an unchanged
//! object costs one request answered 304, no body), or from a local file
//! (read only when its modification time or size changed). Blocking: runs
//! on the reload thread.

use crate::config::{Config, UsersSource};
use crate::delivery::credentials::Provider;
use crate::delivery::get::Got;
use crate::delivery::s3::Client;
use crate::limits::MAX_USERS_FILE_BYTES;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What a read found.
pub enum Fetched {
    /// The same version as the last read.
    Unchanged,
    Text(String),
}

pub enum Source {
    S3 {
        client: Client,
        key: String,
        /// The ETag of the last version read.
        etag: Option<String>,
    },
    File {
        path: PathBuf,
        /// Modification time and size of the last version read.
        seen: Option<(SystemTime, u64)>,
    },
}

impl Source {
    pub fn new(config: &Config, source: &UsersSource) -> Result<Source, String> {
        Ok(match source {
            UsersSource::S3 { bucket, key } => Source::S3 {
                client: Client::for_bucket(
                    &config.s3,
                    bucket.clone(),
                    Arc::new(Provider::from_env()),
                )?,
                key: key.clone(),
                etag: None,
            },
            UsersSource::File(path) => Source::File {
                path: path.clone(),
                seen: None,
            },
        })
    }

    pub fn is_s3(&self) -> bool {
        matches!(self, Source::S3 { .. })
    }

    /// Reads the file unless it is the version read last; `force` reads it
    /// anyway (SIGHUP). The version is remembered even if its text turns
    /// out to be refused, so a broken file is reported once, not at every
    /// poll. A read from S3 is abandoned past `deadline`.
    pub fn fetch(&mut self, force: bool, deadline: Duration) -> Result<Fetched, String> {
        match self {
            Source::S3 { client, key, etag } => {
                let condition = if force { None } else { etag.as_deref() };
                match client
                    .get_object(key, condition, MAX_USERS_FILE_BYTES as u64, deadline)
                    .map_err(|e| e.to_string())?
                {
                    Got::NotModified => Ok(Fetched::Unchanged),
                    Got::Object { body, etag: tag } => {
                        *etag = tag;
                        String::from_utf8(body)
                            .map(Fetched::Text)
                            .map_err(|_| "the users file is not UTF-8".to_string())
                    }
                }
            }
            Source::File { path, seen } => {
                let meta = std::fs::metadata(&*path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let version = (
                    meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    meta.len(),
                );
                if !force && *seen == Some(version) {
                    return Ok(Fetched::Unchanged);
                }
                if meta.len() > MAX_USERS_FILE_BYTES as u64 {
                    *seen = Some(version);
                    return Err(format!(
                        "{}: larger than {MAX_USERS_FILE_BYTES} bytes",
                        path.display()
                    ));
                }
                let text = std::fs::read_to_string(&*path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                *seen = Some(version);
                Ok(Fetched::Text(text))
            }
        }
    }
}
