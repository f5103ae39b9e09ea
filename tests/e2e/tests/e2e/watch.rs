//! `kubectl get -w` sees creates, updates and deletes.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::cluster;

fn wait_for_line(rx: &mpsc::Receiver<String>, want: impl Fn(&str) -> bool, what: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            let hit = want(&line);
            seen.push(line);
            if hit {
                return;
            }
        }
    }
    panic!("watch did not report {what}; saw:\n{}", seen.join("\n"));
}

#[test]
fn get_watch_sees_create_update_delete() {
    let c = cluster();
    let k = c.kubectl();
    // -o json so each event is printed with its content; --output-watch-events adds the type.
    let mut child = k
        .command(&["get", "configmaps", "-w", "--output-watch-events", "-o", "jsonpath={.type} {.object.metadata.name} {.object.data.v}{\"\\n\"}"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    // Give the watch a moment to be established after its initial list.
    std::thread::sleep(Duration::from_millis(700));
    let mut seen = Vec::new();
    k.ok(&["create", "configmap", "w1", "--from-literal=v=1"]).unwrap();
    wait_for_line(&rx, |l| l.trim() == "ADDED w1 1", "the create", &mut seen);
    k.ok(&["patch", "configmap", "w1", "--type=merge", "-p", r#"{"data":{"v":"2"}}"#]).unwrap();
    wait_for_line(&rx, |l| l.trim() == "MODIFIED w1 2", "the update", &mut seen);
    k.ok(&["delete", "configmap", "w1"]).unwrap();
    wait_for_line(&rx, |l| l.trim() == "DELETED w1 2", "the delete", &mut seen);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn raw_watch_resource_version_semantics() {
    let c = cluster();
    let k = c.kubectl();
    k.ok(&["create", "configmap", "t1"]).unwrap();
    // A watch with a timeout ends by itself and reports events after the given revision.
    let list = k.json(&["get", "--raw", "/api/v1/namespaces/default/configmaps"]).unwrap();
    let rv: i64 = list["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap();
    k.ok(&["create", "configmap", "t2"]).unwrap();
    let out = k.ok(&["get", "--raw", &format!("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=1")]).unwrap();
    let events: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), 1, "{out}");
    assert_eq!(events[0]["type"], "ADDED");
    assert_eq!(events[0]["object"]["metadata"]["name"], "t2");
    // resourceVersion unset: synthetic ADDED for the current state.
    let out = k.ok(&["get", "--raw", "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1"]).unwrap();
    let names: Vec<String> = out.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["object"]["metadata"]["name"].as_str().unwrap().to_string()).collect();
    assert!(names.contains(&"t1".to_string()) && names.contains(&"t2".to_string()), "{out}");
    // Bookmarks with sendInitialEvents mark the end of the initial state.
    let out = k
        .ok(&["get", "--raw", "/api/v1/namespaces/default/configmaps?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1"])
        .unwrap();
    let last: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "BOOKMARK");
    assert_eq!(last["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"], "true");
}

/// Watchers of one object in two versions each get it in their own version, also when the
/// server shares one encoding of an event between watchers of the same version.
#[test]
fn watchers_of_different_versions_get_their_own_encoding() {
    let c = crate::api_only_cluster();
    let k = c.kubectl();
    let rv = k.json(&["get", "--raw", "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers"]).unwrap()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let watch = |version: &str| {
        k.command(&["get", "--raw", &format!("/apis/autoscaling/{version}/namespaces/default/horizontalpodautoscalers?watch=1&timeoutSeconds=4&resourceVersion={rv}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let watchers = [("v1", watch("v1")), ("v2", watch("v2")), ("v2", watch("v2"))];
    k.ok_stdin(
        &["create", "-f", "-"],
        r#"{"apiVersion":"autoscaling/v2","kind":"HorizontalPodAutoscaler","metadata":{"name":"web"},
            "spec":{"scaleTargetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"web"},"minReplicas":1,"maxReplicas":4,
            "metrics":[{"type":"Resource","resource":{"name":"cpu","target":{"type":"Utilization","averageUtilization":60}}}]}}"#,
    )
    .unwrap();
    k.ok(&["delete", "hpa", "web"]).unwrap();
    for (version, child) in watchers {
        let out = child.wait_with_output().unwrap();
        let events: Vec<serde_json::Value> =
            String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["ADDED", "DELETED"], "{version} watcher: {events:?}");
        for e in &events {
            assert_eq!(e["object"]["apiVersion"], format!("autoscaling/{version}"), "{e}");
            if version == "v1" {
                assert_eq!(e["object"]["spec"]["targetCPUUtilizationPercentage"], 60, "{e}");
            } else {
                assert_eq!(e["object"]["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 60, "{e}");
            }
        }
        let deleted_rv = events[1]["object"]["metadata"]["resourceVersion"].as_str().unwrap().parse::<i64>().unwrap();
        let added_rv = events[0]["object"]["metadata"]["resourceVersion"].as_str().unwrap().parse::<i64>().unwrap();
        assert!(deleted_rv > added_rv, "a DELETED event carries the deletion's resourceVersion: {events:?}");
    }
}
