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
}

impl AuthnArgs {
    /// The server configuration these flags ask for.
    pub fn options(self) -> rkube_auth::authn::AuthnOptions {
        rkube_auth::authn::AuthnOptions {
            token_auth_file: self.token_auth_file,
            bootstrap_tokens: self.enable_bootstrap_token_auth,
            service_account_issuer: self.service_account_issuer,
            api_audiences: self.api_audiences,
        }
    }
}
