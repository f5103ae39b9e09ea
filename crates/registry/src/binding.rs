//! `pods/{name}/binding` (and the legacy `bindings` collection): assigns a pod to a node, as
//! upstream's `BindingREST` (`pkg/registry/core/pod/storage/storage.go`). The write goes straight
//! to the pod's storage, not through pod update validation, because `spec.nodeName` is otherwise
//! immutable.

use rkube_apimachinery::{ApiError, FieldError, ResourceInfo, meta};
use serde_json::{Map, Value, json};

use crate::store::{Registry, storage_err};

/// How often the binding write is retried when it races another writer of the pod.
const BIND_RETRIES: usize = 16;

/// Checks a Binding as upstream's `ValidatePodBinding`.
fn validate(binding: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let kind = binding["target"]["kind"].as_str().unwrap_or("");
    if !kind.is_empty() && kind != "Node" {
        errs.push(FieldError::not_supported("target.kind", kind, &["Node", "<empty>"]));
    }
    if binding["target"]["name"].as_str().unwrap_or("").is_empty() {
        errs.push(FieldError::required("target.name", ""));
    }
    errs
}

/// Sets `spec.nodeName`, merges the binding's annotations and marks `PodScheduled=True`
/// (podutil.UpdatePodCondition: the transition time only moves when the status changes).
fn assign(pod: &mut Value, node: &str, annotations: Option<&Map<String, Value>>) {
    pod["spec"]["nodeName"] = Value::String(node.to_string());
    if let Some(extra) = annotations.filter(|a| !a.is_empty()) {
        let metadata = &mut pod["metadata"];
        if !metadata["annotations"].is_object() {
            metadata["annotations"] = json!({});
        }
        if let Some(target) = metadata["annotations"].as_object_mut() {
            for (k, v) in extra {
                target.insert(k.clone(), v.clone());
            }
        }
    }
    let now = meta::now_rfc3339();
    if !pod["status"].is_object() {
        pod["status"] = json!({});
    }
    if !pod["status"]["conditions"].is_array() {
        pod["status"]["conditions"] = json!([]);
    }
    if let Some(conditions) = pod["status"]["conditions"].as_array_mut() {
        match conditions.iter_mut().find(|c| c["type"] == "PodScheduled") {
            Some(c) => {
                if c["status"] != "True" {
                    c["lastTransitionTime"] = Value::String(now.clone());
                }
                c["status"] = json!("True");
                if let Some(o) = c.as_object_mut() {
                    o.shift_remove("reason");
                    o.shift_remove("message");
                }
                c["lastProbeTime"] = Value::Null;
            }
            None => conditions.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now})),
        }
    }
}

impl Registry {
    /// Binds pod `name` in `ns` to the node named by `binding.target.name`. `pods` is the pods
    /// resource. Answers upstream's `Status{status: Success}` (code 201).
    pub async fn bind_pod(&self, pods: &ResourceInfo, ns: &str, name: &str, binding: &Value, dry_run: bool) -> Result<Value, ApiError> {
        let binding_name = meta::name(binding);
        if binding_name != name {
            return Err(ApiError::bad_request("name in URL does not match name in Binding object"));
        }
        let errs = validate(binding);
        if !errs.is_empty() {
            return Err(ApiError::invalid("", "Binding", name, &errs));
        }
        let node = binding["target"]["name"].as_str().unwrap_or("");
        let annotations = binding["metadata"]["annotations"].as_object();
        for _ in 0..BIND_RETRIES {
            let Some(old_kv) = self.get_kv(pods, Some(ns), name).await? else {
                return Err(ApiError::not_found("", "pods", name));
            };
            let mut pod = self.decode(pods, &old_kv)?;
            if meta::meta_str(&pod, "deletionTimestamp").is_some() {
                return Err(ApiError::conflict("", "pods", name, &format!("pod {name} is being deleted, cannot be assigned to a host")));
            }
            let current = pod["spec"]["nodeName"].as_str().unwrap_or("");
            if !current.is_empty() {
                return Err(ApiError::conflict("", "pods", name, &format!("pod {name} is already assigned to node \"{current}\"")));
            }
            assign(&mut pod, node, annotations);
            if dry_run {
                break;
            }
            let key = crate::keys::object_key(pods, Some(ns), name);
            let bytes = self.encode(pods, &pod)?;
            match self.store.update(&key, bytes, old_kv.mod_revision).await {
                Ok(_) => return Ok(success()),
                Err(rkube_storage::StorageError::Conflict { .. }) => continue,
                Err(e) => return Err(storage_err(pods, name, e)),
            }
        }
        if dry_run {
            return Ok(success());
        }
        Err(ApiError::stale_conflict("", "pods", name))
    }
}

fn success() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_without_target_is_invalid_as_upstream() {
        let errs = validate(&json!({"metadata": {"name": "p"}, "target": {"kind": "Pod"}}));
        let text: Vec<String> = errs.iter().map(FieldError::message).collect();
        assert_eq!(
            text,
            vec![
                "target.kind: Unsupported value: \"Pod\": supported values: \"Node\", \"<empty>\"".to_string(),
                "target.name: Required value".to_string()
            ]
        );
    }

    #[test]
    fn assign_sets_node_and_scheduled_condition() {
        let mut pod = json!({"metadata": {"name": "p", "annotations": {"a": "1"}}, "spec": {}, "status": {"conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes are available"}
        ]}});
        let extra: Map<String, Value> = [("b".to_string(), json!("2"))].into_iter().collect();
        assign(&mut pod, "node-1", Some(&extra));
        assert_eq!(pod["spec"]["nodeName"], "node-1");
        assert_eq!(pod["metadata"]["annotations"], json!({"a": "1", "b": "2"}));
        let c = &pod["status"]["conditions"][0];
        assert_eq!(c["status"], "True");
        assert!(c.get("reason").is_none());
        assert!(c["lastTransitionTime"].is_string());
    }
}
