//! Helpers over JSON objects in their wire form (`serde_json::Value`).

use serde_json::{Map, Value};

/// `metadata` of an object, if it is an object.
pub fn metadata(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

/// `metadata`, created if missing. Returns None only if `obj` is not a JSON object.
pub fn metadata_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    let o = obj.as_object_mut()?;
    let m = o.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    if !m.is_object() {
        *m = Value::Object(Map::new());
    }
    m.as_object_mut()
}

/// A string field of `metadata`.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    metadata(obj)?.get(field)?.as_str()
}

/// `metadata.name`, or "" when unset.
pub fn name(obj: &Value) -> &str {
    meta_str(obj, "name").unwrap_or("")
}

/// `metadata.namespace`, or "" when unset.
pub fn namespace(obj: &Value) -> &str {
    meta_str(obj, "namespace").unwrap_or("")
}

/// `metadata.labels` (empty map when unset).
pub fn labels(obj: &Value) -> Map<String, Value> {
    metadata(obj).and_then(|m| m.get("labels")).and_then(Value::as_object).cloned().unwrap_or_default()
}

/// `metadata.finalizers` as strings.
pub fn finalizers(obj: &Value) -> Vec<String> {
    metadata(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// Sets a `metadata` field; ignored when `obj` is not an object.
pub fn set_meta(obj: &mut Value, field: &str, value: Value) {
    if let Some(m) = metadata_mut(obj) {
        m.insert(field.to_string(), value);
    }
}

/// Removes a `metadata` field.
pub fn remove_meta(obj: &mut Value, field: &str) -> Option<Value> {
    metadata_mut(obj).and_then(|m| m.shift_remove(field))
}

/// Reads a dotted path (`spec.nodeName`, `involvedObject.kind`) as a string, the way upstream's
/// field label conversion renders scalars (booleans as `true`/`false`, numbers in decimal).
pub fn field_string(obj: &Value, path: &str) -> Option<String> {
    let mut cur = obj;
    for part in path.split('.') {
        cur = cur.get(part)?;
    }
    match cur {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Null => None,
        _ => None,
    }
}

/// The current time as upstream renders `metav1.Time` (RFC 3339, seconds, `Z`).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Characters upstream uses for generated name suffixes (apiserver `names.SimpleNameGenerator`,
/// apimachinery `pkg/util/rand`: no vowels, no confusable digits).
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `generateName` + 5 random characters, trimmed so the result stays within 63 characters
/// (apiserver `pkg/storage/names/generate.go`).
pub fn generate_name(base: &str) -> String {
    use rand::Rng;
    const MAX_NAME_LENGTH: usize = 63;
    const RANDOM_LENGTH: usize = 5;
    const MAX_GENERATED_NAME_LENGTH: usize = MAX_NAME_LENGTH - RANDOM_LENGTH;
    let mut base = base.to_string();
    if base.len() > MAX_GENERATED_NAME_LENGTH {
        let mut cut = MAX_GENERATED_NAME_LENGTH;
        while !base.is_char_boundary(cut) {
            cut -= 1;
        }
        base.truncate(cut);
    }
    let mut rng = rand::rng();
    for _ in 0..RANDOM_LENGTH {
        let i = rng.random_range(0..NAME_ALPHABET.len());
        base.push(char::from(NAME_ALPHABET[i]));
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn generated_names_keep_prefix_and_length() {
        let n = generate_name("web-");
        assert!(n.starts_with("web-"));
        assert_eq!(n.len(), 9);
        let long = "a".repeat(80);
        assert_eq!(generate_name(&long).len(), 63);
    }

    #[test]
    fn field_string_renders_scalars() {
        let o = json!({"spec": {"nodeName": "n1", "hostNetwork": true, "replicas": 3}});
        assert_eq!(field_string(&o, "spec.nodeName").as_deref(), Some("n1"));
        assert_eq!(field_string(&o, "spec.hostNetwork").as_deref(), Some("true"));
        assert_eq!(field_string(&o, "spec.replicas").as_deref(), Some("3"));
        assert_eq!(field_string(&o, "spec.missing"), None);
    }
}
