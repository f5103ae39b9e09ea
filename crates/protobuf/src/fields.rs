//! Unknown JSON fields of built-in objects, found with the same schema the protobuf conversion
//! uses: upstream decodes request bodies into typed Go structs, so a key the type does not
//! declare is reported by strict decoding (`unknown field "spec.foo"`) and is never stored.
//! Paths use upstream's form: keys joined with `.`, list items as `[i]`, map values by key.

use serde_json::Value;

use crate::schema::{Card, JsonTarget, Schema, Special, ValueType};

/// Removes the keys of `obj` (an object of message `msg`) that the schema does not know and
/// returns their paths, in the object's key order. `prefix` is the path of `obj`.
pub(crate) fn prune_unknown(schema: &Schema, msg: usize, obj: &mut Value, prefix: &str, out: &mut Vec<String>) {
    let Ok(plan) = schema.message(msg) else { return };
    match plan.special {
        Special::None => {}
        // Slices are JSON arrays of their item type.
        Special::Slice => {
            if let (Some(f), Value::Array(items)) = (plan.field_by_number(1), obj) {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_value(schema, f.ty, item, &format!("{prefix}[{i}]"), out);
                }
            }
            return;
        }
        // Time, quantities, raw JSON, JSON schemas: free-form or scalar JSON.
        _ => return,
    }
    let Value::Object(map) = obj else { return };
    let mut unknown = Vec::new();
    for (key, value) in map.iter_mut() {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match field_for(schema, msg, key) {
            Some((card, ty)) => match (card, value) {
                (_, Value::Null) => {}
                (Card::Repeated, Value::Array(items)) => {
                    for (i, item) in items.iter_mut().enumerate() {
                        prune_value(schema, ty, item, &format!("{path}[{i}]"), out);
                    }
                }
                (Card::Map, Value::Object(entries)) => {
                    for (k, v) in entries.iter_mut() {
                        prune_value(schema, ty, v, &format!("{path}.{k}"), out);
                    }
                }
                (Card::Single, v) => prune_value(schema, ty, v, &path, out),
                _ => {}
            },
            None => {
                out.push(path);
                unknown.push(key.clone());
            }
        }
    }
    for key in unknown {
        map.shift_remove(&key);
    }
}

fn prune_value(schema: &Schema, ty: ValueType, v: &mut Value, path: &str, out: &mut Vec<String>) {
    if let ValueType::Message(m) = ty {
        prune_unknown(schema, m, v, path, out);
    }
}

/// The cardinality and type of JSON key `key` of message `msg`, following inline members.
fn field_for(schema: &Schema, msg: usize, key: &str) -> Option<(Card, ValueType)> {
    let plan = schema.message(msg).ok()?;
    match plan.by_json.get(key)? {
        JsonTarget::Field(i) => plan.fields.get(*i).map(|f| (f.card, f.ty)),
        JsonTarget::Inline(i) => match plan.fields.get(*i)?.ty {
            ValueType::Message(child) => field_for(schema, child, key),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::ProtoCodec;

    #[test]
    fn unknown_fields_are_found_at_any_depth_and_removed() {
        let codec = ProtoCodec::new().unwrap();
        let mut d = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}, "unknownMeta": 1},
            "spec": {
                "foo": "bar",
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"rollingUpdate": {"maxSurge": "25%"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                    {"name": "c", "image": "i", "resources": {"limits": {"cpu": "1"}}, "bogus": true}
                ]}},
            },
        });
        let unknown = codec.prune_unknown_fields(&mut d).unwrap();
        assert_eq!(unknown, ["metadata.unknownMeta", "spec.foo", "spec.template.spec.containers[0].bogus"]);
        assert!(d["spec"].get("foo").is_none());
        assert!(d["metadata"].get("unknownMeta").is_none());
        assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"], "1");
        assert_eq!(d["kind"], "Deployment");
    }

    #[test]
    fn free_form_fields_and_unknown_kinds_are_left_alone() {
        let codec = ProtoCodec::new().unwrap();
        let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "annotations": {"x": "y"}}, "data": {"k": "v"}});
        assert_eq!(codec.prune_unknown_fields(&mut cm).unwrap(), Vec::<String>::new());
        let mut cr = json!({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"x": 1}});
        assert!(codec.prune_unknown_fields(&mut cr).is_none());
    }
}
