//! Which objects each node may read: upstream's node authorizer graph
//! (plugin/pkg/auth/authorizer/node/graph.go). Edges point from an object to what uses it —
//! secret → pod, pvc → pod, pv → pvc, pod → node, volumeattachment → node — so an object is
//! reachable by a node when a path leads from it to that node.
//!
//! A vertex exists while an edge touches it; when an object is removed or changes, its own
//! edges are replaced and vertices left without edges disappear, as upstream prunes orphans.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

/// What a vertex stands for (upstream `vertexType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    ConfigMap,
    Node,
    Pod,
    Pv,
    Pvc,
    ResourceClaim,
    Secret,
    ServiceAccount,
    VolumeAttachment,
}

/// One object in the graph; cluster-scoped objects have an empty namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Vertex {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

impl Vertex {
    pub fn new(kind: Kind, namespace: &str, name: &str) -> Self {
        Self { kind, namespace: namespace.to_string(), name: name.to_string() }
    }
}

/// The relationships between nodes and the objects their pods use.
#[derive(Debug, Default)]
pub struct Graph {
    /// from → the vertices it leads to.
    out: HashMap<Vertex, HashSet<Vertex>>,
    /// to → the vertices leading to it.
    incoming: HashMap<Vertex, HashSet<Vertex>>,
}

impl Graph {
    fn add_edge(&mut self, from: Vertex, to: Vertex) {
        self.incoming.entry(to.clone()).or_default().insert(from.clone());
        self.out.entry(from).or_default().insert(to);
    }

    fn remove_edge(&mut self, from: &Vertex, to: &Vertex) {
        if let Some(set) = self.out.get_mut(from) {
            set.remove(to);
            if set.is_empty() {
                self.out.remove(from);
            }
        }
        if let Some(set) = self.incoming.get_mut(to) {
            set.remove(from);
            if set.is_empty() {
                self.incoming.remove(to);
            }
        }
    }

    /// Removes every edge into and out of `v`; vertices left without edges are gone with them.
    fn detach(&mut self, v: &Vertex) {
        for from in self.incoming.get(v).cloned().unwrap_or_default() {
            self.remove_edge(&from, v);
        }
        for to in self.out.get(v).cloned().unwrap_or_default() {
            self.remove_edge(v, &to);
        }
    }

    /// Whether `v` is known (touched by any edge).
    pub fn contains(&self, v: &Vertex) -> bool {
        self.out.contains_key(v) || self.incoming.contains_key(v)
    }

    /// Whether a path leads from `start` to node `node` (upstream `hasPathFrom`).
    pub fn has_path(&self, start: &Vertex, node: &str) -> bool {
        let target = Vertex::new(Kind::Node, "", node);
        if !self.contains(&target) || !self.contains(start) {
            return false;
        }
        let mut seen: HashSet<&Vertex> = HashSet::new();
        let mut stack = vec![start];
        while let Some(v) = stack.pop() {
            if *v == target {
                return true;
            }
            if !seen.insert(v) {
                continue;
            }
            for next in self.out.get(v).into_iter().flatten() {
                // Node vertices have no out-edges; other nodes are dead ends.
                if next.kind != Kind::Node || *next == target {
                    stack.push(next);
                }
            }
        }
        false
    }

    /// Adds or replaces a pod (upstream `AddPod`): pods not bound to a node are not in the graph.
    pub fn set_pod(&mut self, pod: &Value) {
        let namespace = text(&pod["metadata"]["namespace"]);
        let name = text(&pod["metadata"]["name"]);
        let v = Vertex::new(Kind::Pod, &namespace, &name);
        self.detach(&v);
        let node = text(&pod["spec"]["nodeName"]);
        if node.is_empty() {
            return;
        }
        self.add_edge(v.clone(), Vertex::new(Kind::Node, "", &node));
        let refs = pod_references(pod);
        for (kind, target) in refs {
            self.add_edge(Vertex::new(kind, &namespace, &target), v.clone());
        }
    }

    /// Removes a pod.
    pub fn delete_pod(&mut self, namespace: &str, name: &str) {
        self.detach(&Vertex::new(Kind::Pod, namespace, name));
    }

    /// Adds or replaces a PersistentVolume (upstream `AddPV`): pv → its bound claim, and the
    /// secrets of its volume source → pv.
    pub fn set_pv(&mut self, pv: &Value) {
        let name = text(&pv["metadata"]["name"]);
        let v = Vertex::new(Kind::Pv, "", &name);
        self.detach(&v);
        let claim = &pv["spec"]["claimRef"];
        let (claim_ns, claim_name) = (text(&claim["namespace"]), text(&claim["name"]));
        if claim_name.is_empty() {
            return;
        }
        self.add_edge(v.clone(), Vertex::new(Kind::Pvc, &claim_ns, &claim_name));
        for (ns, secret) in pv_secrets(&pv["spec"], &claim_ns) {
            self.add_edge(Vertex::new(Kind::Secret, &ns, &secret), v.clone());
        }
    }

    /// Removes a PersistentVolume.
    pub fn delete_pv(&mut self, name: &str) {
        self.detach(&Vertex::new(Kind::Pv, "", name));
    }

    /// Adds or replaces a VolumeAttachment: va → its node.
    pub fn set_volume_attachment(&mut self, va: &Value) {
        let name = text(&va["metadata"]["name"]);
        let v = Vertex::new(Kind::VolumeAttachment, "", &name);
        self.detach(&v);
        let node = text(&va["spec"]["nodeName"]);
        if !node.is_empty() {
            self.add_edge(v, Vertex::new(Kind::Node, "", &node));
        }
    }

    /// Removes a VolumeAttachment.
    pub fn delete_volume_attachment(&mut self, name: &str) {
        self.detach(&Vertex::new(Kind::VolumeAttachment, "", name));
    }

    /// Whether the graph is empty.
    pub fn is_empty(&self) -> bool {
        self.out.is_empty() && self.incoming.is_empty()
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn push_named(out: &mut Vec<(Kind, String)>, kind: Kind, name: &Value) {
    if let Some(n) = name.as_str().filter(|n| !n.is_empty()) {
        out.push((kind, n.to_string()));
    }
}

/// The objects a pod uses (upstream `podutil.VisitPodSecretNames`/`VisitPodConfigmapNames`,
/// claims and ephemeral volumes, resource claims, its ServiceAccount).
fn pod_references(pod: &Value) -> Vec<(Kind, String)> {
    let spec = &pod["spec"];
    let mut refs = Vec::new();
    push_named(&mut refs, Kind::ServiceAccount, &spec["serviceAccountName"]);
    for s in spec["imagePullSecrets"].as_array().into_iter().flatten() {
        push_named(&mut refs, Kind::Secret, &s["name"]);
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for c in spec[list].as_array().into_iter().flatten() {
            for from in c["envFrom"].as_array().into_iter().flatten() {
                push_named(&mut refs, Kind::Secret, &from["secretRef"]["name"]);
                push_named(&mut refs, Kind::ConfigMap, &from["configMapRef"]["name"]);
            }
            for env in c["env"].as_array().into_iter().flatten() {
                push_named(&mut refs, Kind::Secret, &env["valueFrom"]["secretKeyRef"]["name"]);
                push_named(&mut refs, Kind::ConfigMap, &env["valueFrom"]["configMapKeyRef"]["name"]);
            }
        }
    }
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    for vol in spec["volumes"].as_array().into_iter().flatten() {
        push_named(&mut refs, Kind::Secret, &vol["secret"]["secretName"]);
        push_named(&mut refs, Kind::ConfigMap, &vol["configMap"]["name"]);
        for source in vol["projected"]["sources"].as_array().into_iter().flatten() {
            push_named(&mut refs, Kind::Secret, &source["secret"]["name"]);
            push_named(&mut refs, Kind::ConfigMap, &source["configMap"]["name"]);
        }
        push_named(&mut refs, Kind::Secret, &vol["azureFile"]["secretName"]);
        push_named(&mut refs, Kind::Secret, &vol["csi"]["nodePublishSecretRef"]["name"]);
        for plugin in ["cephfs", "cinder", "flexVolume", "iscsi", "rbd", "scaleIO", "storageos"] {
            push_named(&mut refs, Kind::Secret, &vol[plugin]["secretRef"]["name"]);
        }
        push_named(&mut refs, Kind::Pvc, &vol["persistentVolumeClaim"]["claimName"]);
        // A generic ephemeral volume's claim is named `<pod>-<volume>` (upstream
        // `ephemeral.VolumeClaimName`).
        if vol.get("ephemeral").is_some_and(|e| !e.is_null())
            && let Some(vname) = vol["name"].as_str()
        {
            refs.push((Kind::Pvc, format!("{pod_name}-{vname}")));
        }
    }
    for claim in spec["resourceClaims"].as_array().into_iter().flatten() {
        push_named(&mut refs, Kind::ResourceClaim, &claim["resourceClaimName"]);
    }
    // Claims generated from templates are named in the status.
    for status in pod["status"]["resourceClaimStatuses"].as_array().into_iter().flatten() {
        push_named(&mut refs, Kind::ResourceClaim, &status["resourceClaimName"]);
    }
    refs
}

/// The secrets a PersistentVolume's source names, with their namespaces (upstream
/// `pvutil.VisitPVSecretNames`).
fn pv_secrets(spec: &Value, claim_namespace: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut push = |ns: &Value, default_ns: &str, name: &Value| {
        if let Some(n) = name.as_str().filter(|n| !n.is_empty()) {
            let ns = ns.as_str().filter(|s| !s.is_empty()).unwrap_or(default_ns);
            out.push((ns.to_string(), n.to_string()));
        }
    };
    // azureFile defaults to the claim's namespace when secretNamespace is unset.
    push(&spec["azureFile"]["secretNamespace"], claim_namespace, &spec["azureFile"]["secretName"]);
    for plugin in ["cephfs", "cinder", "flexVolume", "iscsi", "rbd", "scaleIO", "storageos"] {
        let r = &spec[plugin]["secretRef"];
        // cephfs and cinder/flex refs default to the claim's namespace, others to "default".
        let default_ns = if matches!(plugin, "cephfs" | "flexVolume") { claim_namespace } else { "default" };
        push(&r["namespace"], default_ns, &r["name"]);
    }
    for field in ["controllerPublishSecretRef", "nodeStageSecretRef", "nodePublishSecretRef", "controllerExpandSecretRef", "nodeExpandSecretRef"] {
        let r = &spec["csi"][field];
        push(&r["namespace"], "", &r["name"]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(ns: &str, name: &str, node: &str, spec: Value) -> Value {
        let mut spec = spec;
        spec["nodeName"] = json!(node);
        json!({"metadata": {"namespace": ns, "name": name}, "spec": spec})
    }

    fn secret(ns: &str, name: &str) -> Vertex {
        Vertex::new(Kind::Secret, ns, name)
    }

    #[test]
    fn a_node_reaches_what_its_pods_use_and_nothing_else() {
        let mut g = Graph::default();
        g.set_pod(&pod(
            "default",
            "web",
            "n1",
            json!({
                "serviceAccountName": "web-sa",
                "imagePullSecrets": [{"name": "pull"}],
                "containers": [{"name": "c", "env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "env-secret", "key": "k"}}}],
                                "envFrom": [{"configMapRef": {"name": "env-cm"}}]}],
                "volumes": [
                    {"name": "s", "secret": {"secretName": "vol-secret"}},
                    {"name": "p", "projected": {"sources": [{"configMap": {"name": "proj-cm"}}]}},
                    {"name": "d", "persistentVolumeClaim": {"claimName": "data"}},
                    {"name": "e", "ephemeral": {"volumeClaimTemplate": {}}}
                ]
            }),
        ));
        g.set_pod(&pod("default", "other", "n2", json!({"volumes": [{"name": "s", "secret": {"secretName": "n2-only"}}]})));
        for s in ["pull", "env-secret", "vol-secret"] {
            assert!(g.has_path(&secret("default", s), "n1"), "{s}");
            assert!(!g.has_path(&secret("default", s), "n2"), "{s}");
        }
        assert!(g.has_path(&Vertex::new(Kind::ConfigMap, "default", "env-cm"), "n1"));
        assert!(g.has_path(&Vertex::new(Kind::ConfigMap, "default", "proj-cm"), "n1"));
        assert!(g.has_path(&Vertex::new(Kind::Pvc, "default", "data"), "n1"));
        assert!(g.has_path(&Vertex::new(Kind::Pvc, "default", "web-e"), "n1"));
        assert!(g.has_path(&Vertex::new(Kind::ServiceAccount, "default", "web-sa"), "n1"));
        assert!(!g.has_path(&secret("default", "n2-only"), "n1"));
        assert!(g.has_path(&secret("default", "n2-only"), "n2"));
        // Same name in another namespace is another object.
        assert!(!g.has_path(&secret("other", "vol-secret"), "n1"));
    }

    #[test]
    fn pvs_chain_through_their_claims() {
        let mut g = Graph::default();
        g.set_pod(&pod("ns", "db", "n1", json!({"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]})));
        g.set_pv(&json!({"metadata": {"name": "pv1"}, "spec": {"claimRef": {"namespace": "ns", "name": "data"},
            "csi": {"driver": "x", "volumeHandle": "h", "nodePublishSecretRef": {"namespace": "creds", "name": "csi-secret"}}}}));
        assert!(g.has_path(&Vertex::new(Kind::Pv, "", "pv1"), "n1"));
        assert!(g.has_path(&secret("creds", "csi-secret"), "n1"));
        g.delete_pv("pv1");
        assert!(!g.has_path(&Vertex::new(Kind::Pv, "", "pv1"), "n1"));
        assert!(!g.has_path(&secret("creds", "csi-secret"), "n1"));
    }

    #[test]
    fn unbinding_moving_and_deleting_pods_update_reachability_and_prune_orphans() {
        let mut g = Graph::default();
        let p = pod("default", "web", "n1", json!({"volumes": [{"name": "s", "secret": {"secretName": "s1"}}]}));
        g.set_pod(&p);
        assert!(g.has_path(&secret("default", "s1"), "n1"));
        // A second pod on n2 using the same secret: both nodes reach it.
        g.set_pod(&pod("default", "web2", "n2", json!({"volumes": [{"name": "s", "secret": {"secretName": "s1"}}]})));
        assert!(g.has_path(&secret("default", "s1"), "n2"));
        g.delete_pod("default", "web2");
        assert!(!g.has_path(&secret("default", "s1"), "n2"));
        assert!(g.has_path(&secret("default", "s1"), "n1"));
        g.delete_pod("default", "web");
        assert!(!g.has_path(&secret("default", "s1"), "n1"));
        assert!(g.is_empty(), "orphans left: {g:?}");
        // Unscheduled pods give nodes nothing.
        g.set_pod(&pod("default", "pending", "", json!({"volumes": [{"name": "s", "secret": {"secretName": "s1"}}]})));
        assert!(g.is_empty());
    }

    #[test]
    fn volume_attachments_lead_to_their_node() {
        let mut g = Graph::default();
        g.set_volume_attachment(&json!({"metadata": {"name": "va1"}, "spec": {"nodeName": "n1"}}));
        assert!(g.has_path(&Vertex::new(Kind::VolumeAttachment, "", "va1"), "n1"));
        assert!(!g.has_path(&Vertex::new(Kind::VolumeAttachment, "", "va1"), "n2"));
        g.delete_volume_attachment("va1");
        assert!(g.is_empty());
    }
}
