//! Who may use the agent's HTTPS endpoint, as the kubelet decides with
//! `--client-ca-file`, `--authentication-token-webhook`, `--anonymous-auth=false` and
//! `--authorization-mode=Webhook` (`pkg/kubelet/server/auth.go`, `server.go`
//! `InstallAuthFilter`): a client certificate verified against the cluster CA (CN = user,
//! O = groups) or a bearer token checked with a TokenReview, else 401 `Unauthorized`; then a
//! SubjectAccessReview for `nodes/<subresource>` of this node with the verb of the HTTP method,
//! else 403 `Forbidden (user=…, verb=…, resource=nodes, subresource(s)=[…])`.
//!
//! Answers are cached as the kubelet's webhook defaults do: token reviews 2 min, allowed
//! decisions 5 min, denied ones 30 s.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use http::{HeaderMap, Method, StatusCode};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;
use parking_lot::Mutex;

const TOKEN_TTL: Duration = Duration::from_secs(120);
const ALLOWED_TTL: Duration = Duration::from_secs(300);
const DENIED_TTL: Duration = Duration::from_secs(30);

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Caller {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// Why a request is refused: status and the kubelet's plain-text message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
}

fn unauthorized() -> Refusal {
    Refusal {
        status: StatusCode::UNAUTHORIZED,
        message: "Unauthorized".into(),
    }
}

/// Upstream's `isSubpath`: `path` itself or below it.
fn is_subpath(request: &str, path: &str) -> bool {
    let path = path.trim_end_matches('/');
    request == path
        || (request.starts_with(path) && request.as_bytes().get(path.len()) == Some(&b'/'))
}

/// The API verb of an HTTP method, as the kubelet maps it ("" for others).
pub fn verb(method: &Method) -> &'static str {
    match *method {
        Method::POST => "create",
        Method::GET => "get",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "",
    }
}

/// The `nodes` subresources a request path is authorized as, in the order they are tried:
/// fine-grained ones first (KubeletFineGrainedAuthz, on by default in 1.33) falling back to
/// `proxy`; `/stats`, `/metrics`, `/logs`, `/checkpoint` have their own; everything else
/// (`/containerLogs`, `/exec`, `/attach`, `/portForward`, `/run`, …) is `proxy`.
pub fn subresources(path: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    if is_subpath(path, "/pods") || is_subpath(path, "/runningpods/") {
        out.push("pods");
    } else if is_subpath(path, "/healthz") {
        out.push("healthz");
    } else if is_subpath(path, "/configz") {
        out.push("configz");
    }
    out.push(if is_subpath(path, "/stats/") {
        "stats"
    } else if is_subpath(path, "/metrics") {
        "metrics"
    } else if is_subpath(path, "/logs/") {
        "log"
    } else if is_subpath(path, "/checkpoint") {
        "checkpoint"
    } else {
        "proxy"
    });
    out
}

/// Authenticates and authorizes requests to one node's endpoint through the API server.
pub struct EndpointAuth {
    client: kube::Client,
    node_name: String,
    tokens: Mutex<HashMap<String, (Instant, Option<Caller>)>>,
    decisions: Mutex<HashMap<String, (Instant, bool)>>,
}

impl EndpointAuth {
    pub fn new(client: kube::Client, node_name: String) -> Self {
        Self {
            client,
            node_name,
            tokens: Mutex::new(HashMap::new()),
            decisions: Mutex::new(HashMap::new()),
        }
    }

    /// Admits a request or says why not. `client_certificate` is the verified leaf the
    /// connection presented, if any.
    pub async fn admit(
        &self,
        client_certificate: Option<&[u8]>,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<Caller, Refusal> {
        let caller = self.authenticate(client_certificate, headers).await?;
        let verb = verb(method);
        let subresources = subresources(path);
        for subresource in &subresources {
            match self.authorize(&caller, verb, subresource).await {
                Ok(true) => return Ok(caller),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(user = %caller.name, verb, subresource, error = %e, "agent endpoint authorization");
                    return Err(Refusal {
                        status: StatusCode::INTERNAL_SERVER_ERROR,
                        message: format!(
                            "Authorization error (user={}, verb={verb}, resource=nodes, subresource(s)=[{}])",
                            caller.name,
                            subresources.join(" ")
                        ),
                    });
                }
            }
        }
        Err(Refusal {
            status: StatusCode::FORBIDDEN,
            message: format!(
                "Forbidden (user={}, verb={verb}, resource=nodes, subresource(s)=[{}])",
                caller.name,
                subresources.join(" ")
            ),
        })
    }

    async fn authenticate(
        &self,
        client_certificate: Option<&[u8]>,
        headers: &HeaderMap,
    ) -> Result<Caller, Refusal> {
        if let Some(der) = client_certificate {
            let (name, mut groups) = rkube_pki::peer_identity(der).map_err(|e| {
                tracing::debug!(error = %e, "agent endpoint client certificate");
                unauthorized()
            })?;
            groups.push("system:authenticated".into());
            return Ok(Caller {
                name,
                groups,
                ..Default::default()
            });
        }
        let token = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(unauthorized)?;
        if let Some((at, cached)) = self.tokens.lock().get(token).cloned()
            && at.elapsed() < TOKEN_TTL
        {
            return cached.ok_or_else(unauthorized);
        }
        let caller = self.review_token(token).await.map_err(|e| {
            // Errors are not cached: the next request asks again.
            tracing::warn!(error = %e, "agent endpoint token review");
            unauthorized()
        })?;
        let mut tokens = self.tokens.lock();
        tokens.retain(|_, (at, _)| at.elapsed() < TOKEN_TTL);
        tokens.insert(token.to_string(), (Instant::now(), caller.clone()));
        caller.ok_or_else(unauthorized)
    }

    async fn review_token(&self, token: &str) -> Result<Option<Caller>, kube::Error> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: None,
            },
            ..Default::default()
        };
        let api: Api<TokenReview> = Api::all(self.client.clone());
        let answer = api.create(&PostParams::default(), &review).await?;
        let Some(status) = answer.status.filter(|s| s.authenticated == Some(true)) else {
            return Ok(None);
        };
        let user = status.user.unwrap_or_default();
        let mut groups = user.groups.unwrap_or_default();
        if !groups.iter().any(|g| g == "system:authenticated") {
            groups.push("system:authenticated".into());
        }
        Ok(Some(Caller {
            name: user.username.unwrap_or_default(),
            uid: user.uid.unwrap_or_default(),
            groups,
            extra: user.extra.unwrap_or_default().into_iter().collect(),
        }))
    }

    async fn authorize(
        &self,
        caller: &Caller,
        verb: &str,
        subresource: &str,
    ) -> Result<bool, kube::Error> {
        let spec = SubjectAccessReviewSpec {
            user: Some(caller.name.clone()),
            uid: (!caller.uid.is_empty()).then(|| caller.uid.clone()),
            groups: Some(caller.groups.clone()),
            extra: (!caller.extra.is_empty()).then(|| caller.extra.clone().into_iter().collect()),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.to_string()),
                group: Some(String::new()),
                version: Some("v1".into()),
                resource: Some("nodes".into()),
                subresource: Some(subresource.to_string()),
                name: Some(self.node_name.clone()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let key = serde_json::to_string(&spec).unwrap_or_default();
        if let Some((at, allowed)) = self.decisions.lock().get(&key).copied() {
            let ttl = if allowed { ALLOWED_TTL } else { DENIED_TTL };
            if at.elapsed() < ttl {
                return Ok(allowed);
            }
        }
        let review = SubjectAccessReview {
            spec,
            ..Default::default()
        };
        let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
        let answer = api.create(&PostParams::default(), &review).await?;
        let allowed = answer.status.is_some_and(|s| s.allowed);
        let mut decisions = self.decisions.lock();
        decisions.retain(|_, (at, allowed)| {
            at.elapsed() < if *allowed { ALLOWED_TTL } else { DENIED_TTL }
        });
        decisions.insert(key, (Instant::now(), allowed));
        Ok(allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_the_kubelets_subresources() {
        assert_eq!(subresources("/stats/summary"), ["stats"]);
        assert_eq!(subresources("/stats"), ["stats"]);
        assert_eq!(subresources("/metrics/resource"), ["metrics"]);
        assert_eq!(subresources("/metrics"), ["metrics"]);
        assert_eq!(subresources("/metricsx"), ["proxy"]);
        assert_eq!(subresources("/logs/syslog"), ["log"]);
        assert_eq!(subresources("/containerLogs/ns/p/c"), ["proxy"]);
        assert_eq!(subresources("/exec/ns/p/c"), ["proxy"]);
        assert_eq!(subresources("/attach/ns/p/c"), ["proxy"]);
        assert_eq!(subresources("/portForward/ns/p"), ["proxy"]);
        assert_eq!(subresources("/pods"), ["pods", "proxy"]);
        assert_eq!(subresources("/runningpods/"), ["pods", "proxy"]);
        assert_eq!(subresources("/healthz"), ["healthz", "proxy"]);
        assert_eq!(subresources("/configz"), ["configz", "proxy"]);
        assert_eq!(subresources("/checkpoint/ns/p/c"), ["checkpoint"]);
    }

    #[test]
    fn verbs_follow_the_http_method() {
        assert_eq!(verb(&Method::GET), "get");
        assert_eq!(verb(&Method::POST), "create");
        assert_eq!(verb(&Method::PUT), "update");
        assert_eq!(verb(&Method::PATCH), "patch");
        assert_eq!(verb(&Method::DELETE), "delete");
        assert_eq!(verb(&Method::HEAD), "");
    }
}
