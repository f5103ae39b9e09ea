//! `kubectl get` text output against fixed tables: the columns and cells come from the server's
//! Table responses, so they must read as upstream's printers write them. Ages vary and are
//! masked as `*`.

use chrono::{SecondsFormat, TimeDelta, Utc};
use rkube_testkit::Kubectl;

use crate::api_only_cluster;

const OBJECTS: &str = r#"
apiVersion: v1
kind: Node
metadata:
  name: node-1
  labels: {node-role.kubernetes.io/control-plane: ""}
spec: {unschedulable: true}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: shop, labels: {app: web}}
spec:
  nodeName: node-1
  containers: [{name: nginx, image: "nginx:1.25"}]
---
apiVersion: v1
kind: Pod
metadata: {name: waiting, namespace: shop}
spec:
  initContainers: [{name: setup, image: "busybox:1.36"}]
  containers: [{name: app, image: "busybox:1.36"}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  clusterIP: 10.43.0.100
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: edge, namespace: shop}
spec:
  type: NodePort
  clusterIP: 10.43.0.101
  externalIPs: [192.0.2.10]
  selector: {app: edge, tier: front}
  ports: [{name: https, port: 443, nodePort: 30443}, {name: dns, port: 53, protocol: UDP, nodePort: 30053}]
---
apiVersion: v1
kind: Event
metadata: {name: web-0.pulled, namespace: shop}
involvedObject: {kind: Pod, name: web-0, namespace: shop, fieldPath: "spec.containers{nginx}"}
reason: Pulled
message: Container image "nginx:1.25" already present on machine
type: Normal
source: {component: kubelet, host: node-1}
count: 4
firstTimestamp: "2025-01-01T00:00:00Z"
lastTimestamp: "2025-01-01T00:10:00Z"
"#;

/// Splits `kubectl get` output into cells by the header's column starts (tabwriter aligns every
/// row to them), masking the named columns, and renders each row as `a | b | c`.
fn cells(out: &str, masked: &[&str]) -> Vec<String> {
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default();
    let mut starts = vec![0];
    let bytes = header.as_bytes();
    for i in 2..bytes.len() {
        if bytes[i] != b' ' && bytes[i - 1] == b' ' && bytes[i - 2] == b' ' {
            starts.push(i);
        }
    }
    let split = |line: &str| -> Vec<String> {
        starts
            .iter()
            .enumerate()
            .map(|(n, &s)| {
                let end = starts
                    .get(n + 1)
                    .copied()
                    .unwrap_or(line.len())
                    .min(line.len());
                line.get(s.min(line.len())..end)
                    .unwrap_or("")
                    .trim()
                    .to_string()
            })
            .collect()
    };
    let names = split(header);
    std::iter::once(header)
        .chain(lines)
        .enumerate()
        .map(|(row, line)| {
            split(line)
                .into_iter()
                .zip(&names)
                .map(|(cell, name)| {
                    if row > 0 && masked.contains(&name.as_str()) {
                        "*".to_string()
                    } else {
                        cell
                    }
                })
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect()
}

fn ts(ago: TimeDelta) -> String {
    (Utc::now() - ago).to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn patch_status(k: &Kubectl, target: &[&str], patch: &str) {
    let mut args = vec!["patch"];
    args.extend_from_slice(target);
    args.extend(["--subresource=status", "--type=merge", "-p", patch]);
    k.ok(&args).unwrap();
}

/// Creates the objects and writes the status a kubelet and controllers would have written.
fn populate(k: &Kubectl) {
    k.ok(&["create", "namespace", "shop"]).unwrap();
    // kubectl 1.27 validates client-side from /openapi/v2 in protobuf, which rkube does not
    // serve yet (the OpenAPI work); server-side validation still applies.
    k.ok_stdin(&["create", "--validate=false", "-f", "-"], OBJECTS)
        .unwrap();
    k.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.25",
        "--replicas=2",
        "-n",
        "shop",
    ])
    .unwrap();
    k.ok(&[
        "create",
        "configmap",
        "cfg",
        "--from-literal=a=1",
        "--from-literal=b=2",
        "-n",
        "shop",
    ])
    .unwrap();
    k.ok(&[
        "create",
        "job",
        "once",
        "--image=busybox:1.36",
        "-n",
        "shop",
        "--",
        "true",
    ])
    .unwrap();
    k.ok(&[
        "create",
        "job",
        "done",
        "--image=busybox:1.36",
        "-n",
        "shop",
        "--",
        "true",
    ])
    .unwrap();

    let last_crash = ts(TimeDelta::hours(10) + TimeDelta::seconds(30));
    patch_status(
        k,
        &["pod", "web-0", "-n", "shop"],
        &format!(
            r#"{{"status": {{"phase": "Running", "podIP": "10.42.0.7", "podIPs": [{{"ip": "10.42.0.7"}}],
               "conditions": [{{"type": "Ready", "status": "True"}}],
               "containerStatuses": [{{"name": "nginx", "image": "nginx:1.25", "imageID": "", "ready": true, "restartCount": 2,
                 "started": true, "state": {{"running": {{"startedAt": "{last_crash}"}}}},
                 "lastState": {{"terminated": {{"exitCode": 1, "reason": "Error", "finishedAt": "{last_crash}"}}}}}}]}}}}"#
        ),
    );
    patch_status(
        k,
        &["pod", "waiting", "-n", "shop"],
        r#"{"status": {"phase": "Pending", "initContainerStatuses": [{"name": "setup", "image": "busybox:1.36", "imageID": "",
            "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}}"#,
    );
    patch_status(
        k,
        &["node", "node-1"],
        r#"{"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ok",
            "lastHeartbeatTime": "2025-01-01T00:00:00Z", "lastTransitionTime": "2025-01-01T00:00:00Z"}],
            "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}, {"type": "Hostname", "address": "node-1"}],
            "nodeInfo": {"kubeletVersion": "v1.33.1", "kubeProxyVersion": "", "osImage": "Ubuntu 24.04 LTS", "kernelVersion": "6.8.0-45-generic",
              "containerRuntimeVersion": "containerd://1.7.22", "machineID": "m", "systemUUID": "s", "bootID": "b",
              "architecture": "amd64", "operatingSystem": "linux"}}}"#,
    );
    patch_status(
        k,
        &["deployment", "web", "-n", "shop"],
        r#"{"status": {"replicas": 2, "readyReplicas": 1, "updatedReplicas": 2, "availableReplicas": 1}}"#,
    );
    let start = ts(TimeDelta::seconds(100));
    let end = ts(TimeDelta::seconds(40));
    patch_status(
        k,
        &["job", "done", "-n", "shop"],
        &format!(
            r#"{{"status": {{"startTime": "{start}", "completionTime": "{end}", "succeeded": 1,
               "conditions": [{{"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": "{end}"}},
                              {{"type": "Complete", "status": "True", "lastTransitionTime": "{end}"}}]}}}}"#
        ),
    );
}

fn get(k: &Kubectl, args: &[&str], masked: &[&str]) -> Vec<String> {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    cells(&k.ok(&all).unwrap(), masked)
}

fn tables_read_as_upstream(k: &Kubectl) {
    populate(k);
    let ns = ["-n", "shop"];
    let with_ns =
        |args: &[&'static str]| -> Vec<&'static str> { args.iter().copied().chain(ns).collect() };

    assert_eq!(
        get(k, &with_ns(&["pods"]), &["AGE"]),
        [
            "NAME | READY | STATUS | RESTARTS | AGE",
            "waiting | 0/1 | Init:ImagePullBackOff | 0 | *",
            "web-0 | 1/1 | Running | 2 (10h ago) | *",
        ]
    );
    assert_eq!(
        get(k, &with_ns(&["pods", "-o", "wide"]), &["AGE"]),
        [
            "NAME | READY | STATUS | RESTARTS | AGE | IP | NODE | NOMINATED NODE | READINESS GATES",
            "waiting | 0/1 | Init:ImagePullBackOff | 0 | * | <none> | <none> | <none> | <none>",
            "web-0 | 1/1 | Running | 2 (10h ago) | * | 10.42.0.7 | node-1 | <none> | <none>",
        ]
    );
    assert_eq!(
        get(k, &with_ns(&["deployments"]), &["AGE"]),
        [
            "NAME | READY | UP-TO-DATE | AVAILABLE | AGE",
            "web | 1/2 | 2 | 1 | *"
        ]
    );
    assert_eq!(
        get(k, &with_ns(&["deployments", "-o", "wide"]), &["AGE"]),
        [
            "NAME | READY | UP-TO-DATE | AVAILABLE | AGE | CONTAINERS | IMAGES | SELECTOR",
            "web | 1/2 | 2 | 1 | * | nginx | nginx:1.25 | app=web"
        ]
    );
    assert_eq!(
        get(k, &with_ns(&["services"]), &["AGE"]),
        [
            "NAME | TYPE | CLUSTER-IP | EXTERNAL-IP | PORT(S) | AGE",
            "edge | NodePort | 10.43.0.101 | 192.0.2.10 | 443:30443/TCP,53:30053/UDP | *",
            "web | ClusterIP | 10.43.0.100 | <none> | 80/TCP | *",
        ]
    );
    assert_eq!(
        get(k, &with_ns(&["services", "-o", "wide"]), &["AGE"]),
        [
            "NAME | TYPE | CLUSTER-IP | EXTERNAL-IP | PORT(S) | AGE | SELECTOR",
            "edge | NodePort | 10.43.0.101 | 192.0.2.10 | 443:30443/TCP,53:30053/UDP | * | app=edge,tier=front",
            "web | ClusterIP | 10.43.0.100 | <none> | 80/TCP | * | app=web",
        ]
    );
    assert_eq!(
        get(k, &with_ns(&["configmap", "cfg"]), &["AGE"]),
        ["NAME | DATA | AGE", "cfg | 2 | *"]
    );
    assert_eq!(
        get(k, &with_ns(&["jobs"]), &["AGE"]),
        [
            "NAME | STATUS | COMPLETIONS | DURATION | AGE",
            "done | Complete | 1/1 | 60s | *",
            "once | Running | 0/1 |  | *",
        ]
    );
    assert_eq!(
        get(k, &with_ns(&["events"]), &["LAST SEEN"]),
        [
            "LAST SEEN | TYPE | REASON | OBJECT | MESSAGE",
            "* | Normal | Pulled | pod/web-0 | Container image \"nginx:1.25\" already present on machine",
        ]
    );
    assert_eq!(
        get(
            k,
            &with_ns(&["events", "-o", "wide"]),
            &["LAST SEEN", "FIRST SEEN"]
        ),
        [
            "LAST SEEN | TYPE | REASON | OBJECT | SUBOBJECT | SOURCE | MESSAGE | FIRST SEEN | COUNT | NAME",
            "* | Normal | Pulled | pod/web-0 | spec.containers{nginx} | kubelet, node-1 | Container image \"nginx:1.25\" already present on machine | * | 4 | web-0.pulled",
        ]
    );
    assert_eq!(
        get(k, &["nodes"], &["AGE"]),
        [
            "NAME | STATUS | ROLES | AGE | VERSION",
            "node-1 | Ready,SchedulingDisabled | control-plane | * | v1.33.1"
        ]
    );
    assert_eq!(
        get(k, &["nodes", "-o", "wide"], &["AGE"]),
        [
            "NAME | STATUS | ROLES | AGE | VERSION | INTERNAL-IP | EXTERNAL-IP | OS-IMAGE | KERNEL-VERSION | CONTAINER-RUNTIME",
            "node-1 | Ready,SchedulingDisabled | control-plane | * | v1.33.1 | 192.168.1.10 | <none> | Ubuntu 24.04 LTS | 6.8.0-45-generic | containerd://1.7.22",
        ]
    );
    // Kinds without an upstream printer keep the default columns.
    k.ok(&[
        "create",
        "role",
        "reader",
        "--verb=get",
        "--resource=pods",
        "-n",
        "shop",
    ])
    .unwrap();
    assert_eq!(
        get(k, &with_ns(&["roles"]), &["CREATED AT"]),
        ["NAME | CREATED AT", "reader | *"]
    );
}

#[test]
fn kubectl_1_33_tables() {
    let c = api_only_cluster();
    tables_read_as_upstream(&c.kubectl_version(33));
}

#[test]
fn kubectl_1_32_tables() {
    let c = api_only_cluster();
    tables_read_as_upstream(&c.kubectl_version(32));
}

#[test]
fn kubectl_1_27_tables() {
    let c = api_only_cluster();
    tables_read_as_upstream(&c.kubectl_version(27));
}

#[test]
fn watch_prints_rows_as_they_change() {
    let c = api_only_cluster();
    let k = c.kubectl();
    k.ok(&["create", "namespace", "w"]).unwrap();
    k.ok(&[
        "create",
        "configmap",
        "one",
        "--from-literal=a=1",
        "-n",
        "w",
    ])
    .unwrap();
    // The watch ends when the request times out; kubectl then exits, possibly non-zero.
    let out = k
        .run(&[
            "get",
            "configmaps",
            "one",
            "-n",
            "w",
            "--watch",
            "--request-timeout=2s",
        ])
        .unwrap()
        .stdout;
    let rows = cells(&out, &["AGE"]);
    assert_eq!(
        rows.first().map(String::as_str),
        Some("NAME | DATA | AGE"),
        "{out}"
    );
    assert_eq!(
        rows.get(1).map(String::as_str),
        Some("one | 1 | *"),
        "{out}"
    );
}
