//! The simulator's one HTTPS listener standing in for every simulated kubelet's `:10250`.
//!
//! A thousand nodes cannot each have a port, so (as kwok does) all nodes advertise the same
//! address — InternalIP and `daemonEndpoints.kubeletEndpoint.Port` of the listener — and the
//! Node annotation [`METRICS_PATH_ANNOTATION`] names a per-node path
//! `/metrics/nodes/<node>/metrics/resource` that a scraper uses instead of `/metrics/resource`.
//! Served with a self-signed certificate, like a kubelet without a serving certificate.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::{Shared, SimError};

/// Node annotation naming the path of the node's resource metrics on its kubelet endpoint
/// (the convention metrics-server follows for kwok's nodes).
pub const METRICS_PATH_ANNOTATION: &str = "metrics.k8s.io/resource-metrics-path";

/// The path of node `name`'s resource metrics.
pub fn metrics_path(name: &str) -> String {
    format!("/metrics/nodes/{name}/metrics/resource")
}

fn tls_acceptor() -> Result<tokio_rustls::TlsAcceptor, SimError> {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .map_err(|e| SimError::Api(format!("metrics endpoint certificate: {e}")))?;
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).map_err(|e| SimError::Api(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SimError::Api(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .map_err(|e| SimError::Api(e.to_string()))?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(tls)))
}

/// Serves until the task is aborted.
pub(crate) async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) -> Result<(), SimError> {
    let acceptor = tls_acceptor()?;
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                tracing::debug!(error = %e, "metrics endpoint accept");
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else { return };
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(&shared, &req)) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(e) = builder.serve_connection(TokioIo::new(tls), service).await {
                tracing::debug!(error = %e, "metrics endpoint connection");
            }
        });
    }
}

fn handle(shared: &Shared, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let node = path.strip_prefix("/metrics/nodes/").and_then(|rest| rest.strip_suffix("/metrics/resource"));
    let (status, body, content_type) = match node.and_then(|n| shared.config.node_index(n)) {
        Some(index) => (StatusCode::OK, shared.usage.render(index), "text/plain; version=0.0.4; charset=utf-8"),
        None if path == "/healthz" => (StatusCode::OK, "ok".to_string(), "text/plain"),
        None => (StatusCode::NOT_FOUND, format!("404 page not found: {path}\n"), "text/plain"),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}
