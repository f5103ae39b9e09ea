//! OpenID Connect ID tokens from an external issuer (`--oidc-*` flags; upstream
//! `plugin/pkg/authenticator/token/oidc`): discovery document and JWKS fetched over HTTPS and
//! cached, refetched when a token names an unknown key id.

use std::path::PathBuf;

use async_trait::async_trait;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tokio::sync::Mutex;

use super::https_client::HttpsClient;
use super::service_account::unverified_issuer;
use super::{AuthnError, TokenAuthenticator};
use crate::UserInfo;

/// The `--oidc-*` flags.
#[derive(Debug, Clone, Default)]
pub struct OidcOptions {
    /// `--oidc-issuer-url` (https).
    pub issuer_url: String,
    /// `--oidc-client-id`: the audience tokens must have.
    pub client_id: String,
    /// `--oidc-username-claim` (default `sub`).
    pub username_claim: String,
    /// `--oidc-username-prefix`; `None`: the issuer URL and `#` for claims other than `email`;
    /// `-`: no prefix.
    pub username_prefix: Option<String>,
    /// `--oidc-groups-claim`.
    pub groups_claim: Option<String>,
    /// `--oidc-groups-prefix`.
    pub groups_prefix: String,
    /// `--oidc-ca-file` (default: the system's CA bundle).
    pub ca_file: Option<PathBuf>,
}

/// Verifies ID tokens of one issuer.
pub struct OidcAuthenticator {
    opts: OidcOptions,
    client: HttpsClient,
    keys: Mutex<Option<JwkSet>>,
}

const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

impl OidcAuthenticator {
    /// An authenticator for `opts` (the CA file is read now; the issuer is contacted on use).
    pub fn new(mut opts: OidcOptions) -> Result<Self, String> {
        if !opts.issuer_url.starts_with("https://") {
            return Err(format!("--oidc-issuer-url {:?} must be an https URL", opts.issuer_url));
        }
        if opts.client_id.is_empty() {
            return Err("--oidc-client-id is required with --oidc-issuer-url".into());
        }
        if opts.username_claim.is_empty() {
            opts.username_claim = "sub".into();
        }
        let ca_path = opts.ca_file.clone().unwrap_or_else(|| PathBuf::from(SYSTEM_CA_BUNDLE));
        let ca = std::fs::read(&ca_path).map_err(|e| format!("reading --oidc-ca-file {}: {e}", ca_path.display()))?;
        let client = HttpsClient::new(&ca, None)?;
        Ok(Self { opts, client, keys: Mutex::new(None) })
    }

    async fn fetch_keys(&self) -> Result<JwkSet, AuthnError> {
        let discovery_url = format!("{}/.well-known/openid-configuration", self.opts.issuer_url.trim_end_matches('/'));
        let discovery = self.client.get_json(&discovery_url).await.map_err(|e| AuthnError(format!("oidc: fetching provider metadata: {e}")))?;
        if discovery.get("issuer").and_then(Value::as_str) != Some(self.opts.issuer_url.as_str()) {
            return Err(AuthnError(format!(
                "oidc: issuer did not match the issuer returned by provider, expected {:?} got {}",
                self.opts.issuer_url, discovery["issuer"]
            )));
        }
        let jwks_uri = discovery.get("jwks_uri").and_then(Value::as_str).ok_or_else(|| AuthnError("oidc: provider metadata has no jwks_uri".into()))?;
        let jwks = self.client.get_json(jwks_uri).await.map_err(|e| AuthnError(format!("oidc: fetching keys: {e}")))?;
        serde_json::from_value(jwks).map_err(|e| AuthnError(format!("oidc: invalid JWKS: {e}")))
    }

    /// The key `kid` names (any key when the token names none), from the cache or refetched.
    async fn key_for(&self, kid: Option<&str>) -> Result<jsonwebtoken::jwk::Jwk, AuthnError> {
        let mut cached = self.keys.lock().await;
        let find = |set: &JwkSet| match kid {
            Some(kid) => set.find(kid).cloned(),
            None => set.keys.first().cloned(),
        };
        if let Some(key) = cached.as_ref().and_then(find) {
            return Ok(key);
        }
        let fresh = self.fetch_keys().await?;
        let key = find(&fresh);
        *cached = Some(fresh);
        key.ok_or_else(|| AuthnError(format!("oidc: verify token: no key with id {kid:?}")))
    }

    /// The user of verified `claims`.
    fn user(&self, claims: &Value) -> Result<UserInfo, AuthnError> {
        let claim = &self.opts.username_claim;
        let username = claims.get(claim).and_then(Value::as_str).ok_or_else(|| AuthnError(format!("oidc: parse username claims {claim:?}: claim not present")))?;
        if claim == "email" && claims.get("email_verified").is_some_and(|v| v != &Value::Bool(true)) {
            return Err(AuthnError("oidc: email not verified".into()));
        }
        let prefix = match self.opts.username_prefix.as_deref() {
            Some("-") => String::new(),
            Some(p) => p.to_string(),
            None if claim == "email" => String::new(),
            None => format!("{}#", self.opts.issuer_url),
        };
        let mut groups = Vec::new();
        if let Some(groups_claim) = &self.opts.groups_claim {
            match claims.get(groups_claim) {
                None | Some(Value::Null) => {}
                Some(Value::String(g)) => groups.push(format!("{}{g}", self.opts.groups_prefix)),
                Some(Value::Array(list)) => {
                    for g in list {
                        let g = g.as_str().ok_or_else(|| AuthnError(format!("oidc: parse groups claim {groups_claim:?}: not a list of strings")))?;
                        groups.push(format!("{}{g}", self.opts.groups_prefix));
                    }
                }
                Some(_) => return Err(AuthnError(format!("oidc: parse groups claim {groups_claim:?}: not a string or list of strings"))),
            }
        }
        Ok(UserInfo::new(format!("{prefix}{username}"), groups))
    }
}

fn algorithm_of(jwk: &jsonwebtoken::jwk::Jwk, header_alg: Algorithm) -> Algorithm {
    match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(_) if header_alg == Algorithm::ES384 => Algorithm::ES384,
        AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
        _ => header_alg,
    }
}

#[async_trait]
impl TokenAuthenticator for OidcAuthenticator {
    async fn authenticate(&self, token: &str) -> Result<Option<UserInfo>, AuthnError> {
        if unverified_issuer(token).as_deref() != Some(self.opts.issuer_url.as_str()) {
            return Ok(None);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| AuthnError(format!("oidc: malformed jwt: {e}")))?;
        if matches!(header.alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
            return Err(AuthnError("oidc: verify token: symmetric algorithms are not accepted".into()));
        }
        let jwk = self.key_for(header.kid.as_deref()).await?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| AuthnError(format!("oidc: unusable key: {e}")))?;
        let mut validation = Validation::new(algorithm_of(&jwk, header.alg));
        validation.set_issuer(&[&self.opts.issuer_url]);
        validation.set_audience(&[&self.opts.client_id]);
        let claims = jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| AuthnError(format!("oidc: verify token: {e}")))?.claims;
        self.user(&claims).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn authenticator(username_claim: &str, username_prefix: Option<&str>) -> OidcAuthenticator {
        let opts = OidcOptions {
            issuer_url: "https://issuer.example".into(),
            client_id: "rkube".into(),
            username_claim: username_claim.into(),
            username_prefix: username_prefix.map(str::to_string),
            groups_claim: Some("groups".into()),
            groups_prefix: "oidc:".into(),
            ca_file: None,
        };
        OidcAuthenticator { opts, client: HttpsClient::new(b"", None).unwrap(), keys: Mutex::new(None) }
    }

    #[test]
    fn usernames_are_prefixed_with_the_issuer_except_for_email() {
        let claims = json!({"sub": "1234", "email": "jane@example.com", "email_verified": true, "groups": ["dev", "ops"]});
        let user = authenticator("sub", None).user(&claims).unwrap();
        assert_eq!(user.name, "https://issuer.example#1234");
        assert_eq!(user.groups, vec!["oidc:dev", "oidc:ops"]);
        assert_eq!(authenticator("email", None).user(&claims).unwrap().name, "jane@example.com");
        assert_eq!(authenticator("sub", Some("-")).user(&claims).unwrap().name, "1234");
        assert_eq!(authenticator("sub", Some("corp:")).user(&claims).unwrap().name, "corp:1234");
    }

    #[test]
    fn unverified_email_and_missing_claims_are_refused() {
        let e = authenticator("email", None).user(&json!({"email": "j@x", "email_verified": false})).unwrap_err();
        assert_eq!(e.0, "oidc: email not verified");
        assert!(authenticator("sub", None).user(&json!({})).is_err());
    }
}
