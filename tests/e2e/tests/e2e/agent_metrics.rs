//! Resource metrics and endpoint security of the real node agent: `kubectl top node|pod` from
//! the agent's `/metrics/resource`, `/stats/summary` through `nodes/{name}/proxy`, and the
//! agent's HTTPS endpoint refusing callers without credentials (401) or without RBAC on the
//! node subresource (403) while the API server's own calls (logs, top) keep working.
//!
//! Needs what `agent.rs` needs (root, containerd, runc, CNI plugins, docker-registry,
//! busybox-static) plus curl.

use std::process::Command;
use std::time::{Duration, Instant};

use rkube_testkit::Kubectl;

use crate::agent::{RuntimeEnv, skip_without_runtime, wait_for};


/// A pod that keeps a little CPU busy (a counting loop with pauses) and 8 MB resident (a shell
/// variable), so `kubectl top` shows at least 1m and 1Mi for it.
fn start_busy_pod(k: &Kubectl, image: &str, name: &str) -> anyhow::Result<()> {
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"NAME"},"spec":{"terminationGracePeriodSeconds":1,
        "containers":[{"name":"NAME","image":"IMAGE","command":["/bin/sh","-c",
        "x=$(/bin/busybox head -c 8000000 /dev/zero | /bin/busybox tr '\\0' a); echo started; while true; do i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; sleep 0.2; done"]}]}}"#
        .replace("NAME", name)
        .replace("IMAGE", image);
    k.ok_stdin(&["apply", "-f", "-"], &pod)?;
    wait_for(
        k,
        name,
        "{.status.phase}",
        "Running",
        Duration::from_secs(60),
    )
}

/// CPU in millicores and memory in MiB from a `kubectl top` row (`NAME 12m 1Mi` or
/// `NAME 120m 6% 900Mi 4%`).
fn usage(row: &str) -> Option<(u64, u64)> {
    let columns: Vec<&str> = row.split_whitespace().collect();
    let cpu = columns.get(1)?.strip_suffix('m')?.parse().ok()?;
    let memory = columns
        .iter()
        .skip(2)
        .find_map(|c| c.strip_suffix("Mi"))?
        .parse()
        .ok()?;
    Some((cpu, memory))
}

/// Runs `kubectl top …` until it shows non-zero CPU and memory.
fn top_until_busy(k: &Kubectl, args: &[&str]) -> anyhow::Result<(u64, u64)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    while Instant::now() < deadline {
        let out = k.run(args)?;
        last = format!("{}{}", out.stdout, out.stderr);
        if let Some((cpu, memory)) = out.stdout.lines().next().and_then(usage)
            && cpu > 0
            && memory > 0
        {
            return Ok((cpu, memory));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    anyhow::bail!("kubectl {}: no usage yet: {last}", args.join(" "))
}

fn number(v: &serde_json::Value, pointer: &str) -> u64 {
    v.pointer(pointer)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0)
}

#[test]
fn kubectl_top_and_stats_summary_show_a_real_pod() -> anyhow::Result<()> {
    if skip_without_runtime("kubectl_top_and_stats_summary_show_a_real_pod")? {
        return Ok(());
    }
    let env = RuntimeEnv::start()?;
    let cluster = env.cluster_with(&["--metric-resolution=2s"])?;
    let k = cluster.kubectl();
    start_busy_pod(&k, &env.image(), "busy")?;

    let (cpu, memory) = top_until_busy(&k, &["top", "pod", "busy", "--no-headers"])?;
    assert!(cpu > 0 && memory > 0, "{cpu}m {memory}Mi");
    let (node_cpu, node_memory) = top_until_busy(&k, &["top", "node", "--no-headers"])?;
    assert!(
        node_cpu > 0 && node_memory > 0,
        "node {node_cpu}m {node_memory}Mi"
    );

    // The kubelet's Summary through the API server's node proxy.
    let raw = k.ok(&[
        "get",
        "--raw",
        "/api/v1/nodes/agent-e2e/proxy/stats/summary",
    ])?;
    let summary: serde_json::Value = serde_json::from_str(&raw)?;
    assert_eq!(summary["node"]["nodeName"], "agent-e2e", "{raw}");
    for pointer in [
        "/node/cpu/usageCoreNanoSeconds",
        "/node/memory/workingSetBytes",
        "/node/memory/availableBytes",
        "/node/fs/capacityBytes",
        "/node/rlimit/maxpid",
    ] {
        assert!(number(&summary, pointer) > 0, "{pointer}: {raw}");
    }
    let pods = summary["pods"].as_array().cloned().unwrap_or_default();
    let pod = pods
        .iter()
        .find(|p| p["podRef"]["name"] == "busy")
        .ok_or_else(|| anyhow::anyhow!("no stats of pod busy: {raw}"))?;
    assert_eq!(pod["podRef"]["namespace"], "default");
    let uid = k.ok(&["get", "pod", "busy", "-o", "jsonpath={.metadata.uid}"])?;
    assert_eq!(pod["podRef"]["uid"], uid.as_str());
    let container = &pod["containers"][0];
    assert_eq!(container["name"], "busy", "{pod}");
    for pointer in [
        "/cpu/usageCoreNanoSeconds",
        "/memory/workingSetBytes",
        "/rootfs/capacityBytes",
        "/logs/usedBytes",
    ] {
        assert!(number(container, pointer) > 0, "container {pointer}: {pod}");
    }
    assert!(number(pod, "/cpu/usageCoreNanoSeconds") > 0, "{pod}");
    assert!(number(pod, "/memory/workingSetBytes") > 0, "{pod}");
    assert!(number(pod, "/ephemeral-storage/usedBytes") > 0, "{pod}");
    // The ServiceAccount token volume is one of the pod's volumes.
    let volumes = pod["volume"].as_array().cloned().unwrap_or_default();
    assert!(
        volumes.iter().any(|v| v["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("kube-api-access-"))),
        "{pod}"
    );
    let cpu_only = k.ok(&[
        "get",
        "--raw",
        "/api/v1/nodes/agent-e2e/proxy/stats/summary?only_cpu_and_memory=true",
    ])?;
    let cpu_only: serde_json::Value = serde_json::from_str(&cpu_only)?;
    assert!(cpu_only["node"].get("fs").is_none(), "{cpu_only}");
    assert!(number(&cpu_only, "/node/memory/workingSetBytes") > 0);

    // The Prometheus text the scraper reads, labelled as the kubelet labels it.
    let text = k.ok(&[
        "get",
        "--raw",
        "/api/v1/nodes/agent-e2e/proxy/metrics/resource",
    ])?;
    for series in [
        "container_cpu_usage_seconds_total{container=\"busy\",namespace=\"default\",pod=\"busy\"} ",
        "container_memory_working_set_bytes{container=\"busy\",namespace=\"default\",pod=\"busy\"} ",
        "container_start_time_seconds{container=\"busy\",namespace=\"default\",pod=\"busy\"} ",
        "pod_cpu_usage_seconds_total{namespace=\"default\",pod=\"busy\"} ",
        "node_cpu_usage_seconds_total ",
        "node_memory_working_set_bytes ",
        "resource_scrape_error 0",
    ] {
        assert!(text.contains(series), "{series}: {text}");
    }
    // A node that does not exist.
    let missing = k.run(&["get", "--raw", "/api/v1/nodes/nope/proxy/stats/summary"])?;
    assert!(
        missing.stderr.contains("nodes \"nope\" not found"),
        "{}",
        missing.stderr
    );

    k.ok(&["delete", "pod", "busy", "--wait=true", "--timeout=60s"])?;
    Ok(())
}

/// `curl -sk` against the agent: (status, body); status 0 when no HTTP answer came.
fn curl(url: &str, token: Option<&str>) -> anyhow::Result<(u16, String)> {
    curl_with(url, token, None)
}

/// [`curl`] presenting a client certificate and key (PEM files).
fn curl_with(
    url: &str,
    token: Option<&str>,
    client: Option<(&std::path::Path, &std::path::Path)>,
) -> anyhow::Result<(u16, String)> {
    let mut cmd = Command::new("curl");
    cmd.args(["-sk", "-w", "\n%{http_code}", url]);
    if let Some(t) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    if let Some((cert, key)) = client {
        cmd.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    let out = cmd.output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    Ok((code.trim().parse().unwrap_or(0), body.to_string()))
}

#[test]
fn agent_endpoint_requires_credentials_and_rbac() -> anyhow::Result<()> {
    if skip_without_runtime("agent_endpoint_requires_credentials_and_rbac")? {
        return Ok(());
    }
    let env = RuntimeEnv::start()?;
    let cluster = env.cluster_with(&["--metric-resolution=2s"])?;
    let k = cluster.kubectl();
    let address = k.ok(&[
        "get",
        "node",
        "agent-e2e",
        "-o",
        "jsonpath={.status.addresses[?(@.type==\"InternalIP\")].address}:{.status.daemonEndpoints.kubeletEndpoint.Port}",
    ])?;
    let base = format!("https://{address}");

    // No credentials: 401, whatever the path.
    for path in [
        "/metrics/resource",
        "/stats/summary",
        "/healthz",
        "/containerLogs/default/x/y",
    ] {
        assert_eq!(
            curl(&format!("{base}{path}"), None)?,
            (401, "Unauthorized".to_string()),
            "{path}"
        );
    }
    // A token the API server does not know: 401.
    assert_eq!(
        curl(&format!("{base}/metrics/resource"), Some("not-a-token"))?.0,
        401
    );

    // A ServiceAccount without RBAC on the node: 403 naming the subresource(s) asked for.
    k.ok(&["create", "serviceaccount", "nobody"])?;
    let nobody = k.ok(&["create", "token", "nobody"])?;
    let nobody = nobody.trim();
    let forbidden = |path: &str, subresources: &str| -> anyhow::Result<()> {
        let (code, body) = curl(&format!("{base}{path}"), Some(nobody))?;
        assert_eq!(code, 403, "{path}: {body}");
        assert_eq!(
            body,
            format!(
                "Forbidden (user=system:serviceaccount:default:nobody, verb=get, resource=nodes, subresource(s)=[{subresources}])"
            )
        );
        Ok(())
    };
    forbidden("/metrics/resource", "metrics")?;
    forbidden("/stats/summary", "stats")?;
    forbidden("/containerLogs/default/x/y", "proxy")?;
    forbidden("/healthz", "healthz proxy")?;

    // A ServiceAccount granted nodes/metrics reads metrics, and only metrics.
    k.ok(&["create", "serviceaccount", "monitor"])?;
    k.ok(&[
        "create",
        "clusterrole",
        "node-metrics",
        "--verb=get",
        "--resource=nodes/metrics",
    ])?;
    k.ok(&[
        "create",
        "clusterrolebinding",
        "monitor-node-metrics",
        "--clusterrole=node-metrics",
        "--serviceaccount=default:monitor",
    ])?;
    let monitor = k.ok(&["create", "token", "monitor"])?;
    let monitor = monitor.trim();
    let (code, body) = curl(&format!("{base}/metrics/resource"), Some(monitor))?;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("node_cpu_usage_seconds_total "), "{body}");
    let (code, _) = curl(&format!("{base}/stats/summary"), Some(monitor))?;
    assert_eq!(code, 403);

    // A client certificate of the cluster CA names the user (CN); one of another CA is refused
    // in the TLS handshake.
    let viewer = cluster.user_kubectl("viewer", &[])?;
    let certs = tempfile::tempdir()?;
    let (cert, key) = (
        certs.path().join("viewer.crt"),
        certs.path().join("viewer.key"),
    );
    for (field, file) in [
        ("client-certificate-data", &cert),
        ("client-key-data", &key),
    ] {
        let data = viewer.ok(&[
            "config",
            "view",
            "--raw",
            "-o",
            &format!("jsonpath={{.users[0].user.{field}}}"),
        ])?;
        std::fs::write(
            file,
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, data.trim())?,
        )?;
    }
    let (code, body) = curl_with(
        &format!("{base}/metrics/resource"),
        None,
        Some((&cert, &key)),
    )?;
    assert_eq!(
        (code, body.as_str()),
        (
            403,
            "Forbidden (user=viewer, verb=get, resource=nodes, subresource(s)=[metrics])"
        )
    );
    let foreign = rcgen::generate_simple_self_signed(vec!["viewer".to_string()])?;
    std::fs::write(&cert, foreign.cert.pem())?;
    std::fs::write(&key, foreign.signing_key.serialize_pem())?;
    let (code, _) = curl_with(
        &format!("{base}/metrics/resource"),
        None,
        Some((&cert, &key)),
    )?;
    assert_eq!(code, 0, "a certificate of another CA got an HTTP answer");

    // The API server's own calls authenticate with its kubelet client certificate.
    start_busy_pod(&k, &env.image(), "busy")?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut logs = String::new();
    while Instant::now() < deadline && logs.is_empty() {
        logs = k.ok(&["logs", "busy"]).unwrap_or_default();
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(logs, "started\n");
    let (cpu, _) = top_until_busy(&k, &["top", "pod", "busy", "--no-headers"])?;
    assert!(cpu > 0);
    // And a user of the API needs nodes/proxy there before anything reaches the agent.
    let refused = viewer.run(&[
        "get",
        "--raw",
        "/api/v1/nodes/agent-e2e/proxy/stats/summary",
    ])?;
    assert!(
        refused
            .stderr
            .contains("cannot get resource \"nodes/proxy\""),
        "{}",
        refused.stderr
    );

    k.ok(&["delete", "pod", "busy", "--wait=true", "--timeout=60s"])?;
    Ok(())
}
