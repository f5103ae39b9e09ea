//! StorageObjectInUseProtection: every new claim gets the `kubernetes.io/pvc-protection`
//! finalizer and every new volume `kubernetes.io/pv-protection`
//! (upstream `plugin/pkg/admission/storage/storageobjectinuseprotection`); the protection
//! controllers remove them once the object is no longer in use.

use rkube_apimachinery::ApiError;
use rkube_registry::admission::Operation;
use serde_json::Value;

use crate::context::{Context, Plugin};

const PVC_FINALIZER: &str = "kubernetes.io/pvc-protection";
const PV_FINALIZER: &str = "kubernetes.io/pv-protection";

/// The plugin.
pub struct StorageObjectInUseProtection;

#[async_trait::async_trait]
impl Plugin for StorageObjectInUseProtection {
    async fn admit(&self, ctx: &Context<'_>, obj: Option<&mut Value>) -> Result<(), ApiError> {
        let Some(obj) = obj else { return Ok(()) };
        if ctx.req.operation != Operation::Create {
            return Ok(());
        }
        if ctx.is("", "persistentvolumeclaims") {
            add_finalizer(obj, PVC_FINALIZER);
        } else if ctx.is("", "persistentvolumes") {
            add_finalizer(obj, PV_FINALIZER);
        }
        Ok(())
    }
}

fn add_finalizer(obj: &mut Value, finalizer: &str) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else { return };
    let list = meta.entry("finalizers").or_insert_with(|| Value::Array(Vec::new()));
    if !list.is_array() {
        *list = Value::Array(Vec::new());
    }
    if let Some(items) = list.as_array_mut()
        && !items.iter().any(|f| f == finalizer)
    {
        items.push(Value::String(finalizer.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_finalizer_is_added_once() {
        let mut pvc = json!({"metadata": {"name": "c", "finalizers": ["example.com/keep"]}});
        add_finalizer(&mut pvc, PVC_FINALIZER);
        add_finalizer(&mut pvc, PVC_FINALIZER);
        assert_eq!(pvc["metadata"]["finalizers"], json!(["example.com/keep", PVC_FINALIZER]));
    }
}
