//! The node lifecycle controller (upstream `pkg/controller/nodelifecycle` and
//! `pkg/controller/tainteviction`): a node whose kubelet stops renewing its Lease and posting
//! status for the grace period gets its conditions set to Unknown; Ready False/Unknown and
//! `spec.unschedulable` become the `node.kubernetes.io/{not-ready,unreachable,unschedulable}`
//! taints, and a True MemoryPressure, DiskPressure, PIDPressure or NetworkUnavailable the
//! matching NoSchedule taint (TaintNodesByCondition); pods on a node with NoExecute taints they do not tolerate are deleted, those that
//! tolerate them for `tolerationSeconds` are deleted when that runs out.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::events::{EventRecorder, reference};
use crate::plugins::taint_toleration::tolerates;

/// The taint of a node whose Ready condition is False.
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
/// The taint of a node whose Ready condition is Unknown.
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// The taint of a cordoned node.
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
/// NoSchedule taints of the conditions that are bad when True (upstream
/// `nodeConditionToTaintKeyStatusMap`).
pub const CONDITION_TAINTS: [(&str, &str); 4] = [
    ("MemoryPressure", "node.kubernetes.io/memory-pressure"),
    ("DiskPressure", "node.kubernetes.io/disk-pressure"),
    ("PIDPressure", "node.kubernetes.io/pid-pressure"),
    ("NetworkUnavailable", "node.kubernetes.io/network-unavailable"),
];

/// Conditions the controller sets to Unknown (upstream `nodeConditionsToUpdate`... the kubelet's
/// standard conditions).
const MONITORED_CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// Settings (kube-controller-manager flags).
#[derive(Debug, Clone)]
pub struct NodeLifecycleConfig {
    /// `--node-monitor-grace-period` (40 s).
    pub grace_period: Duration,
    /// `--node-monitor-period` (5 s).
    pub monitor_period: Duration,
}

impl Default for NodeLifecycleConfig {
    fn default() -> Self {
        Self { grace_period: Duration::from_secs(40), monitor_period: Duration::from_secs(5) }
    }
}

impl NodeLifecycleConfig {
    /// A config with the given grace period, monitoring at most every 5 s and at least 8 times
    /// per grace period (short periods are for tests).
    pub fn with_grace_period(grace_period: Duration) -> Self {
        Self { grace_period, monitor_period: (grace_period / 8).clamp(Duration::from_millis(250), Duration::from_secs(5)) }
    }
}

fn spawn_reflector<K>(api: Api<K>, config: watcher::Config) -> (Store<K>, tokio::task::JoinHandle<()>)
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, config));
    let task = tokio::spawn(async move {
        let mut stream = stream.boxed();
        while let Some(ev) = stream.next().await {
            if let Err(e) = ev {
                tracing::debug!(error = %e, "node lifecycle watch error; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    });
    (reader, task)
}

/// Runs the controller until the task is dropped.
pub async fn run(client: kube::Client, config: NodeLifecycleConfig) {
    let (nodes, t1) = spawn_reflector(Api::<Node>::all(client.clone()), watcher::Config::default());
    let (leases, t2) = spawn_reflector(Api::<Lease>::namespaced(client.clone(), "kube-node-lease"), watcher::Config::default());
    let (pods, t3) = spawn_reflector(Api::<Pod>::all(client.clone()), watcher::Config::default().fields("spec.nodeName!="));
    let _tasks = crate::AbortOnDrop(vec![t1, t2, t3]);
    for ready in [nodes.wait_until_ready().await, leases.wait_until_ready().await, pods.wait_until_ready().await] {
        if ready.is_err() {
            return;
        }
    }
    let recorder = EventRecorder::new(client.clone(), "node-controller", crate::leader::identity());
    let mut controller = Controller { client, config, recorder, nodes, leases, pods, probes: HashMap::new() };
    let mut tick = tokio::time::interval(controller.config.monitor_period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        controller.monitor().await;
    }
}

struct Controller {
    client: kube::Client,
    config: NodeLifecycleConfig,
    recorder: EventRecorder,
    nodes: Store<Node>,
    leases: Store<Lease>,
    pods: Store<Pod>,
    /// Per node: the last heartbeat seen (status and Lease) and when we saw it change.
    probes: HashMap<String, (String, Instant)>,
}

fn condition<'a>(node: &'a Node, type_: &str) -> Option<&'a NodeCondition> {
    node.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

/// The controller-owned taints a node should carry given its Ready status, cordon and which
/// of the [`CONDITION_TAINTS`] conditions are True.
pub fn desired_taints(ready: &str, unschedulable: bool, is_true: impl Fn(&str) -> bool) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    match ready {
        "False" => out.extend([(TAINT_NOT_READY, "NoSchedule"), (TAINT_NOT_READY, "NoExecute")]),
        "Unknown" => out.extend([(TAINT_UNREACHABLE, "NoSchedule"), (TAINT_UNREACHABLE, "NoExecute")]),
        _ => {}
    }
    if unschedulable {
        out.push((TAINT_UNSCHEDULABLE, "NoSchedule"));
    }
    out.extend(CONDITION_TAINTS.iter().filter(|(condition, _)| is_true(condition)).map(|(_, taint)| (*taint, "NoSchedule")));
    out
}

/// When a pod on a node with these NoExecute taints must go: `Some(Duration::ZERO)` now,
/// `Some(d)` after `d` from the newest taint, `None` never (taint_eviction.go
/// `getMinTolerationTime`).
pub fn eviction_delay(pod: &Pod, no_execute: &[Taint]) -> Option<Duration> {
    if no_execute.is_empty() {
        return None;
    }
    let tolerations = pod.spec.as_ref().and_then(|s| s.tolerations.as_deref()).unwrap_or_default();
    let mut min: Option<i64> = None;
    for taint in no_execute {
        let matching: Vec<_> = tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if matching.is_empty() {
            return Some(Duration::ZERO);
        }
        for t in matching {
            if let Some(s) = t.toleration_seconds {
                min = Some(min.map_or(s, |m| m.min(s)));
            }
        }
    }
    min.map(|s| Duration::from_secs(u64::try_from(s).unwrap_or(0)))
}

impl Controller {
    async fn monitor(&mut self) {
        let now = Instant::now();
        let mut pods_by_node: HashMap<String, Vec<std::sync::Arc<Pod>>> = HashMap::new();
        for p in self.pods.state() {
            if let Some(n) = p.spec.as_ref().and_then(|s| s.node_name.clone()) {
                pods_by_node.entry(n).or_default().push(p);
            }
        }
        let mut seen = HashSet::new();
        for node in self.nodes.state() {
            let name = node.name_any();
            seen.insert(name.clone());
            let lease = self.leases.get(&ObjectRef::new(&name).within("kube-node-lease"));
            let renewed = lease.as_ref().and_then(|l| l.spec.as_ref()).and_then(|s| s.renew_time.as_ref()).map(|t| t.0.to_string());
            let heartbeat = condition(&node, "Ready").and_then(|c| c.last_heartbeat_time.as_ref()).map(|t| t.0.to_string());
            let observed = format!("{heartbeat:?}|{renewed:?}");
            let probe = self.probes.entry(name.clone()).or_insert_with(|| (observed.clone(), now));
            if probe.0 != observed {
                *probe = (observed, now);
            }
            let silent_for = now.duration_since(probe.1);
            let mut ready = condition(&node, "Ready").map(|c| c.status.clone()).unwrap_or_else(|| "Unknown".into());
            let needs_unknown = silent_for > self.config.grace_period
                && MONITORED_CONDITIONS.iter().any(|t| condition(&node, t).is_none_or(|c| c.status != "Unknown"));
            if needs_unknown && self.mark_unknown(&node).await {
                ready = "Unknown".into();
            }
            let unschedulable = node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false);
            let is_true = |type_: &str| condition(&node, type_).is_some_and(|c| c.status == "True");
            let taints = self.reconcile_taints(&node, desired_taints(&ready, unschedulable, is_true)).await;
            let no_execute: Vec<Taint> = taints.into_iter().filter(|t| t.effect == "NoExecute").collect();
            if !no_execute.is_empty() {
                for pod in pods_by_node.get(&name).into_iter().flatten() {
                    self.maybe_evict(pod, &no_execute).await;
                }
            }
        }
        self.probes.retain(|n, _| seen.contains(n));
    }

    /// Sets the standard conditions to Unknown as upstream's `tryUpdateNodeHealth`.
    async fn mark_unknown(&self, node: &Node) -> bool {
        let mut updated = node.clone();
        let now = Time(Timestamp::now());
        let status = updated.status.get_or_insert_with(Default::default);
        let conditions = status.conditions.get_or_insert_with(Vec::new);
        for type_ in MONITORED_CONDITIONS {
            match conditions.iter_mut().find(|c| c.type_ == type_) {
                Some(c) => {
                    if c.status != "Unknown" {
                        c.status = "Unknown".into();
                        c.reason = Some("NodeStatusUnknown".into());
                        c.message = Some("Kubelet stopped posting node status.".into());
                        c.last_transition_time = Some(now.clone());
                    }
                }
                None => conditions.push(NodeCondition {
                    type_: type_.into(),
                    status: "Unknown".into(),
                    reason: Some("NodeStatusNeverUpdated".into()),
                    message: Some("Kubelet never posted node status.".into()),
                    last_heartbeat_time: Some(now.clone()),
                    last_transition_time: Some(now.clone()),
                }),
            }
        }
        let api: Api<Node> = Api::all(self.client.clone());
        match api.replace_status(&node.name_any(), &PostParams::default(), &updated).await {
            Ok(_) => {
                tracing::info!(node = %node.name_any(), "node stopped posting status: Ready=Unknown");
                self.recorder
                    .record(
                        reference("Node", &node.metadata),
                        "Normal",
                        "NodeNotReady",
                        "NodeNotReady",
                        format!("Node {} status is now: NodeNotReady", node.name_any()),
                    )
                    .await;
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, "marking the node Unknown; retried next period");
                false
            }
        }
    }

    /// Makes the controller-owned taints match `desired`, keeping every other taint and the
    /// `timeAdded` of taints that stay. Returns the node's resulting taints.
    async fn reconcile_taints(&self, node: &Node, desired: Vec<(&'static str, &'static str)>) -> Vec<Taint> {
        let current: Vec<Taint> = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
        let owned = |t: &Taint| {
            [TAINT_NOT_READY, TAINT_UNREACHABLE, TAINT_UNSCHEDULABLE].contains(&t.key.as_str())
                || CONDITION_TAINTS.iter().any(|(_, key)| *key == t.key)
        };
        let mut next: Vec<Taint> = current.iter().filter(|t| !owned(t)).cloned().collect();
        for (key, effect) in &desired {
            match current.iter().find(|t| t.key == *key && t.effect == *effect) {
                Some(t) => next.push(t.clone()),
                None => next.push(Taint {
                    key: (*key).into(),
                    effect: (*effect).into(),
                    value: None,
                    time_added: (*effect == "NoExecute").then(|| Time(Timestamp::now())),
                }),
            }
        }
        let same = current.len() == next.len() && next.iter().all(|n| current.iter().any(|c| c.key == n.key && c.effect == n.effect));
        if same {
            return current;
        }
        let api: Api<Node> = Api::all(self.client.clone());
        let patch = json!({"metadata": {"resourceVersion": node.metadata.resource_version}, "spec": {"taints": if next.is_empty() { json!(null) } else { json!(next) }}});
        match api.patch(&node.name_any(), &PatchParams::default(), &Patch::Merge(patch)).await {
            Ok(_) => next,
            Err(e) => {
                tracing::debug!(error = %e, "updating node taints; retried next period");
                current
            }
        }
    }

    async fn maybe_evict(&self, pod: &Pod, no_execute: &[Taint]) {
        if pod.metadata.deletion_timestamp.is_some() {
            return;
        }
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) {
            return;
        }
        let Some(delay) = eviction_delay(pod, no_execute) else { return };
        let now = Timestamp::now();
        let since = no_execute.iter().filter_map(|t| t.time_added.as_ref()).map(|t| t.0).max().unwrap_or(now);
        let due = since.as_second().saturating_add(i64::try_from(delay.as_secs()).unwrap_or(i64::MAX));
        if due > now.as_second() {
            return;
        }
        let ns = pod.namespace().unwrap_or_default();
        let name = pod.name_any();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let now = crate::events::now_rfc3339();
        let condition = json!({"status": {"conditions": [{"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
            "message": "Taint manager: deleting due to NoExecute taint", "lastTransitionTime": now}]}});
        if let Err(e) = api.patch_status(&name, &PatchParams::default(), &Patch::Strategic(condition)).await {
            tracing::debug!(error = %e, "marking the pod before taint eviction");
        }
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                tracing::info!(pod = %format!("{ns}/{name}"), "evicted by NoExecute taint");
                self.recorder
                    .record(
                        reference("Pod", &pod.metadata),
                        "Normal",
                        "TaintManagerEviction",
                        "Evicting",
                        format!("Marking for deletion Pod {ns}/{name}"),
                    )
                    .await;
            }
            Err(e) => tracing::debug!(error = %e, "taint eviction"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn taint(key: &str) -> Taint {
        Taint { key: key.into(), effect: "NoExecute".into(), ..Default::default() }
    }

    #[test]
    fn eviction_follows_toleration_seconds() {
        let plain: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"containers": []}})).unwrap();
        assert_eq!(eviction_delay(&plain, &[taint(TAINT_UNREACHABLE)]), Some(Duration::ZERO));
        let tolerant: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"containers": [], "tolerations": [
            {"key": TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]}}))
        .unwrap();
        assert_eq!(eviction_delay(&tolerant, &[taint(TAINT_UNREACHABLE)]), Some(Duration::from_secs(300)));
        assert_eq!(eviction_delay(&tolerant, &[taint(TAINT_NOT_READY)]), Some(Duration::ZERO));
        let forever: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"containers": [], "tolerations": [
            {"operator": "Exists"}]}}))
        .unwrap();
        assert_eq!(eviction_delay(&forever, &[taint(TAINT_UNREACHABLE)]), None);
    }

    #[test]
    fn taints_follow_ready_cordon_and_pressure() {
        let none = |_: &str| false;
        assert_eq!(desired_taints("True", false, none), vec![]);
        assert_eq!(desired_taints("Unknown", false, none), vec![(TAINT_UNREACHABLE, "NoSchedule"), (TAINT_UNREACHABLE, "NoExecute")]);
        assert_eq!(
            desired_taints("False", true, none),
            vec![(TAINT_NOT_READY, "NoSchedule"), (TAINT_NOT_READY, "NoExecute"), (TAINT_UNSCHEDULABLE, "NoSchedule")]
        );
        assert_eq!(
            desired_taints("True", false, |c| c == "DiskPressure" || c == "MemoryPressure"),
            vec![("node.kubernetes.io/memory-pressure", "NoSchedule"), ("node.kubernetes.io/disk-pressure", "NoSchedule")]
        );
    }
}
