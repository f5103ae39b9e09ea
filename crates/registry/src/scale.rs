//! The `scale` subresource (`autoscaling/v1` Scale) of deployments, replicasets, statefulsets and
//! replicationcontrollers, as upstream's `ScaleREST` in `pkg/registry/apps/*/storage/storage.go`
//! and `pkg/registry/core/replicationcontroller/storage/storage.go`: a Scale is computed from the
//! parent object on every read, and a write changes only the parent's `spec.replicas` (through the
//! parent's own update path, so generation, validation and conflicts behave as for the parent).

use rkube_apimachinery::selectors::LabelSelector;
use rkube_apimachinery::{ApiError, FieldError, ResourceInfo, meta};
use serde_json::{Map, Value, json};

use crate::store::Registry;

/// Whether `group/plural` serves `/scale`.
pub fn is_scalable(group: &str, plural: &str) -> bool {
    matches!(
        (group, plural),
        ("apps", "deployments" | "replicasets" | "statefulsets") | ("", "replicationcontrollers")
    )
}

/// The Scale of a parent object (upstream `scaleFromDeployment` and friends).
pub fn scale_of(res: &ResourceInfo, obj: &Value) -> Result<Value, ApiError> {
    let selector = if res.group.is_empty() {
        // A replication controller's selector is a plain label map.
        let set = obj["spec"]["selector"].as_object().cloned().unwrap_or_default();
        LabelSelector::from_set(&set).map_err(|e| ApiError::bad_request(e.to_string()))?.to_string()
    } else {
        let sel = obj["spec"].get("selector").cloned().unwrap_or(Value::Null);
        LabelSelector::from_label_selector_json(&sel)
            .map_err(|e| ApiError::bad_request(format!("invalid label selector: {e}")))?
            .to_string()
    };
    let mut metadata = Map::new();
    for k in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] {
        if let Some(v) = meta::metadata(obj).and_then(|m| m.get(k)) {
            metadata.insert(k.into(), v.clone());
        }
    }
    // Scale's spec.replicas is `omitempty`; status.replicas is not.
    let mut spec = Map::new();
    if let Some(r) = obj["spec"]["replicas"].as_i64().filter(|r| *r != 0) {
        spec.insert("replicas".into(), json!(r));
    }
    let mut status = Map::new();
    status.insert("replicas".into(), json!(obj["status"]["replicas"].as_i64().unwrap_or(0)));
    if !selector.is_empty() {
        status.insert("selector".into(), json!(selector));
    }
    Ok(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": spec,
        "status": status,
    }))
}

/// The parent object with the Scale's `spec.replicas` applied; a `resourceVersion` in the Scale
/// becomes the parent's precondition. Rejects invalid Scales as upstream's `ValidateScale`.
fn apply_scale(name: &str, parent: &Value, scale: &Value) -> Result<Value, ApiError> {
    let scale_name = meta::name(scale);
    if !scale_name.is_empty() && scale_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({scale_name}) does not match the name on the URL ({name})"
        )));
    }
    let replicas = match &scale["spec"]["replicas"] {
        Value::Null => 0,
        v => v.as_i64().ok_or_else(|| {
            ApiError::bad_request(format!(
                "Scale in version \"v1\" cannot be handled as a Scale: json: cannot unmarshal {v} into Go struct field ScaleSpec.spec.replicas of type int32"
            ))
        })?,
    };
    if replicas < 0 {
        return Err(ApiError::invalid(
            "autoscaling",
            "Scale",
            name,
            &[FieldError::invalid("spec.replicas", replicas, "must be greater than or equal to 0")],
        ));
    }
    let mut new = parent.clone();
    meta::remove_meta(&mut new, "resourceVersion");
    if let Some(rv) = meta::meta_str(scale, "resourceVersion").filter(|s| !s.is_empty()) {
        meta::set_meta(&mut new, "resourceVersion", Value::String(rv.to_string()));
    }
    if let Some(spec) = new.as_object_mut().map(|o| o.entry("spec").or_insert_with(|| json!({})))
        && let Some(s) = spec.as_object_mut()
    {
        s.insert("replicas".into(), json!(replicas));
    }
    Ok(new)
}

impl Registry {
    /// GET `<resource>/<name>/scale`.
    pub async fn get_scale(&self, res: &ResourceInfo, ns: Option<&str>, name: &str) -> Result<Value, ApiError> {
        let parent = self.get(res, ns, name, "").await?;
        scale_of(res, &parent)
    }

    /// PUT or PATCH `<resource>/<name>/scale`: `desired` gets the current Scale and returns the
    /// wanted one (the PUT body, or the current Scale with the patch applied). Answers with the
    /// Scale of the updated parent.
    pub async fn update_scale<F>(&self, res: &ResourceInfo, ns: Option<&str>, name: &str, dry_run: bool, desired: F) -> Result<Value, ApiError>
    where
        F: Fn(&Value) -> Result<Value, ApiError> + Send + Sync,
    {
        let updated = self
            .modify(res, ns, name, false, dry_run, |parent| {
                let current = scale_of(res, parent)?;
                let wanted = desired(&current)?;
                apply_scale(name, parent, &wanted)
            })
            .await?;
        scale_of(res, &updated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rkube_apimachinery::resources::builtin::builtin_resources;

    fn resource(group: &str, plural: &str) -> ResourceInfo {
        builtin_resources().into_iter().find(|r| r.group == group && r.plural == plural && r.storage_version).unwrap()
    }

    #[test]
    fn deployment_scale_has_replicas_and_the_selector_string() {
        let d = json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "u1", "resourceVersion": "7", "creationTimestamp": "2025-01-01T00:00:00Z", "labels": {"app": "web"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web", "tier": "fe"}, "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]}]}},
            "status": {"replicas": 2},
        });
        let s = scale_of(&resource("apps", "deployments"), &d).unwrap();
        assert_eq!(
            s,
            json!({
                "kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": "web", "namespace": "default", "uid": "u1", "resourceVersion": "7", "creationTimestamp": "2025-01-01T00:00:00Z"},
                "spec": {"replicas": 3},
                "status": {"replicas": 2, "selector": "app=web,env in (dev,prod),tier=fe"},
            })
        );
    }

    #[test]
    fn replication_controller_selector_is_a_label_set_and_zero_replicas_are_omitted() {
        let rc = json!({"metadata": {"name": "rc"}, "spec": {"replicas": 0, "selector": {"b": "2", "a": "1"}}});
        let s = scale_of(&resource("", "replicationcontrollers"), &rc).unwrap();
        assert_eq!(s["spec"], json!({}));
        assert_eq!(s["status"], json!({"replicas": 0, "selector": "a=1,b=2"}));
    }

    #[test]
    fn negative_replicas_are_invalid_like_upstream() {
        let d = json!({"metadata": {"name": "web"}, "spec": {"replicas": 1}});
        let e = apply_scale("web", &d, &json!({"metadata": {"name": "web"}, "spec": {"replicas": -1}})).unwrap_err();
        assert_eq!(e.code, 422);
        assert_eq!(e.message, "Scale.autoscaling \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0");
    }

    #[test]
    fn scale_resource_version_becomes_the_parent_precondition() {
        let d = json!({"metadata": {"name": "web", "resourceVersion": "5"}, "spec": {"replicas": 1}});
        let unconditional = apply_scale("web", &d, &json!({"spec": {"replicas": 4}})).unwrap();
        assert_eq!(unconditional["spec"]["replicas"], 4);
        assert!(meta::meta_str(&unconditional, "resourceVersion").is_none());
        let guarded = apply_scale("web", &d, &json!({"metadata": {"resourceVersion": "3"}, "spec": {"replicas": 4}})).unwrap();
        assert_eq!(meta::meta_str(&guarded, "resourceVersion"), Some("3"));
    }
}
