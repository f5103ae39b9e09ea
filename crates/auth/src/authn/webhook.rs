//! `--authentication-token-webhook-config-file`: tokens checked by a remote service that answers
//! `authentication.k8s.io/v1` TokenReviews (upstream `plugin/pkg/auth/authenticator/token/webhook`),
//! answers cached for `--authentication-token-webhook-cache-ttl` (errors are not cached).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine;
use parking_lot::Mutex;
use serde_json::{Value, json};
use sha2::Digest;

use super::https_client::HttpsClient;
use super::{AuthnError, TokenAuthenticator};
use crate::UserInfo;

/// Default `--authentication-token-webhook-cache-ttl`.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(120);

/// A cached webhook answer: the user (none: not authenticated) and when it was given.
type CachedAnswer = (Option<UserInfo>, Instant);

/// Asks a TokenReview webhook.
pub struct WebhookAuthenticator {
    server: String,
    client: HttpsClient,
    ttl: Duration,
    /// SHA-256 of the token → the webhook's answer and when it was given.
    cache: Mutex<HashMap<[u8; 32], CachedAnswer>>,
}

/// A kubeconfig field given inline (`<name>-data`, base64) or as a file path, relative to the
/// kubeconfig's directory.
fn kubeconfig_bytes(section: &Value, name: &str, dir: &Path) -> Result<Option<Vec<u8>>, String> {
    if let Some(data) = section.get(format!("{name}-data")).and_then(Value::as_str) {
        return base64::engine::general_purpose::STANDARD.decode(data).map(Some).map_err(|e| format!("{name}-data: {e}"));
    }
    match section.get(name).and_then(Value::as_str) {
        Some(path) => std::fs::read(dir.join(path)).map(Some).map_err(|e| format!("{name} {path}: {e}")),
        None => Ok(None),
    }
}

impl WebhookAuthenticator {
    /// Reads the webhook's kubeconfig (server, CA, client certificate of its first cluster and user).
    pub fn from_kubeconfig(path: &Path, ttl: Duration) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let config: Value = serde_yaml_ng::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let cluster = config.pointer("/clusters/0/cluster").ok_or_else(|| format!("{}: no cluster", path.display()))?;
        let server = cluster.get("server").and_then(Value::as_str).ok_or_else(|| format!("{}: the cluster has no server", path.display()))?.to_string();
        let ca = match kubeconfig_bytes(cluster, "certificate-authority", dir)? {
            Some(ca) => ca,
            None => std::fs::read("/etc/ssl/certs/ca-certificates.crt").map_err(|e| format!("reading the system CA bundle: {e}"))?,
        };
        let user = config.pointer("/users/0/user").cloned().unwrap_or(Value::Null);
        let cert = kubeconfig_bytes(&user, "client-certificate", dir)?;
        let key = kubeconfig_bytes(&user, "client-key", dir)?;
        let identity = cert.as_deref().zip(key.as_deref());
        let client = HttpsClient::new(&ca, identity)?;
        Ok(Self { server, client, ttl, cache: Mutex::new(HashMap::new()) })
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Option<UserInfo>> {
        let mut cache = self.cache.lock();
        cache.retain(|_, (_, at)| at.elapsed() < self.ttl);
        cache.get(key).map(|(user, _)| user.clone())
    }
}

/// The user of a TokenReview answer, if it says authenticated.
fn user_of_review(review: &Value) -> Option<UserInfo> {
    let status = review.get("status")?;
    if status.get("authenticated").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    let user = status.get("user").cloned().unwrap_or(Value::Null);
    let strings = |v: &Value| v.as_array().map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect::<Vec<_>>()).unwrap_or_default();
    Some(UserInfo {
        name: user.get("username").and_then(Value::as_str).unwrap_or("").to_string(),
        uid: user.get("uid").and_then(Value::as_str).unwrap_or("").to_string(),
        groups: strings(user.get("groups").unwrap_or(&Value::Null)),
        extra: user.get("extra").and_then(Value::as_object).map(|m| m.iter().map(|(k, v)| (k.clone(), strings(v))).collect()).unwrap_or_default(),
    })
}

#[async_trait]
impl TokenAuthenticator for WebhookAuthenticator {
    async fn authenticate(&self, token: &str) -> Result<Option<UserInfo>, AuthnError> {
        let key: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        if let Some(answer) = self.cached(&key) {
            return Ok(answer);
        }
        let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "metadata": {"creationTimestamp": null}, "spec": {"token": token}, "status": {"user": {}}});
        let answer = self.client.post_json(&self.server, &review).await.map_err(|e| AuthnError(format!("webhook: {e}")))?;
        let user = user_of_review(&answer);
        if user.is_none()
            && let Some(error) = answer.pointer("/status/error").and_then(Value::as_str)
        {
            tracing::debug!(error, "token webhook refused the token");
        }
        self.cache.lock().insert(key, (user.clone(), Instant::now()));
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authenticated_reviews_give_their_user() {
        let review = json!({"status": {"authenticated": true, "user": {"username": "ada", "uid": "7", "groups": ["eng"], "extra": {"scope": ["a"]}}}});
        let user = user_of_review(&review).unwrap();
        assert_eq!((user.name.as_str(), user.uid.as_str()), ("ada", "7"));
        assert_eq!(user.groups, vec!["eng"]);
        assert_eq!(user.extra["scope"], vec!["a"]);
        assert_eq!(user_of_review(&json!({"status": {"authenticated": false}})), None);
    }
}
