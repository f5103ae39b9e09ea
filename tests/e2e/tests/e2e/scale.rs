//! The scale subresource through `kubectl scale` and raw requests.

use crate::api_only_cluster;

#[test]
fn kubectl_scale_changes_replicas_through_the_scale_subresource() {
    let c = api_only_cluster();
    let k = c.kubectl();
    k.ok(&["create", "deployment", "web", "--image=registry.example/nginx:1.25", "--replicas=1"]).unwrap();
    let out = k.ok(&["scale", "deployment", "web", "--replicas=3"]).unwrap();
    assert_eq!(out.trim(), "deployment.apps/web scaled");
    let d = k.json(&["get", "deployment", "web", "-o", "json"]).unwrap();
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(d["metadata"]["generation"], 2, "a scale is a spec change of the parent");

    let scale = k.json(&["get", "--raw", "/apis/apps/v1/namespaces/default/deployments/web/scale"]).unwrap();
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["spec"]["replicas"], 3);
    assert_eq!(scale["status"]["replicas"], 0);
    assert_eq!(scale["status"]["selector"], "app=web");
    assert_eq!(scale["metadata"]["resourceVersion"], d["metadata"]["resourceVersion"]);

    // --current-replicas is checked against the Scale before the update, as upstream's kubectl does.
    let err = k.fails(&["scale", "deployment", "web", "--current-replicas=2", "--replicas=5"]).unwrap();
    assert!(err.contains("Expected replicas to be 2, was 3"), "{err}");
    k.ok(&["scale", "deployment", "web", "--current-replicas=3", "--replicas=5"]).unwrap();
    assert_eq!(k.json(&["get", "deployment", "web", "-o", "json"]).unwrap()["spec"]["replicas"], 5);

    // A stale resourceVersion in a PUT Scale is a conflict; a negative count is invalid.
    let stale = format!(
        r#"{{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{{"name":"web","namespace":"default","resourceVersion":"{}"}},"spec":{{"replicas":2}}}}"#,
        d["metadata"]["resourceVersion"].as_str().unwrap()
    );
    let o = k.run_stdin(&["replace", "--raw", "/apis/apps/v1/namespaces/default/deployments/web/scale", "-f", "-"], &stale).unwrap();
    assert!(!o.success);
    assert!(o.stderr.contains("the object has been modified"), "{}", o.stderr);
    let err = k.fails(&["scale", "deployment", "web", "--replicas=-1"]).unwrap();
    assert!(err.contains("replicas") , "{err}");

    // JSON patch on the subresource.
    k.ok(&["patch", "deployment", "web", "--subresource=scale", "--type=json", "-p", r#"[{"op":"replace","path":"/spec/replicas","value":4}]"#]).unwrap();
    assert_eq!(k.json(&["get", "deployment", "web", "-o", "json"]).unwrap()["spec"]["replicas"], 4);
    k.ok(&["patch", "deployment", "web", "--subresource=scale", "--type=merge", "-p", r#"{"spec":{"replicas":6}}"#]).unwrap();
    assert_eq!(k.json(&["get", "deployment", "web", "-o", "json"]).unwrap()["spec"]["replicas"], 6);
    let s = k.json(&["get", "deployment", "web", "--subresource=scale", "-o", "json"]).unwrap();
    assert_eq!(s["spec"]["replicas"], 6);
}

#[test]
fn replicasets_statefulsets_and_replication_controllers_scale() {
    let c = api_only_cluster();
    let k = c.kubectl();
    let manifests = r#"
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: rs}
spec:
  replicas: 1
  selector: {matchLabels: {app: rs}}
  template:
    metadata: {labels: {app: rs}}
    spec: {containers: [{name: c, image: busybox:1.36}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: sts}
spec:
  replicas: 1
  serviceName: sts
  selector: {matchExpressions: [{key: app, operator: In, values: [sts]}]}
  template:
    metadata: {labels: {app: sts}}
    spec: {containers: [{name: c, image: busybox:1.36}]}
---
apiVersion: v1
kind: ReplicationController
metadata: {name: rc}
spec:
  replicas: 1
  selector: {app: rc}
  template:
    metadata: {labels: {app: rc}}
    spec: {containers: [{name: c, image: busybox:1.36}]}
"#;
    k.ok_stdin(&["create", "-f", "-"], manifests).unwrap();
    for (kind, path, selector) in [
        ("replicaset/rs", "/apis/apps/v1/namespaces/default/replicasets/rs/scale", "app=rs"),
        ("statefulset/sts", "/apis/apps/v1/namespaces/default/statefulsets/sts/scale", "app in (sts)"),
        ("replicationcontroller/rc", "/api/v1/namespaces/default/replicationcontrollers/rc/scale", "app=rc"),
    ] {
        k.ok(&["scale", kind, "--replicas=2"]).unwrap();
        let s = k.json(&["get", "--raw", path]).unwrap();
        assert_eq!(s["spec"]["replicas"], 2, "{kind}");
        assert_eq!(s["status"]["selector"], selector, "{kind}");
        assert_eq!(k.json(&["get", kind, "-o", "json"]).unwrap()["spec"]["replicas"], 2, "{kind}");
    }
    let err = k.fails(&["get", "--raw", "/apis/apps/v1/namespaces/default/daemonsets/x/scale"]).unwrap();
    assert!(err.contains("NotFound") || err.contains("not found"), "{err}");
}
