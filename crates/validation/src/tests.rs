//! End-to-end checks of the public API against upstream's messages for the everyday cases.

use rkube_apimachinery::FieldError;
use serde_json::{Value, json};

use super::*;

fn msgs(errs: &[FieldError]) -> Vec<String> {
    errs.iter().map(FieldError::message).collect()
}

fn create(group: &str, kind: &str, mut obj: Value) -> Vec<String> {
    apply_defaults(group, "v1", kind, &mut obj);
    msgs(&validate_create(group, "v1", kind, &obj))
}

fn pod(containers: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": containers}})
}

fn deployment() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}}})
}

#[test]
fn valid_pod_passes_after_defaults() {
    assert!(create("", "Pod", pod(json!([{"name": "c", "image": "nginx"}]))).is_empty());
}

#[test]
fn pod_requires_containers_and_images() {
    assert_eq!(create("", "Pod", pod(json!([]))), vec!["spec.containers: Required value"]);
    assert_eq!(create("", "Pod", pod(json!([{"name": "c"}]))), vec!["spec.containers[0].image: Required value"]);
    assert_eq!(
        create("", "Pod", pod(json!([{"name": "c", "image": "a"}, {"name": "c", "image": "b"}]))),
        vec!["spec.containers[1].name: Duplicate value: \"c\""]
    );
    let e = create("", "Pod", pod(json!([{"name": "C_1", "image": "a"}])));
    assert_eq!(e, vec!["spec.containers[0].name: Invalid value: \"C_1\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"]);
}

#[test]
fn pod_ports_and_restart_policy() {
    let e = create("", "Pod", pod(json!([{"name": "c", "image": "a", "ports": [{"containerPort": 70000}]}])));
    assert_eq!(e, vec!["spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"]);
    let mut p = pod(json!([{"name": "c", "image": "a"}]));
    p["spec"]["restartPolicy"] = json!("Sometimes");
    assert_eq!(
        create("", "Pod", p),
        vec!["spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""]
    );
}

#[test]
fn pod_mount_of_unknown_volume_is_not_found() {
    let e = create("", "Pod", pod(json!([{"name": "c", "image": "a", "volumeMounts": [{"name": "data", "mountPath": "/d"}]}])));
    assert_eq!(e, vec!["spec.containers[0].volumeMounts[0].name: Not found: \"data\""]);
}

#[test]
fn pod_name_must_be_subdomain() {
    let mut p = pod(json!([{"name": "c", "image": "a"}]));
    p["metadata"]["name"] = json!("Bad_Name");
    assert_eq!(create("", "Pod", p), vec!["metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]);
}

#[test]
fn pod_update_may_only_change_images() {
    let mut old = pod(json!([{"name": "c", "image": "nginx:1"}]));
    apply_defaults("", "v1", "Pod", &mut old);
    old["metadata"]["resourceVersion"] = json!("5");
    let mut new = old.clone();
    new["spec"]["containers"][0]["image"] = json!("nginx:2");
    assert!(validate_update("", "v1", "Pod", &new, &old).is_empty());
    new["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80, "protocol": "TCP"}]);
    let e = validate_update("", "v1", "Pod", &new, &old);
    assert_eq!(e.len(), 1);
    assert!(e[0].message().starts_with("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"));
}

#[test]
fn the_mirror_pod_annotation_cannot_be_added_changed_or_removed() {
    let mut plain = pod(json!([{"name": "c", "image": "nginx:1"}]));
    apply_defaults("", "v1", "Pod", &mut plain);
    plain["metadata"]["resourceVersion"] = json!("5");
    let mut mirror = plain.clone();
    mirror["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "abc", "other": "x"});
    let messages = |new: &Value, old: &Value| -> Vec<String> { validate_update("", "v1", "Pod", new, old).iter().map(|e| e.message()).collect() };
    assert_eq!(messages(&mirror, &plain), ["metadata.annotations[kubernetes.io/config.mirror]: Forbidden: may not add mirror pod annotation"]);
    assert_eq!(messages(&plain, &mirror), ["metadata.annotations[kubernetes.io/config.mirror]: Forbidden: may not remove or update mirror pod annotation"]);
    let mut changed = mirror.clone();
    changed["metadata"]["annotations"]["kubernetes.io/config.mirror"] = json!("def");
    assert_eq!(messages(&changed, &mirror), ["metadata.annotations[kubernetes.io/config.mirror]: Forbidden: may not remove or update mirror pod annotation"]);
    // Other annotations of a mirror pod may change.
    let mut relabelled = mirror.clone();
    relabelled["metadata"]["annotations"]["other"] = json!("y");
    assert!(messages(&relabelled, &mirror).is_empty());
}

#[test]
fn deployment_defaults_and_validation() {
    let mut d = deployment();
    apply_defaults("apps", "v1", "Deployment", &mut d);
    let s = &d["spec"];
    assert_eq!(s["replicas"], 1);
    assert_eq!(s["strategy"], json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}));
    assert_eq!(s["revisionHistoryLimit"], 10);
    assert_eq!(s["progressDeadlineSeconds"], 600);
    assert_eq!(s["template"]["spec"]["containers"][0]["imagePullPolicy"], "IfNotPresent");
    assert!(s["template"]["spec"].get("enableServiceLinks").is_none());
    assert!(validate_create("apps", "v1", "Deployment", &d).is_empty());
}

#[test]
fn deployment_selector_must_match_template() {
    let mut d = deployment();
    d["spec"]["selector"] = json!({"matchLabels": {"app": "other"}});
    assert_eq!(
        create("apps", "Deployment", d),
        vec!["spec.template.metadata.labels: Invalid value: {\"app\":\"web\"}: `selector` does not match template `labels`"]
    );
    let mut d = deployment();
    d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    assert_eq!(
        create("apps", "Deployment", d),
        vec!["spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\""]
    );
}

#[test]
fn deployment_selector_is_immutable() {
    let mut old = deployment();
    apply_defaults("apps", "v1", "Deployment", &mut old);
    old["metadata"]["resourceVersion"] = json!("1");
    let mut new = old.clone();
    new["spec"]["selector"] = json!({"matchLabels": {"app": "web", "tier": "x"}});
    new["spec"]["template"]["metadata"]["labels"]["tier"] = json!("x");
    assert_eq!(
        msgs(&validate_update("apps", "v1", "Deployment", &new, &old)),
        vec!["spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"web\",\"tier\":\"x\"}}: field is immutable"]
    );
}

#[test]
fn statefulset_and_daemonset_defaults() {
    let mut s = deployment();
    apply_defaults("apps", "v1", "StatefulSet", &mut s);
    assert_eq!(s["spec"]["podManagementPolicy"], "OrderedReady");
    assert_eq!(s["spec"]["updateStrategy"], json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}));
    assert_eq!(s["spec"]["persistentVolumeClaimRetentionPolicy"], json!({"whenDeleted": "Retain", "whenScaled": "Retain"}));
    assert!(validate_create("apps", "v1", "StatefulSet", &s).is_empty());
    let mut ds = deployment();
    apply_defaults("apps", "v1", "DaemonSet", &mut ds);
    assert_eq!(ds["spec"]["updateStrategy"], json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}));
    assert!(validate_create("apps", "v1", "DaemonSet", &ds).is_empty());
    let mut bad = deployment();
    bad["metadata"]["name"] = json!("web.v1");
    assert_eq!(create("apps", "StatefulSet", bad), vec!["metadata.name: Invalid value: \"web.v1\": must not contain dots"]);
}

fn job() -> Value {
    json!({"metadata": {"name": "pi", "uid": "1234"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl"}]}}}})
}

#[test]
fn job_defaults_selector_and_restart_policy() {
    let mut j = job();
    apply_defaults("batch", "v1", "Job", &mut j);
    generate_job_selector(&mut j);
    let s = &j["spec"];
    assert_eq!((s["completions"].clone(), s["parallelism"].clone(), s["backoffLimit"].clone()), (json!(1), json!(1), json!(6)));
    assert_eq!(s["completionMode"], "NonIndexed");
    assert_eq!(s["suspend"], false);
    assert_eq!(s["podReplacementPolicy"], "TerminatingOrFailed");
    assert_eq!(s["selector"], json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "1234"}}));
    assert_eq!(j["metadata"]["labels"]["job-name"], "pi");
    assert!(validate_create("batch", "v1", "Job", &j).is_empty(), "{:?}", msgs(&validate_create("batch", "v1", "Job", &j)));

    let mut j = job();
    j["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
    apply_defaults("batch", "v1", "Job", &mut j);
    generate_job_selector(&mut j);
    assert_eq!(
        msgs(&validate_create("batch", "v1", "Job", &j)),
        vec!["spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""]
    );
}

#[test]
fn job_template_is_immutable() {
    let mut old = job();
    apply_defaults("batch", "v1", "Job", &mut old);
    generate_job_selector(&mut old);
    old["metadata"]["resourceVersion"] = json!("1");
    let mut new = old.clone();
    new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:5");
    let e = msgs(&validate_update("batch", "v1", "Job", &new, &old));
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("spec.template: Invalid value: "));
    assert!(e[0].ends_with(": field is immutable"));
}

#[test]
fn cronjob_defaults_and_schedule() {
    let mut c = json!({"metadata": {"name": "hello"}, "spec": {"schedule": "*/1 * * * *",
        "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "h", "image": "busybox"}]}}}}}});
    apply_defaults("batch", "v1", "CronJob", &mut c);
    assert_eq!(c["spec"]["concurrencyPolicy"], "Allow");
    assert_eq!(c["spec"]["successfulJobsHistoryLimit"], 3);
    assert_eq!(c["spec"]["failedJobsHistoryLimit"], 1);
    assert_eq!(c["spec"]["suspend"], false);
    assert!(validate_create("batch", "v1", "CronJob", &c).is_empty());
    c["spec"]["schedule"] = json!("not a schedule");
    assert_eq!(
        msgs(&validate_create("batch", "v1", "CronJob", &c)),
        vec!["spec.schedule: Invalid value: \"not a schedule\": expected exactly 5 fields, found 3: [not a schedule]"]
    );
}

fn service(spec: Value) -> Value {
    json!({"metadata": {"name": "web"}, "spec": spec})
}

#[test]
fn service_defaults_and_port_rules() {
    assert!(create("", "Service", service(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]}))).is_empty());
    assert_eq!(create("", "Service", service(json!({"selector": {"app": "web"}}))), vec!["spec.ports: Required value"]);
    assert!(create("", "Service", service(json!({"clusterIP": "None", "selector": {"app": "web"}}))).is_empty());
    assert_eq!(
        create("", "Service", service(json!({"ports": [{"port": 80}, {"port": 81}]}))),
        vec!["spec.ports[0].name: Required value", "spec.ports[1].name: Required value"]
    );
    assert_eq!(
        create("", "Service", service(json!({"ports": [{"port": 0}]}))),
        vec!["spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive", "spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive"]
    );
    let mut bad = service(json!({"ports": [{"port": 80}]}));
    bad["metadata"]["name"] = json!("1web");
    assert!(create("", "Service", bad)[0].contains("a DNS-1035 label must consist of"));
}

#[test]
fn service_cluster_ip_may_not_change() {
    let mut old = service(json!({"clusterIP": "10.43.0.10", "ports": [{"port": 80}]}));
    apply_defaults("", "v1", "Service", &mut old);
    old["metadata"]["resourceVersion"] = json!("1");
    let mut new = old.clone();
    new["spec"]["clusterIP"] = json!("None");
    new["spec"]["clusterIPs"] = json!(["None"]);
    let e = msgs(&validate_update("", "v1", "Service", &new, &old));
    assert_eq!(e, vec!["spec.clusterIPs[0]: Invalid value: [\"None\"]: may not change once set"]);
    // A replace that omits the allocated address keeps it (patchAllocatedValues).
    let mut replaced = old.clone();
    if let Some(spec) = replaced["spec"].as_object_mut() {
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
    }
    assert!(validate_update("", "v1", "Service", &replaced, &old).is_empty());
}

#[test]
fn configmap_and_secret_rules() {
    let e = create("", "ConfigMap", json!({"metadata": {"name": "c"}, "data": {"bad key": "v"}}));
    assert_eq!(e, vec!["data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"]);
    let e = create("", "Secret", json!({"metadata": {"name": "t"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "YQ=="}}));
    assert_eq!(e, vec!["data[tls.key]: Required value"]);
    let e = create("", "Secret", json!({"metadata": {"name": "d"}, "type": "kubernetes.io/dockerconfigjson"}));
    assert_eq!(e, vec!["data[.dockerconfigjson]: Required value"]);
    let mut s = json!({"metadata": {"name": "s"}});
    apply_defaults("", "v1", "Secret", &mut s);
    assert_eq!(s["type"], "Opaque");
}

#[test]
fn immutable_configmap_data_cannot_change() {
    let old = json!({"metadata": {"name": "c", "resourceVersion": "1"}, "immutable": true, "data": {"a": "1"}});
    let new = json!({"metadata": {"name": "c", "resourceVersion": "1"}, "immutable": true, "data": {"a": "2"}});
    assert_eq!(
        msgs(&validate_update("", "v1", "ConfigMap", &new, &old)),
        vec!["data: Forbidden: field is immutable when `immutable` is set"]
    );
}

#[test]
fn namespace_names_are_labels() {
    assert_eq!(
        create("", "Namespace", json!({"metadata": {"name": "Team"}})),
        vec!["metadata.name: Invalid value: \"Team\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"]
    );
}

#[test]
fn rbac_rules_and_names() {
    let e = create("rbac.authorization.k8s.io", "Role", json!({"metadata": {"name": "a/b"}, "rules": [{"apiGroups": [""], "resources": ["pods"]}]}));
    assert_eq!(e, vec!["metadata.name: Invalid value: \"a/b\": may not contain '/'", "rules[0].verbs: Required value: verbs must contain at least one value"]);
    assert!(create("rbac.authorization.k8s.io", "ClusterRole", json!({"metadata": {"name": "system:viewer"}, "rules": [{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]})).is_empty());
    let mut b = json!({"metadata": {"name": "b"}, "roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [{"kind": "User", "name": "jane"}]});
    apply_defaults("rbac.authorization.k8s.io", "v1", "RoleBinding", &mut b);
    assert_eq!(b["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
    assert_eq!(b["subjects"][0]["apiGroup"], "rbac.authorization.k8s.io");
    assert!(validate_create("rbac.authorization.k8s.io", "v1", "RoleBinding", &b).is_empty());
    let mut nb = b.clone();
    nb["roleRef"]["name"] = json!("edit");
    b["metadata"]["resourceVersion"] = json!("1");
    nb["metadata"]["resourceVersion"] = json!("1");
    let e = msgs(&validate_update("rbac.authorization.k8s.io", "v1", "RoleBinding", &nb, &b));
    assert_eq!(e, vec!["roleRef: Invalid value: {\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\",\"name\":\"edit\"}: cannot change roleRef"]);
}

#[test]
fn unknown_kinds_get_metadata_checks() {
    assert_eq!(
        msgs(&validate_create("example.com", "v1", "Widget", &json!({"metadata": {"generateName": "w-"}}))),
        vec!["metadata.name: Required value: name or generateName is required"]
    );
    assert!(validate_create("example.com", "v1", "Widget", &json!({"metadata": {"name": "w"}})).is_empty());
    // Custom resources use the generic finalizer rule; built-in kinds the Kubernetes one.
    let with_fin = json!({"metadata": {"name": "w", "finalizers": ["cleanup"]}});
    assert!(validate_create("example.com", "v1", "Widget", &with_fin).is_empty());
    assert_eq!(validate_create("", "v1", "ConfigMap", &with_fin).len(), 1);
}

fn node(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}, "spec": spec})
}

#[test]
fn node_pod_cidrs_are_synced_and_checked() {
    let mut one = node(json!({"podCIDR": "10.42.1.0/24"}));
    apply_defaults("", "v1", "Node", &mut one);
    assert_eq!(one["spec"]["podCIDRs"], json!(["10.42.1.0/24"]));
    let mut list = node(json!({"podCIDR": "10.1.0.0/24", "podCIDRs": ["10.42.2.0/24", "fd00::/64"]}));
    apply_defaults("", "v1", "Node", &mut list);
    assert_eq!(list["spec"]["podCIDR"], "10.42.2.0/24");
    assert!(create("", "Node", list).is_empty());
    assert_eq!(
        create("", "Node", node(json!({"podCIDRs": ["10.42.0.0/24", "10.42.1.0/24", "bad"]}))),
        vec![
            "spec.podCIDRs[2]: Invalid value: \"bad\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            "spec.podCIDRs: Invalid value: [\"10.42.0.0/24\",\"10.42.1.0/24\",\"bad\"]: may specify no more than one CIDR for each IP family",
        ]
    );
    assert!(create("", "Node", node(json!({"podCIDRs": ["10.42.0.0/24", "10.42.0.0/24"]})))
        .iter()
        .any(|m| m == "spec.podCIDRs[1]: Duplicate value: \"10.42.0.0/24\""));
}

#[test]
fn node_pod_cidrs_may_only_be_set_once() {
    let mut old = node(json!({}));
    apply_defaults("", "v1", "Node", &mut old);
    let mut assigned = node(json!({"podCIDR": "10.42.0.0/24", "podCIDRs": ["10.42.0.0/24"]}));
    apply_defaults("", "v1", "Node", &mut assigned);
    assert!(validate_update("", "v1", "Node", &assigned, &old).is_empty());
    let mut changed = node(json!({"podCIDR": "10.42.9.0/24", "podCIDRs": ["10.42.9.0/24"]}));
    apply_defaults("", "v1", "Node", &mut changed);
    assert_eq!(
        msgs(&validate_update("", "v1", "Node", &changed, &assigned)),
        vec!["spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid"]
    );
    assert_eq!(validate_update("", "v1", "Node", &old, &assigned).len(), 1);
    assert!(validate_update("", "v1", "Node", &assigned, &assigned).is_empty());
}
