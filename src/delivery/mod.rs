//! Delivery: every durable upload goes into the spool, and from there to S3.
//!
//! - `hand_over` (called by the session after `TempUpload::commit`) adds the
//!   file to the spool (spool.rs) and queues it. With `ack = disk` it returns
//!   at once: the file is durable in the spool, and the session replies 226.
//!   With `ack = s3` it waits until S3 confirmed the object, at most
//!   `s3_timeout`; past that the session replies 451 and the file stays
//!   queued (a device that retries may cause a second, identical object —
//!   at-least-once, never a loss). With `ack = s3` the spool entry is not
//!   flushed before S3 answers (`Keep::UntilDelivered`: the 226 does not
//!   depend on it); a 451 makes it durable.
//! - `s3_uploads` delivery threads take queued files, oldest first, and store
//!   them (s3.rs). Blocking HTTP runs only on these threads, so the number of
//!   requests in flight — and the memory they use — is bounded by that key.
//! - A failed attempt is retried, forever, with capped exponential backoff
//!   and jitter; a 503 SlowDown pauses every thread. A file leaves the spool
//!   only after S3 confirmed it. At start the spool is replayed. Which file
//!   runs when is decided by `schedule.rs`, a pure type; this file does
//!   the waiting and the I/O.

pub mod credentials;
pub mod get;
pub mod objects;
pub mod s3;
mod schedule;

use crate::clock::Utc;
use crate::config::keytemplate::{self, KeyFields};
use crate::config::s3::{Ack, S3Settings};
use crate::config::Config;
use crate::delivery::credentials::Provider;
use crate::limits::{MAX_S3_KEY, RETRY_BASE, RETRY_MAX};
use crate::ops::metrics::{self, Metrics};
use crate::storage::barrier::Barrier;
use crate::storage::spool::{self, Meta, Spool};
use crate::sys::{errno, random};
use s3::{Client, Object};
use schedule::{Action, Queued, Schedule};
use smol::future::FutureExt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One queued file.
struct Job {
    id: String,
    meta: Meta,
    /// Failed attempts so far.
    failures: u32,
    /// Told when S3 confirmed the file (`ack = s3`).
    done: Option<smol::channel::Sender<()>>,
}

impl Queued for Job {
    /// The spool id: ids sort by upload time.
    fn id(&self) -> &str {
        &self.id
    }
}

/// Why an upload was not acknowledged.
pub enum Refusal {
    /// The spool is full: 452.
    SpoolFull,
    /// The rendered key is longer than S3 allows: 553.
    KeyTooLong,
    /// The rendered key lies under the fleet's bans prefix: 553.
    KeyReserved,
    /// The spool could not be written: 451.
    Local,
    /// `ack = s3` and S3 did not confirm in time: 451 (the file stays queued).
    Timeout,
}

/// One upload, as the session hands it over.
pub struct Upload {
    pub user: String,
    /// The user's own `s3_key`; `None`: the global one.
    pub template: Option<Arc<keytemplate::KeyTemplate>>,
    pub client: SocketAddr,
    /// The path inside the user's home, with its leading `/`.
    pub path: String,
    /// The home copy, renamed into place: durable once the barrier handed
    /// over with it is flushed (hand_over does, with the spool entry).
    pub file: PathBuf,
    /// What the device said in `CLNT`: `x-amz-meta-clnt`.
    pub clnt: Option<String>,
    /// Its CRC64NVME, computed while it was received (`None`: a spool entry
    /// from a build before checksums).
    pub crc64nvme: Option<u64>,
}

/// A refusal still makes the home copy's rename durable: the file stays
/// in the home whatever S3 is told.
async fn refuse_after_flush(pending: Barrier, refusal: Refusal) -> Refusal {
    if let Err(e) = smol::unblock(move || pending.flush()).await {
        log::error!("flush after a refused delivery: {e}");
        return Refusal::Local;
    }
    refusal
}

pub struct Delivery {
    settings: S3Settings,
    /// `ban_share_prefix` while bans are shared (`None`: off): no upload
    /// may be delivered below it (hand_over).
    reserved: Option<String>,
    instance: String,
    spool: Spool,
    client: Client,
    credentials: Arc<Provider>,
    metrics: Arc<Metrics>,
    /// `/healthz` turns 503 when delivery keeps failing (health.rs).
    health: Arc<crate::ops::health::Health>,
    queue: Mutex<Schedule<Job>>,
    wake: Condvar,
}

/// Starts delivery when `s3_bucket` is set: opens and replays the spool,
/// starts the delivery threads. `instance` is the EC2 instance id when known
/// (for `{instance}`); else the host name, else `local`.
pub fn start(
    config: &Config,
    instance: Option<String>,
    metrics: Arc<Metrics>,
    health: Arc<crate::ops::health::Health>,
) -> io::Result<Option<Arc<Delivery>>> {
    let settings = &config.s3;
    if settings.bucket.is_none() {
        return Ok(None);
    }
    let instance = instance.unwrap_or_else(host_name);
    let spool = Spool::open(&settings.spool)?;
    for user in &config.users {
        match spool.same_filesystem(&user.home) {
            Ok(true) => {}
            Ok(false) => log::warn!(
                "spool {} is on another filesystem than the home of {} ({}): uploads are copied into the spool, not hard-linked",
                settings.spool.display(),
                user.name,
                user.home.display()
            ),
            Err(e) => log::warn!("cannot compare filesystems of spool and {}: {e}", user.home.display()),
        }
    }
    let credentials = Arc::new(Provider::from_env());
    let client = Client::new(settings, credentials.clone()).map_err(io::Error::other)?;
    log::info!(
        "s3: delivering to {} with credentials from {}; ack = {}; {} threads; spool {}",
        client.bucket_url(),
        credentials.describe(),
        match settings.ack() {
            Ack::S3 => format!("s3 (timeout {:?})", settings.timeout),
            Ack::Disk => "disk".to_string(),
        },
        settings.uploads,
        settings.spool.display()
    );
    let delivery = Arc::new(Delivery {
        settings: settings.clone(),
        reserved: config
            .defence
            .ban_share_interval
            .map(|_| config.defence.ban_share_prefix.clone()),
        instance,
        spool,
        client,
        credentials,
        metrics,
        health,
        queue: Mutex::new(Schedule::default()),
        wake: Condvar::new(),
    });
    let replayed = delivery.spool.replay()?;
    if !replayed.is_empty() {
        log::info!(
            "spool: {} files from before the restart are queued for S3",
            replayed.len()
        );
    }
    for (id, meta) in replayed {
        delivery.enqueue(Job {
            id,
            meta,
            failures: 0,
            done: None,
        });
    }
    for n in 0..settings.uploads {
        let delivery = delivery.clone();
        std::thread::Builder::new()
            .name(format!("lakeftpd-s3-{n}"))
            .spawn(move || delivery.work())?;
    }
    Ok(Some(delivery))
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "local".into())
}

impl Delivery {
    /// `ack = s3` with `keep_local = off`: nothing is promised of the home
    /// copy (the 226 waits for S3, and the copy is removed once S3 has it).
    fn home_copy_is_transient(&self) -> bool {
        self.ack() == Ack::S3 && !self.settings.keep_local()
    }

    pub fn ack(&self) -> Ack {
        self.settings.ack()
    }

    /// Files waiting for a retry, at most `limit`, as (user, path, key):
    /// what a stop leaves in the spool is logged by name (server/drain.rs).
    /// Files in flight at that moment are not listed.
    pub fn waiting(&self, limit: usize) -> Vec<(String, String, String)> {
        self.lock()
            .waiting()
            .take(limit)
            .map(|job| {
                let m = &job.meta;
                (m.user.clone(), m.path.clone(), m.key.clone())
            })
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Schedule<Job>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn enqueue(&self, job: Job) {
        let mut queue = self.lock();
        queue.add(job, Instant::now());
        self.queued(queue);
    }

    /// After a change to the queue: the depth gauge, and a thread woken.
    fn queued(&self, queue: MutexGuard<'_, Schedule<Job>>) {
        metrics::set(&self.metrics.s3_queue_depth, queue.depth() as u64);
        drop(queue);
        self.wake.notify_one();
    }

    /// Queues a durable upload; with `ack = s3` waits for S3 (see module
    /// doc). Returns the object key it is delivered under.
    /// `pending` holds what makes the home copy durable (its rename): it is
    /// flushed here together with the spool entry (one shared flush) before
    /// this returns, on every path but one: with `ack = s3` and
    /// `keep_local = off` the home copy is transient and is not flushed.
    pub async fn hand_over(
        self: &Arc<Self>,
        upload: Upload,
        pending: Barrier,
    ) -> Result<String, Refusal> {
        let uploaded_ms = spool::now_ms();
        let time = Utc::from_unix((uploaded_ms / 1000) as i64);
        let uuid = keytemplate::uuid_v4();
        let template = upload.template.as_deref().unwrap_or(&self.settings.key);
        let key = template.render(&KeyFields {
            user: &upload.user,
            path: &upload.path,
            time,
            instance: &self.instance,
            uuid: &uuid,
        });
        if key.len() > MAX_S3_KEY {
            return Err(refuse_after_flush(pending, Refusal::KeyTooLong).await);
        }
        // SECURITY: every instance applies the bans it reads below
        // `ban_share_prefix` (server/bans.rs). A key template that puts a
        // device's file there (`{user}/{path}` and a user named like the
        // prefix) would let that device ban clients across the fleet.
        if is_reserved(&key, self.reserved.as_deref()) {
            log::warn!(
                "user={} {}: key {key} lies under ban_share_prefix: refused",
                upload.user,
                upload.path
            );
            return Err(refuse_after_flush(pending, Refusal::KeyReserved).await);
        }
        let this = self.clone();
        let added = smol::unblock(move || {
            let home = std::fs::metadata(&upload.file)?;
            let meta = Meta {
                user: upload.user,
                client: upload.client.to_string(),
                uploaded_ms,
                path: upload.path,
                home_id: spool::file_id(&home),
                home_file: upload.file,
                size: home.len(),
                crc64nvme: upload.crc64nvme,
                key,
                clnt: upload.clnt,
            };
            // ack = s3: the 226 waits for S3, so the entry needs no flush.
            let keep = match this.ack() {
                Ack::Disk => spool::Keep::Durable,
                Ack::S3 => spool::Keep::UntilDelivered,
            };
            let mut pending = pending;
            let id = this.spool.add(&meta.home_file, &meta, keep, &mut pending)?;
            if this.home_copy_is_transient() {
                // ack = s3 and keep_local = off: the 226 promises S3's copy,
                // and the home copy goes as soon as S3 has it, so its name
                // need not outlive a power cut. (Its bytes were flushed
                // before the rename: a copy that does survive is whole.)
                return Ok((id, meta));
            }
            if let Err(e) = pending.flush() {
                // Not known to be durable: no 226, and nothing queued.
                let _ = this.spool.remove(&id);
                return Err(e);
            }
            Ok::<_, io::Error>((id, meta))
        })
        .await;
        let (id, meta) = match added {
            Ok(added) => added,
            Err(e) if errno::is_storage_full(&e) => {
                metrics::inc(&self.metrics.s3_spool_full);
                log::error!("spool {} is full: {e}", self.settings.spool.display());
                return Err(Refusal::SpoolFull);
            }
            Err(e) => {
                log::error!("spool {}: {e}", self.settings.spool.display());
                return Err(Refusal::Local);
            }
        };
        let key = meta.key.clone();
        let (done, confirmed) = smol::channel::bounded(1);
        let done = (self.ack() == Ack::S3).then_some(done);
        // What a 451 after `s3_timeout` makes durable (below).
        let persist = (self.ack() == Ack::S3).then(|| (id.clone(), meta.clone()));
        self.enqueue(Job {
            id,
            meta,
            failures: 0,
            done,
        });
        if self.ack() == Ack::Disk {
            return Ok(key);
        }
        let timeout = self.settings.timeout;
        let outcome = async { confirmed.recv().await.is_ok() }
            .or(async {
                smol::Timer::after(timeout).await;
                false
            })
            .await;
        if outcome {
            Ok(key)
        } else {
            metrics::inc(&self.metrics.s3_ack_timeouts);
            // 451, "queued and will be delivered": now across a restart too.
            if let Some((id, meta)) = persist {
                let this = self.clone();
                if let Err(e) = smol::unblock(move || this.spool.persist(&id, &meta)).await {
                    log::error!("spool {}: {e}", self.settings.spool.display());
                }
            }
            Err(Refusal::Timeout)
        }
    }

    /// A delivery thread.
    fn work(self: Arc<Self>) {
        loop {
            let job = self.next_job();
            self.attempt(job);
        }
    }

    /// Waits for the next job that may run now.
    fn next_job(&self) -> Job {
        let mut queue = self.lock();
        loop {
            self.update_age(&queue);
            let now = Instant::now();
            let until = match queue.next(now) {
                Action::Run(job) => return job,
                Action::Wait(until) | Action::Pause(until) => Some(until),
                Action::Idle => None,
            };
            // Wake at least every second to refresh the age gauge.
            let second = now + Duration::from_secs(1);
            let target = until.map_or(second, |t| t.min(second));
            let wait = target.saturating_duration_since(now);
            queue = self
                .wake
                .wait_timeout(queue, wait.max(Duration::from_millis(1)))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn update_age(&self, queue: &Schedule<Job>) {
        let age = queue
            .oldest()
            .and_then(|id| id.split('-').next()?.parse::<u64>().ok())
            .map_or(0, |micros| {
                (spool::now_ms() * 1000).saturating_sub(micros) / 1_000_000
            });
        metrics::set(&self.metrics.s3_oldest_pending_seconds, age);
    }

    fn attempt(&self, mut job: Job) {
        if job.failures > 0 {
            metrics::inc(&self.metrics.s3_retries);
        }
        let meta = &job.meta;
        let mut metadata = vec![
            ("user", meta.user.clone()),
            ("client", meta.client.clone()),
            (
                "uploaded",
                Utc::from_unix((meta.uploaded_ms / 1000) as i64).iso8601(),
            ),
            ("path", meta.path.clone()),
            ("size", meta.size.to_string()),
            ("instance", self.instance.clone()),
        ];
        if let Some(clnt) = &meta.clnt {
            metadata.push(("clnt", clnt.clone()));
        }
        let data = self.spool.data_path(&job.id);
        let object = Object {
            key: &meta.key,
            file: &data,
            metadata: &metadata,
            crc64nvme: meta.crc64nvme,
        };
        match self.client.put(&object) {
            Ok(bytes) => self.delivered(job, bytes),
            Err(s3::Error::Local(e)) => {
                // Retrying cannot help; the entry stays in the spool for an
                // operator (and is tried again at the next start).
                log::error!(
                    "s3: cannot read spooled {} ({:?} of user {}): {e}; left in the spool",
                    data.display(),
                    meta.path,
                    meta.user
                );
                let mut queue = self.lock();
                queue.done(&job.id);
                metrics::set(&self.metrics.s3_queue_depth, queue.depth() as u64);
            }
            Err(s3::Error::Remote {
                message,
                slow_down,
                credentials,
            }) => {
                metrics::inc(&self.metrics.s3_delivery_failures);
                if credentials {
                    self.health.delivery_refused_credentials();
                } else {
                    self.health.delivery_failed();
                }
                job.failures += 1;
                let delay = backoff(job.failures);
                if credentials {
                    // Fetch new ones before the next attempt (a rotated role).
                    self.credentials.invalidate();
                }
                // 1st, 2nd, 4th, 8th... failure of a file: an outage or a
                // bad key logs a few lines per file, not one per attempt.
                if credentials && job.failures.is_power_of_two() {
                    log::error!(
                        "s3: S3 refused the credentials ({}) for {:?}: {message}; the file stays queued, attempt {} failed, next in {delay:.1?}",
                        self.credentials.describe(),
                        meta.key,
                        job.failures
                    );
                } else if job.failures.is_power_of_two() {
                    log::warn!(
                        "s3: delivery of {:?} failed (attempt {}): {message}; next in {delay:.1?}",
                        meta.key,
                        job.failures
                    );
                }
                let mut queue = self.lock();
                queue.retry(job, Instant::now(), delay, slow_down);
                self.queued(queue);
            }
        }
    }

    fn delivered(&self, job: Job, bytes: u64) {
        let meta = &job.meta;
        if !self.settings.keep_local() {
            self.remove_home_copy(meta);
        }
        if let Err(e) = self.spool.remove(&job.id) {
            // At-least-once: at the next start it is delivered again.
            log::error!("spool: cannot remove delivered {}: {e}", job.id);
        }
        let latency_ms = spool::now_ms().saturating_sub(meta.uploaded_ms);
        metrics::inc(&self.metrics.s3_delivered);
        self.health.delivery_ok();
        metrics::add(&self.metrics.s3_delivered_bytes, bytes);
        metrics::add(&self.metrics.s3_delivery_micros, latency_ms * 1000);
        // With ack = s3 the 226 follows this confirmation: nothing to measure.
        if self.settings.ack() == Ack::Disk {
            self.metrics
                .ack_to_s3_seconds
                .record(Duration::from_millis(latency_ms));
        }
        log::info!(
            "s3: delivered user={} path={:?} key={:?} bytes={bytes} ms_after_upload={latency_ms}",
            meta.user,
            meta.path,
            meta.key
        );
        if let Some(done) = &job.done {
            // The session may have stopped waiting (451 sent): ignore.
            let _ = done.try_send(());
        }
        let mut queue = self.lock();
        queue.done(&job.id);
        metrics::set(&self.metrics.s3_queue_depth, queue.depth() as u64);
        self.update_age(&queue);
    }

    /// `keep_local = off`: the home copy goes once S3 has the file, if it is
    /// still the file that was uploaded (not replaced by a newer upload).
    fn remove_home_copy(&self, meta: &Meta) {
        // No upload is renamed over the name between the check and the
        // removal (storage/upload.rs, PLACING).
        let _placing = crate::storage::upload::PLACING
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match std::fs::symlink_metadata(&meta.home_file) {
            Ok(m) if spool::file_id(&m) == meta.home_id => {
                if let Err(e) = std::fs::remove_file(&meta.home_file) {
                    log::warn!(
                        "keep_local = off: cannot remove {}: {e}",
                        meta.home_file.display()
                    );
                }
            }
            // Replaced, renamed or deleted since: leave it.
            _ => {}
        }
    }
}

/// Wait before retry number `failures` (1-based), with jitter.
fn backoff(failures: u32) -> Duration {
    random::backoff(failures, RETRY_BASE, RETRY_MAX, random::fraction())
}

/// Whether `key` lies below the bans prefix `reserved` (None: bans are not
/// shared, nothing is reserved).
fn is_reserved(key: &str, reserved: Option<&str>) -> bool {
    reserved.is_some_and(|prefix| !prefix.is_empty() && key.starts_with(prefix))
}

#[cfg(test)]
mod reserved_tests {
    use super::is_reserved;

    #[test]
    fn keys_under_the_bans_prefix_are_reserved() {
        let on = Some("lakeftpd/bans/");
        assert!(is_reserved("lakeftpd/bans/i-0abc.bans", on));
        assert!(is_reserved("lakeftpd/bans/x/y.csv", on));
        assert!(!is_reserved("lakeftpd/bansx/a.csv", on));
        assert!(!is_reserved("raw/user=a/dt=2026-12-07/lakeftpd/bans/a", on));
        // Sharing off: nothing is reserved.
        assert!(!is_reserved("lakeftpd/bans/i-0abc.bans", None));
    }
}
