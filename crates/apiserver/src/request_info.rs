//! Turns a request path and method into what it addresses (apiserver
//! `pkg/endpoints/request/requestinfo.go` RequestInfoFactory.NewRequestInfo).

use http::Method;

/// What a request addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// Whether the path addresses a resource (`/api/v1/...` below the version) rather than
    /// discovery or a non-resource URL.
    pub is_resource: bool,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`, or the
    /// lower-cased method for non-resource requests.
    pub verb: String,
    /// `api` or `apis`.
    pub prefix: String,
    /// API group (empty for core).
    pub group: String,
    /// API version.
    pub version: String,
    /// Namespace from the path.
    pub namespace: Option<String>,
    /// Plural resource.
    pub resource: String,
    /// Subresource (`status`, `scale`, `log`, ...).
    pub subresource: String,
    /// Object name.
    pub name: String,
    /// Path segments after the subresource (proxy paths).
    pub rest: Vec<String>,
}

/// Subresources of a namespace object itself: `/api/v1/namespaces/{name}/status`.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

/// Parses path and method. `watch` is the value of the `watch` query parameter.
pub fn parse(method: &Method, path: &str, watch_param: bool) -> RequestInfo {
    let mut info = RequestInfo { verb: method.as_str().to_ascii_lowercase(), ..Default::default() };
    let parts: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let Some((&prefix, rest)) = parts.split_first() else { return info };
    if prefix != "api" && prefix != "apis" {
        return info;
    }
    info.prefix = prefix.to_string();
    let mut cur: &[&str] = rest;
    if prefix == "apis" {
        let Some((&g, r)) = cur.split_first() else { return info };
        info.group = g.to_string();
        cur = r;
    }
    let Some((&v, r)) = cur.split_first() else { return info };
    info.version = v.to_string();
    cur = r;
    if cur.is_empty() {
        return info;
    }
    info.is_resource = true;
    let mut verb_is_watch = false;
    // Deprecated `/watch/` path prefix.
    if cur[0] == "watch" {
        verb_is_watch = true;
        cur = &cur[1..];
    }
    if cur.first() == Some(&"namespaces") {
        if cur.len() > 1 {
            info.namespace = Some(cur[1].to_string());
            if cur.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&cur[2]) {
                cur = &cur[2..];
            }
        }
    }
    match cur.len() {
        0 => {}
        1 => info.resource = cur[0].to_string(),
        2 => {
            info.resource = cur[0].to_string();
            info.name = cur[1].to_string();
        }
        _ => {
            info.resource = cur[0].to_string();
            info.name = cur[1].to_string();
            info.subresource = cur[2].to_string();
            info.rest = cur[3..].iter().map(|s| s.to_string()).collect();
        }
    }
    // `/api/v1/namespaces/{name}` addresses the namespace object itself.
    if info.resource == "namespaces" && info.name.is_empty() {
        if let Some(ns) = info.namespace.clone() {
            if cur.first() == Some(&"namespaces") {
                info.name = ns;
            }
        }
    }
    if info.resource == "namespaces" {
        info.namespace = None;
    }
    info.verb = match *method {
        Method::GET | Method::HEAD => {
            if verb_is_watch || watch_param {
                "watch"
            } else if info.name.is_empty() {
                "list"
            } else {
                "get"
            }
        }
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => {
            if info.name.is_empty() {
                "deletecollection"
            } else {
                "delete"
            }
        }
        _ => "unknown",
    }
    .to_string();
    if verb_is_watch && !info.name.is_empty() {
        // `/watch/.../pods/name` watches one object.
        info.verb = "watch".into();
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaced_object() {
        let i = parse(&Method::GET, "/apis/apps/v1/namespaces/default/deployments/web", false);
        assert_eq!((i.group.as_str(), i.version.as_str()), ("apps", "v1"));
        assert_eq!(i.namespace.as_deref(), Some("default"));
        assert_eq!((i.resource.as_str(), i.name.as_str(), i.verb.as_str()), ("deployments", "web", "get"));
    }

    #[test]
    fn namespace_itself_and_its_status() {
        let i = parse(&Method::GET, "/api/v1/namespaces/foo", false);
        assert_eq!((i.resource.as_str(), i.name.as_str(), i.namespace.clone()), ("namespaces", "foo", None));
        let i = parse(&Method::PUT, "/api/v1/namespaces/foo/finalize", false);
        assert_eq!((i.resource.as_str(), i.name.as_str(), i.subresource.as_str()), ("namespaces", "foo", "finalize"));
        let i = parse(&Method::GET, "/api/v1/namespaces", false);
        assert_eq!((i.resource.as_str(), i.verb.as_str()), ("namespaces", "list"));
    }

    #[test]
    fn subresources_and_verbs() {
        let i = parse(&Method::PUT, "/api/v1/namespaces/d/pods/p/status", false);
        assert_eq!((i.subresource.as_str(), i.verb.as_str()), ("status", "update"));
        let i = parse(&Method::GET, "/api/v1/pods", true);
        assert_eq!((i.resource.as_str(), i.verb.as_str(), i.namespace.clone()), ("pods", "watch", None));
        let i = parse(&Method::DELETE, "/api/v1/namespaces/d/configmaps", false);
        assert_eq!(i.verb, "deletecollection");
        let i = parse(&Method::GET, "/apis/apps/v1", false);
        assert!(!i.is_resource);
    }
}
