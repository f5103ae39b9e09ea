//! Discovery as kubectl sees it: api-resources, api-versions, version, health.

use crate::cluster;

#[test]
fn api_resources_lists_upstream_names_short_names_and_kinds() {
    let c = cluster();
    let k = c.kubectl();
    let out = k.ok(&["api-resources", "--no-headers"]).unwrap();
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    let find = |name: &str, group_version: &str| {
        rows.iter()
            .find(|r| r[0] == name && r.iter().any(|c| *c == group_version))
            .unwrap_or_else(|| panic!("{name} ({group_version}) missing from api-resources:\n{out}"))
            .clone()
    };
    // NAME SHORTNAMES APIVERSION NAMESPACED KIND
    assert_eq!(find("pods", "v1"), vec!["pods", "po", "v1", "true", "Pod"]);
    assert_eq!(find("deployments", "apps/v1"), vec!["deployments", "deploy", "apps/v1", "true", "Deployment"]);
    assert_eq!(find("namespaces", "v1"), vec!["namespaces", "ns", "v1", "false", "Namespace"]);
    assert_eq!(find("services", "v1"), vec!["services", "svc", "v1", "true", "Service"]);
    assert_eq!(find("customresourcedefinitions", "apiextensions.k8s.io/v1"), vec!["customresourcedefinitions", "crd,crds", "apiextensions.k8s.io/v1", "false", "CustomResourceDefinition"]);
    assert_eq!(find("clusterroles", "rbac.authorization.k8s.io/v1"), vec!["clusterroles", "rbac.authorization.k8s.io/v1", "false", "ClusterRole"]);
    assert_eq!(find("horizontalpodautoscalers", "autoscaling/v2"), vec!["horizontalpodautoscalers", "hpa", "autoscaling/v2", "true", "HorizontalPodAutoscaler"]);
    assert_eq!(find("leases", "coordination.k8s.io/v1"), vec!["leases", "coordination.k8s.io/v1", "true", "Lease"]);
    assert_eq!(find("flowschemas", "flowcontrol.apiserver.k8s.io/v1"), vec!["flowschemas", "flowcontrol.apiserver.k8s.io/v1", "false", "FlowSchema"]);

    // Verbs as upstream lists them.
    let wide = k.ok(&["api-resources", "-o", "wide", "--no-headers", "--api-group=apps"]).unwrap();
    let deploy = wide.lines().find(|l| l.starts_with("deployments ")).unwrap();
    assert!(deploy.contains("create,delete,deletecollection,get,list,patch,update,watch"), "{deploy}");
    assert!(deploy.trim_end().ends_with("all"), "categories: {deploy}");
    // Namespaced/cluster filter works off the same discovery.
    let cluster_scoped = k.ok(&["api-resources", "--namespaced=false", "-o", "name"]).unwrap();
    assert!(cluster_scoped.lines().any(|l| l == "nodes"));
    assert!(!cluster_scoped.lines().any(|l| l == "pods"));
}

#[test]
fn api_versions_lists_every_served_group_version() {
    let c = cluster();
    let out = c.kubectl().ok(&["api-versions"]).unwrap();
    let got: Vec<&str> = out.lines().collect();
    for gv in [
        "admissionregistration.k8s.io/v1",
        "apiextensions.k8s.io/v1",
        "apiregistration.k8s.io/v1",
        "apps/v1",
        "authentication.k8s.io/v1",
        "authorization.k8s.io/v1",
        "autoscaling/v1",
        "autoscaling/v2",
        "batch/v1",
        "certificates.k8s.io/v1",
        "coordination.k8s.io/v1",
        "discovery.k8s.io/v1",
        "events.k8s.io/v1",
        "flowcontrol.apiserver.k8s.io/v1",
        "networking.k8s.io/v1",
        "node.k8s.io/v1",
        "policy/v1",
        "rbac.authorization.k8s.io/v1",
        "scheduling.k8s.io/v1",
        "storage.k8s.io/v1",
        "v1",
    ] {
        assert!(got.contains(&gv), "{gv} missing from api-versions:\n{out}");
    }
}

#[test]
fn version_and_health_endpoints() {
    let c = cluster();
    let k = c.kubectl();
    let v = k.json(&["version", "-o", "json"]).unwrap();
    let server = v["serverVersion"]["gitVersion"].as_str().unwrap();
    assert!(server.starts_with("v1.33.") && server.ends_with("+rkube"), "{server}");
    assert_eq!(k.ok(&["get", "--raw", "/readyz"]).unwrap(), "ok");
    assert_eq!(k.ok(&["get", "--raw", "/livez"]).unwrap(), "ok");
    // Bootstrap objects.
    let ns = k.ok(&["get", "namespaces", "-o", "name"]).unwrap();
    for n in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(ns.lines().any(|l| l == format!("namespace/{n}")), "{n} missing: {ns}");
    }
    let svc = k.json(&["get", "service", "kubernetes", "-n", "default", "-o", "json"]).unwrap();
    assert_eq!(svc["spec"]["clusterIP"], "10.43.0.1");
    assert_eq!(svc["spec"]["ports"][0]["port"], 443);
}

#[test]
fn unknown_paths_and_resources_get_status_errors() {
    let c = cluster();
    let k = c.kubectl();
    let err = k.fails(&["get", "--raw", "/api/v1/nopes"]).unwrap();
    assert!(err.contains("the server could not find the requested resource"), "{err}");
    let err = k.fails(&["get", "widgets"]).unwrap();
    assert!(err.contains("the server doesn't have a resource type \"widgets\""), "{err}");
}
