//! Walking JSON values with a schema: the field set of a value, the comparison of two values,
//! merging an applied configuration into a live object, and removing fields.
//!
//! Semantics follow structured-merge-diff's typed package: leaves are scalars, atomic lists and
//! atomic maps; containers are compared item by item (struct fields, map keys, associative-list
//! keys, set values); a container present on one side only is itself added or removed.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::path::PathElement;
use crate::schema::{ListType, SchemaNode, Shape};
use crate::set::Set;

/// What changed between two values.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// Paths present only in the new value.
    pub added: Set,
    /// Leaves whose value changed.
    pub modified: Set,
    /// Paths present only in the old value.
    pub removed: Set,
}

impl Comparison {
    /// Nothing changed.
    pub fn is_same(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }
}

/// The shape a value takes under a schema: deduced when there is none, a leaf when the value
/// does not have the schema's shape.
fn shape_of<S: SchemaNode>(schema: Option<&S>, v: &Value) -> Shape {
    let declared = schema.map_or(Shape::Untyped, SchemaNode::shape);
    match (declared, v) {
        (Shape::Untyped, Value::Object(_)) => Shape::Map { atomic: false },
        (Shape::Untyped, Value::Array(_)) => Shape::List(ListType::Atomic),
        (Shape::Untyped, _) => Shape::Scalar,
        (s @ (Shape::Struct { .. } | Shape::Map { .. }), Value::Object(_) | Value::Null) => s,
        (s @ Shape::List(_), Value::Array(_) | Value::Null) => s,
        _ => Shape::Scalar,
    }
}

fn is_leaf(shape: &Shape) -> bool {
    matches!(shape, Shape::Scalar | Shape::List(ListType::Atomic) | Shape::Struct { atomic: true } | Shape::Map { atomic: true })
}

fn is_empty_container(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    }
}

/// The schema of a map entry and whether it is a declared struct field.
fn entry_schema<S: SchemaNode>(schema: Option<&S>, shape: &Shape, key: &str) -> (Option<S>, bool) {
    match (schema, shape) {
        (Some(s), Shape::Struct { .. }) => match s.field(key) {
            Some(f) => (Some(f), true),
            None => (s.element(), false),
        },
        (Some(s), Shape::Map { .. }) => (s.element(), false),
        _ => (None, false),
    }
}

/// The path element of a list item.
pub(crate) fn item_element<S: SchemaNode>(lt: &ListType, elem: Option<&S>, index: usize, item: &Value) -> Result<PathElement, String> {
    match lt {
        ListType::Map(keys) => {
            let Value::Object(m) = item else {
                return Err(format!("associative list with keys has an element that is not a map type: {item}"));
            };
            let mut kv = Vec::with_capacity(keys.len());
            for k in keys {
                match m.get(k).cloned().or_else(|| elem.and_then(|e| e.key_default(k))) {
                    Some(v) => kv.push((k.clone(), v)),
                    None => {
                        return Err(format!("associative list with keys has an element that omits key field {k:?} (and doesn't have default value)"));
                    }
                }
            }
            Ok(PathElement::key_of(&kv))
        }
        ListType::Set => match item {
            Value::Object(_) | Value::Array(_) => Err(format!("associative list without keys has an element that is a {}", if item.is_object() { "map" } else { "list" })),
            v => Ok(PathElement::value_of(v)),
        },
        ListType::Atomic => Ok(PathElement::Index(index)),
    }
}

/// Items of a list keyed by path element, in order; duplicates are an error.
fn keyed_items<'v, S: SchemaNode>(lt: &ListType, elem: Option<&S>, list: Option<&'v Value>, side: &str) -> Result<Vec<(PathElement, &'v Value)>, String> {
    let mut out = Vec::new();
    let mut seen = HashMap::new();
    for (i, item) in list.and_then(Value::as_array).into_iter().flatten().enumerate() {
        let pe = item_element(lt, elem, i, item).map_err(|e| format!("{side}: element {i}: {e}"))?;
        if seen.insert(pe.clone(), ()).is_some() {
            return Err(format!("{side}: duplicate entries for key {pe}"));
        }
        out.push((pe, item));
    }
    Ok(out)
}

/// The set of every field a value sets (`TypedValue.ToFieldSet`).
pub fn to_field_set<S: SchemaNode>(v: &Value, schema: Option<&S>) -> Result<Set, String> {
    let mut set = Set::new();
    let mut path = Vec::new();
    field_set_walk(v, schema, &mut path, &mut set)?;
    Ok(set)
}

fn field_set_walk<S: SchemaNode>(v: &Value, schema: Option<&S>, path: &mut Vec<PathElement>, set: &mut Set) -> Result<(), String> {
    let shape = shape_of(schema, v);
    if is_leaf(&shape) {
        set.insert(path);
        return Ok(());
    }
    match (&shape, v) {
        (Shape::List(lt), Value::Array(_)) => {
            let elem = schema.and_then(SchemaNode::element);
            for (pe, item) in keyed_items(lt, elem.as_ref(), Some(v), "value")? {
                path.push(pe);
                field_set_walk(item, elem.as_ref(), path, set)?;
                set.insert(path);
                path.pop();
            }
        }
        (_, Value::Object(m)) => {
            for (k, val) in m {
                let (child, declared) = entry_schema(schema, &shape, k);
                path.push(PathElement::Field(k.clone()));
                field_set_walk(val, child.as_ref(), path, set)?;
                if !declared {
                    set.insert(path);
                }
                path.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

/// What changed from `old` to `new` (`TypedValue.Compare`).
pub fn compare<S: SchemaNode>(old: &Value, new: &Value, schema: Option<&S>) -> Result<Comparison, String> {
    let mut c = Comparison::default();
    let mut path = Vec::new();
    compare_walk(Some(old), Some(new), schema, &mut path, &mut c)?;
    Ok(c)
}

fn compare_walk<S: SchemaNode>(lhs: Option<&Value>, rhs: Option<&Value>, schema: Option<&S>, path: &mut Vec<PathElement>, c: &mut Comparison) -> Result<(), String> {
    let shape = shape_for_pair(schema, lhs, rhs);
    if is_leaf(&shape) || (is_empty_container(lhs) && is_empty_container(rhs)) {
        match (lhs, rhs) {
            (None, Some(_)) => c.added.insert(path),
            (Some(_), None) => c.removed.insert(path),
            (Some(l), Some(r)) if l != r => c.modified.insert(path),
            _ => {}
        }
        return Ok(());
    }
    match &shape {
        Shape::List(lt) => {
            let elem = schema.and_then(SchemaNode::element);
            let left = keyed_items(lt, elem.as_ref(), lhs, "lhs")?;
            let right = keyed_items(lt, elem.as_ref(), rhs, "rhs")?;
            let right_map: HashMap<&PathElement, &Value> = right.iter().map(|(pe, v)| (pe, *v)).collect();
            let left_keys: HashMap<&PathElement, ()> = left.iter().map(|(pe, _)| (pe, ())).collect();
            for (pe, l) in &left {
                path.push(pe.clone());
                compare_walk(Some(l), right_map.get(pe).copied(), elem.as_ref(), path, c)?;
                path.pop();
            }
            for (pe, r) in &right {
                if !left_keys.contains_key(pe) {
                    path.push(pe.clone());
                    compare_walk(None, Some(r), elem.as_ref(), path, c)?;
                    path.pop();
                }
            }
        }
        _ => {
            let lm = lhs.and_then(Value::as_object);
            let rm = rhs.and_then(Value::as_object);
            for (k, l) in lm.into_iter().flatten() {
                let (child, _) = entry_schema(schema, &shape, k);
                path.push(PathElement::Field(k.clone()));
                compare_walk(Some(l), rm.and_then(|m| m.get(k)), child.as_ref(), path, c)?;
                path.pop();
            }
            for (k, r) in rm.into_iter().flatten() {
                if lm.is_some_and(|m| m.contains_key(k)) {
                    continue;
                }
                let (child, _) = entry_schema(schema, &shape, k);
                path.push(PathElement::Field(k.clone()));
                compare_walk(None, Some(r), child.as_ref(), path, c)?;
                path.pop();
            }
        }
    }
    // A container that exists on one side only is itself added or removed.
    match (lhs, rhs) {
        (None, Some(_)) => c.added.insert(path),
        (Some(_), None) => c.removed.insert(path),
        _ => {}
    }
    Ok(())
}

/// The shape to walk two values with; values of different shapes are compared as leaves.
fn shape_for_pair<S: SchemaNode>(schema: Option<&S>, lhs: Option<&Value>, rhs: Option<&Value>) -> Shape {
    let l = lhs.map(|v| shape_of(schema, v));
    let r = rhs.map(|v| shape_of(schema, v));
    match (l, r) {
        (Some(l), Some(r)) if std::mem::discriminant(&l) != std::mem::discriminant(&r) => Shape::Scalar,
        (Some(l), _) => l,
        (None, Some(r)) => r,
        (None, None) => Shape::Scalar,
    }
}

/// `live` with `config` merged over it (`TypedValue.Merge`): config wins on leaves, containers
/// merge item by item; live items keep their order and new items follow in config order.
pub fn merge<S: SchemaNode>(live: &Value, config: &Value, schema: Option<&S>) -> Result<Value, String> {
    Ok(merge_walk(Some(live), Some(config), schema)?.unwrap_or_else(|| Value::Object(Map::new())))
}

fn merge_walk<S: SchemaNode>(lhs: Option<&Value>, rhs: Option<&Value>, schema: Option<&S>) -> Result<Option<Value>, String> {
    let shape = shape_for_pair(schema, lhs, rhs);
    if is_leaf(&shape) || (is_empty_container(lhs) && is_empty_container(rhs)) {
        return Ok(rhs.or(lhs).cloned());
    }
    match &shape {
        Shape::List(lt) => {
            let elem = schema.and_then(SchemaNode::element);
            let left = keyed_items(lt, elem.as_ref(), lhs, "lhs")?;
            let right = keyed_items(lt, elem.as_ref(), rhs, "rhs")?;
            let right_map: HashMap<&PathElement, &Value> = right.iter().map(|(pe, v)| (pe, *v)).collect();
            let left_keys: HashMap<&PathElement, ()> = left.iter().map(|(pe, _)| (pe, ())).collect();
            let mut out = Vec::with_capacity(left.len().max(right.len()));
            for (pe, l) in &left {
                if let Some(v) = merge_walk(Some(l), right_map.get(pe).copied(), elem.as_ref())? {
                    out.push(v);
                }
            }
            for (pe, r) in &right {
                if !left_keys.contains_key(pe)
                    && let Some(v) = merge_walk(None, Some(r), elem.as_ref())? {
                        out.push(v);
                    }
            }
            Ok((!out.is_empty()).then_some(Value::Array(out)))
        }
        _ => {
            let lm = lhs.and_then(Value::as_object);
            let rm = rhs.and_then(Value::as_object);
            let mut out = Map::new();
            for (k, l) in lm.into_iter().flatten() {
                let (child, _) = entry_schema(schema, &shape, k);
                if let Some(v) = merge_walk(Some(l), rm.and_then(|m| m.get(k)), child.as_ref())? {
                    out.insert(k.clone(), v);
                }
            }
            for (k, r) in rm.into_iter().flatten() {
                if lm.is_some_and(|m| m.contains_key(k)) {
                    continue;
                }
                let (child, _) = entry_schema(schema, &shape, k);
                if let Some(v) = merge_walk(None, Some(r), child.as_ref())? {
                    out.insert(k.clone(), v);
                }
            }
            Ok((!out.is_empty()).then_some(Value::Object(out)))
        }
    }
}

/// `v` without the paths in `to_remove` (`TypedValue.RemoveItems`). Containers emptied by the
/// removal disappear, as they do when upstream decodes the result into its typed structs.
pub fn remove_items<S: SchemaNode>(v: &Value, to_remove: &Set, schema: Option<&S>) -> Value {
    remove_walk(v, to_remove, schema).unwrap_or_else(|| Value::Object(Map::new()))
}

fn remove_walk<S: SchemaNode>(v: &Value, to_remove: &Set, schema: Option<&S>) -> Option<Value> {
    let shape = shape_of(schema, v);
    if is_leaf(&shape) {
        return match shape {
            Shape::Scalar => Some(v.clone()),
            _ => None,
        };
    }
    match (&shape, v) {
        (Shape::List(lt), Value::Array(items)) => {
            let elem = schema.and_then(SchemaNode::element);
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let Ok(pe) = item_element(lt, elem.as_ref(), i, item) else {
                    out.push(item.clone());
                    continue;
                };
                if to_remove.has(std::slice::from_ref(&pe)) {
                    continue;
                }
                match to_remove.with_prefix(&pe) {
                    Some(sub) if !sub.is_empty() => {
                        if let Some(kept) = remove_walk(item, sub, elem.as_ref()) {
                            out.push(kept);
                        }
                    }
                    _ => out.push(item.clone()),
                }
            }
            (!out.is_empty()).then_some(Value::Array(out))
        }
        (_, Value::Object(m)) => {
            let mut out = Map::new();
            for (k, val) in m {
                let pe = PathElement::Field(k.clone());
                if to_remove.has(std::slice::from_ref(&pe)) {
                    continue;
                }
                match to_remove.with_prefix(&pe) {
                    Some(sub) if !sub.is_empty() => {
                        let (child, _) = entry_schema(schema, &shape, k);
                        if let Some(kept) = remove_walk(val, sub, child.as_ref()) {
                            out.insert(k.clone(), kept);
                        }
                    }
                    _ => {
                        out.insert(k.clone(), val.clone());
                    }
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        _ => Some(v.clone()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// A small hand-written schema for tests: a Deployment-like object.
    #[derive(Clone, Debug)]
    pub(crate) enum T {
        Obj(Vec<(&'static str, T)>),
        AtomicObj,
        StrMap,
        Scalar,
        Keyed(Vec<&'static str>, Box<T>),
        StrSet,
        AtomicList,
    }

    impl SchemaNode for T {
        fn shape(&self) -> Shape {
            match self {
                T::Obj(_) => Shape::Struct { atomic: false },
                T::AtomicObj => Shape::Struct { atomic: true },
                T::StrMap => Shape::Map { atomic: false },
                T::Scalar => Shape::Scalar,
                T::Keyed(k, _) => Shape::List(ListType::Map(k.iter().map(|s| s.to_string()).collect())),
                T::StrSet => Shape::List(ListType::Set),
                T::AtomicList => Shape::List(ListType::Atomic),
            }
        }
        fn field(&self, name: &str) -> Option<Self> {
            match self {
                T::Obj(fs) => fs.iter().find(|(n, _)| *n == name).map(|(_, t)| t.clone()),
                _ => None,
            }
        }
        fn element(&self) -> Option<Self> {
            match self {
                T::StrMap => Some(T::Scalar),
                T::Keyed(_, e) => Some((**e).clone()),
                T::StrSet | T::AtomicList => Some(T::Scalar),
                _ => None,
            }
        }
        fn key_default(&self, key: &str) -> Option<Value> {
            (key == "protocol").then(|| json!("TCP"))
        }
    }

    pub(crate) fn deployment() -> T {
        let container = T::Obj(vec![
            ("name", T::Scalar),
            ("image", T::Scalar),
            ("args", T::AtomicList),
            ("ports", T::Keyed(vec!["containerPort", "protocol"], Box::new(T::Obj(vec![("containerPort", T::Scalar), ("protocol", T::Scalar), ("name", T::Scalar)])))),
        ]);
        let meta = T::Obj(vec![("name", T::Scalar), ("labels", T::StrMap), ("annotations", T::StrMap), ("finalizers", T::StrSet)]);
        T::Obj(vec![
            ("apiVersion", T::Scalar),
            ("kind", T::Scalar),
            ("metadata", meta.clone()),
            (
                "spec",
                T::Obj(vec![
                    ("replicas", T::Scalar),
                    ("selector", T::AtomicObj),
                    ("template", T::Obj(vec![("metadata", meta), ("spec", T::Obj(vec![("containers", T::Keyed(vec!["name"], Box::new(container)))]))])),
                ]),
            ),
            ("status", T::Obj(vec![("replicas", T::Scalar)])),
        ])
    }

    fn paths(s: &Set) -> Vec<String> {
        s.paths().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn field_set_of_an_applied_deployment_matches_upstream_fields_v1() {
        let cfg = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx:1", "ports": [{"containerPort": 80}]}]}}}
        });
        let s = to_field_set(&cfg, Some(&deployment())).unwrap();
        assert_eq!(
            s.to_fields_v1(),
            json!({"f:apiVersion": {}, "f:kind": {}, "f:metadata": {"f:labels": {"f:app": {}}, "f:name": {}},
                "f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {"f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}}}}}})
        );
    }

    #[test]
    fn compare_marks_added_containers_and_changed_leaves() {
        let old = json!({"metadata": {"name": "web"}, "spec": {"replicas": 1}});
        let new = json!({"metadata": {"name": "web", "labels": {"a": "1"}}, "spec": {"replicas": 3}});
        let c = compare(&old, &new, Some(&deployment())).unwrap();
        assert_eq!(paths(&c.added), [".metadata.labels", ".metadata.labels.a"]);
        assert_eq!(paths(&c.modified), [".spec.replicas"]);
        assert!(c.removed.is_empty());
        let back = compare(&new, &old, Some(&deployment())).unwrap();
        assert_eq!(paths(&back.removed), [".metadata.labels", ".metadata.labels.a"]);
        assert!(compare(&new, &new, Some(&deployment())).unwrap().is_same());
    }

    #[test]
    fn merge_keeps_live_items_and_config_wins_on_leaves() {
        let live = json!({"spec": {"replicas": 1, "template": {"spec": {"containers": [
            {"name": "a", "image": "a:1", "args": ["x"]}, {"name": "b", "image": "b:1"}]}}}, "status": {"replicas": 1}});
        let cfg = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "c:1"}, {"name": "a", "image": "a:2", "args": ["y", "z"]}]}}}});
        let out = merge(&live, &cfg, Some(&deployment())).unwrap();
        assert_eq!(
            out,
            json!({"spec": {"replicas": 1, "template": {"spec": {"containers": [
                {"name": "a", "image": "a:2", "args": ["y", "z"]}, {"name": "b", "image": "b:1"}, {"name": "c", "image": "c:1"}]}}},
                "status": {"replicas": 1}})
        );
    }

    #[test]
    fn remove_items_drops_fields_items_and_emptied_containers() {
        let v = json!({"metadata": {"labels": {"a": "1"}, "name": "x"}, "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "i"}, {"name": "b"}]}}}});
        let mut rm = Set::new();
        rm.insert(&[PathElement::Field("metadata".into()), PathElement::Field("labels".into()), PathElement::Field("a".into())]);
        rm.insert(&[
            PathElement::Field("spec".into()),
            PathElement::Field("template".into()),
            PathElement::Field("spec".into()),
            PathElement::Field("containers".into()),
            PathElement::key_of(&[("name".into(), json!("b"))]),
        ]);
        let out = remove_items(&v, &rm, Some(&deployment()));
        assert_eq!(out, json!({"metadata": {"name": "x"}, "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "i"}]}}}}));
    }

    #[test]
    fn duplicate_and_keyless_items_are_errors() {
        let dup = json!({"spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}}});
        let err = to_field_set(&dup, Some(&deployment())).unwrap_err();
        assert!(err.contains("duplicate entries for key [name=\"a\"]"), "{err}");
        let keyless = json!({"spec": {"template": {"spec": {"containers": [{"image": "a"}]}}}});
        let err = to_field_set(&keyless, Some(&deployment())).unwrap_err();
        assert!(err.contains("omits key field \"name\""), "{err}");
    }

    #[test]
    fn values_without_schema_are_deduced() {
        let v = json!({"a": {"b": 1}, "l": [1, 2]});
        let s = to_field_set::<crate::schema::Deduced>(&v, None).unwrap();
        assert_eq!(paths(&s), [".a", ".a.b", ".l"]);
    }
}
