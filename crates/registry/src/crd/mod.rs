//! CustomResourceDefinitions (`apiextensions.k8s.io/v1`) and the custom resources they define,
//! as upstream's apiextensions-apiserver serves them.
//!
//! - [`CustomResource`]: what one established CRD serves (names, scope, versions, schemas,
//!   subresources, printer columns), parsed from the CRD object.
//! - [`definition`]: defaulting and validation of the CRD object itself.
//! - [`schema`]: validation of custom objects against a version's structural schema.
//! - [`structural`]: pruning of unknown fields and defaulting from `default:` in the schema.
//! - [`strategy`]: what happens to a custom object on create/update (generation, status split).
//! - [`controller`]: the in-process controllers (names, establishing, finalizer) that set the
//!   CRD's conditions and publish its resources in the registry's table.
//! - [`jsonpath`]: the simple JSONPath subset printer columns and scale paths use.

pub mod controller;
pub mod definition;
pub mod jsonpath;
pub mod schema;
pub mod strategy;
pub mod structural;

use std::sync::Arc;

use rkube_apimachinery::resources::SubresourceInfo;
use rkube_apimachinery::{ResourceInfo, Scope};
use serde_json::Value;

/// The group of CustomResourceDefinitions.
pub const GROUP: &str = "apiextensions.k8s.io";
/// The plural of CustomResourceDefinitions.
pub const PLURAL: &str = "customresourcedefinitions";
/// Held by a CRD being deleted until its objects are gone (apiextensions `CustomResourceCleanupFinalizer`).
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// Verbs of every custom resource (the CR handler is a full generic store).
const CRUD: &[&str] = &[
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "create",
    "update",
    "watch",
];
/// Verbs of `status` and `scale`.
const GET_PATCH_UPDATE: &[&str] = &["get", "patch", "update"];

/// Where the `scale` subresource reads and writes (`spec.versions[].subresources.scale`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalePaths {
    /// `.spec.replicas`
    pub spec_replicas: String,
    /// `.status.replicas`
    pub status_replicas: String,
    /// `.status.selector`, optional.
    pub label_selector: Option<String>,
}

/// One `additionalPrinterColumns` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrinterColumn {
    /// Column header.
    pub name: String,
    /// `integer`, `number`, `string`, `boolean` or `date`.
    pub column_type: String,
    /// Optional OpenAPI format.
    pub format: String,
    /// Human description.
    pub description: String,
    /// 0 = shown by default, >0 = `-o wide`.
    pub priority: i64,
    /// Simple JSONPath evaluated against each object.
    pub json_path: String,
}

/// One version of a custom resource.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomVersion {
    /// `v1`, `v1beta1`, …
    pub name: String,
    /// Served over REST.
    pub served: bool,
    /// Objects are stored in this version.
    pub storage: bool,
    /// `schema.openAPIV3Schema`.
    pub schema: Option<Arc<Value>>,
    /// `subresources.status` declared.
    pub status: bool,
    /// `subresources.scale` declared.
    pub scale: Option<ScalePaths>,
    /// Printer columns as declared (an Age column is served when empty).
    pub columns: Vec<PrinterColumn>,
    /// `deprecated: true`
    pub deprecated: bool,
    /// `deprecationWarning`, when set.
    pub deprecation_warning: Option<String>,
}

/// What an established CRD serves.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomResource {
    /// `metadata.name` of the CRD (`<plural>.<group>`).
    pub crd_name: String,
    /// API group.
    pub group: String,
    /// Accepted plural.
    pub plural: String,
    /// Accepted singular.
    pub singular: String,
    /// Accepted kind.
    pub kind: String,
    /// Accepted listKind.
    pub list_kind: String,
    /// Accepted short names.
    pub short_names: Vec<String>,
    /// Accepted categories.
    pub categories: Vec<String>,
    /// Namespaced or cluster.
    pub scope: Scope,
    /// Every version of the spec (served or not).
    pub versions: Vec<CustomVersion>,
    /// The CRD is being deleted: reads and deletes still work, creates do not.
    pub terminating: bool,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

fn str_of(v: &Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

impl CustomResource {
    /// Reads a CRD object. Names come from `status.acceptedNames` (what the names controller
    /// accepted), as upstream's CR handler serves them; `None` when no names were accepted yet.
    pub fn from_crd(crd: &Value) -> Option<Self> {
        let spec = &crd["spec"];
        let accepted = &crd["status"]["acceptedNames"];
        let plural = str_of(&accepted["plural"]);
        let kind = str_of(&accepted["kind"]);
        if plural.is_empty() || kind.is_empty() {
            return None;
        }
        let versions = spec["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| CustomVersion {
                name: str_of(&v["name"]),
                served: v["served"].as_bool().unwrap_or(false),
                storage: v["storage"].as_bool().unwrap_or(false),
                schema: v["schema"]
                    .get("openAPIV3Schema")
                    .map(|s| Arc::new(s.clone())),
                status: v["subresources"]
                    .get("status")
                    .is_some_and(|s| !s.is_null()),
                scale: v["subresources"]
                    .get("scale")
                    .filter(|s| s.is_object())
                    .map(|s| ScalePaths {
                        spec_replicas: str_of(&s["specReplicasPath"]),
                        status_replicas: str_of(&s["statusReplicasPath"]),
                        label_selector: s["labelSelectorPath"]
                            .as_str()
                            .filter(|p| !p.is_empty())
                            .map(str::to_string),
                    }),
                columns: v["additionalPrinterColumns"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| PrinterColumn {
                        name: str_of(&c["name"]),
                        column_type: str_of(&c["type"]),
                        format: str_of(&c["format"]),
                        description: str_of(&c["description"]),
                        priority: c["priority"].as_i64().unwrap_or(0),
                        json_path: str_of(&c["jsonPath"]),
                    })
                    .collect(),
                deprecated: v["deprecated"].as_bool().unwrap_or(false),
                deprecation_warning: v["deprecationWarning"].as_str().map(str::to_string),
            })
            .collect();
        Some(Self {
            crd_name: crd["metadata"]["name"].as_str().unwrap_or("").to_string(),
            group: str_of(&spec["group"]),
            singular: str_of(&accepted["singular"]),
            list_kind: str_of(&accepted["listKind"]),
            short_names: strings(&accepted["shortNames"]),
            categories: strings(&accepted["categories"]),
            plural,
            kind,
            scope: if spec["scope"] == "Cluster" {
                Scope::Cluster
            } else {
                Scope::Namespaced
            },
            versions,
            terminating: crd["metadata"]
                .get("deletionTimestamp")
                .is_some_and(|t| !t.is_null()),
        })
    }

    /// The version objects are stored in.
    pub fn storage_version(&self) -> Option<&CustomVersion> {
        self.versions.iter().find(|v| v.storage)
    }

    /// A version by name.
    pub fn version(&self, name: &str) -> Option<&CustomVersion> {
        self.versions.iter().find(|v| v.name == name)
    }

    /// One row of the resource table per served version.
    pub fn resource_infos(&self) -> Vec<ResourceInfo> {
        self.versions
            .iter()
            .filter(|v| v.served)
            .map(|v| self.resource_info(v))
            .collect()
    }

    /// The table row of one version (served or not: the storage version needs one for encoding).
    pub fn resource_info(&self, v: &CustomVersion) -> ResourceInfo {
        let mut subresources = Vec::new();
        if v.scale.is_some() {
            subresources.push(SubresourceInfo {
                name: "scale".into(),
                kind: "Scale".into(),
                group: "autoscaling".into(),
                version: "v1".into(),
                verbs: GET_PATCH_UPDATE.iter().map(|s| (*s).to_string()).collect(),
            });
        }
        if v.status {
            subresources.push(SubresourceInfo {
                name: "status".into(),
                kind: self.kind.clone(),
                group: String::new(),
                version: String::new(),
                verbs: GET_PATCH_UPDATE.iter().map(|s| (*s).to_string()).collect(),
            });
        }
        // Upstream's CR discovery lists the verbs in this fixed, unsorted order
        // (apiextensions-apiserver `pkg/apiserver/customresource_discovery_controller.go`).
        let verbs: Vec<String> = CRUD.iter().map(|s| (*s).to_string()).collect();
        ResourceInfo {
            group: self.group.clone(),
            version: v.name.clone(),
            plural: self.plural.clone(),
            singular: self.singular.clone(),
            kind: self.kind.clone(),
            scope: self.scope,
            verbs,
            short_names: self.short_names.clone(),
            categories: self.categories.clone(),
            subresources,
            storage_version: v.storage,
        }
    }
}

#[cfg(test)]
mod tests;
