//! A minimal HTTPS JSON client for the authenticators that call out (OIDC discovery and JWKS,
//! the TokenReview webhook): one HTTP/1.1 request per connection, trusting a given CA bundle
//! (or the client certificate of a webhook kubeconfig).

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// How long a call may take before the token is refused.
const TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTPS client with its own trust roots.
#[derive(Clone)]
pub struct HttpsClient {
    tls: Arc<rustls::ClientConfig>,
}

impl HttpsClient {
    /// Trusts the PEM certificates of `ca_pem`; presents `identity` (cert PEM, key PEM) if given.
    pub fn new(ca_pem: &[u8], identity: Option<(&[u8], &[u8])>) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut &ca_pem[..]) {
            roots.add(cert.map_err(|e| format!("reading CA certificates: {e}"))?).map_err(|e| format!("adding a CA certificate: {e}"))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder =
            rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions().map_err(|e| e.to_string())?.with_root_certificates(roots);
        let tls = match identity {
            Some((cert, key)) => {
                let chain = rustls_pemfile::certs(&mut &cert[..]).collect::<Result<Vec<_>, _>>().map_err(|e| format!("reading client certificate: {e}"))?;
                let key = rustls_pemfile::private_key(&mut &key[..]).map_err(|e| format!("reading client key: {e}"))?.ok_or("no client key found")?;
                builder.with_client_auth_cert(chain, key).map_err(|e| format!("client certificate: {e}"))?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(Self { tls: Arc::new(tls) })
    }

    /// GETs `url` and parses the JSON answer (any status but 200 is an error).
    pub async fn get_json(&self, url: &str) -> Result<Value, String> {
        self.call(http::Method::GET, url, None).await
    }

    /// POSTs `body` as JSON to `url` and parses the JSON answer.
    pub async fn post_json(&self, url: &str, body: &Value) -> Result<Value, String> {
        self.call(http::Method::POST, url, Some(body)).await
    }

    async fn call(&self, method: http::Method, url: &str, body: Option<&Value>) -> Result<Value, String> {
        tokio::time::timeout(TIMEOUT, self.call_once(method, url, body)).await.map_err(|_| format!("{url}: timed out"))?
    }

    async fn call_once(&self, method: http::Method, url: &str, body: Option<&Value>) -> Result<Value, String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
        if uri.scheme_str() != Some("https") {
            return Err(format!("{url}: only https URLs are supported"));
        }
        let host = uri.host().ok_or_else(|| format!("{url}: no host"))?.trim_start_matches('[').trim_end_matches(']').to_string();
        let port = uri.port_u16().unwrap_or(443);
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await.map_err(|e| format!("{url}: {e}"))?;
        let server_name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| format!("{url}: {e}"))?;
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone()).connect(server_name, tcp).await.map_err(|e| format!("{url}: {e}"))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(|e| format!("{url}: {e}"))?;
        tokio::spawn(connection);
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let authority = uri.authority().map(|a| a.as_str().to_string()).unwrap_or(host);
        let path = uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, authority)
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(bytes::Bytes::from(bytes)))
            .map_err(|e| format!("{url}: {e}"))?;
        let response = sender.send_request(request).await.map_err(|e| format!("{url}: {e}"))?;
        let status = response.status();
        let body = response.into_body().collect().await.map_err(|e| format!("{url}: {e}"))?.to_bytes();
        if !status.is_success() {
            return Err(format!("{url}: {status}: {}", String::from_utf8_lossy(&body)));
        }
        serde_json::from_slice(&body).map_err(|e| format!("{url}: invalid JSON: {e}"))
    }
}
