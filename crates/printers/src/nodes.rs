//! Nodes, namespaces and component statuses (upstream `printNode`, `printNamespace`,
//! `printComponentStatus`).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::format::{flag, list, map, text};
use crate::{
    AGE, CellType::String as Str, Ctx, NAME, Printer, Row, col, descriptions as d, printer, wide,
};

pub(crate) static NODE: Printer = printer(
    &[
        NAME,
        col("Status", Str, "The status of the node"),
        col("Roles", Str, "The roles of the node"),
        AGE,
        col("Version", Str, d::NODE_INFO_KUBELET_VERSION),
        wide("Internal-IP", Str, d::NODE_STATUS_ADDRESSES),
        wide("External-IP", Str, d::NODE_STATUS_ADDRESSES),
        wide("OS-Image", Str, d::NODE_INFO_OS_IMAGE),
        wide("Kernel-Version", Str, d::NODE_INFO_KERNEL_VERSION),
        wide("Container-Runtime", Str, d::NODE_INFO_CONTAINER_RUNTIME),
    ],
    print_node,
);

pub(crate) static NAMESPACE: Printer = printer(
    &[NAME, col("Status", Str, "The status of the namespace"), AGE],
    print_namespace,
);

pub(crate) static COMPONENT_STATUS: Printer = printer(
    &[
        NAME,
        col("Status", Str, "Status of the component conditions"),
        col("Message", Str, "Message of the component conditions"),
        col("Error", Str, "Error of the component conditions"),
    ],
    print_component_status,
);

const ROLE_LABEL_PREFIX: &str = "node-role.kubernetes.io/";
const ROLE_LABEL: &str = "kubernetes.io/role";

/// `findNodeRoles`: `node-role.kubernetes.io/<role>` label keys and `kubernetes.io/role` values.
fn roles(node: &Value) -> String {
    let mut roles = BTreeSet::new();
    for (key, value) in map(node, "/metadata/labels").into_iter().flatten() {
        if let Some(role) = key
            .strip_prefix(ROLE_LABEL_PREFIX)
            .filter(|r| !r.is_empty())
        {
            roles.insert(role.to_string());
        } else if key == ROLE_LABEL && !value.as_str().unwrap_or("").is_empty() {
            roles.insert(value.as_str().unwrap_or("").to_string());
        }
    }
    if roles.is_empty() {
        "<none>".into()
    } else {
        roles.into_iter().collect::<Vec<_>>().join(",")
    }
}

fn address(node: &Value, ty: &str) -> String {
    list(node, "/status/addresses")
        .iter()
        .find(|a| text(a, "/type") == ty)
        .map(|a| text(a, "/address").to_string())
        .unwrap_or_else(|| "<none>".into())
}

fn print_node(c: &Ctx<'_>) -> Row {
    let o = c.obj;
    // Only the Ready condition is summarised; the last one of that type wins, as upstream's map.
    let mut status: Vec<String> = match list(o, "/status/conditions")
        .iter()
        .rev()
        .find(|c| text(c, "/type") == "Ready")
    {
        Some(ready) if text(ready, "/status") == "True" => vec!["Ready".into()],
        Some(_) => vec!["NotReady".into()],
        None => vec!["Unknown".into()],
    };
    if flag(o, "/spec/unschedulable") {
        status.push("SchedulingDisabled".into());
    }
    let info = |field: &str| match text(o, &format!("/status/nodeInfo/{field}")) {
        "" => "<unknown>".to_string(),
        v => v.to_string(),
    };
    vec![
        c.name(),
        json!(status.join(",")),
        json!(roles(o)),
        c.age(),
        json!(text(o, "/status/nodeInfo/kubeletVersion")),
        json!(address(o, "InternalIP")),
        json!(address(o, "ExternalIP")),
        json!(info("osImage")),
        json!(info("kernelVersion")),
        json!(info("containerRuntimeVersion")),
    ]
    .into()
}

fn print_namespace(c: &Ctx<'_>) -> Row {
    vec![c.name(), json!(text(c.obj, "/status/phase")), c.age()].into()
}

fn print_component_status(c: &Ctx<'_>) -> Row {
    let healthy = list(c.obj, "/conditions")
        .iter()
        .find(|cond| text(cond, "/type") == "Healthy");
    let (status, message, error) = match healthy {
        Some(h) => (
            if text(h, "/status") == "True" {
                "Healthy"
            } else {
                "Unhealthy"
            },
            text(h, "/message"),
            text(h, "/error"),
        ),
        None => ("Unknown", "", ""),
    };
    vec![c.name(), json!(status), json!(message), json!(error)].into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ago, texts};

    fn node(labels: Value, spec: Value, conditions: Value) -> Value {
        json!({"metadata": {"name": "n1", "creationTimestamp": ago(2 * 86400 + 3 * 3600), "labels": labels},
               "spec": spec,
               "status": {"conditions": conditions,
                   "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}, {"type": "Hostname", "address": "n1"}],
                   "nodeInfo": {"kubeletVersion": "v1.33.1", "osImage": "Ubuntu 24.04 LTS", "kernelVersion": "6.8.0",
                                "containerRuntimeVersion": "containerd://1.7.22"}}})
    }

    #[test]
    fn ready_control_plane_node() {
        let n = node(
            json!({"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/master": "", "kubernetes.io/role": "etcd"}),
            json!({}),
            json!([{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}]),
        );
        assert_eq!(
            texts("", "Node", &n),
            [
                "n1",
                "Ready",
                "control-plane,etcd,master",
                "2d3h",
                "v1.33.1",
                "192.168.1.10",
                "<none>",
                "Ubuntu 24.04 LTS",
                "6.8.0",
                "containerd://1.7.22"
            ]
        );
    }

    #[test]
    fn not_ready_unknown_and_cordoned() {
        let not_ready = node(
            json!({}),
            json!({"unschedulable": true}),
            json!([{"type": "Ready", "status": "False"}]),
        );
        assert_eq!(
            texts("", "Node", &not_ready)[1..3],
            ["NotReady,SchedulingDisabled", "<none>"]
        );
        let unknown = node(
            json!({}),
            json!({}),
            json!([{"type": "Ready", "status": "Unknown"}]),
        );
        assert_eq!(texts("", "Node", &unknown)[1], "NotReady");
        let no_conditions = node(json!({}), json!({"unschedulable": true}), json!([]));
        assert_eq!(
            texts("", "Node", &no_conditions)[1],
            "Unknown,SchedulingDisabled"
        );
        let bare = json!({"metadata": {"name": "bare"}});
        assert_eq!(
            texts("", "Node", &bare)[4..],
            [
                "",
                "<none>",
                "<none>",
                "<unknown>",
                "<unknown>",
                "<unknown>"
            ]
        );
    }

    #[test]
    fn namespaces_and_component_statuses() {
        let ns = json!({"metadata": {"name": "default", "creationTimestamp": ago(10)}, "status": {"phase": "Active"}});
        assert_eq!(texts("", "Namespace", &ns), ["default", "Active", "10s"]);
        let cs = json!({"metadata": {"name": "etcd-0"}, "conditions": [{"type": "Healthy", "status": "True", "message": "ok"}]});
        assert_eq!(
            texts("", "ComponentStatus", &cs),
            ["etcd-0", "Healthy", "ok", ""]
        );
        let bad = json!({"metadata": {"name": "scheduler"}, "conditions": [{"type": "Healthy", "status": "False", "error": "refused"}]});
        assert_eq!(
            texts("", "ComponentStatus", &bad),
            ["scheduler", "Unhealthy", "", "refused"]
        );
    }
}
