//! Everyday verbs on everyday kinds, with kubectl's generators (which send protobuf bodies).

use crate::cluster;

#[test]
fn create_get_list_delete_with_generators() {
    let c = cluster();
    let k = c.kubectl();
    k.ok(&["create", "namespace", "team-a"]).unwrap();
    let n = ["-n", "team-a"];
    let with_ns = |args: &[&'static str]| -> Vec<&'static str> { n.iter().copied().chain(args.iter().copied()).collect() };
    k.ok(&with_ns(&["create", "configmap", "cfg", "--from-literal=a=1", "--from-literal=b=two"])).unwrap();
    k.ok(&with_ns(&["create", "secret", "generic", "s1", "--from-literal=password=hunter2"])).unwrap();
    k.ok(&with_ns(&["create", "service", "clusterip", "web", "--tcp=80:8080"])).unwrap();
    k.ok(&with_ns(&["create", "deployment", "web", "--image=registry.example/nginx:1.25", "--replicas=2"])).unwrap();
    k.ok(&with_ns(&["create", "job", "once", "--image=busybox:1.36", "--", "true"])).unwrap();
    k.ok(&with_ns(&["create", "role", "reader", "--verb=get,list", "--resource=pods"])).unwrap();
    k.ok(&with_ns(&["run", "p1", "--image=busybox:1.36", "--restart=Never", "--", "sleep", "3600"])).unwrap();

    let cm = k.json(&with_ns(&["get", "configmap", "cfg", "-o", "json"])).unwrap();
    assert_eq!(cm["data"]["b"], "two");
    assert!(cm["metadata"]["uid"].as_str().is_some_and(|u| u.len() == 36));
    assert!(cm["metadata"]["resourceVersion"].as_str().is_some_and(|r| r.parse::<i64>().is_ok()));
    let s = k.json(&with_ns(&["get", "secret", "s1", "-o", "json"])).unwrap();
    assert_eq!(s["data"]["password"], "aHVudGVyMg==");
    assert_eq!(s["type"], "Opaque");
    let svc = k.json(&with_ns(&["get", "svc", "web", "-o", "json"])).unwrap();
    let ip = svc["spec"]["clusterIP"].as_str().unwrap();
    assert!(ip.starts_with("10.43."), "cluster IP allocated from the service CIDR: {ip}");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080);
    let d = k.json(&with_ns(&["get", "deploy", "web", "-o", "json"])).unwrap();
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["image"], "registry.example/nginx:1.25");
    // Upstream defaults.
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
    assert_eq!(d["metadata"]["generation"], 1);
    let pod = k.json(&with_ns(&["get", "pod", "p1", "-o", "json"])).unwrap();
    assert_eq!(pod["spec"]["restartPolicy"], "Never");
    assert_eq!(pod["spec"]["dnsPolicy"], "ClusterFirst");
    assert_eq!(pod["spec"]["terminationGracePeriodSeconds"], 30);
    assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], "IfNotPresent");
    assert_eq!(pod["status"]["phase"], "Pending");
    assert_eq!(pod["status"]["qosClass"], "BestEffort");
    let job = k.json(&with_ns(&["get", "job", "once", "-o", "json"])).unwrap();
    assert_eq!(job["spec"]["backoffLimit"], 6);
    let role = k.json(&with_ns(&["get", "role", "reader", "-o", "json"])).unwrap();
    assert_eq!(role["rules"][0]["verbs"], serde_json::json!(["get", "list"]));

    // -o name, jsonpath, yaml.
    let names = k.ok(&with_ns(&["get", "configmaps,secrets", "-o", "name"])).unwrap();
    assert!(names.contains("configmap/cfg") && names.contains("secret/s1"), "{names}");
    let jp = k.ok(&with_ns(&["get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}"])).unwrap();
    assert_eq!(jp, "registry.example/nginx:1.25");
    let yaml = k.ok(&with_ns(&["get", "configmap", "cfg", "-o", "yaml"])).unwrap();
    assert!(yaml.contains("kind: ConfigMap") && yaml.contains("  a: \"1\""), "{yaml}");

    for (kind, name) in [("configmap", "cfg"), ("secret", "s1"), ("service", "web"), ("deployment", "web"), ("job", "once"), ("role", "reader"), ("pod", "p1")] {
        let out = k.ok(&with_ns(&["delete", kind, name])).unwrap();
        assert!(out.contains("deleted"), "{out}");
        let err = k.fails(&with_ns(&["get", kind, name])).unwrap();
        assert!(err.contains("NotFound") || err.contains("not found"), "{err}");
    }
    k.ok(&["delete", "namespace", "team-a", "--timeout=30s"]).unwrap();
    let err = k.fails(&["get", "namespace", "team-a"]).unwrap();
    assert!(err.contains("namespaces \"team-a\" not found"), "{err}");
}

#[test]
fn create_in_missing_namespace_and_duplicates_fail_like_upstream() {
    let c = cluster();
    let k = c.kubectl();
    let err = k.fails(&["create", "configmap", "x", "-n", "nope"]).unwrap();
    assert!(err.contains("namespaces \"nope\" not found"), "{err}");
    k.ok(&["create", "configmap", "x"]).unwrap();
    let err = k.fails(&["create", "configmap", "x"]).unwrap();
    assert!(err.contains("configmaps \"x\" already exists"), "{err}");
    let err = k.fails(&["create", "configmap", "Bad_Name"]).unwrap();
    assert!(err.contains("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\""), "{err}");
}

#[test]
fn conflicting_update_is_rejected() {
    let c = cluster();
    let k = c.kubectl();
    k.ok(&["create", "configmap", "cc", "--from-literal=v=1"]).unwrap();
    let mut stale = k.json(&["get", "configmap", "cc", "-o", "json"]).unwrap();
    k.ok(&["patch", "configmap", "cc", "--type=merge", "-p", r#"{"data":{"v":"2"}}"#]).unwrap();
    stale["data"]["v"] = "3".into();
    let o = k.run_stdin(&["replace", "-f", "-"], &stale.to_string()).unwrap();
    assert!(!o.success);
    assert!(
        o.stderr.contains("Operation cannot be fulfilled on configmaps \"cc\": the object has been modified; please apply your changes to the latest version and try again"),
        "{}",
        o.stderr
    );
    let now = k.json(&["get", "configmap", "cc", "-o", "json"]).unwrap();
    assert_eq!(now["data"]["v"], "2");
}

#[test]
fn finalizer_holds_delete_until_removed() {
    let c = cluster();
    let k = c.kubectl();
    k.ok_stdin(
        &["create", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"held","finalizers":["example.com/hold"]},"data":{"a":"b"}}"#,
    )
    .unwrap();
    k.ok(&["delete", "configmap", "held", "--wait=false"]).unwrap();
    let cm = k.json(&["get", "configmap", "held", "-o", "json"]).unwrap();
    assert!(cm["metadata"]["deletionTimestamp"].is_string(), "{cm}");
    k.ok(&["patch", "configmap", "held", "--type=json", "-p", r#"[{"op":"remove","path":"/metadata/finalizers"}]"#]).unwrap();
    let err = k.fails(&["get", "configmap", "held"]).unwrap();
    assert!(err.contains("not found"), "{err}");
}
