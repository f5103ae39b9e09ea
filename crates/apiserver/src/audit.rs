//! Audit logging: an `audit.k8s.io/v1` Policy decides the level of each request (first matching
//! rule; no match → None) and `audit.k8s.io/v1` Events are written as JSON lines, as
//! kube-apiserver's `--audit-policy-file` and `--audit-log-path` (apiserver `pkg/audit`,
//! `pkg/audit/policy/checker.go`). Stages are logged as they happen unless omitted:
//! RequestReceived once the request is authenticated and authorized (before it is handled),
//! ResponseStarted when a long-running response (watch) sends its headers, ResponseComplete when
//! the response ends and Panic when handling panicked. Every event of a request shares its
//! `auditID` (the request's `Audit-ID` header when sent), which the response echoes in its
//! `Audit-Id` header. Request bodies appear from level Request, response bodies at
//! RequestResponse, so Secret data is never in a Metadata-level event.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use rkube_auth::UserInfo;
use serde_json::{Map, Value, json};

use crate::request_info::RequestInfo;

/// How much of a request is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Nothing.
    None,
    /// Who, what, when, outcome.
    Metadata,
    /// And the request body.
    Request,
    /// And the response body.
    RequestResponse,
}

impl Level {
    fn parse(s: &str) -> Result<Self, String> {
        match s {
            "None" => Ok(Self::None),
            "Metadata" => Ok(Self::Metadata),
            "Request" => Ok(Self::Request),
            "RequestResponse" => Ok(Self::RequestResponse),
            other => Err(format!("unknown audit level {other:?}")),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Metadata => "Metadata",
            Self::Request => "Request",
            Self::RequestResponse => "RequestResponse",
        }
    }
}

/// One rule of the policy.
#[derive(Debug, Clone)]
struct Rule {
    level: Level,
    users: Vec<String>,
    groups: Vec<String>,
    verbs: Vec<String>,
    namespaces: Vec<String>,
    /// (group, resources, resourceNames)
    resources: Vec<(String, Vec<String>, Vec<String>)>,
    non_resource_urls: Vec<String>,
    omit_stages: Vec<String>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_string)).collect()
}

impl Rule {
    fn matches(&self, user: &UserInfo, info: &RequestInfo) -> bool {
        if !self.users.is_empty() && !self.users.contains(&user.name) {
            return false;
        }
        if !self.groups.is_empty() && !self.groups.iter().any(|g| user.in_group(g)) {
            return false;
        }
        if !self.verbs.is_empty() && !self.verbs.contains(&info.verb) {
            return false;
        }
        if !info.is_resource {
            // Rules naming resources or namespaces do not match non-resource requests.
            if !self.resources.is_empty() || !self.namespaces.is_empty() {
                return false;
            }
            if self.non_resource_urls.is_empty() {
                return true;
            }
            let path = format!("/{}", info.rest.join("/"));
            return self.non_resource_urls.iter().any(|u| match u.strip_suffix('*') {
                Some(prefix) => path.starts_with(prefix),
                None => *u == path,
            });
        }
        if !self.non_resource_urls.is_empty() {
            return false;
        }
        if !self.namespaces.is_empty() && !self.namespaces.contains(&info.namespace.clone().unwrap_or_default()) {
            return false;
        }
        if self.resources.is_empty() {
            return true;
        }
        let with_sub = if info.subresource.is_empty() { info.resource.clone() } else { format!("{}/{}", info.resource, info.subresource) };
        self.resources.iter().any(|(group, resources, names)| {
            group == &info.group
                && (resources.is_empty()
                    || resources.iter().any(|r| r == &with_sub || r == "*" || (r == &info.resource && info.subresource.is_empty()) || r == &format!("*/{}", info.subresource) || r == &format!("{}/*", info.resource)))
                && (names.is_empty() || names.contains(&info.name))
        })
    }
}

/// A parsed policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    rules: Vec<Rule>,
    omit_stages: Vec<String>,
}

impl Policy {
    /// Parses a Policy document (YAML or JSON).
    pub fn parse(text: &str) -> Result<Self, String> {
        let doc: Value = serde_yaml_ng::from_str(text).map_err(|e| format!("parsing audit policy: {e}"))?;
        if doc["kind"] != "Policy" || !doc["apiVersion"].as_str().is_some_and(|v| v.starts_with("audit.k8s.io/")) {
            return Err("audit policy: expected kind Policy of audit.k8s.io/v1".into());
        }
        let mut rules = Vec::new();
        for r in doc["rules"].as_array().into_iter().flatten() {
            rules.push(Rule {
                level: Level::parse(r["level"].as_str().unwrap_or(""))?,
                users: strings(&r["users"]),
                groups: strings(&r["userGroups"]),
                verbs: strings(&r["verbs"]),
                namespaces: strings(&r["namespaces"]),
                resources: r["resources"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|g| (g["group"].as_str().unwrap_or("").to_string(), strings(&g["resources"]), strings(&g["resourceNames"])))
                    .collect(),
                non_resource_urls: strings(&r["nonResourceURLs"]),
                omit_stages: strings(&r["omitStages"]),
            });
        }
        Ok(Self { rules, omit_stages: strings(&doc["omitStages"]) })
    }

    /// The level and omitted stages for a request.
    fn evaluate(&self, user: &UserInfo, info: &RequestInfo) -> (Level, Vec<String>) {
        for r in &self.rules {
            if r.matches(user, info) {
                let mut omit = self.omit_stages.clone();
                omit.extend(r.omit_stages.iter().cloned());
                return (r.level, omit);
            }
        }
        (Level::None, Vec::new())
    }
}

/// What the request handler learns about a request as it goes.
#[derive(Debug, Default)]
pub struct Record {
    /// The authenticated user (and the impersonated one, when different).
    pub user: Option<UserInfo>,
    /// The requestor when impersonating.
    pub requestor: Option<UserInfo>,
    /// The parsed request.
    pub info: Option<RequestInfo>,
    /// The request body, decoded.
    pub body: Option<Value>,
    /// Path and query.
    pub request_uri: String,
    /// User-Agent.
    pub user_agent: String,
    /// Client address.
    pub source_ip: String,
    /// When the request arrived.
    pub received: String,
    /// Authorization decision annotations.
    pub decision: Option<(bool, String)>,
    /// Shared by every event of the request.
    pub audit_id: String,
    /// Annotations admission added (PodSecurity audit mode, …).
    pub annotations: Vec<(String, String)>,
}

/// The header carrying a request's audit ID, in requests and responses.
pub const AUDIT_ID_HEADER: &str = "Audit-Id";

/// The audit ID of a request: the one the client sent, else a new UUID (upstream
/// `WithAuditInit`).
pub fn audit_id_of(headers: &http::HeaderMap) -> String {
    headers
        .get(AUDIT_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// The stages of a request's audit events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The request arrived (before handling).
    RequestReceived,
    /// A long-running response sent its headers.
    ResponseStarted,
    /// The response ended.
    ResponseComplete,
    /// Handling panicked.
    Panic,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Self::RequestReceived => "RequestReceived",
            Self::ResponseStarted => "ResponseStarted",
            Self::ResponseComplete => "ResponseComplete",
            Self::Panic => "Panic",
        }
    }
}

/// The open log file and the policy.
pub struct AuditLog {
    policy: Policy,
    out: Mutex<Box<dyn Write + Send>>,
}

fn timestamp() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

impl AuditLog {
    /// Opens `path` for appending (`-` is standard output).
    pub fn open(policy: Policy, path: &Path) -> Result<Self, String> {
        let out: Box<dyn Write + Send> = if path == Path::new("-") {
            Box::new(std::io::stdout())
        } else {
            Box::new(std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|e| format!("opening {}: {e}", path.display()))?)
        };
        Ok(Self { policy, out: Mutex::new(out) })
    }

    /// A new record for a request arriving now.
    pub fn begin(uri: &http::Uri, headers: &http::HeaderMap, source_ip: String) -> Record {
        Record {
            request_uri: uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default(),
            user_agent: headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("").to_string(),
            source_ip,
            received: timestamp(),
            audit_id: audit_id_of(headers),
            ..Default::default()
        }
    }

    /// The level a finished record is logged at (for deciding whether to keep the response body).
    pub fn level_of(&self, rec: &Record) -> Level {
        match (&rec.user, &rec.info) {
            (Some(u), Some(i)) => self.policy.evaluate(u, i).0,
            _ => Level::None,
        }
    }

    /// Writes the RequestReceived event (before the request is handled).
    pub fn received(&self, rec: &Record) {
        self.write(rec, Stage::RequestReceived, None, None, None);
    }

    /// Writes the ResponseStarted event of a long-running response.
    pub fn started(&self, rec: &Record, code: u16) {
        self.write(rec, Stage::ResponseStarted, Some(code), None, None);
    }

    /// Writes the ResponseComplete event of a finished request.
    pub fn finish(&self, rec: &Record, code: u16, status: Option<&Value>, response_object: Option<&Value>) {
        self.write(rec, Stage::ResponseComplete, Some(code), status, response_object);
    }

    /// Writes the Panic event of a request whose handling panicked.
    pub fn panicked(&self, rec: &Record, message: &str) {
        let status = json!({"status": "Failure", "reason": "InternalError", "message": format!("APIServer panic'd: {message}")});
        self.write(rec, Stage::Panic, Some(500), Some(&status), None);
    }

    fn write(&self, rec: &Record, stage: Stage, code: Option<u16>, status: Option<&Value>, response_object: Option<&Value>) {
        let (Some(user), Some(info)) = (&rec.user, &rec.info) else { return };
        let (level, omit) = self.policy.evaluate(user, info);
        if level == Level::None || omit.iter().any(|s| s == stage.as_str()) {
            return;
        }
        let mut ev = Map::new();
        ev.insert("kind".into(), json!("Event"));
        ev.insert("apiVersion".into(), json!("audit.k8s.io/v1"));
        ev.insert("level".into(), json!(level.as_str()));
        ev.insert("auditID".into(), json!(rec.audit_id));
        ev.insert("stage".into(), json!(stage.as_str()));
        ev.insert("requestURI".into(), json!(rec.request_uri));
        ev.insert("verb".into(), json!(info.verb));
        let user_json = |u: &UserInfo| {
            let mut m = json!({"username": u.name, "groups": u.groups});
            if !u.uid.is_empty() {
                m["uid"] = json!(u.uid);
            }
            m
        };
        match &rec.requestor {
            Some(requestor) if requestor != user => {
                ev.insert("user".into(), user_json(requestor));
                ev.insert("impersonatedUser".into(), user_json(user));
            }
            _ => {
                ev.insert("user".into(), user_json(user));
            }
        }
        ev.insert("sourceIPs".into(), json!([rec.source_ip]));
        ev.insert("userAgent".into(), json!(rec.user_agent));
        if info.is_resource {
            let mut r = Map::new();
            r.insert("resource".into(), json!(info.resource));
            if let Some(ns) = info.namespace.as_deref().filter(|n| !n.is_empty()) {
                r.insert("namespace".into(), json!(ns));
            }
            // Upstream completes the reference from the request object (a create names it
            // only in the body), at every level.
            let body_name = rec.body.as_ref().and_then(|o| o["metadata"]["name"].as_str().map(str::to_string));
            match (info.name.is_empty(), body_name) {
                (false, _) => {
                    r.insert("name".into(), json!(info.name));
                }
                (true, Some(n)) => {
                    r.insert("name".into(), json!(n));
                }
                (true, None) => {}
            }
            if !info.group.is_empty() {
                r.insert("apiGroup".into(), json!(info.group));
            }
            r.insert("apiVersion".into(), json!(info.version));
            if !info.subresource.is_empty() {
                r.insert("subresource".into(), json!(info.subresource));
            }
            ev.insert("objectRef".into(), Value::Object(r));
        }
        if let Some(code) = code {
            let mut rs = json!({"metadata": {}, "code": code});
            if let Some(st) = status.filter(|_| code >= 400) {
                for k in ["status", "message", "reason"] {
                    if !st[k].is_null() {
                        rs[k] = st[k].clone();
                    }
                }
            }
            ev.insert("responseStatus".into(), rs);
        }
        // The request body is read while handling, so only later stages carry it.
        if stage != Stage::RequestReceived
            && level >= Level::Request
            && let Some(obj) = &rec.body
        {
            ev.insert("requestObject".into(), obj.clone());
        }
        if level >= Level::RequestResponse
            && let Some(obj) = response_object
        {
            ev.insert("responseObject".into(), obj.clone());
        }
        ev.insert("requestReceivedTimestamp".into(), json!(rec.received));
        let stage_timestamp = if stage == Stage::RequestReceived { rec.received.clone() } else { timestamp() };
        ev.insert("stageTimestamp".into(), json!(stage_timestamp));
        if stage != Stage::RequestReceived {
            let mut annotations = Map::new();
            if let Some((allowed, reason)) = &rec.decision {
                annotations.insert("authorization.k8s.io/decision".into(), json!(if *allowed { "allow" } else { "forbid" }));
                annotations.insert("authorization.k8s.io/reason".into(), json!(reason));
            }
            for (k, v) in &rec.annotations {
                annotations.insert(k.clone(), json!(v));
            }
            if !annotations.is_empty() {
                ev.insert("annotations".into(), Value::Object(annotations));
            }
        }
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "{}", Value::Object(ev));
            let _ = out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_keeps_the_audit_id_it_sends() {
        let mut headers = http::HeaderMap::new();
        headers.insert("Audit-ID", http::HeaderValue::from_static("trace-1"));
        assert_eq!(audit_id_of(&headers), "trace-1");
        assert_eq!(audit_id_of(&http::HeaderMap::new()).len(), 36);
    }

    #[test]
    fn the_first_matching_rule_decides_the_level() {
        let p = Policy::parse(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  resources: [{group: '', resources: [secrets]}]\n- level: None\n  users: [quiet]\n- level: RequestResponse\n",
        )
        .unwrap_or_default();
        let info = |resource: &str| RequestInfo { is_resource: true, verb: "create".into(), resource: resource.into(), version: "v1".into(), ..Default::default() };
        let alice = UserInfo::new("alice", vec![]);
        assert_eq!(p.evaluate(&alice, &info("secrets")).0, Level::Metadata);
        assert_eq!(p.evaluate(&alice, &info("configmaps")).0, Level::RequestResponse);
        assert_eq!(p.evaluate(&UserInfo::new("quiet", vec![]), &info("configmaps")).0, Level::None);
    }
}
