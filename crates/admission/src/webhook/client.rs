//! POSTs an AdmissionReview over HTTPS, trusting the configuration's `caBundle`.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::context::Context;

/// Where a clientConfig points: host to connect to, port, TLS server name and path.
struct Target {
    connect_host: String,
    port: u16,
    server_name: String,
    path: String,
    url: String,
}

async fn target(ctx: &Context<'_>, config: &Value) -> Result<Target, String> {
    if let Some(url) = config["url"].as_str() {
        let rest = url.strip_prefix("https://").ok_or_else(|| format!("webhook url must use https: {url}"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "/".to_string()),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (h.to_string(), p.parse::<u16>().map_err(|e| format!("bad port in {url}: {e}"))?),
            _ => (authority.to_string(), 443),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        return Ok(Target { connect_host: host.clone(), port, server_name: host, path, url: url.to_string() });
    }
    let svc = &config["service"];
    let (ns, name) = (svc["namespace"].as_str().unwrap_or(""), svc["name"].as_str().unwrap_or(""));
    let port = svc["port"].as_u64().unwrap_or(443) as u16;
    let path = svc["path"].as_str().unwrap_or("/").to_string();
    let server_name = format!("{name}.{ns}.svc");
    let url = format!("https://{server_name}:{port}{path}");
    // Without a service proxy on this host, the webhook is reached at one of the service's
    // ready endpoint addresses, on the target port of the service port.
    let service = ctx.get("", "v1", "services", Some(ns), name).await.map_err(|e| e.message)?.ok_or_else(|| format!("service \"{name}\" not found"))?;
    let target_port = service["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["port"].as_u64() == Some(u64::from(port)))
        .and_then(|p| p["targetPort"].as_u64())
        .unwrap_or(u64::from(port)) as u16;
    let endpoints = ctx.get("", "v1", "endpoints", Some(ns), name).await.map_err(|e| e.message)?;
    let ip = endpoints
        .as_ref()
        .and_then(|e| e["subsets"][0]["addresses"][0]["ip"].as_str().map(str::to_string))
        .ok_or_else(|| format!("no endpoints available for service \"{name}\""))?;
    Ok(Target { connect_host: ip, port: target_port, server_name, path, url })
}

fn tls_config(ca_bundle: Option<&str>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(b64) = ca_bundle {
        let pem = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|e| format!("invalid caBundle: {e}"))?;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|e| format!("invalid caBundle: {e}"))?;
            roots.add(cert).map_err(|e| format!("invalid caBundle: {e}"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// Sends `review` and returns the decoded answer; errors read as upstream's
/// `failed to call webhook: Post "<url>": <why>`.
pub async fn post(ctx: &Context<'_>, config: &Value, review: &Value, timeout: Duration) -> Result<Value, String> {
    let t = target(ctx, config).await?;
    let call = exchange(&t, config["caBundle"].as_str(), review);
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("failed to call webhook: Post \"{}?timeout={}s\": {e}", t.url, timeout.as_secs())),
        Err(_) => Err(format!(
            "failed to call webhook: Post \"{}?timeout={}s\": context deadline exceeded",
            t.url,
            timeout.as_secs()
        )),
    }
}

async fn exchange(t: &Target, ca_bundle: Option<&str>, review: &Value) -> Result<Value, String> {
    let tls = tokio_rustls::TlsConnector::from(Arc::new(tls_config(ca_bundle)?));
    let tcp = tokio::net::TcpStream::connect((t.connect_host.as_str(), t.port)).await.map_err(|e| format!("dial tcp {}:{}: {e}", t.connect_host, t.port))?;
    let name = rustls::pki_types::ServerName::try_from(t.server_name.clone()).map_err(|e| e.to_string())?;
    let stream = tls.connect(name, tcp).await.map_err(|e| format!("tls: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    let driver = tokio::spawn(conn);
    let body = serde_json::to_vec(review).map_err(|e| e.to_string())?;
    let req = http::Request::post(format!("{}?timeout={}s", t.path, 10))
        .header(http::header::HOST, format!("{}:{}", t.server_name, t.port))
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    driver.abort();
    if !status.is_success() {
        return Err(format!("server responded with status {}", status.as_u16()));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("decoding the response: {e}"))
}
