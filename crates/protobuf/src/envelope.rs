//! The protobuf envelope and watch framing of apimachinery
//! (pkg/runtime/serializer/protobuf/protobuf.go, pkg/util/framer/framer.go,
//! pkg/apis/meta/v1/watch.go):
//!
//! - an object is `k8s\0` followed by `runtime.Unknown{typeMeta{apiVersion=1, kind=2}=1, raw=2,
//!   contentEncoding=3, contentType=4}` whose `raw` is the object's message;
//! - a watch stream is a sequence of frames, each a 4-byte big-endian length followed by a
//!   `meta.v1.WatchEvent{type=1, object=2 RawExtension{raw=1}}` (no envelope), whose raw bytes
//!   are the object's envelope.

use serde_json::{Map, Value};

use crate::schema::Schema;
use crate::wire::{Reader, WireValue, put_bytes_field};
use crate::{MAGIC, ProtoError, decode, encode};

const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";
const WATCH_EVENT: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.WatchEvent";

/// `k8s\0` + Unknown → JSON object with `kind` and `apiVersion` first.
pub(crate) fn decode(schema: &Schema, body: &[u8]) -> Result<Value, ProtoError> {
    let rest = body.strip_prefix(&MAGIC).ok_or(ProtoError::MissingMagic)?;
    if rest.is_empty() {
        return Err(ProtoError::EmptyBody);
    }
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    let mut reader = Reader::new(rest);
    let bad = |e: String| ProtoError::malformed(UNKNOWN, e);
    while let Some((number, value)) = reader.next_field().map_err(bad)? {
        match (number, value) {
            (1, WireValue::Bytes(type_meta)) => {
                let mut tm = Reader::new(type_meta);
                while let Some((n, v)) = tm.next_field().map_err(bad)? {
                    match (n, v) {
                        (1, WireValue::Bytes(b)) => {
                            api_version = String::from_utf8_lossy(b).into_owned()
                        }
                        (2, WireValue::Bytes(b)) => kind = String::from_utf8_lossy(b).into_owned(),
                        _ => {}
                    }
                }
            }
            (2, WireValue::Bytes(b)) => raw = b,
            // contentEncoding / contentType: upstream's decoder ignores them too.
            _ => {}
        }
    }
    if kind.is_empty() {
        return Err(ProtoError::MissingTypeField {
            field: "Kind",
            context: "the protobuf envelope's typeMeta",
        });
    }
    if api_version.is_empty() {
        return Err(ProtoError::MissingTypeField {
            field: "apiVersion",
            context: "the protobuf envelope's typeMeta",
        });
    }
    let msg = schema
        .lookup(&api_version, &kind)
        .ok_or_else(|| ProtoError::UnsupportedKind {
            api_version: api_version.clone(),
            kind: kind.clone(),
        })?;
    let mut out = Map::new();
    out.insert("kind".into(), Value::String(kind));
    out.insert("apiVersion".into(), Value::String(api_version));
    decode::decode_fields(schema, msg, raw, &mut out)?;
    Ok(Value::Object(out))
}

/// JSON object with `apiVersion` and `kind` → `k8s\0` + Unknown.
pub(crate) fn encode(schema: &Schema, obj: &Value) -> Result<Vec<u8>, ProtoError> {
    let Value::Object(map) = obj else {
        return Err(ProtoError::invalid("expected a JSON object"));
    };
    let text = |key: &str| {
        map.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let kind = text("kind").ok_or(ProtoError::MissingTypeField {
        field: "Kind",
        context: "the object",
    })?;
    let api_version = text("apiVersion").ok_or(ProtoError::MissingTypeField {
        field: "apiVersion",
        context: "the object",
    })?;
    let msg = schema
        .lookup(api_version, kind)
        .ok_or_else(|| ProtoError::UnsupportedKind {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
        })?;
    let entries: Vec<(&str, &Value)> = map
        .iter()
        .filter(|(k, _)| k.as_str() != "kind" && k.as_str() != "apiVersion")
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let mut raw = Vec::new();
    encode::encode_fields(schema, msg, &entries, &mut raw).map_err(|e| e.for_kind(kind))?;
    let mut type_meta = Vec::with_capacity(api_version.len() + kind.len() + 4);
    put_bytes_field(&mut type_meta, 1, api_version.as_bytes());
    put_bytes_field(&mut type_meta, 2, kind.as_bytes());
    let mut out = Vec::with_capacity(raw.len() + type_meta.len() + 16);
    out.extend_from_slice(&MAGIC);
    put_bytes_field(&mut out, 1, &type_meta);
    put_bytes_field(&mut out, 2, &raw);
    // Go writes the (empty) non-pointer contentEncoding and contentType strings too.
    put_bytes_field(&mut out, 3, b"");
    put_bytes_field(&mut out, 4, b"");
    Ok(out)
}

/// One length-prefixed WatchEvent frame.
pub(crate) fn encode_watch_event(
    schema: &Schema,
    event_type: &str,
    obj: &Value,
) -> Result<Vec<u8>, ProtoError> {
    let object = encode(schema, obj)?;
    let mut raw_extension = Vec::with_capacity(object.len() + 6);
    put_bytes_field(&mut raw_extension, 1, &object);
    let mut event = Vec::with_capacity(raw_extension.len() + event_type.len() + 8);
    put_bytes_field(&mut event, 1, event_type.as_bytes());
    put_bytes_field(&mut event, 2, &raw_extension);
    let len = u32::try_from(event.len()).map_err(|_| {
        ProtoError::Frame(format!(
            "event of {} bytes exceeds the 4-byte length prefix",
            event.len()
        ))
    })?;
    let mut frame = Vec::with_capacity(event.len() + 4);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&event);
    Ok(frame)
}

/// Parses one frame produced by [`encode_watch_event`] (or upstream).
pub(crate) fn decode_watch_event(
    schema: &Schema,
    frame: &[u8],
) -> Result<(String, Value), ProtoError> {
    let (len, event) = frame
        .split_first_chunk::<4>()
        .ok_or_else(|| ProtoError::Frame("shorter than the 4-byte length prefix".into()))?;
    let len = u32::from_be_bytes(*len) as usize;
    if len != event.len() {
        return Err(ProtoError::Frame(format!(
            "length prefix says {len} bytes, frame has {}",
            event.len()
        )));
    }
    let bad = |e: String| ProtoError::malformed(WATCH_EVENT, e);
    let mut event_type = String::new();
    let mut object = Value::Null;
    let mut reader = Reader::new(event);
    while let Some((number, value)) = reader.next_field().map_err(bad)? {
        match (number, value) {
            (1, WireValue::Bytes(b)) => event_type = String::from_utf8_lossy(b).into_owned(),
            (2, WireValue::Bytes(raw_extension)) => {
                let mut r = Reader::new(raw_extension);
                while let Some((n, v)) = r.next_field().map_err(bad)? {
                    if let (1, WireValue::Bytes(raw)) = (n, v) {
                        object = if raw.starts_with(&MAGIC) {
                            decode(schema, raw)?
                        } else {
                            serde_json::from_slice(raw).map_err(|e| bad(format!("object: {e}")))?
                        };
                    }
                }
            }
            _ => {}
        }
    }
    Ok((event_type, object))
}
