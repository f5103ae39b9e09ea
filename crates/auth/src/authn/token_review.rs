//! `authentication.k8s.io/v1` TokenReview (pkg/registry/authentication/tokenreview): the token
//! authenticator chain answers whether a token is valid, for whom and for which audiences.

use rkube_apimachinery::ApiError;
use serde_json::{Value, json};

use super::TokenAuthenticators;

/// Fills the status of a TokenReview created in `namespace` (which must be none).
pub async fn answer(chain: &TokenAuthenticators, namespace: Option<&str>, mut review: Value) -> Result<Value, ApiError> {
    if namespace.is_some_and(|ns| !ns.is_empty()) {
        return Err(ApiError::bad_request("namespace is not allowed on this type"));
    }
    let token = review.pointer("/spec/token").and_then(Value::as_str).unwrap_or("").to_string();
    if token.is_empty() {
        return Err(ApiError::bad_request("token is required for TokenReview in authentication.k8s.io"));
    }
    let audiences: Vec<String> =
        review.pointer("/spec/audiences").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default();
    let status = match chain.authenticate_for_audiences(&token, &audiences).await {
        Ok((user, matched)) => {
            let mut user_json = json!({"username": user.name, "groups": user.groups});
            if !user.uid.is_empty() {
                user_json["uid"] = json!(user.uid);
            }
            if !user.extra.is_empty() {
                user_json["extra"] = json!(user.extra);
            }
            json!({"authenticated": true, "user": user_json, "audiences": matched})
        }
        Err(errors) if errors.is_empty() => json!({"user": {}}),
        Err(errors) => {
            let reasons: Vec<String> = errors.iter().map(|e| e.0.clone()).collect();
            json!({"user": {}, "error": format!("[{}]", reasons.join(", "))})
        }
    };
    review["status"] = status;
    if review.pointer("/metadata/creationTimestamp").is_none()
        && let Some(meta) = review.get_mut("metadata").and_then(Value::as_object_mut)
    {
        meta.insert("creationTimestamp".into(), Value::Null);
    }
    Ok(review)
}
