//! kubectl 1.32 and 1.27 called directly: 1.32 uses aggregated discovery and protobuf bodies,
//! 1.27 falls back to per-group discovery and JSON.

use crate::cluster;

fn everyday_verbs(minor: u32) {
    let c = cluster();
    let k = c.kubectl_version(minor);
    k.ok(&["create", "namespace", "old"]).unwrap();
    k.ok(&["create", "deployment", "web", "--image=nginx:1.25", "-n", "old"]).unwrap();
    k.ok(&["create", "configmap", "cfg", "--from-literal=a=b", "-n", "old"]).unwrap();
    let d = k.json(&["get", "deployment", "web", "-n", "old", "-o", "json"]).unwrap();
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.25");
    let names = k.ok(&["get", "deploy,cm", "-n", "old", "-o", "name"]).unwrap();
    assert!(names.contains("deployment.apps/web") && names.contains("configmap/cfg"), "{names}");
    let res = k.ok(&["api-resources", "--no-headers"]).unwrap();
    assert!(res.lines().any(|l| l.starts_with("deployments ") && l.contains("deploy") && l.contains("apps/v1")), "{res}");
    k.ok(&["label", "deployment", "web", "tier=frontend", "-n", "old"]).unwrap();
    let sel = k.ok(&["get", "deploy", "-l", "tier=frontend", "-n", "old", "-o", "name"]).unwrap();
    assert_eq!(sel.trim(), "deployment.apps/web");
    k.ok(&["delete", "deployment", "web", "-n", "old"]).unwrap();
    k.ok(&["delete", "namespace", "old", "--timeout=30s"]).unwrap();
}

#[test]
fn kubectl_1_32() {
    everyday_verbs(32);
}

#[test]
fn kubectl_1_27() {
    everyday_verbs(27);
}
