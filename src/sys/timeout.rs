//! One way to bound a wait: race the future against a timer (smol's idiom).
//! Every timeout in lakeftpd goes through `within`, so each one is a named
//! limit at its call site and fails the same way (`ErrorKind::TimedOut`).

use smol::future::FutureExt;
use smol::Timer;
use std::future::Future;
use std::io;
use std::time::Duration;

/// `fut`, or `ErrorKind::TimedOut` once `limit` has passed.
pub async fn within<T>(limit: Duration, fut: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    fut.or(async {
        Timer::after(limit).await;
        Err(io::ErrorKind::TimedOut.into())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_future_times_out() {
        let r: io::Result<()> = smol::block_on(within(Duration::from_millis(10), async {
            Timer::after(Duration::from_secs(5)).await;
            Ok(())
        }));
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn a_quick_future_wins() {
        let r = smol::block_on(within(Duration::from_secs(5), async { Ok(7) }));
        assert_eq!(r.unwrap(), 7);
    }
}
