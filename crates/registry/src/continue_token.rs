//! Continue tokens for paginated lists, in upstream's shape: base64 of
//! `{"v":"meta.k8s.io/v1","rv":N,"start":"<key suffix>\u0000"}`
//! (apiserver `pkg/storage/continue.go`). Clients treat them as opaque.

use base64::Engine;
use rkube_apimachinery::ApiError;
use serde_json::json;

const TOKEN_VERSION: &str = "meta.k8s.io/v1";

/// A decoded continue token: the revision of the first page and the key to continue after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContinueToken {
    /// Revision every page is read at.
    pub revision: i64,
    /// Key (relative to the list prefix) of the last item returned.
    pub start_after: String,
}

impl ContinueToken {
    /// Encodes the token.
    pub fn encode(&self) -> String {
        let body = json!({"v": TOKEN_VERSION, "rv": self.revision, "start": format!("{}\u{0}", self.start_after)});
        base64::engine::general_purpose::URL_SAFE.encode(body.to_string())
    }

    /// Decodes a token, with upstream's error for anything malformed.
    pub fn decode(token: &str) -> Result<Self, ApiError> {
        let bad = || ApiError::bad_request(format!("continue key is not valid: {token}"));
        let bytes = base64::engine::general_purpose::URL_SAFE
            .decode(token)
            .or_else(|_| base64::engine::general_purpose::STANDARD.decode(token))
            .map_err(|_| bad())?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if v.get("v").and_then(|x| x.as_str()) != Some(TOKEN_VERSION) {
            return Err(ApiError::bad_request(format!(
                "continue key is not valid: incorrect encoded start resourceVersion (version {TOKEN_VERSION} required)"
            )));
        }
        let revision = v.get("rv").and_then(|x| x.as_i64()).ok_or_else(bad)?;
        let start = v.get("start").and_then(|x| x.as_str()).ok_or_else(bad)?;
        let start_after = start.strip_suffix('\u{0}').unwrap_or(start).to_string();
        if start_after.contains("..") || start_after.starts_with('/') {
            return Err(bad());
        }
        Ok(Self { revision, start_after })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = ContinueToken { revision: 42, start_after: "default/web-7".into() };
        assert_eq!(ContinueToken::decode(&t.encode()).unwrap(), t);
    }

    #[test]
    fn garbage_is_bad_request() {
        assert_eq!(ContinueToken::decode("!!!").unwrap_err().code, 400);
    }
}
