//! The connect subresources `pods/exec`, `pods/attach` and `pods/portforward` (GET and POST),
//! as kube-apiserver serves them (`pkg/registry/core/pod/rest/subresources.go`,
//! `pkg/registry/core/pod/strategy.go` `streamLocation`): the pod and container are checked
//! with upstream's messages, then the request goes to the node agent's `/exec`, `/attach` or
//! `/portForward` endpoint, carrying the options in the kubelet's query form.
//!
//! How the client's connection is carried depends on the protocol it asks for:
//! - SPDY/3.1 upgrades, and WebSocket upgrades with the older channel protocols, are proxied
//!   byte for byte (upstream's `UpgradeAwareHandler`): the agent and the runtime behind it
//!   speak them.
//! - WebSocket `v5.channel.k8s.io` (kubectl ≥ 1.30's default for exec, attach and cp) is
//!   terminated here and translated to remotecommand v4 over SPDY towards the agent
//!   ([`translator`], upstream's `StreamTranslatorHandler`): runtimes do not speak v5.
//! - WebSocket `SPDY/3.1+portforward.k8s.io` (kubectl ≥ 1.31's port-forward) carries SPDY
//!   frames in binary messages; [`tunnel`] relays them to a SPDY upgrade towards the agent
//!   (upstream's `TunnelingHandler`).

mod translator;
mod tunnel;

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use rkube_apimachinery::ApiError;
use serde_json::Value;

use crate::handler::Query;
use crate::kubelet_client;
use crate::pod_logs::choose_container;
use crate::state::AppState;

/// WebSocket subprotocol of remotecommand v5 (adds the stream CLOSE signal).
pub(crate) const V5_PROTOCOL: &str = "v5.channel.k8s.io";
/// WebSocket subprotocol of port-forward tunnelled SPDY.
pub(crate) const TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
const STREAM_PROTOCOL_HEADER: &str = "x-stream-protocol-version";

/// The connect subresources this module serves.
pub(crate) fn serves(group: &str, resource: &str, subresource: &str) -> bool {
    group.is_empty()
        && resource == "pods"
        && matches!(subresource, "exec" | "attach" | "portforward")
}

/// How the client's upgraded connection is carried to the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carriage {
    /// Byte for byte (SPDY, WebSocket v1–v4, or no upgrade at all).
    Proxy,
    /// WebSocket v5 terminated here, SPDY towards the agent.
    TranslateV5,
    /// WebSocket tunnelling SPDY port-forward frames.
    Tunnel,
}

fn websocket_protocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    let has = |name: HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    has(header::CONNECTION, "upgrade") && has(header::UPGRADE, "websocket")
}

fn carriage(subresource: &str, headers: &HeaderMap) -> Carriage {
    if !is_websocket_upgrade(headers) {
        return Carriage::Proxy;
    }
    let protocols = websocket_protocols(headers);
    match subresource {
        "exec" | "attach" if protocols.iter().any(|p| p == V5_PROTOCOL) => Carriage::TranslateV5,
        "portforward" if protocols.iter().any(|p| p == TUNNEL_PROTOCOL) => Carriage::Tunnel,
        _ => Carriage::Proxy,
    }
}

/// The exec/attach options of the request in the kubelet's query form (`streamParams`):
/// `command`s, `input`/`output`/`error`/`tty` = 1.
fn kubelet_stream_query(q: &Query, with_command: bool) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if with_command {
        for c in q.all("command") {
            query.append_pair("command", c);
        }
    }
    for (option, param) in [
        ("stdin", "input"),
        ("stdout", "output"),
        ("stderr", "error"),
        ("tty", "tty"),
    ] {
        if q.flag(option) {
            query.append_pair(param, "1");
        }
    }
    query.finish()
}

/// The ports of a port-forward request, validated as upstream's `ValidatePodPortForwardOptions`
/// would not let a bad one reach the kubelet.
fn kubelet_port_query(q: &Query) -> Result<String, ApiError> {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for port in q.all("ports").iter().flat_map(|p| p.split(',')) {
        match port.trim().parse::<u16>() {
            Ok(p) if p > 0 => {
                query.append_pair("port", &p.to_string());
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "invalid port {port:?}: must be between 1 and 65535"
                )));
            }
        }
    }
    Ok(query.finish())
}

/// What exec/attach open, for the translator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Streams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl Streams {
    fn of(q: &Query) -> Self {
        let tty = q.flag("tty");
        Self {
            stdin: q.flag("stdin"),
            stdout: q.flag("stdout"),
            stderr: q.flag("stderr") && !tty,
            tty,
        }
    }
}

/// Serves a connect subresource request (authorization already done).
pub(crate) async fn serve(
    state: &Arc<AppState>,
    namespace: Option<&str>,
    name: &str,
    subresource: &str,
    mut parts: http::request::Parts,
) -> Result<Response, ApiError> {
    let namespace = namespace.ok_or_else(ApiError::path_not_found)?;
    let q = Query::parse(parts.uri.query());
    let reg = &state.registry;
    let pods = reg
        .lookup("", "v1", "pods")
        .ok_or_else(ApiError::path_not_found)?;
    let pod = reg.get(&pods, Some(namespace), name, "").await?;
    let path = match subresource {
        "portforward" => format!(
            "/portForward/{namespace}/{name}?{}",
            kubelet_port_query(&q)?
        ),
        kind => {
            let container = choose_container(&pod, name, q.get("container"))
                .or_else(|e| ephemeral_container(&pod, q.get("container")).ok_or(e))?;
            let streams = Streams::of(&q);
            if !(streams.stdin || streams.stdout || streams.stderr) {
                return Err(ApiError::bad_request(
                    "you must specify at least 1 of stdin, stdout, stderr",
                ));
            }
            format!(
                "/{kind}/{namespace}/{name}/{container}?{}",
                kubelet_stream_query(&q, kind == "exec")
            )
        }
    };
    let (host, port) = kubelet_client::agent_of_pod(state, &pod, name).await?;
    let agent = kubelet_client::connect(&state.kubelet_tls, &host, port)
        .await
        .map_err(|e| ApiError::internal(format!("error dialing backend: {e}")))?;
    let client_upgrade = parts.extensions.remove::<OnUpgrade>();
    let agent = Agent {
        sender: agent,
        authority: format!("{host}:{port}"),
        path,
    };
    match (carriage(subresource, &parts.headers), client_upgrade) {
        (Carriage::TranslateV5, Some(upgrade)) => {
            translator::serve(&parts.headers, upgrade, agent, Streams::of(&q)).await
        }
        (Carriage::Tunnel, Some(upgrade)) => tunnel::serve(&parts.headers, upgrade, agent).await,
        (_, upgrade) => proxy(&parts.method, &parts.headers, upgrade, agent).await,
    }
}

/// Ephemeral containers are valid exec/attach targets too (`podHasContainerWithName`).
fn ephemeral_container(pod: &Value, asked: Option<&str>) -> Option<String> {
    let asked = asked?;
    pod.pointer("/spec/ephemeralContainers")?
        .as_array()?
        .iter()
        .any(|c| c["name"] == asked)
        .then(|| asked.to_string())
}

/// The agent endpoint a request goes to, with an open connection.
pub(crate) struct Agent {
    pub sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    pub authority: String,
    /// Path and query on the agent.
    pub path: String,
}

impl Agent {
    /// Sends a request with `headers` (plus Host) and returns the agent's response.
    pub(crate) async fn send(
        mut self,
        method: Method,
        headers: HeaderMap,
    ) -> Result<http::Response<hyper::body::Incoming>, ApiError> {
        let mut request = http::Request::builder().method(method).uri(&self.path);
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let request = request
            .header(header::HOST, &self.authority)
            .body(Empty::<Bytes>::new())
            .map_err(ApiError::internal)?;
        self.sender
            .send_request(request)
            .await
            .map_err(|e| ApiError::internal(format!("error dialing backend: {e}")))
    }
}

/// The request headers that go to the agent: the upgrade and its protocol negotiation. The
/// client's credentials stay here (upstream's authentication filter drops them too).
fn forwarded_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in [
        header::CONNECTION,
        header::UPGRADE,
        HeaderName::from_static(STREAM_PROTOCOL_HEADER),
        header::SEC_WEBSOCKET_KEY,
        header::SEC_WEBSOCKET_VERSION,
        header::SEC_WEBSOCKET_PROTOCOL,
        header::USER_AGENT,
    ] {
        for value in headers.get_all(&name) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// Relays the agent's response; a `101 Switching Protocols` joins both upgraded connections.
pub(crate) async fn proxy(
    method: &Method,
    headers: &HeaderMap,
    client_upgrade: Option<OnUpgrade>,
    agent: Agent,
) -> Result<Response, ApiError> {
    let mut response = agent
        .send(method.clone(), forwarded_headers(headers))
        .await?;
    let status = response.status();
    let mut relayed = Response::builder().status(status);
    for (name, value) in response.headers() {
        relayed = relayed.header(name, value);
    }
    if status == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            return Err(ApiError::internal(
                "the node agent switched protocols on a request without an upgrade",
            ));
        };
        let agent_upgrade = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            let (client, agent) = match tokio::try_join!(client_upgrade, agent_upgrade) {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::debug!(error = %e, "streaming upgrade");
                    return;
                }
            };
            let (mut client, mut agent) = (TokioIo::new(client), TokioIo::new(agent));
            if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut agent).await {
                tracing::debug!(error = %e, "streaming session ended");
            }
        });
        return relayed.body(Body::empty()).map_err(ApiError::internal);
    }
    let body = response.into_body().into_data_stream();
    relayed
        .body(Body::from_stream(body))
        .map_err(ApiError::internal)
}

/// The `101` answer accepting a client's WebSocket with `protocol`.
pub(crate) fn accept_websocket(headers: &HeaderMap, protocol: &str) -> Result<Response, ApiError> {
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or_else(|| ApiError::bad_request("missing Sec-WebSocket-Key"))?;
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .header(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_str(protocol).map_err(ApiError::internal)?,
        )
        .body(Body::empty())
        .map_err(ApiError::internal)
}

/// A normal-closure close frame: kubectl reports any other close (even one without a status
/// code) as an error of the session.
pub(crate) fn normal_close() -> tokio_tungstenite::tungstenite::Message {
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    tokio_tungstenite::tungstenite::Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }))
}

/// Headers of a SPDY upgrade towards the agent, offering `protocols`.
pub(crate) fn spdy_upgrade_headers(protocols: &[&str]) -> HeaderMap {
    let mut out = HeaderMap::new();
    out.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    out.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    for p in protocols {
        if let Ok(v) = HeaderValue::from_str(p) {
            out.append(HeaderName::from_static(STREAM_PROTOCOL_HEADER), v);
        }
    }
    out
}

/// Reads an error body of the agent (for messages).
pub(crate) async fn body_text(response: http::Response<hyper::body::Incoming>) -> String {
    let bytes = response
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn protocols_choose_how_the_connection_is_carried() {
        let ws = |proto: &str| {
            headers(&[
                ("connection", "Upgrade"),
                ("upgrade", "websocket"),
                ("sec-websocket-protocol", proto),
            ])
        };
        assert_eq!(
            carriage("exec", &ws("v5.channel.k8s.io")),
            Carriage::TranslateV5
        );
        assert_eq!(
            carriage("attach", &ws("v4.channel.k8s.io, v5.channel.k8s.io")),
            Carriage::TranslateV5
        );
        assert_eq!(carriage("exec", &ws("v4.channel.k8s.io")), Carriage::Proxy);
        assert_eq!(
            carriage("portforward", &ws("SPDY/3.1+portforward.k8s.io")),
            Carriage::Tunnel
        );
        let spdy = headers(&[
            ("connection", "Upgrade"),
            ("upgrade", "SPDY/3.1"),
            ("x-stream-protocol-version", "v4.channel.k8s.io"),
        ]);
        assert_eq!(carriage("exec", &spdy), Carriage::Proxy);
        let forwarded = forwarded_headers(&headers(&[
            ("authorization", "Bearer secret"),
            ("upgrade", "SPDY/3.1"),
            ("x-stream-protocol-version", "v4.channel.k8s.io"),
            ("x-stream-protocol-version", "v3.channel.k8s.io"),
        ]));
        assert!(
            forwarded.get(header::AUTHORIZATION).is_none(),
            "credentials stay in the API server"
        );
        assert_eq!(forwarded.get_all(STREAM_PROTOCOL_HEADER).iter().count(), 2);
    }

    #[test]
    fn options_become_the_kubelet_query() {
        let q = Query::parse(Some(
            "command=sh&command=-c&command=echo+hi&stdin=true&stdout=true&stderr=true&container=app",
        ));
        assert_eq!(
            kubelet_stream_query(&q, true),
            "command=sh&command=-c&command=echo+hi&input=1&output=1&error=1"
        );
        assert_eq!(kubelet_stream_query(&q, false), "input=1&output=1&error=1");
        assert_eq!(
            Streams::of(&Query::parse(Some("stdout=true&stderr=true&tty=true"))),
            Streams {
                stdin: false,
                stdout: true,
                stderr: false,
                tty: true
            }
        );
        assert_eq!(
            kubelet_port_query(&Query::parse(Some("ports=80&ports=8080"))).unwrap(),
            "port=80&port=8080"
        );
        let e = kubelet_port_query(&Query::parse(Some("ports=0"))).unwrap_err();
        assert_eq!(e.code, 400);
    }
}
