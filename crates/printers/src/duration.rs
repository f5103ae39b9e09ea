//! Human-readable durations and ages, as apimachinery `pkg/util/duration/duration.go` and the
//! printers' `translateTimestampSince` render them.

use chrono::{DateTime, Utc};
use serde_json::Value;

const SECOND: i64 = 1_000_000_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;

/// A signed span in nanoseconds, like Go's `time.Duration`.
pub type Nanos = i64;

/// The span from `earlier` to `later` in nanoseconds (saturating, as Go's `Sub`).
pub fn between(earlier: DateTime<Utc>, later: DateTime<Utc>) -> Nanos {
    let span = later.signed_duration_since(earlier);
    span.num_nanoseconds()
        .unwrap_or(if span < chrono::TimeDelta::zero() {
            i64::MIN
        } else {
            i64::MAX
        })
}

/// `duration.HumanDuration`: a succinct duration with two to three significant figures.
pub fn human(d: Nanos) -> String {
    // Go truncates toward zero when converting to whole units; Rust's `/` does the same.
    let seconds = d / SECOND;
    // Up to two seconds in the future is clock skew, shown as "now".
    if seconds < -1 {
        return "<invalid>".into();
    } else if seconds < 0 {
        return "0s".into();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = d / MINUTE;
    if minutes < 10 {
        let s = seconds % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = d / HOUR;
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        return format!("{hours}h{m}m");
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        return format!("{}d{h}h", hours / 24);
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let days = (hours / 24) % 365;
        if days == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        return format!("{}y{days}d", hours / 24 / 365);
    }
    format!("{}y", hours / 24 / 365)
}

/// `duration.ShortHumanDuration`: one unit only.
pub fn short_human(d: Nanos) -> String {
    let seconds = d / SECOND;
    if seconds < -1 {
        "<invalid>".into()
    } else if seconds < 0 {
        "0s".into()
    } else if seconds < 60 {
        format!("{seconds}s")
    } else if d / MINUTE < 60 {
        format!("{}m", d / MINUTE)
    } else if d / HOUR < 24 {
        format!("{}h", d / HOUR)
    } else if d / HOUR < 24 * 365 {
        format!("{}d", d / HOUR / 24)
    } else {
        format!("{}y", d / HOUR / 24 / 365)
    }
}

/// Parses a `metav1.Time`/`MicroTime` JSON value; absent, null or unparsable is Go's zero time.
pub fn timestamp(v: Option<&Value>) -> Option<DateTime<Utc>> {
    let s = v?.as_str()?;
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `translateTimestampSince`: the age of a timestamp, `<unknown>` when it is unset.
pub fn since(v: Option<&Value>, now: DateTime<Utc>) -> String {
    match timestamp(v) {
        Some(t) => human(between(t, now)),
        None => "<unknown>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: i64) -> Nanos {
        n * SECOND
    }

    #[test]
    fn human_matches_upstream_table() {
        let cases = [
            (s(-3), "<invalid>"),
            (s(-1), "0s"),
            (0, "0s"),
            (s(5), "5s"),
            (s(119), "119s"),
            (s(120), "2m"),
            (s(192), "3m12s"),
            (s(599), "9m59s"),
            (s(600), "10m"),
            (s(179 * 60 + 59), "179m"),
            (s(3 * 3600), "3h"),
            (s(3 * 3600 + 5 * 60), "3h5m"),
            (s(10 * 3600), "10h"),
            (s(47 * 3600 + 3599), "47h"),
            (s(48 * 3600), "2d"),
            (s(51 * 3600), "2d3h"),
            (s(8 * 24 * 3600), "8d"),
            (s(729 * 24 * 3600), "729d"),
            (s(730 * 24 * 3600), "2y"),
            (s(731 * 24 * 3600), "2y1d"),
            (s(8 * 365 * 24 * 3600), "8y"),
        ];
        for (d, want) in cases {
            assert_eq!(human(d), want, "{d}ns");
        }
    }

    #[test]
    fn short_human_uses_one_unit() {
        assert_eq!(short_human(s(59)), "59s");
        assert_eq!(short_human(s(192)), "3m");
        assert_eq!(short_human(s(25 * 3600)), "1d");
        assert_eq!(short_human(s(400 * 24 * 3600)), "1y");
        assert_eq!(short_human(s(-5)), "<invalid>");
    }

    #[test]
    fn since_unset_is_unknown() {
        let now = Utc::now();
        assert_eq!(since(None, now), "<unknown>");
        assert_eq!(since(Some(&Value::Null), now), "<unknown>");
        let five_min_ago = Value::String((now - chrono::TimeDelta::seconds(300)).to_rfc3339());
        assert_eq!(since(Some(&five_min_ago), now), "5m");
    }
}
