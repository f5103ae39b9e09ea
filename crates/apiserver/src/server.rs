//! Serving the app over TLS: accept, handshake, attach the client-certificate identity, hand the
//! connection to hyper (HTTP/1.1 or HTTP/2 by ALPN).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::state::UserInfo;

/// How long open connections get to finish after shutdown starts.
const DRAIN: Duration = Duration::from_secs(5);

/// The identity of a verified client certificate: CN is the user, O values are groups.
fn identity(certs: Option<&[rustls::pki_types::CertificateDer<'static>]>) -> Option<UserInfo> {
    let der = certs?.first()?;
    match rkube_pki::peer_identity(der.as_ref()) {
        Ok((name, mut groups)) => {
            groups.push("system:authenticated".to_string());
            Some(UserInfo::new(name, groups))
        }
        Err(e) => {
            tracing::debug!(error = %e, "client certificate without a usable subject");
            None
        }
    }
}

/// Serves until `shutdown` resolves, then drains connections for a few seconds.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let user = identity(tls.get_ref().1.peer_certificates());
            let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                if let Some(u) = &user {
                    req.extensions_mut().insert(u.clone());
                }
                app.clone().oneshot(req.map(axum::body::Body::new))
            });
            let builder = Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), svc);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::info!("connections still open after the drain period; closing them");
    }
}
