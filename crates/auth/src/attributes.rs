//! What a request asks to do (apiserver `pkg/authorization/authorizer.AttributesRecord`) and the
//! 403 it gets when nothing allows it (`pkg/endpoints/handlers/responsewriters` `Forbidden`,
//! `forbiddenMessage`).

use rkube_apimachinery::ApiError;
use serde_json::json;

use crate::user::UserInfo;

/// A request as the authorizer sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    /// Who asks.
    pub user: UserInfo,
    /// `get`, `list`, `create`, … for resources; the lower-cased HTTP method for paths.
    pub verb: String,
    /// A resource request (else a non-resource path).
    pub resource_request: bool,
    /// API group (`""` is core).
    pub api_group: String,
    /// API version.
    pub api_version: String,
    /// Plural resource.
    pub resource: String,
    /// Subresource (`log`, `scale`, `status`, …).
    pub subresource: String,
    /// Namespace, empty for cluster scope.
    pub namespace: String,
    /// Object name, empty for collections.
    pub name: String,
    /// The URL path of a non-resource request.
    pub path: String,
    /// The request's raw `fieldSelector` (the Node authorizer allows scoped lists).
    pub field_selector: String,
}

impl Attributes {
    /// A resource request.
    pub fn resource(user: UserInfo, verb: &str, group: &str, resource: &str, namespace: &str, name: &str) -> Self {
        Self {
            user,
            verb: verb.into(),
            resource_request: true,
            api_group: group.into(),
            resource: resource.into(),
            namespace: namespace.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    /// A non-resource request.
    pub fn non_resource(user: UserInfo, verb: &str, path: &str) -> Self {
        Self { user, verb: verb.into(), path: path.into(), ..Default::default() }
    }

    /// `User "alice" cannot list resource "pods" in API group "" in the namespace "default"`.
    pub fn forbidden_message(&self) -> String {
        let user = &self.user.name;
        if !self.resource_request {
            return format!("User {user:?} cannot {} path {:?}", self.verb, self.path);
        }
        let resource = if self.subresource.is_empty() { self.resource.clone() } else { format!("{}/{}", self.resource, self.subresource) };
        if self.namespace.is_empty() {
            format!("User {user:?} cannot {} resource {resource:?} in API group {:?} at the cluster scope", self.verb, self.api_group)
        } else {
            format!(
                "User {user:?} cannot {} resource {resource:?} in API group {:?} in the namespace {:?}",
                self.verb, self.api_group, self.namespace
            )
        }
    }

    /// The 403 upstream answers: `NewForbidden(group/resource, name, message[: reason])`.
    pub fn forbidden(&self, reason: &str) -> ApiError {
        let why = if reason.is_empty() { self.forbidden_message() } else { format!("{}: {reason}", self.forbidden_message()) };
        if self.resource.is_empty() {
            // No group-resource: `forbidden: <why>` with empty details.
            return ApiError { code: 403, reason: "Forbidden", message: format!("forbidden: {why}"), details: Some(json!({})) };
        }
        ApiError::forbidden(&self.api_group, &self.resource, &self.name, &why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_upstream() {
        let alice = UserInfo::new("alice", vec!["system:authenticated".into()]);
        let a = Attributes::resource(alice.clone(), "list", "", "pods", "default", "");
        let e = a.forbidden("");
        assert_eq!(e.message, "pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\"");
        assert_eq!(e.to_status()["details"], json!({"kind": "pods"}));
        let mut a = Attributes::resource(alice.clone(), "get", "apps", "deployments", "", "web");
        a.subresource = "scale".into();
        assert_eq!(
            a.forbidden("").message,
            "deployments.apps \"web\" is forbidden: User \"alice\" cannot get resource \"deployments/scale\" in API group \"apps\" at the cluster scope"
        );
        let p = Attributes::non_resource(alice, "get", "/apis");
        let e = p.forbidden("");
        assert_eq!(e.message, "forbidden: User \"alice\" cannot get path \"/apis\"");
        assert_eq!(e.code, 403);
    }
}
