//! `GET pods/{name}/log`: checks the pod and container as kube-apiserver does, then streams the
//! log from the node agent's HTTPS endpoint (`/containerLogs/...` on the Node's InternalIP and
//! `status.daemonEndpoints.kubeletEndpoint.Port`), as kube-apiserver does with the kubelet.
//!
//! How the agent is reached and how the API server authenticates to it is
//! [`crate::kubelet_client`]'s.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::{StatusCode, header};
use http_body_util::BodyExt;
use rkube_apimachinery::ApiError;
use serde_json::Value;

use crate::handler::Query;
use crate::kubelet_client;
use crate::state::AppState;

/// Query parameters passed on to the agent.
const FORWARDED: [&str; 6] = [
    "follow",
    "previous",
    "tailLines",
    "timestamps",
    "sinceSeconds",
    "limitBytes",
];

pub(crate) fn container_names(pod: &Value, field: &str) -> Vec<String> {
    pod.pointer(&format!("/spec/{field}"))
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The container whose logs are asked for, with upstream's messages when it cannot be chosen.
pub(crate) fn choose_container(
    pod: &Value,
    name: &str,
    asked: Option<&str>,
) -> Result<String, ApiError> {
    let names = container_names(pod, "containers");
    let init_names = container_names(pod, "initContainers");
    match asked {
        Some(c) if names.iter().chain(&init_names).any(|n| n == c) => Ok(c.to_string()),
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None if names.len() == 1 => Ok(names[0].clone()),
        None => {
            let mut message = format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                names.join(" ")
            );
            if !init_names.is_empty() {
                message.push_str(&format!(
                    " or one of the init containers: [{}]",
                    init_names.join(" ")
                ));
            }
            Err(ApiError::bad_request(message))
        }
    }
}

/// Upstream's error for a container that never started.
fn waiting_error(pod: &Value, name: &str, container: &str) -> Option<ApiError> {
    let status = ["/status/containerStatuses", "/status/initContainerStatuses"]
        .iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten()
        .find(|s| s["name"] == container)?;
    let reason = status.pointer("/state/waiting/reason")?.as_str()?;
    let ever_ran = status
        .get("lastState")
        .and_then(Value::as_object)
        .is_some_and(|m| !m.is_empty());
    (!ever_ran).then(|| {
        ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"
        ))
    })
}

fn forwarded_query(q: &Query) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for key in FORWARDED {
        if let Some(v) = q.get(key) {
            query.append_pair(key, v);
        }
    }
    query.finish()
}

/// Serves `pods/log`.
pub async fn pod_log(
    state: &Arc<AppState>,
    namespace: &str,
    name: &str,
    q: &Query,
) -> Result<Response, ApiError> {
    let reg = &state.registry;
    let pods = reg
        .lookup("", "v1", "pods")
        .ok_or_else(ApiError::path_not_found)?;
    let pod = reg.get(&pods, Some(namespace), name, "").await?;
    let container = choose_container(&pod, name, q.get("container"))?;
    if let Some(e) = waiting_error(&pod, name, &container) {
        return Err(e);
    }
    let (host, port) = kubelet_client::agent_of_pod(state, &pod, name).await?;
    let path = format!(
        "/containerLogs/{namespace}/{name}/{container}?{}",
        forwarded_query(q)
    );
    let (status, body) = kubelet_client::get(&state.kubelet_tls, &host, port, &path).await?;
    if status != StatusCode::OK {
        let bytes = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return Err(ApiError::bad_request(
            String::from_utf8_lossy(&bytes).trim().to_string(),
        ));
    }
    let stream = body.into_data_stream();
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from_stream(stream))
        .map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn container_choice_messages_match_upstream() {
        let pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let e = choose_container(&pod, "web", None)
            .err()
            .map(|e| e.message)
            .unwrap_or_default();
        assert_eq!(
            e,
            "a container name must be specified for pod web, choose one of: [a b]"
        );
        let e = choose_container(&pod, "web", Some("c"))
            .err()
            .map(|e| e.message)
            .unwrap_or_default();
        assert_eq!(e, "container c is not valid for pod web");
        let pod = json!({"status": {"containerStatuses": [{"name": "a", "state": {"waiting": {"reason": "ContainerCreating"}}}]}});
        let e = waiting_error(&pod, "web", "a")
            .map(|e| e.message)
            .unwrap_or_default();
        assert_eq!(
            e,
            "container \"a\" in pod \"web\" is waiting to start: ContainerCreating"
        );
    }

    #[test]
    fn init_containers_can_be_chosen_and_are_listed() {
        let pod = json!({"spec": {"initContainers": [{"name": "setup"}], "containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"initContainerStatuses": [{"name": "setup", "state": {"waiting": {"reason": "PodInitializing"}}}]}});
        assert_eq!(
            choose_container(&pod, "web", Some("setup")).ok().as_deref(),
            Some("setup")
        );
        let e = choose_container(&pod, "web", None)
            .err()
            .map(|e| e.message)
            .unwrap_or_default();
        assert_eq!(
            e,
            "a container name must be specified for pod web, choose one of: [a b] or one of the init containers: [setup]"
        );
        let e = waiting_error(&pod, "web", "setup")
            .map(|e| e.message)
            .unwrap_or_default();
        assert_eq!(
            e,
            "container \"setup\" in pod \"web\" is waiting to start: PodInitializing"
        );
    }
}
