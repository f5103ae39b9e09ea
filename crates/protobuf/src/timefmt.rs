//! JSON forms of apimachinery's time types: `metav1.Time` (RFC 3339, seconds, UTC),
//! `metav1.MicroTime` (RFC 3339 with 6 fractional digits) and `metav1.Duration` (Go's
//! `time.Duration.String()` / `time.ParseDuration`).

use chrono::{DateTime, Datelike, Timelike, Utc};

/// `2024-01-02T03:04:05Z` (apimachinery meta/v1 time.go: `UTC().Format(time.RFC3339)`).
pub(crate) fn format_time(seconds: i64) -> Option<String> {
    Some(format!("{}Z", ymd_hms(seconds)?))
}

/// `2024-01-02T03:04:05` for years 0..=9999 (Go's RFC 3339 formatting refuses others too).
fn ymd_hms(seconds: i64) -> Option<String> {
    let t = DateTime::<Utc>::from_timestamp(seconds, 0)?;
    let (date, time) = (t.date_naive(), t.time());
    if !(0..=9999).contains(&date.year()) {
        return None;
    }
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        date.year(),
        date.month(),
        date.day(),
        time.hour(),
        time.minute(),
        time.second()
    ))
}

/// `2024-01-02T03:04:05.123456Z` (meta/v1 micro_time.go, `RFC3339Micro`, truncated).
pub(crate) fn format_micro_time(seconds: i64, nanos: i32) -> Option<String> {
    let micros = nanos.clamp(0, 999_999_999) / 1000;
    Some(format!("{}.{micros:06}Z", ymd_hms(seconds)?))
}

/// Parses any RFC 3339 timestamp into `(unix seconds, nanoseconds)`.
pub(crate) fn parse_time(s: &str) -> Result<(i64, i32), String> {
    let t = DateTime::parse_from_rfc3339(s)
        .map_err(|e| format!("{s:?} is not an RFC 3339 time: {e}"))?;
    let nanos = i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0);
    Ok((t.timestamp(), nanos))
}

/// Go's `time.Duration.String()`: `0s`, `1.5s`, `1m0s`, `2h45m0.5s`, `300ms`, `1µs`, `1ns`.
pub(crate) fn format_duration(nanos: i64) -> String {
    let neg = nanos < 0;
    let mut u = nanos.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        let (prec, unit) = match u {
            0 => return "0s".into(),
            1..=999 => (0, "ns"),
            1_000..=999_999 => (3, "µs"),
            _ => (6, "ms"),
        };
        out.push_str(&frac(u, prec));
        out.push_str(unit);
    } else {
        let secs = frac(u, 9);
        u /= 1_000_000_000;
        let (h, m) = (u / 3600, (u / 60) % 60);
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        // frac() printed all whole seconds; keep only the part below a minute.
        let (whole, fraction) = secs.split_once('.').unwrap_or((&secs, ""));
        let whole: u64 = whole.parse().unwrap_or(0);
        out.push_str(&(whole % 60).to_string());
        if !fraction.is_empty() {
            out.push('.');
            out.push_str(fraction);
        }
        out.push('s');
    }
    if neg { format!("-{out}") } else { out }
}

/// `v / 10^prec` with trailing fractional zeros (and a bare point) removed.
fn frac(v: u64, prec: u32) -> String {
    let scale = 10u64.pow(prec);
    let (whole, mut fraction) = (v / scale, v % scale);
    if fraction == 0 {
        return whole.to_string();
    }
    let mut digits = prec as usize;
    while fraction % 10 == 0 {
        fraction /= 10;
        digits -= 1;
    }
    format!("{whole}.{fraction:0digits$}")
}

/// Go's `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+` with units ns, us/µs/μs, ms,
/// s, m, h; a bare `0` is allowed.
pub(crate) fn parse_duration(input: &str) -> Result<i64, String> {
    let bad = |why: &str| format!("time: {why} duration {input:?}");
    let (neg, mut s) = match input.as_bytes().first() {
        Some(b'-') => (true, &input[1..]),
        Some(b'+') => (false, &input[1..]),
        _ => (false, input),
    };
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(bad("invalid"));
    }
    let mut total: i128 = 0;
    while !s.is_empty() {
        let num_len = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (num, rest) = s.split_at(num_len);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(bad("invalid"));
        }
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let (unit, rest) = rest.split_at(unit_len);
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(bad("missing unit in")),
            _ => return Err(format!("time: unknown unit {unit:?} in duration {input:?}")),
        };
        let (whole, fraction) = num.split_once('.').unwrap_or((num, ""));
        let whole: i128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad("invalid"))?
        };
        total += whole * scale;
        if !fraction.is_empty() {
            let digits = fraction.len().min(18) as u32;
            let f: i128 = fraction[..digits as usize]
                .parse()
                .map_err(|_| bad("invalid"))?;
            total += f * scale / 10i128.pow(digits);
        }
        if total > i128::from(i64::MAX) {
            return Err(bad("invalid"));
        }
        s = rest;
    }
    let total = if neg { -total } else { total };
    i64::try_from(total).map_err(|_| bad("invalid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_match_go() {
        for (ns, s) in [
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1µs"),
            (2_200_000, "2.2ms"),
            (1_500_000_000, "1.5s"),
            (60_000_000_000, "1m0s"),
            (3_600_000_000_000, "1h0m0s"),
            (4_530_000_000_000 + 500_000_000, "1h15m30.5s"),
            (-90_000_000_000, "-1m30s"),
        ] {
            assert_eq!(format_duration(ns), s);
            assert_eq!(parse_duration(s).unwrap(), ns, "{s}");
        }
        assert_eq!(parse_duration("1.5h").unwrap(), 5_400_000_000_000);
        assert_eq!(parse_duration("10us").unwrap(), 10_000);
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("1d").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn times() {
        assert_eq!(format_time(1_704_164_645).unwrap(), "2024-01-02T03:04:05Z");
        assert_eq!(
            format_micro_time(1_704_164_645, 123_456_789).unwrap(),
            "2024-01-02T03:04:05.123456Z"
        );
        assert_eq!(
            parse_time("2024-01-02T03:04:05Z").unwrap(),
            (1_704_164_645, 0)
        );
        assert_eq!(
            parse_time("2024-01-02T04:04:05.5+01:00").unwrap(),
            (1_704_164_645, 500_000_000)
        );
        assert!(parse_time("yesterday").is_err());
    }
}
