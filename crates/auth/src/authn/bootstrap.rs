//! Bootstrap tokens: `<id>.<secret>` checked against the `bootstrap-token-<id>` Secret in
//! kube-system (upstream `plugin/pkg/auth/authenticator/token/bootstrap`). Like upstream, a
//! token whose Secret is missing, expired, not for authentication or not matching is simply not
//! authenticated (no error), so other authenticators may still accept it.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use rkube_registry::Registry;
use serde_json::Value;

use super::{AuthnError, TokenAuthenticator};
use crate::UserInfo;

const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
const BOOTSTRAPPERS: &str = "system:bootstrappers";

/// Looks bootstrap tokens up in kube-system Secrets.
pub struct BootstrapTokens {
    registry: Arc<Registry>,
}

impl BootstrapTokens {
    /// Reads Secrets through `registry`.
    pub fn new(registry: Arc<Registry>) -> Self {
        Self { registry }
    }
}

/// `<6 [a-z0-9]>.<16 [a-z0-9]>` split into id and secret.
fn split_token(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.split_once('.')?;
    let ok = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (ok(id, 6) && ok(secret, 16)).then_some((id, secret))
}

/// A `data` field of a Secret (base64), or its `stringData`.
fn secret_field(secret: &Value, key: &str) -> Option<String> {
    if let Some(encoded) = secret.pointer(&format!("/data/{key}")).and_then(Value::as_str) {
        let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
        return String::from_utf8(bytes).ok();
    }
    secret.pointer(&format!("/stringData/{key}")).and_then(Value::as_str).map(str::to_string)
}

/// The user a bootstrap token Secret grants for `id`/`token_secret` at `now`, if any.
pub fn user_of_secret(secret: &Value, id: &str, token_secret: &str, now: chrono::DateTime<chrono::Utc>) -> Option<UserInfo> {
    if secret.get("type").and_then(Value::as_str) != Some(SECRET_TYPE) || secret.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null()) {
        return None;
    }
    if secret_field(secret, "token-id").as_deref() != Some(id) || secret_field(secret, "token-secret").as_deref() != Some(token_secret) {
        return None;
    }
    if let Some(expiration) = secret_field(secret, "expiration") {
        match chrono::DateTime::parse_from_rfc3339(&expiration) {
            Ok(t) if t > now => {}
            _ => return None,
        }
    }
    if secret_field(secret, "usage-bootstrap-authentication").as_deref() != Some("true") {
        return None;
    }
    let mut groups = vec![BOOTSTRAPPERS.to_string()];
    for g in secret_field(secret, "auth-extra-groups").unwrap_or_default().split(',').map(str::trim).filter(|g| !g.is_empty()) {
        if !g.starts_with("system:bootstrappers:") {
            tracing::warn!(secret = id, group = g, "bootstrap token extra group must start with system:bootstrappers:");
            return None;
        }
        if !groups.iter().any(|x| x == g) {
            groups.push(g.to_string());
        }
    }
    Some(UserInfo::new(format!("system:bootstrap:{id}"), groups))
}

#[async_trait]
impl TokenAuthenticator for BootstrapTokens {
    async fn authenticate(&self, token: &str) -> Result<Option<UserInfo>, AuthnError> {
        let Some((id, token_secret)) = split_token(token) else { return Ok(None) };
        let Some(secrets) = self.registry.lookup("", "v1", "secrets") else { return Ok(None) };
        let secret = match self.registry.get(&secrets, Some("kube-system"), &format!("bootstrap-token-{id}"), "").await {
            Ok(s) => s,
            Err(e) if e.code == 404 => return Ok(None),
            Err(e) => return Err(AuthnError(format!("reading bootstrap token secret: {}", e.message))),
        };
        Ok(user_of_secret(&secret, id, token_secret, chrono::Utc::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secret(expiration: &str) -> Value {
        json!({"type": SECRET_TYPE, "metadata": {"name": "bootstrap-token-abcdef"}, "stringData": {
            "token-id": "abcdef", "token-secret": "0123456789abcdef", "usage-bootstrap-authentication": "true",
            "auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token", "expiration": expiration}})
    }

    #[test]
    fn valid_token_gives_bootstrap_user_and_groups() {
        let now = chrono::Utc::now();
        let user = user_of_secret(&secret("2099-01-01T00:00:00Z"), "abcdef", "0123456789abcdef", now).unwrap();
        assert_eq!(user.name, "system:bootstrap:abcdef");
        assert_eq!(user.groups, vec!["system:bootstrappers", "system:bootstrappers:kubeadm:default-node-token"]);
    }

    #[test]
    fn expired_wrong_secret_and_malformed_tokens_are_not_accepted() {
        let now = chrono::Utc::now();
        assert!(user_of_secret(&secret("2020-01-01T00:00:00Z"), "abcdef", "0123456789abcdef", now).is_none());
        assert!(user_of_secret(&secret("2099-01-01T00:00:00Z"), "abcdef", "0123456789abcdeX", now).is_none());
        assert_eq!(split_token("abcdef.0123456789abcdef"), Some(("abcdef", "0123456789abcdef")));
        assert_eq!(split_token("abcdef.short"), None);
    }
}
