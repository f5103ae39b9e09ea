//! Remotecommand `v5.channel.k8s.io` over WebSocket (kubectl ≥ 1.30's exec, attach and cp),
//! terminated in the API server and carried to the agent as remotecommand v4 over SPDY, as
//! upstream's `StreamTranslatorHandler` (`apiserver/pkg/util/proxy/streamtranslator.go`) does:
//! container runtimes speak SPDY and the WebSocket protocols up to v4, not v5.
//!
//! On the WebSocket each binary message starts with its channel: 0 stdin, 1 stdout, 2 stderr,
//! 3 error (the `metav1.Status` the command ended with), 4 terminal resize; v5 adds 255, a
//! CLOSE signal whose second byte names the channel the client has finished writing (stdin),
//! which becomes a half-close (FIN) of the SPDY stdin stream so `cat`, `tar` and shells see EOF.

use axum::response::Response;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{HeaderMap, Method, StatusCode};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use rkube_apimachinery::ApiError;
use rkube_spdy::{Connection, StreamWriter};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::{
    Agent, Streams, V5_PROTOCOL, accept_websocket, body_text, normal_close, spdy_upgrade_headers,
};

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
const CLOSE: u8 = 255;

/// The SPDY protocol asked of the agent (the newest the kubelet's streaming server speaks).
const REMOTECOMMAND_V4: &str = "v4.channel.k8s.io";

pub(super) async fn serve(
    headers: &HeaderMap,
    client_upgrade: OnUpgrade,
    agent: Agent,
    streams: Streams,
) -> Result<Response, ApiError> {
    let mut response = agent
        .send(Method::POST, spdy_upgrade_headers(&[REMOTECOMMAND_V4]))
        .await?;
    let status = response.status();
    if status != StatusCode::SWITCHING_PROTOCOLS {
        let message = body_text(response).await;
        return Err(ApiError::internal(format!(
            "unable to upgrade connection: {message}"
        )));
    }
    let accepted = accept_websocket(headers, V5_PROTOCOL)?;
    let agent_upgrade = hyper::upgrade::on(&mut response);
    tokio::spawn(async move {
        let (client, agent) = match tokio::try_join!(client_upgrade, agent_upgrade) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(error = %e, "exec translation upgrade");
                return;
            }
        };
        let websocket =
            WebSocketStream::from_raw_socket(TokioIo::new(client), Role::Server, None).await;
        let spdy = Connection::client(TokioIo::new(agent));
        translate(websocket, spdy, streams).await;
    });
    Ok(accepted)
}

fn header(value: &str) -> rkube_spdy::Headers {
    vec![("streamType".to_string(), value.to_string())]
}

/// A message on `channel`.
fn on_channel(channel: u8, data: &[u8]) -> Message {
    let mut payload = Vec::with_capacity(data.len() + 1);
    payload.push(channel);
    payload.extend_from_slice(data);
    Message::binary(payload)
}

/// Runs one session until the command ended and the client was told how.
pub(crate) async fn translate<C>(websocket: WebSocketStream<C>, spdy: Connection, streams: Streams)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut from_client) = websocket.split();
    let (to_client, mut outgoing) = mpsc::channel::<Message>(64);
    let writer = tokio::spawn(async move {
        while let Some(message) = outgoing.recv().await {
            let closing = matches!(message, Message::Close(_));
            if sink.send(message).await.is_err() || closing {
                break;
            }
        }
    });
    let opened = open_streams(&spdy, streams).await;
    let (mut error, stdin, stdout, stderr, resize) = match opened {
        Ok(s) => s,
        Err(e) => {
            let status = ApiError::internal(e.to_string()).to_status();
            let _ = to_client
                .send(on_channel(ERROR, status.to_string().as_bytes()))
                .await;
            let _ = to_client.send(normal_close()).await;
            drop(to_client);
            let _ = writer.await;
            spdy.close().await;
            return;
        }
    };
    // Client → agent: stdin, resize, the CLOSE signal.
    let input = async move {
        let mut stdin = stdin;
        while let Some(Ok(message)) = from_client.next().await {
            let data = match message {
                Message::Binary(d) => d,
                Message::Close(_) => break,
                _ => continue,
            };
            let Some((&channel, payload)) = data.split_first() else {
                continue;
            };
            match channel {
                STDIN => {
                    if let Some(s) = &stdin
                        && s.write(payload).await.is_err()
                    {
                        break;
                    }
                }
                RESIZE => {
                    if let Some(r) = &resize {
                        let _ = r.write(payload).await;
                    }
                }
                CLOSE if payload.first() == Some(&STDIN) => {
                    if let Some(s) = stdin.take() {
                        let _ = s.close().await;
                    }
                }
                _ => {}
            }
        }
    };
    // Agent → client: stdout and stderr as they come.
    let forward = |receiver: Option<mpsc::Receiver<Bytes>>, channel: u8| {
        let to_client = to_client.clone();
        async move {
            let Some(mut receiver) = receiver else { return };
            while let Some(data) = receiver.recv().await {
                if !data.is_empty() && to_client.send(on_channel(channel, &data)).await.is_err() {
                    return;
                }
            }
        }
    };
    let outputs = async {
        let mut status = Vec::new();
        let (_, _, ()) = tokio::join!(forward(stdout, STDOUT), forward(stderr, STDERR), async {
            while let Some(chunk) = error.read().await {
                status.extend_from_slice(&chunk);
            }
        });
        status
    };
    // The session ends with the command's outputs; stdin may still be open then.
    let input = tokio::spawn(input);
    let status = outputs.await;
    if !status.is_empty() {
        let _ = to_client.send(on_channel(ERROR, &status)).await;
    }
    let _ = to_client.send(normal_close()).await;
    drop(to_client);
    let _ = writer.await;
    input.abort();
    spdy.close().await;
}

type Opened = (
    rkube_spdy::Stream,
    Option<StreamWriter>,
    Option<mpsc::Receiver<Bytes>>,
    Option<mpsc::Receiver<Bytes>>,
    Option<StreamWriter>,
);

/// Opens the v4 streams in kubectl's order: error, stdin, stdout, stderr, resize.
async fn open_streams(spdy: &Connection, streams: Streams) -> Result<Opened, rkube_spdy::Error> {
    let error = spdy.open_stream(header("error")).await?;
    // Only the agent writes on the error stream.
    error.writer().close().await?;
    let stdin = if streams.stdin {
        Some(spdy.open_stream(header("stdin")).await?.writer())
    } else {
        None
    };
    let stdout = if streams.stdout {
        Some(spdy.open_stream(header("stdout")).await?.split().0)
    } else {
        None
    };
    let stderr = if streams.stderr {
        Some(spdy.open_stream(header("stderr")).await?.split().0)
    } else {
        None
    };
    let resize = if streams.tty {
        Some(spdy.open_stream(header("resize")).await?.writer())
    } else {
        None
    };
    Ok((error, stdin, stdout, stderr, resize))
}
