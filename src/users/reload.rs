//! The users file over the life of the process: the first load at start,
//! then a check every `users_poll_interval` and at each SIGHUP, on a thread
//! of its own (reads and parses are blocking and take up to a second for
//! 100,000 users; sessions never wait for them).
//!
//! At start, S3 is tried for `users_boot_timeout`; then the cache on disk;
//! with neither, the process serves the configuration's users only and
//! `/healthz` answers 503 until a users file has loaded. A file with any
//! problem is refused whole: the previous set stays, every problem is logged
//! with its line number and `users_reload_failures` counts it.

use super::source::{Fetched, Source};
use super::{cache, Changes, Users};
use crate::config::{self, Config, Refused, UsersSource};
use crate::limits::{MAX_LOGGED_PROBLEMS, S3_CALL_DEADLINE, USERS_BOOT_RETRY, USERS_RELOAD_NICE};
use crate::ops::health::Health;
use crate::ops::metrics::{self, Metrics};
use async_signal::{Signal, Signals};
use smol::future::FutureExt;
use smol::stream::StreamExt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Loads the users (see the module doc) and starts the reload thread.
pub fn start(
    config: &Config,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
) -> io::Result<Arc<Users>> {
    let users = Arc::new(Users::new(config.users.clone()));
    metrics::set(&metrics.users_loaded, users.len() as u64);
    // Registered even without a users file: SIGHUP must never end the
    // process (its default action).
    let hup = Signals::new([Signal::Hup])?;
    let mut loader = match &config.users_source {
        Some(source) => Some(Loader {
            source: Source::new(config, source).map_err(io::Error::other)?,
            origin: source.to_string(),
            cache: matches!(source, UsersSource::S3 { .. }).then(|| config.users_cache_path()),
            config: config.clone(),
            users: users.clone(),
            metrics,
            health,
        }),
        None => None,
    };
    if let Some(loader) = &mut loader {
        loader.boot();
    }
    let interval = config.users_poll_interval;
    std::thread::Builder::new()
        .name("lakeftpd-users".into())
        .spawn(move || run(loader, hup, interval))?;
    Ok(users)
}

fn run(mut loader: Option<Loader>, mut hup: Signals, interval: std::time::Duration) {
    // Reloads run behind the sessions: see USERS_RELOAD_NICE.
    crate::sys::lower_thread_priority(USERS_RELOAD_NICE);
    // Polls keep their rhythm: the next is due `interval` after the last
    // began, however long that one took (each read is cut at `interval`).
    let mut due = Instant::now() + interval;
    loop {
        let polling = loader.is_some();
        let wait = due.saturating_duration_since(Instant::now());
        let forced = smol::block_on(
            async {
                let _ = hup.next().await;
                true
            }
            .or(async {
                if !polling {
                    std::future::pending::<()>().await;
                }
                smol::Timer::after(wait).await;
                false
            }),
        );
        if !forced {
            due = Instant::now().max(due) + interval;
        }
        match &mut loader {
            Some(loader) => {
                if forced {
                    log::info!("SIGHUP: reloading the users from {}", loader.origin);
                }
                loader.reload(forced, interval);
            }
            None => log::info!("SIGHUP: no users file configured (`users`), nothing to reload"),
        }
    }
}

struct Loader {
    config: Config,
    source: Source,
    origin: String,
    /// Where the last good copy from S3 is kept; `None` for a local file.
    cache: Option<PathBuf>,
    users: Arc<Users>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

impl Loader {
    fn boot(&mut self) {
        let deadline = Instant::now() + self.config.users_boot_timeout;
        let error = loop {
            metrics::inc(&self.metrics.users_fetches);
            // SECURITY: users_boot_timeout bounds the boot, reads included.
            let left = deadline.saturating_duration_since(Instant::now());
            match self.source.fetch(true, left.max(USERS_BOOT_RETRY)) {
                Ok(Fetched::Text(text)) => match self.install(&text, SystemTime::now()) {
                    Ok(()) => {
                        self.keep(&text);
                        return;
                    }
                    Err(()) => break "it has problems".to_string(),
                },
                Ok(Fetched::Unchanged) => unreachable!("a forced read always reads"),
                Err(e) => {
                    metrics::inc(&self.metrics.users_reload_failures);
                    // A local file is not retried: it will not appear by waiting.
                    if !self.source.is_s3() || Instant::now() + USERS_BOOT_RETRY >= deadline {
                        break e;
                    }
                    log::warn!("users: {}: {e}; retrying", self.origin);
                    std::thread::sleep(USERS_BOOT_RETRY);
                }
            }
        };
        if let Some(path) = self.cache.clone() {
            match cache::read(&path) {
                Ok(Some((text, written))) => {
                    log::warn!(
                        "users: cannot load {} ({error}); starting from the copy in {}",
                        self.origin,
                        path.display()
                    );
                    if self.install(&text, written).is_ok() {
                        return;
                    }
                }
                Ok(None) => {}
                Err(e) => log::error!("users: cache {}: {e}", path.display()),
            }
        }
        self.health.set_users_missing(true);
        let message = format!(
            "users: cannot load {} ({error}) and no usable cache: serving the {} users of the configuration only; /healthz answers 503 until the users file loads (retried every {} s)",
            self.origin,
            self.config.users.len(),
            self.config.users_poll_interval.as_secs()
        );
        log::error!("{message}");
        // On the console too (the serial console of an instance).
        eprintln!("lakeftpd: {message}");
    }

    fn reload(&mut self, force: bool, interval: Duration) {
        metrics::inc(&self.metrics.users_fetches);
        // SECURITY: a stalled read never holds the next poll back.
        let deadline = interval.clamp(USERS_BOOT_RETRY, S3_CALL_DEADLINE);
        match self.source.fetch(force, deadline) {
            Ok(Fetched::Unchanged) => metrics::inc(&self.metrics.users_unchanged),
            Ok(Fetched::Text(text)) => {
                if self.install(&text, SystemTime::now()).is_ok() {
                    self.keep(&text);
                }
            }
            Err(e) => {
                metrics::inc(&self.metrics.users_reload_failures);
                log::warn!(
                    "users: cannot read {}: {e}; the {} current users stay",
                    self.origin,
                    self.users.len()
                );
            }
        }
    }

    /// Parses `text` and, without a problem, makes it the current set.
    fn install(&self, text: &str, loaded_at: SystemTime) -> Result<(), ()> {
        let start = Instant::now();
        // SECURITY: at most MAX_LOGGED_PROBLEMS are kept (see Problems).
        let parsed = config::parse_users(text, &self.config, MAX_LOGGED_PROBLEMS);
        let file_users = match parsed {
            Ok(users) => users,
            Err(refused) => {
                metrics::inc(&self.metrics.users_reload_failures);
                self.report(&refused);
                return Err(());
            }
        };
        let from_file = file_users.len();
        let mut all = self.config.users.clone();
        all.extend(file_users);
        // SECURITY: unknown names are checked against the new set's decoys.
        crate::auth::set_unknown_user_cost(&all);
        let Changes {
            added,
            changed,
            removed,
            total,
        } = self.users.replace(all);
        let unix = loaded_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        metrics::set(&self.metrics.users_loaded, total as u64);
        metrics::set(&self.metrics.users_last_load_timestamp_seconds, unix);
        self.health.set_users_missing(false);
        log::info!(
            "users: loaded {from_file} users from {} in {} ms ({added} added, {changed} changed, {removed} removed; {total} with the configuration's)",
            self.origin,
            start.elapsed().as_millis()
        );
        Ok(())
    }

    fn report(&self, refused: &Refused) {
        let problems = &refused.problems;
        let more = match refused.stopped_at {
            Some(line) => format!(" (and more: reading stopped at line {line})"),
            None => String::new(),
        };
        log::error!(
            "users: {} refused, {} problem(s){more}; the {} current users stay",
            self.origin,
            problems.len(),
            self.users.len()
        );
        for p in problems {
            log::error!("users: {}: {p}", self.origin);
        }
        if refused.stopped_at.is_some() {
            log::error!(
                "users: {}: lakeftpd check --users FILE lists every problem",
                self.origin
            );
        }
    }

    /// Keeps a good copy from S3 for a start without S3.
    fn keep(&self, text: &str) {
        if let Some(path) = &self.cache {
            if let Err(e) = cache::write(path, text) {
                log::warn!("users: cannot write the cache {}: {e}", path.display());
            }
        }
    }
}
