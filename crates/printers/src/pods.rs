//! Pods and pod templates (upstream `printPod`, `printPodTemplate`).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::format::{at, containers, flag, int, labels, list, map, opt_flag, text};
use crate::{
    AGE, CellType::String as Str, Ctx, NAME, Printer, Row, col, descriptions as d, printer, wide,
};

pub(crate) static POD: Printer = printer(
    &[
        NAME,
        col(
            "Ready",
            Str,
            "The aggregate readiness state of this pod for accepting traffic.",
        ),
        col(
            "Status",
            Str,
            "The aggregate status of the containers in this pod.",
        ),
        col(
            "Restarts",
            Str,
            "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
        ),
        AGE,
        wide("IP", Str, d::POD_STATUS_POD_IP),
        wide("Node", Str, d::POD_SPEC_NODE_NAME),
        wide("Nominated Node", Str, d::POD_STATUS_NOMINATED_NODE_NAME),
        wide("Readiness Gates", Str, d::POD_SPEC_READINESS_GATES),
    ],
    print_pod,
);

pub(crate) static POD_TEMPLATE: Printer = printer(
    &[
        NAME,
        col(
            "Containers",
            Str,
            "Names of each container in the template.",
        ),
        col(
            "Images",
            Str,
            "Images referenced by each container in the template.",
        ),
        col("Pod Labels", Str, "The labels for the pod template."),
    ],
    print_pod_template,
);

/// `node.NodeUnreachablePodReason`: the reason the node lifecycle controller sets.
const NODE_UNREACHABLE_REASON: &str = "NodeLost";

/// A sidecar: an init container with `restartPolicy: Always`.
fn is_restartable_init_container(c: Option<&Value>) -> bool {
    c.is_some_and(|c| text(c, "/restartPolicy") == "Always")
}

fn condition_true(conditions: &[Value], ty: &str) -> bool {
    conditions
        .iter()
        .any(|c| text(c, "/type") == ty && text(c, "/status") == "True")
}

/// `isPodInitializedConditionTrue`: the first Initialized condition decides.
fn initialized(conditions: &[Value]) -> bool {
    conditions
        .iter()
        .find(|c| text(c, "/type") == "Initialized")
        .is_some_and(|c| text(c, "/status") == "True")
}

/// The later of the current latest restart and this status' last termination.
fn later_termination(latest: Option<DateTime<Utc>>, status: &Value) -> Option<DateTime<Utc>> {
    let finished = crate::duration::timestamp(at(status, "/lastState/terminated/finishedAt"));
    match (latest, finished) {
        (Some(l), Some(f)) if f > l => Some(f),
        (None, f) => f,
        (l, _) => l,
    }
}

fn terminated_detail(prefix: &str, terminated: &Value) -> String {
    match text(terminated, "/reason") {
        "" => match int(terminated, "/signal") {
            0 => format!("{prefix}ExitCode:{}", int(terminated, "/exitCode")),
            signal => format!("{prefix}Signal:{signal}"),
        },
        reason => format!("{prefix}{reason}"),
    }
}

fn print_pod(c: &Ctx<'_>) -> Row {
    let pod = c.obj;
    let spec_containers = list(pod, "/spec/containers");
    let init_specs = list(pod, "/spec/initContainers");
    let conditions = list(pod, "/status/conditions");
    let phase = text(pod, "/status/phase");

    let mut restarts: i64 = 0;
    let mut sidecar_restarts: i64 = 0;
    let mut total = spec_containers.len();
    let mut ready = 0usize;
    let mut last_restart: Option<DateTime<Utc>> = None;
    let mut last_sidecar_restart: Option<DateTime<Utc>> = None;

    let mut reason = match text(pod, "/status/reason") {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    if conditions.iter().any(|cond| {
        text(cond, "/type") == "PodScheduled" && text(cond, "/reason") == "SchedulingGated"
    }) {
        reason = "SchedulingGated".into();
    }

    let row_conditions = match phase {
        "Succeeded" => vec![
            json!({"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}),
        ],
        "Failed" => vec![
            json!({"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}),
        ],
        _ => Vec::new(),
    };

    let init_spec = |name: &str| init_specs.iter().find(|s| text(s, "/name") == name);
    total += init_specs
        .iter()
        .filter(|s| is_restartable_init_container(Some(s)))
        .count();

    let mut initializing = false;
    for (i, status) in list(pod, "/status/initContainerStatuses")
        .iter()
        .enumerate()
    {
        restarts += int(status, "/restartCount");
        last_restart = later_termination(last_restart, status);
        let sidecar = is_restartable_init_container(init_spec(text(status, "/name")));
        if sidecar {
            sidecar_restarts += int(status, "/restartCount");
            last_sidecar_restart = later_termination(last_sidecar_restart, status);
        }
        let terminated = at(status, "/state/terminated");
        let waiting_reason = text(status, "/state/waiting/reason");
        if terminated.is_some_and(|t| int(t, "/exitCode") == 0) {
            continue;
        }
        if sidecar && opt_flag(status, "/started") == Some(true) {
            if flag(status, "/ready") {
                ready += 1;
            }
            continue;
        }
        reason = if let Some(t) = terminated {
            terminated_detail("Init:", t)
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{i}/{}", init_specs.len())
        };
        initializing = true;
        break;
    }

    if !initializing || initialized(conditions) {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for status in list(pod, "/status/containerStatuses").iter().rev() {
            restarts += int(status, "/restartCount");
            last_restart = later_termination(last_restart, status);
            let waiting_reason = text(status, "/state/waiting/reason");
            let terminated = at(status, "/state/terminated");
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = terminated {
                reason = terminated_detail("", t);
            } else if flag(status, "/ready") && at(status, "/state/running").is_some() {
                has_running = true;
                ready += 1;
            }
        }
        // A container still running after others completed means the pod is not done.
        if reason == "Completed" && has_running {
            reason = if condition_true(conditions, "Ready") {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }

    let deleting = at(pod, "/metadata/deletionTimestamp").is_some();
    if deleting && text(pod, "/status/reason") == NODE_UNREACHABLE_REASON {
        reason = "Unknown".into();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".into();
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => {
            format!(
                "{restarts} ({} ago)",
                crate::duration::human(crate::duration::between(t, c.now))
            )
        }
        _ => restarts.to_string(),
    };

    let pod_ip = list(pod, "/status/podIPs")
        .first()
        .map(|ip| text(ip, "/ip"))
        .or_else(|| Some(text(pod, "/status/podIP")))
        .filter(|ip| !ip.is_empty())
        .unwrap_or("<none>");
    let or_none = |s: &str| {
        if s.is_empty() {
            "<none>".to_string()
        } else {
            s.to_string()
        }
    };
    let gates = list(pod, "/spec/readinessGates");
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let true_gates = gates
            .iter()
            .filter(|g| {
                let ty = text(g, "/conditionType");
                conditions
                    .iter()
                    .find(|cond| text(cond, "/type") == ty)
                    .is_some_and(|cond| text(cond, "/status") == "True")
            })
            .count();
        format!("{true_gates}/{}", gates.len())
    };

    Row {
        cells: vec![
            c.name(),
            json!(format!("{ready}/{total}")),
            json!(reason),
            json!(restarts_cell),
            c.age(),
            json!(pod_ip),
            json!(or_none(text(pod, "/spec/nodeName"))),
            json!(or_none(text(pod, "/status/nominatedNodeName"))),
            json!(readiness_gates),
        ],
        conditions: row_conditions,
    }
}

fn print_pod_template(c: &Ctx<'_>) -> Row {
    let (names, images) = containers(list(c.obj, "/template/spec/containers"));
    vec![
        c.name(),
        json!(names),
        json!(images),
        json!(labels(map(c.obj, "/template/metadata/labels"))),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ago, now, texts};

    fn pod(spec: Value, status: Value) -> Value {
        json!({"metadata": {"name": "p", "creationTimestamp": ago(300)}, "spec": spec, "status": status})
    }

    fn one(name: &str) -> Value {
        json!({"containers": [{"name": name, "image": "nginx"}]})
    }

    fn status_of(p: &Value) -> (String, String, String) {
        let t = texts("", "Pod", p);
        (t[1].clone(), t[2].clone(), t[3].clone())
    }

    #[test]
    fn pending_without_statuses() {
        let p = pod(one("c"), json!({"phase": "Pending"}));
        assert_eq!(
            texts("", "Pod", &p),
            [
                "p", "0/1", "Pending", "0", "5m", "<none>", "<none>", "<none>", "<none>"
            ]
        );
    }

    #[test]
    fn container_creating_from_waiting_reason() {
        let p = pod(
            one("c"),
            json!({"phase": "Pending", "containerStatuses": [{"name": "c", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ContainerCreating"}}}]}),
        );
        assert_eq!(
            status_of(&p),
            ("0/1".into(), "ContainerCreating".into(), "0".into())
        );
    }

    #[test]
    fn running_and_ready_with_wide_cells() {
        let p = json!({
            "metadata": {"name": "web", "creationTimestamp": ago(3 * 3600 + 300)},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1",
                     "readinessGates": [{"conditionType": "example.com/ok"}, {"conditionType": "example.com/other"}]},
            "status": {"phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}],
                "nominatedNodeName": "n2",
                "conditions": [{"type": "Ready", "status": "True"}, {"type": "example.com/ok", "status": "True"}],
                "containerStatuses": [
                    {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": ago(100)}}},
                    {"name": "b", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": ago(100)}}}
                ]}
        });
        assert_eq!(
            texts("", "Pod", &p),
            [
                "web", "2/2", "Running", "0", "3h5m", "10.0.0.5", "n1", "n2", "1/2"
            ]
        );
    }

    #[test]
    fn restarts_show_time_since_last_termination() {
        let p = pod(
            one("c"),
            json!({"phase": "Running", "containerStatuses": [{"name": "c", "ready": false, "restartCount": 5,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(300)}}}]}),
        );
        assert_eq!(
            status_of(&p),
            ("0/1".into(), "CrashLoopBackOff".into(), "5 (5m ago)".into())
        );
    }

    #[test]
    fn completed_error_and_exit_codes() {
        let done = |term: Value, phase: &str| {
            pod(
                one("c"),
                json!({"phase": phase, "containerStatuses": [{"name": "c", "ready": false, "restartCount": 0, "state": {"terminated": term}}]}),
            )
        };
        assert_eq!(
            status_of(&done(
                json!({"exitCode": 0, "reason": "Completed"}),
                "Succeeded"
            ))
            .1,
            "Completed"
        );
        assert_eq!(
            status_of(&done(json!({"exitCode": 1, "reason": "Error"}), "Failed")).1,
            "Error"
        );
        assert_eq!(
            status_of(&done(json!({"exitCode": 3}), "Failed")).1,
            "ExitCode:3"
        );
        assert_eq!(
            status_of(&done(json!({"exitCode": 137, "signal": 9}), "Failed")).1,
            "Signal:9"
        );
        let row = crate::printer_for("", "Pod").unwrap().row(
            &done(json!({"exitCode": 0, "reason": "Completed"}), "Succeeded"),
            now(),
        );
        assert_eq!(row.conditions[0]["reason"], "Succeeded");
    }

    #[test]
    fn completed_with_a_running_container_is_running_or_not_ready() {
        let status = |ready_cond: &str| {
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": ready_cond}], "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
                {"name": "b", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
            ]})
        };
        let spec = json!({"containers": [{"name": "a"}, {"name": "b"}]});
        assert_eq!(status_of(&pod(spec.clone(), status("True"))).1, "Running");
        assert_eq!(status_of(&pod(spec, status("False"))).1, "NotReady");
    }

    #[test]
    fn init_container_states() {
        let spec = json!({"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "c"}]});
        let init = |statuses: Value| {
            pod(
                spec.clone(),
                json!({"phase": "Pending", "initContainerStatuses": statuses}),
            )
        };
        let done = json!({"name": "i1", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
        let running = json!({"name": "i2", "restartCount": 0, "state": {"running": {}}});
        assert_eq!(status_of(&init(json!([done, running]))).1, "Init:1/2");
        let waiting = json!({"name": "i1", "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}});
        assert_eq!(status_of(&init(json!([waiting]))).1, "Init:0/2");
        let pulling = json!({"name": "i1", "restartCount": 0, "state": {"waiting": {"reason": "ImagePullBackOff"}}});
        assert_eq!(
            status_of(&init(json!([pulling]))).1,
            "Init:ImagePullBackOff"
        );
        let failed = json!({"name": "i1", "restartCount": 2, "state": {"terminated": {"exitCode": 1, "reason": "Error"}}});
        assert_eq!(
            status_of(&init(json!([failed]))),
            ("0/1".into(), "Init:Error".into(), "2".into())
        );
        let crash =
            json!({"name": "i1", "restartCount": 0, "state": {"terminated": {"exitCode": 2}}});
        assert_eq!(status_of(&init(json!([crash]))).1, "Init:ExitCode:2");
        let signal = json!({"name": "i1", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "signal": 15}}});
        // Exit code 0 counts as done even with a signal, as upstream checks the exit code first.
        assert_eq!(status_of(&init(json!([signal]))).1, "Pending");
        let sig = json!({"name": "i1", "restartCount": 0, "state": {"terminated": {"exitCode": 143, "signal": 15}}});
        assert_eq!(status_of(&init(json!([sig]))).1, "Init:Signal:15");
    }

    #[test]
    fn sidecars_count_in_ready_and_restarts() {
        let spec = json!({"initContainers": [{"name": "proxy", "restartPolicy": "Always"}], "containers": [{"name": "app"}]});
        let status = json!({"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
            "initContainerStatuses": [{"name": "proxy", "ready": true, "started": true, "restartCount": 1, "state": {"running": {}},
                "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(120)}}}],
            "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "state": {"running": {}}}]});
        assert_eq!(
            status_of(&pod(spec.clone(), status)),
            ("2/2".into(), "Running".into(), "1 (2m ago)".into())
        );
        let starting = json!({"phase": "Pending", "initContainerStatuses": [{"name": "proxy", "ready": false, "started": false,
            "restartCount": 0, "state": {"running": {}}}]});
        assert_eq!(
            status_of(&pod(spec, starting)),
            ("0/2".into(), "Init:0/1".into(), "0".into())
        );
    }

    #[test]
    fn terminating_unknown_and_gated() {
        let mut p = pod(one("c"), json!({"phase": "Running"}));
        p["metadata"]["deletionTimestamp"] = json!(ago(1));
        assert_eq!(status_of(&p).1, "Terminating");
        p["status"]["reason"] = json!("NodeLost");
        assert_eq!(status_of(&p).1, "Unknown");
        let mut finished = pod(one("c"), json!({"phase": "Succeeded"}));
        finished["metadata"]["deletionTimestamp"] = json!(ago(1));
        assert_eq!(status_of(&finished).1, "Succeeded");
        let lost = pod(one("c"), json!({"phase": "Running", "reason": "NodeLost"}));
        assert_eq!(status_of(&lost).1, "NodeLost");
        let gated = pod(
            one("c"),
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
        );
        assert_eq!(status_of(&gated).1, "SchedulingGated");
        let evicted = pod(one("c"), json!({"phase": "Failed", "reason": "Evicted"}));
        assert_eq!(status_of(&evicted).1, "Evicted");
    }

    #[test]
    fn pod_template_cells() {
        let t = json!({"metadata": {"name": "t"}, "template": {"metadata": {"labels": {"b": "2", "a": "1"}},
            "spec": {"containers": [{"name": "x", "image": "i1"}, {"name": "y", "image": "i2"}]}}});
        assert_eq!(
            texts("", "PodTemplate", &t),
            ["t", "x,y", "i1,i2", "a=1,b=2"]
        );
    }
}
