//! The dispatcher and the resource handlers (apiserver `pkg/endpoints/handlers/{get,create,
//! update,patch,delete}.go`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use futures::{FutureExt, StreamExt};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use rkube_apimachinery::selectors::{FieldSelector, LabelSelector};
use rkube_apimachinery::{ApiError, ResourceInfo, meta};
use rkube_registry::crd::CustomVersion;
use rkube_registry::{DeleteOptions, DeleteOutcome, ListOptions};
use serde_json::{Value, json};

use crate::custom_resource::{self, FieldValidation, ScaleChange};
use crate::discovery;
use crate::encode::{self, Render};
use crate::field_validation;
use crate::negotiate::{self, Input, Output};
use crate::openapi;
use crate::patch::{self, PatchType};
use crate::request_info::{self, RequestInfo};
use crate::state::{AppState, UserInfo};
use crate::table::{self, IncludeObject};

/// Query parameters: `get` answers the first value, `all` every value (for list parameters such
/// as `dryRun`).
pub struct Query(HashMap<String, Vec<String>>);

impl Query {
    pub(crate) fn parse(q: Option<&str>) -> Self {
        let mut m: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in form_urlencoded::parse(q.unwrap_or("").as_bytes()) {
            m.entry(k.into_owned()).or_default().push(v.into_owned());
        }
        Self(m)
    }

    /// A parameter's (first) value.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).and_then(|v| v.first()).map(String::as_str)
    }

    /// Every value of a parameter, in order.
    pub fn all(&self, k: &str) -> Vec<&str> {
        self.0.get(k).map(|v| v.iter().map(String::as_str).collect()).unwrap_or_default()
    }

    /// A boolean parameter (`true`/`1`).
    pub fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true" | "1"))
    }
}

/// Builds the app.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .fallback(dispatch)
        .with_state(state)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            let e = ApiError::internal("the server panicked while handling the request");
            let mut r = Response::new(Body::from(e.to_status().to_string()));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        }))
}

fn wants_pretty(headers: &HeaderMap, q: &Query) -> bool {
    if let Some(p) = q.get("pretty") {
        return p == "true" || p == "1";
    }
    let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    ua.starts_with("curl") || ua.starts_with("Wget") || ua.starts_with("Mozilla/5.0")
}

async fn dispatch(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let Some(audit) = state.audit.clone() else {
        let audit_id = crate::audit::audit_id_of(req.headers());
        return with_audit_id(Box::pin(serve_request(state, req, &mut None)).await, &audit_id);
    };
    let source_ip = req.extensions().get::<std::net::SocketAddr>().map(|a| a.ip().to_string()).unwrap_or_else(|| "127.0.0.1".into());
    let mut record = Some(crate::audit::AuditLog::begin(req.uri(), req.headers(), source_ip));
    let audit_state = state.clone();
    // A panic is logged as the request's Panic stage, then left to the panic layer to answer.
    let served = std::panic::AssertUnwindSafe(Box::pin(serve_request(state, req, &mut record))).catch_unwind().await;
    let response = match served {
        Ok(r) => r,
        Err(panic) => {
            if let Some(rec) = &record {
                let message = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned()).unwrap_or_default();
                audit.panicked(rec, &message);
            }
            std::panic::resume_unwind(panic);
        }
    };
    let Some(record) = record else { return response };
    let response = with_audit_id(response, &record.audit_id);
    let state = audit_state;
    let code = response.status().as_u16();
    // Upstream's long-running requests (`BasicLongRunningRequestCheck`).
    let streaming = record.info.as_ref().is_some_and(|i| {
        matches!(i.verb.as_str(), "watch" | "proxy") || matches!(i.subresource.as_str(), "attach" | "exec" | "proxy" | "log" | "portforward")
    });
    if streaming && code < 400 {
        // A long-running request logs ResponseStarted now and ResponseComplete when its stream
        // ends (the client went away or the server closed it).
        audit.started(&record, code);
        let (parts, body) = response.into_parts();
        let complete = CompleteOnDrop { audit, record, code };
        let stream = body.into_data_stream().map(move |chunk| {
            let _ = &complete;
            chunk
        });
        return Response::from_parts(parts, Body::from_stream(stream));
    }
    let level = audit.level_of(&record);
    // Bodies are read back only when the event records them.
    if streaming || level == crate::audit::Level::None || (level < crate::audit::Level::RequestResponse && code < 400) {
        audit.finish(&record, code, None, None);
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    // Responses are decoded as the client got them (JSON, YAML or protobuf).
    let value = decode_body(&state, &parts.headers, &bytes).ok();
    let status = value.as_ref().filter(|v| v["kind"] == "Status");
    let response_object = value.as_ref().filter(|_| level >= crate::audit::Level::RequestResponse);
    audit.finish(&record, code, status, response_object);
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// Writes a long-running request's ResponseComplete event when its body is dropped.
struct CompleteOnDrop {
    audit: Arc<crate::audit::AuditLog>,
    record: crate::audit::Record,
    code: u16,
}

impl Drop for CompleteOnDrop {
    fn drop(&mut self) {
        self.audit.finish(&self.record, self.code, None, None);
    }
}

/// Every response names its request's audit ID, as upstream's `WithAuditInit`.
fn with_audit_id(mut response: Response, audit_id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(audit_id) {
        response.headers_mut().insert(crate::audit::AUDIT_ID_HEADER, v);
    }
    response
}

/// Serves one request; `audit` (when auditing) learns the user, request and body on the way.
async fn serve_request(state: Arc<AppState>, req: Request, audit: &mut Option<crate::audit::Record>) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let q = Query::parse(parts.uri.query());
    let render = Render { output: Output::Json, pretty: wants_pretty(&parts.headers, &q) };
    let accept = parts.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).map(str::to_string);

    // Health and version are public, as upstream's system:public-info-viewer allows.
    match path.as_str() {
        "/healthz" | "/livez" | "/healthz/ping" | "/livez/ping" | "/readyz/ping" => {
            return encode::text(StatusCode::OK, "ok");
        }
        "/readyz" => {
            return if state.ready.load(Ordering::Acquire) {
                encode::text(StatusCode::OK, "ok")
            } else {
                encode::text(StatusCode::INTERNAL_SERVER_ERROR, "[-]poststarthook/rkube-bootstrap failed: not finished\nreadyz check failed")
            };
        }
        "/version" | "/version/" => return encode::object(&state, StatusCode::OK, &version_info(&state), render),
        _ => {}
    }
    // Without credentials a request is anonymous, and only what the policy grants
    // system:unauthenticated is allowed (kube-apiserver's default --anonymous-auth=true).
    let requestor = match parts.extensions.get::<UserInfo>() {
        Some(u) => u.clone(),
        None => match rkube_auth::authn::bearer_token(&parts.headers) {
            Some(token) => match state.tokens.authenticate(token).await {
                Ok(u) => u,
                Err(reasons) => {
                    for r in &reasons {
                        tracing::debug!(reason = %r, "bearer token refused");
                    }
                    return encode::error(&state, &ApiError::unauthorized("Unauthorized"), render);
                }
            },
            None => UserInfo::anonymous(),
        },
    };
    let user = match rkube_auth::impersonation::impersonate(&state.authorizer, &requestor, &parts.headers).await {
        Ok(u) => u,
        Err(e) => return encode::error(&state, &e, render),
    };
    let info = request_info::parse(&parts.method, &path, q.flag("watch"));
    let attrs = crate::authz::attributes(user.clone(), &parts.method, &path, &info, q.get("fieldSelector"));
    let decision = state.authorizer.authorize(&attrs).await;
    if let Some(rec) = audit.as_mut() {
        rec.requestor = Some(requestor.clone());
        rec.user = Some(user.clone());
        rec.info = Some(info.clone());
        rec.decision = Some((decision.allowed, decision.reason.clone()));
        if let Some(log) = &state.audit {
            log.received(rec);
        }
    }
    if !decision.allowed {
        return encode::error(&state, &attrs.forbidden(&decision.reason), render);
    }
    if path == "/openapi/v2" || path == "/openapi/v3" || path.starts_with("/openapi/v3/") {
        let served = if path == "/openapi/v2" {
            openapi::v2_response(&state.openapi_v3, &parts.headers).await
        } else {
            openapi::v3_response(&state.openapi_v3, &path, q.get("hash"), &parts.headers).await
        };
        return served.unwrap_or_else(|e| encode::error(&state, &e, Render::JSON));
    }
    // ServiceAccount issuer discovery (upstream `pkg/serviceaccount` OpenID metadata server).
    match path.trim_end_matches('/') {
        "/.well-known/openid-configuration" => {
            return encode::json_with_type(StatusCode::OK, &state.service_account_tokens.openid_configuration(), "application/json", "public, max-age=3600");
        }
        "/openid/v1/jwks" => {
            return encode::json_with_type(StatusCode::OK, &state.service_account_tokens.jwks(), "application/jwk-set+json", "public, max-age=3600");
        }
        _ => {}
    }
    if info.prefix == "apis" && info.group == crate::metrics::GROUP {
        return match crate::metrics::serve(&state, &info, &q).await {
            Ok(v) if info.is_resource && negotiate::choose_output(accept.as_deref(), false, true) == Some(Output::Table) => {
                let t = crate::metrics::table(&v, crate::table::IncludeObject::parse(q.get("includeObject")));
                encode::object(&state, StatusCode::OK, &t, Render { output: Output::Table, pretty: render.pretty })
            }
            Ok(v) => encode::object(&state, StatusCode::OK, &v, Render { output: Output::Json, pretty: render.pretty }),
            Err(e) => encode::error(&state, &e, render),
        };
    }
    if info.is_resource && info.group.is_empty() && info.resource == "nodes" && info.subresource == "proxy" {
        return crate::node_proxy::serve(&state, &info, parts, body).await.unwrap_or_else(|e| encode::error(&state, &e, render));
    }
    if !info.is_resource {
        return discovery_response(&state, &path, &info, accept.as_deref(), render);
    }
    // exec/attach/portforward carry an upgraded connection, not a body: served before reading one.
    if crate::pod_stream::serves(&info.group, &info.resource, &info.subresource) {
        if !matches!(info.verb.as_str(), "get" | "create") {
            return encode::error(&state, &ApiError::method_not_supported("", &format!("pods/{}", info.subresource), &info.verb), render);
        }
        return crate::pod_stream::serve(&state, info.namespace.as_deref(), &info.name, &info.subresource, parts).await.unwrap_or_else(|e| encode::error(&state, &e, render));
    }
    let limit = state.config.max_body_bytes;
    let bytes = match axum::body::to_bytes(body, limit + 1).await {
        Ok(b) if b.len() > limit => {
            return encode::error(&state, &ApiError::too_large(format!("limit is {limit}")), render);
        }
        Ok(b) => b,
        Err(e) => return encode::error(&state, &ApiError::bad_request(format!("reading request body: {e}")), render),
    };
    if let Some(rec) = audit.as_mut().filter(|_| !bytes.is_empty()) {
        // Recorded as the object the request carries (kubectl sends protobuf), patches as sent.
        rec.body = if info.verb == "patch" { serde_json::from_slice(&bytes).ok() } else { decode_body(&state, &parts.headers, &bytes).ok() };
    }
    let writer = match field_writer(&info, &parts.headers, &q) {
        Ok(w) => w,
        Err(e) => return encode::error(&state, &e, render),
    };
    let handled = rkube_auth::with_user(user, resource(&state, &info, &parts.headers, &q, accept.as_deref(), bytes, render));
    // Admission plugins (PodSecurity warn, webhooks) add warnings; kubectl prints them.
    let ((result, warnings), annotations) = rkube_registry::admission::collect_audit_annotations(Box::pin(rkube_registry::admission::collect_warnings(async move {
        match writer {
            Some(w) => rkube_registry::ownership::with_writer(w, handled).await,
            None => handled.await,
        }
    })))
    .await;
    if let Some(rec) = audit.as_mut() {
        rec.annotations = annotations;
    }
    let response = match result {
        Ok(r) => r,
        Err((e, r)) => encode::error(&state, &e, r),
    };
    field_validation::with_warnings(response, &warnings)
}

/// The field manager of a mutating request: `fieldManager`, else the product part of the
/// User-Agent (upstream's `managerOrUserAgent`), validated as upstream does.
fn field_writer(info: &RequestInfo, headers: &HeaderMap, q: &Query) -> Result<Option<rkube_registry::ownership::Writer>, ApiError> {
    let options_kind = match info.verb.as_str() {
        "create" => "CreateOptions",
        "update" => "UpdateOptions",
        "patch" => "PatchOptions",
        _ => return Ok(None),
    };
    let manager = match q.get("fieldManager").filter(|m| !m.is_empty()) {
        Some(m) => {
            if m.len() > 128 {
                return Err(ApiError::invalid("meta.k8s.io", options_kind, "", &[rkube_apimachinery::FieldError::too_long("fieldManager", 128)]));
            }
            if m.chars().any(char::is_control) {
                let e = rkube_apimachinery::FieldError::invalid("fieldManager", m, "must only contain printable characters");
                return Err(ApiError::invalid("meta.k8s.io", options_kind, "", &[e]));
            }
            m.to_string()
        }
        None => {
            let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
            ua.split('/').next().unwrap_or("").chars().filter(|c| !c.is_control()).take(128).collect()
        }
    };
    let applying = info.verb == "patch"
        && headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(PatchType::from_content_type) == Some(PatchType::Apply);
    Ok(Some(rkube_registry::ownership::Writer { manager, subresource: info.subresource.clone(), applying }))
}

fn version_info(state: &AppState) -> Value {
    let v = &state.config.git_version;
    let minor = v.trim_start_matches('v').split('.').nth(1).unwrap_or("33").to_string();
    json!({
        "major": "1",
        "minor": minor,
        "emulationMajor": "1",
        "emulationMinor": minor,
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
        "gitVersion": v,
        "gitCommit": option_env!("RKUBE_GIT_COMMIT").unwrap_or("unknown"),
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, if std::env::consts::ARCH == "x86_64" { "amd64" } else { std::env::consts::ARCH }),
    })
}

fn discovery_response(state: &AppState, path: &str, info: &RequestInfo, accept: Option<&str>, render: Render) -> Response {
    let resources = state.registry.resources();
    let trimmed = path.trim_end_matches('/');
    let aggregated = discovery::wants_aggregated(accept);
    let doc = match trimmed {
        "/api" if aggregated => return aggregated_response(state, discovery::aggregated(&resources, true), render),
        "/apis" if aggregated => {
            let mut doc = discovery::aggregated(&resources, false);
            crate::metrics::add_to_aggregated(&mut doc);
            return aggregated_response(state, doc, render);
        }
        "/api" => Some(discovery::api_versions(&state.config.advertise_address)),
        "/apis" => {
            let mut doc = discovery::api_group_list(&resources);
            crate::metrics::add_to_group_list(&mut doc);
            Some(doc)
        }
        _ if info.prefix == "api" && !info.version.is_empty() => discovery::api_resource_list(&resources, "", &info.version),
        _ if info.prefix == "apis" && !info.version.is_empty() => discovery::api_resource_list(&resources, &info.group, &info.version),
        _ if info.prefix == "apis" && !info.group.is_empty() => discovery::api_group(&resources, &info.group),
        _ => None,
    };
    match doc {
        Some(d) => encode::object(state, StatusCode::OK, &d, Render { output: Output::Json, pretty: render.pretty }),
        None => encode::error(state, &ApiError::path_not_found(), render),
    }
}

fn aggregated_response(state: &AppState, doc: Value, render: Render) -> Response {
    let mut r = encode::object(state, StatusCode::OK, &doc, Render { output: Output::Json, pretty: render.pretty });
    let body_hash = {
        use sha2::Digest;
        hex::encode(&sha2::Sha256::digest(doc.to_string().as_bytes())[..16])
    };
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(discovery::AGGREGATED_V2));
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public"));
    if let Ok(v) = HeaderValue::from_str(&format!("\"{body_hash}\"")) {
        h.insert(header::ETAG, v);
    }
    h.insert("X-Varied-Accept", HeaderValue::from_static(discovery::AGGREGATED_V2));
    r
}

type HandlerResult = Result<Response, (ApiError, Render)>;

/// Parses list options from the query.
pub fn list_options(q: &Query) -> Result<ListOptions, ApiError> {
    let label_selector = match q.get("labelSelector").filter(|s| !s.is_empty()) {
        Some(s) => Some(LabelSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?),
        None => None,
    };
    let field_selector = match q.get("fieldSelector").filter(|s| !s.is_empty()) {
        Some(s) => Some(FieldSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?),
        None => None,
    };
    let limit = match q.get("limit").filter(|s| !s.is_empty()) {
        Some(l) => l.parse::<i64>().map_err(|_| ApiError::bad_request(format!("invalid limit: {l}")))?.max(0) as usize,
        None => 0,
    };
    Ok(ListOptions {
        label_selector,
        field_selector,
        limit,
        continue_token: q.get("continue").filter(|s| !s.is_empty()).map(str::to_string),
        resource_version: q.get("resourceVersion").unwrap_or("").to_string(),
        resource_version_match: q.get("resourceVersionMatch").unwrap_or("").to_string(),
    })
}

fn dry_run(q: &Query, options_kind: &str) -> Result<bool, ApiError> {
    crate::write_options::parse(q, options_kind).map(|o| o.dry_run)
}

/// Decodes a request body into JSON according to its Content-Type.
pub(crate) fn decode_body(state: &AppState, headers: &HeaderMap, bytes: &[u8]) -> Result<Value, ApiError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let v = match negotiate::input_format(ct) {
        Some(Input::Json) => serde_json::from_slice::<Value>(bytes)
            .map_err(|e| ApiError::bad_request(format!("the object provided is unrecognized: couldn't decode JSON: {e}")))?,
        Some(Input::Yaml) => serde_yaml_ng::from_slice::<Value>(bytes)
            .map_err(|e| ApiError::bad_request(format!("the object provided is unrecognized: couldn't decode YAML: {e}")))?,
        Some(Input::Protobuf) => state.proto.decode(bytes).map_err(|e| ApiError::bad_request(e.to_string()))?,
        None => return Err(ApiError::unsupported_media_type(ct.unwrap_or(""))),
    };
    Ok(v)
}

/// Checks the body's apiVersion/kind against the endpoint and fills them when absent.
fn check_type(res: &ResourceInfo, obj: &mut Value) -> Result<(), ApiError> {
    let Some(o) = obj.as_object_mut() else {
        return Err(ApiError::bad_request("the object provided is unrecognized: expected a JSON object"));
    };
    let want = res.api_version();
    if let Some(av) = o.get("apiVersion").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        if av != want {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({want})"
            )));
        }
    }
    if let Some(k) = o.get("kind").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        if k != res.kind {
            return Err(ApiError::bad_request(format!(
                "{k} in version \"{}\" cannot be handled as a {}: no kind \"{k}\" is registered for version \"{want}\"",
                res.version, res.kind
            )));
        }
    }
    o.insert("apiVersion".into(), Value::String(want));
    o.insert("kind".into(), Value::String(res.kind.clone()));
    Ok(())
}

fn render_read(state: &AppState, res: &ResourceInfo, status: StatusCode, v: &Value, is_list: bool, r: Render, q: &Query) -> Response {
    match r.output {
        Output::Table if state.registry.custom_version(res).is_some() => {
            let columns = state.registry.custom_version(res).map(|(_, v)| v.columns).unwrap_or_default();
            let include = IncludeObject::parse(q.get("includeObject"));
            let t = crate::custom_table::to_table(v, is_list, &columns, include, true, &res.kind, &res.api_version());
            encode::object(state, status, &t, Render { output: Output::Json, pretty: r.pretty })
        }
        Output::Table => {
            let t = table::to_table(v, is_list, IncludeObject::parse(q.get("includeObject")), true, &res.kind, &res.api_version());
            encode::object(state, status, &t, Render { output: Output::Json, pretty: r.pretty })
        }
        Output::PartialMetadata => {
            let m = if is_list { table::partial_metadata_list(v) } else { table::partial_metadata(v) };
            encode::object(state, status, &m, Render { output: Output::Json, pretty: r.pretty })
        }
        _ => encode::object(state, status, v, r),
    }
}

#[allow(clippy::too_many_arguments)]
async fn resource(
    state: &Arc<AppState>,
    info: &RequestInfo,
    headers: &HeaderMap,
    q: &Query,
    accept: Option<&str>,
    body: Bytes,
    render: Render,
) -> HandlerResult {
    let fail = |e: ApiError| (e, render);
    let Some(res) = state.registry.lookup(&info.group, &info.version, &info.resource) else {
        return Err(fail(ApiError::path_not_found()));
    };
    let read_verb = matches!(info.verb.as_str(), "get" | "list" | "watch");
    let output = negotiate::choose_output(accept, true, read_verb && info.subresource.is_empty())
        .ok_or_else(|| fail(ApiError::not_acceptable("application/json, application/yaml, application/vnd.kubernetes.protobuf")))?;
    let render = Render { output, pretty: render.pretty };
    let fail = |e: ApiError| (e, render);
    // Scope checks: a namespaced object needs a namespace in the path, a cluster one must not have one.
    let ns = info.namespace.as_deref();
    if !res.namespaced() && ns.is_some() {
        return Err(fail(ApiError::path_not_found()));
    }
    if res.namespaced() && ns.is_none() && !matches!(info.verb.as_str(), "list" | "watch") {
        return Err(fail(ApiError::path_not_found()));
    }
    let sub = info.subresource.as_str();
    let custom = state.registry.custom_version(&res);
    if !sub.is_empty() {
        let Some(s) = res.subresource(sub) else {
            return Err(fail(ApiError::path_not_found()));
        };
        if !s.verbs.iter().any(|v| *v == info.verb) {
            return Err(fail(ApiError::method_not_supported(&res.group, &format!("{}/{sub}", res.plural), &info.verb)));
        }
        if sub == "log" && res.group.is_empty() && res.plural == "pods" {
            return crate::pod_logs::pod_log(state, ns.unwrap_or_default(), &info.name, q).await.map_err(fail);
        }
        if !matches!(sub, "status" | "finalize" | "scale" | "binding" | "token" | "eviction" | "approval") {
            return Err(fail(ApiError::method_not_supported(&res.group, &format!("{}/{sub}", res.plural), &info.verb)));
        }
    } else if !res.allows(&info.verb) {
        return Err(fail(ApiError::method_not_supported(&res.group, &res.plural, &info.verb)));
    }
    let reg = &state.registry;
    let name = info.name.as_str();
    if let Some((cr, version)) = &custom {
        let mut warnings = custom_resource::deprecation_warnings(cr, version);
        let mut resp = if sub == "scale" {
            custom_scale(state, &res, version, ns, name, info, headers, q, &body, render).await
        } else {
            custom_write(state, &res, version, ns, name, info, headers, q, &body, &mut warnings, render).await
        }
        .map_err(fail)?;
        if let Some(r) = resp.as_mut() {
            custom_resource::add_warnings(r, &warnings);
        }
        if let Some(r) = resp {
            return Ok(r);
        }
    }
    match info.verb.as_str() {
        "get" if sub == "scale" => {
            let v = reg.get_scale(&res, ns, name).await.map_err(fail)?;
            Ok(encode::object(state, StatusCode::OK, &v, render))
        }
        "update" if sub == "scale" => {
            let dry = dry_run(q, "UpdateOptions").map_err(fail)?;
            let v = crate::scale::update(state, &res, ns, name, headers, &body, dry).await.map_err(fail)?;
            Ok(encode::object(state, StatusCode::OK, &v, render))
        }
        "patch" if sub == "scale" => {
            let dry = dry_run(q, "PatchOptions").map_err(fail)?;
            let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            let pt = PatchType::from_content_type(ct).ok_or_else(|| fail(patch::unsupported(ct)))?;
            let v = crate::scale::patch(state, &res, ns, name, pt, &body, dry).await.map_err(fail)?;
            Ok(encode::object(state, StatusCode::OK, &v, render))
        }
        "get" => {
            let v = reg.get(&res, ns, name, q.get("resourceVersion").unwrap_or("")).await.map_err(fail)?;
            Ok(render_read(state, &res, StatusCode::OK, &v, false, render, q))
        }
        "list" => {
            let opts = list_options(q).map_err(fail)?;
            let v = reg.list(&res, ns, &opts).await.map_err(fail)?;
            Ok(render_read(state, &res, StatusCode::OK, &v, true, render, q))
        }
        "watch" => {
            let mut opts = list_options(q).map_err(fail)?;
            if !name.is_empty() {
                // Watching one object is a watch with a metadata.name field selector.
                opts.field_selector = Some(FieldSelector::parse(&format!("metadata.name={name}")).map_err(|e| fail(ApiError::bad_request(e.to_string())))?);
            }
            crate::watch::serve(state.clone(), res, ns, opts, q, render).await.map_err(fail)
        }
        "create" if sub == "binding" || (res.group.is_empty() && res.plural == "bindings") => {
            // pods/{name}/binding, or the legacy bindings collection naming the pod in the body.
            let dry = dry_run(q, "CreateOptions").map_err(fail)?;
            let binding = decode_body(state, headers, &body).map_err(fail)?;
            let pod_name = if sub == "binding" { name.to_string() } else { rkube_apimachinery::meta::name(&binding).to_string() };
            let pods = reg.lookup("", "v1", "pods").ok_or_else(|| fail(ApiError::path_not_found()))?;
            let v = reg.bind_pod(&pods, ns.unwrap_or_default(), &pod_name, &binding, dry).await.map_err(fail)?;
            Ok(encode::object(state, StatusCode::CREATED, &v, render))
        }
        "create" if sub == "eviction" => {
            let dry = dry_run(q, "CreateOptions").map_err(fail)?;
            let eviction = decode_body(state, headers, &body).map_err(fail)?;
            let v = reg.evict_pod(&res, ns.unwrap_or_default(), name, &eviction, dry).await.map_err(fail)?;
            Ok(encode::object(state, StatusCode::CREATED, &v, render))
        }
        "create" if sub == "token" && res.group.is_empty() && res.plural == "serviceaccounts" => {
            let mut request = decode_body(state, headers, &body).map_err(fail)?;
            reg.admit_subresource_create(&res, ns, name, "token", &mut request, false).await.map_err(fail)?;
            let v = state.service_account_tokens.token_request(ns.unwrap_or_default(), name, request).await.map_err(fail)?;
            Ok(encode::object(state, StatusCode::CREATED, &v, render))
        }
        "create" if res.group == "authentication.k8s.io" && res.plural == "tokenreviews" => {
            let mut review = decode_body(state, headers, &body).map_err(fail)?;
            check_type(&res, &mut review).map_err(fail)?;
            let v = rkube_auth::authn::token_review::answer(&state.tokens, ns, review).await.map_err(fail)?;
            Ok(encode::object(state, StatusCode::CREATED, &v, render))
        }
        "create" if rkube_auth::reviews::is_review(&res.group, &res.plural) => {
            // Reviews are answered by the authorizer, never stored.
            let mut obj = decode_body(state, headers, &body).map_err(fail)?;
            check_type(&res, &mut obj).map_err(fail)?;
            let user = rkube_auth::current_user().unwrap_or_else(UserInfo::anonymous);
            let v = rkube_auth::reviews::answer(&state.authorizer, &user, &res.group, &res.plural, ns, obj).await.map_err(fail)?;
            Ok(encode::object(state, StatusCode::CREATED, &v, render))
        }
        "create" => {
            let opts = crate::write_options::parse(q, "CreateOptions").map_err(fail)?;
            let mut obj = decode_body(state, headers, &body).map_err(fail)?;
            check_type(&res, &mut obj).map_err(fail)?;
            let warnings = field_validation::check_body(state, &res, &mut obj, field_validation::json_body(headers, &body), opts.field_validation).map_err(fail)?;
            if rkube_registry::csr::is_csr(&res) {
                crate::csr::record_requester(&mut obj);
            }
            let v = reg.create(&res, ns, obj, opts.dry_run).await.map_err(fail)?;
            Ok(field_validation::with_warnings(encode::object(state, StatusCode::CREATED, &v, render), &warnings))
        }
        "update" => {
            let opts = crate::write_options::parse(q, "UpdateOptions").map_err(fail)?;
            let mut obj = decode_body(state, headers, &body).map_err(fail)?;
            check_type(&res, &mut obj).map_err(fail)?;
            let warnings = field_validation::check_body(state, &res, &mut obj, field_validation::json_body(headers, &body), opts.field_validation).map_err(fail)?;
            let dry = opts.dry_run;
            let (v, created) = if sub == "finalize" {
                finalize_namespace(state, &res, name, obj, dry).await.map_err(fail)?
            } else if sub == "approval" {
                (reg.modify_subresource(&res, ns, name, sub, dry, |_| Ok(obj.clone())).await.map_err(fail)?, false)
            } else {
                reg.update(&res, ns, name, obj, sub == "status", dry).await.map_err(fail)?
            };
            let code = if created { StatusCode::CREATED } else { StatusCode::OK };
            Ok(field_validation::with_warnings(encode::object(state, code, &v, render), &warnings))
        }
        "patch" => {
            let dry = dry_run(q, "PatchOptions").map_err(fail)?;
            let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            let pt = PatchType::from_content_type(ct).ok_or_else(|| fail(patch::unsupported(ct)))?;
            let (v, created, warnings) = patch_object(state, &res, ns, name, pt, &body, sub, dry, q).await.map_err(fail)?;
            let code = if created { StatusCode::CREATED } else { StatusCode::OK };
            Ok(field_validation::with_warnings(encode::object(state, code, &v, render), &warnings))
        }
        "delete" => {
            let opts = delete_options(state, headers, &body, q).map_err(fail)?;
            match reg.delete(&res, ns, name, &opts).await.map_err(fail)? {
                DeleteOutcome::Pending(v) => Ok(encode::object(state, StatusCode::OK, &v, render)),
                DeleteOutcome::Deleted(v) => {
                    if rkube_registry::policy::policy(&res.group, &res.plural).return_deleted_object {
                        Ok(encode::object(state, StatusCode::OK, &v, render))
                    } else {
                        Ok(encode::object(state, StatusCode::OK, &success_status(&res, &v), render))
                    }
                }
            }
        }
        "deletecollection" => {
            let lopts = list_options(q).map_err(fail)?;
            let dopts = delete_options(state, headers, &body, q).map_err(fail)?;
            let items = reg.delete_collection(&res, ns, &lopts, &dopts).await.map_err(fail)?;
            let rv = reg.current_revision().await.map_err(fail)?;
            let items: Vec<Value> = items
                .into_iter()
                .map(|mut i| {
                    if let Some(o) = i.as_object_mut() {
                        o.shift_remove("kind");
                        o.shift_remove("apiVersion");
                    }
                    i
                })
                .collect();
            let list = json!({"kind": format!("{}List", res.kind), "apiVersion": res.api_version(), "metadata": {"resourceVersion": rv.to_string()}, "items": items});
            Ok(encode::object(state, StatusCode::OK, &list, render))
        }
        _ => Err(fail(ApiError::method_not_supported(&res.group, &res.plural, &info.verb))),
    }
}

/// Writes to custom objects that differ from built-ins: `fieldValidation` against the schema and
/// the patch types. `None` hands the request to the common path (reads, deletes).
#[allow(clippy::too_many_arguments)]
async fn custom_write(
    state: &Arc<AppState>,
    res: &Arc<ResourceInfo>,
    version: &CustomVersion,
    ns: Option<&str>,
    name: &str,
    info: &RequestInfo,
    headers: &HeaderMap,
    q: &Query,
    body: &Bytes,
    warnings: &mut Vec<String>,
    render: Render,
) -> Result<Option<Response>, ApiError> {
    let reg = &state.registry;
    let sub = info.subresource.as_str();
    match info.verb.as_str() {
        "create" | "update" => {
            let mode = FieldValidation::parse(q)?;
            let dry = dry_run(q, if info.verb == "create" { "CreateOptions" } else { "UpdateOptions" })?;
            let mut obj = decode_body(state, headers, body)?;
            check_type(res, &mut obj)?;
            warnings.extend(custom_resource::check_body(version, res, &obj, mode)?);
            let (v, code) = if info.verb == "create" {
                (reg.create(res, ns, obj, dry).await?, StatusCode::CREATED)
            } else {
                let (v, created) = reg.update(res, ns, name, obj, sub == "status", dry).await?;
                (v, if created { StatusCode::CREATED } else { StatusCode::OK })
            };
            Ok(Some(encode::object(state, code, &v, render)))
        }
        "patch" => {
            let mode = FieldValidation::parse(q)?;
            let dry = dry_run(q, "PatchOptions")?;
            let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            let pt = PatchType::from_content_type(ct).ok_or_else(|| patch::unsupported(ct))?;
            custom_resource::check_patch_type(pt, ct)?;
            let doc: Value = match pt {
                PatchType::Apply => serde_yaml_ng::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?,
                _ => serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?,
            };
            if pt == PatchType::Apply {
                if doc.is_object() {
                    let mut typed = doc.clone();
                    check_type(res, &mut typed)?;
                    warnings.extend(custom_resource::check_body(version, res, &typed, mode)?);
                }
                let (v, created) = apply_object(state, res, ns, name, doc, sub == "status", dry, q).await?;
                return Ok(Some(encode::object(state, if created { StatusCode::CREATED } else { StatusCode::OK }, &v, render)));
            }
            let found = std::sync::Mutex::new(Vec::new());
            let v = reg
                .modify(res, ns, name, sub == "status", dry, |old| {
                    // Strategic merge is refused for custom resources above: merge or JSON patch.
                    let mut new = patch::patched(old, pt, &doc)?;
                    check_type(res, &mut new)?;
                    let w = custom_resource::check_patched(version, &new, mode)?;
                    if let Ok(mut f) = found.lock() {
                        *f = w;
                    }
                    Ok(new)
                })
                .await?;
            warnings.extend(found.into_inner().unwrap_or_default());
            Ok(Some(encode::object(state, StatusCode::OK, &v, render)))
        }
        _ => Ok(None),
    }
}

/// `.../scale` of a custom resource.
#[allow(clippy::too_many_arguments)]
async fn custom_scale(
    state: &Arc<AppState>,
    res: &Arc<ResourceInfo>,
    version: &CustomVersion,
    ns: Option<&str>,
    name: &str,
    info: &RequestInfo,
    headers: &HeaderMap,
    q: &Query,
    body: &Bytes,
    render: Render,
) -> Result<Option<Response>, ApiError> {
    let Some(paths) = version.scale.as_ref() else { return Err(ApiError::path_not_found()) };
    let reg = &state.registry;
    let dry = dry_run(q, if info.verb == "patch" { "PatchOptions" } else { "UpdateOptions" })?;
    let v = match info.verb.as_str() {
        "get" => custom_resource::get_scale(reg, res, paths, ns, name).await?,
        "update" => {
            let obj = decode_body(state, headers, body)?;
            custom_resource::write_scale(reg, res, paths, ns, name, ScaleChange::Replace(obj), dry).await?
        }
        "patch" => {
            let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            let pt = PatchType::from_content_type(ct).ok_or_else(|| patch::unsupported(ct))?;
            let doc: Value = serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            custom_resource::write_scale(reg, res, paths, ns, name, ScaleChange::Patch(pt, &doc), dry).await?
        }
        _ => return Err(ApiError::method_not_supported(&res.group, &format!("{}/scale", res.plural), &info.verb)),
    };
    Ok(Some(encode::object(state, StatusCode::OK, &v, render)))
}

/// The Status upstream answers a completed DELETE with (when not returning the object).
fn success_status(res: &ResourceInfo, obj: &Value) -> Value {
    let mut details = json!({"name": meta::name(obj), "kind": res.plural});
    if let Some(d) = details.as_object_mut() {
        if !res.group.is_empty() {
            d.insert("group".into(), json!(res.group));
        }
        if let Some(uid) = meta::meta_str(obj, "uid") {
            d.insert("uid".into(), json!(uid));
        }
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

/// `PUT namespaces/{name}/finalize`: only `spec.finalizers` may change.
async fn finalize_namespace(state: &AppState, res: &ResourceInfo, name: &str, obj: Value, dry: bool) -> Result<(Value, bool), ApiError> {
    let fins = obj["spec"]["finalizers"].clone();
    let v = state
        .registry
        .modify(res, None, name, false, dry, move |old| {
            let mut new = old.clone();
            if let Some(spec) = new.as_object_mut().map(|o| o.entry("spec").or_insert_with(|| json!({}))) {
                if let Some(s) = spec.as_object_mut() {
                    if fins.is_null() {
                        s.shift_remove("finalizers");
                    } else {
                        s.insert("finalizers".into(), fins.clone());
                    }
                }
            }
            meta::remove_meta(&mut new, "resourceVersion");
            Ok(new)
        })
        .await?;
    Ok((v, false))
}

#[allow(clippy::too_many_arguments)]
async fn patch_object(
    state: &AppState,
    res: &Arc<ResourceInfo>,
    ns: Option<&str>,
    name: &str,
    pt: PatchType,
    body: &[u8],
    subresource: &str,
    dry: bool,
    q: &Query,
) -> Result<(Value, bool, Vec<String>), ApiError> {
    // Only these subresources change the stored object through a strategy of their own.
    let subresource = if matches!(subresource, "status" | "approval") { subresource } else { "" };
    let status_only = subresource == "status";
    let mode = crate::write_options::parse(q, "PatchOptions")?.field_validation;
    let duplicates = if pt == PatchType::Apply { Vec::new() } else { field_validation::patch_duplicates(body, pt == PatchType::Json) };
    let warnings = std::sync::Mutex::new(Vec::new());
    let patch_doc: Value = match pt {
        PatchType::Apply => serde_yaml_ng::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?,
        _ => serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?,
    };
    if pt == PatchType::Apply {
        if subresource == "approval" {
            // Server-side apply tracks fields per status or main resource only.
            return Err(ApiError::method_not_supported(&res.group, &format!("{}/{subresource}", res.plural), "patch"));
        }
        let mut config = patch_doc;
        let mut found = Vec::new();
        let typed = ["apiVersion", "kind"].iter().all(|k| config.get(k).and_then(Value::as_str).is_some_and(|s| !s.is_empty()));
        if typed {
            check_type(res, &mut config)?;
            found = field_validation::check_body(state, res, &mut config, None, mode)?;
        }
        let (v, created) = apply_object(state, res, ns, name, config, status_only, dry, q).await?;
        return Ok((v, created, found));
    }
    let v = state
        .registry
        .modify_subresource(res, ns, name, subresource, dry, |old| {
            let mut checked = patch::patched(old, pt, &patch_doc)?;
            check_type(res, &mut checked)?;
            let found = field_validation::check_patched(state, res, &mut checked, &duplicates, mode)?;
            if let Ok(mut w) = warnings.lock() {
                *w = found;
            }
            Ok(checked)
        })
        .await?;
    let warnings = warnings.into_inner().unwrap_or_default();
    Ok((v, false, warnings))
}

/// Server-side apply (`application/apply-patch+yaml`): the configuration's fields become owned
/// by the field manager; creates the object when absent (201).
#[allow(clippy::too_many_arguments)]
async fn apply_object(
    state: &AppState,
    res: &Arc<ResourceInfo>,
    ns: Option<&str>,
    name: &str,
    mut config: Value,
    status_only: bool,
    dry: bool,
    q: &Query,
) -> Result<(Value, bool), ApiError> {
    let Some(manager) = q.get("fieldManager").filter(|m| !m.is_empty()) else {
        return Err(ApiError::bad_request("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"));
    };
    if !config.is_object() {
        return Err(ApiError::bad_request("error decoding YAML: the applied configuration must be an object"));
    }
    if config.get("apiVersion").and_then(Value::as_str).is_none_or(str::is_empty) || config.get("kind").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Err(ApiError::bad_request(format!(
            "Object 'Kind' is missing in '{}'",
            serde_json::to_string(&config).unwrap_or_default()
        )));
    }
    check_type(res, &mut config)?;
    if !config["metadata"]["managedFields"].is_null() {
        return Err(ApiError::bad_request("metadata.managedFields must be nil"));
    }
    let cfg_name = meta::name(&config).to_string();
    if !cfg_name.is_empty() && cfg_name != name {
        return Err(ApiError::bad_request(format!("the name of the object ({cfg_name}) does not match the name on the URL ({name})")));
    }
    if cfg_name.is_empty() {
        meta::set_meta(&mut config, "name", Value::String(name.to_string()));
    }
    let force = q.flag("force");
    let schema = state.registry.schema_for(res);
    let subresource = if status_only { "status" } else { "" };
    let ignored = rkube_registry::ownership::ignored_fields(res, subresource);
    let api_version = res.api_version();
    let run = |live: Option<&Value>| -> Result<Value, ApiError> {
        let now = meta::now_rfc3339();
        let ctx = rkube_fieldmanager::WriteContext { manager, api_version: &api_version, subresource, ignored: &ignored, now: &now };
        let mut out = rkube_fieldmanager::apply(live, &config, schema.as_ref(), &ctx, force).map_err(|e| apply_error(res, e))?;
        keep_last_applied_in_step(live, &config, &mut out);
        Ok(out)
    };
    match state.registry.get(res, ns, name, "").await {
        Err(e) if e.code == 404 && !status_only => {
            let obj = run(None)?;
            let v = state.registry.create(res, ns, obj, dry).await?;
            return Ok((v, true));
        }
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    let v = state
        .registry
        .modify(res, ns, name, status_only, dry, |old| {
            let mut live = old.clone();
            meta::remove_meta(&mut live, "resourceVersion");
            let mut out = run(Some(&live))?;
            // The configuration's resourceVersion, if any, is a precondition.
            match meta::meta_str(&config, "resourceVersion") {
                Some(rv) => meta::set_meta(&mut out, "resourceVersion", Value::String(rv.to_string())),
                None => {
                    meta::remove_meta(&mut out, "resourceVersion");
                }
            }
            Ok(out)
        })
        .await?;
    Ok((v, false))
}

/// Upstream's lastAppliedUpdater: an object managed with client-side apply keeps its
/// `last-applied-configuration` annotation in step with server-side applies, so switching back
/// to client-side apply does not resurrect removed fields.
fn keep_last_applied_in_step(live: Option<&Value>, config: &Value, out: &mut Value) {
    const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
    let Some(live) = live else { return };
    if live["metadata"]["annotations"].get(LAST_APPLIED).is_none() {
        return;
    }
    let mut applied = config.clone();
    if let Some(a) = applied.get_mut("metadata").and_then(|m| m.get_mut("annotations")).and_then(Value::as_object_mut) {
        a.shift_remove(LAST_APPLIED);
        if a.is_empty() {
            if let Some(m) = applied.get_mut("metadata").and_then(Value::as_object_mut) {
                m.shift_remove("annotations");
            }
        }
    }
    let Ok(text) = serde_json::to_string(&applied) else { return };
    if let Some(annotations) = out.get_mut("metadata").and_then(|m| m.get_mut("annotations")).and_then(Value::as_object_mut) {
        annotations.insert(LAST_APPLIED.into(), Value::String(text));
    }
}

/// An apply failure as upstream reports it: conflicts are 409 with one cause per field.
fn apply_error(res: &ResourceInfo, e: rkube_fieldmanager::ApplyError) -> ApiError {
    match &e {
        rkube_fieldmanager::ApplyError::Conflicts(conflicts) => {
            let causes: Vec<Value> = conflicts
                .iter()
                .map(|c| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {}", c.manager), "field": c.path.to_string()}))
                .collect();
            ApiError { code: 409, reason: "Conflict", message: e.to_string(), details: Some(json!({"causes": causes})) }
        }
        rkube_fieldmanager::ApplyError::Invalid(why) => {
            let gvk = if res.group.is_empty() { format!("/{}, Kind={}", res.version, res.kind) } else { format!("{}/{}, Kind={}", res.group, res.version, res.kind) };
            ApiError::bad_request(format!("failed to create typed patch object ({gvk}): {why}"))
        }
    }
}

fn delete_options(state: &AppState, headers: &HeaderMap, body: &[u8], q: &Query) -> Result<DeleteOptions, ApiError> {
    let mut opts = DeleteOptions { dry_run: dry_run(q, "DeleteOptions")?, ..Default::default() };
    if !body.is_empty() {
        let v = decode_body(state, headers, body)?;
        opts.grace_period_seconds = v["gracePeriodSeconds"].as_i64();
        opts.propagation_policy = v["propagationPolicy"].as_str().map(str::to_string);
        opts.orphan_dependents = v["orphanDependents"].as_bool();
        opts.precondition_uid = v["preconditions"]["uid"].as_str().map(str::to_string);
        opts.precondition_resource_version = v["preconditions"]["resourceVersion"].as_str().map(str::to_string);
        if v["dryRun"].as_array().is_some_and(|a| a.iter().any(|x| x == "All")) {
            opts.dry_run = true;
        }
    }
    if let Some(g) = q.get("gracePeriodSeconds") {
        opts.grace_period_seconds = Some(g.parse().map_err(|_| ApiError::bad_request(format!("invalid gracePeriodSeconds: {g}")))?);
    }
    if let Some(p) = q.get("propagationPolicy") {
        opts.propagation_policy = Some(p.to_string());
    }
    if let Some(p) = &opts.propagation_policy {
        if !matches!(p.as_str(), "Orphan" | "Background" | "Foreground") {
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "DeleteOptions",
                "",
                &[rkube_apimachinery::FieldError::not_supported("propagationPolicy", p.clone(), &["Foreground", "Background", "Orphan", "nil"])],
            ));
        }
    }
    Ok(opts)
}

