//! Reading fields of a served object and the formatting helpers upstream's printers share
//! (labels, label selectors, container lists). Absent fields read as Go's zero values, which is
//! what the internal objects upstream prints would hold.

use serde_json::{Map, Value};

/// The value at a JSON pointer (`/status/phase`).
pub fn at<'a>(v: &'a Value, pointer: &str) -> Option<&'a Value> {
    v.pointer(pointer).filter(|x| !x.is_null())
}

/// A string field; absent is "".
pub fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    at(v, pointer).and_then(Value::as_str).unwrap_or("")
}

/// An optional string field.
pub fn opt_text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    at(v, pointer).and_then(Value::as_str)
}

/// An integer field; absent is 0.
pub fn int(v: &Value, pointer: &str) -> i64 {
    opt_int(v, pointer).unwrap_or(0)
}

/// An optional integer field.
pub fn opt_int(v: &Value, pointer: &str) -> Option<i64> {
    at(v, pointer).and_then(Value::as_i64)
}

/// A boolean field; absent is false.
pub fn flag(v: &Value, pointer: &str) -> bool {
    opt_flag(v, pointer).unwrap_or(false)
}

/// An optional boolean field.
pub fn opt_flag(v: &Value, pointer: &str) -> Option<bool> {
    at(v, pointer).and_then(Value::as_bool)
}

/// An array field; absent is empty.
pub fn list<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    at(v, pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A map field; absent is None.
pub fn map<'a>(v: &'a Value, pointer: &str) -> Option<&'a Map<String, Value>> {
    at(v, pointer).and_then(Value::as_object)
}

/// The number of entries of a map or array field.
pub fn count(v: &Value, pointer: &str) -> i64 {
    let n = match at(v, pointer) {
        Some(Value::Object(m)) => m.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    };
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A `resource.Quantity` field as its string form; an unset quantity prints as "0".
pub fn quantity(v: &Value, pointer: &str) -> String {
    match at(v, pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "0".into(),
    }
}

/// An `intstr.IntOrString` as `String()` renders it.
pub fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// `printBoolPtr`: True, False or `<unset>`.
pub fn bool_ptr(v: Option<bool>) -> String {
    match v {
        Some(true) => "True".into(),
        Some(false) => "False".into(),
        None => "<unset>".into(),
    }
}

/// `labels.FormatLabels`: `k=v` pairs sorted by key, `<none>` when empty.
pub fn labels(m: Option<&Map<String, Value>>) -> String {
    let mut pairs: Vec<String> = m
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    pairs.sort();
    if pairs.is_empty() {
        "<none>".into()
    } else {
        pairs.join(",")
    }
}

/// A label selector that cannot be converted (`LabelSelectorAsSelector` fails).
#[derive(Debug, PartialEq, Eq)]
pub struct InvalidSelector;

/// `metav1.LabelSelectorAsSelector(...).String()`: requirements sorted by key; a nil or empty
/// selector renders as "".
pub fn selector_string(sel: Option<&Value>) -> Result<String, InvalidSelector> {
    let Some(sel) = sel.filter(|s| !s.is_null()) else {
        return Ok(String::new());
    };
    let mut requirements: Vec<(String, String)> = Vec::new();
    for (k, v) in map(sel, "/matchLabels").into_iter().flatten() {
        requirements.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or(""))));
    }
    for expr in list(sel, "/matchExpressions") {
        let key = text(expr, "/key");
        let mut values: Vec<&str> = list(expr, "/values")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        values.sort_unstable();
        values.dedup();
        let rendered = match text(expr, "/operator") {
            "In" if !values.is_empty() => format!("{key} in ({})", values.join(",")),
            "NotIn" if !values.is_empty() => format!("{key} notin ({})", values.join(",")),
            "Exists" if values.is_empty() => key.to_string(),
            "DoesNotExist" if values.is_empty() => format!("!{key}"),
            _ => return Err(InvalidSelector),
        };
        requirements.push((key.to_string(), rendered));
    }
    requirements.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(requirements
        .into_iter()
        .map(|(_, r)| r)
        .collect::<Vec<_>>()
        .join(","))
}

/// `metav1.FormatLabelSelector`: `<none>` for an empty selector, `<error>` for an invalid one.
pub fn label_selector(sel: Option<&Value>) -> String {
    match selector_string(sel) {
        Ok(s) if s.is_empty() => "<none>".into(),
        Ok(s) => s,
        Err(InvalidSelector) => "<error>".into(),
    }
}

/// The Go `String()` of a `metav1.LabelSelector` struct (gogo-protobuf generated), which
/// upstream prints for a policy binding's paramRef selector.
pub fn label_selector_struct(sel: &Value) -> String {
    let mut labels: Vec<(&String, &str)> = map(sel, "/matchLabels")
        .into_iter()
        .flatten()
        .map(|(k, v)| (k, v.as_str().unwrap_or("")))
        .collect();
    labels.sort();
    let labels: String = labels.iter().map(|(k, v)| format!("{k}: {v},")).collect();
    let expressions: String = list(sel, "/matchExpressions")
        .iter()
        .map(|e| {
            let values: Vec<&str> = list(e, "/values")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            format!(
                "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{}],}},",
                text(e, "/key"),
                text(e, "/operator"),
                values.join(" ")
            )
        })
        .collect();
    format!(
        "&LabelSelector{{MatchLabels:map[string]string{{{labels}}},MatchExpressions:[]LabelSelectorRequirement{{{expressions}}},}}"
    )
}

/// `layoutContainerCells`: container names and images, comma separated.
pub fn containers(cs: &[Value]) -> (String, String) {
    let names: Vec<&str> = cs.iter().map(|c| text(c, "/name")).collect();
    let images: Vec<&str> = cs.iter().map(|c| text(c, "/image")).collect();
    (names.join(","), images.join(","))
}

/// `listWithMoreString`: up to `max` entries, then "+ N more...", `<unset>` when empty.
pub fn list_with_more(entries: &[String], max: usize) -> String {
    let shown = entries
        .iter()
        .take(max)
        .cloned()
        .collect::<Vec<_>>()
        .join(",");
    if entries.len() > max {
        return format!("{shown} + {} more...", entries.len() - max);
    }
    if shown.is_empty() {
        "<unset>".into()
    } else {
        shown
    }
}

/// `net.JoinHostPort`: IPv6 hosts in brackets.
pub fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_sorted_or_none() {
        assert_eq!(labels(json!({"b": "2", "a": "1"}).as_object()), "a=1,b=2");
        assert_eq!(labels(None), "<none>");
        assert_eq!(labels(json!({}).as_object()), "<none>");
    }

    #[test]
    fn selectors_render_like_apimachinery() {
        let sel = json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["b", "a"]},
                {"key": "env", "operator": "DoesNotExist"},
                {"key": "zone", "operator": "NotIn", "values": ["x"]},
                {"key": "canary", "operator": "Exists"}
            ]
        });
        assert_eq!(
            label_selector(Some(&sel)),
            "app=web,canary,!env,tier in (a,b),zone notin (x)"
        );
        assert_eq!(label_selector(Some(&json!({}))), "<none>");
        assert_eq!(label_selector(None), "<none>");
        assert_eq!(
            label_selector(Some(
                &json!({"matchExpressions": [{"key": "a", "operator": "Bad"}]})
            )),
            "<error>"
        );
        assert_eq!(selector_string(None), Ok(String::new()));
    }

    #[test]
    fn selector_struct_string() {
        let sel = json!({"matchLabels": {"a": "b"}});
        assert_eq!(
            label_selector_struct(&sel),
            "&LabelSelector{MatchLabels:map[string]string{a: b,},MatchExpressions:[]LabelSelectorRequirement{},}"
        );
    }

    #[test]
    fn more_and_unset() {
        let e: Vec<String> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(list_with_more(&e, 3), "a,b,c + 2 more...");
        assert_eq!(list_with_more(&e[..2], 3), "a,b");
        assert_eq!(list_with_more(&[], 3), "<unset>");
        assert_eq!(join_host_port("fd00::1", 80), "[fd00::1]:80");
    }
}
