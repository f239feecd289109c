//! The home and spool filesystems, measured every `DISK_POLL_INTERVAL`:
//! their free bytes and inodes become gauges (Prometheus and EMF), and a
//! filesystem that could not take one more upload of `max_file_size` makes
//! the instance not ready (`disk full`) before an upload fails on it. The
//! loop also refreshes the `ready` and `live` gauges (probe.rs); the
//! executor's heartbeat is a task beside it.

use crate::limits::{
    DISK_POLL_INTERVAL, DISK_RESERVE_MARGIN, DISK_RESERVE_UNBOUNDED, MIN_FREE_INODES,
};
use crate::ops::health::Health;
use crate::ops::metrics::{self, Metrics};
use smol::Timer;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// One filesystem's room, as statvfs(3) gives it to an unprivileged writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// Bytes an unprivileged process may still write (`f_bavail`).
    pub free_bytes: u64,
    pub free_inodes: u64,
    /// 0 on filesystems without an inode table (btrfs): never short.
    pub total_inodes: u64,
    pub read_only: bool,
}

/// Free bytes one upload needs on each filesystem it touches: its size
/// (`max_file_size`, else `DISK_RESERVE_UNBOUNDED`) plus the margin.
pub fn reserve(max_file_size: Option<u64>) -> u64 {
    max_file_size
        .unwrap_or(DISK_RESERVE_UNBOUNDED)
        .saturating_add(DISK_RESERVE_MARGIN)
}

/// Pure: whether an upload needing `reserve` bytes could fail here.
pub fn is_full(space: &Space, reserve: u64) -> bool {
    space.free_bytes < reserve || (space.total_inodes > 0 && space.free_inodes < MIN_FREE_INODES)
}

/// Measures the filesystem holding `path`.
pub fn measure(path: &std::path::Path) -> std::io::Result<Space> {
    use rustix::fs::StatVfsMountFlags;
    let s = rustix::fs::statvfs(path)?;
    Ok(Space {
        free_bytes: s.f_bavail.saturating_mul(s.f_frsize),
        free_inodes: s.f_favail,
        total_inodes: s.f_files,
        read_only: s.f_flag.contains(StatVfsMountFlags::RDONLY),
    })
}

/// What the loop watches.
pub struct Watched {
    /// `root`: where the homes are.
    pub home: PathBuf,
    /// The spool, when S3 delivery is on.
    pub spool: Option<PathBuf>,
    pub reserve: u64,
    /// `health_s3_failing_after`, for the readiness gauge.
    pub failing_after: Duration,
}

/// The executor's heartbeat, a task of its own: it never waits for the
/// blocking pool (a slow disk may keep that busy), only for the executor.
pub async fn heartbeat(health: Arc<Health>) {
    loop {
        health.beat();
        Timer::after(DISK_POLL_INTERVAL).await;
    }
}

/// What one look at the filesystems found (`None`: no spool).
type Looked = (std::io::Result<Space>, Option<std::io::Result<Space>>);

fn look(watched: &Watched) -> Looked {
    (
        measure(&watched.home),
        watched.spool.as_deref().map(measure),
    )
}

/// The first look, taken at start before the health listener answers, so
/// that its first answer and the gauges already say what the disk holds
/// (a disk full at start is never reported ready, not even for a second).
pub fn first_look(watched: &Watched, health: &Health, metrics: &Metrics) -> bool {
    let mut warned = false;
    record(watched, look(watched), health, metrics, &mut warned);
    warned
}

/// Runs until the process ends, looking every `DISK_POLL_INTERVAL` (after
/// `first_look`; `warned`: what it returned).
pub async fn watch(watched: Watched, health: Arc<Health>, metrics: Arc<Metrics>, mut warned: bool) {
    let watched = Arc::new(watched);
    loop {
        Timer::after(DISK_POLL_INTERVAL).await;
        let looking = watched.clone();
        let looked = smol::unblock(move || look(&looking)).await;
        record(&watched, looked, &health, &metrics, &mut warned);
    }
}

/// Sets the gauges and the health state from one look; the first failure
/// to measure is logged once (`warned`).
fn record(
    watched: &Watched,
    looked: Looked,
    health: &Health,
    metrics: &Metrics,
    warned: &mut bool,
) {
    let (home, spool) = looked;
    let mut full = false;
    let mut read_only = false;
    for (space, bytes, inodes) in [
        (
            Some(home),
            &metrics.home_free_bytes,
            &metrics.home_free_inodes,
        ),
        (spool, &metrics.spool_free_bytes, &metrics.spool_free_inodes),
    ] {
        match space {
            Some(Ok(space)) => {
                metrics::set(bytes, space.free_bytes);
                metrics::set(inodes, space.free_inodes);
                full |= is_full(&space, watched.reserve);
                read_only |= space.read_only;
            }
            Some(Err(e)) if !*warned => {
                log::warn!("disk: cannot measure a filesystem: {e}");
                *warned = true;
            }
            _ => {}
        }
    }
    if full != health.disk_full() {
        if full {
            log::warn!(
                "disk full: less than {} bytes (or {MIN_FREE_INODES} inodes) free on the home or spool filesystem; /healthz answers 503",
                watched.reserve
            );
        } else {
            log::info!("disk space back: /healthz no longer says disk full");
        }
    }
    let pending = watched
        .spool
        .is_some()
        .then(|| metrics::get(&metrics.s3_queue_depth));
    health.set_disk(full, read_only, pending);
    let probe = health.probe(watched.failing_after);
    metrics::set(&metrics.disk_full, full as u64);
    metrics::set(&metrics.ready, probe.ready.is_ok() as u64);
    metrics::set(&metrics.live, probe.live.is_ok() as u64);
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn space(free_bytes: u64, free_inodes: u64, total_inodes: u64) -> Space {
        Space {
            free_bytes,
            free_inodes,
            total_inodes,
            read_only: false,
        }
    }

    #[test]
    fn reserve_is_max_file_size_plus_margin() {
        assert_eq!(reserve(Some(10 * MIB)), 11 * MIB);
        assert_eq!(reserve(None), DISK_RESERVE_UNBOUNDED + MIB);
        assert_eq!(reserve(Some(u64::MAX)), u64::MAX);
    }

    #[test]
    fn full_below_the_reserve() {
        assert!(is_full(&space(MIB - 1, 10_000, 10_000), MIB));
        assert!(!is_full(&space(MIB, 10_000, 10_000), MIB));
    }

    #[test]
    fn full_without_inodes() {
        assert!(is_full(
            &space(100 * MIB, MIN_FREE_INODES - 1, 1 << 20),
            MIB
        ));
        assert!(!is_full(&space(100 * MIB, MIN_FREE_INODES, 1 << 20), MIB));
    }

    #[test]
    fn no_inode_table_is_never_short_of_inodes() {
        assert!(!is_full(&space(100 * MIB, 0, 0), MIB));
    }

    #[test]
    fn the_first_look_says_full_before_any_wait() {
        // A reserve no filesystem holds: the state and gauges say full as
        // soon as first_look returns (the server takes it before /healthz
        // answers), and the free bytes are the real ones, not 0.
        let watched = Watched {
            home: PathBuf::from("."),
            spool: None,
            reserve: u64::MAX,
            failing_after: Duration::from_secs(300),
        };
        let (health, metrics) = (Health::default(), Metrics::default());
        assert!(!first_look(&watched, &health, &metrics));
        assert!(health.disk_full());
        assert!(health.probe(watched.failing_after).ready.is_err());
        assert_eq!(metrics::get(&metrics.disk_full), 1);
        assert_eq!(metrics::get(&metrics.ready), 0);
        assert!(metrics::get(&metrics.home_free_bytes) > 0);
    }

    #[test]
    fn measures_this_directory() {
        let space = measure(std::path::Path::new(".")).unwrap();
        assert!(space.free_bytes > 0);
    }
}
