//! The cron schedule check CronJob validation performs with `cron.ParseStandard`
//! (github.com/robfig/cron/v3 `parser.go`), with its error texts.

struct Bounds {
    min: u64,
    max: u64,
    names: &'static [(&'static str, u64)],
}

const MONTH_NAMES: &[(&str, u64)] = &[
    ("jan", 1),
    ("feb", 2),
    ("mar", 3),
    ("apr", 4),
    ("may", 5),
    ("jun", 6),
    ("jul", 7),
    ("aug", 8),
    ("sep", 9),
    ("oct", 10),
    ("nov", 11),
    ("dec", 12),
];
const DOW_NAMES: &[(&str, u64)] =
    &[("sun", 0), ("mon", 1), ("tue", 2), ("wed", 3), ("thu", 4), ("fri", 5), ("sat", 6)];

const FIELDS: [Bounds; 5] = [
    Bounds { min: 0, max: 59, names: &[] },
    Bounds { min: 0, max: 23, names: &[] },
    Bounds { min: 1, max: 31, names: &[] },
    Bounds { min: 1, max: 12, names: MONTH_NAMES },
    Bounds { min: 0, max: 6, names: DOW_NAMES },
];

/// `mustParseInt`, with Go's `strconv.Atoi` error text.
fn parse_int(expr: &str) -> Result<u64, String> {
    let digits = expr.strip_prefix(['+', '-']).unwrap_or(expr);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("failed to parse int from {expr}: strconv.Atoi: parsing {expr:?}: invalid syntax"));
    }
    let n: i64 = expr
        .parse()
        .map_err(|_| format!("failed to parse int from {expr}: strconv.Atoi: parsing {expr:?}: value out of range"))?;
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {expr}"));
    }
    u64::try_from(n).map_err(|_| format!("negative number ({n}) not allowed: {expr}"))
}

fn parse_int_or_name(expr: &str, b: &Bounds) -> Result<u64, String> {
    let lower = expr.to_lowercase();
    if let Some((_, v)) = b.names.iter().find(|(n, _)| *n == lower) {
        return Ok(*v);
    }
    parse_int(expr)
}

/// `getRange`.
fn check_range(expr: &str, b: &Bounds) -> Result<(), String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_high: Vec<&str> = range_and_step.first().copied().unwrap_or("").split('-').collect();
    let single = low_high.len() == 1;
    let (start, mut end) = if matches!(low_high.first().copied(), Some("*" | "?")) {
        (b.min, b.max)
    } else {
        let start = parse_int_or_name(low_high.first().copied().unwrap_or(""), b)?;
        match low_high.as_slice() {
            [_] => (start, start),
            [_, hi] => (start, parse_int_or_name(hi, b)?),
            _ => return Err(format!("too many hyphens: {expr}")),
        }
    };
    let step = match range_and_step.as_slice() {
        [_] => 1,
        [_, s] => {
            let step = parse_int(s)?;
            if single {
                end = b.max;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < b.min {
        return Err(format!("beginning of range ({start}) below minimum ({}): {expr}", b.min));
    }
    if end > b.max {
        return Err(format!("end of range ({end}) above maximum ({}): {expr}", b.max));
    }
    if start > end {
        return Err(format!("beginning of range ({start}) beyond end of range ({end}): {expr}"));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(())
}

/// Go's `time.ParseDuration` acceptance, for `@every`.
fn is_go_duration(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    if s == "0" {
        return true;
    }
    let mut rest = s;
    let mut any = false;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if num_len == 0 {
            return false;
        }
        rest = rest.get(num_len..).unwrap_or("");
        let unit = ["ns", "us", "µs", "μs", "ms", "s", "m", "h"].iter().find(|u| rest.starts_with(*u));
        match unit {
            Some(u) => rest = rest.get(u.len()..).unwrap_or(""),
            None => return false,
        }
        any = true;
    }
    any
}

/// `cron.ParseStandard(spec)`: `Ok` when the five-field (or descriptor) schedule parses.
pub(crate) fn parse_standard(spec: &str) -> Result<(), String> {
    if spec.is_empty() {
        return Err("empty spec string".to_string());
    }
    let mut spec = spec;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        match spec.split_once(' ') {
            Some((_, rest)) => spec = rest.trim_start(),
            None => return Err(format!("provided bad location {}: unknown time zone", spec.split_once('=').map(|x| x.1).unwrap_or(""))),
        }
    }
    if let Some(d) = spec.strip_prefix('@') {
        return match d {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => Ok(()),
            _ => match d.strip_prefix("every ") {
                Some(dur) if is_go_duration(dur) => Ok(()),
                Some(dur) => Err(format!("failed to parse duration @every {dur}: time: invalid duration {dur:?}")),
                None => Err(format!("unrecognized descriptor: @{d}")),
            },
        };
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!("expected exactly 5 fields, found {}: [{}]", fields.len(), fields.join(" ")));
    }
    for (f, b) in fields.iter().zip(FIELDS.iter()) {
        for part in f.split(',') {
            check_range(part, b)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_standard_schedules() {
        for s in ["*/5 * * * *", "0 0 * * MON-FRI", "@hourly", "@every 1h30m", "15 2 1 jan,jul *", "0 0 1/2 * ?"] {
            assert_eq!(parse_standard(s), Ok(()), "{s}");
        }
    }

    #[test]
    fn rejects_with_robfig_messages() {
        assert_eq!(parse_standard("* * *"), Err("expected exactly 5 fields, found 3: [* * *]".to_string()));
        assert_eq!(parse_standard("61 * * * *"), Err("end of range (61) above maximum (59): 61".to_string()));
        assert_eq!(
            parse_standard("x * * * *"),
            Err("failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax".to_string())
        );
        assert_eq!(parse_standard("@sometimes"), Err("unrecognized descriptor: @sometimes".to_string()));
    }
}
