//! The agent's HTTPS endpoint (the kubelet's :10250): `/containerLogs/<ns>/<pod>/<container>`
//! for the API server's `pods/log`, the streaming endpoints `/exec`, `/attach` and
//! `/portForward` ([`crate::streaming`]), `/stats/summary` and `/metrics/resource`
//! ([`crate::stats`]), and `/healthz`, each behind [`crate::endpoint_auth`] (client certificates
//! of the cluster CA or bearer tokens, then a SubjectAccessReview). Served with a self-signed certificate, as a
//! kubelet without a serving certificate does; the API server does not verify it (upstream's
//! behaviour without `--kubelet-certificate-authority`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::AgentError;
use crate::endpoint_auth::EndpointAuth;
use crate::logs::{self, LogOptions};
use crate::runtime::Runtime;
use crate::streaming;

pub(crate) type Body = UnsyncBoxBody<Bytes, std::io::Error>;

pub(crate) fn text(status: StatusCode, message: String) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from(message))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *r.status_mut() = status;
    r
}

/// Verifies client certificates against the cluster CA; connections without one are accepted
/// (bearer tokens, or refused with 401 by [`EndpointAuth`]).
fn client_verifier(
    client_ca: &[Vec<u8>],
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, AgentError> {
    let mut roots = rustls::RootCertStore::empty();
    for der in client_ca {
        roots
            .add(rustls::pki_types::CertificateDer::from(der.clone()))
            .map_err(|e| AgentError::Config(format!("cluster CA certificate: {e}")))?;
    }
    rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .allow_unauthenticated()
        .build()
        .map_err(|e| AgentError::Config(format!("client certificate verifier: {e}")))
}

/// Serves until the task is aborted. Every request is authenticated and authorized by `auth`
/// first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    log_root: PathBuf,
    runtime: Arc<dyn Runtime>,
    names: Vec<String>,
    stats: Arc<crate::stats::StatsProvider>,
    auth: Arc<EndpointAuth>,
    client_ca: Vec<Vec<u8>>,
) -> Result<(), AgentError> {
    let cert = rcgen::generate_simple_self_signed(names)
        .map_err(|e| AgentError::Config(format!("agent serving certificate: {e}")))?;
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der())
        .map_err(|e| AgentError::Config(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| AgentError::Config(e.to_string()))?;
    let builder = if client_ca.is_empty() {
        tracing::warn!("no cluster CA: the agent endpoint accepts bearer tokens only");
        builder.with_no_client_auth()
    } else {
        builder.with_client_cert_verifier(client_verifier(&client_ca, provider)?)
    };
    let mut tls = builder
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .map_err(|e| AgentError::Config(e.to_string()))?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let log_root = Arc::new(log_root);
    loop {
        let (tcp, peer): (_, SocketAddr) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "agent endpoint accept");
                continue;
            }
        };
        // Streaming sessions write small interactive pieces: no Nagle delay.
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let log_root = log_root.clone();
        let stats = stats.clone();
        let auth = auth.clone();
        let runtime = runtime.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            // The leaf rustls verified against the cluster CA, if the client sent one.
            let client_certificate: Option<Arc<[u8]>> = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|leaf| Arc::from(leaf.as_ref()));
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let log_root = log_root.clone();
                let stats = stats.clone();
                let auth = auth.clone();
                let client_certificate = client_certificate.clone();
                let runtime = runtime.clone();
                async move {
                    let admitted = auth
                        .admit(
                            client_certificate.as_deref(),
                            req.method(),
                            req.uri().path(),
                            req.headers(),
                        )
                        .await;
                    if let Err(refusal) = admitted {
                        return Ok::<_, Infallible>(text(refusal.status, refusal.message));
                    }
                    if streaming::is_streaming_path(req.uri().path()) {
                        return Ok(streaming::serve(&runtime, req).await);
                    }
                    Ok(handle(&log_root, &stats, &runtime, req).await)
                }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "agent endpoint connection");
            }
        });
    }
}

async fn handle(
    log_root: &std::path::Path,
    stats: &crate::stats::StatsProvider,
    runtime: &Arc<dyn Runtime>,
    req: Request<Incoming>,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    if path == "/healthz" {
        return text(StatusCode::OK, "ok".into());
    }
    if let Some(reply) = crate::stats::serve(stats, &path, req.uri().query()).await {
        let mut response = text(reply.status, reply.body);
        if let Ok(v) = http::HeaderValue::from_str(reply.content_type) {
            response.headers_mut().insert(http::header::CONTENT_TYPE, v);
        }
        return response;
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let ["containerLogs", namespace, pod, container] = parts.as_slice() else {
        return text(StatusCode::NOT_FOUND, format!("no handler for {path}"));
    };
    let options = LogOptions::from_query(req.uri().query().unwrap_or(""));
    let Some((_, file)) =
        logs::find_log_file(log_root, namespace, pod, container, options.previous)
    else {
        let message = if options.previous {
            format!("previous terminated container \"{container}\" in pod \"{pod}\" not found")
        } else {
            format!("container \"{container}\" in pod \"{pod}\" has no logs")
        };
        return text(StatusCode::NOT_FOUND, message);
    };
    let content = match tokio::fs::read(&file).await {
        Ok(c) => c,
        Err(e) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reading {}: {e}", file.display()),
            );
        }
    };
    let complete = content
        .iter()
        .rposition(|b| *b == b'\n')
        .map(|i| i + 1)
        .unwrap_or(0);
    let rendered = logs::render(
        &String::from_utf8_lossy(&content[..complete]),
        options.timestamps,
    );
    let first = match options.tail_lines {
        Some(n) => logs::tail(&rendered, n),
        None => rendered,
    };
    if !options.follow {
        return text(StatusCode::OK, first);
    }
    let body = follow(runtime.clone(), file, complete as u64, first, options.timestamps);
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::OK;
    r
}

/// How often a follow with nothing new asks the runtime whether the container still runs
/// (the kubelet's `stateCheckPeriod` is 5 s; sooner ends `logs -f` closer to the exit).
const STATE_CHECK_PERIOD: Duration = Duration::from_secs(1);

/// Streams what is appended to the file after `offset`, until the container writing it has
/// exited (as the kubelet's follow ends), the file is removed, or a newer attempt's log
/// appears next to it (the container was restarted or the pod deleted).
fn follow(runtime: Arc<dyn Runtime>, file: PathBuf, offset: u64, first: String, timestamps: bool) -> Body {
    struct State {
        runtime: Arc<dyn Runtime>,
        file: PathBuf,
        offset: u64,
        pending: Option<String>,
        timestamps: bool,
        last_state_check: tokio::time::Instant,
        exited: bool,
    }
    let state = State {
        runtime,
        file,
        offset,
        pending: Some(first),
        timestamps,
        last_state_check: tokio::time::Instant::now(),
        exited: false,
    };
    let stream = futures::stream::unfold(state, |mut s| async move {
        if let Some(first) = s.pending.take() {
            return Some((Ok(Frame::data(Bytes::from(first))), s));
        }
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let Ok(mut f) = tokio::fs::File::open(&s.file).await else {
                return None;
            };
            if f.seek(std::io::SeekFrom::Start(s.offset)).await.is_err() {
                return None;
            }
            let mut more = Vec::new();
            if f.read_to_end(&mut more).await.is_err() {
                return None;
            }
            let complete = more
                .iter()
                .rposition(|b| *b == b'\n')
                .map(|i| i + 1)
                .unwrap_or(0);
            if complete > 0 {
                s.offset += complete as u64;
                let out = logs::render(&String::from_utf8_lossy(&more[..complete]), s.timestamps);
                return Some((Ok(Frame::data(Bytes::from(out))), s));
            }
            if s.exited || newer_attempt_exists(&s.file) {
                return None;
            }
            if s.last_state_check.elapsed() >= STATE_CHECK_PERIOD {
                s.last_state_check = tokio::time::Instant::now();
                // One more read once the exit is seen: what it wrote just before exiting.
                s.exited = !container_may_write(s.runtime.as_ref(), &s.file).await;
            }
        }
    });
    BodyExt::boxed_unsync(StreamBody::new(stream.boxed()))
}

/// False once the runtime reports the container that writes `file`
/// (`<log-root>/<ns>_<pod>_<uid>/<container>/<attempt>.log`) exited or gone; true while it is
/// created or running, and when the runtime cannot tell (a follow must not end on a hiccup).
async fn container_may_write(runtime: &dyn Runtime, file: &std::path::Path) -> bool {
    let Some((uid, container, attempt)) = log_file_owner(file) else {
        return true;
    };
    let Ok(sandboxes) = runtime.list_sandboxes().await else {
        return true;
    };
    for sandbox in sandboxes.iter().filter(|s| s.pod_uid == uid) {
        let Ok(containers) = runtime.list_containers(&sandbox.id).await else {
            return true;
        };
        if containers.iter().any(|c| {
            c.name == container
                && c.attempt == attempt
                && matches!(c.state, crate::runtime::ContainerState::Created | crate::runtime::ContainerState::Running)
        }) {
            return true;
        }
    }
    false
}

/// Pod UID, container name and attempt of a pod log file's path.
fn log_file_owner(file: &std::path::Path) -> Option<(String, String, u32)> {
    let attempt = file.file_stem()?.to_str()?.parse().ok()?;
    let container_dir = file.parent()?;
    let container = container_dir.file_name()?.to_str()?.to_string();
    let pod_dir = container_dir.parent()?.file_name()?.to_str()?;
    let uid = pod_dir.rsplit('_').next()?.to_string();
    Some((uid, container, attempt))
}

fn newer_attempt_exists(file: &std::path::Path) -> bool {
    let current: Option<u32> = file
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse().ok());
    let (Some(current), Some(dir)) = (current, file.parent()) else {
        return true;
    };
    std::fs::read_dir(dir)
        .map(|entries| {
            entries.filter_map(|e| e.ok()).any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .strip_suffix(".log")
                    .and_then(|n| n.parse::<u32>().ok())
                    .is_some_and(|n| n > current)
            })
        })
        .unwrap_or(true)
}

#[cfg(test)]
mod follow_tests {
    use super::*;

    #[test]
    fn a_log_file_names_its_pod_container_and_attempt() {
        let file = std::path::Path::new("/var/log/pods/default_web-0_0f1e2d3c-aaaa-bbbb/httpd/2.log");
        assert_eq!(
            log_file_owner(file),
            Some(("0f1e2d3c-aaaa-bbbb".to_string(), "httpd".to_string(), 2))
        );
        assert_eq!(log_file_owner(std::path::Path::new("/x/y.log")), None);
    }
}
