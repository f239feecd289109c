//! UTC calendar dates from Unix time, for listings (LIST, MDTM, MLSD) and
//! object keys, without a date crate: days-to-civil conversion after Howard
//! Hinnant's `civil_from_days` (proleptic Gregorian calendar).

use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

pub const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl Utc {
    pub fn from_unix(seconds: i64) -> Utc {
        let days = seconds.div_euclid(86_400);
        let rest = seconds.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Utc {
            year,
            month,
            day,
            hour: (rest / 3_600) as u32,
            minute: (rest % 3_600 / 60) as u32,
            second: (rest % 60) as u32,
        }
    }

    /// Unix seconds of this date (Hinnant's `days_from_civil`): the inverse
    /// of `from_unix`, for MDTM/MFMT/SITE UTIME.
    pub fn to_unix(&self) -> i64 {
        let year = self.year - i64::from(self.month <= 2);
        let era = year.div_euclid(400);
        let yoe = year.rem_euclid(400);
        let month = i64::from(self.month);
        let mp = if month > 2 { month - 3 } else { month + 9 };
        let doy = (153 * mp + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        days * 86_400
            + i64::from(self.hour) * 3_600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }

    pub fn from_system(time: SystemTime) -> Utc {
        Utc::from_unix(unix_seconds(time))
    }

    /// `YYYYMMDDHHMMSS` (RFC 3659 §2.3 time-val).
    pub fn time_val(&self) -> String {
        format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// ISO 8601 with a Z, for object metadata and logs.
    pub fn iso8601(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

pub fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_unix_inverts_from_unix() {
        // Before 1970, a leap day, the epoch and a date past 2038.
        for t in [-86_400 * 400, 951_782_400, 0, 1_795_000_000, 4_102_444_799] {
            assert_eq!(Utc::from_unix(t).to_unix(), t, "{t}");
        }
    }

    #[test]
    fn epoch() {
        let t = Utc::from_unix(0);
        assert_eq!((t.year, t.month, t.day, t.hour), (1970, 1, 1, 0));
    }

    #[test]
    fn leap_day() {
        // 2024-02-29T12:34:56Z
        let t = Utc::from_unix(1_709_210_096);
        assert_eq!(t.time_val(), "20240229123456");
    }

    #[test]
    fn before_epoch() {
        assert_eq!(Utc::from_unix(-1).time_val(), "19691231235959");
    }

    #[test]
    fn iso() {
        assert_eq!(
            Utc::from_unix(1_795_000_000).iso8601(),
            "2026-11-18T11:06:40Z"
        );
    }
}
