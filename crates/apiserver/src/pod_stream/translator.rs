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

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use rkube_spdy::frame::Codec;
    use rkube_spdy::header as spdy_header;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// The agent's side: a SPDY server speaking remotecommand v4 over a pipe.
    struct FakeAgent {
        io: tokio::io::DuplexStream,
        codec: Codec,
        buf: BytesMut,
    }

    impl FakeAgent {
        async fn frame(&mut self) -> rkube_spdy::Frame {
            loop {
                if let Some(f) = self.codec.decode(&mut self.buf).unwrap() {
                    return f;
                }
                assert!(
                    self.io.read_buf(&mut self.buf).await.unwrap() > 0,
                    "translator hung up"
                );
            }
        }

        async fn send(&mut self, frame: rkube_spdy::Frame) {
            let mut out = BytesMut::new();
            self.codec.encode(&frame, &mut out).unwrap();
            self.io.write_all(&out).await.unwrap();
        }

        /// Accepts the next stream; returns its id and streamType.
        async fn accept(&mut self) -> (u32, String) {
            loop {
                if let rkube_spdy::Frame::SynStream {
                    stream_id, headers, ..
                } = self.frame().await
                {
                    let kind = spdy_header(&headers, "streamtype")
                        .unwrap_or_default()
                        .to_string();
                    self.send(rkube_spdy::Frame::SynReply {
                        stream_id,
                        fin: false,
                        headers: vec![],
                    })
                    .await;
                    return (stream_id, kind);
                }
            }
        }
    }

    #[tokio::test]
    async fn v5_messages_become_v4_streams_and_back() {
        let (client_end, server_end) = tokio::io::duplex(1 << 16);
        let (translator_end, agent_end) = tokio::io::duplex(1 << 16);
        let session = tokio::spawn(async move {
            let ws = WebSocketStream::from_raw_socket(server_end, Role::Server, None).await;
            let streams = Streams {
                stdin: true,
                stdout: true,
                stderr: true,
                tty: false,
            };
            translate(ws, Connection::client(translator_end), streams).await;
        });
        let mut agent = FakeAgent {
            io: agent_end,
            codec: Codec::new(),
            buf: BytesMut::new(),
        };
        let mut opened = Vec::new();
        for _ in 0..4 {
            opened.push(agent.accept().await);
        }
        let kinds: Vec<&str> = opened.iter().map(|(_, k)| k.as_str()).collect();
        assert_eq!(
            kinds,
            ["error", "stdin", "stdout", "stderr"],
            "kubectl's order"
        );
        let id = |kind: &str| {
            opened
                .iter()
                .find(|(_, k)| k == kind)
                .map(|(i, _)| *i)
                .unwrap()
        };

        let mut client = WebSocketStream::from_raw_socket(client_end, Role::Client, None).await;
        client
            .send(Message::binary(b"\x00typed".to_vec()))
            .await
            .unwrap();
        client
            .send(Message::binary(vec![CLOSE, STDIN]))
            .await
            .unwrap();
        // stdin arrives as DATA, then the CLOSE signal as FIN (the error stream's own FIN first).
        let mut stdin = Vec::new();
        loop {
            match agent.frame().await {
                rkube_spdy::Frame::Data {
                    stream_id,
                    fin,
                    data,
                } if stream_id == id("stdin") => {
                    stdin.extend_from_slice(&data);
                    if fin {
                        break;
                    }
                }
                _ => {}
            }
        }
        assert_eq!(stdin, b"typed");
        for (kind, data) in [("stdout", &b"out"[..]), ("stderr", b"err")] {
            agent
                .send(rkube_spdy::Frame::Data {
                    stream_id: id(kind),
                    fin: true,
                    data: Bytes::copy_from_slice(data),
                })
                .await;
        }
        let status = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#;
        agent
            .send(rkube_spdy::Frame::Data {
                stream_id: id("error"),
                fin: true,
                data: Bytes::from_static(status),
            })
            .await;

        let mut received = Vec::new();
        while let Some(Ok(message)) = client.next().await {
            match message {
                Message::Binary(d) => received.push(d.to_vec()),
                Message::Close(frame) => {
                    assert_eq!(
                        frame.map(|f| u16::from(f.code)),
                        Some(1000),
                        "a normal close"
                    );
                    break;
                }
                _ => {}
            }
        }
        received.sort();
        let mut want = vec![
            b"\x01out".to_vec(),
            b"\x02err".to_vec(),
            [&[ERROR][..], status].concat(),
        ];
        want.sort();
        assert_eq!(received, want);
        drop(client);
        session.await.unwrap();
    }
}
