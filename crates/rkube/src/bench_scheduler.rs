//! `rkube bench scheduler`: scheduling throughput of 1,000 pods on 100, 1,000 and 5,000
//! simulated nodes, each run on a fresh in-process server (temporary data directory) with the
//! in-process scheduler and `rkube sim` nodes renewing their Leases as kubelets would.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, PostParams};

const PODS: usize = 1000;
const NODE_COUNTS: [usize; 3] = [100, 1000, 5000];
const CONCURRENCY: usize = 32;

fn pod(i: usize) -> Result<Pod> {
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("bench-{i:05}"), "labels": {"app": "bench"}},
        "spec": {"restartPolicy": "Always", "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}
    }))?)
}

async fn one_run(nodes: usize) -> Result<(Duration, Duration)> {
    let dir = tempfile::Builder::new().prefix("rkube-bench-sched-").tempdir()?;
    let cfg = rkube_cluster::ServerConfig {
        data_dir: dir.path().to_path_buf(),
        bind_address: "127.0.0.1".parse()?,
        secure_port: 0,
        datastore: None,
        tls_sans: vec![],
        service_cidr: "10.43.0.0/16".into(),
        disable: vec!["node-lifecycle".into()],
        node_monitor_grace_period: Duration::from_secs(40),
        cluster_signing_duration: rkube_controllers::csr_signing::DEFAULT_SIGNING_DURATION,
        // Simulated nodes bring their own pod CIDRs.
        node_ipam: None,
        authentication: Default::default(),
        iam: None,
        default_local_storage_path: None,
        encryption_provider_config: None,
        disable_admission_plugins: vec![],
        admission_control_config_file: None,
        audit_policy_file: None,
        audit_log_path: None,
        // Scraping every simulated node would compete with what is measured.
        metric_resolution: std::time::Duration::from_secs(24 * 3600),
        horizontal_pod_autoscaler_sync_period: std::time::Duration::from_secs(15),
    };
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        rkube_cluster::run_server(
            cfg,
            async {
                let _ = stop_rx.await;
            },
            move |_, kubeconfig| {
                let _ = ready_tx.send(kubeconfig);
            },
        )
        .await
    });
    let kubeconfig = ready_rx.await.map_err(|_| anyhow!("server did not start"))?;
    let client = rkube_scheduler::client_from_kubeconfig(&kubeconfig).await?;

    let (sim_stop_tx, sim_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sim_config =
        rkube_sim::SimConfig { nodes, name_prefix: "bench".into(), cpu: "32".into(), memory: "64Gi".into(), ..Default::default() };
    let sim = tokio::spawn(rkube_sim::run(client.clone(), sim_config, async {
        let _ = sim_stop_rx.await;
    }));
    let register_start = Instant::now();
    let node_api: Api<Node> = Api::all(client.clone());
    loop {
        let ready = node_api
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|n| n.status.as_ref().and_then(|s| s.allocatable.as_ref()).is_some())
            .count();
        if ready >= nodes {
            break;
        }
        if register_start.elapsed() > Duration::from_secs(600) {
            return Err(anyhow!("only {ready}/{nodes} nodes registered"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let registered = register_start.elapsed();
    // Let the scheduler's cache take in the nodes before timing.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let start = Instant::now();
    futures::stream::iter(0..PODS)
        .map(|i| {
            let pods = pods.clone();
            async move { pods.create(&PostParams::default(), &pod(i)?).await.map_err(anyhow::Error::from) }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    loop {
        let bound = pods
            .list(&ListParams::default().labels("app=bench"))
            .await?
            .items
            .iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some())
            .count();
        if bound >= PODS {
            break;
        }
        if start.elapsed() > Duration::from_secs(600) {
            return Err(anyhow!("only {bound}/{PODS} pods scheduled after 10 minutes"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let scheduled = start.elapsed();
    let _ = sim_stop_tx.send(());
    let _ = sim.await;
    let _ = stop_tx.send(());
    let _ = server.await;
    Ok((registered, scheduled))
}

/// Runs the three sizes and prints a table.
pub async fn run() -> Result<()> {
    println!("{:<34} {:>16} {:>22}", "scenario", "nodes registered", "scheduling throughput");
    for nodes in NODE_COUNTS {
        let (registered, scheduled) = one_run(nodes).await?;
        println!(
            "{:<34} {:>14.1} s {:>16.0} pods/s",
            format!("{PODS} pods on {nodes} simulated nodes"),
            registered.as_secs_f64(),
            PODS as f64 / scheduled.as_secs_f64()
        );
    }
    println!("(throughput: from the first pod create to the last pod bound, creates 32 at a time)");
    Ok(())
}
