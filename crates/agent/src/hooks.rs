//! Container lifecycle hooks (postStart, preStop) as the kubelet runs them: exec through CRI
//! ExecSync, httpGet from the agent into the pod network, or sleep; the error text is the
//! kubelet's, for the `FailedPostStartHook` / `FailedPreStopHook` events.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod};
use kube::ResourceExt;

use crate::probes;
use crate::runtime::Runtime;

/// Runs `handler` for `container` and gives up after `timeout`.
pub async fn run(
    runtime: &Arc<dyn Runtime>,
    handler: &LifecycleHandler,
    pod: &Pod,
    container: &Container,
    container_id: &str,
    pod_ip: &str,
    timeout: Duration,
) -> Result<(), String> {
    let pod_ref = format!(
        "{}_{}({})",
        pod.name_any(),
        pod.namespace().unwrap_or_default(),
        pod.uid().unwrap_or_default()
    );
    if let Some(exec) = &handler.exec {
        let command = exec.command.clone().unwrap_or_default();
        let shown = command.join(" ");
        let outcome = runtime
            .exec_sync(container_id, &command, timeout.as_secs().max(1) as i64)
            .await;
        let (error, output) = match outcome {
            Ok(r) if r.exit_code == 0 => return Ok(()),
            Ok(r) => (
                format!(
                    "command '{shown}' exited with {}: {}",
                    r.exit_code, r.output
                ),
                r.output,
            ),
            Err(e) => (e.to_string(), String::new()),
        };
        return Err(format!(
            "Exec lifecycle hook ([{shown}]) for Container \"{}\" in Pod \"{pod_ref}\" failed - error: {error}, message: {output:?}",
            container.name
        ));
    }
    if let Some(get) = &handler.http_get {
        let path = get
            .path
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or("/".into());
        let result = async {
            let port = probes::resolve_port(&get.port, container)?;
            let host = get
                .host
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| pod_ip.to_string());
            let headers: Vec<(String, String)> = get
                .http_headers
                .as_deref()
                .unwrap_or_default()
                .iter()
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect();
            let https = get.scheme.as_deref() == Some("HTTPS");
            match tokio::time::timeout(
                timeout,
                probes::http_get(https, &host, port, &path, &headers),
            )
            .await
            {
                Ok(r) => r,
                Err(_) => Err("context deadline exceeded".to_string()),
            }
        }
        .await;
        return result.map_err(|error| {
            format!(
                "HTTP lifecycle hook ({path}) for Container \"{}\" in Pod \"{pod_ref}\" failed - error: {error}, message: \"\"",
                container.name
            )
        });
    }
    if let Some(sleep) = &handler.sleep {
        let wanted = Duration::from_secs(sleep.seconds.max(0) as u64);
        tokio::time::sleep(wanted.min(timeout)).await;
        return Ok(());
    }
    Err(format!(
        "lifecycle hook for Container \"{}\" in Pod \"{pod_ref}\" has no handler this node agent supports",
        container.name
    ))
}
