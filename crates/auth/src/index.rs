//! The RBAC objects held in memory, with bindings indexed by subject so that finding a user's
//! rules costs what the user is bound to, not the size of the cluster (upstream's authorizer
//! scans informer caches; `pkg/registry/rbac/validation/rule.go` `VisitRulesFor` is the order
//! and the error texts followed here).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use crate::rules::PolicyRule;
use crate::user::{UserInfo, split_service_account_username};

/// The storage prefix of every RBAC object.
pub const RBAC_PREFIX: &str = "/registry/rbac.authorization.k8s.io/";

/// `roleRef`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleRef {
    /// `Role` or `ClusterRole`.
    #[serde(default)]
    pub kind: String,
    /// Role name.
    #[serde(default)]
    pub name: String,
    /// `rbac.authorization.k8s.io`.
    #[serde(default)]
    pub api_group: String,
}

/// A binding subject.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct Subject {
    /// `User`, `Group` or `ServiceAccount`.
    #[serde(default)]
    pub kind: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// ServiceAccount namespace (defaults to the binding's).
    #[serde(default)]
    pub namespace: String,
}

impl Subject {
    /// `Group "system:masters"`, `ServiceAccount "name/ns"` (upstream `describeSubject`).
    pub fn describe(&self, binding_namespace: &str) -> String {
        if self.kind == "ServiceAccount" {
            let ns = if self.namespace.is_empty() { binding_namespace } else { &self.namespace };
            return format!("{} {:?}", self.kind, format!("{}/{ns}", self.name));
        }
        format!("{} {:?}", self.kind, self.name)
    }
}

/// A RoleBinding or ClusterRoleBinding.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Binding {
    /// Name.
    pub name: String,
    /// Namespace (empty for ClusterRoleBindings).
    pub namespace: String,
    /// The granted role.
    pub role_ref: RoleRef,
    /// Who it is granted to.
    pub subjects: Vec<Subject>,
}

/// The rules of a Role or ClusterRole.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoleRules {
    /// Rules, in order.
    pub rules: Vec<PolicyRule>,
}

/// How a subject is looked up.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum SubjectKey {
    User(String),
    Group(String),
    ServiceAccount(String, String),
}

impl SubjectKey {
    /// The key of a subject of a binding in `binding_namespace`; None when it can never match.
    fn of(subject: &Subject, binding_namespace: &str) -> Option<Self> {
        match subject.kind.as_str() {
            "User" => Some(Self::User(subject.name.clone())),
            "Group" => Some(Self::Group(subject.name.clone())),
            "ServiceAccount" => {
                let ns = if subject.namespace.is_empty() { binding_namespace } else { &subject.namespace };
                (!ns.is_empty()).then(|| Self::ServiceAccount(ns.to_string(), subject.name.clone()))
            }
            _ => None,
        }
    }

    fn matches(&self, subject: &Subject, binding_namespace: &str) -> bool {
        Self::of(subject, binding_namespace).as_ref() == Some(self)
    }
}

/// Where a rule came from, for the `RBAC: allowed by …` reason.
#[derive(Debug, Clone)]
pub struct RuleSource<'a> {
    /// The binding.
    pub binding: &'a Binding,
    /// The subject of the binding that matched the user.
    pub subject: &'a Subject,
}

impl std::fmt::Display for RuleSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.binding;
        if b.namespace.is_empty() {
            write!(f, "ClusterRoleBinding {:?} of {} {:?} to {}", b.name, b.role_ref.kind, b.role_ref.name, self.subject.describe(""))
        } else {
            write!(
                f,
                "RoleBinding {:?} of {} {:?} to {}",
                format!("{}/{}", b.name, b.namespace),
                b.role_ref.kind,
                b.role_ref.name,
                self.subject.describe(&b.namespace)
            )
        }
    }
}

/// Called per granted rule (with its source) or per binding whose role is missing (with the
/// error); returns false to stop.
pub type RuleVisitor<'v> = dyn FnMut(Option<&RuleSource<'_>>, Option<&PolicyRule>, Option<&str>) -> bool + 'v;

/// Every Role, ClusterRole and binding, with bindings indexed by subject.
#[derive(Debug, Default)]
pub struct PolicyIndex {
    cluster_roles: HashMap<String, Arc<RoleRules>>,
    roles: HashMap<(String, String), Arc<RoleRules>>,
    cluster_role_bindings: HashMap<String, Arc<Binding>>,
    role_bindings: HashMap<(String, String), Arc<Binding>>,
    cluster_bindings_by_subject: HashMap<SubjectKey, BTreeSet<String>>,
    role_bindings_by_subject: HashMap<(String, SubjectKey), BTreeSet<String>>,
}

/// What a stored key addresses.
enum RbacKey<'a> {
    ClusterRole(&'a str),
    Role(&'a str, &'a str),
    ClusterRoleBinding(&'a str),
    RoleBinding(&'a str, &'a str),
}

fn parse_key(key: &str) -> Option<RbacKey<'_>> {
    let rest = key.strip_prefix(RBAC_PREFIX)?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        ["clusterroles", name] => Some(RbacKey::ClusterRole(name)),
        ["clusterrolebindings", name] => Some(RbacKey::ClusterRoleBinding(name)),
        ["roles", ns, name] => Some(RbacKey::Role(ns, name)),
        ["rolebindings", ns, name] => Some(RbacKey::RoleBinding(ns, name)),
        _ => None,
    }
}

fn rules_of(obj: &Value) -> RoleRules {
    let rules = obj.get("rules").and_then(|r| serde_json::from_value::<Option<Vec<PolicyRule>>>(r.clone()).ok()).flatten().unwrap_or_default();
    RoleRules { rules }
}

fn binding_of(obj: &Value, name: &str, namespace: &str) -> Binding {
    let role_ref = obj.get("roleRef").and_then(|r| serde_json::from_value(r.clone()).ok()).unwrap_or_default();
    let subjects = obj.get("subjects").and_then(|s| serde_json::from_value::<Option<Vec<Subject>>>(s.clone()).ok()).flatten().unwrap_or_default();
    Binding { name: name.to_string(), namespace: namespace.to_string(), role_ref, subjects }
}

impl PolicyIndex {
    /// Records the object stored at `key` (None: deleted). Keys outside RBAC are ignored.
    pub fn apply(&mut self, key: &str, obj: Option<&Value>) {
        let Some(k) = parse_key(key) else { return };
        match k {
            RbacKey::ClusterRole(name) => match obj {
                Some(o) => {
                    self.cluster_roles.insert(name.to_string(), Arc::new(rules_of(o)));
                }
                None => {
                    self.cluster_roles.remove(name);
                }
            },
            RbacKey::Role(ns, name) => match obj {
                Some(o) => {
                    self.roles.insert((ns.to_string(), name.to_string()), Arc::new(rules_of(o)));
                }
                None => {
                    self.roles.remove(&(ns.to_string(), name.to_string()));
                }
            },
            RbacKey::ClusterRoleBinding(name) => {
                if let Some(old) = self.cluster_role_bindings.remove(name) {
                    for s in &old.subjects {
                        if let Some(key) = SubjectKey::of(s, "")
                            && let Some(set) = self.cluster_bindings_by_subject.get_mut(&key)
                        {
                            set.remove(name);
                            if set.is_empty() {
                                self.cluster_bindings_by_subject.remove(&key);
                            }
                        }
                    }
                }
                if let Some(o) = obj {
                    let b = binding_of(o, name, "");
                    for s in &b.subjects {
                        if let Some(key) = SubjectKey::of(s, "") {
                            self.cluster_bindings_by_subject.entry(key).or_default().insert(name.to_string());
                        }
                    }
                    self.cluster_role_bindings.insert(name.to_string(), Arc::new(b));
                }
            }
            RbacKey::RoleBinding(ns, name) => {
                let id = (ns.to_string(), name.to_string());
                if let Some(old) = self.role_bindings.remove(&id) {
                    for s in &old.subjects {
                        if let Some(key) = SubjectKey::of(s, ns) {
                            let k = (ns.to_string(), key);
                            if let Some(set) = self.role_bindings_by_subject.get_mut(&k) {
                                set.remove(name);
                                if set.is_empty() {
                                    self.role_bindings_by_subject.remove(&k);
                                }
                            }
                        }
                    }
                }
                if let Some(o) = obj {
                    let b = binding_of(o, name, ns);
                    for s in &b.subjects {
                        if let Some(key) = SubjectKey::of(s, ns) {
                            self.role_bindings_by_subject.entry((ns.to_string(), key)).or_default().insert(name.to_string());
                        }
                    }
                    self.role_bindings.insert(id, Arc::new(b));
                }
            }
        }
    }

    fn keys_of(user: &UserInfo) -> Vec<SubjectKey> {
        let mut keys = vec![SubjectKey::User(user.name.clone())];
        keys.extend(user.groups.iter().map(|g| SubjectKey::Group(g.clone())));
        if let Some((ns, name)) = split_service_account_username(&user.name) {
            keys.push(SubjectKey::ServiceAccount(ns.to_string(), name.to_string()));
        }
        keys
    }

    /// The rules a role reference grants in `namespace`, or upstream's lister error text.
    pub fn role_reference_rules(&self, role_ref: &RoleRef, namespace: &str) -> Result<Arc<RoleRules>, String> {
        match role_ref.kind.as_str() {
            "ClusterRole" => self
                .cluster_roles
                .get(&role_ref.name)
                .cloned()
                .ok_or_else(|| format!("clusterrole.rbac.authorization.k8s.io {:?} not found", role_ref.name)),
            "Role" => self
                .roles
                .get(&(namespace.to_string(), role_ref.name.clone()))
                .cloned()
                .ok_or_else(|| format!("role.rbac.authorization.k8s.io {:?} not found", role_ref.name)),
            other => Err(format!("unsupported role reference kind: {other:?}")),
        }
    }

    /// Whether a ClusterRole or Role exists (for binding checks).
    pub fn role_exists(&self, role_ref: &RoleRef, namespace: &str) -> bool {
        self.role_reference_rules(role_ref, namespace).is_ok()
    }

    /// Calls `visit` with each rule granted to `user` in `namespace` (cluster-wide bindings
    /// first, then the namespace's RoleBindings), or with the error of a binding whose role is
    /// missing. Stops when `visit` returns false.
    pub fn visit_rules_for(&self, user: &UserInfo, namespace: &str, visit: &mut RuleVisitor<'_>) {
        let keys = Self::keys_of(user);
        let mut names = BTreeSet::new();
        for k in &keys {
            if let Some(set) = self.cluster_bindings_by_subject.get(k) {
                names.extend(set.iter());
            }
        }
        for name in names {
            let Some(b) = self.cluster_role_bindings.get(name) else { continue };
            if !self.visit_binding(b, &keys, "", visit) {
                return;
            }
        }
        if namespace.is_empty() {
            return;
        }
        let mut names = BTreeSet::new();
        for k in keys.iter().cloned() {
            if let Some(set) = self.role_bindings_by_subject.get(&(namespace.to_string(), k)) {
                names.extend(set.iter());
            }
        }
        for name in names {
            let Some(b) = self.role_bindings.get(&(namespace.to_string(), name.clone())) else { continue };
            if !self.visit_binding(b, &keys, namespace, visit) {
                return;
            }
        }
    }

    fn visit_binding(
        &self,
        b: &Binding,
        keys: &[SubjectKey],
        namespace: &str,
        visit: &mut RuleVisitor<'_>,
    ) -> bool {
        let Some(subject) = b.subjects.iter().find(|s| keys.iter().any(|k| k.matches(s, &b.namespace))) else { return true };
        match self.role_reference_rules(&b.role_ref, namespace) {
            Ok(role) => {
                let source = RuleSource { binding: b, subject };
                role.rules.iter().all(|r| visit(Some(&source), Some(r), None))
            }
            Err(e) => visit(None, None, Some(&e)),
        }
    }

    /// Every rule granted to `user` in `namespace`, and the errors met (`RulesFor`).
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> (Vec<PolicyRule>, Vec<String>) {
        let mut rules = Vec::new();
        let mut errors = Vec::new();
        self.visit_rules_for(user, namespace, &mut |_, rule, err| {
            if let Some(r) = rule {
                rules.push(r.clone());
            }
            if let Some(e) = err {
                errors.push(e.to_string());
            }
            true
        });
        (rules, errors)
    }
}
