//! Validation of a custom object against its version's `openAPIV3Schema`, with the field errors
//! upstream produces: kube-openapi's validators (`pkg/validation/validate`: type, format, enum,
//! string/number/array/object constraints) turned into `field.Error`s by apiextensions-apiserver
//! `pkg/apiserver/validation/validation.go` (`kubeOpenAPIResultToFieldErrors`):
//!
//! - required → `Required value`; enum → `Unsupported value: "x": supported values: "a", "b"`;
//! - maxLength → `Too long: may not be more than N bytes`; maxItems/maxProperties → `Too many`;
//! - a wrong type → `Invalid value: "string": spec.replicas in body must be of type integer: "string"`;
//! - everything else → `Invalid value: <value>: <path> in body <what>` with go-openapi's texts.
//!
//! Paths render as upstream prints them: `spec.data[0].key`.

use rkube_apimachinery::{FieldError, FieldErrorType};
use serde_json::{Map, Value};

/// Validates `obj` (a whole custom object) against the root schema. `metadata`, `apiVersion` and
/// `kind` are checked by the generic object-meta validation, not here.
pub fn validate(schema: &Value, obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(o) = obj.as_object() else {
        errs.push(type_error("", obj, "object"));
        return errs;
    };
    let mut root = Map::new();
    for (k, v) in o {
        if !matches!(k.as_str(), "metadata" | "apiVersion" | "kind") {
            root.insert(k.clone(), v.clone());
        }
    }
    let mut root_schema = schema.clone();
    // The root's metadata/apiVersion/kind are validated elsewhere; requiring them here would
    // only repeat those errors.
    if let Some(req) = root_schema
        .get_mut("required")
        .and_then(Value::as_array_mut)
    {
        req.retain(|r| !matches!(r.as_str(), Some("metadata" | "apiVersion" | "kind")));
    }
    validate_value(&root_schema, &Value::Object(root), "", &mut errs);
    errs
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The JSON type name kube-openapi reports for a value.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) => {
            if n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0) {
                "integer"
            } else {
                "number"
            }
        }
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `%v` of a float64 limit as Go prints it (no trailing `.0`).
fn go_number(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        Some(f) => format!("{f}"),
        None => v.to_string(),
    }
}

fn type_error(path: &str, value: &Value, want: &str) -> FieldError {
    let got = type_name(value);
    FieldError {
        kind: FieldErrorType::TypeInvalid,
        field: path.to_string(),
        value: Some(Value::String(got.into())),
        detail: format!("{path} in body must be of type {want}: \"{got}\""),
    }
}

fn invalid(path: &str, value: &Value, what: &str) -> FieldError {
    FieldError::invalid(path, value.clone(), format!("{path} in body {what}"))
}

fn type_matches(want: &str, v: &Value) -> bool {
    match want {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "number" => v.is_number(),
        "integer" => type_name(v) == "integer",
        _ => true,
    }
}

/// Validates one value at `path`.
pub fn validate_value(schema: &Value, value: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Some(s) = schema.as_object() else { return };
    if value.is_null() {
        if s.get("nullable").and_then(Value::as_bool) == Some(true) {
            return;
        }
        if let Some(t) = s.get("type").and_then(Value::as_str) {
            errs.push(type_error(path, value, t));
        }
        return;
    }
    let int_or_string = s.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true);
    if int_or_string {
        if !(value.is_string() || type_name(value) == "integer") {
            errs.push(type_error(path, value, "integer,string"));
            return;
        }
    } else if let Some(t) = s.get("type").and_then(Value::as_str)
        && !type_matches(t, value)
    {
        errs.push(type_error(path, value, t));
        return;
    }
    if let Some(allowed) = s.get("enum").and_then(Value::as_array)
        && !allowed.iter().any(|a| json_equal(a, value))
    {
        let names: Vec<String> = allowed
            .iter()
            .map(|a| a.as_str().map_or_else(|| a.to_string(), str::to_string))
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        errs.push(FieldError::not_supported(path, value.clone(), &refs));
    }
    match value {
        Value::String(text) => validate_string(s, text, value, path, errs),
        Value::Number(_) => validate_number(s, value, path, errs),
        Value::Array(items) => validate_array(s, items, value, path, errs),
        Value::Object(fields) => validate_object(s, fields, value, path, errs),
        _ => {}
    }
}

/// Numbers compare by value: `1` equals `1.0`, as Go's reflect.DeepEqual on float64/int64 does not,
/// but kube-openapi normalises numbers before comparing enums.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn validate_string(
    s: &Map<String, Value>,
    text: &str,
    value: &Value,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    let chars = text.chars().count();
    if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
        && chars as u64 > max
    {
        let unit = if max == 1 { "byte" } else { "bytes" };
        errs.push(FieldError {
            kind: FieldErrorType::TooLong,
            field: path.to_string(),
            value: Some(value.clone()),
            detail: format!("may not be more than {max} {unit}"),
        });
    }
    if let Some(min) = s.get("minLength").and_then(Value::as_u64)
        && (chars as u64) < min
    {
        errs.push(invalid(
            path,
            value,
            &format!("should be at least {min} chars long"),
        ));
    }
    if let Some(pattern) = s.get("pattern").and_then(Value::as_str) {
        // Schemas are validated on CRD write, so a pattern that does not compile is not expected.
        if let Ok(re) = regex::Regex::new(pattern)
            && !re.is_match(text)
        {
            errs.push(invalid(path, value, &format!("should match '{pattern}'")));
        }
    }
    if let Some(format) = s.get("format").and_then(Value::as_str)
        && !string_format_ok(format, text)
    {
        errs.push(FieldError {
            kind: FieldErrorType::TypeInvalid,
            field: path.to_string(),
            value: Some(value.clone()),
            detail: format!("{path} in body must be of type {format}: {text:?}"),
        });
    }
}

/// The string formats kube-openapi's strfmt registry checks (`pkg/validation/strfmt/default.go`);
/// unknown formats pass, as upstream.
pub fn string_format_ok(format: &str, text: &str) -> bool {
    match format {
        "date-time" => {
            chrono::DateTime::parse_from_rfc3339(text).is_ok()
                || chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").is_ok()
        }
        "date" => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok(),
        "byte" => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .is_ok()
        }
        "uuid" => uuid::Uuid::parse_str(text).is_ok() && text.len() == 36,
        "ipv4" => text.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => text.parse::<std::net::Ipv6Addr>().is_ok(),
        "cidr" => text.split_once('/').is_some_and(|(ip, bits)| {
            ip.parse::<std::net::IpAddr>().is_ok() && bits.parse::<u8>().is_ok_and(|b| b <= 128)
        }),
        "hostname" => {
            !text.is_empty()
                && text.len() <= 255
                && text.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                        && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                })
        }
        "email" => text
            .split_once('@')
            .is_some_and(|(u, d)| !u.is_empty() && d.contains('.')),
        _ => true,
    }
}

fn validate_number(s: &Map<String, Value>, value: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Some(n) = value.as_f64() else { return };
    if let Some(format) = s.get("format").and_then(Value::as_str) {
        let out_of_range = match format {
            "int32" => n < f64::from(i32::MIN) || n > f64::from(i32::MAX),
            "int64" => value.as_i64().is_none() && value.as_u64().is_some(),
            _ => false,
        };
        if out_of_range {
            errs.push(FieldError {
                kind: FieldErrorType::TypeInvalid,
                field: path.to_string(),
                value: Some(value.clone()),
                detail: format!("{path} in body must be of type {format}: \"{value}\""),
            });
        }
    }
    if let Some(min) = s.get("minimum").filter(|m| m.is_number()) {
        let exclusive = s.get("exclusiveMinimum").and_then(Value::as_bool) == Some(true);
        let lim = min.as_f64().unwrap_or(f64::MIN);
        if (exclusive && n <= lim) || (!exclusive && n < lim) {
            let what = if exclusive {
                "should be greater than"
            } else {
                "should be greater than or equal to"
            };
            errs.push(invalid(path, value, &format!("{what} {}", go_number(min))));
        }
    }
    if let Some(max) = s.get("maximum").filter(|m| m.is_number()) {
        let exclusive = s.get("exclusiveMaximum").and_then(Value::as_bool) == Some(true);
        let lim = max.as_f64().unwrap_or(f64::MAX);
        if (exclusive && n >= lim) || (!exclusive && n > lim) {
            let what = if exclusive {
                "should be less than"
            } else {
                "should be less than or equal to"
            };
            errs.push(invalid(path, value, &format!("{what} {}", go_number(max))));
        }
    }
    if let Some(m) = s
        .get("multipleOf")
        .and_then(Value::as_f64)
        .filter(|m| *m > 0.0)
    {
        let q = n / m;
        if (q - q.round()).abs() > 1e-9 {
            errs.push(invalid(
                path,
                value,
                &format!("should be a multiple of {}", go_number(&s["multipleOf"])),
            ));
        }
    }
}

fn validate_array(
    s: &Map<String, Value>,
    items: &[Value],
    value: &Value,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
        && items.len() as u64 > max
    {
        let unit = if max == 1 { "item" } else { "items" };
        errs.push(FieldError {
            kind: FieldErrorType::TooMany,
            field: path.to_string(),
            value: Some(Value::from(items.len())),
            detail: format!("must have at most {max} {unit}"),
        });
    }
    if let Some(min) = s.get("minItems").and_then(Value::as_u64)
        && (items.len() as u64) < min
    {
        errs.push(invalid(
            path,
            value,
            &format!("should have at least {min} items"),
        ));
    }
    if s.get("uniqueItems").and_then(Value::as_bool) == Some(true) {
        let duplicate = items
            .iter()
            .enumerate()
            .any(|(i, a)| items[..i].iter().any(|b| json_equal(a, b)));
        if duplicate {
            errs.push(invalid(path, value, "shouldn't contain duplicates"));
        }
    }
    if let Some(item_schema) = s.get("items") {
        for (i, item) in items.iter().enumerate() {
            validate_value(item_schema, item, &format!("{path}[{i}]"), errs);
        }
    }
}

fn validate_object(
    s: &Map<String, Value>,
    fields: &Map<String, Value>,
    value: &Value,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    if let Some(max) = s.get("maxProperties").and_then(Value::as_u64)
        && fields.len() as u64 > max
    {
        let unit = if max == 1 { "item" } else { "items" };
        errs.push(FieldError {
            kind: FieldErrorType::TooMany,
            field: path.to_string(),
            value: Some(Value::from(fields.len())),
            detail: format!("must have at most {max} {unit}"),
        });
    }
    if let Some(min) = s.get("minProperties").and_then(Value::as_u64)
        && (fields.len() as u64) < min
    {
        errs.push(invalid(
            path,
            value,
            &format!("should have at least {min} properties"),
        ));
    }
    for req in s
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !fields.contains_key(req) {
            errs.push(FieldError::required(child(path, req), ""));
        }
    }
    let props = s.get("properties").and_then(Value::as_object);
    for (k, v) in fields {
        let p = child(path, k);
        match props.and_then(|p| p.get(k)) {
            Some(prop_schema) => validate_value(prop_schema, v, &p, errs),
            None => {
                if let Some(additional) = s.get("additionalProperties").filter(|a| a.is_object()) {
                    validate_value(additional, v, &p, errs);
                }
            }
        }
    }
    if s.get("x-kubernetes-embedded-resource")
        .and_then(Value::as_bool)
        == Some(true)
    {
        for (key, what) in [("apiVersion", "apiVersion"), ("kind", "kind")] {
            if fields
                .get(key)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                errs.push(FieldError::required(child(path, what), "must not be empty"));
            }
        }
    }
}
