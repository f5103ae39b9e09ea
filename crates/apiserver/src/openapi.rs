//! `/openapi/v2` and `/openapi/v3[/<group-version>]` over HTTP, as kube-openapi's `handler` and
//! `handler3` serve them. The documents themselves come from `rkube-openapi`, built on the first
//! request rather than at start.
//!
//! - `/openapi/v2`: JSON, or gnostic protobuf when the client asks for
//!   `application/com.github.proto-openapi.spec.v2@v1.0+protobuf` (kubectl ≤1.27); each form
//!   has its ETag, and `If-None-Match` with it answers 304.
//! - `/openapi/v3`: the root index; each `serverRelativeURL` carries `?hash=` (SHA-512 of the
//!   document). With the current hash a document is served `Cache-Control: public, immutable`;
//!   with a stale one the client is redirected to the current URL, as upstream does.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use rkube_apimachinery::{ApiError, ResourceInfo};
use rkube_openapi::{Catalog, OpenApiDocuments};

/// Media type of the gnostic protobuf form of `/openapi/v2`, as responses carry it. Clients
/// also ask for it as `…spec.v2@v1.0+protobuf` (kubectl ≤1.27), which kube-openapi accepts but
/// never sends back: Go's `mime.ParseMediaType` rejects the `@`.
pub const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
const V2_PROTOBUF_AT: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// Which form of `/openapi/v2` an `Accept` header picks: the highest-quality clause that names
/// JSON, either protobuf spelling, or a wildcard (JSON first, as kube-openapi orders them).
fn v2_form(accept: &str) -> Option<&'static str> {
    let accept = if accept.trim().is_empty() { "*/*" } else { accept };
    let mut clauses: Vec<(f32, &str)> = accept
        .split(',')
        .map(|c| {
            let mut parts = c.split(';');
            let media = parts.next().unwrap_or_default().trim();
            let q = parts.filter_map(|p| p.trim().strip_prefix("q=")).find_map(|q| q.parse().ok()).unwrap_or(1.0);
            (q, media)
        })
        .filter(|(q, _)| *q > 0.0)
        .collect();
    clauses.sort_by(|a, b| b.0.total_cmp(&a.0));
    clauses.into_iter().find_map(|(_, media)| match media {
        "application/json" | "application/*" | "*/*" => Some("application/json"),
        V2_PROTOBUF | V2_PROTOBUF_AT => Some(V2_PROTOBUF),
        _ => None,
    })
}

/// The OpenAPI documents of one server.
pub struct OpenApiV3 {
    documents: Arc<OpenApiDocuments>,
}

impl OpenApiV3 {
    /// Documents for the served resources; nothing is built until a client asks.
    pub fn build(resources: &[Arc<ResourceInfo>], version: &str) -> Self {
        Self { documents: Arc::new(OpenApiDocuments::new(Arc::new(Catalog::new()), resources.to_vec(), version)) }
    }

    /// The definitions: schema lookups for patches, and custom resources' schemas.
    pub fn catalog(&self) -> &Arc<Catalog> {
        self.documents.catalog()
    }

    /// The document builder (to update the served resources when custom resources change).
    pub fn documents(&self) -> &Arc<OpenApiDocuments> {
        &self.documents
    }
}

fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

fn not_modified(etag: &str) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::NOT_MODIFIED;
    if let Ok(v) = HeaderValue::from_str(etag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

fn body_response(body: Vec<u8>, content_type: &'static str, etag: Option<&str>) -> Response {
    let mut r = Response::new(Body::from(body));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(v) = etag.and_then(|e| HeaderValue::from_str(e).ok()) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

/// Builds (or reuses) documents off the async worker: the first build takes a while.
async fn blocking<T: Send + 'static>(docs: &Arc<OpenApiDocuments>, f: fn(&OpenApiDocuments) -> T) -> Result<T, ApiError> {
    let docs = docs.clone();
    tokio::task::spawn_blocking(move || f(&docs)).await.map_err(|e| ApiError::internal(format!("building the OpenAPI document: {e}")))
}

/// `GET /openapi/v2`.
pub async fn v2_response(openapi: &OpenApiV3, headers: &HeaderMap) -> Result<Response, ApiError> {
    let doc = blocking(&openapi.documents, OpenApiDocuments::v2).await?;
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let Some(content_type) = v2_form(accept) else {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_ACCEPTABLE;
        return Ok(r);
    };
    let body = if content_type == V2_PROTOBUF { &doc.protobuf } else { &doc.json };
    let etag = &doc.etag;
    let mut r = if if_none_match(headers, etag) { not_modified(etag) } else { body_response(body.clone(), content_type, Some(etag)) };
    r.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept"));
    Ok(r)
}

/// `GET /openapi/v3` and `GET /openapi/v3/<key>`.
pub async fn v3_response(openapi: &OpenApiV3, path: &str, hash: Option<&str>, headers: &HeaderMap) -> Result<Response, ApiError> {
    let docs = blocking(&openapi.documents, OpenApiDocuments::v3).await?;
    let key = path.trim_start_matches("/openapi/v3").trim_matches('/');
    if key.is_empty() {
        return Ok(body_response(docs.root.clone(), "application/json", None));
    }
    let doc = docs.docs.get(key).ok_or_else(ApiError::path_not_found)?;
    let etag = format!("\"{}\"", doc.hash);
    let response = match hash {
        Some(h) if h != doc.hash => {
            // kube-openapi handler3: a stale hash is redirected to the current document.
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::MOVED_PERMANENTLY;
            if let Ok(v) = HeaderValue::from_str(&format!("/openapi/v3/{key}?hash={}", doc.hash)) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        _ if if_none_match(headers, &etag) => not_modified(&etag),
        Some(_) => {
            let mut r = body_response(doc.body.clone(), "application/json", Some(&etag));
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, immutable"));
            let expires = chrono::Utc::now() + chrono::Duration::days(365);
            if let Ok(v) = HeaderValue::from_str(&expires.format("%a, %d %b %Y %H:%M:%S GMT").to_string()) {
                r.headers_mut().insert(header::EXPIRES, v);
            }
            r
        }
        None => body_response(doc.body.clone(), "application/json", Some(&etag)),
    };
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rkube_apimachinery::resources::builtin::builtin_resources;

    fn openapi() -> OpenApiV3 {
        let resources: Vec<Arc<ResourceInfo>> = builtin_resources().into_iter().map(Arc::new).collect();
        OpenApiV3::build(&resources, "v1.33.5+rkube")
    }

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn header_of(r: &Response, name: header::HeaderName) -> &str {
        r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    #[tokio::test]
    async fn v2_serves_protobuf_and_honours_if_none_match() {
        let openapi = openapi();
        let r = v2_response(&openapi, &headers(&[(header::ACCEPT, V2_PROTOBUF_AT)])).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header_of(&r, header::CONTENT_TYPE), V2_PROTOBUF);
        let etag = header_of(&r, header::ETAG).to_string();
        assert!(etag.starts_with('"') && etag.len() == 130, "{etag}");
        let json = v2_response(&openapi, &headers(&[(header::ACCEPT, "application/json")])).await.unwrap();
        assert_eq!(header_of(&json, header::CONTENT_TYPE), "application/json");
        let again = v2_response(&openapi, &headers(&[(header::ACCEPT, V2_PROTOBUF_AT), (header::IF_NONE_MATCH, &etag)])).await.unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        let refused = v2_response(&openapi, &headers(&[(header::ACCEPT, "text/html")])).await.unwrap();
        assert_eq!(refused.status(), StatusCode::NOT_ACCEPTABLE);
    }

    #[tokio::test]
    async fn v3_documents_are_immutable_under_their_hash() {
        let openapi = openapi();
        let hash = openapi.documents().v3().docs["apis/apps/v1"].hash.clone();
        let current = v3_response(&openapi, "/openapi/v3/apis/apps/v1", Some(&hash), &HeaderMap::new()).await.unwrap();
        assert_eq!(current.status(), StatusCode::OK);
        assert_eq!(header_of(&current, header::CACHE_CONTROL), "public, immutable");
        assert_eq!(header_of(&current, header::ETAG), format!("\"{hash}\""));
        assert!(header_of(&current, header::EXPIRES).ends_with(" GMT"));
        let stale = v3_response(&openapi, "/openapi/v3/apis/apps/v1", Some("0BAD"), &HeaderMap::new()).await.unwrap();
        assert_eq!(stale.status(), StatusCode::MOVED_PERMANENTLY);
        assert_eq!(header_of(&stale, header::LOCATION), format!("/openapi/v3/apis/apps/v1?hash={hash}"));
        let unhashed = v3_response(&openapi, "/openapi/v3/apis/apps/v1", None, &HeaderMap::new()).await.unwrap();
        assert_eq!(header_of(&unhashed, header::CACHE_CONTROL), "");
        let missing = v3_response(&openapi, "/openapi/v3/apis/nope/v1", None, &HeaderMap::new()).await.unwrap_err();
        assert_eq!(missing.code, 404);
    }

    #[test]
    fn v2_accept_negotiation_follows_kube_openapi() {
        assert_eq!(v2_form(V2_PROTOBUF_AT), Some(V2_PROTOBUF));
        assert_eq!(v2_form("application/json, */*"), Some("application/json"));
        assert_eq!(v2_form(""), Some("application/json"));
        assert_eq!(v2_form("application/json;q=0.5, application/com.github.proto-openapi.spec.v2.v1.0+protobuf"), Some(V2_PROTOBUF));
        assert_eq!(v2_form("text/html"), None);
    }
}
