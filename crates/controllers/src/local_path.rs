//! The built-in `local-path` provisioner (k3s ships rancher's local-path-provisioner; this is
//! its behaviour as an external provisioner in the sig-storage-lib sense): for a claim whose
//! provisioner is `rancher.io/local-path` and whose node the scheduler picked
//! (`volume.kubernetes.io/selected-node`), it creates a `hostPath` volume
//! `<storage-dir>/pvc-<uid>_<namespace>_<name>` (type `DirectoryOrCreate`, so the node creates
//! the directory when it mounts it) pinned to that node by `nodeAffinity` and pre-bound to the
//! claim; the binder completes the binding. Released volumes with reclaim policy `Delete` that it
//! provisioned are deleted.
//!
//! Removing the directory on the node is the node agent's part (k3s runs a helper pod for it);
//! rkube's agent does not do it yet.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    HostPathVolumeSource, Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PersistentVolume, PersistentVolumeClaim,
    PersistentVolumeSpec, VolumeNodeAffinity,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::ResourceExt;

use crate::context::{Context, drain, requeue_on_error};
use crate::error::Result;
use crate::events::{EventRecorder, EventType};
use crate::volume_util::*;

/// The provisioner name, as k3s's.
pub const PROVISIONER_NAME: &str = "rancher.io/local-path";
/// The default StorageClass the server creates.
pub const CLASS_NAME: &str = "local-path";
/// Where volumes go when the manager is not told (k3s: `/var/lib/rancher/k3s/storage`).
pub const DEFAULT_STORAGE_DIR: &str = "/var/lib/rkube/storage";

struct State {
    ctx: Context,
    recorder: EventRecorder,
    storage_dir: PathBuf,
}

/// Runs the provisioner until its watches end. `storage_dir` is the directory on the nodes
/// under which volumes are created.
pub async fn run(ctx: Context, storage_dir: PathBuf) -> Result<()> {
    let client = ctx.client.clone();
    let storage_dir = if storage_dir.as_os_str().is_empty() { PathBuf::from(DEFAULT_STORAGE_DIR) } else { storage_dir };
    // Events carry the provisioner name as component, as external provisioners' do.
    let state = Arc::new(State { recorder: ctx.recorder(PROVISIONER_NAME), ctx, storage_dir });
    let claims = Controller::new(Api::<PersistentVolumeClaim>::all(client.clone()), watcher::Config::default())
        .run(provision, requeue_on_error, state.clone());
    let volumes = Controller::new(Api::<PersistentVolume>::all(client), watcher::Config::default()).run(delete_released, requeue_on_error, state);
    tokio::join!(drain(PROVISIONER_NAME, claims), drain(PROVISIONER_NAME, volumes));
    Ok(())
}

/// The volume's name for a claim (sig-storage-lib: `pvc-<claim uid>`).
pub fn volume_name(pvc: &PersistentVolumeClaim) -> String {
    format!("pvc-{}", pvc.metadata.uid.as_deref().unwrap_or_default())
}

async fn provision(pvc: Arc<PersistentVolumeClaim>, st: Arc<State>) -> Result<Action> {
    let ours = annotation(pvc.as_ref(), ANN_STORAGE_PROVISIONER) == Some(PROVISIONER_NAME)
        || annotation(pvc.as_ref(), ANN_BETA_STORAGE_PROVISIONER) == Some(PROVISIONER_NAME);
    let Some(node_name) = annotation(pvc.as_ref(), ANN_SELECTED_NODE).map(str::to_string) else { return Ok(Action::await_change()) };
    if !ours || pvc.metadata.deletion_timestamp.is_some() || !claim_volume_name(&pvc).is_empty() {
        return Ok(Action::await_change());
    }
    let client = st.ctx.client.clone();
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let name = volume_name(&pvc);
    if volumes.get_opt(&name).await?.is_some() {
        return Ok(Action::await_change());
    }
    let class_name = claim_class(&pvc).to_string();
    let Some(class) = Api::<StorageClass>::all(client.clone()).get_opt(&class_name).await? else {
        let message = format!("failed to provision volume with StorageClass \"{class_name}\": storageclass.storage.k8s.io \"{class_name}\" not found");
        st.recorder.record(pvc.as_ref(), EventType::Warning, "ProvisioningFailed", message).await;
        return Ok(Action::requeue(Duration::from_secs(15)));
    };
    // Volumes are pinned by the node's hostname label, which is what k3s's provisioner uses.
    let hostname = match Api::<Node>::all(client.clone()).get_opt(&node_name).await? {
        Some(node) => node.labels().get("kubernetes.io/hostname").cloned().unwrap_or(node_name.clone()),
        None => {
            let message = format!("failed to provision volume with StorageClass \"{class_name}\": nodes \"{node_name}\" not found");
            st.recorder.record(pvc.as_ref(), EventType::Warning, "ProvisioningFailed", message).await;
            return Ok(Action::requeue(Duration::from_secs(15)));
        }
    };
    let ns = pvc.namespace().unwrap_or_default();
    st.recorder
        .record(pvc.as_ref(), EventType::Normal, "Provisioning", format!("External provisioner is provisioning volume for claim \"{ns}/{}\"", pvc.name_any()))
        .await;
    let volume = local_volume(&pvc, &class, &st.storage_dir, &node_name, &hostname);
    match volumes.create(&PostParams::default(), &volume).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => return Ok(Action::await_change()),
        Err(e) => {
            let message = format!("failed to provision volume with StorageClass \"{class_name}\": {e}");
            st.recorder.record(pvc.as_ref(), EventType::Warning, "ProvisioningFailed", message).await;
            return Err(e.into());
        }
    }
    st.recorder.record(pvc.as_ref(), EventType::Normal, "ProvisioningSucceeded", format!("Successfully provisioned volume {name}")).await;
    Ok(Action::await_change())
}

/// The volume for a claim on a node (what local-path-provisioner's `Provision` returns).
pub fn local_volume(pvc: &PersistentVolumeClaim, class: &StorageClass, storage_dir: &std::path::Path, node: &str, hostname: &str) -> PersistentVolume {
    let name = volume_name(pvc);
    let ns = pvc.namespace().unwrap_or_default();
    let path = storage_dir.join(format!("{name}_{ns}_{}", pvc.name_any()));
    let spec = pvc.spec.clone().unwrap_or_default();
    let capacity = spec.resources.as_ref().and_then(|r| r.requests.clone()).map(|r| r.into_iter().filter(|(k, _)| k == "storage").collect());
    let mut annotations = std::collections::BTreeMap::new();
    annotations.insert(ANN_PROVISIONED_BY.to_string(), PROVISIONER_NAME.to_string());
    annotations.insert("local.path.provisioner/selected-node".to_string(), node.to_string());
    PersistentVolume {
        metadata: ObjectMeta { name: Some(name), annotations: Some(annotations), ..Default::default() },
        spec: Some(PersistentVolumeSpec {
            capacity,
            access_modes: spec.access_modes.clone(),
            persistent_volume_reclaim_policy: Some(class.reclaim_policy.clone().unwrap_or_else(|| "Delete".into())),
            storage_class_name: Some(class.metadata.name.clone().unwrap_or_default()),
            volume_mode: spec.volume_mode.clone(),
            claim_ref: Some(claim_reference(pvc)),
            host_path: Some(HostPathVolumeSource { path: path.to_string_lossy().into_owned(), type_: Some("DirectoryOrCreate".into()) }),
            node_affinity: Some(VolumeNodeAffinity {
                required: Some(NodeSelector {
                    node_selector_terms: vec![NodeSelectorTerm {
                        match_expressions: Some(vec![NodeSelectorRequirement {
                            key: "kubernetes.io/hostname".into(),
                            operator: "In".into(),
                            values: Some(vec![hostname.to_string()]),
                        }]),
                        match_fields: None,
                    }],
                }),
            }),
            ..Default::default()
        }),
        status: None,
    }
}

async fn delete_released(pv: Arc<PersistentVolume>, st: Arc<State>) -> Result<Action> {
    let releasable = annotation(pv.as_ref(), ANN_PROVISIONED_BY) == Some(PROVISIONER_NAME)
        && volume_phase(&pv) == "Released"
        && pv.spec.as_ref().and_then(|s| s.persistent_volume_reclaim_policy.as_deref()) == Some("Delete")
        && pv.metadata.deletion_timestamp.is_none();
    if !releasable {
        return Ok(Action::await_change());
    }
    match Api::<PersistentVolume>::all(st.ctx.client.clone()).delete(&pv.name_any(), &DeleteParams::default()).await {
        Ok(_) => tracing::info!(volume = %pv.name_any(), "deleted released local-path volume"),
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => {
            st.recorder.record(pv.as_ref(), EventType::Warning, "VolumeFailedDelete", e.to_string()).await;
            return Err(e.into());
        }
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn volume_is_pinned_prebound_and_named_like_k3s() {
        let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": "data", "namespace": "apps", "uid": "1234"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "storageClassName": "local-path"}
        }))
        .unwrap();
        let class: StorageClass =
            serde_json::from_value(json!({"metadata": {"name": "local-path"}, "provisioner": PROVISIONER_NAME, "reclaimPolicy": "Delete"})).unwrap();
        let pv = local_volume(&pvc, &class, std::path::Path::new("/data/storage"), "node-1", "node-1");
        let v = serde_json::to_value(&pv).unwrap();
        assert_eq!(v["metadata"]["name"], "pvc-1234");
        assert_eq!(v["spec"]["hostPath"]["path"], "/data/storage/pvc-1234_apps_data");
        assert_eq!(v["spec"]["hostPath"]["type"], "DirectoryOrCreate");
        assert_eq!(v["spec"]["capacity"]["storage"], "1Gi");
        assert_eq!(v["spec"]["claimRef"]["uid"], "1234");
        assert_eq!(v["spec"]["persistentVolumeReclaimPolicy"], "Delete");
        assert_eq!(v["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"][0], "node-1");
        assert_eq!(v["metadata"]["annotations"][ANN_PROVISIONED_BY], PROVISIONER_NAME);
    }
}
