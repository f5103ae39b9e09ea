//! Static pods: pods the agent reads from manifest files (`--pod-manifest-path`) and runs
//! without the API server, each shown in the API as a mirror pod (upstream kubelet's file
//! config source, `pod/mirror_client.go` and the static pod parts of `syncPod`).
//!
//! Modules: [`manifest`] (reading files, the static pod defaults, the hash), [`mirror`] (mirror
//! pods in the API), `worker` (the directory poll and one worker per static pod).

pub mod manifest;
pub mod mirror;
mod worker;

use std::collections::HashSet;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use parking_lot::Mutex;

pub use manifest::{
    CONFIG_HASH_ANNOTATION, CONFIG_MIRROR_ANNOTATION, CONFIG_SEEN_ANNOTATION,
    CONFIG_SOURCE_ANNOTATION, FILE_SOURCE,
};
pub use mirror::{MirrorPods, is_mirror_pod};
pub use worker::StaticPodManager;

/// Whether a pod came from a manifest file.
pub fn is_static_pod(pod: &Pod) -> bool {
    pod.annotations()
        .get(CONFIG_SOURCE_ANNOTATION)
        .is_some_and(|s| s == FILE_SOURCE)
}

/// What the API pod watch and the static pod manager share.
#[derive(Default)]
pub struct StaticPodState {
    /// Mirror pods as the pod watch sees them.
    pub mirrors: MirrorPods,
    /// UIDs of the static pods running or being stopped: their sandboxes are not orphans.
    uids: Mutex<HashSet<String>>,
}

impl StaticPodState {
    pub fn uids(&self) -> HashSet<String> {
        self.uids.lock().clone()
    }

    fn set_uids(&self, uids: HashSet<String>) {
        *self.uids.lock() = uids;
    }
}
