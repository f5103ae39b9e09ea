//! The default StorageClass of the built-in local-path provisioner, created at start as k3s's
//! `local-storage` manifest does (`--disable=local-storage` turns both off). An existing class of
//! that name is left as the user keeps it.

use rkube_apimachinery::ApiError;
use rkube_registry::Registry;
use serde_json::json;

/// The `--disable` name, k3s's.
pub const COMPONENT: &str = "local-storage";

/// Creates the `local-path` StorageClass when missing.
pub async fn ensure_default_storage_class(registry: &Registry) -> Result<(), ApiError> {
    let class = json!({
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": rkube_controllers::local_path::CLASS_NAME,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": rkube_controllers::local_path::PROVISIONER_NAME,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    });
    crate::bootstrap::ensure(registry, "storage.k8s.io", "v1", "storageclasses", None, class).await
}
