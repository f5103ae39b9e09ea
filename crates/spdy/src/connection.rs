//! A SPDY/3.1 client connection over an upgraded byte stream, as Kubernetes' `httpstream/spdy`
//! client uses moby/spdystream: the client opens streams (odd IDs) with headers and waits for
//! each SYN_REPLY, writes DATA, half-closes with FIN, answers PINGs, and reads each stream's
//! DATA until the peer's FIN or RST_STREAM. Like spdystream it does no flow control (it sends
//! no WINDOW_UPDATE and ignores those it gets); kubelets and container runtimes do not ask for it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::Error;
use crate::frame::{self, Frame, RST_CANCEL, RST_REFUSED_STREAM};
use crate::headers::{HeaderDecoder, HeaderEncoder, Headers};

/// DATA frames are cut to this size (spdystream reads any size up to the 24-bit limit).
const MAX_DATA_CHUNK: usize = 32 * 1024;
/// Frames buffered per stream before the connection's reader waits for the stream's reader.
const STREAM_BUFFER: usize = 64;

type Io = Box<dyn AsyncReadWrite>;

/// What the connection runs over (an upgraded HTTP connection).
pub trait AsyncReadWrite: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> AsyncReadWrite for T {}

struct Slot {
    data: Option<mpsc::Sender<Bytes>>,
    reply: Option<oneshot::Sender<Result<Headers, Error>>>,
}

struct Writer {
    io: WriteHalf<Io>,
    encoder: HeaderEncoder,
}

struct Shared {
    writer: Mutex<Writer>,
    streams: Streams,
    next_id: std::sync::atomic::AtomicU32,
    closed: AtomicBool,
}

/// The stream table, behind a std mutex held only for map operations (never across awaits).
#[derive(Default)]
struct Streams(std::sync::Mutex<HashMap<u32, Slot>>);

impl Streams {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<u32, Slot>) -> R) -> R {
        let mut guard = match self.0.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }
}

/// A client connection; clones share it.
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
    done: Arc<tokio::sync::watch::Receiver<bool>>,
}

/// The receiving half of a stream.
pub struct Stream {
    pub id: u32,
    /// The peer's SYN_REPLY headers.
    pub reply: Headers,
    data: mpsc::Receiver<Bytes>,
    writer: StreamWriter,
}

/// The sending half of a stream; clones share it.
#[derive(Clone)]
pub struct StreamWriter {
    id: u32,
    shared: Arc<Shared>,
}

impl Connection {
    /// Starts the connection over `io` (the client side: streams this side opens are odd).
    pub fn client<T: AsyncRead + AsyncWrite + Send + Unpin + 'static>(io: T) -> Self {
        let io: Io = Box::new(io);
        let (read, write) = tokio::io::split(io);
        let shared = Arc::new(Shared {
            writer: Mutex::new(Writer {
                io: write,
                encoder: HeaderEncoder::new(),
            }),
            streams: Default::default(),
            next_id: std::sync::atomic::AtomicU32::new(1),
            closed: AtomicBool::new(false),
        });
        let (done_tx, done_rx) = tokio::sync::watch::channel(false);
        let reader = shared.clone();
        tokio::spawn(async move {
            if let Err(e) = read_frames(read, &reader).await {
                tracing::debug!(error = %e, "SPDY connection ended");
            }
            reader.closed.store(true, Ordering::Release);
            // Every open stream ends: readers see the end, waiters an error.
            let slots: Vec<Slot> = reader.streams.with(|m| m.drain().map(|(_, s)| s).collect());
            for slot in slots {
                if let Some(reply) = slot.reply {
                    let _ = reply.send(Err(Error::Closed));
                }
            }
            let _ = done_tx.send(true);
        });
        Self {
            shared,
            done: Arc::new(done_rx),
        }
    }

    /// Opens a stream with `headers` and waits for the peer's SYN_REPLY.
    pub async fn open_stream(&self, headers: Headers) -> Result<Stream, Error> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let (data_tx, data_rx) = mpsc::channel(STREAM_BUFFER);
        let (reply_tx, reply_rx) = oneshot::channel();
        let id = {
            // IDs must reach the wire in increasing order: take one under the writer lock.
            let mut writer = self.shared.writer.lock().await;
            let id = self.shared.next_id.fetch_add(2, Ordering::AcqRel);
            self.shared.streams.with(|m| {
                m.insert(
                    id,
                    Slot {
                        data: Some(data_tx),
                        reply: Some(reply_tx),
                    },
                )
            });
            let frame = Frame::SynStream {
                stream_id: id,
                associated_to: 0,
                priority: 0,
                fin: false,
                unidirectional: false,
                headers,
            };
            write_frame(&mut writer, &frame).await?;
            id
        };
        let reply = reply_rx.await.map_err(|_| Error::Closed)??;
        Ok(Stream {
            id,
            reply,
            data: data_rx,
            writer: StreamWriter {
                id,
                shared: self.shared.clone(),
            },
        })
    }

    /// Resolves when the peer closed the connection (or it failed).
    pub async fn closed(&self) {
        let mut done = (*self.done).clone();
        let _ = done.wait_for(|d| *d).await;
    }

    /// Says GOAWAY and shuts the write side down.
    pub async fn close(&self) {
        let mut writer = self.shared.writer.lock().await;
        let _ = write_frame(
            &mut writer,
            &Frame::GoAway {
                last_good_stream_id: 0,
                status: 0,
            },
        )
        .await;
        let _ = writer.io.shutdown().await;
    }
}

impl Stream {
    /// The next DATA payload; `None` once the peer half-closed or reset the stream.
    pub async fn read(&mut self) -> Option<Bytes> {
        loop {
            let chunk = self.data.recv().await?;
            // Empty frames (a bare FIN is delivered as the channel's end) carry nothing.
            if !chunk.is_empty() {
                return Some(chunk);
            }
        }
    }

    /// The sending half.
    pub fn writer(&self) -> StreamWriter {
        self.writer.clone()
    }

    /// Splits into the receiving channel and the sending half.
    pub fn split(self) -> (mpsc::Receiver<Bytes>, StreamWriter) {
        (self.data, self.writer)
    }
}

impl StreamWriter {
    /// Sends `data` as DATA frames.
    pub async fn write(&self, data: &[u8]) -> Result<(), Error> {
        for chunk in data.chunks(MAX_DATA_CHUNK) {
            let frame = Frame::Data {
                stream_id: self.id,
                fin: false,
                data: Bytes::copy_from_slice(chunk),
            };
            let mut writer = self.shared.writer.lock().await;
            write_frame(&mut writer, &frame).await?;
        }
        Ok(())
    }

    /// Half-closes the stream (an empty DATA frame with FIN): the peer reads end-of-file.
    pub async fn close(&self) -> Result<(), Error> {
        let frame = Frame::Data {
            stream_id: self.id,
            fin: true,
            data: Bytes::new(),
        };
        let mut writer = self.shared.writer.lock().await;
        write_frame(&mut writer, &frame).await
    }

    /// Resets the stream (RST_STREAM CANCEL).
    pub async fn reset(&self) -> Result<(), Error> {
        self.shared.streams.with(|m| m.remove(&self.id));
        let frame = Frame::RstStream {
            stream_id: self.id,
            status: RST_CANCEL,
        };
        let mut writer = self.shared.writer.lock().await;
        write_frame(&mut writer, &frame).await
    }
}

async fn write_frame(writer: &mut Writer, frame: &Frame) -> Result<(), Error> {
    let mut out = BytesMut::new();
    // Headers are compressed in the order they reach the wire, so encode under the lock.
    frame::encode(&mut writer.encoder, frame, &mut out)?;
    writer.io.write_all(&out).await?;
    writer.io.flush().await?;
    Ok(())
}

async fn read_frames(mut read: ReadHalf<Io>, shared: &Arc<Shared>) -> Result<(), Error> {
    let mut decoder = HeaderDecoder::new();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        while let Some(frame) = frame::decode(&mut decoder, &mut buf)? {
            if !dispatch(frame, shared).await? {
                return Ok(());
            }
        }
        if read.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}

/// Handles one frame from the peer; `false` ends the connection.
async fn dispatch(frame: Frame, shared: &Arc<Shared>) -> Result<bool, Error> {
    match frame {
        Frame::SynReply {
            stream_id,
            fin,
            headers,
        } => {
            let reply = shared.streams.with(|m| {
                let slot = m.get_mut(&stream_id)?;
                if fin {
                    slot.data = None;
                }
                slot.reply.take()
            });
            if let Some(reply) = reply {
                let _ = reply.send(Ok(headers));
            }
        }
        Frame::Data {
            stream_id,
            fin,
            data,
        } => {
            let sender = shared
                .streams
                .with(|m| m.get(&stream_id).and_then(|s| s.data.clone()));
            if let Some(sender) = sender {
                // A reader that went away drops what is sent to it.
                let _ = sender.send(data).await;
            }
            if fin {
                shared.streams.with(|m| {
                    if let Some(slot) = m.get_mut(&stream_id) {
                        slot.data = None;
                    }
                });
            }
        }
        Frame::Headers { stream_id, fin, .. } => {
            if fin {
                shared.streams.with(|m| {
                    if let Some(slot) = m.get_mut(&stream_id) {
                        slot.data = None;
                    }
                });
            }
        }
        Frame::RstStream { stream_id, status } => {
            if let Some(slot) = shared.streams.with(|m| m.remove(&stream_id))
                && let Some(reply) = slot.reply
            {
                let _ = reply.send(Err(Error::Reset(status)));
            }
        }
        Frame::Ping { id } => {
            let mut writer = shared.writer.lock().await;
            write_frame(&mut writer, &Frame::Ping { id }).await?;
        }
        Frame::SynStream { stream_id, .. } => {
            // The client side accepts no pushed streams.
            let mut writer = shared.writer.lock().await;
            let refuse = Frame::RstStream {
                stream_id,
                status: RST_REFUSED_STREAM,
            };
            write_frame(&mut writer, &refuse).await?;
        }
        Frame::GoAway { .. } => return Ok(false),
        Frame::Settings { .. } | Frame::WindowUpdate { .. } => {}
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Codec;
    use crate::headers::header;

    /// Reads frames from the server end of a duplex pipe.
    async fn next_frame(
        io: &mut tokio::io::DuplexStream,
        codec: &mut Codec,
        buf: &mut BytesMut,
    ) -> Frame {
        loop {
            if let Some(f) = codec.decode(buf).unwrap() {
                return f;
            }
            assert!(io.read_buf(buf).await.unwrap() > 0, "client hung up");
        }
    }

    async fn send(io: &mut tokio::io::DuplexStream, codec: &mut Codec, frame: Frame) {
        let mut out = BytesMut::new();
        codec.encode(&frame, &mut out).unwrap();
        io.write_all(&out).await.unwrap();
    }

    #[tokio::test]
    async fn opens_streams_exchanges_data_and_half_closes() {
        let (client_io, mut server) = tokio::io::duplex(1 << 16);
        let connection = Connection::client(client_io);
        let mut codec = Codec::new();
        let mut buf = BytesMut::new();
        let opening = tokio::spawn({
            let connection = connection.clone();
            async move {
                connection
                    .open_stream(vec![("streamType".into(), "stdin".into())])
                    .await
            }
        });
        let Frame::SynStream {
            stream_id, headers, ..
        } = next_frame(&mut server, &mut codec, &mut buf).await
        else {
            panic!("expected SYN_STREAM");
        };
        assert_eq!(stream_id, 1);
        assert_eq!(header(&headers, "streamtype"), Some("stdin"));
        send(
            &mut server,
            &mut codec,
            Frame::SynReply {
                stream_id,
                fin: false,
                headers: vec![],
            },
        )
        .await;
        let mut stream = opening.await.unwrap().unwrap();
        let writer = stream.writer();
        writer.write(b"hello").await.unwrap();
        writer.close().await.unwrap();
        assert_eq!(
            next_frame(&mut server, &mut codec, &mut buf).await,
            Frame::Data {
                stream_id: 1,
                fin: false,
                data: Bytes::from_static(b"hello")
            }
        );
        assert_eq!(
            next_frame(&mut server, &mut codec, &mut buf).await,
            Frame::Data {
                stream_id: 1,
                fin: true,
                data: Bytes::new()
            }
        );
        // The server pings; the client answers with the same id.
        send(&mut server, &mut codec, Frame::Ping { id: 2 }).await;
        assert_eq!(
            next_frame(&mut server, &mut codec, &mut buf).await,
            Frame::Ping { id: 2 }
        );
        for (data, fin) in [(&b"out"[..], false), (&b""[..], true)] {
            let frame = Frame::Data {
                stream_id: 1,
                fin,
                data: Bytes::copy_from_slice(data),
            };
            send(&mut server, &mut codec, frame).await;
        }
        assert_eq!(stream.read().await.as_deref(), Some(&b"out"[..]));
        assert_eq!(stream.read().await, None, "FIN ends the stream");
        // A second stream gets the next odd id; a reset refuses it.
        let second = tokio::spawn({
            let connection = connection.clone();
            async move { connection.open_stream(vec![]).await }
        });
        let Frame::SynStream { stream_id, .. } =
            next_frame(&mut server, &mut codec, &mut buf).await
        else {
            panic!("expected SYN_STREAM");
        };
        assert_eq!(stream_id, 3);
        send(
            &mut server,
            &mut codec,
            Frame::RstStream {
                stream_id,
                status: 3,
            },
        )
        .await;
        assert!(matches!(second.await.unwrap(), Err(Error::Reset(3))));
        drop(server);
        connection.closed().await;
        assert!(matches!(
            connection.open_stream(vec![]).await,
            Err(Error::Closed)
        ));
    }
}
