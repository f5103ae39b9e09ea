//! The Node authorizer (plugin/pkg/auth/authorizer/node/node_authorizer.go, with
//! AuthorizeNodeWithSelectors on as in 1.33): kubelets (`system:node:<name>` in `system:nodes`)
//! may read the secrets, configmaps, claims, volumes and ServiceAccount tokens of the pods bound
//! to them ([`graph`], kept current by [`feed`]), their own Node and Lease, and what upstream's
//! `NodeRules()` (the `system:node` ClusterRole) grants every node. Anything else gets no
//! opinion, so RBAC decides next; denials carry upstream's reason for the 403 message.

pub mod feed;
pub mod graph;

use std::time::Duration;

use parking_lot::RwLock;
use rkube_apimachinery::selectors::FieldSelector;
use tokio::sync::{Notify, watch};

use crate::attributes::Attributes;
use crate::rules::PolicyRule;
use crate::user::UserInfo;
use graph::{Graph, Kind, Vertex};

/// The group every node's credentials carry (upstream `user.NodesGroup`).
pub const NODES_GROUP: &str = "system:nodes";
/// Node user names are `system:node:<name>`.
pub const NODE_USER_PREFIX: &str = "system:node:";
/// Node Leases live here (upstream `api.NamespaceNodeLease`).
const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// The node a user acts for (upstream `nodeidentifier.NodeIdentity`): `None` for non-nodes,
/// `Some("")` for a node whose name is empty.
pub fn node_identity(user: &UserInfo) -> Option<&str> {
    let name = user.name.strip_prefix(NODE_USER_PREFIX)?;
    user.in_group(NODES_GROUP).then_some(name)
}

/// What the Node authorizer says about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeDecision {
    /// Allowed.
    Allow,
    /// No opinion; the reason (possibly empty) becomes part of the 403 if nothing else allows.
    NoOpinion(String),
}

fn no_opinion(reason: impl Into<String>) -> NodeDecision {
    NodeDecision::NoOpinion(reason.into())
}

fn no_relationship(node: &str) -> NodeDecision {
    no_opinion(format!("no relationship found between node '{node}' and this object"))
}

/// The graph of node relationships and the rules every node has.
pub struct NodeAuthorizer {
    graph: RwLock<Graph>,
    /// `NodeRules()`: the rules of the default `system:node` ClusterRole.
    rules: Vec<PolicyRule>,
    /// The store revision the graph reflects.
    revision: watch::Sender<i64>,
    /// Asks the feed to report its progress.
    pub(crate) progress_wanted: Notify,
}

impl NodeAuthorizer {
    /// An authorizer whose static rules are `rules` (upstream passes `bootstrappolicy.NodeRules()`).
    pub fn new(rules: Vec<PolicyRule>) -> Self {
        Self { graph: RwLock::default(), rules, revision: watch::channel(0).0, progress_wanted: Notify::new() }
    }

    /// Built with the rules of the default `system:node` ClusterRole.
    pub fn with_default_rules() -> Self {
        Self::new(default_node_rules())
    }

    pub(crate) fn replace_graph(&self, graph: Graph, revision: i64) {
        *self.graph.write() = graph;
        self.revision.send_replace(revision);
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut Graph)) {
        f(&mut self.graph.write());
    }

    pub(crate) fn mark(&self, revision: i64) {
        self.revision.send_if_modified(|r| {
            if revision > *r {
                *r = revision;
                true
            } else {
                false
            }
        });
    }

    /// Waits (at most `bound`) until the graph reflects revision `target`; false on timeout or
    /// when it already did.
    pub(crate) async fn catch_up(&self, target: i64, bound: Duration) -> bool {
        let mut rx = self.revision.subscribe();
        if *rx.borrow() >= target {
            return false;
        }
        let wait = async {
            loop {
                self.progress_wanted.notify_one();
                tokio::select! {
                    r = rx.wait_for(|r| *r >= target) => return r.is_ok(),
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                }
            }
        };
        tokio::time::timeout(bound, wait).await.unwrap_or(false)
    }

    /// Decides for a request; non-node users get no opinion.
    pub fn authorize(&self, attrs: &Attributes) -> NodeDecision {
        let Some(node) = node_identity(&attrs.user) else {
            return no_opinion("");
        };
        if node.is_empty() {
            return no_opinion(format!("unknown node for user {:?}", attrs.user.name));
        }
        if attrs.resource_request {
            let decided = match (attrs.api_group.as_str(), attrs.resource.as_str()) {
                ("", "secrets") => Some(self.read_namespaced(node, Kind::Secret, attrs)),
                ("", "configmaps") => Some(self.read_namespaced(node, Kind::ConfigMap, attrs)),
                ("", "persistentvolumeclaims") if attrs.subresource == "status" => Some(self.status_update(node, Kind::Pvc, attrs)),
                ("", "persistentvolumeclaims") => Some(self.get(node, Kind::Pvc, attrs)),
                ("", "persistentvolumes") => Some(self.get(node, Kind::Pv, attrs)),
                ("resource.k8s.io", "resourceclaims") => Some(self.get(node, Kind::ResourceClaim, attrs)),
                ("storage.k8s.io", "volumeattachments") => Some(self.get(node, Kind::VolumeAttachment, attrs)),
                ("", "serviceaccounts") => Some(self.create_token(node, attrs)),
                ("coordination.k8s.io", "leases") => Some(lease(node, attrs)),
                ("storage.k8s.io", "csinodes") => Some(csi_node(node, attrs)),
                ("", "nodes") => Some(node_object(node, attrs)),
                ("", "pods") => Some(self.pod(node, attrs)),
                _ => None,
            };
            if let Some(d) = decided {
                return d;
            }
        }
        if self.rules.iter().any(|r| r.allows(attrs)) {
            return NodeDecision::Allow;
        }
        no_opinion("")
    }

    fn related(&self, node: &str, kind: Kind, attrs: &Attributes) -> NodeDecision {
        if attrs.name.is_empty() {
            return no_opinion("No Object name found");
        }
        if self.graph.read().has_path(&Vertex::new(kind, &attrs.namespace, &attrs.name), node) {
            NodeDecision::Allow
        } else {
            no_relationship(node)
        }
    }

    /// get/list/watch of one named object (the list forms name it with a `metadata.name` field
    /// selector).
    fn read_namespaced(&self, node: &str, kind: Kind, attrs: &Attributes) -> NodeDecision {
        if !matches!(attrs.verb.as_str(), "get" | "list" | "watch") {
            return no_opinion("can only read resources of this type");
        }
        if !attrs.subresource.is_empty() {
            return no_opinion("cannot read subresource");
        }
        if attrs.namespace.is_empty() {
            return no_opinion("can only read namespaced object of this type");
        }
        self.related(node, kind, attrs)
    }

    fn get(&self, node: &str, kind: Kind, attrs: &Attributes) -> NodeDecision {
        if attrs.verb != "get" {
            return no_opinion("can only get individual resources of this type");
        }
        if !attrs.subresource.is_empty() {
            return no_opinion("cannot get subresource");
        }
        self.related(node, kind, attrs)
    }

    fn status_update(&self, node: &str, kind: Kind, attrs: &Attributes) -> NodeDecision {
        if !matches!(attrs.verb.as_str(), "update" | "patch") {
            return no_opinion("can only get/update/patch this type");
        }
        self.related(node, kind, attrs)
    }

    fn create_token(&self, node: &str, attrs: &Attributes) -> NodeDecision {
        if attrs.verb != "create" || attrs.name.is_empty() {
            return no_opinion("can only create tokens for individual service accounts");
        }
        if attrs.subresource != "token" {
            return no_opinion("can only create token subresource of serviceaccount");
        }
        if self.graph.read().has_path(&Vertex::new(Kind::ServiceAccount, &attrs.namespace, &attrs.name), node) {
            NodeDecision::Allow
        } else {
            no_relationship(node)
        }
    }

    fn pod(&self, node: &str, attrs: &Attributes) -> NodeDecision {
        match (attrs.subresource.as_str(), attrs.verb.as_str()) {
            ("", "get") => self.get(node, Kind::Pod, attrs),
            ("", "list" | "watch") => {
                let scoped = FieldSelector::parse(&attrs.field_selector)
                    .ok()
                    .is_some_and(|fs| fs.requires_exact_match("spec.nodeName") == Some(node));
                if scoped {
                    NodeDecision::Allow
                } else if !attrs.name.is_empty() {
                    self.related(node, Kind::Pod, attrs)
                } else {
                    no_opinion("can only list/watch pods with spec.nodeName field selector")
                }
            }
            // Mirror pods, pod status and evictions: NodeRestriction limits them to this node's pods.
            ("", "create" | "delete") | ("status", "update" | "patch") | ("eviction", "create") => NodeDecision::Allow,
            _ => no_opinion(""),
        }
    }
}

/// A node's own Node object (its status and writes are left to NodeRestriction).
fn node_object(node: &str, attrs: &Attributes) -> NodeDecision {
    match (attrs.subresource.as_str(), attrs.verb.as_str()) {
        ("", "create" | "update" | "patch") | ("status", "update" | "patch") => NodeDecision::Allow,
        ("", "get" | "list" | "watch") => match attrs.name.as_str() {
            n if n == node => NodeDecision::Allow,
            "" => no_opinion(format!("node '{node}' cannot read all nodes, only its own Node object")),
            other => no_opinion(format!("node '{node}' cannot read '{other}', only its own Node object")),
        },
        _ => no_opinion(""),
    }
}

/// The node's own Lease in kube-node-lease.
fn lease(node: &str, attrs: &Attributes) -> NodeDecision {
    if !matches!(attrs.verb.as_str(), "get" | "create" | "update" | "patch" | "delete") {
        return no_opinion("can only get, create, update, patch, or delete a node lease");
    }
    if attrs.namespace != NODE_LEASE_NAMESPACE {
        return no_opinion(format!("can only access leases in the {NODE_LEASE_NAMESPACE:?} system namespace"));
    }
    // The name is unknown on create; NodeRestriction checks it there.
    if attrs.verb != "create" && attrs.name != node {
        return no_opinion("can only access node lease with the same name as the requesting node");
    }
    NodeDecision::Allow
}

fn csi_node(node: &str, attrs: &Attributes) -> NodeDecision {
    if !matches!(attrs.verb.as_str(), "get" | "create" | "update" | "patch" | "delete") {
        return no_opinion("can only get, create, update, patch, or delete a CSINode");
    }
    if !attrs.subresource.is_empty() {
        return no_opinion("cannot authorize CSINode subresources");
    }
    if attrs.verb != "create" && attrs.name != node {
        return no_opinion("can only access CSINode with the same name as the requesting node");
    }
    NodeDecision::Allow
}

/// The rules of the default `system:node` ClusterRole, which are upstream's `NodeRules()`.
fn default_node_rules() -> Vec<PolicyRule> {
    let objects = match crate::bootstrap_policy::default_objects() {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "default policy unreadable; nodes get no static rules");
            return Vec::new();
        }
    };
    objects
        .into_iter()
        .find(|o| o.plural == "clusterroles" && o.object["metadata"]["name"] == "system:node")
        .and_then(|o| serde_json::from_value(o.object["rules"].clone()).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node_user(name: &str) -> UserInfo {
        UserInfo::new(format!("system:node:{name}"), vec![NODES_GROUP.into(), "system:authenticated".into()])
    }

    fn authz() -> NodeAuthorizer {
        let a = NodeAuthorizer::with_default_rules();
        assert!(!a.rules.is_empty());
        a.update(|g| {
            g.set_pod(&json!({"metadata": {"namespace": "default", "name": "web"},
                "spec": {"nodeName": "n1", "serviceAccountName": "sa1", "volumes": [{"name": "s", "secret": {"secretName": "s1"}}]}}));
            g.set_pod(&json!({"metadata": {"namespace": "default", "name": "other"},
                "spec": {"nodeName": "n2", "volumes": [{"name": "s", "secret": {"secretName": "s2"}}]}}));
        });
        a
    }

    fn ask(user: UserInfo, verb: &str, group: &str, resource: &str, ns: &str, name: &str) -> Attributes {
        Attributes::resource(user, verb, group, resource, ns, name)
    }

    #[test]
    fn secrets_follow_the_graph_with_upstream_reasons() {
        let a = authz();
        let n1 = node_user("n1");
        assert_eq!(a.authorize(&ask(n1.clone(), "get", "", "secrets", "default", "s1")), NodeDecision::Allow);
        assert_eq!(a.authorize(&ask(n1.clone(), "watch", "", "secrets", "default", "s1")), NodeDecision::Allow);
        assert_eq!(a.authorize(&ask(n1.clone(), "get", "", "secrets", "default", "s2")), no_relationship("n1"));
        assert_eq!(a.authorize(&ask(n1.clone(), "list", "", "secrets", "default", "")), no_opinion("No Object name found"));
        assert_eq!(a.authorize(&ask(n1.clone(), "update", "", "secrets", "default", "s1")), no_opinion("can only read resources of this type"));
        let mut tok = ask(n1.clone(), "create", "", "serviceaccounts", "default", "sa1");
        tok.subresource = "token".into();
        assert_eq!(a.authorize(&tok), NodeDecision::Allow);
        // Non-nodes and users merely named like nodes get no opinion.
        assert_eq!(a.authorize(&ask(UserInfo::new("system:node:n1", vec![]), "get", "", "secrets", "default", "s1")), no_opinion(""));
        let nameless = UserInfo::new("system:node:", vec![NODES_GROUP.into()]);
        assert_eq!(a.authorize(&ask(nameless, "get", "", "nodes", "", "n1")), no_opinion("unknown node for user \"system:node:\""));
    }

    #[test]
    fn own_node_own_lease_and_static_rules() {
        let a = authz();
        let n1 = node_user("n1");
        assert_eq!(a.authorize(&ask(n1.clone(), "get", "", "nodes", "", "n1")), NodeDecision::Allow);
        assert_eq!(a.authorize(&ask(n1.clone(), "get", "", "nodes", "", "n2")), no_opinion("node 'n1' cannot read 'n2', only its own Node object"));
        assert_eq!(a.authorize(&ask(n1.clone(), "list", "", "nodes", "", "")), no_opinion("node 'n1' cannot read all nodes, only its own Node object"));
        assert_eq!(a.authorize(&ask(n1.clone(), "update", "coordination.k8s.io", "leases", "kube-node-lease", "n1")), NodeDecision::Allow);
        assert_eq!(
            a.authorize(&ask(n1.clone(), "update", "coordination.k8s.io", "leases", "kube-node-lease", "n2")),
            no_opinion("can only access node lease with the same name as the requesting node")
        );
        assert_eq!(
            a.authorize(&ask(n1.clone(), "get", "coordination.k8s.io", "leases", "default", "n1")),
            no_opinion("can only access leases in the \"kube-node-lease\" system namespace")
        );
        assert_eq!(a.authorize(&ask(n1.clone(), "create", "", "events", "default", "")), NodeDecision::Allow);
        assert_eq!(a.authorize(&ask(n1.clone(), "list", "certificates.k8s.io", "certificatesigningrequests", "", "")), NodeDecision::Allow);
        assert_eq!(a.authorize(&ask(n1.clone(), "delete", "apps", "deployments", "default", "x")), no_opinion(""));
        // Pods: own pods by name, list/watch only scoped to this node.
        assert_eq!(a.authorize(&ask(n1.clone(), "get", "", "pods", "default", "web")), NodeDecision::Allow);
        assert_eq!(a.authorize(&ask(n1.clone(), "get", "", "pods", "default", "other")), no_relationship("n1"));
        let mut list = ask(n1.clone(), "list", "", "pods", "", "");
        assert_eq!(a.authorize(&list), no_opinion("can only list/watch pods with spec.nodeName field selector"));
        list.field_selector = "spec.nodeName=n1".into();
        assert_eq!(a.authorize(&list), NodeDecision::Allow);
        list.field_selector = "spec.nodeName=n2".into();
        assert_ne!(a.authorize(&list), NodeDecision::Allow);
    }
}
