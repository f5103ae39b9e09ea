//! Building responses: objects and errors in the negotiated media type.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use rkube_apimachinery::ApiError;
use serde_json::Value;

use crate::negotiate::Output;
use crate::state::AppState;

/// How to render a response body.
#[derive(Clone, Copy)]
pub struct Render {
    /// The negotiated representation.
    pub output: Output,
    /// Indent JSON (`?pretty=true`, or a browser/curl User-Agent, as upstream).
    pub pretty: bool,
}

impl Render {
    /// JSON, compact.
    pub const JSON: Render = Render { output: Output::Json, pretty: false };
}

fn json_bytes(v: &Value, pretty: bool) -> Vec<u8> {
    let mut out = if pretty { serde_json::to_vec_pretty(v) } else { serde_json::to_vec(v) }.unwrap_or_default();
    out.push(b'\n');
    out
}

/// A response with the object in the negotiated format.
pub fn object(state: &AppState, status: StatusCode, v: &Value, r: Render) -> Response {
    let (ct, body) = match r.output {
        Output::Protobuf => match state.proto.encode(v) {
            Ok(b) => (crate::negotiate::PROTOBUF, b),
            Err(e) => {
                tracing::debug!(error = %e, "object not encodable as protobuf; answering JSON");
                (crate::negotiate::JSON, json_bytes(v, r.pretty))
            }
        },
        Output::Yaml => match serde_yaml_ng::to_string(v) {
            Ok(s) => (crate::negotiate::YAML, s.into_bytes()),
            Err(e) => return error(state, &ApiError::internal(e), Render::JSON),
        },
        _ => (crate::negotiate::JSON, json_bytes(v, r.pretty)),
    };
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    resp
}

/// A `metav1.Status` error response.
pub fn error(state: &AppState, e: &ApiError, r: Render) -> Response {
    let status = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let render = if r.output == Output::Protobuf { r } else { Render { output: Output::Json, pretty: r.pretty } };
    object(state, status, &e.to_status(), render)
}

/// A plain-text response (health checks).
pub fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut resp = Response::new(Body::from(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    resp.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    resp
}

/// A JSON document with its own media type and caching (OIDC discovery documents).
pub fn json_with_type(status: StatusCode, v: &Value, content_type: &'static str, cache_control: &'static str) -> Response {
    let mut resp = Response::new(Body::from(json_bytes(v, false)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_control));
    resp
}
