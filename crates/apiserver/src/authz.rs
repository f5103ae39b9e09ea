//! What the authorizer is asked for each request (apiserver `pkg/endpoints/filters/
//! authorization.go` with the attributes of `GetAuthorizerAttributes` and the RequestInfo rules
//! that only matter to authorization).

use http::Method;
use rkube_apimachinery::selectors::FieldSelector;
use rkube_auth::{Attributes, UserInfo};

use crate::request_info::RequestInfo;

/// The attributes of a request by `user`. `field_selector` is the request's `fieldSelector`.
pub fn attributes(user: UserInfo, method: &Method, path: &str, info: &RequestInfo, field_selector: Option<&str>) -> Attributes {
    if !info.is_resource {
        return Attributes::non_resource(user, &method.as_str().to_ascii_lowercase(), path);
    }
    let mut name = info.name.clone();
    // A list or watch of one object by `metadata.name` is authorized for that name.
    if name.is_empty()
        && matches!(info.verb.as_str(), "list" | "watch")
        && let Some(fs) = field_selector.and_then(|s| FieldSelector::parse(s).ok())
        && let Some(n) = fs.requires_exact_match("metadata.name")
    {
        name = n.to_string();
    }
    // `/api/v1/namespaces/{name}[/status|/finalize]` is in namespace {name}.
    let namespace = match &info.namespace {
        Some(ns) => ns.clone(),
        None if info.resource == "namespaces" => info.name.clone(),
        None => String::new(),
    };
    Attributes {
        user,
        verb: info.verb.clone(),
        resource_request: true,
        api_group: info.group.clone(),
        api_version: info.version.clone(),
        resource: info.resource.clone(),
        subresource: info.subresource.clone(),
        namespace,
        name,
        path: path.to_string(),
        field_selector: field_selector.unwrap_or_default().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request_info;

    #[test]
    fn namespace_objects_are_in_their_own_namespace_and_name_selectors_name_the_object() {
        let u = UserInfo::new("alice", vec![]);
        let i = request_info::parse(&Method::GET, "/api/v1/namespaces/team-a", false);
        let a = attributes(u.clone(), &Method::GET, "/api/v1/namespaces/team-a", &i, None);
        assert_eq!((a.namespace.as_str(), a.name.as_str(), a.verb.as_str()), ("team-a", "team-a", "get"));
        let i = request_info::parse(&Method::GET, "/api/v1/namespaces/d/pods", true);
        let a = attributes(u.clone(), &Method::GET, "/api/v1/namespaces/d/pods", &i, Some("metadata.name=web"));
        assert_eq!((a.verb.as_str(), a.name.as_str()), ("watch", "web"));
        let i = request_info::parse(&Method::GET, "/apis", false);
        let a = attributes(u, &Method::GET, "/apis", &i, None);
        assert!(!a.resource_request);
        assert_eq!(a.forbidden("").message, "forbidden: User \"alice\" cannot get path \"/apis\"");
    }
}
