//! Pods on simulated nodes: Pending → Running/Ready → Succeeded/Failed, and prompt deletion of
//! pods marked for deletion. One task owns the bookkeeping; API writes are spawned.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::ipam::PodIpam;
use crate::objects::now_rfc3339;
use crate::{EXIT_CODE_ANNOTATION, Shared};

enum Msg {
    Pod(Pod),
    Gone(Pod),
    /// The run duration of a pod's containers is over.
    Finished {
        key: String,
        uid: String,
    },
}

struct Tracked {
    uid: String,
    node_index: usize,
    ip: Option<String>,
    started_at: String,
    restarts: i32,
    deleting: bool,
    /// The pod's containers ended (it no longer uses resources).
    finished: bool,
    pod: Pod,
}

fn key_of(pod: &Pod) -> String {
    format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any())
}

/// Watches pods bound to any node and handles those on ours.
pub(crate) async fn run(shared: Arc<Shared>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let watch_tx = tx.clone();
    let watch_shared = shared.clone();
    let watch = tokio::spawn(async move {
        let api: Api<Pod> = Api::all(watch_shared.client.clone());
        let mut stream = watcher(api, watcher::Config::default().fields("spec.nodeName!=")).boxed();
        while let Some(ev) = stream.next().await {
            let (pod, live) = match ev {
                Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => (p, true),
                Ok(watcher::Event::Delete(p)) => (p, false),
                Ok(_) => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "pod watch");
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    continue;
                }
            };
            let ours = pod.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some_and(|n| watch_shared.names.contains(n));
            if ours && watch_tx.send(if live { Msg::Pod(pod) } else { Msg::Gone(pod) }).is_err() {
                return;
            }
        }
    });
    let mut pods = Pods { shared, tx, tracked: HashMap::new(), ipam: PodIpam::default() };
    while let Some(msg) = rx.recv().await {
        match msg {
            Msg::Pod(p) => pods.observe(p),
            Msg::Gone(p) => pods.gone(&p),
            Msg::Finished { key, uid } => pods.finish(&key, &uid),
        }
    }
    watch.abort();
}

struct Pods {
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<Msg>,
    tracked: HashMap<String, Tracked>,
    ipam: PodIpam,
}

fn restart_policy(pod: &Pod) -> &str {
    pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()).unwrap_or("Always")
}

impl Pods {
    fn observe(&mut self, pod: Pod) {
        let key = key_of(&pod);
        let uid = pod.uid().unwrap_or_default();
        let Some(node_index) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).and_then(|n| self.shared.config.node_index(n)) else {
            return;
        };
        if self.tracked.get(&key).is_some_and(|t| t.uid != uid) {
            self.gone(&pod);
        }
        if pod.metadata.deletion_timestamp.is_some() {
            self.shared.usage.stopped(&pod.namespace().unwrap_or_default(), &pod.name_any());
            let already = self.tracked.get(&key).is_some_and(|t| t.deleting);
            if !already {
                if let Some(t) = self.tracked.get_mut(&key) {
                    t.deleting = true;
                }
                tokio::spawn(delete_now(self.shared.client.clone(), pod, uid));
            }
            return;
        }
        if let Some(t) = self.tracked.get_mut(&key) {
            if !t.finished {
                self.shared.usage.running(node_index, &pod);
            }
            t.pod = pod;
            return;
        }
        let phase = pod.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
        let host_network = pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false);
        let prefix = self.shared.config.name_prefix.clone();
        let existing_ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone());
        let ip = match (&existing_ip, host_network) {
            (_, true) => Some(self.shared.endpoint.ip().to_string()),
            (Some(ip), false) => {
                self.ipam.reserve(node_index, ip);
                Some(ip.clone())
            }
            (None, false) if phase == "Succeeded" || phase == "Failed" => None,
            (None, false) => self.ipam.allocate(&prefix, node_index),
        };
        let started_at = now_rfc3339();
        let finished = phase == "Succeeded" || phase == "Failed";
        let tracked = Tracked { uid: uid.clone(), node_index, ip: ip.clone(), started_at, restarts: 0, deleting: false, finished, pod: pod.clone() };
        if !finished {
            self.shared.usage.running(node_index, &pod);
            if phase != "Running" {
                let status = running_status(&pod, ip.as_deref(), &self.shared.endpoint.ip().to_string(), &tracked.started_at, 0, None);
                tokio::spawn(patch_status(self.shared.client.clone(), pod.clone(), status));
            }
            self.schedule_finish(&key, &uid, restart_policy(&pod));
        }
        self.tracked.insert(key, tracked);
    }

    fn schedule_finish(&self, key: &str, uid: &str, restart_policy: &str) {
        if restart_policy == "Always" {
            return;
        }
        let tx = self.tx.clone();
        let (key, uid) = (key.to_string(), uid.to_string());
        let after = self.shared.config.run_duration;
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = tx.send(Msg::Finished { key, uid });
        });
    }

    fn gone(&mut self, pod: &Pod) {
        self.shared.usage.stopped(&pod.namespace().unwrap_or_default(), &pod.name_any());
        if let Some(t) = self.tracked.remove(&key_of(pod))
            && let Some(ip) = &t.ip
        {
            self.ipam.release(t.node_index, ip);
        }
    }

    fn finish(&mut self, key: &str, uid: &str) {
        let Some(t) = self.tracked.get_mut(key) else { return };
        if t.uid != uid || t.deleting {
            return;
        }
        let exit_code: i32 = t.pod.annotations().get(EXIT_CODE_ANNOTATION).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
        let policy = restart_policy(&t.pod).to_string();
        let node_ip = self.shared.endpoint.ip().to_string();
        if exit_code != 0 && policy == "OnFailure" {
            // The container fails and the kubelet restarts it in place.
            t.restarts += 1;
            let last = terminated(exit_code, &t.started_at);
            t.started_at = now_rfc3339();
            let status = running_status(&t.pod, t.ip.as_deref(), &node_ip, &t.started_at, t.restarts, Some(last));
            tokio::spawn(patch_status(self.shared.client.clone(), t.pod.clone(), status));
            self.schedule_finish(key, uid, &policy);
            return;
        }
        t.finished = true;
        self.shared.usage.stopped(&t.pod.namespace().unwrap_or_default(), &t.pod.name_any());
        let status = finished_status(&t.pod, exit_code, &t.started_at, t.restarts);
        tokio::spawn(patch_status(self.shared.client.clone(), t.pod.clone(), status));
    }
}

fn terminated(exit_code: i32, started_at: &str) -> Value {
    let reason = if exit_code == 0 { "Completed" } else { "Error" };
    json!({"terminated": {"exitCode": exit_code, "reason": reason, "startedAt": started_at, "finishedAt": now_rfc3339(),
        "containerID": "rkube-sim://terminated"}})
}

fn condition(type_: &str, status: &str, reason: Option<&str>, now: &str) -> Value {
    let mut c = json!({"type": type_, "status": status, "lastProbeTime": null, "lastTransitionTime": now});
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    c
}

fn container_id(pod: &Pod, name: &str) -> String {
    format!("rkube-sim://{}-{name}", pod.uid().unwrap_or_default())
}

/// Everything a kubelet reports for a pod whose containers run and are ready.
fn running_status(pod: &Pod, ip: Option<&str>, node_ip: &str, started_at: &str, restarts: i32, last: Option<Value>) -> Value {
    let now = now_rfc3339();
    let spec = pod.spec.as_ref();
    let containers: Vec<Value> = spec
        .map(|s| s.containers.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|c| {
            let mut s = json!({"name": c.name, "image": c.image, "imageID": format!("rkube-sim://{}", c.image.as_deref().unwrap_or("")),
                "containerID": container_id(pod, &c.name), "ready": true, "started": true, "restartCount": restarts,
                "state": {"running": {"startedAt": started_at}}});
            if let Some(l) = &last {
                s["lastState"] = l.clone();
            }
            s
        })
        .collect();
    let init: Vec<Value> = spec
        .and_then(|s| s.init_containers.as_deref())
        .unwrap_or_default()
        .iter()
        .map(|c| {
            let sidecar = c.restart_policy.as_deref() == Some("Always");
            let state = if sidecar { json!({"running": {"startedAt": started_at}}) } else { terminated(0, started_at) };
            json!({"name": c.name, "image": c.image, "imageID": format!("rkube-sim://{}", c.image.as_deref().unwrap_or("")),
                "containerID": container_id(pod, &c.name), "ready": true, "started": sidecar, "restartCount": 0, "state": state})
        })
        .collect();
    let mut status = json!({
        "phase": "Running",
        "hostIP": node_ip,
        "hostIPs": [{"ip": node_ip}],
        "startTime": started_at,
        "conditions": [
            condition("PodReadyToStartContainers", "True", None, &now),
            condition("Initialized", "True", None, &now),
            condition("Ready", "True", None, &now),
            condition("ContainersReady", "True", None, &now),
            condition("PodScheduled", "True", None, &now),
        ],
        "containerStatuses": containers,
    });
    if !init.is_empty() {
        status["initContainerStatuses"] = json!(init);
    }
    if let Some(ip) = ip {
        status["podIP"] = json!(ip);
        status["podIPs"] = json!([{"ip": ip}]);
    }
    status
}

/// The status of a pod whose containers have all exited.
fn finished_status(pod: &Pod, exit_code: i32, started_at: &str, restarts: i32) -> Value {
    let now = now_rfc3339();
    let containers: Vec<Value> = pod
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|c| {
            json!({"name": c.name, "image": c.image, "imageID": format!("rkube-sim://{}", c.image.as_deref().unwrap_or("")),
                "containerID": container_id(pod, &c.name), "ready": false, "started": false, "restartCount": restarts,
                "state": terminated(exit_code, started_at)})
        })
        .collect();
    json!({
        "phase": if exit_code == 0 { "Succeeded" } else { "Failed" },
        "conditions": [
            condition("PodReadyToStartContainers", "False", None, &now),
            condition("Ready", "False", Some("PodCompleted"), &now),
            condition("ContainersReady", "False", Some("PodCompleted"), &now),
        ],
        "containerStatuses": containers,
    })
}

async fn patch_status(client: kube::Client, pod: Pod, status: Value) {
    let api: Api<Pod> = Api::namespaced(client, &pod.namespace().unwrap_or_default());
    if let Err(e) = api.patch_status(&pod.name_any(), &PatchParams::default(), &Patch::Strategic(json!({"status": status}))).await {
        tracing::debug!(pod = %key_of(&pod), error = %e, "updating pod status");
    }
}

/// Deletes a pod marked for deletion at once (its simulated containers stop immediately).
async fn delete_now(client: kube::Client, pod: Pod, uid: String) {
    let api: Api<Pod> = Api::namespaced(client, &pod.namespace().unwrap_or_default());
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions { uid: Some(uid), resource_version: None }),
        ..Default::default()
    };
    if let Err(e) = api.delete(&pod.name_any(), &params).await {
        tracing::debug!(pod = %key_of(&pod), error = %e, "deleting pod");
    }
}
