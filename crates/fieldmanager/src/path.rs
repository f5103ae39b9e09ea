//! Field paths as structured-merge-diff names them: a field of a struct or map, the key of an
//! item in an associative list, the value of an item in a set, or the index of an item in an
//! atomic-less list without keys.

use std::fmt;

use serde_json::{Map, Value};

/// One step of a path. The variant order is the sort order upstream uses when it serializes
/// field sets (field names, then keys, then values, then indexes).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathElement {
    /// A struct field or map key: `f:<name>`.
    Field(String),
    /// An associative-list item, as the compact JSON object of its key fields sorted by name:
    /// `k:{"name":"web"}`.
    Key(String),
    /// A set item, as its compact JSON value: `v:"a"`.
    Value(String),
    /// A list item by position: `i:0`.
    Index(usize),
}

impl PathElement {
    /// The associative-list key element for `item` with key fields `keys`.
    pub fn key_of(keys: &[(String, Value)]) -> Self {
        let mut sorted: Vec<&(String, Value)> = keys.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let mut m = Map::new();
        for (k, v) in sorted {
            m.insert(k.clone(), v.clone());
        }
        Self::Key(Value::Object(m).to_string())
    }

    /// The set element for a scalar item.
    pub fn value_of(v: &Value) -> Self {
        Self::Value(v.to_string())
    }

    /// The FieldsV1 object key of this element.
    pub fn to_fields_key(&self) -> String {
        match self {
            Self::Field(n) => format!("f:{n}"),
            Self::Key(k) => format!("k:{k}"),
            Self::Value(v) => format!("v:{v}"),
            Self::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a FieldsV1 object key.
    pub fn from_fields_key(s: &str) -> Result<Self, String> {
        let (prefix, rest) = s.split_at_checked(2).ok_or_else(|| format!("invalid path element {s:?}"))?;
        match prefix {
            "f:" => Ok(Self::Field(rest.to_string())),
            "k:" => {
                let v: Value = serde_json::from_str(rest).map_err(|e| format!("invalid key {rest:?}: {e}"))?;
                let Value::Object(m) = v else { return Err(format!("invalid key {rest:?}: not an object")) };
                let keys: Vec<(String, Value)> = m.into_iter().collect();
                Ok(Self::key_of(&keys))
            }
            "v:" => {
                let v: Value = serde_json::from_str(rest).map_err(|e| format!("invalid value {rest:?}: {e}"))?;
                Ok(Self::value_of(&v))
            }
            "i:" => rest.parse().map(Self::Index).map_err(|e| format!("invalid index {rest:?}: {e}")),
            _ => Err(format!("unknown path element prefix in {s:?}")),
        }
    }
}

/// Upstream's `PathElement.String()`: `.name`, `[name="web"]`, `[="a"]`, `[0]`.
impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Field(n) => write!(f, ".{n}"),
            Self::Key(k) => {
                let parsed: Value = serde_json::from_str(k).unwrap_or(Value::Null);
                let parts: Vec<String> = parsed
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                    .unwrap_or_default();
                write!(f, "[{}]", parts.join(","))
            }
            Self::Value(v) => write!(f, "[={v}]"),
            Self::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path from the object root.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Path(pub Vec<PathElement>);

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for pe in &self.0 {
            write!(f, "{pe}")?;
        }
        Ok(())
    }
}

impl Path {
    /// A path of field names.
    pub fn fields(names: &[&str]) -> Self {
        Self(names.iter().map(|n| PathElement::Field((*n).to_string())).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_sorted_compact_json_and_print_like_upstream() {
        let k = PathElement::key_of(&[("protocol".into(), json!("TCP")), ("containerPort".into(), json!(80))]);
        assert_eq!(k.to_fields_key(), r#"k:{"containerPort":80,"protocol":"TCP"}"#);
        assert_eq!(k.to_string(), r#"[containerPort=80,protocol="TCP"]"#);
        let p = Path(vec![
            PathElement::Field("spec".into()),
            PathElement::Field("containers".into()),
            PathElement::key_of(&[("name".into(), json!("nginx"))]),
            PathElement::Field("image".into()),
        ]);
        assert_eq!(p.to_string(), r#".spec.containers[name="nginx"].image"#);
        assert_eq!(PathElement::value_of(&json!("a")).to_string(), r#"[="a"]"#);
    }

    #[test]
    fn fields_keys_round_trip() {
        for s in [r#"f:metadata"#, r#"k:{"name":"x","port":1}"#, r#"v:"finalizer.io/x""#, "i:3"] {
            let pe = PathElement::from_fields_key(s).unwrap();
            assert_eq!(pe.to_fields_key(), s);
        }
        assert!(PathElement::from_fields_key("x").is_err());
        assert!(PathElement::from_fields_key("q:a").is_err());
    }

    #[test]
    fn order_is_fields_then_keys_then_values_then_indexes() {
        let mut v = [PathElement::Index(0),
            PathElement::Value("1".into()),
            PathElement::Key("{}".into()),
            PathElement::Field("z".into()),
            PathElement::Field("a".into())];
        v.sort();
        assert_eq!(v[0], PathElement::Field("a".into()));
        assert_eq!(v[2], PathElement::Key("{}".into()));
        assert_eq!(v[4], PathElement::Index(0));
    }
}
