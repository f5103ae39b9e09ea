//! Every definition rkube knows: the built-in ones (generated data, parsed once per process on
//! first use and shared, since they never change) and those registered at run time for custom
//! resources (per [`Catalog`], so two servers in one process do not share them).
//!
//! Definitions are kept in the Swagger 2.0 form upstream serves at `/openapi/v2`
//! (`$ref: #/definitions/<name>`); the v3 documents convert on the way out.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;
use serde_json::Value;

use crate::schema::SchemaRef;

/// Prefix of a Swagger 2.0 reference to a definition.
pub const DEFINITIONS_REF: &str = "#/definitions/";

static BUILTIN_JSON: &str = include_str!("../data/definitions.json");
static BUILTIN: OnceLock<Definitions> = OnceLock::new();

/// A group, version and kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gvk {
    /// API group, empty for core.
    pub group: String,
    /// API version.
    pub version: String,
    /// Kind.
    pub kind: String,
}

impl Gvk {
    /// Builds a GVK.
    pub fn new(group: &str, version: &str, kind: &str) -> Self {
        Self { group: group.to_string(), version: version.to_string(), kind: kind.to_string() }
    }
}

/// Named definitions and the index of the kinds among them.
#[derive(Default)]
struct Definitions {
    by_name: HashMap<String, Arc<Value>>,
    by_gvk: HashMap<Gvk, String>,
    /// For run-time registrations: the names each kind brought, to remove them together.
    registered: HashMap<Gvk, Vec<String>>,
}

impl Definitions {
    fn insert(&mut self, name: String, schema: Value) {
        for gvk in gvks_of(&schema) {
            // Kinds served in every group-version (DeleteOptions, WatchEvent) keep their own
            // name; a real kind of that group-version wins over them.
            let generic = schema.get("x-kubernetes-group-version-kind").and_then(Value::as_array).is_some_and(|a| a.len() > 1);
            if !generic || !self.by_gvk.contains_key(&gvk) {
                self.by_gvk.insert(gvk, name.clone());
            }
        }
        self.by_name.insert(name, Arc::new(schema));
    }
}

/// The GVKs a definition declares in `x-kubernetes-group-version-kind`.
pub(crate) fn gvks_of(schema: &Value) -> Vec<Gvk> {
    let field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    schema
        .get("x-kubernetes-group-version-kind")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|v| Gvk { group: field(v, "group"), version: field(v, "version"), kind: field(v, "kind") })
        .collect()
}

fn builtin() -> &'static Definitions {
    BUILTIN.get_or_init(|| {
        let mut defs = Definitions::default();
        // The data is generated and checked by this crate's tests; a parse failure leaves the
        // catalog empty rather than taking the server down.
        if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(BUILTIN_JSON) {
            for (name, schema) in map {
                defs.insert(name, schema);
            }
        }
        defs
    })
}

/// The definitions one API server serves.
#[derive(Default)]
pub struct Catalog {
    extra: RwLock<Definitions>,
    generation: AtomicU64,
}

impl Catalog {
    /// A catalog with the built-in definitions and no custom ones.
    pub fn new() -> Self {
        Self::default()
    }

    /// A definition by name (`io.k8s.api.apps.v1.Deployment`).
    pub fn definition(&self, name: &str) -> Option<Arc<Value>> {
        if let Some(d) = self.extra.read().by_name.get(name) {
            return Some(d.clone());
        }
        builtin().by_name.get(name).cloned()
    }

    /// The definition name of a kind.
    pub fn name_for_gvk(&self, gvk: &Gvk) -> Option<String> {
        if let Some(n) = self.extra.read().by_gvk.get(gvk) {
            return Some(n.clone());
        }
        builtin().by_gvk.get(gvk).cloned()
    }

    /// The schema of a kind, to walk with [`SchemaRef::field`] and [`SchemaRef::items`].
    pub fn schema_for_gvk(&self, group: &str, version: &str, kind: &str) -> Option<SchemaRef<'_>> {
        let name = self.name_for_gvk(&Gvk::new(group, version, kind))?;
        SchemaRef::root(self, &name)
    }

    /// The schema of a definition by name.
    pub fn schema(&self, name: &str) -> Option<SchemaRef<'_>> {
        SchemaRef::root(self, name)
    }

    /// Adds (or replaces) the definitions of a custom resource: `definitions` maps names to
    /// Swagger 2.0 schemas (references as `#/definitions/<name>`); the kind's own definition
    /// should carry `x-kubernetes-group-version-kind`. Served documents include them from the
    /// next request on.
    pub fn register(&self, gvk: &Gvk, definitions: Vec<(String, Value)>) {
        let mut extra = self.extra.write();
        remove_kind(&mut extra, gvk);
        let names = definitions.iter().map(|(n, _)| n.clone()).collect();
        for (name, schema) in definitions {
            extra.insert(name.clone(), schema);
            extra.by_gvk.entry(gvk.clone()).or_insert(name);
        }
        extra.registered.insert(gvk.clone(), names);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Removes what [`Catalog::register`] added for a kind.
    pub fn unregister(&self, gvk: &Gvk) {
        remove_kind(&mut self.extra.write(), gvk);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Changes whenever custom definitions change; served documents are rebuilt when it does.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The definitions reachable from `roots` through `$ref`s, sorted by name.
    pub fn closure<'a>(&self, roots: impl IntoIterator<Item = &'a str>) -> Vec<(String, Arc<Value>)> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<String> = roots.into_iter().map(str::to_string).collect();
        let mut out = Vec::new();
        while let Some(name) = stack.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            let Some(def) = self.definition(&name) else { continue };
            collect_refs(&def, &mut stack);
            out.push((name, def));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

fn remove_kind(defs: &mut Definitions, gvk: &Gvk) {
    for name in defs.registered.remove(gvk).unwrap_or_default() {
        defs.by_name.remove(&name);
        defs.by_gvk.retain(|_, n| *n != name);
    }
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(name) = m.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix(DEFINITIONS_REF)) {
                out.push(name.to_string());
            }
            m.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_builtin_reference_resolves() {
        let catalog = Catalog::new();
        let names: Vec<&str> = builtin().by_name.keys().map(String::as_str).collect();
        assert!(names.len() > 700, "only {} definitions", names.len());
        let mut refs = Vec::new();
        for def in builtin().by_name.values() {
            collect_refs(def, &mut refs);
        }
        let missing: BTreeSet<&String> = refs.iter().filter(|r| catalog.definition(r).is_none()).collect();
        assert!(missing.is_empty(), "dangling references: {missing:?}");
    }

    #[test]
    fn kinds_and_lists_are_indexed_by_gvk() {
        let catalog = Catalog::new();
        assert_eq!(catalog.name_for_gvk(&Gvk::new("apps", "v1", "Deployment")).as_deref(), Some("io.k8s.api.apps.v1.Deployment"));
        assert_eq!(catalog.name_for_gvk(&Gvk::new("", "v1", "PodList")).as_deref(), Some("io.k8s.api.core.v1.PodList"));
        assert_eq!(
            catalog.name_for_gvk(&Gvk::new("apps", "v1", "DeleteOptions")).as_deref(),
            Some("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions")
        );
        let list = catalog.definition("io.k8s.api.core.v1.PodList").unwrap();
        assert_eq!(list["properties"]["items"]["items"]["$ref"], "#/definitions/io.k8s.api.core.v1.Pod");
        assert_eq!(list["required"], json!(["items"]));
    }

    #[test]
    fn registered_definitions_are_found_until_unregistered() {
        let catalog = Catalog::new();
        let gvk = Gvk::new("example.com", "v1", "Widget");
        let before = catalog.generation();
        let schema = json!({
            "type": "object",
            "properties": {"metadata": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}},
            "x-kubernetes-group-version-kind": [{"group": "example.com", "kind": "Widget", "version": "v1"}],
        });
        catalog.register(&gvk, vec![("com.example.v1.Widget".into(), schema)]);
        assert_ne!(catalog.generation(), before);
        let widget = catalog.schema_for_gvk("example.com", "v1", "Widget").unwrap();
        assert!(widget.field("metadata").and_then(|m| m.field("finalizers")).is_some());
        let closure: Vec<String> = catalog.closure(["com.example.v1.Widget"]).into_iter().map(|(n, _)| n).collect();
        assert!(closure.contains(&"io.k8s.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry".to_string()));
        catalog.unregister(&gvk);
        assert!(catalog.schema_for_gvk("example.com", "v1", "Widget").is_none());
    }
}
