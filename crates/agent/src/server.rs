//! The agent's HTTPS endpoint (the kubelet's :10250): `/containerLogs/<ns>/<pod>/<container>`
//! for the API server's `pods/log`, the streaming endpoints `/exec`, `/attach` and
//! `/portForward` ([`crate::streaming`]), and `/healthz`. Served with a self-signed certificate, as a
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

/// Serves until the task is aborted.
pub async fn serve(
    listener: tokio::net::TcpListener,
    log_root: PathBuf,
    runtime: Arc<dyn Runtime>,
    names: Vec<String>,
) -> Result<(), AgentError> {
    let cert = rcgen::generate_simple_self_signed(names)
        .map_err(|e| AgentError::Config(format!("agent serving certificate: {e}")))?;
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der())
        .map_err(|e| AgentError::Config(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| AgentError::Config(e.to_string()))?
        .with_no_client_auth()
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
        let runtime = runtime.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let log_root = log_root.clone();
                let runtime = runtime.clone();
                async move {
                    if streaming::is_streaming_path(req.uri().path()) {
                        return Ok::<_, Infallible>(streaming::serve(&runtime, req).await);
                    }
                    Ok::<_, Infallible>(handle(&log_root, req).await)
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

async fn handle(log_root: &std::path::Path, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    if path == "/healthz" {
        return text(StatusCode::OK, "ok".into());
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
    let body = follow(file, complete as u64, first, options.timestamps);
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::OK;
    r
}

/// Streams what is appended to the file after `offset`, until the file is removed or a newer
/// attempt's log appears next to it (the container was restarted or the pod deleted).
fn follow(file: PathBuf, offset: u64, first: String, timestamps: bool) -> Body {
    struct State {
        file: PathBuf,
        offset: u64,
        pending: Option<String>,
        timestamps: bool,
    }
    let state = State {
        file,
        offset,
        pending: Some(first),
        timestamps,
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
            if newer_attempt_exists(&s.file) {
                return None;
            }
        }
    });
    BodyExt::boxed_unsync(StreamBody::new(stream.boxed()))
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
