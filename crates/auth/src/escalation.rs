//! RBAC write protection (pkg/registry/rbac/{role,clusterrole,rolebinding,clusterrolebinding}/
//! policybased/storage.go, pkg/registry/rbac/escalation_check.go, pkg/registry/rbac/validation
//! `ConfirmNoEscalation`): a Role or ClusterRole may only grant what its writer holds, unless the
//! writer may `escalate`; a binding may only grant a role whose permissions the writer holds,
//! unless the writer may `bind` it. `system:masters` is exempt.

use rkube_apimachinery::{ApiError, meta};
use serde_json::Value;

use crate::attributes::Attributes;
use crate::authorizer::{Authorizer, aggregate};
use crate::context::current_user;
use crate::index::RoleRef;
use crate::rules::{self, PolicyRule, go_quote, go_quote_list};
use crate::user::{SYSTEM_MASTERS, UserInfo};

/// The RBAC API group.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// Checks a create (`old` None) or update of an RBAC object by the current request's user.
/// Other resources, and writes without a request user, pass.
pub fn check_write(authorizer: &Authorizer, group: &str, plural: &str, namespace: Option<&str>, new: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    if group != RBAC_GROUP {
        return Ok(());
    }
    let Some(user) = current_user() else { return Ok(()) };
    if user.in_group(SYSTEM_MASTERS) {
        return Ok(());
    }
    if old.is_some_and(|o| only_gc_fields_change(new, o)) {
        return Ok(());
    }
    let ns = namespace.unwrap_or("");
    let name = meta::name(new);
    match plural {
        "roles" | "clusterroles" => {
            // The request's name: empty on create, as upstream's RequestInfo.
            let request_name = if old.is_some() { name } else { "" };
            let escalate = Attributes::resource(user.clone(), "escalate", group, plural, ns, request_name);
            if authorizer.evaluate(&escalate).allowed {
                return Ok(());
            }
            let rules: Vec<PolicyRule> = parse_rules(new);
            confirm_no_escalation(authorizer, &user, ns, &rules).map_err(|why| ApiError::forbidden(group, plural, name, &why))?;
            if plural == "clusterroles" && new.get("aggregationRule").is_some_and(|a| !a.is_null()) {
                let star = || vec!["*".to_string()];
                let full = [
                    PolicyRule { verbs: star(), api_groups: star(), resources: star(), ..Default::default() },
                    PolicyRule { verbs: star(), non_resource_urls: star(), ..Default::default() },
                ];
                if confirm_no_escalation(authorizer, &user, ns, &full).is_err() {
                    return Err(ApiError::forbidden(group, plural, name, "must have cluster-admin privileges to use the aggregationRule"));
                }
            }
            Ok(())
        }
        "rolebindings" | "clusterrolebindings" => {
            let role_ref: RoleRef = new.get("roleRef").and_then(|r| serde_json::from_value(r.clone()).ok()).unwrap_or_default();
            if binding_authorized(authorizer, &user, &role_ref, ns) {
                return Ok(());
            }
            let rules = authorizer.role_reference_rules(&role_ref, ns).map_err(|_| {
                let resource = if role_ref.kind == "Role" { "roles" } else { "clusterroles" };
                ApiError::bad_request(format!("{resource}.{RBAC_GROUP} {:?} not found", role_ref.name))
            })?;
            confirm_no_escalation(authorizer, &user, ns, &rules).map_err(|why| ApiError::forbidden(group, plural, name, &why))
        }
        _ => Ok(()),
    }
}

fn parse_rules(obj: &Value) -> Vec<PolicyRule> {
    obj.get("rules").and_then(|r| serde_json::from_value::<Option<Vec<PolicyRule>>>(r.clone()).ok()).flatten().unwrap_or_default()
}

/// `BindingAuthorized`: the `bind` verb on the referenced role, checked in the binding's namespace.
fn binding_authorized(authorizer: &Authorizer, user: &UserInfo, role_ref: &RoleRef, namespace: &str) -> bool {
    let resource = match role_ref.kind.as_str() {
        "ClusterRole" => "clusterroles",
        "Role" => "roles",
        _ => return false,
    };
    let attrs = Attributes::resource(user.clone(), "bind", &role_ref.api_group, resource, namespace, &role_ref.name);
    authorizer.evaluate(&attrs).allowed
}

/// `ConfirmNoEscalation`: the user's rules in `namespace` must cover `wanted`.
pub fn confirm_no_escalation(authorizer: &Authorizer, user: &UserInfo, namespace: &str, wanted: &[PolicyRule]) -> Result<(), String> {
    let (owned, errors) = authorizer.rules_for(user, namespace);
    let (covered, missing) = rules::covers(&owned, wanted);
    if covered {
        return Ok(());
    }
    let mut msg = format!(
        "user {} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
        go_quote(&user.name),
        go_quote_list(&user.groups),
        rules::describe_missing(&missing)
    );
    if !errors.is_empty() {
        msg.push_str(&format!("; resolution errors: {}", aggregate(&errors)));
    }
    Err(msg)
}

/// `IsOnlyMutatingGCFields`: only ownerReferences and finalizers differ.
fn only_gc_fields_change(new: &Value, old: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        for k in ["ownerReferences", "finalizers", "resourceVersion", "managedFields"] {
            meta::remove_meta(&mut v, k);
        }
        v
    };
    strip(new) == strip(old)
}
