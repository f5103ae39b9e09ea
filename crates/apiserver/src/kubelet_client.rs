//! Connections from the API server to node agents' HTTPS endpoints (the kubelet's :10250), as
//! kube-apiserver's kubelet client makes them for `pods/log`, `exec`, `attach`, `portforward`
//! and the metrics scraper: the agent is found at the Node's InternalIP and
//! `status.daemonEndpoints.kubeletEndpoint.Port`.
//!
//! The API server authenticates to the agent with its kubelet client certificate
//! ([`kubelet_client_config`], CN `kube-apiserver-kubelet-client`, kept in
//! `AppState::kubelet_tls`). The agent's serving certificate is self-signed and is not
//! verified: upstream's behaviour when `--kubelet-certificate-authority` is not set.

use std::sync::Arc;

use bytes::Bytes;
use http::{StatusCode, header};
use http_body_util::Empty;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rkube_apimachinery::ApiError;
use serde_json::Value;

use crate::state::AppState;

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

/// The agent of the node `pod` is bound to, with upstream's message for an unbound pod.
pub(crate) async fn agent_of_pod(
    state: &Arc<AppState>,
    pod: &Value,
    name: &str,
) -> Result<(String, u16), ApiError> {
    let node_name = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if node_name.is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let reg = &state.registry;
    let nodes = reg
        .lookup("", "v1", "nodes")
        .ok_or_else(ApiError::path_not_found)?;
    let node = reg.get(&nodes, None, node_name, "").await?;
    agent_address(&node)
        .ok_or_else(|| ApiError::internal(format!("node {node_name} has no address")))
}

/// Opens an HTTP/1.1 connection to the agent over TLS, able to switch protocols (upgrades).
pub(crate) async fn connect<B>(
    tls: &Arc<rustls::ClientConfig>,
    host: &str,
    port: u16,
) -> Result<SendRequest<B>, String>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| e.to_string())?;
    // Streams carry small interactive writes (keystrokes, SPDY frames in pieces): no Nagle delay.
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let server_name =
        rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(tls.clone())
        .connect(server_name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        if let Err(e) = connection.with_upgrades().await {
            tracing::debug!(error = %e, "node agent connection");
        }
    });
    Ok(sender)
}

/// GETs `path` from the agent at `host:port`.
pub(crate) async fn get(
    tls: &Arc<rustls::ClientConfig>,
    host: &str,
    port: u16,
    path: &str,
) -> Result<(StatusCode, hyper::body::Incoming), ApiError> {
    let request = http::Request::get(path)
        .header(header::HOST, format!("{host}:{port}"))
        .body(Empty::<Bytes>::new())
        .map_err(ApiError::internal)?;
    let response = request_to_agent(tls, host, port, request).await?;
    Ok((response.status(), response.into_body()))
}

/// Sends a request to the agent at `host:port` over HTTPS (HTTP/1.1) with `tls`.
pub(crate) async fn request_to_agent<B>(
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
    let mut sender = connect(tls, host, port).await.map_err(unreachable)?;
    sender
        .send_request(request)
        .await
        .map_err(|e| unreachable(e.to_string()))
}

/// The TLS client configuration for every connection from the API server to a node agent
/// (`pods/log`, exec/attach/portforward, `nodes/proxy`, the metrics scraper): the client
/// certificate and key (PEM) the agent authenticates the API server by (upstream's
/// `--kubelet-client-certificate/-key`), and no verification of the agent's serving certificate
/// (see the module doc).
pub fn kubelet_client_config(
    client_identity: Option<(&str, &str)>,
) -> Result<rustls::ClientConfig, ApiError> {
    use rustls::pki_types::pem::PemObject;
    let builder = rkube_pki::insecure::any_server_certificate_builder().map_err(ApiError::internal)?;
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

