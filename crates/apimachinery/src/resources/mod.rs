//! The table of resources rkube serves, with upstream's names, scope, verbs and aliases.
//!
//! [`builtin::builtin_resources`] lists every built-in resource of Kubernetes 1.33 for the groups
//! rkube serves; custom resources are added at run time as more [`ResourceInfo`] values.

pub mod builtin;

/// Whether a resource lives in a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `/api/v1/namespaces/{ns}/pods/{name}`
    Namespaced,
    /// `/api/v1/nodes/{name}`
    Cluster,
}

/// A group, version and plural resource name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupVersionResource {
    /// API group, empty for core.
    pub group: String,
    /// API version, e.g. `v1`.
    pub version: String,
    /// Plural resource name, e.g. `deployments`.
    pub resource: String,
}

/// A subresource served under a resource, e.g. `pods/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubresourceInfo {
    /// Name after the slash, e.g. `status`, `scale`, `log`.
    pub name: String,
    /// Kind of the request/response object, e.g. `Pod`, `Scale`.
    pub kind: String,
    /// Group of that kind when it differs from the parent (e.g. `autoscaling` for `Scale`).
    pub group: String,
    /// Version of that kind when it differs from the parent.
    pub version: String,
    /// Verbs allowed on the subresource.
    pub verbs: Vec<String>,
}

/// One served resource in one group-version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceInfo {
    /// API group, empty for core.
    pub group: String,
    /// API version.
    pub version: String,
    /// Plural, lower case (`deployments`).
    pub plural: String,
    /// Singular, lower case (`deployment`).
    pub singular: String,
    /// Kind (`Deployment`).
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub scope: Scope,
    /// Verbs as upstream discovery lists them, in upstream's order
    /// (`create`, `delete`, `deletecollection`, `get`, `list`, `patch`, `update`, `watch`).
    pub verbs: Vec<String>,
    /// Short names (`deploy`).
    pub short_names: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// Subresources.
    pub subresources: Vec<SubresourceInfo>,
    /// Whether this group-version is the preferred (storage) version for the group-resource.
    /// Objects are stored in this version; other versions are converted on the way in and out.
    pub storage_version: bool,
}

impl ResourceInfo {
    /// `apps/v1` or `v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    /// The GVR.
    pub fn gvr(&self) -> GroupVersionResource {
        GroupVersionResource { group: self.group.clone(), version: self.version.clone(), resource: self.plural.clone() }
    }

    /// Whether the verb is allowed on the resource itself.
    pub fn allows(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// Finds a subresource by name.
    pub fn subresource(&self, name: &str) -> Option<&SubresourceInfo> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// Whether the resource is namespaced.
    pub fn namespaced(&self) -> bool {
        self.scope == Scope::Namespaced
    }
}
