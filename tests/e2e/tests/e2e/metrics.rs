//! `metrics.k8s.io` served by rkube from the simulated nodes' `/metrics/resource`, read with
//! `kubectl top` and through the raw API.

use std::time::Duration;

use rkube_testkit::Kubectl;

use crate::scheduling::{Sim, start, wait_for, wait_nodes_ready};

/// A pod pinned to `node`, with the given usage annotations and containers.
fn pod_yaml(name: &str, node: &str, annotations: &str, containers: &[&str]) -> String {
    let containers: String = containers.iter().map(|c| format!("  - name: {c}\n    image: busybox\n")).collect();
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels:\n    app: {name}\n  annotations:\n    {annotations}\nspec:\n  nodeSelector:\n    kubernetes.io/hostname: {node}\n  containers:\n{containers}"
    )
}

/// Rows of a `kubectl top` table without headers, split on whitespace.
fn rows(k: &Kubectl, args: &[&str]) -> Option<Vec<Vec<String>>> {
    let out = k.run(args).ok()?;
    if !out.success {
        return None;
    }
    Some(out.stdout.lines().map(|l| l.split_whitespace().map(str::to_string).collect()).collect())
}

#[test]
fn kubectl_top_reports_simulated_usage() {
    let c = start(&["--metric-resolution=1s"]);
    let k = c.kubectl();
    let _sim = Sim::start(&c, &["--nodes", "2", "--name-prefix", "top", "--cpu", "4", "--memory", "16Gi", "--pod-cpu-usage", "100m", "--pod-memory-usage", "64Mi"]);
    wait_nodes_ready(&k, 2);
    k.ok_stdin(&["apply", "-f", "-"], &pod_yaml("web", "top-0", "note: sim", &["app"])).unwrap();
    k.ok_stdin(&["apply", "-f", "-"], &pod_yaml("busy", "top-0", "sim.rkube.io/cpu-usage: \"250m\"\n    sim.rkube.io/memory-usage: \"100Mi\"", &["a", "b"]))
        .unwrap();
    // A pod no node runs has no metrics.
    k.ok_stdin(&["apply", "-f", "-"], &pod_yaml("pending", "nowhere", "note: sim", &["app"])).unwrap();

    let pods = wait_for("pod metrics", Duration::from_secs(30), || {
        let r = rows(&k, &["top", "pod", "--no-headers"])?;
        (r.len() == 2).then_some(r)
    });
    assert_eq!(pods, vec![vec!["busy", "250m", "100Mi"], vec!["web", "100m", "64Mi"]]);
    let header = k.ok(&["top", "pod", "-l", "app=web"]).unwrap();
    let lines: Vec<Vec<&str>> = header.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines, vec![vec!["NAME", "CPU(cores)", "MEMORY(bytes)"], vec!["web", "100m", "64Mi"]]);
    let containers = rows(&k, &["top", "pod", "busy", "--containers", "--no-headers"]).unwrap();
    assert_eq!(containers, vec![vec!["busy", "a", "125m", "50Mi"], vec!["busy", "b", "125m", "50Mi"]]);
    let all = rows(&k, &["top", "pod", "-A", "--no-headers"]).unwrap();
    assert!(all.iter().any(|r| r[..2] == ["default", "web"]), "{all:?}");

    // Node usage is its pods' plus the simulated system share (50m, 128Mi).
    let nodes = wait_for("node metrics", Duration::from_secs(30), || {
        let r = rows(&k, &["top", "node", "--no-headers"])?;
        (r.len() == 2 && r[0].get(1).map(String::as_str) == Some("400m")).then_some(r)
    });
    assert_eq!(nodes, vec![vec!["top-0", "400m", "10%", "292Mi", "1%"], vec!["top-1", "50m", "1%", "128Mi", "0%"]]);
    let header = k.ok(&["top", "node", "top-1"]).unwrap();
    assert_eq!(header.lines().next().unwrap().split_whitespace().collect::<Vec<_>>(), ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]);

    // The raw objects, and metrics-server's errors.
    let web = k.json(&["get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web"]).unwrap();
    assert_eq!(web["kind"], "PodMetrics");
    assert_eq!(web["metadata"]["labels"]["app"], "web");
    assert_eq!(web["containers"][0]["usage"]["cpu"], "100m");
    assert!(web["window"].as_str().unwrap().ends_with('s'), "{web}");
    assert!(web["timestamp"].as_str().unwrap().ends_with('Z'), "{web}");
    let err = k.fails(&["top", "pod", "pending"]).unwrap();
    assert!(err.contains("podmetrics.metrics.k8s.io \"default/pending\" not found"), "{err}");
    let err = k.fails(&["top", "pod", "ghost"]).unwrap();
    assert!(err.contains("pods \"ghost\" not found"), "{err}");
    let groups = k.ok(&["api-resources", "--api-group=metrics.k8s.io", "--no-headers"]).unwrap();
    assert!(groups.contains("NodeMetrics") && groups.contains("PodMetrics"), "{groups}");

    // `kubectl get` prints metrics-server's table.
    let table = k.ok(&["get", "podmetrics", "busy"]).unwrap();
    let lines: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], ["NAME", "CPU", "MEMORY", "WINDOW"]);
    assert_eq!(lines[1][..3], ["busy", "250m", "100Mi"]);
    let nodes = k.ok(&["get", "nodemetrics", "top-1", "--no-headers"]).unwrap();
    assert_eq!(nodes.split_whitespace().take(3).collect::<Vec<_>>(), ["top-1", "50m", "128Mi"]);

    // `view` includes metrics (system:aggregated-metrics-reader, as metrics-server installs it).
    k.ok(&["create", "rolebinding", "viewer", "--clusterrole=view", "--user=viewer"]).unwrap();
    let viewer = c.user_kubectl("viewer", &[]).unwrap();
    wait_for("a viewer reading pod metrics", Duration::from_secs(10), || viewer.ok(&["top", "pod", "web", "--no-headers"]).ok());

    // A changed annotation takes effect.
    k.ok(&["annotate", "pod", "web", "--overwrite", "sim.rkube.io/cpu-usage=700m"]).unwrap();
    wait_for("new usage", Duration::from_secs(30), || {
        let r = rows(&k, &["top", "pod", "web", "--no-headers"])?;
        (r == vec![vec!["web", "700m", "64Mi"]]).then_some(())
    });
}
