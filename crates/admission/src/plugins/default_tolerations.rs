//! DefaultTolerationSeconds: pods tolerate the not-ready and unreachable NoExecute taints for
//! 300 s unless they say otherwise (upstream `plugin/pkg/admission/defaulttolerationseconds`).

use rkube_apimachinery::ApiError;
use serde_json::{Value, json};

use crate::context::{Context, Plugin};

const NOT_READY: &str = "node.kubernetes.io/not-ready";
const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
const DEFAULT_SECONDS: i64 = 300;

/// The plugin.
pub struct DefaultTolerationSeconds;

#[async_trait::async_trait]
impl Plugin for DefaultTolerationSeconds {
    async fn admit(&self, ctx: &Context<'_>, obj: Option<&mut Value>) -> Result<(), ApiError> {
        let Some(pod) = obj else { return Ok(()) };
        if ctx.is_pod_create() {
            add_default_tolerations(&mut pod["spec"]);
        }
        Ok(())
    }
}

fn tolerates(tolerations: &[Value], key: &str) -> bool {
    tolerations.iter().any(|t| {
        let effect = t["effect"].as_str().unwrap_or("");
        let key_matches = t["key"].as_str().unwrap_or("") == key || (t["key"].as_str().unwrap_or("").is_empty() && t["operator"] == "Exists");
        key_matches && (effect.is_empty() || effect == "NoExecute")
    })
}

fn add_default_tolerations(spec: &mut Value) {
    let existing = spec["tolerations"].as_array().cloned().unwrap_or_default();
    let mut added = Vec::new();
    for key in [NOT_READY, UNREACHABLE] {
        if !tolerates(&existing, key) {
            added.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": DEFAULT_SECONDS}));
        }
    }
    if added.is_empty() {
        return;
    }
    let mut all = existing;
    all.extend(added);
    spec["tolerations"] = Value::Array(all);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_tolerations_are_added_with_300_seconds() {
        let mut spec = json!({});
        add_default_tolerations(&mut spec);
        assert_eq!(spec["tolerations"][0]["key"], NOT_READY);
        assert_eq!(spec["tolerations"][1]["key"], UNREACHABLE);
        assert_eq!(spec["tolerations"][1]["tolerationSeconds"], 300);
    }

    #[test]
    fn an_existing_toleration_is_kept() {
        let mut spec = json!({"tolerations": [{"key": NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}]});
        add_default_tolerations(&mut spec);
        let t = spec["tolerations"].as_array().cloned().unwrap_or_default();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0]["tolerationSeconds"], 5);
        assert_eq!(t[1]["key"], UNREACHABLE);
    }
}
