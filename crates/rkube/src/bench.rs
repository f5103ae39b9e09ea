//! `rkube bench`: end-to-end numbers over HTTPS with kube-rs against an in-process server on a
//! temporary data directory (the same code path as `rkube server`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

/// What to measure.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// What to measure: `api` (default), `scheduler`, `deployment` (a large Deployment on
    /// simulated nodes, `--replicas` on `--nodes`), or `pod-start` (`--pods` pods of `--image`
    /// on a real node agent using `--containerd-socket`).
    #[arg(default_value = "api", value_parser = ["api", "scheduler", "deployment", "pod-start"])]
    target: String,
    /// CRI socket of the `pod-start` benchmark's node (its CNI must be configured).
    #[arg(long)]
    pub containerd_socket: Option<std::path::PathBuf>,
    /// Image of the `pod-start` benchmark's pods, already present on the node (it needs
    /// `/bin/sh` and `sleep`).
    #[arg(long)]
    pub image: Option<String>,
    /// Pods of the `pod-start` benchmark.
    #[arg(long, default_value_t = 50)]
    pub pods: usize,
    /// Replicas of the `deployment` benchmark.
    #[arg(long, default_value_t = 10_000)]
    pub replicas: i32,
    /// Simulated nodes of the `deployment` benchmark.
    #[arg(long, default_value_t = 1000)]
    pub nodes: usize,
    /// Objects created for the create/s figure.
    #[arg(long, default_value_t = 2000)]
    creates: usize,
    /// GETs for the get/s figure.
    #[arg(long, default_value_t = 5000)]
    gets: usize,
    /// Objects in the large LIST.
    #[arg(long, default_value_t = 10_000)]
    list_size: usize,
    /// Concurrent watchers for the delivery-latency figure.
    #[arg(long, default_value_t = 100)]
    watchers: usize,
    /// Concurrent client requests.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
}

impl BenchArgs {
    /// `rkube bench scheduler`.
    pub fn is_scheduler(&self) -> bool {
        self.target == "scheduler"
    }

    /// `rkube bench deployment`.
    pub fn is_deployment(&self) -> bool {
        self.target == "deployment"
    }

    /// `rkube bench pod-start`.
    pub fn is_pod_start(&self) -> bool {
        self.target == "pod-start"
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn cm(name: String) -> ConfigMap {
    let mut c = ConfigMap::default();
    c.metadata.name = Some(name);
    c.data = Some([("payload".to_string(), "x".repeat(256))].into());
    c
}

async fn create_many(api: &Api<ConfigMap>, prefix: &str, n: usize, concurrency: usize) -> Result<Duration> {
    let start = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            let name = format!("{prefix}-{i:06}");
            async move { api.create(&PostParams::default(), &cm(name)).await }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(start.elapsed())
}

async fn ensure_ns(client: &kube::Client, name: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let mut ns = Namespace::default();
    ns.metadata.name = Some(name.into());
    api.create(&PostParams::default(), &ns).await?;
    Ok(())
}

/// Runs the benchmark and prints a table.
pub async fn run(args: BenchArgs) -> Result<()> {
    let dir = tempfile::Builder::new().prefix("rkube-bench-").tempdir()?;
    let cfg = rkube_cluster::ServerConfig {
        data_dir: dir.path().to_path_buf(),
        bind_address: "127.0.0.1".parse()?,
        secure_port: 0,
        datastore: None,
        tls_sans: vec![],
        service_cidr: "10.43.0.0/16".into(),
        encryption_provider_config: None,
        // The API benchmark measures the server alone: components would add their own load.
        disable: vec!["scheduler".into(), "node-lifecycle".into(), "controller-manager".into()],
        node_monitor_grace_period: std::time::Duration::from_secs(40),
        cluster_signing_duration: rkube_controllers::csr_signing::DEFAULT_SIGNING_DURATION,
        node_ipam: None,
        authentication: Default::default(),
        // Without the serviceaccount controller no `default` ServiceAccount appears.
        disable_admission_plugins: vec!["ServiceAccount".into()],
        admission_control_config_file: None,
        audit_policy_file: None,
        audit_log_path: None,
        iam: None,
        default_local_storage_path: None,
        // Scraping every simulated node would compete with what is measured.
        metric_resolution: std::time::Duration::from_secs(24 * 3600),
        horizontal_pod_autoscaler_sync_period: std::time::Duration::from_secs(15),
    };
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        rkube_cluster::run_server(cfg, async { let _ = stop_rx.await; }, move |_, kubeconfig| {
            let _ = ready_tx.send(kubeconfig);
        })
        .await
    });
    let kubeconfig = ready_rx.await.map_err(|_| anyhow!("server did not start"))?;
    let kc = Kubeconfig::read_from(&kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    let client = kube::Client::try_from(config)?;
    let mut rows: Vec<(String, String)> = Vec::new();

    // create/s
    ensure_ns(&client, "bench-create").await?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "bench-create");
    let t = create_many(&api, "c", args.creates, args.concurrency).await?;
    rows.push((format!("create ConfigMap ({} objects, {} concurrent)", args.creates, args.concurrency), format!("{:.0} create/s", args.creates as f64 / t.as_secs_f64())));

    // get/s
    let start = Instant::now();
    futures::stream::iter(0..args.gets)
        .map(|i| {
            let api = api.clone();
            let name = format!("c-{:06}", i % args.creates.max(1));
            async move { api.get(&name).await }
        })
        .buffer_unordered(args.concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    let t = start.elapsed();
    rows.push((format!("get ConfigMap ({} requests, {} concurrent)", args.gets, args.concurrency), format!("{:.0} get/s", args.gets as f64 / t.as_secs_f64())));

    // LIST of list_size objects
    ensure_ns(&client, "bench-list").await?;
    let list_api: Api<ConfigMap> = Api::namespaced(client.clone(), "bench-list");
    create_many(&list_api, "l", args.list_size, args.concurrency).await?;
    let mut times = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let l = list_api.list(&ListParams::default()).await?;
        times.push(start.elapsed());
        if l.items.len() != args.list_size {
            return Err(anyhow!("listed {} objects, expected {}", l.items.len(), args.list_size));
        }
    }
    times.sort();
    rows.push((format!("list {} ConfigMaps (one request, median of 5)", args.list_size), format!("{:.1} ms", percentile(&times, 0.5).as_secs_f64() * 1e3)));
    let start = Instant::now();
    let mut n = 0;
    let mut lp = ListParams::default().limit(500);
    loop {
        let page = list_api.list(&lp).await?;
        n += page.items.len();
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => lp = lp.continue_token(&c),
            None => break,
        }
    }
    rows.push((format!("list {n} ConfigMaps in pages of 500"), format!("{:.1} ms", start.elapsed().as_secs_f64() * 1e3)));

    // Watch delivery latency with N watchers.
    ensure_ns(&client, "bench-watch").await?;
    let watch_api: Api<ConfigMap> = Api::namespaced(client.clone(), "bench-watch");
    let rv = watch_api.list(&ListParams::default()).await?.metadata.resource_version.context("no resourceVersion")?;
    let sent: Arc<send_times::SendTimes> = Arc::default();
    let events = 200usize;
    let mut handles = Vec::new();
    for _ in 0..args.watchers {
        let api = watch_api.clone();
        let rv = rv.clone();
        let sent = sent.clone();
        handles.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(events);
            let mut s = api.watch(&WatchParams::default().timeout(120), &rv).await?.boxed();
            while let Some(ev) = s.try_next().await? {
                if let WatchEvent::Added(o) = ev {
                    let name = o.metadata.name.unwrap_or_default();
                    if let Some(t) = sent.get(&name) {
                        lat.push(t.elapsed());
                    }
                    if lat.len() == events {
                        break;
                    }
                }
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..events {
        let name = format!("w-{i:04}");
        sent.put(&name, Instant::now());
        watch_api.create(&PostParams::default(), &cm(name)).await?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await??);
    }
    all.sort();
    rows.push((
        format!("watch delivery, {} watchers x {events} events", args.watchers),
        format!("p50 {:.2} ms, p99 {:.2} ms", percentile(&all, 0.5).as_secs_f64() * 1e3, percentile(&all, 0.99).as_secs_f64() * 1e3),
    ));

    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    println!("| benchmark | result |");
    println!("|---|---|");
    for (k, v) in rows {
        println!("| {k} | {v} |");
    }
    Ok(())
}

/// Send timestamps shared between the writer and the watchers.
mod send_times {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::Instant;

    #[derive(Default)]
    pub struct SendTimes(Mutex<HashMap<String, Instant>>);

    impl SendTimes {
        pub fn put(&self, k: &str, t: Instant) {
            if let Ok(mut m) = self.0.lock() {
                m.insert(k.to_string(), t);
            }
        }
        pub fn get(&self, k: &str) -> Option<Instant> {
            self.0.lock().ok().and_then(|m| m.get(k).copied())
        }
    }
}
