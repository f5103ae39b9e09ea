//! Discovery documents: `/api`, `/apis`, `/apis/<group>`, `/api/v1`, `/apis/<group>/<version>`,
//! in the legacy form (APIVersions, APIGroupList, APIGroup, APIResourceList) and the aggregated
//! form kubectl >=1.30 asks for (`apidiscovery.k8s.io/v2` APIGroupDiscoveryList).

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use rkube_apimachinery::ResourceInfo;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The order upstream's `/apis` lists groups in (aggregator group priorities).
const GROUP_ORDER: &[&str] = &[
    "apiregistration.k8s.io",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
    "flowcontrol.apiserver.k8s.io",
];

/// The media type of aggregated discovery v2 responses.
pub const AGGREGATED_V2: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether the Accept header asks for aggregated discovery v2 before anything else.
pub fn wants_aggregated(accept: Option<&str>) -> bool {
    let Some(a) = accept else { return false };
    for part in a.split(',') {
        let p: Vec<&str> = part.split(';').map(str::trim).collect();
        if p.first() != Some(&"application/json") {
            return false;
        }
        let has = |kv: &str| p.iter().any(|x| x.replace(' ', "") == kv);
        if has("g=apidiscovery.k8s.io") && has("as=APIGroupDiscoveryList") {
            if has("v=v2") {
                return true;
            }
            continue; // v2beta1 is not served by 1.33; try the next range
        }
        return false;
    }
    false
}

/// A group with its versions, preferred version first.
pub struct GroupView {
    /// Group name.
    pub name: String,
    /// Versions, preferred first, each with its resources.
    pub versions: Vec<(String, Vec<Arc<ResourceInfo>>)>,
}

/// Groups (core excluded) in upstream's order, from the resource table.
pub fn groups(resources: &[Arc<ResourceInfo>]) -> Vec<GroupView> {
    let mut by_group: BTreeMap<String, Vec<(String, Vec<Arc<ResourceInfo>>)>> = BTreeMap::new();
    for r in resources.iter().filter(|r| !r.group.is_empty()) {
        let versions = by_group.entry(r.group.clone()).or_default();
        match versions.iter_mut().find(|(v, _)| *v == r.version) {
            Some((_, list)) => list.push(r.clone()),
            None => versions.push((r.version.clone(), vec![r.clone()])),
        }
    }
    let mut out: Vec<GroupView> = by_group
        .into_iter()
        .map(|(name, mut versions)| {
            // The preferred version is the one objects are stored in.
            versions.sort_by_key(|(_, rs)| !rs.iter().any(|r| r.storage_version));
            GroupView { name, versions }
        })
        .collect();
    out.sort_by_key(|g| GROUP_ORDER.iter().position(|x| *x == g.name).unwrap_or(GROUP_ORDER.len()));
    out
}

fn gv(group: &str, version: &str) -> String {
    if group.is_empty() { version.to_string() } else { format!("{group}/{version}") }
}

/// `storageVersionHash`: an opaque hash of the storage group/version/kind
/// (apiserver `pkg/endpoints/discovery/storageversionhash.go`: base64 of the first 8 bytes of the
/// SHA-256 of "group/version/kind").
fn storage_version_hash(r: &ResourceInfo) -> String {
    let digest = Sha256::digest(format!("{}/{}/{}", r.group, r.version, r.kind).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(&digest[..8])
}

/// `GET /api` (legacy).
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_json(g: &GroupView) -> Value {
    let versions: Vec<Value> =
        g.versions.iter().map(|(v, _)| json!({"groupVersion": gv(&g.name, v), "version": v})).collect();
    let preferred = versions.first().cloned().unwrap_or(Value::Null);
    json!({"name": g.name, "versions": versions, "preferredVersion": preferred})
}

/// `GET /apis` (legacy).
pub fn api_group_list(resources: &[Arc<ResourceInfo>]) -> Value {
    let groups: Vec<Value> = groups(resources).iter().map(group_json).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/<group>`.
pub fn api_group(resources: &[Arc<ResourceInfo>], group: &str) -> Option<Value> {
    let g = groups(resources).into_iter().find(|g| g.name == group)?;
    let mut v = group_json(&g);
    if let Some(o) = v.as_object_mut() {
        o.insert("kind".into(), json!("APIGroup"));
        o.insert("apiVersion".into(), json!("v1"));
    }
    Some(v)
}

/// `GET /api/v1` or `/apis/<group>/<version>`.
pub fn api_resource_list(resources: &[Arc<ResourceInfo>], group: &str, version: &str) -> Option<Value> {
    let in_gv: Vec<&Arc<ResourceInfo>> = resources.iter().filter(|r| r.group == group && r.version == version).collect();
    if in_gv.is_empty() {
        return None;
    }
    let mut list = Vec::new();
    for r in in_gv {
        let mut e = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced(),
            "kind": r.kind,
            "verbs": r.verbs,
        });
        if let Some(o) = e.as_object_mut() {
            if !r.short_names.is_empty() {
                o.insert("shortNames".into(), json!(r.short_names));
            }
            if !r.categories.is_empty() {
                o.insert("categories".into(), json!(r.categories));
            }
            if !r.verbs.is_empty() {
                o.insert("storageVersionHash".into(), json!(storage_version_hash(r)));
            }
        }
        list.push(e);
        for s in &r.subresources {
            let mut e = json!({
                "name": format!("{}/{}", r.plural, s.name),
                "singularName": "",
                "namespaced": r.namespaced(),
                "kind": s.kind,
                "verbs": s.verbs,
            });
            // A subresource of another group/version names both, as upstream's
            // `GroupVersionKindProvider` does (`pods/eviction` → policy/v1): kubectl drain
            // only uses evictions when it finds both.
            let other_gv = (!s.group.is_empty() && s.group != r.group) || (!s.version.is_empty() && s.version != r.version);
            if let Some(o) = e.as_object_mut().filter(|_| other_gv) {
                o.insert("group".into(), json!(s.group));
                o.insert("version".into(), json!(s.version));
            }
            list.push(e);
        }
    }
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv(group, version), "resources": list}))
}

fn aggregated_version(version: &str, resources: &[Arc<ResourceInfo>]) -> Value {
    let res: Vec<Value> = resources
        .iter()
        .map(|r| {
            let mut e = json!({
                "resource": r.plural,
                "responseKind": {"group": "", "version": "", "kind": r.kind},
                "scope": if r.namespaced() { "Namespaced" } else { "Cluster" },
                "singularResource": r.singular,
                "verbs": r.verbs,
            });
            if let Some(o) = e.as_object_mut() {
                if !r.short_names.is_empty() {
                    o.insert("shortNames".into(), json!(r.short_names));
                }
                if !r.categories.is_empty() {
                    o.insert("categories".into(), json!(r.categories));
                }
                if !r.subresources.is_empty() {
                    let subs: Vec<Value> = r
                        .subresources
                        .iter()
                        .map(|s| {
                            let (g, v) = if s.group.is_empty() && s.version.is_empty() || (s.group == r.group && s.version == r.version) {
                                (String::new(), String::new())
                            } else {
                                (s.group.clone(), s.version.clone())
                            };
                            json!({"subresource": s.name, "responseKind": {"group": g, "version": v, "kind": s.kind}, "verbs": s.verbs})
                        })
                        .collect();
                    o.insert("subresources".into(), Value::Array(subs));
                }
            }
            e
        })
        .collect();
    json!({"version": version, "resources": res, "freshness": "Current"})
}

/// Aggregated discovery for `/api` (core) or `/apis` (every group).
pub fn aggregated(resources: &[Arc<ResourceInfo>], core: bool) -> Value {
    let items: Vec<Value> = if core {
        let core_res: Vec<Arc<ResourceInfo>> = resources.iter().filter(|r| r.group.is_empty()).cloned().collect();
        vec![json!({"metadata": {"creationTimestamp": null}, "versions": [aggregated_version("v1", &core_res)]})]
    } else {
        groups(resources)
            .iter()
            .map(|g| {
                let versions: Vec<Value> = g.versions.iter().map(|(v, rs)| aggregated_version(v, rs)).collect();
                json!({"metadata": {"name": g.name, "creationTimestamp": null}, "versions": versions})
            })
            .collect()
    };
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregated_accept_detection() {
        let a = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert!(wants_aggregated(Some(a)));
        let old = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert!(!wants_aggregated(Some(old)));
        assert!(!wants_aggregated(Some("application/json, */*")));
    }
}
