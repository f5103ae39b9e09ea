//! Bearer-token authentication: the chain of token authenticators a request's
//! `Authorization: Bearer <token>` goes through (upstream's union token authenticator).
//!
//! Each authenticator recognises its own kind of token (static token file, bootstrap token,
//! ServiceAccount JWT, OIDC ID token, IAM token, webhook). The first that accepts the token
//! decides the user; a token no authenticator accepts makes the request 401, never anonymous.

use std::sync::Arc;

use async_trait::async_trait;

use crate::UserInfo;

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
}

/// The configured token authenticators, tried in order.
#[derive(Clone, Default)]
pub struct TokenAuthenticators {
    chain: Vec<Arc<dyn TokenAuthenticator>>,
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

    /// The user of `token`, or why it was refused (every refusal reason, for the log).
    pub async fn authenticate(&self, token: &str) -> Result<UserInfo, Vec<AuthnError>> {
        let mut errors = Vec::new();
        for a in &self.chain {
            match a.authenticate(token).await {
                Ok(Some(mut user)) => {
                    if !user.groups.iter().any(|g| g == "system:authenticated") {
                        user.groups.push("system:authenticated".into());
                    }
                    return Ok(user);
                }
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
        Err(errors)
    }
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
