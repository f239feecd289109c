//! Readiness and liveness: one pure function from what the instance knows
//! about itself to the two answers the outside acts on.
//!
//! - **Ready** (`/healthz`, read by the balancer and Route 53): may new
//!   devices be sent here now? Not while draining, while the disk cannot
//!   take an upload of `max_file_size`, while no users file ever loaded, or
//!   while S3 delivery has been failing for `health_s3_failing_after`.
//! - **Live** (`/livez`, and systemd's watchdog, which is fed only while
//!   live): is this instance working, so that replacing it would not help?
//!   A shared outage (S3, the users object, the credentials: the same for
//!   every instance) leaves it live: replacing the fleet would not bring S3
//!   back, but it would drop sessions, spooled files and users caches. Only
//!   an instance broken by itself is not live: its filesystem went
//!   read-only, its executor stopped turning, or its disk stayed full for
//!   `DISK_FULL_NOT_LIVE_AFTER` with S3 delivery on and nothing waiting for
//!   S3 (so nothing that delivery could free, and nothing a replacement
//!   would lose; without S3 the homes hold the only copies, so never).

use crate::limits::{DISK_FULL_NOT_LIVE_AFTER, EXECUTOR_STALL_LIMIT};
use std::time::Duration;

/// What the instance knows about itself at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct States {
    /// SIGTERM received.
    pub draining: bool,
    /// A users file is configured and none ever loaded (the users object).
    pub users_missing: bool,
    /// How long S3 delivery has been failing (S3 itself, the bucket policy,
    /// KMS, or the credentials S3 refused), if it is.
    pub delivery_failing_for: Option<Duration>,
    /// The last failed delivery was S3 refusing the credentials (an
    /// expired or rotated role, a wrong key): said apart in `/healthz`, as
    /// shared as any other delivery failure.
    pub credentials_refused: bool,
    /// How long the home or spool filesystem has been below its reserve.
    pub disk_full_for: Option<Duration>,
    /// The home or spool filesystem is mounted read-only (ext4 remounts
    /// read-only after I/O errors: `errors=remount-ro`).
    pub disk_read_only: bool,
    /// Files in the spool waiting for S3.
    pub spool_pending: u64,
    /// S3 delivery is configured: without it the homes hold the only
    /// copies, and a full disk never makes the instance replaceable.
    pub delivers: bool,
    /// Time since the executor last ran its heartbeat task.
    pub executor_silent_for: Duration,
}

/// Why the instance is not ready; `/healthz` says it in its 503 body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotReady {
    Draining,
    DiskReadOnly,
    DiskFull,
    UsersNotLoaded,
    DeliveryFailing,
    CredentialsRefused,
    ExecutorStalled,
}

impl NotReady {
    pub fn as_str(self) -> &'static str {
        match self {
            NotReady::Draining => "draining",
            NotReady::DiskReadOnly => "disk read-only",
            NotReady::DiskFull => "disk full",
            NotReady::UsersNotLoaded => "users not loaded",
            NotReady::DeliveryFailing => "s3 delivery failing",
            NotReady::CredentialsRefused => "s3 delivery failing: credentials refused",
            NotReady::ExecutorStalled => "executor stalled",
        }
    }
}

/// Why the instance is not live; `/livez` says it in its 503 body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotLive {
    DiskReadOnly,
    DiskFullWithNothingToDeliver,
    ExecutorStalled,
}

impl NotLive {
    pub fn as_str(self) -> &'static str {
        match self {
            NotLive::DiskReadOnly => "disk read-only",
            NotLive::DiskFullWithNothingToDeliver => "disk full with nothing waiting for S3",
            NotLive::ExecutorStalled => "executor stalled",
        }
    }
}

/// Both answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub ready: Result<(), NotReady>,
    pub live: Result<(), NotLive>,
}

/// Pure: readiness first by the most local cause (draining, then the
/// instance's own faults, then shared dependencies); liveness only from
/// the instance's own faults.
pub fn decide(s: &States, failing_after: Duration) -> Probe {
    let stalled = s.executor_silent_for >= EXECUTOR_STALL_LIMIT;
    let full_alone = s
        .disk_full_for
        .is_some_and(|d| d >= DISK_FULL_NOT_LIVE_AFTER && s.delivers && s.spool_pending == 0);
    let live = if s.disk_read_only {
        Err(NotLive::DiskReadOnly)
    } else if stalled {
        Err(NotLive::ExecutorStalled)
    } else if full_alone {
        Err(NotLive::DiskFullWithNothingToDeliver)
    } else {
        Ok(())
    };
    let ready = if s.draining {
        Err(NotReady::Draining)
    } else if s.disk_read_only {
        Err(NotReady::DiskReadOnly)
    } else if stalled {
        Err(NotReady::ExecutorStalled)
    } else if s.disk_full_for.is_some() {
        Err(NotReady::DiskFull)
    } else if s.users_missing {
        Err(NotReady::UsersNotLoaded)
    } else if s.delivery_failing_for.is_some_and(|d| d >= failing_after) {
        Err(if s.credentials_refused {
            NotReady::CredentialsRefused
        } else {
            NotReady::DeliveryFailing
        })
    } else {
        Ok(())
    };
    Probe { ready, live }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AFTER: Duration = Duration::from_secs(300);
    const LONG: Duration = Duration::from_secs(3600);

    /// All well, with S3 delivery (the appliance's configuration).
    fn ok() -> States {
        States {
            delivers: true,
            ..States::default()
        }
    }

    /// (states, ready, live, why)
    #[allow(clippy::type_complexity)]
    fn table() -> Vec<(
        States,
        Result<(), NotReady>,
        Result<(), NotLive>,
        &'static str,
    )> {
        use NotLive as L;
        use NotReady as R;
        vec![
            (ok(), Ok(()), Ok(()), "all well"),
            (
                States {
                    draining: true,
                    ..ok()
                },
                Err(R::Draining),
                Ok(()),
                "a stop drains; it is not a fault",
            ),
            (
                States {
                    users_missing: true,
                    ..ok()
                },
                Err(R::UsersNotLoaded),
                Ok(()),
                "users object missing or bad: shared, never replace",
            ),
            (
                States {
                    delivery_failing_for: Some(AFTER / 2),
                    ..ok()
                },
                Ok(()),
                Ok(()),
                "a short S3 failure is tolerated",
            ),
            (
                States {
                    delivery_failing_for: Some(LONG),
                    spool_pending: 500,
                    ..ok()
                },
                Err(R::DeliveryFailing),
                Ok(()),
                "S3 down or credentials refused: shared, never replace",
            ),
            (
                States {
                    disk_full_for: Some(LONG),
                    spool_pending: 500,
                    ..ok()
                },
                Err(R::DiskFull),
                Ok(()),
                "full while files wait for S3: delivery frees it; a replacement would lose them",
            ),
            (
                States {
                    disk_full_for: Some(LONG),
                    spool_pending: 500,
                    delivery_failing_for: Some(LONG),
                    ..ok()
                },
                Err(R::DiskFull),
                Ok(()),
                "the spool filled during an S3 outage: shared cause, stays live",
            ),
            (
                States {
                    disk_full_for: Some(Duration::from_secs(1)),
                    ..ok()
                },
                Err(R::DiskFull),
                Ok(()),
                "just full: out of rotation at once, not replaced yet",
            ),
            (
                States {
                    disk_full_for: Some(DISK_FULL_NOT_LIVE_AFTER),
                    ..ok()
                },
                Err(R::DiskFull),
                Err(L::DiskFullWithNothingToDeliver),
                "full for long with an empty spool: broken by itself",
            ),
            (
                States {
                    disk_read_only: true,
                    ..ok()
                },
                Err(R::DiskReadOnly),
                Err(L::DiskReadOnly),
                "filesystem remounted read-only: broken by itself",
            ),
            (
                States {
                    executor_silent_for: EXECUTOR_STALL_LIMIT,
                    ..ok()
                },
                Err(R::ExecutorStalled),
                Err(L::ExecutorStalled),
                "wedged executor: broken by itself",
            ),
            (
                States {
                    executor_silent_for: Duration::from_secs(1),
                    ..ok()
                },
                Ok(()),
                Ok(()),
                "a heartbeat one second late is load, not a stall",
            ),
            (
                States {
                    draining: true,
                    disk_read_only: true,
                    ..ok()
                },
                Err(R::Draining),
                Err(L::DiskReadOnly),
                "draining wins readiness; liveness still says the disk",
            ),
            (
                States {
                    users_missing: true,
                    delivery_failing_for: Some(LONG),
                    ..ok()
                },
                Err(R::UsersNotLoaded),
                Ok(()),
                "two shared outages at once: still live",
            ),
        ]
    }

    #[test]
    fn readiness_and_liveness_table() {
        for (states, ready, live, why) in table() {
            let probe = decide(&states, AFTER);
            assert_eq!(probe.ready, ready, "ready: {why}");
            assert_eq!(probe.live, live, "live: {why}");
        }
    }

    #[test]
    fn no_shared_outage_alone_makes_an_instance_not_live() {
        let shared = States {
            users_missing: true,
            delivery_failing_for: Some(LONG),
            spool_pending: 1,
            disk_full_for: Some(LONG),
            ..ok()
        };
        assert_eq!(decide(&shared, AFTER).live, Ok(()));
    }
}
