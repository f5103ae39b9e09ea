//! DefaultStorageClass: a new claim that names no StorageClass gets the default one
//! (upstream `plugin/pkg/admission/storage/storageclass/setdefault`). A claim with
//! `storageClassName: ""` asked for no class and is left alone, as is one using the old
//! `volume.beta.kubernetes.io/storage-class` annotation.

use rkube_apimachinery::ApiError;
use rkube_registry::admission::Operation;
use serde_json::Value;

use crate::context::{Context, Plugin};

const ANN_DEFAULT: &str = "storageclass.kubernetes.io/is-default-class";
const ANN_BETA_DEFAULT: &str = "storageclass.beta.kubernetes.io/is-default-class";
const ANN_BETA_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

/// The plugin.
pub struct DefaultStorageClass;

#[async_trait::async_trait]
impl Plugin for DefaultStorageClass {
    async fn admit(&self, ctx: &Context<'_>, obj: Option<&mut Value>) -> Result<(), ApiError> {
        let Some(pvc) = obj else { return Ok(()) };
        if !ctx.is("", "persistentvolumeclaims") || ctx.req.operation != Operation::Create {
            return Ok(());
        }
        if !pvc["spec"]["storageClassName"].is_null() || !pvc["metadata"]["annotations"][ANN_BETA_CLASS].is_null() {
            return Ok(());
        }
        let classes = ctx.list("storage.k8s.io", "v1", "storageclasses", None).await?;
        if let Some(name) = default_class(&classes)
            && let Some(spec) = pvc.get_mut("spec").and_then(Value::as_object_mut)
        {
            spec.insert("storageClassName".into(), Value::String(name));
        }
        Ok(())
    }
}

fn is_default(class: &Value) -> bool {
    let a = &class["metadata"]["annotations"];
    a[ANN_DEFAULT] == "true" || a[ANN_BETA_DEFAULT] == "true"
}

/// Upstream `GetDefaultClass`: of several defaults the newest wins, then the first by name.
fn default_class(classes: &[Value]) -> Option<String> {
    let mut defaults: Vec<&Value> = classes.iter().filter(|c| is_default(c)).collect();
    defaults.sort_by(|a, b| {
        let created = |c: &Value| c["metadata"]["creationTimestamp"].as_str().unwrap_or("").to_string();
        let name = |c: &Value| c["metadata"]["name"].as_str().unwrap_or("").to_string();
        created(b).cmp(&created(a)).then_with(|| name(a).cmp(&name(b)))
    });
    defaults.first().and_then(|c| c["metadata"]["name"].as_str()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_newest_default_wins() {
        let classes = vec![
            json!({"metadata": {"name": "plain", "creationTimestamp": "2026-01-03T00:00:00Z"}}),
            json!({"metadata": {"name": "old", "creationTimestamp": "2026-01-01T00:00:00Z", "annotations": {ANN_DEFAULT: "true"}}}),
            json!({"metadata": {"name": "new", "creationTimestamp": "2026-01-02T00:00:00Z", "annotations": {ANN_BETA_DEFAULT: "true"}}}),
        ];
        assert_eq!(default_class(&classes).as_deref(), Some("new"));
        assert_eq!(default_class(&classes[..1]), None);
    }
}
