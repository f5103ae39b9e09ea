//! Token authentication flags of `rkube server`, named as kube-apiserver's.

use std::path::PathBuf;

/// Bearer-token authenticators to enable.
#[derive(clap::Args, Debug, Clone)]
pub struct AuthnArgs {
    /// CSV file of static tokens: `token,user,uid,"group1,group2"`.
    #[arg(long)]
    token_auth_file: Option<PathBuf>,
    /// Accept bootstrap tokens (`bootstrap-token-<id>` Secrets in kube-system).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    enable_bootstrap_token_auth: bool,
    /// Issuer (`iss`) of ServiceAccount tokens.
    #[arg(long, default_value = rkube_auth::authn::service_account::DEFAULT_ISSUER)]
    service_account_issuer: String,
    /// Audiences a token must be for to reach the API (default: the issuer).
    #[arg(long, value_delimiter = ',')]
    api_audiences: Vec<String>,
    /// URL of an OpenID Connect issuer whose ID tokens are accepted (https).
    #[arg(long)]
    oidc_issuer_url: Option<String>,
    /// Client id ID tokens must be issued for (their `aud`).
    #[arg(long, default_value = "")]
    oidc_client_id: String,
    /// Claim holding the user name.
    #[arg(long, default_value = "sub")]
    oidc_username_claim: String,
    /// Prefix of user names (default: the issuer URL and `#`, except for `email`; `-` for none).
    #[arg(long)]
    oidc_username_prefix: Option<String>,
    /// Claim holding the user's groups.
    #[arg(long)]
    oidc_groups_claim: Option<String>,
    /// Prefix of group names.
    #[arg(long, default_value = "")]
    oidc_groups_prefix: String,
    /// CA bundle that signed the issuer's serving certificate (default: the system's).
    #[arg(long)]
    oidc_ca_file: Option<PathBuf>,
    /// Kubeconfig of a service answering TokenReviews for tokens nothing else accepts.
    #[arg(long)]
    authentication_token_webhook_config_file: Option<PathBuf>,
    /// How long the webhook's answers are cached.
    #[arg(long, default_value = "2m", value_parser = crate::components::parse_duration)]
    authentication_token_webhook_cache_ttl: std::time::Duration,
}

impl AuthnArgs {
    /// The server configuration these flags ask for.
    pub fn options(self) -> rkube_auth::authn::AuthnOptions {
        rkube_auth::authn::AuthnOptions {
            token_auth_file: self.token_auth_file,
            bootstrap_tokens: self.enable_bootstrap_token_auth,
            service_account_issuer: self.service_account_issuer,
            api_audiences: self.api_audiences,
            oidc: self.oidc_issuer_url.map(|issuer_url| rkube_auth::authn::oidc::OidcOptions {
                issuer_url,
                client_id: self.oidc_client_id,
                username_claim: self.oidc_username_claim,
                username_prefix: self.oidc_username_prefix,
                groups_claim: self.oidc_groups_claim,
                groups_prefix: self.oidc_groups_prefix,
                ca_file: self.oidc_ca_file,
            }),
            webhook_config_file: self.authentication_token_webhook_config_file,
            webhook_cache_ttl: self.authentication_token_webhook_cache_ttl,
        }
    }
}
