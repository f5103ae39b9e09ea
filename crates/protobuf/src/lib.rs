//! Kubernetes protobuf (`application/vnd.kubernetes.protobuf`) ⇄ JSON, for every built-in type.
//!
//! kubectl ≥ 1.30 sends protobuf bodies for `create <kind>`, `create token` and `auth`
//! commands and asks for protobuf responses for describe/events/rollout. rkube keeps objects as
//! JSON, so this crate converts at the edge, generically: one descriptor set describes every
//! message (generated from the k8s-pb crate with JSON names from k8s-openapi, see
//! `examples/protogen`), and the conversion walks it. There is no per-type code; the only
//! type-aware parts are the Go types with their own JSON form (Time, MicroTime, Duration,
//! IntOrString, Quantity, RawExtension, FieldsV1, apiextensions JSON and JSONSchemaPropsOr*),
//! listed in `schema.rs`.
//!
//! ```
//! let codec = rkube_protobuf::ProtoCodec::new()?;
//! let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
//! let bytes = codec.encode(&pod)?;
//! assert!(bytes.starts_with(b"k8s\0"));
//! assert_eq!(codec.decode(&bytes)?, pod);
//! # Ok::<(), rkube_protobuf::ProtoError>(())
//! ```

mod decode;
mod encode;
mod envelope;
mod error;
mod schema;
mod timefmt;
mod wire;

use serde_json::Value;

pub use error::ProtoError;

/// The 4-byte prefix of every protobuf-encoded object (`k8s` + encoding style 0).
pub const MAGIC: [u8; 4] = *b"k8s\0";

/// The media type of protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The media type of a protobuf watch stream (frames from [`ProtoCodec::encode_watch_event`]).
pub const WATCH_CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";

/// Converts Kubernetes objects between protobuf and JSON. Build it once (a few milliseconds:
/// it compiles plans for ~1300 messages) and share it behind an `Arc`; it is immutable.
#[derive(Debug)]
pub struct ProtoCodec {
    schema: schema::Schema,
}

impl ProtoCodec {
    /// Loads the embedded schema. Fails only if the committed descriptor or hints are broken.
    pub fn new() -> Result<Self, ProtoError> {
        Ok(ProtoCodec {
            schema: schema::Schema::load()?,
        })
    }

    /// Decodes a protobuf body (`k8s\0` + `runtime.Unknown`) into the object's JSON, with
    /// `kind` and `apiVersion` taken from the envelope's typeMeta.
    pub fn decode(&self, body: &[u8]) -> Result<Value, ProtoError> {
        envelope::decode(&self.schema, body)
    }

    /// Encodes a JSON object that carries `apiVersion` and `kind` (an object, a `<Kind>List`,
    /// a `Status`, ...) into a protobuf body. JSON keys the schema does not know are dropped,
    /// as Go drops them when decoding JSON into the typed struct.
    pub fn encode(&self, obj: &Value) -> Result<Vec<u8>, ProtoError> {
        envelope::encode(&self.schema, obj)
    }

    /// Whether objects of this apiVersion and kind have a protobuf form. False for custom
    /// resources and for kinds upstream serves only as JSON, such as `meta.k8s.io/v1` Table.
    pub fn supports(&self, api_version: &str, kind: &str) -> bool {
        self.schema.lookup(api_version, kind).is_some()
    }

    /// Encodes one watch event as upstream's protobuf watch stream does: a 4-byte big-endian
    /// length, then `meta.v1.WatchEvent{type, object: RawExtension{raw: <encode(obj)>}}`.
    /// `event_type` is `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `ERROR` (with a Status).
    pub fn encode_watch_event(&self, event_type: &str, obj: &Value) -> Result<Vec<u8>, ProtoError> {
        envelope::encode_watch_event(&self.schema, event_type, obj)
    }

    /// Decodes one frame produced by [`ProtoCodec::encode_watch_event`] into `(type, object)`;
    /// the frame must be exactly one length prefix plus its event.
    pub fn decode_watch_event(&self, frame: &[u8]) -> Result<(String, Value), ProtoError> {
        envelope::decode_watch_event(&self.schema, frame)
    }
}

#[cfg(test)]
mod full_sample_tests;
