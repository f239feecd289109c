//! The served certificate: `tls_cert` and `tls_key` read at start (files,
//! or S3 objects read with the delivery's credentials), then checked every
//! `tls_reload_interval`. A change (a file's mtime, size or inode; an
//! object's ETag) is loaded and checked like at start; a good pair serves
//! the next handshake, a bad one is logged and counted and the old pair
//! stays. The gauge `tls_cert_expiry_seconds` follows the served pair.

use crate::config::s3::S3Settings;
use crate::config::tls::Source;
use crate::config::Config;
use crate::delivery::credentials::Provider;
use crate::delivery::s3;
use crate::limits::MAX_TLS_PEM_BYTES;
use crate::ops::metrics::{self, Metrics};
use crate::tls::certs::{self, Pair};
use crate::tls::Tls;
use smol::Timer;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What identifies the bytes read: a change means "read again".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version(String, String);

/// Reads the certificate and key from where the configuration says.
#[derive(Clone)]
pub struct Reader {
    cert: Source,
    key: Source,
    s3: S3Settings,
    credentials: Arc<Provider>,
}

impl Reader {
    /// `None` with `tls = off`.
    pub fn new(config: &Config) -> Option<Reader> {
        let tls = &config.tls;
        if !tls.enabled() {
            return None;
        }
        Some(Reader {
            cert: tls.cert.clone()?,
            key: tls.key.clone()?,
            s3: config.s3.clone(),
            credentials: Arc::new(Provider::from_env()),
        })
    }

    /// One source's version, without reading it when it can be avoided
    /// (files: metadata only).
    fn version_of(&self, source: &Source) -> Result<Option<String>, String> {
        match source {
            Source::File(path) => {
                let meta = std::fs::metadata(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                Ok(Some(format!(
                    "{}:{}:{}:{}",
                    meta.ino(),
                    meta.len(),
                    meta.mtime(),
                    meta.mtime_nsec()
                )))
            }
            Source::S3 { .. } => Ok(None),
        }
    }

    /// Reads one source whole: its bytes and version. Blocking.
    fn read(&self, source: &Source) -> Result<(Vec<u8>, String), String> {
        match source {
            Source::File(path) => {
                let version = self.version_of(source)?.unwrap_or_default();
                let bytes = std::fs::read(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                if bytes.len() > MAX_TLS_PEM_BYTES {
                    return Err(format!(
                        "{} is larger than {MAX_TLS_PEM_BYTES} bytes",
                        path.display()
                    ));
                }
                Ok((bytes, version))
            }
            Source::S3 { bucket, key } => {
                let client =
                    s3::Client::for_bucket(&self.s3, bucket.clone(), self.credentials.clone())
                        .map_err(|e| format!("{source}: {e}"))?;
                let (bytes, etag) = client
                    .get(key, MAX_TLS_PEM_BYTES)
                    .map_err(|e| format!("{source}: {e}"))?;
                Ok((bytes, etag.unwrap_or_default()))
            }
        }
    }

    /// Reads and checks the pair at `now` (Unix seconds). Blocking.
    pub fn load(&self, now: i64) -> Result<(Pair, Version), Vec<String>> {
        let (cert, cert_version) = self.read(&self.cert).map_err(|e| vec![e])?;
        let (key, key_version) = self.read(&self.key).map_err(|e| vec![e])?;
        let pair = certs::load(&cert, &key, now)?;
        Ok((pair, Version(cert_version, key_version)))
    }

    /// Whether the sources differ from `version`. S3 objects are read to
    /// learn their ETag, so for them this is a `load`. Blocking.
    fn changed(&self, version: &Version, now: i64) -> Changed {
        let files = (self.version_of(&self.cert), self.version_of(&self.key));
        if let (Ok(Some(cert)), Ok(Some(key))) = &files {
            if *cert == version.0 && *key == version.1 {
                return Changed::No;
            }
        }
        match self.load(now) {
            Ok((_, new)) if new == *version => Changed::No,
            Ok((pair, new)) => Changed::Yes(pair, new),
            Err(problems) => Changed::Bad(problems),
        }
    }
}

enum Changed {
    No,
    Yes(Pair, Version),
    Bad(Vec<String>),
}

/// Unix seconds now.
pub fn now() -> i64 {
    crate::clock::unix_seconds(SystemTime::now())
}

/// Sets the expiry gauge from the served pair.
pub fn publish_expiry(tls: &Tls, metrics: &Metrics) {
    let left = u64::try_from(tls.not_after().saturating_sub(now())).unwrap_or(0);
    metrics::set(&metrics.tls_cert_expiry_seconds, left);
}

/// Checks for a new pair every `interval`, for as long as the server runs.
pub async fn watch(
    tls: Arc<Tls>,
    reader: Reader,
    mut version: Version,
    interval: Duration,
    metrics: Arc<Metrics>,
) {
    let mut last_problem: Option<Vec<String>> = None;
    loop {
        publish_expiry(&tls, &metrics);
        Timer::after(interval).await;
        let (r, v) = (reader.clone(), version.clone());
        match smol::unblock(move || r.changed(&v, now())).await {
            Changed::No => {}
            Changed::Yes(pair, new) => {
                tls.replace(&pair);
                version = new;
                last_problem = None;
                metrics::inc(&metrics.tls_cert_reloads);
                log::info!(
                    "tls: serving a new certificate ({}), {} days left",
                    pair.subject,
                    pair.seconds_left(now()) / 86_400
                );
            }
            Changed::Bad(problems) => {
                metrics::inc(&metrics.tls_cert_reload_failures);
                // Once per distinct problem, not every interval.
                if last_problem.as_ref() != Some(&problems) {
                    log::error!(
                        "tls: the changed certificate or key is refused, the old pair stays: {}",
                        problems.join("; ")
                    );
                    last_problem = Some(problems);
                }
            }
        }
    }
}
