//! Times as image configs write them (RFC 3339, UTC) and as the store
//! records them (seconds since the epoch).

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Now as RFC 3339 (UTC, seconds), for configs hutch writes.
pub fn rfc3339_now() -> String {
    rfc3339(now())
}

/// `secs` since the epoch as RFC 3339 (UTC, seconds).
pub fn rfc3339(secs: u64) -> String {
    let (days, rest) = (i64::try_from(secs / 86_400).unwrap_or(i64::MAX), secs % 86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest / 60 % 60, rest % 60)
}

/// Now as RFC 3339 with nanoseconds, as container logs stamp their lines.
pub fn rfc3339_nanos_now() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = rfc3339(now.as_secs());
    format!("{}.{:09}Z", secs.trim_end_matches('Z'), now.subsec_nanos())
}

/// A span of `secs` seconds as `ps` and `images` say it: "3 seconds", "About a minute", "2 hours".
pub fn human_duration(secs: u64) -> String {
    match secs {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{secs} seconds"),
        60..=119 => "About a minute".into(),
        120..=3599 => format!("{} minutes", secs / 60),
        3600..=7199 => "About an hour".into(),
        7200..=172_799 => format!("{} hours", secs / 3600),
        172_800..=5_183_999 => format!("{} days", secs / 86_400),
        5_184_000..=63_071_999 => format!("{} months", secs / 2_592_000),
        _ => format!("{} years", secs / 31_536_000),
    }
}

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SS…` (UTC offsets ignored:
/// the result is only shown in days).
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_parse_and_format() {
        assert_eq!(parse_rfc3339("1970-01-02T00:00:10Z"), Some(86_410));
        assert_eq!(parse_rfc3339("2024-03-01T12:00:00.123456789Z"), Some(1_709_294_400));
        assert_eq!(parse_rfc3339("yesterday"), None);
        let t = now();
        assert_eq!(parse_rfc3339(&rfc3339_now()), Some(t));
        let nanos = rfc3339_nanos_now();
        assert_eq!(nanos.len(), "2024-03-01T12:00:00.123456789Z".len(), "{nanos}");
        assert_eq!(human_duration(5), "5 seconds");
        assert_eq!(human_duration(7300), "2 hours");
    }
}
