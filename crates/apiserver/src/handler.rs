//! The dispatcher and the resource handlers (apiserver `pkg/endpoints/handlers/{get,create,
//! update,patch,delete}.go`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use rkube_apimachinery::selectors::{FieldSelector, LabelSelector};
use rkube_apimachinery::{ApiError, ResourceInfo, meta};
use rkube_registry::{DeleteOptions, DeleteOutcome, ListOptions};
use serde_json::{Value, json};

use crate::discovery;
use crate::encode::{self, Render};
use crate::negotiate::{self, Input, Output};
use crate::openapi;
use crate::patch::{self, PatchType};
use crate::request_info::{self, RequestInfo};
use crate::state::{AppState, UserInfo};
use crate::table::{self, IncludeObject};

/// Query parameters, first value wins.
pub struct Query(HashMap<String, String>);

impl Query {
    fn parse(q: Option<&str>) -> Self {
        let mut m = HashMap::new();
        for (k, v) in form_urlencoded::parse(q.unwrap_or("").as_bytes()) {
            m.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
        Self(m)
    }

    /// A parameter's value.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
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
    if parts.extensions.get::<UserInfo>().is_none() {
        return encode::error(&state, &ApiError::unauthorized("Unauthorized"), render);
    }
    if path == "/openapi/v2" || path == "/openapi/v3" || path.starts_with("/openapi/v3/") {
        let served = if path == "/openapi/v2" {
            openapi::v2_response(&state.openapi_v3, &parts.headers).await
        } else {
            openapi::v3_response(&state.openapi_v3, &path, q.get("hash"), &parts.headers).await
        };
        return served.unwrap_or_else(|e| encode::error(&state, &e, Render::JSON));
    }
    let info = request_info::parse(&parts.method, &path, q.flag("watch"));
    if !info.is_resource {
        return discovery_response(&state, &path, &info, accept.as_deref(), render);
    }
    let limit = state.config.max_body_bytes;
    let bytes = match axum::body::to_bytes(body, limit + 1).await {
        Ok(b) if b.len() > limit => {
            return encode::error(&state, &ApiError::too_large(format!("limit is {limit}")), render);
        }
        Ok(b) => b,
        Err(e) => return encode::error(&state, &ApiError::bad_request(format!("reading request body: {e}")), render),
    };
    match resource(&state, &info, &parts.headers, &q, accept.as_deref(), bytes, render).await {
        Ok(r) => r,
        Err((e, r)) => encode::error(&state, &e, r),
    }
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
        "/apis" if aggregated => return aggregated_response(state, discovery::aggregated(&resources, false), render),
        "/api" => Some(discovery::api_versions(&state.config.advertise_address)),
        "/apis" => Some(discovery::api_group_list(&resources)),
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

fn dry_run(q: &Query) -> Result<bool, ApiError> {
    match q.get("dryRun") {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!("Invalid dry run value: {other:?}: supported values: \"All\""))),
    }
}

/// Decodes a request body into JSON according to its Content-Type.
fn decode_body(state: &AppState, headers: &HeaderMap, bytes: &[u8]) -> Result<Value, ApiError> {
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
    if !sub.is_empty() {
        let Some(s) = res.subresource(sub) else {
            return Err(fail(ApiError::path_not_found()));
        };
        if !s.verbs.iter().any(|v| *v == info.verb) {
            return Err(fail(ApiError::method_not_supported(&res.group, &format!("{}/{sub}", res.plural), &info.verb)));
        }
        if !matches!(sub, "status" | "finalize") {
            return Err(fail(ApiError::method_not_supported(&res.group, &format!("{}/{sub}", res.plural), &info.verb)));
        }
    } else if !res.allows(&info.verb) {
        return Err(fail(ApiError::method_not_supported(&res.group, &res.plural, &info.verb)));
    }
    let reg = &state.registry;
    let name = info.name.as_str();
    match info.verb.as_str() {
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
        "create" => {
            let dry = dry_run(q).map_err(fail)?;
            let mut obj = decode_body(state, headers, &body).map_err(fail)?;
            check_type(&res, &mut obj).map_err(fail)?;
            let v = reg.create(&res, ns, obj, dry).await.map_err(fail)?;
            Ok(encode::object(state, StatusCode::CREATED, &v, render))
        }
        "update" => {
            let dry = dry_run(q).map_err(fail)?;
            let mut obj = decode_body(state, headers, &body).map_err(fail)?;
            check_type(&res, &mut obj).map_err(fail)?;
            let (v, created) = if sub == "finalize" {
                finalize_namespace(state, &res, name, obj, dry).await.map_err(fail)?
            } else {
                reg.update(&res, ns, name, obj, sub == "status", dry).await.map_err(fail)?
            };
            let code = if created { StatusCode::CREATED } else { StatusCode::OK };
            Ok(encode::object(state, code, &v, render))
        }
        "patch" => {
            let dry = dry_run(q).map_err(fail)?;
            let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            let pt = PatchType::from_content_type(ct).ok_or_else(|| fail(patch::unsupported(ct)))?;
            let (v, created) = patch_object(state, &res, ns, name, pt, &body, sub == "status", dry, q).await.map_err(fail)?;
            Ok(encode::object(state, if created { StatusCode::CREATED } else { StatusCode::OK }, &v, render))
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
    status_only: bool,
    dry: bool,
    q: &Query,
) -> Result<(Value, bool), ApiError> {
    let patch_doc: Value = match pt {
        PatchType::Apply => serde_yaml_ng::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?,
        _ => serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?,
    };
    if pt == PatchType::Apply {
        if q.get("fieldManager").is_none_or(str::is_empty) {
            return Err(ApiError::bad_request("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"));
        }
        // Server-side apply: create when absent. Field ownership comes with the apply issue;
        // until then the applied configuration is merged strategically over the live object.
        match state.registry.get(res, ns, name, "").await {
            Err(e) if e.code == 404 => {
                let mut obj = patch_doc.clone();
                check_type(res, &mut obj)?;
                if meta::name(&obj).is_empty() {
                    meta::set_meta(&mut obj, "name", Value::String(name.to_string()));
                }
                let v = state.registry.create(res, ns, obj, dry).await?;
                return Ok((v, true));
            }
            Err(e) => return Err(e),
            Ok(_) => {}
        }
    }
    let v = state
        .registry
        .modify(res, ns, name, status_only, dry, |old| {
            let mut new = old.clone();
            // A patch never carries the server's resourceVersion unless the client put it there.
            meta::remove_meta(&mut new, "resourceVersion");
            match pt {
                PatchType::Merge => patch::merge_patch(&mut new, &patch_doc),
                PatchType::Json => {
                    let mut with_rv = old.clone();
                    patch::json_patch(&mut with_rv, &patch_doc)?;
                    // Keep an explicit resourceVersion test only if the patch changed it.
                    if meta::meta_str(&with_rv, "resourceVersion") == meta::meta_str(old, "resourceVersion") {
                        meta::remove_meta(&mut with_rv, "resourceVersion");
                    }
                    new = with_rv;
                }
                PatchType::Strategic | PatchType::Apply => patch::strategic_merge(&mut new, &patch_doc)?,
            }
            let mut checked = new;
            check_type(res, &mut checked)?;
            Ok(checked)
        })
        .await?;
    Ok((v, false))
}

fn delete_options(state: &AppState, headers: &HeaderMap, body: &[u8], q: &Query) -> Result<DeleteOptions, ApiError> {
    let mut opts = DeleteOptions { dry_run: dry_run(q)?, ..Default::default() };
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

