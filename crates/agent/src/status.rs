//! Pod status as the kubelet reports it, computed from what the runtime says about the pod's
//! sandbox and containers. Pure functions: the unit tests drive them directly.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use crate::runtime::{ContainerInfo, ContainerState};

/// Why a container has not started (image pull failed, creation failed …), kept between syncs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub reason: String,
    pub message: String,
}

/// One container of the pod as observed: its latest and previous runtime containers.
#[derive(Debug, Clone, Default)]
pub struct ObservedContainer {
    pub latest: Option<ContainerInfo>,
    pub previous: Option<ContainerInfo>,
    /// Set when the agent could not start it.
    pub waiting: Option<Waiting>,
    /// The latest exit is followed by a restart (after the back-off).
    pub will_restart: bool,
    /// Readiness and startup probe results of the latest container, if it has probes.
    pub probes: Option<crate::probes::ProbeState>,
}

/// Everything the status is made of.
pub struct Observed<'a> {
    pub pod: &'a Pod,
    pub sandbox_ready: bool,
    pub pod_ip: Option<String>,
    pub host_ip: &'a str,
    /// `containerd`: prefix of container IDs (`containerd://…`).
    pub runtime_name: &'a str,
    pub containers: HashMap<String, ObservedContainer>,
}

/// RFC 3339 (whole seconds) of a CRI nanosecond timestamp.
pub fn rfc3339_from_nanos(nanos: i64) -> String {
    let ts = Timestamp::from_nanosecond(i128::from(nanos)).unwrap_or(Timestamp::UNIX_EPOCH);
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Now as RFC 3339 with whole seconds.
pub fn now_rfc3339() -> String {
    Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Whether a container that exited with `exit_code` is started again under `restart_policy`.
pub fn should_restart(restart_policy: &str, exit_code: i32) -> bool {
    match restart_policy {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}

/// The restart policy of the pod (default Always).
pub fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

fn terminated(info: &ContainerInfo, container_id: &str) -> Value {
    let reason = if !info.reason.is_empty() {
        info.reason.clone()
    } else if info.exit_code == 0 {
        "Completed".into()
    } else {
        "Error".into()
    };
    let mut t = json!({
        "exitCode": info.exit_code,
        "reason": reason,
        "startedAt": rfc3339_from_nanos(info.started_at),
        "finishedAt": rfc3339_from_nanos(info.finished_at),
        "containerID": container_id,
    });
    if !info.message.is_empty() {
        t["message"] = json!(info.message);
    }
    json!({"terminated": t})
}

/// How a container counts towards the pod phase.
#[derive(PartialEq, Eq)]
enum Progress {
    NeverStarted,
    Running,
    Succeeded,
    Failed,
}

fn container_status(
    o: &Observed,
    spec: &Container,
    seen: Option<&ObservedContainer>,
    default_waiting: &str,
) -> (Value, Progress, bool) {
    let id_of = |c: &ContainerInfo| format!("{}://{}", o.runtime_name, c.id);
    let mut status = json!({
        "name": spec.name,
        "image": spec.image.clone().unwrap_or_default(),
        "imageID": "",
        "ready": false,
        "started": false,
        "restartCount": 0,
    });
    let Some(seen) = seen else {
        status["state"] = json!({"waiting": {"reason": default_waiting}});
        return (status, Progress::NeverStarted, false);
    };
    let waiting_state = |default: &str| match &seen.waiting {
        Some(w) => json!({"waiting": {"reason": w.reason, "message": w.message}}),
        None => json!({"waiting": {"reason": default}}),
    };
    let Some(latest) = &seen.latest else {
        status["state"] = waiting_state(default_waiting);
        return (status, Progress::NeverStarted, false);
    };
    status["restartCount"] = json!(latest.attempt);
    status["imageID"] = json!(latest.image_ref);
    status["containerID"] = json!(id_of(latest));
    if let Some(previous) = &seen.previous
        && previous.state == ContainerState::Exited
    {
        status["lastState"] = terminated(previous, &id_of(previous));
    }
    let had_run = latest.attempt > 0;
    match latest.state {
        ContainerState::Running => {
            status["state"] =
                json!({"running": {"startedAt": rfc3339_from_nanos(latest.started_at)}});
            let started = seen.probes.is_none_or(|p| p.started);
            let ready = started && seen.probes.is_none_or(|p| p.ready);
            status["ready"] = json!(ready);
            status["started"] = json!(started);
            (status, Progress::Running, ready)
        }
        ContainerState::Exited if seen.will_restart => {
            status["lastState"] = terminated(latest, &id_of(latest));
            status["state"] = waiting_state("CrashLoopBackOff");
            (status, Progress::Running, false)
        }
        ContainerState::Exited => {
            status["state"] = terminated(latest, &id_of(latest));
            let progress = if latest.exit_code == 0 {
                Progress::Succeeded
            } else {
                Progress::Failed
            };
            (status, progress, false)
        }
        ContainerState::Created | ContainerState::Unknown => {
            status["state"] = waiting_state(default_waiting);
            (
                status,
                if had_run {
                    Progress::Running
                } else {
                    Progress::NeverStarted
                },
                false,
            )
        }
    }
}

/// Names the states a container is no longer in as null: the status is sent as a strategic
/// merge patch, which would otherwise keep `running` next to a new `terminated`.
fn with_exclusive_states(mut status: Value) -> Value {
    for field in ["state", "lastState"] {
        if let Some(state) = status.get_mut(field).and_then(Value::as_object_mut) {
            for key in ["waiting", "running", "terminated"] {
                state.entry(key).or_insert(Value::Null);
            }
        }
    }
    status
}

fn condition(
    type_: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
    now: &str,
) -> Value {
    let mut c = json!({"type": type_, "status": if ok { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": now});
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    if let Some(m) = message {
        c["message"] = json!(m);
    }
    c
}

/// The pod's phase from its containers (the kubelet's rules for the cases handled here).
fn phase(progress: &[Progress]) -> &'static str {
    if progress.is_empty() || progress.contains(&Progress::NeverStarted) {
        "Pending"
    } else if progress.contains(&Progress::Running) {
        "Running"
    } else if progress.contains(&Progress::Failed) {
        "Failed"
    } else {
        "Succeeded"
    }
}

/// The full status to patch onto the pod.
pub fn pod_status(o: &Observed) -> Value {
    let now = now_rfc3339();
    let spec = o.pod.spec.as_ref();
    let specs = spec.map(|s| s.containers.as_slice()).unwrap_or_default();
    let init_specs = spec
        .and_then(|s| s.init_containers.as_deref())
        .unwrap_or_default();
    // With init containers, containers that have not started wait in PodInitializing.
    let default_waiting = if init_specs.is_empty() {
        "ContainerCreating"
    } else {
        "PodInitializing"
    };
    let mut init_statuses = Vec::new();
    let mut incomplete = Vec::new();
    let mut init_failed = false;
    let mut unready = Vec::new();
    for init in init_specs {
        let sidecar = init.restart_policy.as_deref() == Some("Always");
        let (mut status, p, running) =
            container_status(o, init, o.containers.get(&init.name), default_waiting);
        let completed = p == Progress::Succeeded;
        if sidecar {
            if !running {
                incomplete.push(init.name.clone());
                unready.push(init.name.clone());
            }
        } else {
            // A completed init container counts as ready, as upstream reports it.
            status["ready"] = json!(completed);
            if running {
                status["started"] = json!(true);
            }
            if !completed {
                incomplete.push(init.name.clone());
            }
            if p == Progress::Failed {
                init_failed = true;
            }
        }
        init_statuses.push(with_exclusive_states(status));
    }
    let initialized = incomplete.is_empty();
    let mut statuses = Vec::new();
    let mut progress = Vec::new();
    for spec in specs {
        let (status, p, ready) =
            container_status(o, spec, o.containers.get(&spec.name), default_waiting);
        if !ready {
            unready.push(spec.name.clone());
        }
        statuses.push(with_exclusive_states(status));
        progress.push(p);
    }
    let phase = if init_failed {
        "Failed"
    } else if !initialized {
        "Pending"
    } else {
        phase(&progress)
    };
    let terminal = phase == "Succeeded" || phase == "Failed";
    let all_ready = unready.is_empty();
    let (ready_reason, ready_message) = if terminal {
        (Some("PodCompleted"), None)
    } else if all_ready {
        (None, None)
    } else {
        (
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    };
    let (init_reason, init_message) = if initialized {
        (None, None)
    } else {
        (
            Some("ContainersNotInitialized"),
            Some(format!(
                "containers with incomplete status: [{}]",
                incomplete.join(" ")
            )),
        )
    };
    let start_time = o
        .pod
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map(|t| t.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or(now.clone());
    let mut status = json!({
        "phase": phase,
        "hostIP": o.host_ip,
        "hostIPs": [{"ip": o.host_ip}],
        "startTime": start_time,
        "conditions": [
            condition("PodReadyToStartContainers", o.sandbox_ready && !terminal, None, None, &now),
            condition("Initialized", initialized, init_reason, init_message, &now),
            condition("Ready", all_ready && !terminal, ready_reason, ready_message.clone(), &now),
            condition("ContainersReady", all_ready && !terminal, ready_reason, ready_message, &now),
        ],
        "containerStatuses": statuses,
    });
    if !init_specs.is_empty() {
        status["initContainerStatuses"] = json!(init_statuses);
    }
    if let Some(ip) = &o.pod_ip {
        status["podIP"] = json!(ip);
        status["podIPs"] = json!([{"ip": ip}]);
    }
    status
}

/// Status without the timestamps of conditions: two syncs that differ only there need no patch.
pub fn without_transition_times(status: &Value) -> Value {
    let mut s = status.clone();
    if let Some(conditions) = s.get_mut("conditions").and_then(Value::as_array_mut) {
        for c in conditions {
            if let Some(c) = c.as_object_mut() {
                c.remove("lastTransitionTime");
            }
        }
    }
    s
}
