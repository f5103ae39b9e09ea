//! The authorizer: the `system:masters` shortcut, then the Node authorizer, then RBAC
//! (kube-apiserver's chain `pkg/kubeapiserver/authorizer/config.go` with `--authorization-mode=
//! Node,RBAC`: privileged groups, then each mode in order, reasons of modes without an opinion
//! joined by newlines as the union authorizer does; the reason texts of
//! plugin/pkg/auth/authorizer/rbac/rbac.go).

use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use rkube_registry::Registry;
use tokio::sync::{Notify, watch};

use crate::attributes::Attributes;
use crate::index::{PolicyIndex, RoleRef};
use crate::node::{NodeAuthorizer, NodeDecision};
use crate::rules::PolicyRule;
use crate::user::{SYSTEM_MASTERS, UserInfo};

/// How long a denied request waits for RBAC writes that were committed before it to be indexed.
const CATCH_UP: Duration = Duration::from_secs(2);

/// The answer for one request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    /// Allowed (else no authorizer had an opinion: denied).
    pub allowed: bool,
    /// Why (`RBAC: allowed by …`), or errors met while evaluating a denial.
    pub reason: String,
}

/// RBAC over an in-memory index kept in step with the store.
pub struct Authorizer {
    index: RwLock<PolicyIndex>,
    /// The store revision the index reflects.
    revision: watch::Sender<i64>,
    /// Asks the feed to report its progress (see [`crate::feed`]).
    pub(crate) progress_wanted: Notify,
    registry: Option<Arc<Registry>>,
    /// Asked before RBAC; fed by [`crate::node::feed::run`].
    node: Arc<NodeAuthorizer>,
}

impl Authorizer {
    /// An authorizer fed from `registry` (start [`crate::feed::run`] with it).
    pub fn new(registry: Arc<Registry>) -> Arc<Self> {
        Arc::new(Self { index: RwLock::default(), revision: watch::channel(0).0, progress_wanted: Notify::new(), registry: Some(registry), node: Arc::new(NodeAuthorizer::with_default_rules()) })
    }

    /// An authorizer over a fixed index (tests, tools).
    pub fn from_index(index: PolicyIndex) -> Arc<Self> {
        Arc::new(Self { index: RwLock::new(index), revision: watch::channel(0).0, progress_wanted: Notify::new(), registry: None, node: Arc::new(NodeAuthorizer::with_default_rules()) })
    }

    /// The Node authorizer (to feed its graph).
    pub fn node_authorizer(&self) -> Arc<NodeAuthorizer> {
        self.node.clone()
    }

    pub(crate) fn replace_index(&self, index: PolicyIndex, revision: i64) {
        *self.index.write() = index;
        self.revision.send_replace(revision);
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut PolicyIndex), revision: i64) {
        f(&mut self.index.write());
        self.mark(revision);
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

    /// Decides from the index as it is now.
    pub fn evaluate(&self, attrs: &Attributes) -> Decision {
        if attrs.user.in_group(SYSTEM_MASTERS) {
            return Decision { allowed: true, reason: String::new() };
        }
        let node_reason = match self.node.authorize(attrs) {
            NodeDecision::Allow => return Decision { allowed: true, reason: String::new() },
            NodeDecision::NoOpinion(reason) => reason,
        };
        let rbac = self.evaluate_rbac(attrs);
        if rbac.allowed {
            return rbac;
        }
        let reason = [node_reason, rbac.reason].into_iter().filter(|r| !r.is_empty()).collect::<Vec<_>>().join("\n");
        Decision { allowed: false, reason }
    }

    fn evaluate_rbac(&self, attrs: &Attributes) -> Decision {
        let mut allowed_by = None;
        let mut errors: Vec<String> = Vec::new();
        self.index.read().visit_rules_for(&attrs.user, &attrs.namespace, &mut |source, rule, err| {
            if let (Some(src), Some(r)) = (source, rule)
                && r.allows(attrs)
            {
                allowed_by = Some(format!("RBAC: allowed by {src}"));
                return false;
            }
            if let Some(e) = err {
                errors.push(e.to_string());
            }
            true
        });
        match allowed_by {
            Some(reason) => Decision { allowed: true, reason },
            None if errors.is_empty() => Decision::default(),
            None => Decision { allowed: false, reason: format!("RBAC: {}", aggregate(&errors)) },
        }
    }

    /// Decides; a denial is re-checked once the index has caught up with the store, so a
    /// binding created by the previous request is always in effect.
    pub async fn authorize(&self, attrs: &Attributes) -> Decision {
        let first = self.evaluate(attrs);
        if first.allowed {
            return first;
        }
        // The graph of a node's pods lags writes as the RBAC index does.
        let node_caught_up = match (&self.registry, crate::node::node_identity(&attrs.user)) {
            (Some(registry), Some(_)) => match registry.current_revision().await {
                Ok(target) => self.node.catch_up(target, CATCH_UP).await,
                Err(_) => false,
            },
            _ => false,
        };
        if self.catch_up().await || node_caught_up {
            return self.evaluate(attrs);
        }
        first
    }

    /// Waits (bounded) until the index reflects every write committed so far. False when it
    /// was already current or could not catch up.
    pub async fn catch_up(&self) -> bool {
        let Some(registry) = &self.registry else { return false };
        let Ok(target) = registry.current_revision().await else { return false };
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
        tokio::time::timeout(CATCH_UP, wait).await.unwrap_or(false)
    }

    /// The rules granted to `user` in `namespace` and the errors met (`RulesFor`). The
    /// `system:masters` shortcut is an authorizer, not a rule resolver, as upstream: such users
    /// see the rules of their bindings (cluster-admin).
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> (Vec<PolicyRule>, Vec<String>) {
        self.index.read().rules_for(user, namespace)
    }

    /// The rules of a role reference, or the error text.
    pub fn role_reference_rules(&self, role_ref: &RoleRef, namespace: &str) -> Result<Vec<PolicyRule>, String> {
        self.index.read().role_reference_rules(role_ref, namespace).map(|r| r.rules.clone())
    }
}

/// `utilerrors.NewAggregate(errs).Error()`: one error as is, several as `[a, b]`.
pub fn aggregate(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}
