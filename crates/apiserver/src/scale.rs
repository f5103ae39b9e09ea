//! `GET/PUT/PATCH <resource>/<name>/scale`: the request side of the scale subresource (the
//! registry computes and applies Scales, see `rkube_registry::scale`). PATCH bodies apply to the
//! Scale, not to the parent, as upstream's patcher runs against the subresource's object.

use http::HeaderMap;
use rkube_apimachinery::{ApiError, ResourceInfo};
use serde_json::Value;

use crate::handler::decode_body;
use crate::patch::{self, PatchType};
use crate::state::AppState;

const SCALE_API_VERSION: &str = "autoscaling/v1";

/// Rejects a body that is not an `autoscaling/v1` Scale (upstream decodes it into that type).
fn check_scale_type(obj: &Value) -> Result<(), ApiError> {
    if !obj.is_object() {
        return Err(ApiError::bad_request("the object provided is unrecognized: expected a JSON object"));
    }
    if let Some(av) = obj.get("apiVersion").and_then(Value::as_str).filter(|s| !s.is_empty())
        && av != SCALE_API_VERSION
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({SCALE_API_VERSION})"
        )));
    }
    if let Some(k) = obj.get("kind").and_then(Value::as_str).filter(|s| !s.is_empty())
        && k != "Scale"
    {
        return Err(ApiError::bad_request(format!(
            "{k} in version \"v1\" cannot be handled as a Scale: no kind \"{k}\" is registered for version \"{SCALE_API_VERSION}\""
        )));
    }
    Ok(())
}

/// PUT: the body is the desired Scale.
pub async fn update(state: &AppState, res: &ResourceInfo, ns: Option<&str>, name: &str, headers: &HeaderMap, body: &[u8], dry: bool) -> Result<Value, ApiError> {
    let wanted = decode_body(state, headers, body)?;
    check_scale_type(&wanted)?;
    state.registry.update_scale(res, ns, name, dry, |_| Ok(wanted.clone())).await
}

/// PATCH: the patch applies to the current Scale.
#[allow(clippy::too_many_arguments)]
pub async fn patch(state: &AppState, res: &ResourceInfo, ns: Option<&str>, name: &str, pt: PatchType, body: &[u8], dry: bool) -> Result<Value, ApiError> {
    let doc: Value = match pt {
        PatchType::Apply => serde_yaml_ng::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?,
        _ => serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?,
    };
    state
        .registry
        .update_scale(res, ns, name, dry, |current| {
            let mut scale = current.clone();
            match pt {
                PatchType::Merge => patch::merge_patch(&mut scale, &doc),
                PatchType::Json => patch::json_patch(&mut scale, &doc)?,
                PatchType::Strategic | PatchType::Apply => patch::strategic_merge(&mut scale, &doc)?,
            }
            check_scale_type(&scale)?;
            Ok(scale)
        })
        .await
}
