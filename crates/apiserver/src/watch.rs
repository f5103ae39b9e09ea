//! Streaming WATCH responses (apiserver `pkg/endpoints/handlers/watch.go`): chunked JSON lines,
//! length-prefixed protobuf frames, or one-row Tables; BOOKMARKs when asked for; the stream ends
//! at `timeoutSeconds`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use rkube_apimachinery::{ApiError, ResourceInfo};
use rkube_registry::ListOptions;
use rkube_registry::CacheEvent;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::encode::Render;
use crate::handler::Query;
use crate::negotiate::Output;
use crate::state::AppState;
use crate::table::{self, IncludeObject};

/// How often a watch that asked for bookmarks gets one (upstream: about once a minute).
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);

/// Default watch lifetime when the client sets none (upstream: 30–60 minutes, randomised).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// Frames buffered between the event task and the socket.
const FRAME_BUFFER: usize = 64;

struct Encoder {
    state: Arc<AppState>,
    output: Output,
    include: IncludeObject,
    kind: String,
    api_version: String,
    sent_headers: bool,
    /// Printer columns when the resource is a custom resource.
    custom_columns: Option<Vec<rkube_registry::crd::PrinterColumn>>,
}

impl Encoder {
    fn frame(&mut self, event_type: &str, object: &Value) -> Bytes {
        match self.output {
            Output::Protobuf => match self.state.proto.encode_watch_event(event_type, object) {
                Ok(b) => return Bytes::from(b),
                Err(e) => tracing::warn!(error = %e, "watch event not encodable as protobuf"),
            },
            Output::Table if event_type != "ERROR" && event_type != "BOOKMARK" => {
                let t = match &self.custom_columns {
                    Some(cols) => crate::custom_table::to_table(object, false, cols, self.include, !self.sent_headers, &self.kind, &self.api_version),
                    None => table::to_table(object, false, self.include, !self.sent_headers, &self.kind, &self.api_version),
                };
                self.sent_headers = true;
                return line(&json!({"type": event_type, "object": t}));
            }
            Output::PartialMetadata if event_type != "ERROR" => {
                return line(&json!({"type": event_type, "object": table::partial_metadata(object)}));
            }
            _ => {}
        }
        line(&json!({"type": event_type, "object": object}))
    }
}

impl Encoder {
    /// The frame of an event every unfiltered watcher gets alike: encoded by the first watcher
    /// that needs it in this format and version, then shared (a Table stream is per watcher:
    /// only its first frame carries column definitions).
    fn shared_frame(&mut self, watch: &rkube_registry::WatchStart, event_type: &'static str, shared: &CacheEvent) -> Result<Bytes, ApiError> {
        let format = match self.output {
            Output::Protobuf => "protobuf",
            Output::Json => "json",
            _ => {
                let object = watch.decode_shared(shared)?;
                return Ok(self.frame(event_type, &object));
            }
        };
        let key = format!("{format} {} {} {event_type}", self.api_version, self.kind);
        shared.encoded_with(&key, |ev| {
            let object = watch.decode_shared(ev)?;
            Ok(self.frame(event_type, &object))
        })
    }
}

fn line(v: &Value) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

/// Opens the watch and returns the streaming response. Errors before the stream starts (bad
/// selectors) become ordinary Status responses; an expired resourceVersion becomes a 200 with
/// one ERROR event, as upstream's cacher answers.
pub async fn serve(state: Arc<AppState>, res: Arc<ResourceInfo>, ns: Option<&str>, opts: ListOptions, q: &Query, render: Render) -> Result<Response, ApiError> {
    let bookmarks = q.flag("allowWatchBookmarks");
    let send_initial = match q.get("sendInitialEvents") {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ => None,
    };
    if send_initial == Some(true) && (opts.resource_version_match != "NotOlderThan" || !bookmarks) {
        return Err(ApiError::invalid(
            "meta.k8s.io",
            "ListOptions",
            "",
            &[rkube_apimachinery::FieldError::forbidden(
                "sendInitialEvents",
                "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled and resourceVersionMatch is set to NotOlderThan and allowWatchBookmarks is set to true",
            )],
        ));
    }
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT);
    let mut enc = Encoder {
        state: state.clone(),
        output: render.output,
        include: IncludeObject::parse(q.get("includeObject")),
        kind: res.kind.clone(),
        api_version: res.api_version(),
        sent_headers: false,
        custom_columns: state.registry.custom_version(&res).map(|(_, v)| v.columns),
    };
    let content_type = match render.output {
        Output::Protobuf => "application/vnd.kubernetes.protobuf;stream=watch",
        _ => "application/json",
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(FRAME_BUFFER);
    match state.registry.watch(res.clone(), ns, opts, send_initial).await {
        Ok(mut w) => {
            tokio::spawn(async move {
                let deadline = tokio::time::sleep(timeout);
                tokio::pin!(deadline);
                let mut tick = tokio::time::interval(BOOKMARK_INTERVAL);
                tick.tick().await;
                loop {
                    tokio::select! {
                        _ = &mut deadline => break,
                        _ = tx.closed() => break,
                        _ = tick.tick(), if bookmarks => {
                            if let Some(rev) = w.progress() {
                                let b = w.bookmark(rev);
                                if tx.send(Ok(enc.frame("BOOKMARK", &b.object))).await.is_err() { break; }
                            }
                        }
                        ev = w.next() => match ev {
                            None => break,
                            Some(Ok(ev)) => {
                                if ev.event_type == "BOOKMARK" && !bookmarks { continue; }
                                let frame = match &ev.shared {
                                    Some(shared) => match enc.shared_frame(&w, ev.event_type, shared) {
                                        Ok(frame) => frame,
                                        Err(e) => {
                                            let _ = tx.send(Ok(enc.frame("ERROR", &e.to_status()))).await;
                                            break;
                                        }
                                    },
                                    None => enc.frame(ev.event_type, &ev.object),
                                };
                                if tx.send(Ok(frame)).await.is_err() { break; }
                            }
                            Some(Err(e)) => {
                                let _ = tx.send(Ok(enc.frame("ERROR", &e.to_status()))).await;
                                break;
                            }
                        }
                    }
                }
            });
        }
        Err(e) if e.code == 410 => {
            let frame = enc.frame("ERROR", &e.to_status());
            let _ = tx.try_send(Ok(frame));
            drop(tx);
        }
        Err(e) => return Err(e),
    }
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, private"));
    Ok(resp)
}
