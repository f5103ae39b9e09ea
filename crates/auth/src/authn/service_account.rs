//! ServiceAccount tokens (upstream `pkg/serviceaccount`): the server's signing key, bound tokens
//! issued by the TokenRequest API and checked on use against the live ServiceAccount and bound
//! object (uid match, not being deleted), legacy `kubernetes.io/service-account-token` Secret
//! tokens, and the OIDC discovery documents that publish the public key.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rcgen::PublicKeyData;
use rkube_apimachinery::ApiError;
use rkube_registry::Registry;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Digest;

use super::{AuthnError, TokenAuthenticator};
use crate::UserInfo;
use crate::user::{service_account_groups, service_account_username};

/// `--service-account-issuer` default (k3s and kubeadm use the in-cluster service name).
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// Issuer of legacy Secret-based tokens.
const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";
/// Extra keys of ServiceAccount users (upstream `serviceaccount.PodNameKey` …).
const POD_NAME_KEY: &str = "authentication.kubernetes.io/pod-name";
const POD_UID_KEY: &str = "authentication.kubernetes.io/pod-uid";
const NODE_NAME_KEY: &str = "authentication.kubernetes.io/node-name";
const NODE_UID_KEY: &str = "authentication.kubernetes.io/node-uid";
const CREDENTIAL_ID_KEY: &str = "authentication.kubernetes.io/credential-id";

/// The ECDSA P-256 key the server signs ServiceAccount tokens with.
pub struct SigningKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
    jwk: Value,
}

impl SigningKey {
    /// Loads the PKCS#8 PEM key at `path`, creating it on first start.
    pub fn load_or_create(path: &Path) -> Result<Self, String> {
        let pem = match std::fs::read_to_string(path) {
            Ok(pem) => pem,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| format!("generating the service account key: {e}"))?;
                let pem = key.serialize_pem();
                write_private(path, &pem)?;
                pem
            }
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        };
        Self::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// A key from its PKCS#8 PEM.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let pair = rcgen::KeyPair::from_pem(pem).map_err(|e| format!("parsing the service account key: {e}"))?;
        let raw = pair.public_key_raw();
        if raw.len() != 65 || raw[0] != 4 {
            return Err("the service account key must be an ECDSA P-256 key".into());
        }
        let (x, y) = (URL_SAFE_NO_PAD.encode(&raw[1..33]), URL_SAFE_NO_PAD.encode(&raw[33..]));
        // Upstream's key id: the unpadded base64url SHA-256 of the PKIX public key.
        let kid = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(pair.subject_public_key_info()));
        let encoding = EncodingKey::from_ec_pem(pem.as_bytes()).map_err(|e| format!("loading the service account key: {e}"))?;
        let decoding = DecodingKey::from_ec_components(&x, &y).map_err(|e| format!("loading the service account public key: {e}"))?;
        let jwk = json!({"use": "sig", "kty": "EC", "kid": kid, "crv": "P-256", "alg": "ES256", "x": x, "y": y});
        Ok(Self { encoding, decoding, kid, jwk })
    }
}

fn write_private(path: &Path, contents: &str) -> Result<(), String> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| format!("creating {}: {e}", path.display()))?;
    file.write_all(contents.as_bytes()).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Name and uid of an object a token refers to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct ObjectRef {
    /// Object name.
    pub name: String,
    /// Object uid.
    pub uid: String,
}

/// The private `kubernetes.io` claim of bound tokens.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct KubernetesClaim {
    /// ServiceAccount namespace.
    pub namespace: String,
    /// The ServiceAccount.
    pub serviceaccount: ObjectRef,
    /// Bound pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<ObjectRef>,
    /// Bound secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<ObjectRef>,
    /// Bound node, or the node of the bound pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<ObjectRef>,
}

/// Claims of a bound ServiceAccount token (upstream `privateClaims` + registered claims).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BoundClaims {
    /// Issuer.
    pub iss: String,
    /// `system:serviceaccount:<ns>:<name>`.
    pub sub: String,
    /// Audiences.
    pub aud: Vec<String>,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Token id.
    pub jti: String,
    /// ServiceAccount, bound object.
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaim,
}

/// What a TokenRequest asks for, after defaulting and validation.
#[derive(Debug, Clone)]
pub struct TokenSpec {
    /// Audiences (the API audiences when the request gave none).
    pub audiences: Vec<String>,
    /// Lifetime in seconds.
    pub expiration_seconds: i64,
    /// `(kind, name, uid)` of the bound object.
    pub bound: Option<(String, String, String)>,
}

/// Issues and checks ServiceAccount tokens.
pub struct ServiceAccountTokens {
    key: SigningKey,
    issuer: String,
    api_audiences: Vec<String>,
    /// Published as the discovery document's `jwks_uri`.
    jwks_uri: String,
    registry: Arc<Registry>,
}

fn now_seconds() -> i64 {
    chrono::Utc::now().timestamp()
}

impl ServiceAccountTokens {
    /// Tokens signed with `key`, issued as `issuer`; API audiences default to the issuer.
    pub fn new(key: SigningKey, issuer: String, api_audiences: Vec<String>, registry: Arc<Registry>) -> Self {
        let api_audiences = if api_audiences.is_empty() { vec![issuer.clone()] } else { api_audiences };
        let jwks_uri = format!("{}/openid/v1/jwks", issuer_origin(&issuer));
        Self { key, issuer, api_audiences, jwks_uri, registry }
    }

    /// The audiences a token must have one of to reach the API (`--api-audiences`).
    pub fn api_audiences(&self) -> &[String] {
        &self.api_audiences
    }

    /// `/.well-known/openid-configuration`.
    pub fn openid_configuration(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "jwks_uri": self.jwks_uri,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        })
    }

    /// `/openid/v1/jwks`.
    pub fn jwks(&self) -> Value {
        json!({"keys": [self.key.jwk]})
    }

    async fn get(&self, plural: &str, namespace: Option<&str>, name: &str) -> Result<Option<Value>, ApiError> {
        let Some(res) = self.registry.lookup("", "v1", plural) else { return Ok(None) };
        match self.registry.get(&res, namespace, name, "").await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.code == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Answers `POST serviceaccounts/<name>/token` with the TokenRequest, its status filled.
    pub async fn token_request(&self, namespace: &str, sa_name: &str, mut request: Value) -> Result<Value, ApiError> {
        let spec = token_spec(&request, &self.api_audiences)?;
        let sa = self.get("serviceaccounts", Some(namespace), sa_name).await?.ok_or_else(|| ApiError::not_found("", "serviceaccounts", sa_name))?;
        let mut kubernetes =
            KubernetesClaim { namespace: namespace.to_string(), serviceaccount: ObjectRef { name: sa_name.to_string(), uid: uid_of(&sa) }, ..Default::default() };
        if let Some((kind, name, wanted_uid)) = &spec.bound {
            let (plural, ns) = match kind.as_str() {
                "Pod" => ("pods", Some(namespace)),
                "Secret" => ("secrets", Some(namespace)),
                _ => ("nodes", None),
            };
            let object = self.get(plural, ns, name).await?.ok_or_else(|| ApiError::not_found("", plural, name))?;
            let object_ref = ObjectRef { name: name.clone(), uid: uid_of(&object) };
            if !wanted_uid.is_empty() && *wanted_uid != object_ref.uid {
                return Err(ApiError::conflict(
                    "",
                    plural,
                    name,
                    &format!(
                        "the UID in the bound object reference ({wanted_uid}) does not match the UID in record. The object might have been deleted and then recreated"
                    ),
                ));
            }
            match kind.as_str() {
                "Pod" => {
                    let node_name = object.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("").to_string();
                    if !node_name.is_empty()
                        && let Some(node) = self.get("nodes", None, &node_name).await?
                    {
                        kubernetes.node = Some(ObjectRef { name: node_name, uid: uid_of(&node) });
                    }
                    kubernetes.pod = Some(object_ref);
                }
                "Secret" => kubernetes.secret = Some(object_ref),
                _ => kubernetes.node = Some(object_ref),
            }
        }
        let now = now_seconds();
        let claims = BoundClaims {
            iss: self.issuer.clone(),
            sub: service_account_username(namespace, sa_name),
            aud: spec.audiences.clone(),
            exp: now + spec.expiration_seconds,
            iat: now,
            nbf: now,
            jti: uuid::Uuid::new_v4().to_string(),
            kubernetes,
        };
        let token = self.sign(&claims)?;
        let expiration = chrono::DateTime::from_timestamp(claims.exp, 0).unwrap_or_default().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let created = chrono::DateTime::from_timestamp(now, 0).unwrap_or_default().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        request["apiVersion"] = json!("authentication.k8s.io/v1");
        request["kind"] = json!("TokenRequest");
        request["metadata"] = json!({"name": sa_name, "namespace": namespace, "creationTimestamp": created});
        request["spec"]["audiences"] = json!(spec.audiences);
        request["spec"]["expirationSeconds"] = json!(spec.expiration_seconds);
        request["status"] = json!({"token": token, "expirationTimestamp": expiration});
        Ok(request)
    }

    fn sign<T: Serialize>(&self, claims: &T) -> Result<String, ApiError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key.encoding).map_err(|e| ApiError::internal(format!("signing the token: {e}")))
    }

    /// The user of a ServiceAccount token valid for one of `audiences`, with the audiences it
    /// matched; `Ok(None)` when the token is not a JWT issued by this server.
    pub async fn authenticate_for(&self, token: &str, audiences: &[String]) -> Result<Option<(UserInfo, Vec<String>)>, AuthnError> {
        let Some(issuer) = unverified_issuer(token) else { return Ok(None) };
        if issuer == LEGACY_ISSUER {
            return self.authenticate_legacy(token, audiences).await;
        }
        if issuer != self.issuer {
            return Ok(None);
        }
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[&self.issuer]);
        validation.validate_aud = false;
        validation.validate_nbf = true;
        validation.leeway = 60;
        let claims =
            jsonwebtoken::decode::<BoundClaims>(token, &self.key.decoding, &validation).map_err(|e| AuthnError(format!("service account token is invalid: {e}")))?.claims;
        let matched: Vec<String> = audiences.iter().filter(|a| claims.aud.contains(a)).cloned().collect();
        if matched.is_empty() {
            return Err(AuthnError(format!("token audiences {:?} is invalid for the target audiences {:?}", claims.aud, audiences)));
        }
        let k = &claims.kubernetes;
        if claims.sub != service_account_username(&k.namespace, &k.serviceaccount.name) {
            return Err(AuthnError("service account token subject does not match its kubernetes.io claim".into()));
        }
        self.check_live("serviceaccounts", Some(&k.namespace), &k.serviceaccount).await?;
        let mut extra = BTreeMap::new();
        if let Some(pod) = &k.pod {
            self.check_live("pods", Some(&k.namespace), pod).await?;
            extra.insert(POD_NAME_KEY.to_string(), vec![pod.name.clone()]);
            extra.insert(POD_UID_KEY.to_string(), vec![pod.uid.clone()]);
        }
        if let Some(secret) = &k.secret {
            self.check_live("secrets", Some(&k.namespace), secret).await?;
        }
        if let Some(node) = &k.node {
            // The node of a pod-bound token is informational; a node-bound token needs the node.
            if k.pod.is_none() && k.secret.is_none() {
                self.check_live("nodes", None, node).await?;
            }
            extra.insert(NODE_NAME_KEY.to_string(), vec![node.name.clone()]);
            extra.insert(NODE_UID_KEY.to_string(), vec![node.uid.clone()]);
        }
        extra.insert(CREDENTIAL_ID_KEY.to_string(), vec![format!("JTI={}", claims.jti)]);
        let user = UserInfo { name: claims.sub, uid: k.serviceaccount.uid.clone(), groups: service_account_groups(&k.namespace), extra };
        Ok(Some((user, matched)))
    }

    /// Fails unless the object exists, has the token's uid and is not being deleted.
    async fn check_live(&self, plural: &str, namespace: Option<&str>, wanted: &ObjectRef) -> Result<Value, AuthnError> {
        let object = self.get(plural, namespace, &wanted.name).await.map_err(|e| AuthnError(e.message))?;
        let singular = plural.trim_end_matches('s');
        let object = object.ok_or_else(|| AuthnError(format!("{singular} {:?} not found", wanted.name)))?;
        if uid_of(&object) != wanted.uid {
            return Err(AuthnError(format!("{singular} UID ({}) does not match claim ({})", uid_of(&object), wanted.uid)));
        }
        if object.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null()) {
            return Err(AuthnError(format!("{singular} {:?} is being deleted", wanted.name)));
        }
        Ok(object)
    }

    /// Tokens of `kubernetes.io/service-account-token` Secrets: valid while the Secret holds
    /// exactly this token and the ServiceAccount of the claimed uid exists.
    async fn authenticate_legacy(&self, token: &str, audiences: &[String]) -> Result<Option<(UserInfo, Vec<String>)>, AuthnError> {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[LEGACY_ISSUER]);
        validation.validate_aud = false;
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        let claims =
            jsonwebtoken::decode::<Value>(token, &self.key.decoding, &validation).map_err(|e| AuthnError(format!("service account token is invalid: {e}")))?.claims;
        let claim = |k: &str| claims.get(format!("kubernetes.io/serviceaccount/{k}")).and_then(Value::as_str).unwrap_or("").to_string();
        let (namespace, secret_name, sa_name, sa_uid) = (claim("namespace"), claim("secret.name"), claim("service-account.name"), claim("service-account.uid"));
        let secret = self
            .get("secrets", Some(&namespace), &secret_name)
            .await
            .map_err(|e| AuthnError(e.message))?
            .ok_or_else(|| AuthnError(format!("secret {secret_name:?} not found")))?;
        let stored = secret.pointer("/data/token").and_then(Value::as_str).and_then(|t| base64::engine::general_purpose::STANDARD.decode(t).ok());
        if stored.as_deref() != Some(token.as_bytes()) {
            return Err(AuthnError("token does not match the one in its secret".into()));
        }
        self.check_live("serviceaccounts", Some(&namespace), &ObjectRef { name: sa_name.clone(), uid: sa_uid.clone() }).await?;
        let user = UserInfo { name: service_account_username(&namespace, &sa_name), uid: sa_uid, groups: service_account_groups(&namespace), ..Default::default() };
        Ok(Some((user, audiences.to_vec())))
    }

    /// A legacy Secret token for `service_account` (what the token controller writes into
    /// `kubernetes.io/service-account-token` Secrets).
    pub fn legacy_token(&self, namespace: &str, secret_name: &str, sa_name: &str, sa_uid: &str) -> Result<String, ApiError> {
        let claims = json!({
            "iss": LEGACY_ISSUER,
            "kubernetes.io/serviceaccount/namespace": namespace,
            "kubernetes.io/serviceaccount/secret.name": secret_name,
            "kubernetes.io/serviceaccount/service-account.name": sa_name,
            "kubernetes.io/serviceaccount/service-account.uid": sa_uid,
            "sub": service_account_username(namespace, sa_name),
        });
        self.sign(&claims)
    }
}

#[async_trait]
impl TokenAuthenticator for ServiceAccountTokens {
    async fn authenticate(&self, token: &str) -> Result<Option<UserInfo>, AuthnError> {
        Ok(self.authenticate_for(token, &self.api_audiences).await?.map(|(user, _)| user))
    }

    async fn authenticate_for_audiences(&self, token: &str, audiences: &[String]) -> Result<Option<(UserInfo, Vec<String>)>, AuthnError> {
        let audiences = if audiences.is_empty() { &self.api_audiences } else { audiences };
        self.authenticate_for(token, audiences).await
    }
}

/// `scheme://host[:port]` of the issuer URL.
fn issuer_origin(issuer: &str) -> String {
    match issuer.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{}", rest.split('/').next().unwrap_or(rest)),
        None => issuer.trim_end_matches('/').to_string(),
    }
}

/// The `iss` claim of a JWT, read without checking the signature (to pick the verifier).
pub fn unverified_issuer(token: &str) -> Option<String> {
    let payload = unverified_payload(token)?;
    payload.get("iss").and_then(Value::as_str).map(str::to_string)
}

/// The payload of a three-part JWT, unverified.
pub fn unverified_payload(token: &str) -> Option<Value> {
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?).ok()
}

fn uid_of(object: &Value) -> String {
    object.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("").to_string()
}

/// Defaults and validates a TokenRequest's spec as upstream (`ValidateTokenRequest`).
pub fn token_spec(request: &Value, api_audiences: &[String]) -> Result<TokenSpec, ApiError> {
    let spec = request.get("spec").cloned().unwrap_or(Value::Null);
    let audiences: Vec<String> =
        spec.get("audiences").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default();
    let audiences = if audiences.is_empty() { api_audiences.to_vec() } else { audiences };
    let expiration_seconds = spec.get("expirationSeconds").and_then(Value::as_i64).unwrap_or(3600);
    let invalid = |field: &str, value: Value, message: &str| {
        let e = rkube_apimachinery::FieldError::invalid(field, value, message);
        ApiError::invalid("authentication.k8s.io", "TokenRequest", "", &[e])
    };
    if expiration_seconds < 600 {
        return Err(invalid("spec.expirationSeconds", json!(expiration_seconds), "may not specify a duration less than 10 minutes"));
    }
    if expiration_seconds > 1 << 32 {
        return Err(invalid("spec.expirationSeconds", json!(expiration_seconds), "may not specify a duration larger than 2^32 seconds"));
    }
    let bound = match spec.get("boundObjectRef").filter(|v| !v.is_null()) {
        None => None,
        Some(r) => {
            let kind = r.get("kind").and_then(Value::as_str).unwrap_or("").to_string();
            if !matches!(kind.as_str(), "Pod" | "Secret" | "Node") {
                let e = rkube_apimachinery::FieldError::not_supported("spec.boundObjectRef.kind", json!(kind), &["Pod", "Secret", "Node"]);
                return Err(ApiError::invalid("authentication.k8s.io", "TokenRequest", "", &[e]));
            }
            let name = r.get("name").and_then(Value::as_str).unwrap_or("").to_string();
            let uid = r.get("uid").and_then(Value::as_str).unwrap_or("").to_string();
            Some((kind, name, uid))
        }
    };
    Ok(TokenSpec { audiences, expiration_seconds, bound })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signing_key_is_created_once_and_reused_with_the_same_key_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("service-account.key");
        let first = SigningKey::load_or_create(&path).unwrap();
        let again = SigningKey::load_or_create(&path).unwrap();
        assert_eq!(first.kid, again.kid);
        assert_eq!(first.jwk["kty"], "EC");
        assert_eq!(first.jwk["crv"], "P-256");
        assert_eq!(first.jwk["kid"], first.kid.as_str());
    }

    #[test]
    fn token_requests_are_defaulted_and_validated_as_upstream() {
        let api = vec![DEFAULT_ISSUER.to_string()];
        let spec = token_spec(&json!({"spec": {}}), &api).unwrap();
        assert_eq!((spec.audiences.clone(), spec.expiration_seconds), (api.clone(), 3600));
        let e = token_spec(&json!({"spec": {"expirationSeconds": 599}}), &api).unwrap_err();
        assert!(e.message.contains("spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes"), "{}", e.message);
        let e = token_spec(&json!({"spec": {"boundObjectRef": {"kind": "ConfigMap", "name": "x"}}}), &api).unwrap_err();
        assert!(e.message.contains("spec.boundObjectRef.kind: Unsupported value: \"ConfigMap\""), "{}", e.message);
        let bound = token_spec(&json!({"spec": {"audiences": ["x"], "boundObjectRef": {"kind": "Pod", "name": "web"}}}), &api).unwrap();
        assert_eq!(bound.audiences, vec!["x"]);
        assert_eq!(bound.bound, Some(("Pod".into(), "web".into(), String::new())));
    }

    #[test]
    fn the_issuer_is_read_from_an_unverified_jwt_and_other_strings_are_not_jwts() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"iss":"https://issuer"}"#);
        assert_eq!(unverified_issuer(&format!("e30.{payload}.sig")).as_deref(), Some("https://issuer"));
        assert_eq!(unverified_issuer("abcdef.0123456789abcdef"), None);
        assert_eq!(issuer_origin("https://kubernetes.default.svc.cluster.local/path"), "https://kubernetes.default.svc.cluster.local");
    }
}
