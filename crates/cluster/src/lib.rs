//! Composition root: opens the datastore, builds the registry and the API server, creates the
//! PKI and the admin kubeconfig, and serves until shutdown.
//!
//! Start order (as k3s `pkg/server/server.go`): config checked → datastore → registry (watch cache
//! loaded) → bootstrap objects → TLS listener bound → kubeconfig written → `ready`.

pub mod bootstrap;
pub mod bootstrap_data;
pub mod components;
mod custom_openapi;
pub mod local_storage;
pub mod node_join;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rkube_apiserver::{ApiServerConfig, AppState};
use rkube_registry::allocators::Ipv4Cidr;
use rkube_registry::{Registry, RegistryConfig};
use rkube_storage::KvStore;

/// The Kubernetes version rkube serves the API of.
pub const KUBERNETES_VERSION: &str = "v1.33.5+rkube";

/// Everything `rkube server` needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// State, certificates and kubeconfig live here.
    pub data_dir: PathBuf,
    /// Address to listen on.
    pub bind_address: IpAddr,
    /// HTTPS port (0 = pick a free one).
    pub secure_port: u16,
    /// `sqlite` (default: `<data-dir>/state.db`) or `sqlite:///path/to/file.db`.
    pub datastore: Option<String>,
    /// Extra SANs for the serving certificate.
    pub tls_sans: Vec<String>,
    /// Service ClusterIP range.
    pub service_cidr: String,
    /// `EncryptionConfiguration` file for encryption at rest (`--encryption-provider-config`).
    pub encryption_provider_config: Option<PathBuf>,
    /// In-process components not to run (`--disable=scheduler,deployment,...`; `controller-manager` for every controller).
    pub disable: Vec<String>,
    /// How long a node may go without heartbeats before it is Unknown (40 s upstream).
    pub node_monitor_grace_period: std::time::Duration,
    /// Longest lifetime of certificates issued for CertificateSigningRequests
    /// (`--cluster-signing-duration`, one year upstream).
    pub cluster_signing_duration: std::time::Duration,
    /// Bearer-token authentication (static file, bootstrap tokens, ServiceAccount tokens).
    pub authentication: rkube_auth::authn::AuthnOptions,
    /// Admission plugins turned off (`--disable-admission-plugins`).
    pub disable_admission_plugins: Vec<String>,
    /// AdmissionConfiguration with per-plugin configurations (`--admission-control-config-file`).
    pub admission_control_config_file: Option<PathBuf>,
    /// audit.k8s.io/v1 Policy (`--audit-policy-file`).
    pub audit_policy_file: Option<PathBuf>,
    /// Where audit events go (`--audit-log-path`).
    pub audit_log_path: Option<PathBuf>,
    /// IAM token authentication (`--iam-cluster-id` and friends), off when `None`.
    pub iam: Option<rkube_iam::IamConfig>,
    /// Where `local-path` volumes go on the nodes (`--default-local-storage-path`;
    /// default `<data-dir>/storage`).
    pub default_local_storage_path: Option<PathBuf>,
    /// How often node resource metrics are scraped for `metrics.k8s.io` (metrics-server's
    /// `--metric-resolution`, 15 s).
    pub metric_resolution: std::time::Duration,
    /// How often the HorizontalPodAutoscaler controller syncs each HPA
    /// (`--horizontal-pod-autoscaler-sync-period`, 15 s).
    pub horizontal_pod_autoscaler_sync_period: std::time::Duration,
    /// Node pod CIDR allocation (`--allocate-node-cidrs`, `--cluster-cidr`, …), checked; `None`
    /// turns it off.
    pub node_ipam: Option<Arc<rkube_controllers::nodeipam::NodeIpamConfig>>,
}

impl ServerConfig {
    /// A loopback server on a free port over `data_dir` with every component on and defaults
    /// elsewhere (for benchmarks and embedding).
    pub fn loopback(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            bind_address: IpAddr::from([127, 0, 0, 1]),
            secure_port: 0,
            datastore: None,
            tls_sans: vec![],
            service_cidr: "10.43.0.0/16".into(),
            encryption_provider_config: None,
            disable: vec![],
            node_monitor_grace_period: std::time::Duration::from_secs(40),
            authentication: Default::default(),
            disable_admission_plugins: vec![],
            admission_control_config_file: None,
            audit_policy_file: None,
            audit_log_path: None,
            iam: None,
            default_local_storage_path: None,
            metric_resolution: std::time::Duration::from_secs(15),
            horizontal_pod_autoscaler_sync_period: std::time::Duration::from_secs(15),
            cluster_signing_duration: rkube_controllers::csr_signing::DEFAULT_SIGNING_DURATION,
            node_ipam: default_node_ipam(),
        }
    }
}

/// k3s's default: Nodes get /24s of 10.42.0.0/16.
fn default_node_ipam() -> Option<Arc<rkube_controllers::nodeipam::NodeIpamConfig>> {
    let flags = rkube_controllers::nodeipam::NodeIpamFlags {
        cluster_cidr: rkube_controllers::nodeipam::DEFAULT_CLUSTER_CIDR,
        ..Default::default()
    };
    rkube_controllers::nodeipam::NodeIpamConfig::from_flags(&flags).ok().map(Arc::new)
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Bad configuration.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The datastore could not be opened.
    #[error("opening the datastore: {0}")]
    Datastore(String),
    /// PKI or kubeconfig failure.
    #[error("certificates: {0}")]
    Pki(String),
    /// Binding or serving failed.
    #[error("serving: {0}")]
    Serve(String),
    /// Start-up objects could not be written.
    #[error("bootstrap: {0}")]
    Bootstrap(String),
}

fn open_datastore(cfg: &ServerConfig) -> Result<Arc<dyn KvStore>, ClusterError> {
    let path = match cfg.datastore.as_deref() {
        None | Some("") | Some("sqlite") => cfg.data_dir.join("state.db"),
        Some(s) if s.starts_with("sqlite://") => PathBuf::from(s.trim_start_matches("sqlite://")),
        Some(other) => return Err(ClusterError::Config(format!("unsupported --datastore {other:?}: use sqlite or sqlite:///path"))),
    };
    let store: Arc<dyn KvStore> =
        Arc::new(rkube_storage_sqlite::SqliteStore::open(&path).map_err(|e| ClusterError::Datastore(format!("{}: {e}", path.display())))?);
    match &cfg.encryption_provider_config {
        Some(file) => {
            let config = rkube_encryption::EncryptionConfig::from_file(file).map_err(|e| ClusterError::Config(e.to_string()))?;
            Ok(Arc::new(rkube_encryption::EncryptedStore::new(store, config)))
        }
        None => Ok(store),
    }
}

/// The bearer-token authenticators `rkube server` is configured with, in kube-apiserver's
/// order (token file, ServiceAccount tokens, bootstrap tokens, OIDC, webhook), then IAM tokens, and the ServiceAccount token
/// issuer for the TokenRequest API.
fn token_authenticators(
    cfg: &ServerConfig,
    registry: &Arc<Registry>,
) -> Result<(rkube_auth::authn::TokenAuthenticators, Arc<rkube_auth::authn::service_account::ServiceAccountTokens>), ClusterError> {
    use rkube_auth::authn::{bootstrap, service_account, static_file};
    let opts = &cfg.authentication;
    let mut chain = rkube_auth::authn::TokenAuthenticators::new();
    if let Some(file) = &opts.token_auth_file {
        chain.push(Arc::new(static_file::StaticTokens::from_file(file).map_err(ClusterError::Config)?));
    }
    let key = service_account::SigningKey::load_or_create(&cfg.data_dir.join("service-account.key")).map_err(ClusterError::Pki)?;
    let service_accounts = Arc::new(service_account::ServiceAccountTokens::new(
        key,
        opts.service_account_issuer.clone(),
        opts.api_audiences.clone(),
        registry.clone(),
    ));
    chain.set_api_audiences(service_accounts.api_audiences().to_vec());
    chain.push(service_accounts.clone());
    if opts.bootstrap_tokens {
        chain.push(Arc::new(bootstrap::BootstrapTokens::new(registry.clone())));
    }
    if let Some(oidc) = &opts.oidc {
        chain.push(Arc::new(rkube_auth::authn::oidc::OidcAuthenticator::new(oidc.clone()).map_err(ClusterError::Config)?));
    }
    if let Some(file) = &opts.webhook_config_file {
        let webhook = rkube_auth::authn::webhook::WebhookAuthenticator::from_kubeconfig(file, opts.webhook_cache_ttl).map_err(ClusterError::Config)?;
        chain.push(Arc::new(webhook));
    }
    if let Some(iam) = &cfg.iam {
        let authenticator = rkube_iam::IamAuthenticator::new(iam.clone(), registry.clone()).map_err(ClusterError::Config)?;
        chain.push(Arc::new(authenticator));
    }
    Ok((chain, service_accounts))
}

/// Field management (server-side apply, managedFields) reads built-in kinds' list types and map
/// keys from the OpenAPI definitions.
fn install_field_schemas(registry: &Registry, catalog: Arc<rkube_openapi::Catalog>) {
    let lookup_catalog = catalog.clone();
    let definitions: rkube_fieldmanager::DefinitionLookup = Arc::new(move |name: &str| lookup_catalog.definition(name));
    registry.set_schema_provider(Arc::new(move |group: &str, version: &str, kind: &str| {
        let name = catalog.name_for_gvk(&rkube_openapi::Gvk::new(group, version, kind))?;
        rkube_fieldmanager::JsonSchemaNode::definition(definitions.clone(), &name)
    }));
}

/// The user the API server presents to node agents (upstream's kubelet client certificate CN).
pub const KUBELET_CLIENT_USER: &str = "kube-apiserver-kubelet-client";

/// Runs the server until `shutdown` resolves. `on_ready` is called with the bound address and
/// the kubeconfig path once `/readyz` answers ok.
pub async fn run_server(
    cfg: ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send,
    on_ready: impl FnOnce(SocketAddr, PathBuf),
) -> Result<(), ClusterError> {
    let cidr = Ipv4Cidr::parse(&cfg.service_cidr).map_err(ClusterError::Config)?;
    std::fs::create_dir_all(&cfg.data_dir).map_err(|e| ClusterError::Config(format!("creating {}: {e}", cfg.data_dir.display())))?;
    let store = open_datastore(&cfg)?;
    let registry = Registry::new(store, RegistryConfig { service_cidr: cidr })
        .await
        .map_err(|e| ClusterError::Datastore(e.message))?;

    let mut sans = rkube_pki::PkiSans::default();
    for s in &cfg.tls_sans {
        match s.parse::<IpAddr>() {
            Ok(ip) => sans.ips.push(ip),
            Err(_) => sans.dns_names.push(s.clone()),
        }
    }
    if !cfg.bind_address.is_unspecified() {
        sans.ips.push(cfg.bind_address);
    }
    sans.ips.push(IpAddr::V4(cidr.first()));
    let pki = rkube_pki::load_or_create(&cfg.data_dir, &sans).map_err(|e| ClusterError::Pki(e.to_string()))?;
    let tls = rkube_pki::server_tls_config(&pki).map_err(|e| ClusterError::Pki(e.to_string()))?;

    let listener = tokio::net::TcpListener::bind(SocketAddr::new(cfg.bind_address, cfg.secure_port))
        .await
        .map_err(|e| ClusterError::Serve(format!("binding {}:{}: {e}", cfg.bind_address, cfg.secure_port)))?;
    let addr = listener.local_addr().map_err(|e| ClusterError::Serve(e.to_string()))?;
    tracing::info!(address = %addr, "listening (HTTPS)");

    // The authorizer follows the RBAC objects from here on; writes by API users are checked for
    // privilege escalation, the server's own writes are not.
    let authorizer = rkube_auth::Authorizer::new(registry.clone());
    let feed_task = tokio::spawn(rkube_auth::feed::run(authorizer.clone(), registry.clone()));
    let node_graph_task = tokio::spawn(rkube_auth::node::feed::run(authorizer.node_authorizer(), registry.clone()));
    let guard = authorizer.clone();
    registry.set_write_check(Arc::new(move |res, ns, new, old| rkube_auth::escalation::check_write(&guard, &res.group, &res.plural, ns, new, old)));

    let admission_config = match &cfg.admission_control_config_file {
        Some(path) => rkube_admission::config::AdmissionConfig::load(path).map_err(ClusterError::Config)?,
        None => Default::default(),
    };
    let admission = rkube_admission::AdmissionChain::with_config(&registry, &cfg.disable_admission_plugins, &admission_config).map_err(ClusterError::Config)?;
    registry.set_admission(Arc::new(admission));

    bootstrap::ensure_bootstrap_objects(&registry, &cidr.first().to_string(), addr.port())
        .await
        .map_err(|e| ClusterError::Bootstrap(e.message))?;
    if !cfg.disable.iter().any(|d| d == local_storage::COMPONENT) {
        local_storage::ensure_default_storage_class(&registry).await.map_err(|e| ClusterError::Bootstrap(e.message))?;
    }

    let proto = rkube_protobuf::ProtoCodec::new().map_err(|e| ClusterError::Config(format!("protobuf descriptors: {e}")))?;
    let advertise_host = if cfg.bind_address.is_unspecified() { IpAddr::from([127, 0, 0, 1]) } else { cfg.bind_address };
    let advertise = SocketAddr::new(advertise_host, addr.port());
    let (tokens, service_account_tokens) = token_authenticators(&cfg, &registry)?;
    // The identity node agents authorize the API server by (kubeadm's apiserver-kubelet-client;
    // the default policy binds it to system:kubelet-api-admin), minted at every start.
    let (kubelet_cert, kubelet_key) = pki.issue_client_cert(KUBELET_CLIENT_USER, &[]).map_err(|e| ClusterError::Pki(e.to_string()))?;
    let kubelet_tls = rkube_apiserver::kubelet_client::kubelet_client_config(Some((&kubelet_cert, &kubelet_key))).map_err(|e| ClusterError::Pki(e.message))?;
    let state = Arc::new(AppState {
        registry: registry.clone(),
        proto: Arc::new(proto),
        config: ApiServerConfig {
            advertise_address: advertise.to_string(),
            git_version: KUBERNETES_VERSION.to_string(),
            max_body_bytes: 3 * 1024 * 1024,
        },
        openapi_v3: rkube_apiserver::openapi::OpenApiV3::build(&registry.resources(), KUBERNETES_VERSION),
        ready: Default::default(),
        authorizer,
        tokens,
        service_account_tokens,
        audit: audit_log(&cfg)?,
        metrics: Default::default(),
        kubelet_tls: Arc::new(kubelet_tls),
    });
    let app = rkube_apiserver::router(state.clone());
    install_field_schemas(&registry, state.openapi_v3.catalog().clone());
    custom_openapi::install(&registry, state.openapi_v3.catalog().clone(), state.openapi_v3.documents().clone());

    let kubeconfig = cfg.data_dir.join("admin.kubeconfig");
    let url = format!("https://{advertise}");
    rkube_pki::write_kubeconfig(&kubeconfig, &url, &pki).map_err(|e| ClusterError::Pki(e.to_string()))?;
    node_join::ensure_cluster_info(&registry, &url, &pki.ca_cert_pem).await.map_err(|e| ClusterError::Bootstrap(e.message))?;
    if cfg.authentication.bootstrap_tokens {
        node_join::ensure_node_token(&registry, &cfg.data_dir).await.map_err(|e| ClusterError::Bootstrap(e.message))?;
    }

    // Stored CRDs are served again before /readyz says ok (upstream's
    // `crd-informer-synced` post-start hook).
    rkube_registry::crd::controller::sync_all(&registry)
        .await
        .map_err(|e| ClusterError::Bootstrap(format!("serving CustomResourceDefinitions: {}", e.message)))?;
    let crd_task = tokio::spawn(rkube_registry::crd::controller::run(registry.clone()));
    let aggregation_task = tokio::spawn(rkube_auth::aggregation::run(registry.clone()));
    let quota_task = tokio::spawn(rkube_admission::quota_controller::run(registry.clone()));
    let metrics_task = tokio::spawn(rkube_apiserver::metrics::scraper::run(registry.clone(), state.metrics.clone(), state.kubelet_tls.clone(), cfg.metric_resolution));
    let controller_manager = controller_manager_config(&cfg)?;
    state.ready.store(true, Ordering::Release);
    // Components are API clients in their own tasks; their requests are answered once serving.
    let components = components::start(&pki, &url, &cfg.disable, cfg.node_monitor_grace_period).await?;
    let manager_task = match controller_manager {
        Some(manager_cfg) => Some(start_controller_manager(&cfg, &url, &pki, manager_cfg).await?),
        None => None,
    };
    on_ready(advertise, kubeconfig);
    rkube_apiserver::server::serve(listener, Arc::new(tls), app, shutdown).await;
    for c in components {
        c.abort();
    }
    if let Some(task) = manager_task {
        task.abort();
    }
    crd_task.abort();
    aggregation_task.abort();
    quota_task.abort();
    metrics_task.abort();
    feed_task.abort();
    node_graph_task.abort();
    Ok(())
}

/// The audit log of `--audit-log-path` with the policy of `--audit-policy-file` (both needed,
/// as kube-apiserver logs nothing without a policy).
fn audit_log(cfg: &ServerConfig) -> Result<Option<Arc<rkube_apiserver::audit::AuditLog>>, ClusterError> {
    let (Some(policy_file), Some(path)) = (&cfg.audit_policy_file, &cfg.audit_log_path) else { return Ok(None) };
    let text = std::fs::read_to_string(policy_file).map_err(|e| ClusterError::Config(format!("reading {}: {e}", policy_file.display())))?;
    let policy = rkube_apiserver::audit::Policy::parse(&text).map_err(ClusterError::Config)?;
    let log = rkube_apiserver::audit::AuditLog::open(policy, path).map_err(ClusterError::Config)?;
    Ok(Some(Arc::new(log)))
}

/// The in-process controller manager's configuration, `None` when `--disable=controller-manager`.
fn controller_manager_config(cfg: &ServerConfig) -> Result<Option<rkube_controllers::ManagerConfig>, ClusterError> {
    if cfg.disable.iter().any(|d| d == "controller-manager") {
        return Ok(None);
    }
    let manager_cfg = rkube_controllers::ManagerConfig {
        disabled: cfg.disable.iter().filter(|d| rkube_controllers::CONTROLLERS.contains(&d.as_str())).cloned().collect(),
        root_ca_pem: String::new(),
        local_storage_dir: cfg.default_local_storage_path.clone().unwrap_or_else(|| cfg.data_dir.join("storage")),
        horizontal_pod_autoscaler_sync_period: cfg.horizontal_pod_autoscaler_sync_period,
        csr_signing: None,
        node_ipam: cfg.node_ipam.clone(),
    };
    Ok(Some(manager_cfg))
}

/// Starts the controller manager as an API client of this server, authenticated by a client
/// certificate for `system:kube-controller-manager` (also written to
/// `controller-manager.kubeconfig` for running it as its own process).
async fn start_controller_manager(
    cfg: &ServerConfig,
    url: &str,
    pki: &rkube_pki::ClusterPki,
    mut manager_cfg: rkube_controllers::ManagerConfig,
) -> Result<tokio::task::JoinHandle<()>, ClusterError> {
    let user = rkube_controllers::USER_NAME;
    let (cert, key) = pki.issue_client_cert(user, &[]).map_err(|e| ClusterError::Pki(e.to_string()))?;
    let yaml = rkube_pki::kubeconfig_yaml(url, "rkube", user, &pki.ca_cert_pem, &cert, &key).map_err(|e| ClusterError::Pki(e.to_string()))?;
    let path = cfg.data_dir.join("controller-manager.kubeconfig");
    write_private(&path, &yaml).map_err(|e| ClusterError::Pki(format!("writing {}: {e}", path.display())))?;
    let client = rkube_controllers::client_from_kubeconfig(&yaml).await.map_err(|e| ClusterError::Config(e.to_string()))?;
    manager_cfg.root_ca_pem = pki.ca_cert_pem.clone();
    let signer = pki.csr_signer().map_err(|e| ClusterError::Pki(e.to_string()))?;
    manager_cfg.csr_signing = Some(Arc::new(rkube_controllers::csr_signing::CsrSigning { signer, max_duration: cfg.cluster_signing_duration }));
    Ok(tokio::spawn(async move {
        if let Err(e) = rkube_controllers::run(client, manager_cfg, std::future::pending()).await {
            tracing::error!(error = %e, "controller manager stopped");
        }
    }))
}

/// Writes a file only its owner can read (it holds a private key).
fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}
