//! The scrape loop (metrics-server's `pkg/scraper`): every resolution period each Node's
//! resource metrics are fetched over HTTPS from its InternalIP and
//! `status.daemonEndpoints.kubeletEndpoint.Port`, at `/metrics/resource` or the path in the Node
//! annotation `metrics.k8s.io/resource-metrics-path` (simulated nodes share one endpoint and
//! differ by path, as kwok's do), and recorded in the store.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use http::StatusCode;
use http_body_util::BodyExt;
use rkube_registry::Registry;
use rkube_registry::options::ListOptions;
use serde_json::Value;

use super::prometheus;
use super::store::MetricsStore;

/// Node annotation overriding the resource metrics path.
pub const METRICS_PATH_ANNOTATION: &str = "metrics.k8s.io/resource-metrics-path";
/// Nodes scraped at once.
const CONCURRENCY: usize = 32;

/// Where a node's resource metrics are: host, port and path.
pub fn endpoint(node: &Value) -> Option<(String, u16, String)> {
    let addresses = node.pointer("/status/addresses")?.as_array()?;
    let host = addresses
        .iter()
        .find(|a| a["type"] == "InternalIP")
        .or_else(|| addresses.first())
        .and_then(|a| a["address"].as_str())?
        .to_string();
    let port = node.pointer("/status/daemonEndpoints/kubeletEndpoint/Port").and_then(Value::as_u64).filter(|p| *p > 0).unwrap_or(10250);
    let path = node
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(METRICS_PATH_ANNOTATION))
        .and_then(Value::as_str)
        .filter(|p| p.starts_with('/'))
        .unwrap_or("/metrics/resource")
        .to_string();
    Some((host, u16::try_from(port).ok()?, path))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn scrape(node: &Value, tls: &Arc<rustls::ClientConfig>, timeout: Duration) -> Result<prometheus::NodeScrape, String> {
    let (host, port, path) = endpoint(node).ok_or("node has no address")?;
    let fetch = async {
        let (status, body) = crate::kubelet_client::get(tls, &host, port, &path).await.map_err(|e| e.message)?;
        let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        if status != StatusCode::OK {
            return Err(format!("GET {path}: {status}"));
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    let text = tokio::time::timeout(timeout, fetch).await.map_err(|_| format!("timed out after {timeout:?}"))??;
    Ok(prometheus::decode(&text, now_ms()))
}

/// Scrapes every node each `resolution` until the task is aborted.
pub async fn run(registry: Arc<Registry>, store: Arc<MetricsStore>, tls: Arc<rustls::ClientConfig>, resolution: Duration) {
    let mut tick = tokio::time::interval(resolution);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(nodes_res) = registry.lookup("", "v1", "nodes") else { return };
        let nodes = match registry.list(&nodes_res, None, &ListOptions::default()).await {
            Ok(list) => list["items"].as_array().cloned().unwrap_or_default(),
            Err(e) => {
                tracing::debug!(error = %e.message, "metrics scraper: listing nodes");
                continue;
            }
        };
        let names: HashSet<String> = nodes.iter().filter_map(|n| n.pointer("/metadata/name").and_then(Value::as_str).map(String::from)).collect();
        store.retain_nodes(&names);
        // A scrape may take at most the resolution (metrics-server's scrape timeout is below it).
        let timeout = resolution.min(Duration::from_secs(10));
        futures::stream::iter(nodes)
            .map(|node| {
                let store = store.clone();
                let tls = tls.clone();
                async move {
                    let name = node.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
                    match scrape(&node, &tls, timeout).await {
                        Ok(s) => store.record(&name, s),
                        Err(e) => tracing::debug!(node = %name, error = %e, "metrics scraper: scrape failed"),
                    }
                }
            })
            .buffer_unordered(CONCURRENCY)
            .for_each(|()| futures::future::ready(()))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn endpoint_from_address_port_and_path_annotation() {
        let agent = json!({"status": {"addresses": [{"type": "Hostname", "address": "h"}, {"type": "InternalIP", "address": "10.0.0.5"}], "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}});
        assert_eq!(endpoint(&agent), Some(("10.0.0.5".into(), 10250, "/metrics/resource".into())));
        let sim = json!({"metadata": {"annotations": {METRICS_PATH_ANNOTATION: "/metrics/nodes/sim-0/metrics/resource"}},
            "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}], "daemonEndpoints": {"kubeletEndpoint": {"Port": 40123}}}});
        assert_eq!(endpoint(&sim), Some(("127.0.0.1".into(), 40123, "/metrics/nodes/sim-0/metrics/resource".into())));
        assert_eq!(endpoint(&json!({"status": {}})), None);
    }
}
