//! `rkube bench deployment`: end-to-end time for a 10,000-replica Deployment to become available
//! on 1,000 simulated nodes — the Deployment and ReplicaSet controllers, admission, the
//! scheduler and the simulated kubelets all working through one in-process server, as in
//! `rkube server` + `rkube sim`.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams, PostParams};

const REPORT_EVERY_SECS: u64 = 1;

/// Size of the run (defaults: the 10,000 replicas on 1,000 nodes).
pub struct DeploymentBench {
    pub replicas: i32,
    pub nodes: usize,
}

fn deployment(replicas: i32) -> Result<Deployment> {
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": {"name": "bench", "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "bench"}},
            "template": {
                "metadata": {"labels": {"app": "bench"}},
                "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}
            }
        }
    }))?)
}

/// Progress of the rollout at one instant.
#[derive(Default, Clone, Copy, PartialEq)]
struct Progress {
    created: i32,
    available: i32,
}

async fn progress(api: &Api<Deployment>) -> Result<Progress> {
    let d = api.get("bench").await?;
    let s = d.status.unwrap_or_default();
    Ok(Progress { created: s.replicas.unwrap_or(0), available: s.available_replicas.unwrap_or(0) })
}

/// Runs one rollout on a fresh in-process cluster and prints the timings.
pub async fn run(size: DeploymentBench) -> Result<()> {
    let dir = tempfile::Builder::new().prefix("rkube-bench-deploy-").tempdir()?;
    let mut cfg = rkube_cluster::ServerConfig::loopback(dir.path().to_path_buf());
    // Scraping every simulated node would compete with what is measured (as in the other runs).
    cfg.metric_resolution = Duration::from_secs(24 * 3600);
    // Simulated nodes bring their own pod CIDRs (outside the cluster CIDR).
    cfg.node_ipam = None;
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
    let sim_config = rkube_sim::SimConfig {
        nodes: size.nodes,
        name_prefix: "bench".into(),
        cpu: "32".into(),
        memory: "64Gi".into(),
        ..Default::default()
    };
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
        if ready >= size.nodes {
            break;
        }
        if register_start.elapsed() > Duration::from_secs(600) {
            return Err(anyhow!("only {ready}/{} nodes registered", size.nodes));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let registered = register_start.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let start = Instant::now();
    deployments.create(&PostParams::default(), &deployment(size.replicas)?).await?;
    let mut all_created: Option<Duration> = None;
    let mut last_report = Instant::now();
    let available = loop {
        let p = progress(&deployments).await?;
        if all_created.is_none() && p.created >= size.replicas {
            all_created = Some(start.elapsed());
        }
        if p.available >= size.replicas {
            break start.elapsed();
        }
        if last_report.elapsed() > Duration::from_secs(REPORT_EVERY_SECS) {
            eprintln!("  {:>5.0} s: {} pods created, {} available", start.elapsed().as_secs_f64(), p.created, p.available);
            last_report = Instant::now();
        }
        if start.elapsed() > Duration::from_secs(1800) {
            return Err(anyhow!("only {}/{} replicas available after 30 minutes", p.available, size.replicas));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let created = all_created.unwrap_or(available);
    println!("{:<52} {:>10}", "scenario", "time");
    println!("{:<52} {:>8.1} s", format!("{} simulated nodes registered", size.nodes), registered.as_secs_f64());
    println!("{:<52} {:>8.1} s", format!("Deployment of {} replicas: all pods created", size.replicas), created.as_secs_f64());
    println!("{:<52} {:>8.1} s", format!("Deployment of {} replicas: all available", size.replicas), available.as_secs_f64());
    println!("({:.0} pods/s end to end: create, admission, schedule, bind, run, ready)", size.replicas as f64 / available.as_secs_f64());
    let _ = sim_stop_tx.send(());
    let _ = sim.await;
    let _ = stop_tx.send(());
    let _ = server.await;
    Ok(())
}
