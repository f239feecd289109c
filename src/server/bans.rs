//! Bans shared across the fleet without a database (`ban_share_interval`,
//! with `s3_bucket`): every interval, on a thread of its own, an instance
//! publishes its running bans (`auth::defender::fleet`) to an object of its
//! own, `PREFIX + INSTANCE + ".bans"`, with a conditional write (it
//! replaces only the version it wrote last, or creates it), then lists the
//! prefix and reads the objects whose ETag changed since it last read them
//! (an unchanged object costs nothing beyond the listing), and hands the
//! others' bans to its defender. A ban made on one instance therefore
//! refuses the client on every instance within about one interval.
//!
//! Bounded: `MAX_BAN_SHARE_OBJECTS` objects of `MAX_BAN_SHARE_BYTES` and
//! `MAX_SHARED_BANS` bans each. An object that is not a bans text (someone
//! else's, or broken) is ignored with one log line per version. Reads and
//! writes have the S3 call deadline; a failure is logged and the last
//! bans read are kept until they end.

use crate::auth::defender::fleet::{self, SharedBan};
use crate::config::Config;
use crate::delivery::credentials::Provider;
use crate::delivery::get::Got;
use crate::delivery::objects::{Expect, Listed, Put};
use crate::delivery::s3::Client;
use crate::limits::{MAX_BAN_SHARE_BYTES, MAX_BAN_SHARE_OBJECTS, S3_CALL_DEADLINE};
use crate::shared::Shared;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Starts the sharing thread when a bucket and an interval are set.
pub fn start(config: &Config, shared: Arc<Shared>, instance: Option<&str>) {
    let (Some(interval), Some(bucket)) = (config.defence.ban_share_interval, &config.s3.bucket)
    else {
        return;
    };
    let client =
        match Client::for_bucket(&config.s3, bucket.clone(), Arc::new(Provider::from_env())) {
            Ok(client) => client,
            Err(e) => {
                log::error!("bans: cannot share them through s3://{bucket}: {e}");
                return;
            }
        };
    // Without an instance id (outside EC2), a random name of this process.
    let name = instance.map_or_else(
        || {
            let bytes: [u8; 8] = crate::sys::random_bytes();
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        },
        str::to_string,
    );
    let prefix = config.defence.ban_share_prefix.clone();
    let own = format!("{prefix}{name}.bans");
    log::info!(
        "bans: shared every {} s through s3://{bucket}/{prefix} (this instance: {own})",
        interval.as_secs()
    );
    let mut sharer = Sharer {
        client,
        prefix,
        own,
        published: None,
        own_etag: None,
        read: HashMap::new(),
        list_failing: false,
    };
    let spawned = std::thread::Builder::new()
        .name("lakeftpd-bans".into())
        .spawn(move || loop {
            let started = Instant::now();
            sharer.round(&shared);
            std::thread::sleep(interval.saturating_sub(started.elapsed()));
        });
    if let Err(e) = spawned {
        log::error!("bans: cannot start the sharing thread: {e}");
    }
}

struct Sharer {
    client: Client,
    prefix: String,
    own: String,
    /// The text last written (nothing is written while it stays the same).
    published: Option<String>,
    /// The ETag of this instance's object as last written or listed.
    own_etag: Option<String>,
    /// The other objects read: their ETag and running bans.
    read: HashMap<String, (String, Vec<SharedBan>)>,
    /// The last listing failed (logged once until it works again).
    list_failing: bool,
}

/// Now as Unix seconds (the bans' clock across instances).
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Sharer {
    fn round(&mut self, shared: &Shared) {
        let (now, unix) = (Instant::now(), unix_now());
        let own = shared.defender(|d| d.own_bans(now, unix));
        // No object is made for an instance that never banned anyone.
        if !own.is_empty() || self.published.is_some() {
            self.publish(fleet::format(&own));
        }
        match self.client.list(&self.prefix, MAX_BAN_SHARE_OBJECTS) {
            Ok(listed) => {
                if std::mem::take(&mut self.list_failing) {
                    log::info!("bans: listing {} works again", self.prefix);
                }
                self.read_changed(listed, unix)
            }
            Err(e) => {
                // Logged when it begins, not at every round (a role without
                // s3:ListBucket on the prefix would repeat it forever).
                if !self.list_failing {
                    log::warn!(
                        "bans: cannot list {}: {e} (not shared until it works; needs s3:ListBucket on the prefix, s3:GetObject and s3:PutObject under it)",
                        self.prefix
                    );
                }
                self.list_failing = true;
            }
        }
        let bans = self.merged(now, unix);
        shared.defender(|d| d.set_fleet_bans(bans));
    }

    /// Writes this instance's text if it changed, over the version written
    /// last only (If-Match), or as a new object (If-None-Match: *).
    fn publish(&mut self, text: String) {
        if self.published.as_deref() == Some(text.as_str()) {
            return;
        }
        let expect = match &self.own_etag {
            Some(etag) => Expect::Version(etag),
            None => Expect::Absent,
        };
        match self.client.put_if(&self.own, text.as_bytes(), expect) {
            Ok(Put::Done(etag)) => {
                self.own_etag = etag;
                self.published = Some(text);
            }
            // Written by someone else (or by this instance before a
            // restart): its current version is read, and replaced next round.
            Ok(Put::Conflict) => {
                log::warn!("bans: {} was written elsewhere; replacing it", self.own);
                self.own_etag = match self.client.get(&self.own, MAX_BAN_SHARE_BYTES as usize) {
                    Ok((_, etag)) => etag,
                    Err(_) => None,
                };
            }
            Err(e) => log::warn!("bans: cannot write {}: {e}", self.own),
        }
    }

    fn read_changed(&mut self, listed: Vec<Listed>, unix: u64) {
        let mut seen = HashMap::new();
        for object in listed {
            if object.key == self.own || !object.key.ends_with(".bans") {
                continue;
            }
            let known = self.read.remove(&object.key);
            let entry = match known {
                Some((etag, bans)) if object.etag.as_ref() == Some(&etag) => (etag, bans),
                known => self.fetch(&object, known, unix),
            };
            seen.insert(object.key, entry);
        }
        // Objects no longer listed take their bans with them.
        self.read = seen;
    }

    /// Reads one object the listing says changed (or could not say: then
    /// conditionally, on the ETag read last). A bad one counts as no bans,
    /// logged once per version (its ETag is remembered).
    fn fetch(
        &self,
        object: &Listed,
        known: Option<(String, Vec<SharedBan>)>,
        unix: u64,
    ) -> (String, Vec<SharedBan>) {
        let key = &object.key;
        if object.size > MAX_BAN_SHARE_BYTES {
            log::warn!(
                "bans: {key} ignored: {} bytes, more than {MAX_BAN_SHARE_BYTES}",
                object.size
            );
            return (object.etag.clone().unwrap_or_default(), Vec::new());
        }
        let condition = known.as_ref().map(|(etag, _)| etag.as_str());
        let got = self
            .client
            .get_object(key, condition, MAX_BAN_SHARE_BYTES, S3_CALL_DEADLINE);
        let (body, etag) = match got {
            Ok(Got::Object { body, etag }) => (body, etag.unwrap_or_default()),
            Ok(Got::NotModified) => return known.unwrap_or_default(),
            Err(e) => {
                log::warn!("bans: cannot read {key}: {e}");
                return known.unwrap_or_default();
            }
        };
        let parsed = std::str::from_utf8(&body)
            .map_err(|_| "not UTF-8".to_string())
            .and_then(|text| fleet::parse(text, unix));
        match parsed {
            Ok(bans) => {
                if !bans.is_empty() {
                    log::info!("bans: {} from {key}", bans.len());
                }
                (etag, bans)
            }
            Err(problem) => {
                log::warn!("bans: {key} ignored: {problem}");
                (etag, Vec::new())
            }
        }
    }

    /// Every other instance's running bans, latest end per key.
    fn merged(&self, now: Instant, unix: u64) -> HashMap<crate::sys::client::ClientKey, Instant> {
        let mut bans = HashMap::new();
        for ban in self.read.values().flat_map(|(_, bans)| bans) {
            if ban.until <= unix {
                continue;
            }
            let until = now + Duration::from_secs(ban.until - unix);
            let entry = bans.entry(ban.key).or_insert(until);
            *entry = (*entry).max(until);
        }
        bans
    }
}
