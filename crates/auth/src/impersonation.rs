//! `Impersonate-User`, `Impersonate-Group`, `Impersonate-Uid`, `Impersonate-Extra-<key>`
//! (apiserver `pkg/endpoints/filters/impersonation.go`): each requested attribute is authorized
//! with the `impersonate` verb, then the request continues as the impersonated user.

use std::collections::BTreeMap;

use http::HeaderMap;
use rkube_apimachinery::ApiError;

use crate::attributes::Attributes;
use crate::authorizer::Authorizer;
use crate::user::{ALL_AUTHENTICATED, ALL_UNAUTHENTICATED, ANONYMOUS, UserInfo, service_account_groups, service_account_username, split_service_account_username};

const USER_HEADER: &str = "impersonate-user";
const GROUP_HEADER: &str = "impersonate-group";
const UID_HEADER: &str = "impersonate-uid";
const EXTRA_PREFIX: &str = "impersonate-extra-";

/// One requested attribute (upstream builds `ObjectReference`s).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Request {
    ServiceAccount { namespace: String, name: String },
    User(String),
    Group(String),
    Extra { key: String, value: String },
    Uid(String),
}

impl Request {
    /// What the requestor must be allowed to `impersonate`.
    fn attributes(&self, requestor: &UserInfo) -> Attributes {
        let mut a = match self {
            Self::ServiceAccount { namespace, name } => Attributes::resource(requestor.clone(), "impersonate", "", "serviceaccounts", namespace, name),
            Self::User(name) => Attributes::resource(requestor.clone(), "impersonate", "", "users", "", name),
            Self::Group(name) => Attributes::resource(requestor.clone(), "impersonate", "", "groups", "", name),
            Self::Extra { key, value } => {
                let mut a = Attributes::resource(requestor.clone(), "impersonate", "authentication.k8s.io", "userextras", "", value);
                a.subresource = key.clone();
                a
            }
            Self::Uid(uid) => Attributes::resource(requestor.clone(), "impersonate", "authentication.k8s.io", "uids", "", uid),
        };
        if matches!(self, Self::Extra { .. } | Self::Uid(_)) {
            a.api_version = "v1".into();
        }
        a
    }

    /// Go's `%v` of the ObjectReference upstream builds, for its error message.
    fn go_value(&self) -> String {
        let (kind, ns, name, api_version, field) = match self {
            Self::ServiceAccount { namespace, name } => ("ServiceAccount", namespace.as_str(), name.as_str(), "", ""),
            Self::User(n) => ("User", "", n.as_str(), "", ""),
            Self::Group(n) => ("Group", "", n.as_str(), "", ""),
            Self::Extra { key, value } => ("UserExtra", "", value.as_str(), "authentication.k8s.io/v1", key.as_str()),
            Self::Uid(u) => ("UID", "", u.as_str(), "authentication.k8s.io/v1", ""),
        };
        format!("{{{kind} {ns} {name}  {api_version}  {field}}}")
    }
}

fn header_values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect()
}

fn requests(headers: &HeaderMap) -> Result<Vec<Request>, ApiError> {
    let mut out = Vec::new();
    let user = header_values(headers, USER_HEADER).first().map(|s| s.to_string()).filter(|s| !s.is_empty());
    if let Some(u) = &user {
        match split_service_account_username(u) {
            Some((namespace, name)) => out.push(Request::ServiceAccount { namespace: namespace.into(), name: name.into() }),
            None => out.push(Request::User(u.clone())),
        }
    }
    for g in header_values(headers, GROUP_HEADER) {
        out.push(Request::Group(g.to_string()));
    }
    let mut extra_keys: Vec<&str> = headers.keys().map(|k| k.as_str()).filter(|k| k.starts_with(EXTRA_PREFIX)).collect();
    extra_keys.sort_unstable();
    extra_keys.dedup();
    for header in extra_keys {
        let key = percent_encoding::percent_decode_str(&header[EXTRA_PREFIX.len()..]).decode_utf8_lossy().to_string();
        for value in header_values(headers, header) {
            out.push(Request::Extra { key: key.clone(), value: value.to_string() });
        }
    }
    if let Some(uid) = header_values(headers, UID_HEADER).first().filter(|s| !s.is_empty()) {
        out.push(Request::Uid(uid.to_string()));
    }
    if user.is_none() && !out.is_empty() {
        let listed: Vec<String> = out.iter().map(Request::go_value).collect();
        return Err(ApiError::internal(format!("requested [{}] without impersonating a user", listed.join(" "))));
    }
    Ok(out)
}

/// The user the request acts as: `requestor` without impersonation headers, the impersonated
/// user when every requested attribute is allowed, or upstream's 403 for the first one that is
/// not.
pub async fn impersonate(authorizer: &Authorizer, requestor: &UserInfo, headers: &HeaderMap) -> Result<UserInfo, ApiError> {
    let requests = requests(headers)?;
    if requests.is_empty() {
        return Ok(requestor.clone());
    }
    let groups_given = requests.iter().any(|r| matches!(r, Request::Group(_)));
    let mut name = String::new();
    let mut uid = String::new();
    let mut groups: Vec<String> = Vec::new();
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &requests {
        match r {
            Request::ServiceAccount { namespace, name: sa } => {
                name = service_account_username(namespace, sa);
                if !groups_given {
                    groups = service_account_groups(namespace);
                }
            }
            Request::User(u) => name = u.clone(),
            Request::Group(g) => groups.push(g.clone()),
            Request::Extra { key, value } => extra.entry(key.clone()).or_default().push(value.clone()),
            Request::Uid(u) => uid = u.clone(),
        }
        let attrs = r.attributes(requestor);
        let decision = authorizer.authorize(&attrs).await;
        if !decision.allowed {
            return Err(attrs.forbidden(&decision.reason));
        }
    }
    if name != ANONYMOUS {
        if !groups.iter().any(|g| g == ALL_AUTHENTICATED || g == ALL_UNAUTHENTICATED) {
            groups.push(ALL_AUTHENTICATED.to_string());
        }
    } else if !groups.iter().any(|g| g == ALL_UNAUTHENTICATED) {
        groups.push(ALL_UNAUTHENTICATED.to_string());
    }
    Ok(UserInfo { name, uid, groups, extra })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::PolicyIndex;
    use serde_json::json;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    fn alice() -> UserInfo {
        UserInfo::new("alice", vec![ALL_AUTHENTICATED.into()])
    }

    #[tokio::test]
    async fn impersonating_without_permission_is_forbidden_as_upstream() {
        let authz = Authorizer::from_index(PolicyIndex::default());
        let e = impersonate(&authz, &alice(), &headers(&[("Impersonate-User", "bob")])).await.unwrap_err();
        assert_eq!(e.code, 403);
        assert_eq!(e.message, "users \"bob\" is forbidden: User \"alice\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope");
    }

    #[tokio::test]
    async fn allowed_impersonation_switches_user_and_adds_authenticated() {
        let mut index = PolicyIndex::default();
        index.apply("/registry/rbac.authorization.k8s.io/clusterroles/imp", Some(&json!({"rules": [{"apiGroups": [""], "resources": ["users", "groups", "serviceaccounts"], "verbs": ["impersonate"]}]})));
        index.apply(
            "/registry/rbac.authorization.k8s.io/clusterrolebindings/imp",
            Some(&json!({"roleRef": {"kind": "ClusterRole", "name": "imp", "apiGroup": "rbac.authorization.k8s.io"}, "subjects": [{"kind": "User", "name": "alice"}]})),
        );
        let authz = Authorizer::from_index(index);
        let u = impersonate(&authz, &alice(), &headers(&[("Impersonate-User", "bob"), ("Impersonate-Group", "dev")])).await.unwrap();
        assert_eq!(u.name, "bob");
        assert_eq!(u.groups, vec!["dev".to_string(), ALL_AUTHENTICATED.to_string()]);
        let sa = impersonate(&authz, &alice(), &headers(&[("Impersonate-User", "system:serviceaccount:ns1:builder")])).await.unwrap();
        assert_eq!(sa.groups, vec!["system:serviceaccounts", "system:serviceaccounts:ns1", ALL_AUTHENTICATED]);
        let e = impersonate(&authz, &alice(), &headers(&[("Impersonate-User", "bob"), ("Impersonate-Uid", "1234")])).await.unwrap_err();
        assert_eq!(e.message, "uids.authentication.k8s.io \"1234\" is forbidden: User \"alice\" cannot impersonate resource \"uids\" in API group \"authentication.k8s.io\" at the cluster scope");
        let e = impersonate(&authz, &alice(), &headers(&[("Impersonate-Group", "dev")])).await.unwrap_err();
        assert_eq!(e.code, 500);
    }
}
