//! `rkube`: a Kubernetes-compatible cluster in one binary.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

mod agent;
mod agent_join;
mod client_rotation;
mod authn_args;
mod bench;
mod bench_deployment;
mod bench_pod_start;
mod bench_scheduler;
mod components;
mod node_ipam_args;
mod token;

#[derive(Parser)]
#[command(name = "rkube", version, about = "A Kubernetes-compatible cluster in one binary")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane (API server on the embedded datastore).
    Server(ServerArgs),
    /// Run the controller manager as its own process against a cluster.
    ControllerManager(ControllerManagerArgs),
    /// Measure the API server end to end (creates, gets, large lists, watch latency) on a
    /// temporary data directory and print a table; `rkube bench scheduler` measures scheduling
    /// throughput on simulated nodes, `rkube bench deployment` a 10,000-replica Deployment on 1,000.
    Bench(bench::BenchArgs),
    /// Run the scheduler alone against a cluster (leader-elected, Lease kube-system/kube-scheduler).
    Scheduler(components::SchedulerArgs),
    /// Simulated nodes for tests and benchmarks: register nodes, keep their Leases fresh and
    /// carry pods bound to them through their lifecycle. No containers run.
    Sim(components::SimArgs),
    /// The node agent: register this host as a Node and run the pods bound to it as
    /// containers through containerd (CRI).
    Agent(agent::AgentArgs),
    /// Print an ExecCredential holding an IAM token (`k8s-aws-v1.…`) for a cluster started with
    /// --iam-cluster-id, signed with the standard AWS credential chain.
    Token(token::TokenArgs),
}

#[derive(clap::Args)]
struct ServerArgs {
    /// Directory for the datastore, certificates and the admin kubeconfig.
    #[arg(long, default_value = "/var/lib/rkube", env = "RKUBE_DATA_DIR")]
    data_dir: PathBuf,
    /// Address the API server listens on.
    #[arg(long, default_value = "0.0.0.0")]
    bind_address: IpAddr,
    /// HTTPS port of the API server (0 picks a free port).
    #[arg(long, default_value_t = 6443)]
    secure_port: u16,
    /// Datastore: `sqlite` (the file state.db in the data dir) or `sqlite:///path/to/file.db`.
    #[arg(long)]
    datastore: Option<String>,
    /// Extra names or IPs for the serving certificate (repeatable).
    #[arg(long = "tls-san")]
    tls_san: Vec<String>,
    /// Range Service ClusterIPs are allocated from.
    #[arg(long, default_value = "10.43.0.0/16")]
    service_cidr: String,
    /// EncryptionConfiguration file: resources encrypted at rest and their providers
    /// (aescbc, aesgcm, secretbox, identity), as kube-apiserver's flag of the same name.
    #[arg(long)]
    encryption_provider_config: Option<PathBuf>,
    /// Components not to run (comma-separated, repeatable): `scheduler`, `node-lifecycle`,
    /// controller names such as `deployment` or `garbage-collector`, or `controller-manager` for
    /// every controller.
    #[arg(long, value_delimiter = ',')]
    disable: Vec<String>,
    /// How long a node may go without heartbeats before its Ready condition becomes Unknown.
    #[arg(long, default_value = "40s", value_parser = components::parse_duration)]
    node_monitor_grace_period: std::time::Duration,
    /// How often node resource metrics are scraped for metrics.k8s.io (metrics-server's flag).
    #[arg(long, default_value = "15s", value_parser = components::parse_duration)]
    metric_resolution: std::time::Duration,
    /// How often the HorizontalPodAutoscaler controller syncs each HPA.
    #[arg(long, default_value = "15s", value_parser = components::parse_duration)]
    horizontal_pod_autoscaler_sync_period: std::time::Duration,
    /// Longest lifetime of certificates the CSR signer issues (shorter `expirationSeconds` win).
    #[arg(long, default_value = "8760h", value_parser = components::parse_duration)]
    cluster_signing_duration: std::time::Duration,
    /// Do not run a node agent for this host. Without this flag the agent runs when the
    /// container runtime's socket answers, and is skipped (with a log line) otherwise.
    #[arg(long)]
    disable_agent: bool,
    #[command(flatten)]
    node_ipam: node_ipam_args::NodeIpamArgs,
    #[command(flatten)]
    agent: agent::AgentFlags,
    #[command(flatten)]
    authn: authn_args::AuthnArgs,
    /// Admission plugins to turn off (comma-separated), as kube-apiserver's flag.
    #[arg(long, value_delimiter = ',')]
    disable_admission_plugins: Vec<String>,
    /// apiserver.config.k8s.io/v1 AdmissionConfiguration file with per-plugin configurations
    /// (PodSecurity defaults and exemptions), as kube-apiserver's flag.
    #[arg(long)]
    admission_control_config_file: Option<PathBuf>,
    /// Directory on the nodes for `local-path` volumes (default `<data-dir>/storage`), as k3s's flag.
    #[arg(long)]
    default_local_storage_path: Option<PathBuf>,
    /// audit.k8s.io/v1 Policy file: what the audit log records at which level.
    #[arg(long)]
    audit_policy_file: Option<PathBuf>,
    /// File the audit log is written to, one JSON Event a line (`-` for standard output).
    #[arg(long)]
    audit_log_path: Option<PathBuf>,
    /// Accept IAM bearer tokens (`aws eks get-token`, `rkube token`) signed for this cluster id,
    /// mapped to users through the kube-system/aws-auth ConfigMap.
    #[arg(long)]
    iam_cluster_id: Option<String>,
    /// Also accept tokens presigned for this STS endpoint (https URL) besides AWS's own.
    #[arg(long, requires = "iam_cluster_id")]
    iam_sts_endpoint: Option<String>,
    /// PEM CA certificates to trust when calling the STS endpoint.
    #[arg(long, requires = "iam_cluster_id")]
    iam_sts_ca_file: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ControllerManagerArgs {
    /// Kubeconfig of the cluster to manage (its user should be system:kube-controller-manager).
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Controllers not to run (comma-separated, repeatable).
    #[arg(long, value_delimiter = ',')]
    disable: Vec<String>,
    /// CA bundle published as the `kube-root-ca.crt` ConfigMap (default: the kubeconfig's CA).
    #[arg(long)]
    root_ca_file: Option<PathBuf>,
    /// How often the HorizontalPodAutoscaler controller syncs each HPA.
    #[arg(long, default_value = "15s", value_parser = components::parse_duration)]
    horizontal_pod_autoscaler_sync_period: std::time::Duration,
    /// CA certificate (PEM) the CSR signer issues with; without it `csrsigning` stays idle.
    #[arg(long, requires = "cluster_signing_key_file")]
    cluster_signing_cert_file: Option<PathBuf>,
    /// The CA's private key (PEM).
    #[arg(long, requires = "cluster_signing_cert_file")]
    cluster_signing_key_file: Option<PathBuf>,
    /// Longest lifetime of certificates the CSR signer issues.
    #[arg(long, default_value = "8760h", value_parser = components::parse_duration)]
    cluster_signing_duration: std::time::Duration,
    #[command(flatten)]
    node_ipam: node_ipam_args::NodeIpamArgs,
    /// The Service ClusterIP range, kept out of the Nodes' pod CIDRs (kube-controller-manager's flag).
    #[arg(long)]
    service_cluster_ip_range: Option<String>,
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RKUBE_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Server(a) => {
            let (disable_agent, agent_flags) = (a.disable_agent, a.agent.clone());
            // The embedded agent's managed runtime waits for its Node's pod CIDR only when this
            // server hands them out.
            let assigned_pod_cidr = if a.node_ipam.allocate_node_cidrs && !a.disable.iter().any(|d| d == "nodeipam") {
                agent::AssignedPodCidr::WaitFor(rkube_agent::pod_cidr::ASSIGNED_POD_CIDR_WAIT)
            } else {
                agent::AssignedPodCidr::NotAssigned
            };
            let agent_task: std::sync::Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>> = Default::default();
            let agent_task_slot = agent_task.clone();
            // Refuse a registries file that cannot be used before serving anything.
            if let Some(path) = agent_flags.registries_config.as_deref().filter(|_| !disable_agent) {
                rkube_agent::registries::RegistriesConfig::load(path)?;
            }
            // Node CIDR flags are checked before anything is served.
            let node_ipam = a.node_ipam.config(Some(&a.service_cidr))?;
            let iam = match &a.iam_cluster_id {
                Some(id) => Some(
                    rkube_iam::IamConfig::from_flags(id, a.iam_sts_endpoint.as_deref(), a.iam_sts_ca_file.as_deref())
                        .map_err(|e| anyhow::anyhow!(e))?,
                ),
                None => None,
            };
            let cfg = rkube_cluster::ServerConfig {
                data_dir: a.data_dir,
                bind_address: a.bind_address,
                secure_port: a.secure_port,
                datastore: a.datastore,
                tls_sans: a.tls_san,
                service_cidr: a.service_cidr,
                encryption_provider_config: a.encryption_provider_config,
                disable: a.disable,
                node_monitor_grace_period: a.node_monitor_grace_period,
                cluster_signing_duration: a.cluster_signing_duration,
                authentication: a.authn.options(),
                disable_admission_plugins: a.disable_admission_plugins,
                admission_control_config_file: a.admission_control_config_file,
                audit_policy_file: a.audit_policy_file,
                audit_log_path: a.audit_log_path,
                iam,
                default_local_storage_path: a.default_local_storage_path,
                metric_resolution: a.metric_resolution,
                horizontal_pod_autoscaler_sync_period: a.horizontal_pod_autoscaler_sync_period,
                node_ipam,
            };
            rt.block_on(rkube_cluster::run_server(cfg, shutdown_signal(), |addr, kubeconfig| {
                // Test harnesses and users read these lines: keep their shape stable.
                println!("rkube: API server listening on https://{addr}");
                println!("rkube: kubeconfig written to {}", kubeconfig.display());
                println!("rkube: use it with: export KUBECONFIG={}", kubeconfig.display());
                if let Some(join) = kubeconfig.parent().and_then(|d| agent_join::join_command_hint(d, addr)) {
                    println!("rkube: join other nodes with: {join}");
                }
                println!("rkube: ready");
                if !disable_agent {
                    let task = tokio::spawn(async move {
                        let mut agent_flags = agent_flags;
                        let node_kubeconfig = kubeconfig
                            .parent()
                            .ok_or_else(|| anyhow::anyhow!("{} has no directory", kubeconfig.display()))
                            .and_then(|data_dir| agent::embedded_node_kubeconfig(data_dir, &kubeconfig, &mut agent_flags));
                        let node_kubeconfig = match node_kubeconfig {
                            Ok(path) => path,
                            Err(e) => {
                                tracing::error!(error = %e, "node agent not started: no node credentials");
                                return;
                            }
                        };
                        if let Err(e) = agent::run(node_kubeconfig, None, agent_flags, false, assigned_pod_cidr, shutdown_signal()).await {
                            tracing::error!(error = %e, "node agent stopped");
                        }
                    });
                    if let Ok(mut slot) = agent_task_slot.lock() {
                        *slot = Some(task);
                    }
                }
            }))?;
            // The agent stops a containerd it manages on the same signal: let it finish.
            let agent_task = agent_task.lock().ok().and_then(|mut slot| slot.take());
            if let Some(task) = agent_task {
                let _ = rt.block_on(async { tokio::time::timeout(std::time::Duration::from_secs(15), task).await });
            }
        }
        Command::Bench(a) if a.is_scheduler() => rt.block_on(bench_scheduler::run())?,
        Command::Bench(a) if a.is_deployment() => rt.block_on(bench_deployment::run(bench_deployment::DeploymentBench {
            replicas: a.replicas,
            nodes: a.nodes,
        }))?,
        Command::Bench(a) if a.is_pod_start() => {
            let (Some(containerd_socket), Some(image)) = (a.containerd_socket, a.image) else {
                anyhow::bail!("rkube bench pod-start needs --containerd-socket and --image");
            };
            rt.block_on(bench_pod_start::run(bench_pod_start::PodStartBench { containerd_socket, image, pods: a.pods }))?
        }
        Command::ControllerManager(a) => rt.block_on(run_controller_manager(a))?,
        Command::Bench(a) => rt.block_on(bench::run(a))?,
        Command::Scheduler(a) => rt.block_on(components::run_scheduler(a, shutdown_signal()))?,
        Command::Sim(a) => rt.block_on(components::run_sim(a, shutdown_signal()))?,
        Command::Agent(a) => rt.block_on(agent::run_agent(a, shutdown_signal()))?,
        Command::Token(a) => rt.block_on(token::run(a))?,
    }
    Ok(())
}

async fn run_controller_manager(a: ControllerManagerArgs) -> anyhow::Result<()> {
    let yaml = std::fs::read_to_string(&a.kubeconfig).map_err(|e| anyhow::anyhow!("reading {}: {e}", a.kubeconfig.display()))?;
    let root_ca_pem = match &a.root_ca_file {
        Some(path) => std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?,
        None => rkube_controllers::kubeconfig_ca_pem(&yaml)?,
    };
    let csr_signing = match (&a.cluster_signing_cert_file, &a.cluster_signing_key_file) {
        (Some(cert), Some(key)) => {
            let read = |p: &PathBuf| std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("reading {}: {e}", p.display()));
            let signer = rkube_pki::csr::Signer::new(&read(cert)?, &read(key)?).map_err(|e| anyhow::anyhow!("cluster signing CA: {e}"))?;
            Some(std::sync::Arc::new(rkube_controllers::csr_signing::CsrSigning { signer, max_duration: a.cluster_signing_duration }))
        }
        _ => None,
    };
    let config = rkube_controllers::ManagerConfig {
        disabled: a.disable.into_iter().collect(),
        root_ca_pem,
        csr_signing,
        horizontal_pod_autoscaler_sync_period: a.horizontal_pod_autoscaler_sync_period,
        node_ipam: a.node_ipam.config(a.service_cluster_ip_range.as_deref())?,
        ..Default::default()
    };
    config.check()?;
    let client = rkube_controllers::client_from_kubeconfig(&yaml).await?;
    println!("rkube: controller manager running");
    rkube_controllers::run(client, config, shutdown_signal()).await?;
    Ok(())
}
