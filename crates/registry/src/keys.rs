//! Storage key layout: `/registry/<group|core>/<plural>/[<namespace>/]<name>`.
//!
//! The first four segments form the watch cache's bucket (`/registry/apps/deployments/`), so one
//! resource's events share one window.

use rkube_apimachinery::ResourceInfo;

/// The group segment: `core` for the legacy group.
fn group_segment(group: &str) -> &str {
    if group.is_empty() { "core" } else { group }
}

/// Prefix of every object of the resource (all namespaces).
pub fn resource_prefix(group: &str, plural: &str) -> String {
    // events.k8s.io Events share storage with core Events, as upstream stores both under
    // /registry/events.
    let group = if group == "events.k8s.io" && plural == "events" { "" } else { group };
    format!("/registry/{}/{}/", group_segment(group), plural)
}

/// Prefix of the resource's objects in one namespace, or all objects when `namespace` is None.
pub fn list_prefix(res: &ResourceInfo, namespace: Option<&str>) -> String {
    let mut p = resource_prefix(&res.group, &res.plural);
    if let (true, Some(ns)) = (res.namespaced(), namespace) {
        p.push_str(ns);
        p.push('/');
    }
    p
}

/// Key of one object.
pub fn object_key(res: &ResourceInfo, namespace: Option<&str>, name: &str) -> String {
    let mut k = list_prefix(res, namespace);
    k.push_str(name);
    k
}
