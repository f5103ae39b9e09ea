//! `rkube agent`, and the agent `rkube server` runs for its own host.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Result, anyhow};
use rkube_agent::managed_runtime::{ManagedContainerd, ManagedSettings};

/// Flags shared by `rkube agent` and the embedded agent of `rkube server`.
#[derive(clap::Args, Clone)]
pub struct AgentFlags {
    /// Node name (default: the host name).
    #[arg(long)]
    pub node_name: Option<String>,
    /// The node's InternalIP (default: the address this host uses to reach the API server).
    #[arg(long)]
    pub node_ip: Option<IpAddr>,
    /// CRI socket of an existing container runtime. Without it the agent runs a containerd of
    /// its own under `--agent-root-dir`.
    #[arg(long)]
    pub containerd_socket: Option<PathBuf>,
    /// IPv4 pod CIDR of the managed containerd's pod network (bridge + host-local). Without it
    /// the agent uses the one the server assigns to its Node (`spec.podCIDR`).
    #[arg(long)]
    pub pod_cidr: Option<String>,
    /// Port of the agent's HTTPS endpoint (logs); 0 picks a free one.
    #[arg(long, default_value_t = 10250)]
    pub agent_port: u16,
    /// Directory the runtime writes pod logs into.
    #[arg(long, default_value = "/var/log/pods")]
    pub pod_log_dir: PathBuf,
    /// The agent's state directory (pod volumes), like the kubelet's --root-dir.
    #[arg(long, default_value = "/var/lib/rkube/agent")]
    pub agent_root_dir: PathBuf,
    /// Registry mirrors, TLS and credentials (k3s's registries.yaml format).
    #[arg(long)]
    pub registries_config: Option<PathBuf>,
    /// Directory the container runtime reads registry hosts configuration from (containerd's
    /// CRI `config_path`); the registries config is written there as `<host>/hosts.toml`.
    #[arg(long, default_value = "/etc/containerd/certs.d")]
    pub registry_hosts_dir: PathBuf,
    /// Directory of static pod manifests (the kubelet's staticPodPath), polled for changes
    /// (default: `<agent-root-dir>/pod-manifests`; an empty value disables static pods).
    #[arg(long)]
    pub pod_manifest_path: Option<PathBuf>,
    /// The kubelet's hard eviction thresholds: held back from allocatable, and crossing one
    /// is MemoryPressure or DiskPressure (`nodefs.available<0%` turns the disk one off).
    #[arg(long, default_value = rkube_agent::eviction::DEFAULT_EVICTION_HARD, value_parser = rkube_agent::eviction::EvictionHard::parse)]
    pub eviction_hard: rkube_agent::eviction::EvictionHard,
}

/// `rkube agent`.
#[derive(clap::Args)]
pub struct AgentArgs {
    /// URL of the API server (overrides the kubeconfig's server).
    #[arg(long)]
    server: Option<String>,
    /// Kubeconfig with the agent's credentials. Without it, the agent joins with `--token`
    /// (or uses the node kubeconfig an earlier join left in `--agent-root-dir`).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Bootstrap token (`<id>.<secret>`, e.g. the server's `<data-dir>/node-token`) to join with:
    /// the agent gets a node client certificate through a CertificateSigningRequest.
    #[arg(long, env = "RKUBE_TOKEN")]
    token: Option<String>,
    /// Public-key pin of the cluster CA to accept when joining (`sha256:<hex>`, as kubeadm's
    /// `--discovery-token-ca-cert-hash`; `rkube server` prints it).
    #[arg(long)]
    ca_cert_hash: Option<String>,
    #[command(flatten)]
    flags: AgentFlags,
}

fn server_address(url: &str) -> Result<SocketAddr> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| anyhow!("server URL {url:?}: {e}"))?;
    let host = uri
        .host()
        .ok_or_else(|| anyhow!("server URL {url:?} has no host"))?
        .trim_matches(['[', ']']);
    let port = uri.port_u16().unwrap_or(443);
    std::net::ToSocketAddrs::to_socket_addrs(&(host, port))?
        .next()
        .ok_or_else(|| anyhow!("cannot resolve {host}"))
}

/// The client, the server URL and the cluster CA (DER) of a kubeconfig.
async fn client(
    kubeconfig: &std::path::Path,
    server: Option<&str>,
) -> Result<(kube::Client, String, Vec<Vec<u8>>)> {
    let yaml = std::fs::read_to_string(kubeconfig)
        .map_err(|e| anyhow!("reading {}: {e}", kubeconfig.display()))?;
    let cfg = crate::client_rotation::kube_config(&yaml, server).await?;
    let url = cfg.cluster_url.to_string();
    let ca = cfg.root_cert.clone().unwrap_or_default();
    Ok((kube::Client::try_from(cfg)?, url, ca))
}

/// Where the managed runtime's pod CIDR comes from when `--pod-cidr` is not given.
#[derive(Debug, Clone, Copy)]
pub enum AssignedPodCidr {
    /// The server assigns Nodes pod CIDRs: wait this long for this Node's.
    WaitFor(std::time::Duration),
    /// The server is known not to (`rkube server --allocate-node-cidrs=false` or
    /// `--disable=nodeipam`).
    NotAssigned,
}

/// Runs an agent until `shutdown`; `require_runtime` false means a missing runtime only logs.
pub async fn run(
    kubeconfig: PathBuf,
    server: Option<String>,
    flags: AgentFlags,
    require_runtime: bool,
    assigned_pod_cidr: AssignedPodCidr,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    // A registries file that cannot be used stops the start, runtime or not.
    let registries = flags
        .registries_config
        .as_deref()
        .map(rkube_agent::registries::RegistriesConfig::load)
        .transpose()?;
    let node_name = flags
        .node_name
        .clone()
        .unwrap_or_else(rkube_agent::default_node_name);
    let (socket, mut managed, explicit_pod_cidr) = match flags.containerd_socket.clone() {
        Some(socket) => (socket, None, None),
        None => {
            let settings = ManagedSettings {
                dir: flags.agent_root_dir.join("containerd"),
                registry_hosts_dir: flags.registry_hosts_dir.clone(),
            };
            let prepared = match ManagedContainerd::prepare(settings).await {
                Ok(p) => p,
                Err(e) if !require_runtime => {
                    tracing::info!(error = %e, "no container runtime: not running a node agent on this host");
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            };
            let pod_cidr = match (&flags.pod_cidr, assigned_pod_cidr) {
                (Some(cidr), _) => cidr.clone(),
                (None, AssignedPodCidr::NotAssigned) => {
                    return Err(anyhow!(
                        "this host's node agent runs its own containerd and needs a pod CIDR, but the server does not assign them (--allocate-node-cidrs=false or --disable=nodeipam): give --pod-cidr, --containerd-socket or --disable-agent"
                    ));
                }
                (None, AssignedPodCidr::WaitFor(wait)) => {
                    let (client, _, _) = client(&kubeconfig, server.as_deref()).await?;
                    rkube_agent::pod_cidr::await_assigned_pod_cidr(&client, &node_name, wait)
                        .await?
                }
            };
            match prepared.start(&pod_cidr).await {
                Ok(m) => (m.socket(), Some(m), flags.pod_cidr.clone()),
                Err(e) if !require_runtime => {
                    tracing::info!(error = %e, "no container runtime: not running a node agent on this host");
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    let result = run_on(
        kubeconfig,
        server,
        NodeSettings {
            flags,
            node_name,
            explicit_pod_cidr,
        },
        socket,
        registries,
        require_runtime,
        shutdown,
    )
    .await;
    if let Some(m) = managed.as_mut() {
        m.stop().await;
    }
    result
}

/// The agent flags with what was decided from them.
struct NodeSettings {
    flags: AgentFlags,
    node_name: String,
    /// `--pod-cidr` when the managed runtime uses it.
    explicit_pod_cidr: Option<String>,
}

async fn run_on(
    kubeconfig: PathBuf,
    server: Option<String>,
    node: NodeSettings,
    socket: PathBuf,
    registries: Option<rkube_agent::registries::RegistriesConfig>,
    require_runtime: bool,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let runtime = match rkube_agent::connect_runtime(socket.clone()).await {
        Ok(r) => r,
        Err(e) if !require_runtime => {
            tracing::info!(error = %e, "no container runtime: not running a node agent on this host");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let NodeSettings {
        flags,
        node_name,
        explicit_pod_cidr,
    } = node;
    // The node kubeconfig the agent keeps is its own to renew; one given by flag is not.
    let owned = kubeconfig == crate::agent_join::node_kubeconfig_path(&flags.agent_root_dir);
    let (client, url, client_ca) = if owned {
        let rotating = Arc::new(crate::client_rotation::client(&kubeconfig, server.as_deref()).await?);
        tokio::spawn(rotating.clone().rotate_forever(node_name.clone()));
        (rotating.client.clone(), rotating.url.clone(), rotating.root_certs.clone())
    } else {
        client(&kubeconfig, server.as_deref()).await?
    };
    let node_ip = match flags.node_ip {
        Some(ip) => ip,
        None => rkube_agent::local_ip_towards(server_address(&url)?)?,
    };
    let pod_manifest_path = match flags.pod_manifest_path {
        None => Some(flags.agent_root_dir.join("pod-manifests")),
        Some(dir) if dir.as_os_str().is_empty() => None,
        Some(dir) => Some(dir),
    };
    let config = rkube_agent::AgentConfig {
        node_name,
        node_ip,
        listen: SocketAddr::new(node_ip, flags.agent_port),
        containerd_socket: socket,
        log_root: flags.pod_log_dir,
        root_dir: flags.agent_root_dir,
        client_ca,
        registries,
        registry_hosts_dir: flags.registry_hosts_dir,
        pod_manifest_path,
        pod_cidr: explicit_pod_cidr,
        eviction_hard: flags.eviction_hard,
    };
    println!("rkube: node agent {} running", config.node_name);
    rkube_agent::run(client, runtime, config, shutdown).await?;
    Ok(())
}

/// The node kubeconfig of the agent `rkube server` runs for its own host: a `system:node:<name>`
/// client certificate issued by the cluster CA in `<data-dir>/tls`, written fresh on every start
/// under the agent's root directory (renewed there like a joined node's), so the server's own
/// node is limited by the Node authorizer and NodeRestriction like any other.
pub fn embedded_node_kubeconfig(
    data_dir: &Path,
    admin_kubeconfig: &Path,
    flags: &mut AgentFlags,
) -> Result<PathBuf> {
    let node_name = flags
        .node_name
        .get_or_insert_with(rkube_agent::default_node_name)
        .clone();
    let admin = kube::config::Kubeconfig::read_from(admin_kubeconfig)
        .map_err(|e| anyhow!("reading {}: {e}", admin_kubeconfig.display()))?;
    let server = admin
        .clusters
        .first()
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .ok_or_else(|| anyhow!("{} names no server", admin_kubeconfig.display()))?;
    let path = crate::agent_join::node_kubeconfig_path(&flags.agent_root_dir);
    rkube_pki::write_user_kubeconfig(
        data_dir,
        &path,
        &server,
        &format!("system:node:{node_name}"),
        &["system:nodes"],
    )?;
    Ok(path)
}

/// `rkube agent`.
pub async fn run_agent(
    args: AgentArgs,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let mut flags = args.flags;
    let kubeconfig = match args.kubeconfig {
        Some(k) => k,
        None => {
            let path = crate::agent_join::node_kubeconfig_path(&flags.agent_root_dir);
            if !path.exists() {
                let (Some(server), Some(token)) = (args.server.as_deref(), args.token.as_deref()) else {
                    return Err(anyhow!(
                        "no credentials: give --kubeconfig, or --server and --token to join (no node kubeconfig at {} yet)",
                        path.display()
                    ));
                };
                let node_name = flags.node_name.clone().unwrap_or_else(rkube_agent::default_node_name);
                let request = crate::agent_join::JoinRequest {
                    server,
                    token,
                    ca_cert_hash: args.ca_cert_hash.as_deref(),
                    node_name: &node_name,
                };
                crate::agent_join::join(&request, &path).await?;
                flags.node_name = Some(node_name);
            }
            path
        }
    };
    let assigned = AssignedPodCidr::WaitFor(rkube_agent::pod_cidr::ASSIGNED_POD_CIDR_WAIT);
    run(kubeconfig, args.server, flags, true, assigned, shutdown).await
}
