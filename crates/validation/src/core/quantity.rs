//! `resource.Quantity` parsing, enough to validate and compare requests and limits
//! (apimachinery `pkg/api/resource/quantity.go`).

use serde_json::Value;

/// The decode error upstream returns for a malformed quantity.
pub(crate) const FORMAT_ERROR: &str = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// The quantity as text (a JSON number is accepted, as upstream's unmarshaller does).
pub(crate) fn text(q: &Value) -> String {
    match q {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The numeric value of a quantity (`1Gi` → 1073741824, `500m` → 0.5), or `None` if malformed.
pub(crate) fn parse_value(q: &Value) -> Option<f64> {
    match q {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => parse(s),
        _ => None,
    }
}

fn parse(s: &str) -> Option<f64> {
    let s = s.trim();
    let num_end = s
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (i == 0 && (c == '+' || c == '-'))))
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(num_end);
    let digits = num.trim_start_matches(['+', '-']);
    if digits.is_empty() || digits == "." || digits.matches('.').count() > 1 {
        return None;
    }
    let base: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exp if exp.starts_with(['e', 'E']) => {
            let e: i32 = exp.get(1..)?.parse().ok()?;
            10f64.powi(e)
        }
        _ => return None,
    };
    Some(base * mult)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse_value(&json!("500m")), Some(0.5));
        assert_eq!(parse_value(&json!("1Gi")), Some(1073741824.0));
        assert_eq!(parse_value(&json!("1e3")), Some(1000.0));
        assert_eq!(parse_value(&json!(2)), Some(2.0));
        assert_eq!(parse_value(&json!("abc")), None);
        assert_eq!(parse_value(&json!("1Zi")), None);
    }
}
