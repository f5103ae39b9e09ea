//! Bearer-token authentication: the chain of token authenticators a request's
//! `Authorization: Bearer <token>` goes through (upstream's union token authenticator).
//!
//! Each authenticator recognises its own kind of token (static token file, bootstrap token,
//! ServiceAccount JWT, OIDC ID token, IAM token, webhook). The first that accepts the token
//! decides the user; a token no authenticator accepts makes the request 401, never anonymous.

pub mod bootstrap;
pub mod https_client;
pub mod oidc;
pub mod webhook;
pub mod service_account;
pub mod static_file;
pub mod token_review;

use std::sync::Arc;

use async_trait::async_trait;

use crate::UserInfo;

/// The token authentication flags of `rkube server` (kube-apiserver's names).
#[derive(Debug, Clone)]
pub struct AuthnOptions {
    /// `--token-auth-file`.
    pub token_auth_file: Option<std::path::PathBuf>,
    /// `--enable-bootstrap-token-auth` (on by default, as k3s).
    pub bootstrap_tokens: bool,
    /// `--service-account-issuer`.
    pub service_account_issuer: String,
    /// `--api-audiences` (default: the issuer).
    pub api_audiences: Vec<String>,
    /// `--oidc-issuer-url` and the other `--oidc-*` flags.
    pub oidc: Option<oidc::OidcOptions>,
    /// `--authentication-token-webhook-config-file`.
    pub webhook_config_file: Option<std::path::PathBuf>,
    /// `--authentication-token-webhook-cache-ttl`.
    pub webhook_cache_ttl: std::time::Duration,
}

impl Default for AuthnOptions {
    fn default() -> Self {
        Self {
            token_auth_file: None,
            bootstrap_tokens: true,
            service_account_issuer: service_account::DEFAULT_ISSUER.to_string(),
            api_audiences: Vec::new(),
            oidc: None,
            webhook_config_file: None,
            webhook_cache_ttl: webhook::DEFAULT_CACHE_TTL,
        }
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct AuthnError(pub String);

/// One way of turning a bearer token into a user.
#[async_trait]
pub trait TokenAuthenticator: Send + Sync {
    /// `Ok(Some(user))` when the token is this authenticator's and valid, `Ok(None)` when it is
    /// not its kind of token, `Err` when it is its kind but invalid (expired, bad signature, …).
    async fn authenticate(&self, token: &str) -> Result<Option<UserInfo>, AuthnError>;

    /// The user of `token` for a request meant for one of `audiences` (TokenReview
    /// `spec.audiences`; empty: the API audiences), with the audiences the token is valid for.
    /// Audience-agnostic authenticators keep this default, which answers no audiences; the
    /// chain then applies the API audiences as upstream's `WrapAudienceAgnosticToken`.
    async fn authenticate_for_audiences(&self, token: &str, audiences: &[String]) -> Result<Option<(UserInfo, Vec<String>)>, AuthnError> {
        let _ = audiences;
        Ok(self.authenticate(token).await?.map(|user| (user, Vec::new())))
    }
}

/// The configured token authenticators, tried in order.
#[derive(Clone, Default)]
pub struct TokenAuthenticators {
    chain: Vec<Arc<dyn TokenAuthenticator>>,
    /// `--api-audiences`: what tokens of audience-agnostic authenticators are implicitly for.
    api_audiences: Vec<String>,
}

impl TokenAuthenticators {
    /// No token authentication (every bearer token is refused).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an authenticator at the end of the chain.
    pub fn push(&mut self, a: Arc<dyn TokenAuthenticator>) {
        self.chain.push(a);
    }

    /// Sets the API audiences (`--api-audiences`, default the ServiceAccount issuer).
    pub fn set_api_audiences(&mut self, audiences: Vec<String>) {
        self.api_audiences = audiences;
    }

    /// The user of `token`, or why it was refused (every refusal reason, for the log).
    pub async fn authenticate(&self, token: &str) -> Result<UserInfo, Vec<AuthnError>> {
        let mut errors = Vec::new();
        for a in &self.chain {
            match a.authenticate(token).await {
                Ok(Some(user)) => return Ok(with_authenticated_group(user)),
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
        Err(errors)
    }

    /// The user of `token` for one of `audiences` (empty: the API audiences) and the audiences
    /// it is valid for, as TokenReview answers.
    pub async fn authenticate_for_audiences(&self, token: &str, audiences: &[String]) -> Result<(UserInfo, Vec<String>), Vec<AuthnError>> {
        let mut errors = Vec::new();
        for a in &self.chain {
            match a.authenticate_for_audiences(token, audiences).await {
                Ok(Some((user, matched))) if !matched.is_empty() => return Ok((with_authenticated_group(user), matched)),
                Ok(Some((user, _))) => {
                    // Audience-agnostic: valid for the API audiences only.
                    let implicit = &self.api_audiences;
                    let matched: Vec<String> = if audiences.is_empty() {
                        implicit.clone()
                    } else {
                        audiences.iter().filter(|a| implicit.is_empty() || implicit.contains(a)).cloned().collect()
                    };
                    if audiences.is_empty() || !matched.is_empty() {
                        return Ok((with_authenticated_group(user), matched));
                    }
                }
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
        Err(errors)
    }
}

fn with_authenticated_group(mut user: UserInfo) -> UserInfo {
    if !user.groups.iter().any(|g| g == crate::user::ALL_AUTHENTICATED) {
        user.groups.push(crate::user::ALL_AUTHENTICATED.into());
    }
    user
}

/// The token of an `Authorization: Bearer <token>` header (upstream ignores an empty one).
pub fn bearer_token(headers: &http::HeaderMap) -> Option<&str> {
    let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(&'static str, &'static str);

    #[async_trait]
    impl TokenAuthenticator for Fixed {
        async fn authenticate(&self, token: &str) -> Result<Option<UserInfo>, AuthnError> {
            if !token.starts_with(self.0) {
                return Ok(None);
            }
            if token == self.1 { Ok(Some(UserInfo::new(token.to_string(), vec![]))) } else { Err(AuthnError(format!("bad {}", self.0))) }
        }
    }

    #[tokio::test]
    async fn first_accepting_authenticator_wins_and_refusals_are_collected() {
        let mut chain = TokenAuthenticators::new();
        chain.push(Arc::new(Fixed("a-", "a-good")));
        chain.push(Arc::new(Fixed("b-", "b-good")));
        let u = chain.authenticate("b-good").await.unwrap();
        assert_eq!(u.name, "b-good");
        assert!(u.groups.contains(&"system:authenticated".to_string()));
        assert_eq!(chain.authenticate("a-bad").await.unwrap_err()[0].0, "bad a-");
        assert!(chain.authenticate("zzz").await.unwrap_err().is_empty());
    }

    #[test]
    fn bearer_header_parsing() {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, http::HeaderValue::from_static("Bearer abc.def"));
        assert_eq!(bearer_token(&h), Some("abc.def"));
        h.insert(http::header::AUTHORIZATION, http::HeaderValue::from_static("Basic xyz"));
        assert_eq!(bearer_token(&h), None);
    }
}
