//! `nodes/{name}/proxy/{path}`: the connect subresource that forwards a request to the node's
//! agent (upstream `pkg/registry/core/node/rest/proxy.go` with `node.ResourceLocation`): the
//! method, the path after `proxy`, the query and the headers go to
//! `https://<InternalIP>:<kubelet port>/<path>` with the API server's kubelet client
//! certificate, and the agent's answer comes back as it is, streamed.
//!
//! The name may carry a scheme and port (`https:node:10250`) as upstream allows; only the
//! node's kubelet port is proxied (upstream also proxies other ports over plain HTTP).
//! Upgrade requests (the kubelet's `/exec`, `/attach`, `/portForward` over SPDY or WebSockets)
//! are relayed like upstream's `UpgradeAwareHandler` does: the agent's `101` joins both
//! connections, byte for byte.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, header};
use rkube_apimachinery::ApiError;

use crate::request_info::RequestInfo;
use crate::state::AppState;

/// Headers that belong to one connection, not to the request (Go's `hopHeaders`).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// `[scheme:]name[:port]` (upstream's `net.SplitSchemeNamePort`).
fn split_scheme_name_port(id: &str) -> Option<(&str, &str, &str)> {
    let parts: Vec<&str> = id.split(':').collect();
    let (scheme, name, port) = match parts.as_slice() {
        [name] => ("", *name, ""),
        [name, port] => ("", *name, *port),
        [scheme, name, port] => (*scheme, *name, *port),
        _ => return None,
    };
    let valid = !name.is_empty() && matches!(scheme, "" | "http" | "https");
    valid.then_some((scheme, name, port))
}

fn forwarded_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in headers {
        let lower = name.as_str();
        // Credentials of the API request are the API server's; the agent gets its own.
        if HOP_BY_HOP.contains(&lower)
            || lower == "host"
            || lower == "authorization"
            || lower.starts_with("impersonate-")
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// `Connection: Upgrade` with an `Upgrade` protocol (Go's `httpstream.IsUpgradeRequest`).
fn is_upgrade(headers: &HeaderMap) -> bool {
    let connection_upgrade = headers.get_all(header::CONNECTION).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
    });
    connection_upgrade && headers.contains_key(header::UPGRADE)
}

/// Forwards the request to the node's agent.
pub async fn serve(
    state: &Arc<AppState>,
    info: &RequestInfo,
    parts: http::request::Parts,
    body: Body,
) -> Result<Response, ApiError> {
    let (_, name, port) = split_scheme_name_port(&info.name)
        .ok_or_else(|| ApiError::bad_request(format!("invalid node request {:?}", info.name)))?;
    let reg = &state.registry;
    let nodes = reg
        .lookup("", "v1", "nodes")
        .ok_or_else(ApiError::path_not_found)?;
    let node = reg.get(&nodes, None, name, "").await?;
    let (host, kubelet_port) = crate::kubelet_client::agent_address(&node)
        .ok_or_else(|| ApiError::internal(format!("node {name} has no address")))?;
    if !port.is_empty() && port != kubelet_port.to_string() {
        return Err(ApiError::bad_request(format!(
            "proxying to port {port} of node {name} is not supported; only the kubelet port {kubelet_port} is"
        )));
    }
    let mut path = format!("/{}", info.rest.join("/"));
    if parts.uri.path().ends_with('/') && !path.ends_with('/') {
        path.push('/');
    }
    if let Some(query) = parts.uri.query() {
        path = format!("{path}?{query}");
    }
    if is_upgrade(&parts.headers) {
        let mut parts = parts;
        let client_upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
        let sender = crate::kubelet_client::connect(&state.kubelet_tls, &host, kubelet_port)
            .await
            .map_err(|e| ApiError::internal(format!("error trying to reach service: {e}")))?;
        let agent = crate::pod_stream::Agent {
            sender,
            authority: format!("{host}:{kubelet_port}"),
            path,
        };
        return crate::pod_stream::proxy(&parts.method, &parts.headers, client_upgrade, agent).await;
    }
    let mut request = http::Request::builder()
        .method(parts.method.clone())
        .uri(&path)
        .body(body)
        .map_err(|e| ApiError::bad_request(format!("proxy path {path:?}: {e}")))?;
    *request.headers_mut() = forwarded_headers(&parts.headers);
    if let Ok(v) = HeaderValue::from_str(&format!("{host}:{kubelet_port}")) {
        request.headers_mut().insert(header::HOST, v);
    }
    let response = crate::kubelet_client::request_to_agent(&state.kubelet_tls, &host, kubelet_port, request)
        .await
        .map_err(|e| ApiError::internal(format!("error trying to reach service: {}", e.message)))?;
    let (agent_parts, agent_body) = response.into_parts();
    let mut out = Response::new(Body::new(agent_body));
    *out.status_mut() = agent_parts.status;
    for (name, value) in &agent_parts.headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            out.headers_mut().append(name.clone(), value.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_may_carry_scheme_and_port() {
        assert_eq!(split_scheme_name_port("n1"), Some(("", "n1", "")));
        assert_eq!(
            split_scheme_name_port("n1:10250"),
            Some(("", "n1", "10250"))
        );
        assert_eq!(
            split_scheme_name_port("https:n1:10250"),
            Some(("https", "n1", "10250"))
        );
        assert_eq!(split_scheme_name_port("ftp:n1:21"), None);
        assert_eq!(split_scheme_name_port(":10250"), None);
        assert_eq!(split_scheme_name_port("a:b:c:d"), None);
    }

    #[test]
    fn upgrade_requests_are_recognised_as_go_does() {
        let mut headers = HeaderMap::new();
        assert!(!is_upgrade(&headers));
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        assert!(!is_upgrade(&headers), "no protocol named");
        headers.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
        assert!(is_upgrade(&headers));
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        assert!(!is_upgrade(&headers));
    }

    #[test]
    fn credentials_and_hop_headers_stay_behind() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        h.insert("impersonate-user", HeaderValue::from_static("bob"));
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        let out = forwarded_headers(&h);
        assert_eq!(out.len(), 1);
        assert_eq!(out.get(header::ACCEPT), h.get(header::ACCEPT));
    }
}
