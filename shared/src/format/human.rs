//! Docker's human wording: sizes in decimal units with three significant
//! digits ("1.98MB"), ages ("3 weeks"), and RFC 3339 timestamps in and out.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];

/// A byte count as Docker's tables print it (go-units' precision 3, as in
/// `docker images`, `ps -s`, `history`): `1.98MB`, `117MB`, `512B`.
pub fn size(bytes: u64) -> String {
    size_with_precision(bytes, 3)
}

/// A byte count with four significant digits, as Docker prints a prune's
/// "Total reclaimed space" (go-units' `HumanSize`): `4.261MB`.
pub fn size_precise(bytes: u64) -> String {
    size_with_precision(bytes, 4)
}

/// A byte count with `digits` significant digits.
pub fn size_with_precision(bytes: u64, digits: usize) -> String {
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{}{}", significant(value, digits), UNITS[unit])
}

/// A byte count in binary units with four significant digits, as Docker
/// prints memory (go-units' `BytesSize`): `320KiB`, `23.54GiB`.
pub fn binary_size(bytes: u64) -> String {
    const BINARY: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < BINARY.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{}{}", significant(value, 4), BINARY[unit])
}

/// `value` as Go's `%.{digits}g`: `digits` significant digits, no trailing
/// zeros, and the exponent form when rounding reaches `10^digits`
/// (go-units prints 999.9kB at precision 3 as `1e+03kB`).
fn significant(value: f64, digits: usize) -> String {
    if value == 0.0 {
        return "0".to_string();
    }
    // The exponent after rounding to `digits` significant digits.
    let rounded = format!("{:.*e}", digits.saturating_sub(1), value);
    let (mantissa, exponent) = rounded.split_once('e').unwrap_or((&rounded, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let trim = |text: &str| {
        if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            text.to_string()
        }
    };
    if exponent < -4 || exponent >= digits as i32 {
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{}e{sign}{:02}", trim(mantissa), exponent.abs());
    }
    let decimals = (digits as i32 - 1 - exponent).max(0) as usize;
    trim(&format!("{value:.decimals$}"))
}

/// How long ago, in Docker's words ("About a minute", "3 weeks").
pub fn duration(d: Duration) -> String {
    let seconds = d.as_secs();
    let minutes = seconds / 60;
    let hours = ((d.as_secs_f64() / 3600.0) + 0.5) as u64;
    match seconds {
        0 => "Less than a second".to_string(),
        1 => "1 second".to_string(),
        2..=59 => format!("{seconds} seconds"),
        _ if minutes == 1 => "About a minute".to_string(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".to_string(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", seconds / 3600 / 24 / 365),
    }
}

/// `duration` since `then`, with " ago"; the future reads as "Less than a second ago".
pub fn ago(then: SystemTime, now: SystemTime) -> String {
    format!(
        "{} ago",
        duration(now.duration_since(then).unwrap_or_default())
    )
}

/// Docker's STATUS column for a container: `Up 2 minutes`, `Exited (0) 5
/// seconds ago`, `Created`, …, from its state's fields.
pub fn container_status(
    status: &str,
    exit_code: i64,
    started_at: Option<SystemTime>,
    finished_at: Option<SystemTime>,
    now: SystemTime,
) -> String {
    let since = |t: Option<SystemTime>| {
        duration(
            t.and_then(|t| now.duration_since(t).ok())
                .unwrap_or_default(),
        )
    };
    match status {
        "running" => format!("Up {}", since(started_at)),
        "paused" => format!("Up {} (Paused)", since(started_at)),
        "restarting" => format!("Restarting ({exit_code}) {} ago", since(finished_at)),
        "exited" if finished_at.is_none() => format!("Exited ({exit_code})"),
        "exited" => format!("Exited ({exit_code}) {} ago", since(finished_at)),
        "created" => "Created".to_string(),
        "removing" => "Removal In Progress".to_string(),
        "dead" => "Dead".to_string(),
        other => other.to_string(),
    }
}

/// Parses an RFC 3339 timestamp (`2023-11-14T22:13:20.5Z`, `…+02:00`).
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        std::str::from_utf8(b.get(range)?).ok()?.parse().ok()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let mut i = 19;
    let mut nanos = 0u32;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let fraction = &text[start..i.min(start + 9)];
        nanos = format!("{fraction:0<9}").parse().ok()?;
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' => 0,
        sign @ (b'+' | b'-') => {
            let minutes = number(i + 1..i + 3)? * 60 + number(i + 4..i + 6)?;
            if *sign == b'+' {
                -minutes * 60
            } else {
                minutes * 60
            }
        }
        _ => return None,
    };
    let seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second + offset;
    UNIX_EPOCH.checked_add(Duration::new(u64::try_from(seconds).ok()?, nanos))
}

/// RFC 3339 in UTC with nanoseconds, as Docker writes `Created`.
pub fn format_rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (date, clock) = civil(since.as_secs() as i64);
    format!("{date}T{clock}.{:09}Z", since.subsec_nanos())
}

/// Docker's `CreatedAt` form: `2023-11-14 22:13:20 +0000 UTC`.
pub fn format_docker_date(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (date, clock) = civil(since.as_secs() as i64);
    format!("{date} {clock} +0000 UTC")
}

fn civil(seconds: i64) -> (String, String) {
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    (
        format!("{y:04}-{m:02}-{d:02}"),
        format!(
            "{:02}:{:02}:{:02}",
            rest / 3600,
            rest % 3600 / 60,
            rest % 60
        ),
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// well-known algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Go's `time.ParseDuration`: `90s`, `10m`, `1h30m`, `500ms`, `1.5h`, `0`.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|&i| i > 0)?;
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Some(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_reads_in_binary_units_like_docker() {
        assert_eq!(binary_size(0), "0B");
        assert_eq!(binary_size(327_680), "320KiB");
        assert_eq!(binary_size(64 << 20), "64MiB");
        assert_eq!(binary_size(25_275_000_000), "23.54GiB");
        assert_eq!(binary_size(5_902_000), "5.629MiB");
    }

    #[test]
    fn sizes_read_like_docker() {
        assert_eq!(size(0), "0B");
        assert_eq!(size(999), "999B");
        assert_eq!(size(1000), "1kB");
        assert_eq!(size(1_982_000), "1.98MB");
        assert_eq!(size(117_400_000), "117MB");
        assert_eq!(size(77_800_000), "77.8MB");
        assert_eq!(size(1_234_567_890), "1.23GB");
        assert_eq!(size(999_900), "1e+03kB");
        assert_eq!(size_precise(4_261_234), "4.261MB");
        assert_eq!(size_precise(1_234_567_890), "1.235GB");
    }

    #[test]
    fn durations_read_like_docker() {
        let d = |s| duration(Duration::from_secs(s));
        assert_eq!(d(0), "Less than a second");
        assert_eq!(d(45), "45 seconds");
        assert_eq!(d(90), "About a minute");
        assert_eq!(d(600), "10 minutes");
        assert_eq!(d(3600), "About an hour");
        assert_eq!(d(5 * 3600), "5 hours");
        assert_eq!(d(3 * 86_400), "3 days");
        assert_eq!(d(21 * 86_400), "3 weeks");
        assert_eq!(d(90 * 86_400), "3 months");
        assert_eq!(d(800 * 86_400), "2 years");
    }

    #[test]
    fn container_statuses_read_like_docker() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let before = |s| Some(now - Duration::from_secs(s));
        assert_eq!(
            container_status("running", 0, before(120), None, now),
            "Up 2 minutes"
        );
        assert_eq!(
            container_status("running", 0, before(0), None, now),
            "Up Less than a second"
        );
        assert_eq!(
            container_status("exited", 143, before(60), before(5), now),
            "Exited (143) 5 seconds ago"
        );
        assert_eq!(container_status("created", 0, None, None, now), "Created");
    }

    #[test]
    fn rfc3339_round_trips_and_honours_offsets() {
        let t = parse_rfc3339("2023-11-14T22:13:20Z").unwrap();
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_700_000_000
        );
        assert_eq!(format_rfc3339(t), "2023-11-14T22:13:20.000000000Z");
        assert_eq!(format_docker_date(t), "2023-11-14 22:13:20 +0000 UTC");
        let shifted = parse_rfc3339("2023-11-15T00:13:20.25+02:00").unwrap();
        assert_eq!(
            shifted.duration_since(t).unwrap(),
            Duration::from_millis(250)
        );
        assert!(parse_rfc3339("yesterday").is_none());
    }
    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("24h"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_go_duration("1h30m"), Some(Duration::from_secs(5_400)));
        assert_eq!(
            parse_go_duration("1.5s"),
            Some(Duration::from_millis(1_500))
        );
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("h"), None);
    }
}
