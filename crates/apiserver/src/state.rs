//! What every handler shares.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use rkube_protobuf::ProtoCodec;
use rkube_registry::Registry;

/// Server-wide settings.
#[derive(Debug, Clone)]
pub struct ApiServerConfig {
    /// `host:port` clients reach the server at (APIVersions.serverAddressByClientCIDRs).
    pub advertise_address: String,
    /// `gitVersion` reported by `/version`.
    pub git_version: String,
    /// Largest accepted request body (upstream: 3 MiB).
    pub max_body_bytes: usize,
}

/// Shared handler state.
pub struct AppState {
    /// The object store.
    pub registry: Arc<Registry>,
    /// Protobuf ⇄ JSON conversion.
    pub proto: Arc<ProtoCodec>,
    /// Settings.
    pub config: ApiServerConfig,
    /// OpenAPI v3 documents, built at start.
    pub openapi_v3: crate::openapi::OpenApiV3,
    /// Set once start-up finished (bootstrap objects exist): `/readyz` answers ok.
    pub ready: AtomicBool,
    /// Decides every request after authentication.
    pub authorizer: Arc<rkube_auth::Authorizer>,
    /// Bearer-token authentication (requests without a client certificate).
    pub tokens: rkube_auth::authn::TokenAuthenticators,
    /// Issues ServiceAccount tokens (TokenRequest) and publishes their key (OIDC discovery).
    pub service_account_tokens: Arc<rkube_auth::authn::service_account::ServiceAccountTokens>,
    /// The audit log, when `--audit-log-path` is set.
    pub audit: Option<Arc<crate::audit::AuditLog>>,
    /// Scraped node and pod usage served as `metrics.k8s.io`.
    pub metrics: Arc<crate::metrics::MetricsStore>,
    /// TLS towards node agents, with the API server's kubelet client certificate
    /// ([`crate::kubelet_client::kubelet_client_config`]).
    pub kubelet_tls: Arc<rustls::ClientConfig>,
}

/// The authenticated user of a request, inserted by the connection layer.
pub use rkube_auth::UserInfo;
