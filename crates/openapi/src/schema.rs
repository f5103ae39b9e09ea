//! Walking a kind's schema by field path, for strategic merge patch and server-side apply:
//! `catalog.schema_for_gvk("", "v1", "Pod")?.field("spec")?.field("containers")` answers the
//! field's patch strategy, merge key, list type and map keys as upstream's OpenAPI declares them.
//!
//! A field's extensions sit on the property itself (`PodSpec.containers` carries
//! `x-kubernetes-patch-merge-key`), while its fields come from the definition the property
//! references; a [`SchemaRef`] keeps both: the *site* (the property) and the *target* (the
//! definition its `$ref` leads to, or the site itself when it has none).

use std::sync::Arc;

use serde_json::Value;

use crate::catalog::{Catalog, DEFINITIONS_REF};

/// `x-kubernetes-list-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListType {
    /// The list is replaced as a whole.
    Atomic,
    /// Items are unique scalars, merged as a set.
    Set,
    /// Items are objects keyed by [`SchemaRef::list_map_keys`].
    Map,
}

/// `x-kubernetes-map-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapType {
    /// The map (or struct) is replaced as a whole.
    Atomic,
    /// Keys are merged one by one (the default).
    Granular,
}

/// A place inside one definition.
#[derive(Clone, Debug)]
struct Node {
    definition: Arc<Value>,
    /// JSON pointer into the definition; empty for the definition itself.
    pointer: String,
}

impl Node {
    fn value(&self) -> &Value {
        self.definition.pointer(&self.pointer).unwrap_or(&Value::Null)
    }

    fn child(&self, segments: &[&str]) -> Option<Node> {
        let mut pointer = self.pointer.clone();
        for s in segments {
            pointer.push('/');
            pointer.push_str(&s.replace('~', "~0").replace('/', "~1"));
        }
        let node = Node { definition: self.definition.clone(), pointer };
        (!node.value().is_null()).then_some(node)
    }
}

/// A schema node reached from a kind: see the module documentation.
#[derive(Clone)]
pub struct SchemaRef<'a> {
    catalog: &'a Catalog,
    site: Node,
    target: Node,
    /// Name of the definition `target` is the root of, if it is one.
    target_name: Option<String>,
}

impl std::fmt::Debug for SchemaRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaRef").field("site", &self.site.pointer).field("definition", &self.target_name).finish()
    }
}

/// The definition a node refers to: `$ref`, or upstream's v3 form `allOf: [{$ref}]`.
fn reference(v: &Value) -> Option<&str> {
    let direct = v.get("$ref").and_then(Value::as_str);
    let all_of = || v.get("allOf")?.as_array()?.first()?.get("$ref")?.as_str();
    direct.or_else(all_of).and_then(|r| r.strip_prefix(DEFINITIONS_REF))
}

impl<'a> SchemaRef<'a> {
    pub(crate) fn root(catalog: &'a Catalog, name: &str) -> Option<Self> {
        let node = Node { definition: catalog.definition(name)?, pointer: String::new() };
        let mut schema = Self::at(catalog, node);
        schema.target_name.get_or_insert_with(|| name.to_string());
        Some(schema)
    }

    fn at(catalog: &'a Catalog, site: Node) -> Self {
        let mut target = site.clone();
        let mut target_name = None;
        // References chain at most a few times; the bound guards against a cycle.
        for _ in 0..8 {
            let Some(name) = reference(target.value()).map(str::to_string) else { break };
            let Some(definition) = catalog.definition(&name) else { break };
            target = Node { definition, pointer: String::new() };
            target_name = Some(name);
        }
        Self { catalog, site, target, target_name }
    }

    /// The schema of a field of this object.
    pub fn field(&self, name: &str) -> Option<SchemaRef<'a>> {
        self.target.child(&["properties", name]).map(|n| Self::at(self.catalog, n))
    }

    /// The schema of this list's items.
    pub fn items(&self) -> Option<SchemaRef<'a>> {
        self.target.child(&["items"]).map(|n| Self::at(self.catalog, n))
    }

    /// The schema of this map's values (`additionalProperties`).
    pub fn additional_properties(&self) -> Option<SchemaRef<'a>> {
        self.target.child(&["additionalProperties"]).filter(|n| n.value().is_object()).map(|n| Self::at(self.catalog, n))
    }

    /// Follows a path of field names; `[]` steps into list items or map values.
    pub fn path(&self, path: &[&str]) -> Option<SchemaRef<'a>> {
        let mut current = self.clone();
        for step in path {
            current = if *step == "[]" { current.items().or_else(|| current.additional_properties())? } else { current.field(step)? };
        }
        Some(current)
    }

    /// The definition name this node resolves to (`io.k8s.api.core.v1.Container`).
    pub fn definition_name(&self) -> Option<&str> {
        self.target_name.as_deref()
    }

    /// The property as written (with its extensions).
    pub fn site(&self) -> &Value {
        self.site.value()
    }

    /// The resolved schema (the referenced definition, or the property itself).
    pub fn resolved(&self) -> &Value {
        self.target.value()
    }

    fn lookup(&self, key: &str) -> Option<&Value> {
        self.site().get(key).or_else(|| self.resolved().get(key))
    }

    fn lookup_str(&self, key: &str) -> Option<&str> {
        self.lookup(key).and_then(Value::as_str)
    }

    /// `description`: the field's own, else its type's.
    pub fn description(&self) -> Option<&str> {
        self.lookup_str("description")
    }

    /// `type` (`object`, `array`, `string`, …).
    pub fn type_name(&self) -> Option<&str> {
        self.lookup_str("type")
    }

    /// `format` (`int32`, `date-time`, `int-or-string`, …).
    pub fn format(&self) -> Option<&str> {
        self.lookup_str("format")
    }

    /// Required field names of this object.
    pub fn required(&self) -> Vec<&str> {
        self.resolved().get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect()
    }

    /// `x-kubernetes-patch-strategy`, as written (`merge`, `retainKeys`, `merge,retainKeys`).
    pub fn patch_strategy(&self) -> Option<&str> {
        self.lookup_str("x-kubernetes-patch-strategy")
    }

    /// The comma-separated parts of [`SchemaRef::patch_strategy`].
    pub fn patch_strategies(&self) -> Vec<&str> {
        self.patch_strategy().map(|s| s.split(',').map(str::trim).filter(|s| !s.is_empty()).collect()).unwrap_or_default()
    }

    /// `x-kubernetes-patch-merge-key`.
    pub fn patch_merge_key(&self) -> Option<&str> {
        self.lookup_str("x-kubernetes-patch-merge-key")
    }

    /// `x-kubernetes-list-type`.
    pub fn list_type(&self) -> Option<ListType> {
        match self.lookup_str("x-kubernetes-list-type")? {
            "atomic" => Some(ListType::Atomic),
            "set" => Some(ListType::Set),
            "map" => Some(ListType::Map),
            _ => None,
        }
    }

    /// `x-kubernetes-list-map-keys`.
    pub fn list_map_keys(&self) -> Vec<&str> {
        self.lookup("x-kubernetes-list-map-keys").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect()
    }

    /// `x-kubernetes-map-type`.
    pub fn map_type(&self) -> Option<MapType> {
        match self.lookup_str("x-kubernetes-map-type")? {
            "atomic" => Some(MapType::Atomic),
            "granular" => Some(MapType::Granular),
            _ => None,
        }
    }

    /// Whether the value may be an integer or a string (`IntOrString`).
    pub fn is_int_or_string(&self) -> bool {
        self.lookup("x-kubernetes-int-or-string").and_then(Value::as_bool).unwrap_or(false) || self.format() == Some("int-or-string")
    }

    /// `x-kubernetes-preserve-unknown-fields`.
    pub fn preserves_unknown_fields(&self) -> bool {
        self.lookup("x-kubernetes-preserve-unknown-fields").and_then(Value::as_bool).unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_spec(catalog: &Catalog) -> SchemaRef<'_> {
        catalog.schema_for_gvk("", "v1", "Pod").and_then(|p| p.field("spec")).unwrap()
    }

    #[test]
    fn pod_containers_merge_by_name() {
        let catalog = Catalog::new();
        let containers = pod_spec(&catalog).field("containers").unwrap();
        assert_eq!(containers.patch_strategy(), Some("merge"));
        assert_eq!(containers.patch_merge_key(), Some("name"));
        assert_eq!(containers.list_type(), Some(ListType::Map));
        assert_eq!(containers.list_map_keys(), vec!["name"]);
        assert_eq!(containers.type_name(), Some("array"));
        let container = containers.items().unwrap();
        assert_eq!(container.definition_name(), Some("io.k8s.api.core.v1.Container"));
        assert_eq!(container.required(), vec!["name"]);
    }

    #[test]
    fn container_ports_key_on_port_and_protocol_but_merge_on_port() {
        let catalog = Catalog::new();
        let ports = pod_spec(&catalog).path(&["containers", "[]", "ports"]).unwrap();
        assert_eq!(ports.patch_merge_key(), Some("containerPort"));
        assert_eq!(ports.list_map_keys(), vec!["containerPort", "protocol"]);
        assert_eq!(ports.list_type(), Some(ListType::Map));
        let env = pod_spec(&catalog).path(&["containers", "[]", "env"]).unwrap();
        assert_eq!((env.patch_strategy(), env.patch_merge_key()), (Some("merge"), Some("name")));
    }

    #[test]
    fn volumes_retain_keys_and_deployment_strategy() {
        let catalog = Catalog::new();
        let volumes = pod_spec(&catalog).field("volumes").unwrap();
        assert_eq!(volumes.patch_strategies(), vec!["merge", "retainKeys"]);
        let strategy = catalog.schema_for_gvk("apps", "v1", "Deployment").and_then(|d| d.path(&["spec", "strategy"])).unwrap();
        assert_eq!(strategy.patch_strategy(), Some("retainKeys"));
        // The description is the field's own, not the referenced type's.
        assert_eq!(strategy.description(), Some("The deployment strategy to use to replace existing pods with new ones."));
        assert_eq!(strategy.definition_name(), Some("io.k8s.api.apps.v1.DeploymentStrategy"));
        assert!(strategy.field("rollingUpdate").and_then(|r| r.field("maxSurge")).is_some_and(|m| m.is_int_or_string()));
    }

    #[test]
    fn object_meta_lists_and_maps() {
        let catalog = Catalog::new();
        let meta = catalog.schema_for_gvk("apps", "v1", "Deployment").and_then(|d| d.field("metadata")).unwrap();
        let finalizers = meta.field("finalizers").unwrap();
        assert_eq!(finalizers.patch_strategy(), Some("merge"));
        assert_eq!(finalizers.patch_merge_key(), None);
        assert_eq!(finalizers.list_type(), Some(ListType::Set));
        let owners = meta.field("ownerReferences").unwrap();
        assert_eq!((owners.patch_merge_key(), owners.list_map_keys()), (Some("uid"), vec!["uid"]));
        assert_eq!(
            meta.field("labels").and_then(|l| l.additional_properties()).and_then(|v| v.type_name().map(str::to_string)).as_deref(),
            Some("string")
        );
        let selector = catalog.schema_for_gvk("", "v1", "Service").and_then(|s| s.path(&["spec", "selector"])).unwrap();
        assert_eq!(selector.map_type(), Some(MapType::Atomic));
        // A struct-level marker on the referenced definition.
        let label_selector = catalog.schema_for_gvk("apps", "v1", "Deployment").and_then(|d| d.path(&["spec", "selector"])).unwrap();
        assert_eq!(label_selector.definition_name(), Some("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"));
        assert_eq!(label_selector.map_type(), Some(MapType::Atomic));
        assert_eq!(meta.field("labels").and_then(|l| l.map_type()), None);
    }

    #[test]
    fn service_ports_merge_on_port() {
        let catalog = Catalog::new();
        let ports = catalog.schema_for_gvk("", "v1", "Service").and_then(|s| s.path(&["spec", "ports"])).unwrap();
        assert_eq!((ports.patch_strategy(), ports.patch_merge_key()), (Some("merge"), Some("port")));
        assert_eq!(ports.list_map_keys(), vec!["port", "protocol"]);
        assert!(ports.path(&["[]", "targetPort"]).is_some_and(|t| t.is_int_or_string()));
        // Look-alike fields elsewhere carry no strategy upstream.
        let np_ports = catalog
            .schema_for_gvk("networking.k8s.io", "v1", "NetworkPolicy")
            .and_then(|n| n.path(&["spec", "ingress", "[]", "ports"]))
            .unwrap();
        assert_eq!(np_ports.patch_strategy(), None);
        assert_eq!(np_ports.list_type(), Some(ListType::Atomic));
    }

    #[test]
    fn unknown_fields_and_kinds_are_none() {
        let catalog = Catalog::new();
        assert!(catalog.schema_for_gvk("apps", "v1", "Nope").is_none());
        assert!(pod_spec(&catalog).field("nope").is_none());
        assert!(pod_spec(&catalog).items().is_none());
    }
}
