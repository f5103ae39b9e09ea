//! OpenAPI as kubectl uses it: `explain` (v3, and v2 protobuf for kubectl 1.27), client-side
//! apply's strategic merge (kubectl 1.27 downloads `/openapi/v2` in gnostic protobuf and fails
//! the command if it cannot parse it), and `kind: List` manifests.

use serde_json::Value;

use crate::cluster;

const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
    tier: frontend
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
      - name: web
        image: registry.example/nginx:1.25
        ports:
        - containerPort: 80
        resources:
          limits:
            cpu: 1
            memory: 64Mi
      - name: sidecar
        image: registry.example/busybox:1
";

fn explain_strategy(minor: u32) {
    let c = cluster();
    let out = c.kubectl_version(minor).ok(&["explain", "deployment.spec.strategy"]).unwrap();
    for expected in [
        "KIND:       Deployment",
        "FIELD: strategy <DeploymentStrategy>",
        "The deployment strategy to use to replace existing pods with new ones.",
        "DeploymentStrategy describes how to replace existing pods with new ones.",
        "rollingUpdate\t<RollingUpdateDeployment>",
        "Rolling update config params. Present only if DeploymentStrategyType =",
        "type\t<string>",
        "Type of deployment. Can be \"Recreate\" or \"RollingUpdate\". Default is",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

#[test]
fn explain_deployment_strategy_1_33() {
    explain_strategy(33);
}

#[test]
fn explain_deployment_strategy_1_27() {
    explain_strategy(27);
}

/// kubectl 1.27's older explain reads the definitions from the gnostic protobuf `/openapi/v2`.
#[test]
fn explain_from_openapi_v2_protobuf_1_27() {
    let c = cluster();
    let args = ["explain", "deployment.spec.strategy", "--output", "plaintext-openapiv2"];
    let out = c.kubectl_version(27).ok(&args).unwrap();
    for expected in [
        "KIND:     Deployment\nVERSION:  apps/v1\n",
        "RESOURCE: strategy <Object>",
        "     The deployment strategy to use to replace existing pods with new ones.",
        "   rollingUpdate\t<Object>",
        "   type\t<string>",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

#[test]
fn explain_pods_recursive() {
    let c = cluster();
    let out = c.kubectl_version(33).ok(&["explain", "pods", "--recursive"]).unwrap();
    assert!(out.starts_with("KIND:       Pod\nVERSION:    v1\n"), "{out}");
    // Required fields are marked as upstream marks them; metadata is optional.
    assert!(out.contains("\n    containers\t<[]Container> -required-\n"), "{out}");
    assert!(out.contains("\n  metadata\t<ObjectMeta>\n"), "{out}");
    assert!(out.contains("\n      ports\t<[]ContainerPort>\n        containerPort\t<integer> -required-\n"), "{out}");
    assert!(out.contains("\n    nodeSelector\t<map[string]string>\n"), "{out}");
    assert!(out.lines().count() > 1000, "only {} lines", out.lines().count());
}

#[test]
fn kubectl_1_27_apply_updates_image_and_removes_label() {
    let c = cluster();
    let k = c.kubectl_version(27);
    let created = k.run_stdin(&["apply", "-f", "-", "-v=6"], DEPLOYMENT).unwrap();
    assert!(created.success, "{}", created.stderr);
    assert_eq!(created.stdout.trim(), "deployment.apps/web created");
    assert!(created.stderr.contains("/openapi/v2?timeout=32s 200 OK"), "kubectl 1.27 reads the protobuf OpenAPI v2: {}", created.stderr);

    let changed = DEPLOYMENT.replace("nginx:1.25", "nginx:1.26").replace("    tier: frontend\n", "");
    let patched = k.run_stdin(&["apply", "-f", "-", "-v=8"], &changed).unwrap();
    assert!(patched.success, "{}", patched.stderr);
    assert_eq!(patched.stdout.trim(), "deployment.apps/web configured");
    // A strategic merge patch keyed by container name, as the merge key in the OpenAPI says.
    assert!(patched.stderr.contains("$setElementOrder/containers"), "{}", patched.stderr);

    let d = k.json(&["get", "deployment", "web", "-o", "json"]).unwrap();
    assert_eq!(d["metadata"]["labels"], serde_json::json!({"app": "web"}));
    let containers = d["spec"]["template"]["spec"]["containers"].as_array().unwrap();
    let images: Vec<&str> = containers.iter().filter_map(|c| c["image"].as_str()).collect();
    assert_eq!(images, ["registry.example/nginx:1.26", "registry.example/busybox:1"]);
    assert_eq!(containers[0]["ports"][0]["containerPort"], 80);
}

#[test]
fn kubectl_1_33_applies_a_list() {
    let c = cluster();
    let k = c.kubectl_version(33);
    let list = "\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: settings
  data:
    mode: blue
- apiVersion: v1
  kind: Service
  metadata:
    name: web
  spec:
    selector:
      app: web
    ports:
    - port: 80
      targetPort: 8080
";
    let out = k.ok_stdin(&["apply", "-f", "-"], list).unwrap();
    assert_eq!(out, "configmap/settings created\nservice/web created\n");
    let out = k.ok_stdin(&["apply", "-f", "-"], &list.replace("mode: blue", "mode: green")).unwrap();
    assert_eq!(out, "configmap/settings configured\nservice/web unchanged\n");
    let cm = k.json(&["get", "configmap", "settings", "-o", "json"]).unwrap();
    assert_eq!(cm["data"]["mode"], "green");
}

#[test]
fn documents_name_every_group_version_and_kind() {
    let c = cluster();
    let k = c.kubectl_version(33);
    let root: Value = serde_json::from_str(&k.ok(&["get", "--raw", "/openapi/v3"]).unwrap()).unwrap();
    let url = root["paths"]["apis/apps/v1"]["serverRelativeURL"].as_str().unwrap();
    assert!(url.starts_with("/openapi/v3/apis/apps/v1?hash=") && url.len() == "/openapi/v3/apis/apps/v1?hash=".len() + 128, "{url}");
    assert!(root["paths"]["api/v1"].is_object() && root["paths"]["apis/batch/v1"].is_object(), "{root}");
    let apps: Value = serde_json::from_str(&k.ok(&["get", "--raw", url]).unwrap()).unwrap();
    let schemas = &apps["components"]["schemas"];
    assert_eq!(schemas["io.k8s.api.apps.v1.DeploymentList"]["x-kubernetes-group-version-kind"][0]["kind"], "DeploymentList");
    let containers = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-list-map-keys"], serde_json::json!(["name"]));

    let v2: Value = serde_json::from_str(&k.ok(&["get", "--raw", "/openapi/v2"]).unwrap()).unwrap();
    assert_eq!(v2["swagger"], "2.0");
    let ports = &v2["definitions"]["io.k8s.api.core.v1.Container"]["properties"]["ports"];
    assert_eq!(ports["x-kubernetes-list-map-keys"], serde_json::json!(["containerPort", "protocol"]));
    assert_eq!(ports["x-kubernetes-patch-merge-key"], "containerPort");
    let patch = &v2["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(patch["operationId"], "patchAppsV1NamespacedDeployment");
    assert!(patch["parameters"].as_array().unwrap().iter().any(|p| p["name"] == "fieldValidation"), "{patch}");
}
