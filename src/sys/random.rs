//! Randomness for names and jitter, from the kernel (getrandom(2) through
//! rustix). Not for keys: those use `random_bytes` directly at full width.

use std::fmt::Write as _;
use std::time::Duration;

/// Reads `n` random bytes from the kernel (salts, passwords, names).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // getrandom(2) never fails for small requests once the pool is ready.
    let mut filled = 0;
    while filled < N {
        match rustix::rand::getrandom(&mut bytes[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => panic!("getrandom failed: {e}"),
        }
    }
    bytes
}

/// `N` random bytes as `2N` lowercase hex digits: temporary and spool
/// names, STOU names.
pub fn hex_name<const N: usize>() -> String {
    let mut name = String::with_capacity(2 * N);
    for b in random_bytes::<N>() {
        // Writing to a String cannot fail.
        let _ = write!(name, "{b:02x}");
    }
    name
}

/// A random fraction in [0, 1).
pub fn fraction() -> f64 {
    let b: [u8; 4] = random_bytes();
    f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0)
}

/// The wait before retry number `failures` (1-based): `first * 2^(n-1)`,
/// capped at `max`, then "equal jitter" (half fixed, half random; AWS
/// Architecture Blog, "Exponential Backoff and Jitter") with `jitter` in
/// [0, 1); `jitter = 1.0` keeps the whole capped wait (no randomness).
pub fn backoff(failures: u32, first: Duration, max: Duration, jitter: f64) -> Duration {
    let exp = first.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    let capped = exp.min(max);
    capped / 2 + capped.mul_f64(jitter / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_name_has_two_digits_per_byte() {
        let name = hex_name::<6>();
        assert_eq!(name.len(), 12);
        assert!(name.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let (first, max) = (Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(backoff(1, first, max, 0.0), first / 2);
        assert_eq!(backoff(2, first, max, 0.0), first);
        assert!(backoff(3, first, max, 0.999) < first * 4);
        assert_eq!(backoff(40, first, max, 0.0), max / 2);
        assert!(backoff(40, first, max, 0.999) <= max);
        assert_eq!(backoff(u32::MAX, first, max, 1.0), max);
    }

    #[test]
    fn fraction_is_below_one() {
        for _ in 0..100 {
            let f = fraction();
            assert!((0.0..1.0).contains(&f));
        }
    }
}
