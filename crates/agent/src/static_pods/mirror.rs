//! Mirror pods: the API's view of a static pod, created and deleted by the agent (upstream
//! `pkg/kubelet/pod/mirror_client.go`). A mirror pod carries the static pod's hash in
//! `kubernetes.io/config.mirror` and a controller owner reference to this Node; the API server
//! assigns it a UID of its own.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use kube::{Client, ResourceExt};
use parking_lot::Mutex;

use super::manifest::{CONFIG_HASH_ANNOTATION, CONFIG_MIRROR_ANNOTATION, full_name};

/// Whether an API pod is a mirror pod (never run by the agent: its static pod is).
pub fn is_mirror_pod(pod: &Pod) -> bool {
    pod.annotations().contains_key(CONFIG_MIRROR_ANNOTATION)
}

/// The configuration hash of a static pod.
pub fn static_pod_hash(pod: &Pod) -> &str {
    pod.annotations()
        .get(CONFIG_HASH_ANNOTATION)
        .map(String::as_str)
        .unwrap_or_default()
}

/// Whether `mirror` mirrors this version of `static_pod` (upstream `IsMirrorPodOf`).
pub fn is_mirror_of(mirror: &Pod, static_pod: &Pod) -> bool {
    full_name(mirror) == full_name(static_pod)
        && mirror
            .annotations()
            .get(CONFIG_MIRROR_ANNOTATION)
            .is_some_and(|hash| hash == static_pod_hash(static_pod))
}

/// The mirror pod to create for `static_pod` on the node named `node_name` with `node_uid`.
pub fn mirror_pod(static_pod: &Pod, node_name: &str, node_uid: &str) -> Pod {
    let mut mirror = static_pod.clone();
    let hash = static_pod_hash(static_pod).to_string();
    mirror
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(CONFIG_MIRROR_ANNOTATION.into(), hash);
    // The API server assigns the mirror its own UID and resourceVersion.
    mirror.metadata.uid = None;
    mirror.metadata.resource_version = None;
    mirror.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "v1".into(),
        kind: "Node".into(),
        name: node_name.into(),
        uid: node_uid.into(),
        controller: Some(true),
        block_owner_deletion: None,
    }]);
    mirror.status = None;
    mirror
}

/// The mirror pods of this node as the agent's pod watch last saw them, by full name.
#[derive(Default)]
pub struct MirrorPods {
    pods: Mutex<HashMap<String, Pod>>,
    /// Set once the watch listed the node's pods: before, a missing mirror may just not be
    /// seen yet.
    listed: AtomicBool,
}

impl MirrorPods {
    pub fn get(&self, full_name: &str) -> Option<Pod> {
        self.pods.lock().get(full_name).cloned()
    }

    pub fn is_listed(&self) -> bool {
        self.listed.load(Ordering::Acquire)
    }

    /// A mirror pod was added or changed (by the watch, or created by the agent).
    pub fn seen(&self, pod: Pod) {
        self.pods.lock().insert(full_name(&pod), pod);
    }

    /// A mirror pod is gone. Only that object (by UID) is forgotten: a newer mirror of the same
    /// name the agent created meanwhile stays.
    pub fn gone(&self, pod: &Pod) {
        let mut pods = self.pods.lock();
        let name = full_name(pod);
        if pods.get(&name).is_some_and(|p| p.uid() == pod.uid()) {
            pods.remove(&name);
        }
    }

    /// A full list of the node's mirror pods (`uids` are the listed ones): forgets the rest.
    pub fn relisted(&self, names: &HashSet<String>) {
        self.pods.lock().retain(|name, _| names.contains(name));
        self.listed.store(true, Ordering::Release);
    }

    /// Mirror pods whose full name is not in `static_names` (upstream's orphaned mirror pods).
    pub fn orphans(&self, static_names: &HashSet<String>) -> Vec<Pod> {
        self.pods
            .lock()
            .iter()
            .filter(|(name, _)| !static_names.contains(*name))
            .map(|(_, pod)| pod.clone())
            .collect()
    }
}

/// Creates and deletes mirror pods in the API.
pub struct MirrorClient {
    client: Client,
    node_name: String,
}

/// Why a mirror pod was not created.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("failed to get node info: {0}")]
    Node(String),
    #[error("node {0} is being deleted: no mirror pod is created")]
    NodeDeleted(String),
    #[error("pod {0} already exists and is not a mirror pod")]
    NotMirror(String),
    #[error("{0}")]
    Api(#[from] kube::Error),
}

impl MirrorClient {
    pub fn new(client: Client, node_name: String) -> Self {
        Self { client, node_name }
    }

    /// Creates the mirror pod of `static_pod` (upstream `CreateMirrorPod`, with the node checks
    /// of `syncPod`); returns the pod as the API holds it. A mirror of the same name that
    /// already exists is returned as it is (the caller compares its hash).
    pub async fn create(&self, static_pod: &Pod) -> Result<Pod, MirrorError> {
        let node = Api::<Node>::all(self.client.clone())
            .get(&self.node_name)
            .await
            .map_err(|e| MirrorError::Node(e.to_string()))?;
        if node.metadata.deletion_timestamp.is_some() {
            return Err(MirrorError::NodeDeleted(self.node_name.clone()));
        }
        let mirror = mirror_pod(
            static_pod,
            &self.node_name,
            node.metadata.uid.as_deref().unwrap_or_default(),
        );
        let api: Api<Pod> = Api::namespaced(
            self.client.clone(),
            mirror.metadata.namespace.as_deref().unwrap_or_default(),
        );
        match api.create(&PostParams::default(), &mirror).await {
            Ok(created) => Ok(created),
            Err(kube::Error::Api(status)) if status.code == 409 => {
                let existing = api.get(&mirror.name_any()).await?;
                if is_mirror_pod(&existing) {
                    Ok(existing)
                } else {
                    Err(MirrorError::NotMirror(full_name(&existing)))
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes `mirror` at once, that object only (upstream `DeleteMirrorPod`: grace period 0,
    /// a UID precondition); one already gone or replaced counts as deleted.
    pub async fn delete(&self, mirror: &Pod) -> Result<(), kube::Error> {
        let api: Api<Pod> = Api::namespaced(
            self.client.clone(),
            mirror.metadata.namespace.as_deref().unwrap_or_default(),
        );
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: mirror.uid(),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(&mirror.name_any(), &params).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::static_pods::manifest::parse_manifest;

    fn static_pod(command: &str) -> Pod {
        let text = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: web}}\nspec: {{containers: [{{name: app, image: busybox, command: [{command}]}}]}}\n"
        );
        match parse_manifest(std::path::Path::new("/m/web.yaml"), text.as_bytes(), "n1") {
            Ok(pod) => pod,
            Err(e) => unreachable!("fixture: {e}"),
        }
    }

    #[test]
    fn a_mirror_carries_the_hash_and_a_controller_reference_to_the_node() {
        let pod = static_pod("sleep");
        let mirror = mirror_pod(&pod, "n1", "node-uid");
        assert!(is_mirror_pod(&mirror));
        assert!(!is_mirror_pod(&pod));
        assert_eq!(
            mirror.annotations()[CONFIG_MIRROR_ANNOTATION],
            static_pod_hash(&pod)
        );
        assert_eq!(mirror.metadata.uid, None);
        assert_eq!(
            mirror.metadata.owner_references,
            Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Node".into(),
                name: "n1".into(),
                uid: "node-uid".into(),
                controller: Some(true),
                block_owner_deletion: None,
            }])
        );
        assert!(is_mirror_of(&mirror, &pod));
        // A changed manifest is another version: the old mirror no longer matches.
        assert!(!is_mirror_of(&mirror, &static_pod("top")));
    }

    #[test]
    fn the_cache_forgets_only_the_mirror_that_went() {
        let cache = MirrorPods::default();
        let pod = static_pod("sleep");
        let mut old = mirror_pod(&pod, "n1", "u");
        old.metadata.uid = Some("old".into());
        let mut new = old.clone();
        new.metadata.uid = Some("new".into());
        cache.seen(new.clone());
        cache.gone(&old);
        assert_eq!(
            cache.get("default/web-n1").and_then(|p| p.metadata.uid),
            Some("new".into())
        );
        assert!(
            cache
                .orphans(&HashSet::from(["default/web-n1".to_string()]))
                .is_empty()
        );
        assert_eq!(cache.orphans(&HashSet::new()).len(), 1);
        assert!(!cache.is_listed());
        cache.relisted(&HashSet::new());
        assert!(cache.is_listed());
        assert_eq!(cache.get("default/web-n1"), None);
    }
}
