//! Port-forward over WebSockets (kubectl ≥ 1.31): the client speaks SPDY inside binary
//! WebSocket messages (subprotocol `SPDY/3.1+portforward.k8s.io`); the API server opens a SPDY
//! upgrade to the agent and relays the bytes both ways, as upstream's `TunnelingHandler`
//! (`apiserver/pkg/util/proxy/streamtunnel.go`) does. No SPDY is parsed here.

use axum::body::Body;
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use http::{HeaderMap, Method, StatusCode};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use rkube_apimachinery::ApiError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::{
    Agent, TUNNEL_PROTOCOL, accept_websocket, body_text, normal_close, spdy_upgrade_headers,
};

/// SPDY protocol the agent is asked for (the WebSocket subprotocol without its `SPDY/3.1+`).
const PORT_FORWARD_PROTOCOL: &str = "portforward.k8s.io";

pub(super) async fn serve(
    headers: &HeaderMap,
    client_upgrade: OnUpgrade,
    agent: Agent,
) -> Result<Response, ApiError> {
    let mut response = agent
        .send(Method::POST, spdy_upgrade_headers(&[PORT_FORWARD_PROTOCOL]))
        .await?;
    let status = response.status();
    if status != StatusCode::SWITCHING_PROTOCOLS {
        // The client's handshake fails with the agent's answer (upstream writes it through).
        let message = body_text(response).await;
        return Response::builder()
            .status(status)
            .body(Body::from(message))
            .map_err(ApiError::internal);
    }
    let accepted = accept_websocket(headers, TUNNEL_PROTOCOL)?;
    let agent_upgrade = hyper::upgrade::on(&mut response);
    tokio::spawn(async move {
        let (client, agent) = match tokio::try_join!(client_upgrade, agent_upgrade) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(error = %e, "port-forward tunnel upgrade");
                return;
            }
        };
        let websocket =
            WebSocketStream::from_raw_socket(TokioIo::new(client), Role::Server, None).await;
        relay(websocket, TokioIo::new(agent)).await;
    });
    Ok(accepted)
}

/// Binary messages → agent bytes, agent bytes → binary messages.
async fn relay<C, A>(websocket: WebSocketStream<C>, agent: A)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    A: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut to_client, mut from_client) = websocket.split();
    let (mut from_agent, mut to_agent) = tokio::io::split(agent);
    let upstream = async {
        while let Some(message) = from_client.next().await {
            match message {
                Ok(Message::Binary(data)) => {
                    if to_agent.write_all(&data).await.is_err() {
                        break;
                    }
                }
                Ok(Message::Close(_)) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "port-forward tunnel: client side ended");
                    break;
                }
                Ok(_) => {}
            }
        }
        tracing::debug!("port-forward tunnel: client finished");
        let _ = to_agent.shutdown().await;
    };
    let downstream = async {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match from_agent.read(&mut buf).await {
                Ok(0) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "port-forward tunnel: agent side ended");
                    break;
                }
                Ok(n) => {
                    if to_client
                        .send(Message::binary(buf[..n].to_vec()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        tracing::debug!("port-forward tunnel: agent finished");
        let _ = to_client.send(normal_close()).await;
    };
    // The agent hanging up ends the session (the client was sent a close; its answer is not
    // awaited). The client hanging up half-closes towards the agent, which then ends it.
    tokio::pin!(upstream, downstream);
    tokio::select! {
        () = &mut upstream => downstream.await,
        () = &mut downstream => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails the test naming the step that did not finish in time.
    async fn step<T>(name: &str, f: impl std::future::Future<Output = T>) -> T {
        match tokio::time::timeout(std::time::Duration::from_secs(5), f).await {
            Ok(v) => v,
            Err(_) => panic!("step {name} hung"),
        }
    }

    #[tokio::test]
    async fn bytes_cross_in_both_directions() {
        let (client_end, server_end) = tokio::io::duplex(1 << 16);
        let (agent_here, mut agent_there) = tokio::io::duplex(1 << 16);
        let server = tokio::spawn(async move {
            let ws = WebSocketStream::from_raw_socket(server_end, Role::Server, None).await;
            relay(ws, agent_here).await;
        });
        let mut client = WebSocketStream::from_raw_socket(client_end, Role::Client, None).await;
        step(
            "send",
            client.send(Message::binary(b"\x80\x03\x00\x06".to_vec())),
        )
        .await
        .unwrap();
        let mut got = [0u8; 4];
        step("agent read", agent_there.read_exact(&mut got))
            .await
            .unwrap();
        assert_eq!(&got, b"\x80\x03\x00\x06");
        step("agent write", agent_there.write_all(b"reply"))
            .await
            .unwrap();
        let Some(Ok(Message::Binary(data))) = step("client read", client.next()).await else {
            panic!("expected a binary message")
        };
        assert_eq!(&data[..], b"reply");
        drop(agent_there);
        // The agent hung up: the client is told with a normal close.
        let Some(Ok(Message::Close(Some(frame)))) = step("close", client.next()).await else {
            panic!("expected a close frame")
        };
        assert_eq!(u16::from(frame.code), 1000);
        step("relay end", server).await.unwrap();
    }
}
