//! Resource quantities (`100m`, `1.5Gi`, `2e3`) as integers, rounding up as upstream's
//! `resource.Quantity.MilliValue()` / `Value()` do (apimachinery `pkg/api/resource/quantity.go`).

/// The value of a quantity in thousandths (`MilliValue`), rounded up. `None` if unparsable.
pub fn milli_value(q: &str) -> Option<i64> {
    let q = q.trim();
    let split = q.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-')).unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let (negative, digits) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number.strip_prefix('+').unwrap_or(number)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let mut mantissa: i128 = 0;
    for c in whole.chars().chain(fraction.chars()) {
        mantissa = mantissa.checked_mul(10)?.checked_add(i128::from(c.to_digit(10)?))?;
    }
    // value = mantissa * num / den
    let (mut num, mut den): (i128, i128) = (1, 10i128.checked_pow(u32::try_from(fraction.len()).ok()?)?);
    let (base10_exp, binary): (i32, i128) = match suffix {
        "" => (0, 1),
        "n" => (-9, 1),
        "u" => (-6, 1),
        "m" => (-3, 1),
        "k" => (3, 1),
        "M" => (6, 1),
        "G" => (9, 1),
        "T" => (12, 1),
        "P" => (15, 1),
        "E" => (18, 1),
        "Ki" => (0, 1 << 10),
        "Mi" => (0, 1 << 20),
        "Gi" => (0, 1 << 30),
        "Ti" => (0, 1 << 40),
        "Pi" => (0, 1 << 50),
        "Ei" => (0, 1 << 60),
        s if s.starts_with(['e', 'E']) => (s[1..].parse::<i32>().ok()?, 1),
        _ => return None,
    };
    num = num.checked_mul(binary)?;
    // Thousandths.
    let exp = base10_exp + 3;
    if exp >= 0 {
        num = num.checked_mul(10i128.checked_pow(exp.unsigned_abs())?)?;
    } else {
        den = den.checked_mul(10i128.checked_pow(exp.unsigned_abs())?)?;
    }
    let product = mantissa.checked_mul(num)?;
    // Round away from zero, as Quantity does when it loses precision.
    let milli = (product + den - 1) / den;
    let milli = if negative { -milli } else { milli };
    i64::try_from(milli).ok()
}

/// The integer value of a quantity (`Value`), rounded up.
pub fn value(q: &str) -> Option<i64> {
    let milli = milli_value(q)?;
    Some(if milli >= 0 { (milli + 999) / 1000 } else { milli / 1000 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_and_memory_forms() {
        assert_eq!(milli_value("100m"), Some(100));
        assert_eq!(milli_value("1.5"), Some(1500));
        assert_eq!(milli_value("2"), Some(2000));
        assert_eq!(milli_value("0.1"), Some(100));
        assert_eq!(milli_value("1n"), Some(1), "sub-milli values round up");
        assert_eq!(value("128Mi"), Some(128 * 1024 * 1024));
        assert_eq!(value("1Gi"), Some(1 << 30));
        assert_eq!(value("1G"), Some(1_000_000_000));
        assert_eq!(value("1e3"), Some(1000));
        assert_eq!(value("1.5Ki"), Some(1536));
        assert_eq!(value("110"), Some(110));
        assert_eq!(milli_value("abc"), None);
        assert_eq!(milli_value("1Qi"), None);
    }
}
