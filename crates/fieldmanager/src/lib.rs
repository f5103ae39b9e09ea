//! Field management for server-side apply: which manager owns which fields of an object
//! (`metadata.managedFields`), updating ownership on every write, applying configurations with
//! conflict detection, and pruning fields an applier stopped setting.
//!
//! The semantics are structured-merge-diff's (`merge/update.go`) as the Kubernetes API server
//! wires them (`fieldmanager`): an Update takes ownership of what it changed, an Apply owns
//! exactly what its configuration sets, a field changed by an Apply that another manager owns is
//! a conflict unless forced, and fields an applier no longer sets are removed when nobody else
//! owns them.

mod json_schema;
mod managers;
mod path;
mod schema;
mod set;
mod typed;

pub use json_schema::{DefinitionLookup, JsonSchemaNode};
pub use managers::{ManagerEntry, Operation, decode_managed_fields, encode_managed_fields};
pub use path::{Path, PathElement};
pub use schema::{Deduced, DynSchema, DynSchemaNode, ListType, SchemaNode, Shape};
pub use set::Set;
pub use typed::{Comparison, compare, merge, remove_items, to_field_set};

use serde_json::{Map, Value};

/// Who is writing, and how.
#[derive(Debug, Clone)]
pub struct WriteContext<'a> {
    /// The field manager (`fieldManager` or derived from the User-Agent).
    pub manager: &'a str,
    /// apiVersion of the request (`apps/v1`).
    pub api_version: &'a str,
    /// `""` for the main resource, `"status"`, `"scale"`, …
    pub subresource: &'a str,
    /// Paths the write may not own (status for the main resource of a kind with a status
    /// subresource, the rest for the status subresource).
    pub ignored: &'a Set,
    /// RFC 3339 time of the write.
    pub now: &'a str,
}

/// One conflicting field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// How upstream prints the manager: `"kubectl"`, `"kubectl-edit" using apps/v1`.
    pub manager: String,
    /// The field.
    pub path: Path,
}

/// Why an apply failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Fields another manager owns would change.
    #[error("{}", conflict_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The configuration or the live object cannot be walked with the schema.
    #[error("{0}")]
    Invalid(String),
}

/// Upstream's message for apply conflicts (`getConflictMessage`).
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [c] = conflicts {
        return format!("Apply failed with 1 conflict: conflict with {}: {}", c.manager, c.path);
    }
    let mut by_manager: std::collections::BTreeMap<&str, Vec<&Path>> = std::collections::BTreeMap::new();
    for c in conflicts {
        by_manager.entry(&c.manager).or_default().push(&c.path);
    }
    let mut lines = Vec::new();
    for (m, paths) in by_manager {
        lines.push(format!("conflicts with {m}:"));
        lines.extend(paths.iter().map(|p| format!("- {p}")));
    }
    format!("Apply failed with {} conflicts: {}", conflicts.len(), lines.join("\n"))
}

/// Fields no manager owns: identity and server-maintained metadata (upstream's strip set).
fn stripped_fields() -> Set {
    let mut s = Set::new();
    for p in [
        &["apiVersion"][..],
        &["kind"],
        &["metadata"],
        &["metadata", "name"],
        &["metadata", "namespace"],
        &["metadata", "creationTimestamp"],
        &["metadata", "selfLink"],
        &["metadata", "uid"],
        &["metadata", "clusterName"],
        &["metadata", "generation"],
        &["metadata", "managedFields"],
        &["metadata", "resourceVersion"],
    ] {
        s.insert(&Path::fields(p).0);
    }
    s
}

fn without_managed_fields(v: &Value) -> Value {
    let mut out = v.clone();
    if let Some(m) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        m.shift_remove("managedFields");
    }
    out
}

fn set_managed_fields(obj: &mut Value, entries: &[ManagerEntry]) {
    let Some(o) = obj.as_object_mut() else { return };
    let meta = o.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    if let Some(m) = meta.as_object_mut() {
        if entries.is_empty() {
            m.shift_remove("managedFields");
        } else {
            m.insert("managedFields".into(), encode_managed_fields(entries));
        }
    }
}

/// Removes from every other manager what this write changed (they no longer own it) and what
/// it removed.
fn take_ownership(entries: &mut [ManagerEntry], skip: Option<usize>, changed: &Set, removed: &Set) {
    for (i, e) in entries.iter_mut().enumerate() {
        if Some(i) == skip {
            continue;
        }
        let conflict = e.fields.intersection(changed);
        e.fields = e.fields.difference(&conflict).difference(removed);
    }
}

/// Updates `new.metadata.managedFields` for a create, update or non-apply patch from `live`
/// (`{}` on create) to `new`. Managed fields the client sent in `new` replace the live ones
/// (that is how clients reset them); if they cannot be computed, they are dropped, as upstream's
/// `UpdateNoErrors` does.
pub fn update<S: SchemaNode>(live: &Value, new: &mut Value, schema: Option<&S>, ctx: &WriteContext<'_>) {
    let from_request = if ctx.subresource.is_empty() { decode_managed_fields(new).ok().filter(|e| !e.is_empty()) } else { None };
    let mut entries = match from_request {
        Some(e) => e,
        None => decode_managed_fields(live).unwrap_or_default(),
    };
    let old = without_managed_fields(live);
    let stripped_new = without_managed_fields(new);
    let cmp = match compare(&old, &stripped_new, schema) {
        Ok(c) => c,
        Err(_) => {
            set_managed_fields(new, &[]);
            return;
        }
    };
    let strip = stripped_fields();
    let changed = cmp.modified.union(&cmp.added).recursive_difference(ctx.ignored);
    let removed = cmp.removed.recursive_difference(ctx.ignored);
    take_ownership(&mut entries, None, &changed, &removed);
    let mine = changed.difference(&removed).difference(&strip);
    if !mine.is_empty() {
        match entries.iter_mut().find(|e| e.is_update_by(ctx.manager, ctx.api_version, ctx.subresource)) {
            Some(e) => {
                e.fields = e.fields.union(&mine);
                e.time = Some(ctx.now.to_string());
            }
            None => entries.push(ManagerEntry {
                manager: ctx.manager.to_string(),
                operation: Operation::Update,
                api_version: ctx.api_version.to_string(),
                time: Some(ctx.now.to_string()),
                subresource: ctx.subresource.to_string(),
                fields: mine,
            }),
        }
    }
    entries.retain(|e| !e.fields.is_empty());
    set_managed_fields(new, &entries);
}

/// Server-side apply of `config` by `ctx.manager` over `live` (None when the object does not
/// exist). Returns the new object with its managedFields.
pub fn apply<S: SchemaNode>(live: Option<&Value>, config: &Value, schema: Option<&S>, ctx: &WriteContext<'_>, force: bool) -> Result<Value, ApplyError> {
    let empty = Value::Object(Map::new());
    let live = live.unwrap_or(&empty);
    let mut entries = decode_managed_fields(live).unwrap_or_default();
    let live_s = without_managed_fields(live);
    let config = without_managed_fields(config);
    let strip = stripped_fields();

    let mut merged = merge(&live_s, &config, schema).map_err(ApplyError::Invalid)?;
    let mine = to_field_set(&config, schema).map_err(ApplyError::Invalid)?.recursive_difference(ctx.ignored).difference(&strip);
    let idx = match entries.iter().position(|e| e.is_apply_by(ctx.manager, ctx.subresource)) {
        Some(i) => i,
        None => {
            entries.push(ManagerEntry {
                manager: ctx.manager.to_string(),
                operation: Operation::Apply,
                api_version: ctx.api_version.to_string(),
                time: None,
                subresource: ctx.subresource.to_string(),
                fields: Set::new(),
            });
            entries.len() - 1
        }
    };
    let last = std::mem::replace(&mut entries[idx].fields, mine);
    entries[idx].api_version = ctx.api_version.to_string();
    entries[idx].time = Some(ctx.now.to_string());

    // Fields this applier set last time and nobody (itself included) owns now are removed.
    if !last.is_empty() {
        let owned = entries.iter().fold(Set::new(), |acc, e| acc.union(&e.fields));
        let to_remove = last.difference(&owned);
        if !to_remove.is_empty() {
            merged = remove_items(&merged, &to_remove, schema);
        }
    }

    let cmp = compare(&live_s, &merged, schema).map_err(ApplyError::Invalid)?;
    let changed = cmp.modified.union(&cmp.added).recursive_difference(ctx.ignored);
    let removed = cmp.removed.recursive_difference(ctx.ignored);
    let mut conflicts = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if i == idx {
            continue;
        }
        for path in e.fields.intersection(&changed).paths() {
            conflicts.push(Conflict { manager: e.display_name(), path });
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(ApplyError::Conflicts(conflicts));
    }
    take_ownership(&mut entries, Some(idx), &changed, &removed);
    entries.retain(|e| !e.fields.is_empty());
    set_managed_fields(&mut merged, &entries);
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::typed::tests::deployment;
    use serde_json::json;

    fn ctx<'a>(manager: &'a str, ignored: &'a Set) -> WriteContext<'a> {
        WriteContext { manager, api_version: "apps/v1", subresource: "", ignored, now: "2026-11-29T10:00:00Z" }
    }

    fn status_ignored() -> Set {
        let mut s = Set::new();
        s.insert(&Path::fields(&["status"]).0);
        s
    }

    fn managers(obj: &Value) -> Vec<(String, String)> {
        obj["metadata"]["managedFields"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| (e["manager"].as_str().unwrap_or("").to_string(), e["operation"].as_str().unwrap_or("").to_string()))
            .collect()
    }

    fn cfg(replicas: i64, image: &str, label: Option<&str>) -> Value {
        let mut v = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "app", "image": image}]}}}});
        if let Some(l) = label {
            v["metadata"]["labels"] = json!({ l: "yes" });
        }
        v
    }

    #[test]
    fn apply_creates_then_a_second_manager_conflicts_until_forced() {
        let ig = status_ignored();
        let s = deployment();
        let created = apply(None, &cfg(2, "nginx:1", None), Some(&s), &ctx("kubectl", &ig), false).unwrap();
        assert_eq!(managers(&created), [("kubectl".to_string(), "Apply".to_string())]);
        assert_eq!(
            created["metadata"]["managedFields"][0]["fieldsV1"],
            json!({"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}})
        );

        // Same values from another manager: shared ownership, no conflict.
        let shared = apply(Some(&created), &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 2}}), Some(&s), &ctx("other", &ig), false).unwrap();
        assert_eq!(managers(&shared).len(), 2);

        // A different value is a conflict naming the manager and the field.
        let err = apply(Some(&shared), &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 5}}), Some(&s), &ctx("other", &ig), false).unwrap_err();
        assert_eq!(err.to_string(), "Apply failed with 1 conflict: conflict with \"kubectl\": .spec.replicas");

        // Forced: the value changes and ownership moves.
        let forced = apply(Some(&shared), &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 5}}), Some(&s), &ctx("other", &ig), true).unwrap();
        assert_eq!(forced["spec"]["replicas"], json!(5));
        let kubectl = &forced["metadata"]["managedFields"][0];
        assert_eq!(kubectl["manager"], "kubectl");
        assert!(kubectl["fieldsV1"]["f:spec"].get("f:replicas").is_none());
    }

    #[test]
    fn apply_prunes_fields_the_applier_dropped_but_keeps_fields_others_own() {
        let ig = status_ignored();
        let s = deployment();
        let v1 = apply(None, &cfg(2, "nginx:1", Some("team")), Some(&s), &ctx("kubectl", &ig), false).unwrap();
        assert_eq!(v1["metadata"]["labels"], json!({"team": "yes"}));
        // Another manager adds a label by update.
        let mut v2 = v1.clone();
        v2["metadata"]["labels"]["owner"] = json!("ops");
        update(&v1, &mut v2, Some(&s), &WriteContext { manager: "kubectl-label", ..ctx("", &ig) });
        assert_eq!(managers(&v2), [("kubectl".into(), "Apply".into()), ("kubectl-label".into(), "Update".into())]);
        // Re-apply without the team label: it goes, the other manager's label stays.
        let v3 = apply(Some(&v2), &cfg(2, "nginx:1", None), Some(&s), &ctx("kubectl", &ig), false).unwrap();
        assert_eq!(v3["metadata"]["labels"], json!({"owner": "ops"}));
        // Dropping the only container's image removes just that field.
        let mut c = cfg(2, "nginx:1", None);
        c["spec"]["template"]["spec"]["containers"][0].as_object_mut().unwrap().remove("image");
        let v4 = apply(Some(&v3), &c, Some(&s), &ctx("kubectl", &ig), false).unwrap();
        assert_eq!(v4["spec"]["template"]["spec"]["containers"], json!([{"name": "app"}]));
    }

    #[test]
    fn update_takes_fields_from_others_and_records_only_changes() {
        let ig = status_ignored();
        let s = deployment();
        let mut created = cfg(1, "a", Some("x"));
        update(&json!({}), &mut created, Some(&s), &WriteContext { manager: "kubectl-create", ..ctx("", &ig) });
        assert_eq!(managers(&created), [("kubectl-create".into(), "Update".into())]);
        let fields = &created["metadata"]["managedFields"][0]["fieldsV1"];
        assert_eq!(fields["f:metadata"], json!({"f:labels": {".": {}, "f:x": {}}}));

        // A no-op update by a new manager adds no entry.
        let mut same = created.clone();
        update(&created, &mut same, Some(&s), &WriteContext { manager: "kubectl-edit", ..ctx("", &ig) });
        assert_eq!(managers(&same), [("kubectl-create".into(), "Update".into())]);

        // Changing replicas moves that field.
        let mut scaled = created.clone();
        scaled["spec"]["replicas"] = json!(3);
        update(&created, &mut scaled, Some(&s), &WriteContext { manager: "kubectl-scale", ..ctx("", &ig) });
        assert_eq!(managers(&scaled).len(), 2);
        assert!(scaled["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"].get("f:replicas").is_none());
        assert_eq!(scaled["metadata"]["managedFields"][1]["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));

        // Status changes on the main resource are never owned.
        let mut st = scaled.clone();
        st["status"] = json!({"replicas": 3});
        update(&scaled, &mut st, Some(&s), &WriteContext { manager: "ctrl", ..ctx("", &ig) });
        assert_eq!(managers(&st).len(), 2);
    }

    #[test]
    fn clients_reset_managed_fields_with_an_empty_entry() {
        let ig = status_ignored();
        let s = deployment();
        let mut created = cfg(1, "a", None);
        update(&json!({}), &mut created, Some(&s), &WriteContext { manager: "m", ..ctx("", &ig) });
        let mut reset = created.clone();
        reset["metadata"]["managedFields"] = json!([{}]);
        update(&created, &mut reset, Some(&s), &WriteContext { manager: "m", ..ctx("", &ig) });
        assert!(reset["metadata"].get("managedFields").is_none());
    }

    #[test]
    fn several_conflicts_are_grouped_by_manager() {
        let msg = conflict_message(&[
            Conflict { manager: "\"b\" using apps/v1".into(), path: Path::fields(&["spec", "replicas"]) },
            Conflict { manager: "\"a\"".into(), path: Path::fields(&["metadata", "labels", "x"]) },
            Conflict { manager: "\"b\" using apps/v1".into(), path: Path::fields(&["spec", "paused"]) },
        ]);
        assert_eq!(msg, "Apply failed with 3 conflicts: conflicts with \"a\":\n- .metadata.labels.x\nconflicts with \"b\" using apps/v1:\n- .spec.replicas\n- .spec.paused");
    }
}
