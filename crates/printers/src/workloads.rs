//! Replicated workloads: replication controllers, replica sets, deployments, stateful sets,
//! daemon sets and controller revisions (upstream `printReplicationController` … `printControllerRevision`).

use serde_json::{Value, json};

use crate::format::{
    at, containers, int, label_selector, labels, list, map, opt_int, selector_string, text,
};
use crate::{
    AGE, CONTAINERS,
    CellType::{Integer as Int, String as Str},
    Ctx, IMAGES, NAME, Printer, Row, col, descriptions as d, printer, wide,
};

pub(crate) static REPLICATION_CONTROLLER: Printer = printer(
    &[
        NAME,
        col("Desired", Int, d::RC_SPEC_REPLICAS),
        col("Current", Int, d::RC_STATUS_REPLICAS),
        col("Ready", Int, d::RC_STATUS_READY_REPLICAS),
        AGE,
        CONTAINERS,
        IMAGES,
        wide("Selector", Str, d::RC_SPEC_SELECTOR),
    ],
    print_replication_controller,
);

pub(crate) static REPLICA_SET: Printer = printer(
    &[
        NAME,
        col("Desired", Int, d::RS_SPEC_REPLICAS),
        col("Current", Int, d::RS_STATUS_REPLICAS),
        col("Ready", Int, d::RS_STATUS_READY_REPLICAS),
        AGE,
        CONTAINERS,
        IMAGES,
        wide("Selector", Str, d::RS_SPEC_SELECTOR),
    ],
    print_replica_set,
);

pub(crate) static DEPLOYMENT: Printer = printer(
    &[
        NAME,
        col("Ready", Str, "Number of the pod with ready state"),
        col("Up-to-date", Str, d::DEPLOYMENT_STATUS_UPDATED),
        col("Available", Str, d::DEPLOYMENT_STATUS_AVAILABLE),
        AGE,
        CONTAINERS,
        IMAGES,
        wide("Selector", Str, d::DEPLOYMENT_SPEC_SELECTOR),
    ],
    print_deployment,
);

pub(crate) static STATEFUL_SET: Printer = printer(
    &[
        NAME,
        col("Ready", Str, "Number of the pod with ready state"),
        AGE,
        CONTAINERS,
        IMAGES,
    ],
    print_stateful_set,
);

pub(crate) static DAEMON_SET: Printer = printer(
    &[
        NAME,
        col("Desired", Int, d::DS_STATUS_DESIRED),
        col("Current", Int, d::DS_STATUS_CURRENT),
        col("Ready", Int, d::DS_STATUS_READY),
        col("Up-to-date", Int, d::DS_STATUS_UPDATED),
        col("Available", Int, d::DS_STATUS_AVAILABLE),
        col("Node Selector", Str, d::POD_SPEC_NODE_SELECTOR),
        AGE,
        CONTAINERS,
        IMAGES,
        wide("Selector", Str, d::DS_SPEC_SELECTOR),
    ],
    print_daemon_set,
);

pub(crate) static CONTROLLER_REVISION: Printer = printer(
    &[
        NAME,
        col("Controller", Str, "Controller of the object"),
        col("Revision", Str, d::CONTROLLER_REVISION_REVISION),
        AGE,
    ],
    print_controller_revision,
);

/// `spec.replicas`, which the v1 types default to 1 before upstream prints it.
fn desired_replicas(obj: &Value) -> i64 {
    opt_int(obj, "/spec/replicas").unwrap_or(1)
}

fn template_containers(obj: &Value) -> (String, String) {
    containers(list(obj, "/spec/template/spec/containers"))
}

fn print_replication_controller(c: &Ctx<'_>) -> Row {
    let o = c.obj;
    let (names, images) = template_containers(o);
    vec![
        c.name(),
        json!(desired_replicas(o)),
        json!(int(o, "/status/replicas")),
        json!(int(o, "/status/readyReplicas")),
        c.age(),
        json!(names),
        json!(images),
        json!(labels(map(o, "/spec/selector"))),
    ]
    .into()
}

fn print_replica_set(c: &Ctx<'_>) -> Row {
    let o = c.obj;
    let (names, images) = template_containers(o);
    vec![
        c.name(),
        json!(desired_replicas(o)),
        json!(int(o, "/status/replicas")),
        json!(int(o, "/status/readyReplicas")),
        c.age(),
        json!(names),
        json!(images),
        json!(label_selector(at(o, "/spec/selector"))),
    ]
    .into()
}

fn print_deployment(c: &Ctx<'_>) -> Row {
    let o = c.obj;
    let (names, images) = template_containers(o);
    // Upstream prints the selector's String() here, not FormatLabelSelector: "" when empty.
    let selector = selector_string(at(o, "/spec/selector")).unwrap_or_else(|_| "<invalid>".into());
    vec![
        c.name(),
        json!(format!(
            "{}/{}",
            int(o, "/status/readyReplicas"),
            desired_replicas(o)
        )),
        json!(int(o, "/status/updatedReplicas")),
        json!(int(o, "/status/availableReplicas")),
        c.age(),
        json!(names),
        json!(images),
        json!(selector),
    ]
    .into()
}

fn print_stateful_set(c: &Ctx<'_>) -> Row {
    let o = c.obj;
    let (names, images) = template_containers(o);
    vec![
        c.name(),
        json!(format!(
            "{}/{}",
            int(o, "/status/readyReplicas"),
            desired_replicas(o)
        )),
        c.age(),
        json!(names),
        json!(images),
    ]
    .into()
}

fn print_daemon_set(c: &Ctx<'_>) -> Row {
    let o = c.obj;
    let (names, images) = template_containers(o);
    vec![
        c.name(),
        json!(int(o, "/status/desiredNumberScheduled")),
        json!(int(o, "/status/currentNumberScheduled")),
        json!(int(o, "/status/numberReady")),
        json!(int(o, "/status/updatedNumberScheduled")),
        json!(int(o, "/status/numberAvailable")),
        json!(labels(map(o, "/spec/template/spec/nodeSelector"))),
        c.age(),
        json!(names),
        json!(images),
        json!(label_selector(at(o, "/spec/selector"))),
    ]
    .into()
}

/// `formatResourceName` of the controlling owner: `kind.group/name` in lower case.
fn controller_name(obj: &Value) -> String {
    let Some(owner) = list(obj, "/metadata/ownerReferences")
        .iter()
        .find(|r| r["controller"] == json!(true))
    else {
        return "<none>".into();
    };
    let group = crate::group_of(text(owner, "/apiVersion"));
    let kind = text(owner, "/kind");
    let name = text(owner, "/name");
    if group.is_empty() && kind.is_empty() {
        return name.to_string();
    }
    let group_kind = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    format!("{}/{name}", group_kind.to_lowercase())
}

fn print_controller_revision(c: &Ctx<'_>) -> Row {
    vec![
        c.name(),
        json!(controller_name(c.obj)),
        json!(int(c.obj, "/revision")),
        c.age(),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ago, cells, texts};

    fn template() -> Value {
        json!({"metadata": {"labels": {"app": "web"}},
               "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}, {"name": "log", "image": "busybox"}]}})
    }

    #[test]
    fn deployment_cells() {
        let dep = json!({
            "metadata": {"name": "web", "creationTimestamp": ago(45)},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template()},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
        });
        assert_eq!(
            texts("apps", "Deployment", &dep),
            [
                "web",
                "2/3",
                "3",
                "2",
                "45s",
                "nginx,log",
                "nginx:1.25,busybox",
                "app=web"
            ]
        );
        // Counts are integers on the wire, as upstream's int64 cells.
        assert_eq!(cells("apps", "Deployment", &dep)[2], json!(3));
        let fresh = json!({"metadata": {"name": "new"}, "spec": {"template": template()}});
        assert_eq!(
            texts("apps", "Deployment", &fresh)[1..5],
            ["0/1", "0", "0", "<unknown>"]
        );
    }

    #[test]
    fn replica_sets_and_controllers() {
        let rs = json!({"metadata": {"name": "web-5d", "creationTimestamp": ago(7200)},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d"}}, "template": template()},
            "status": {"replicas": 2, "readyReplicas": 1}});
        assert_eq!(
            texts("apps", "ReplicaSet", &rs),
            [
                "web-5d",
                "2",
                "2",
                "1",
                "120m",
                "nginx,log",
                "nginx:1.25,busybox",
                "app=web,pod-template-hash=5d"
            ]
        );
        let rc = json!({"metadata": {"name": "old"}, "spec": {"replicas": 0, "selector": {"app": "old"}}});
        assert_eq!(
            texts("", "ReplicationController", &rc),
            ["old", "0", "0", "0", "<unknown>", "", "", "app=old"]
        );
    }

    #[test]
    fn stateful_and_daemon_sets() {
        let sts = json!({"metadata": {"name": "db", "creationTimestamp": ago(90000)},
            "spec": {"replicas": 3, "template": template()}, "status": {"readyReplicas": 3}});
        assert_eq!(
            texts("apps", "StatefulSet", &sts),
            ["db", "3/3", "25h", "nginx,log", "nginx:1.25,busybox"]
        );
        let ds = json!({"metadata": {"name": "agent"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                     "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "containers": [{"name": "a", "image": "i"}]}}},
            "status": {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberReady": 1, "updatedNumberScheduled": 2, "numberAvailable": 1}});
        assert_eq!(
            texts("apps", "DaemonSet", &ds),
            [
                "agent",
                "2",
                "2",
                "1",
                "2",
                "1",
                "kubernetes.io/os=linux",
                "<unknown>",
                "a",
                "i",
                "app=agent"
            ]
        );
    }

    #[test]
    fn controller_revision_names_its_owner() {
        let cr = json!({"metadata": {"name": "web-7f", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "controller": true, "uid": "u"}]}, "revision": 2});
        assert_eq!(
            texts("apps", "ControllerRevision", &cr),
            ["web-7f", "statefulset.apps/web", "2", "<unknown>"]
        );
        let orphan = json!({"metadata": {"name": "x"}, "revision": 1});
        assert_eq!(texts("apps", "ControllerRevision", &orphan)[1], "<none>");
    }
}
