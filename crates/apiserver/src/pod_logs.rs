//! `GET pods/{name}/log`: checks the pod and container as kube-apiserver does, then streams the
//! log from the node agent's HTTPS endpoint (`/containerLogs/...` on the Node's InternalIP and
//! `status.daemonEndpoints.kubeletEndpoint.Port`), as kube-apiserver does with the kubelet.
//!
//! The API server authenticates to the agent with its kubelet client certificate
//! ([`kubelet_client_config`], CN `kube-apiserver-kubelet-client`). The agent's serving
//! certificate is self-signed and is not verified: upstream's behaviour when
//! `--kubelet-certificate-authority` is not set.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{StatusCode, header};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use rkube_apimachinery::ApiError;
use serde_json::Value;

use crate::handler::Query;
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

fn container_names(pod: &Value, field: &str) -> Vec<String> {
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
fn choose_container(pod: &Value, name: &str, asked: Option<&str>) -> Result<String, ApiError> {
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

/// The node agent's `host:port`.
pub(crate) fn agent_address(node: &Value) -> Option<(String, u16)> {
    let addresses = node.pointer("/status/addresses")?.as_array()?;
    let ip = addresses
        .iter()
        .find(|a| a["type"] == "InternalIP")
        .or_else(|| addresses.first())
        .and_then(|a| a["address"].as_str())?
        .to_string();
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .unwrap_or(10250);
    Some((ip, u16::try_from(port).ok()?))
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
    let node_name = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if node_name.is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let nodes = reg
        .lookup("", "v1", "nodes")
        .ok_or_else(ApiError::path_not_found)?;
    let node = reg.get(&nodes, None, node_name, "").await?;
    let (host, port) = agent_address(&node)
        .ok_or_else(|| ApiError::internal(format!("node {node_name} has no address")))?;
    let path = format!(
        "/containerLogs/{namespace}/{name}/{container}?{}",
        forwarded_query(q)
    );
    let (status, body) = agent_get(&state.kubelet_tls, &host, port, &path).await?;
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

/// GETs `path` from the agent at `host:port`.
pub(crate) async fn agent_get(
    tls: &Arc<rustls::ClientConfig>,
    host: &str,
    port: u16,
    path: &str,
) -> Result<(StatusCode, hyper::body::Incoming), ApiError> {
    let request = http::Request::get(path)
        .header(header::HOST, format!("{host}:{port}"))
        .body(http_body_util::Empty::<Bytes>::new())
        .map_err(ApiError::internal)?;
    let response = agent_request(tls, host, port, request).await?;
    Ok((response.status(), response.into_body()))
}

/// Sends a request to the agent at `host:port` over HTTPS (HTTP/1.1) with `tls`.
pub(crate) async fn agent_request<B>(
    tls: &Arc<rustls::ClientConfig>,
    host: &str,
    port: u16,
    request: http::Request<B>,
) -> Result<http::Response<hyper::body::Incoming>, ApiError>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let path = request.uri().to_string();
    // Go's url.Error: `Get "https://…": <cause>` (the method in title case).
    let method = request.method().as_str().to_ascii_lowercase();
    let mut letters = method.chars();
    let operation: String = letters
        .next()
        .map(|first| first.to_ascii_uppercase().to_string() + letters.as_str())
        .unwrap_or_default();
    let unreachable =
        |e: String| ApiError::internal(format!("{operation} \"https://{host}:{port}{path}\": {e}"));
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let server_name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| unreachable(e.to_string()))?;
    let tls = tokio_rustls::TlsConnector::from(tls.clone())
        .connect(server_name, tcp)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "node agent connection");
        }
    });
    sender
        .send_request(request)
        .await
        .map_err(|e| unreachable(e.to_string()))
}

/// The TLS client configuration for every connection from the API server to a node agent
/// (`pods/log`, `nodes/proxy`, the metrics scraper): the client certificate and key (PEM) the
/// agent authenticates the API server by (upstream's `--kubelet-client-certificate/-key`), and
/// no verification of the agent's serving certificate (see the module doc).
pub fn kubelet_client_config(
    client_identity: Option<(&str, &str)>,
) -> Result<rustls::ClientConfig, ApiError> {
    use rustls::pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(AcceptAnyServerCert(provider.clone()));
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(ApiError::internal)?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let Some((cert_pem, key_pem)) = client_identity else {
        return Ok(builder.with_no_client_auth());
    };
    let chain = rustls::pki_types::CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::internal(format!("kubelet client certificate: {e}")))?;
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| ApiError::internal(format!("kubelet client key: {e}")))?;
    builder
        .with_client_auth_cert(chain, key)
        .map_err(|e| ApiError::internal(format!("kubelet client certificate: {e}")))
}

#[derive(Debug)]
struct AcceptAnyServerCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
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
