//! The everyday mutating verbs of kubectl against rkube, with kubectl 1.33, 1.32 and 1.27:
//! `describe`, `patch` with each `--type`, `edit` through an `EDITOR` script, `label`,
//! `annotate`, `set image`, `scale`.

use rkube_testkit::Kubectl;
use serde_json::json;

use crate::api_only_cluster;

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports:
        - containerPort: 80
      - name: sidecar
        image: busybox:1.36
        args: [sleep, infinity]
";

/// kubectl aligns describe output by the longest label in each block: compare with single spaces.
fn squash(s: &str) -> String {
    s.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect::<Vec<_>>().join("\n")
}

fn exercise(k: &Kubectl) {
    k.ok_stdin(&["apply", "-f", "-"], DEPLOYMENT).unwrap();

    // describe prints upstream's layout for a deployment and a pod.
    let d = squash(&k.ok(&["describe", "deployment", "web"]).unwrap());
    for needle in ["Name: web", "Replicas: 2 desired | 0 updated | 0 total | 0 available | 0 unavailable", "StrategyType: RollingUpdate", "RollingUpdateStrategy: 25% max unavailable, 25% max surge", "nginx:", "Image: nginx:1.25", "Port: 80/TCP", "Args:"] {
        assert!(d.contains(needle), "describe deployment lacks {needle:?}:\n{d}");
    }
    k.ok(&["run", "solo", "--image=busybox:1.36", "--restart=Never", "--labels=team=a", "--", "sleep", "60"]).unwrap();
    let p = squash(&k.ok(&["describe", "pod", "solo"]).unwrap());
    for needle in ["Name: solo", "Namespace: default", "Labels: team=a", "Status: Pending", "Image: busybox:1.36", "QoS Class: BestEffort"] {
        assert!(p.contains(needle), "describe pod lacks {needle:?}:\n{p}");
    }

    // patch: strategic (merging containers by name), merge, and JSON patch.
    k.ok(&["patch", "deployment", "web", "-p", r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox:1.37"}]}}}}"#]).unwrap();
    let dep = k.json(&["get", "deployment", "web", "-o", "json"]).unwrap();
    let containers = dep["spec"]["template"]["spec"]["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 2, "strategic merge keeps the other container");
    assert_eq!(containers[1]["image"], "busybox:1.37");
    k.ok(&["patch", "deployment", "web", "--type=merge", "-p", r#"{"metadata":{"labels":{"tier":"front"}}}"#]).unwrap();
    k.ok(&["patch", "deployment", "web", "--type=json", "-p", r#"[{"op":"replace","path":"/spec/replicas","value":4}]"#]).unwrap();
    let dep = k.json(&["get", "deployment", "web", "-o", "json"]).unwrap();
    assert_eq!(dep["metadata"]["labels"], json!({"app": "web", "tier": "front"}));
    assert_eq!(dep["spec"]["replicas"], 4);
    let bad = k.fails(&["patch", "deployment", "web", "--type=json", "-p", r#"[{"op":"test","path":"/spec/replicas","value":9}]"#]).unwrap();
    assert!(bad.contains("Error from server") || bad.contains("error"), "{bad}");

    // label, annotate (and their removal), set image, scale.
    k.ok(&["label", "deployment", "web", "owner=ops"]).unwrap();
    k.ok(&["annotate", "deployment", "web", "note=hello"]).unwrap();
    let clash = k.fails(&["label", "deployment", "web", "owner=dev"]).unwrap();
    assert!(clash.contains("already has a value (ops)"), "{clash}");
    k.ok(&["label", "deployment", "web", "owner=dev", "--overwrite"]).unwrap();
    k.ok(&["label", "deployment", "web", "tier-"]).unwrap();
    k.ok(&["set", "image", "deployment/web", "nginx=nginx:1.27"]).unwrap();
    k.ok(&["scale", "deployment", "web", "--replicas=1"]).unwrap();
    let dep = k.json(&["get", "deployment", "web", "-o", "json"]).unwrap();
    assert_eq!(dep["metadata"]["labels"], json!({"app": "web", "owner": "dev"}));
    assert_eq!(dep["metadata"]["annotations"]["note"], "hello");
    assert_eq!(dep["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.27");
    assert_eq!(dep["spec"]["template"]["spec"]["containers"][1]["image"], "busybox:1.37");
    assert_eq!(dep["spec"]["replicas"], 1);
}

/// `kubectl edit` with an EDITOR script that rewrites the image in the file kubectl hands it.
fn edit_with_script(k: &Kubectl) {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("editor.sh");
    std::fs::write(&script, "#!/bin/sh\nsed -i 's/image: nginx:1.27/image: nginx:1.28/' \"$1\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = k.command(&["edit", "deployment", "web"]).env("EDITOR", &script).env("KUBE_EDITOR", &script).output().unwrap();
    assert!(out.status.success(), "kubectl edit failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("deployment.apps/web edited"), "{}", String::from_utf8_lossy(&out.stdout));
    let image = k.ok(&["get", "deployment", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}"]).unwrap();
    assert_eq!(image, "nginx:1.28");
}

/// explain, client-side apply (create, change, drop a field), diff and server-side apply with a
/// conflict and force: the configuration workflow every kubectl version must get through.
fn configuration_workflow(k: &Kubectl) {
    let explained = squash(&k.ok(&["explain", "deployment.spec.strategy"]).unwrap());
    assert!(explained.contains("FIELD: strategy <DeploymentStrategy>"), "{explained}");
    assert!(explained.contains("rollingUpdate <RollingUpdateDeployment>"), "{explained}");
    let v1 = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  a: \"1\"\n  b: \"2\"\n";
    let v2 = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  a: \"10\"\n";
    assert_eq!(k.ok_stdin(&["apply", "-f", "-"], v1).unwrap().trim(), "configmap/cfg created");
    let diff = k.run_stdin(&["diff", "-f", "-"], v2).unwrap();
    assert_eq!(diff.code, Some(1), "differences found: {}", diff.stderr);
    assert!(diff.stdout.contains("-  b: \"2\"") && diff.stdout.contains("+  a: \"10\""), "{}", diff.stdout);
    assert_eq!(k.ok_stdin(&["apply", "-f", "-"], v2).unwrap().trim(), "configmap/cfg configured");
    assert_eq!(k.json(&["get", "cm", "cfg", "-o", "json"]).unwrap()["data"], json!({"a": "10"}));
    let ssa = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  k: v\n";
    assert_eq!(k.ok_stdin(&["apply", "--server-side", "-f", "-"], ssa).unwrap().trim(), "configmap/ssa serverside-applied");
    let other = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  k: changed\n";
    let conflict = k.run_stdin(&["apply", "--server-side", "--field-manager=other", "-f", "-"], other).unwrap();
    assert!(conflict.stderr.contains("conflict with \"kubectl\": .data.k"), "{}", conflict.stderr);
    k.ok_stdin(&["apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", "-"], other).unwrap();
    assert_eq!(k.ok(&["get", "cm", "ssa", "-o", "jsonpath={.data.k}"]).unwrap(), "changed");
}

#[test]
fn configuration_workflow_with_kubectl_1_33_1_32_1_27() {
    for minor in [33, 32, 27] {
        let c = api_only_cluster();
        configuration_workflow(&c.kubectl_version(minor));
    }
}

#[test]
fn everyday_verbs_with_kubectl_1_33() {
    let c = api_only_cluster();
    let k = c.kubectl();
    exercise(&k);
    edit_with_script(&k);
}

#[test]
fn everyday_verbs_with_kubectl_1_32() {
    let c = api_only_cluster();
    let k = c.kubectl_version(32);
    exercise(&k);
    edit_with_script(&k);
}

#[test]
fn everyday_verbs_with_kubectl_1_27() {
    let c = api_only_cluster();
    let k = c.kubectl_version(27);
    exercise(&k);
    edit_with_script(&k);
}
