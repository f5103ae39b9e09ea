//! The cluster's PKI: a self-signed CA, the API server's serving certificate, the admin client
//! certificate, rustls configuration for serving with optional client certificates, and
//! kubeconfig files.
//!
//! Layout on disk (under the data directory), in the spirit of k3s' `server/tls`:
//! `tls/ca.crt`, `tls/ca.key`, `tls/serving.crt`, `tls/serving.key`, `tls/admin.crt`,
//! `tls/admin.key`. Private keys are written with mode 0600.

mod certs;
pub mod csr;
mod files;
pub mod insecure;
pub mod join;
mod kubeconfig;
mod tls;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

pub use kubeconfig::{KUBECONFIG_NAME, kubeconfig_yaml, write_kubeconfig};
pub use tls::{peer_identity, server_tls_config};

use certs::{CertAndKey, SanSet};

/// The first address of the default service CIDR (`10.43.0.0/16`, as k3s): the `kubernetes`
/// Service's cluster IP, which in-cluster clients dial.
pub const DEFAULT_KUBERNETES_SERVICE_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 43, 0, 1));

/// The user name of the admin client certificate.
pub const ADMIN_USER: &str = "rkube-admin";
/// The group of the admin client certificate (bound to `cluster-admin` by upstream's bootstrap RBAC).
pub const ADMIN_GROUP: &str = "system:masters";

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Generating or signing a certificate failed.
    #[error("certificate generation: {0}")]
    Cert(#[from] rcgen::Error),
    /// Building a TLS configuration failed.
    #[error("tls: {0}")]
    Tls(#[from] rustls::Error),
    /// A certificate, key or file did not parse or is inconsistent.
    #[error("{0}")]
    Parse(String),
    /// Serialising a kubeconfig failed.
    #[error("kubeconfig: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
}

/// Extra subject alternative names for the serving certificate (from `--tls-san`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PkiSans {
    /// Extra DNS names.
    pub dns_names: Vec<String>,
    /// Extra IP addresses.
    pub ips: Vec<IpAddr>,
}

impl PkiSans {
    /// Splits `--tls-san` values into IP addresses and DNS names.
    pub fn from_values<S: AsRef<str>>(values: &[S]) -> Self {
        let mut out = Self::default();
        for v in values {
            let v = v.as_ref().trim();
            if v.is_empty() {
                continue;
            }
            match v.parse::<IpAddr>() {
                Ok(ip) => out.ips.push(ip),
                Err(_) => out.dns_names.push(v.to_ascii_lowercase()),
            }
        }
        out
    }
}

/// The cluster's certificates, loaded from or created under a data directory.
#[derive(Clone)]
pub struct ClusterPki {
    /// The CA certificate (PEM); the trust root for clients and for client certificates.
    pub ca_cert_pem: String,
    ca_key_pem: String,
    /// The API server's serving certificate (PEM).
    pub serving_cert_pem: String,
    /// The serving certificate's private key (PKCS#8 PEM).
    pub serving_key_pem: String,
    /// The admin client certificate (PEM), CN=rkube-admin, O=system:masters.
    pub admin_cert_pem: String,
    /// The admin client certificate's private key (PKCS#8 PEM).
    pub admin_key_pem: String,
}

impl std::fmt::Debug for ClusterPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print private keys.
        f.debug_struct("ClusterPki")
            .field("ca_cert_pem", &self.ca_cert_pem)
            .field("serving_cert_pem", &self.serving_cert_pem)
            .field("admin_cert_pem", &self.admin_cert_pem)
            .finish_non_exhaustive()
    }
}

/// File names under `<dir>/tls`.
struct Paths {
    ca_crt: PathBuf,
    ca_key: PathBuf,
    serving_crt: PathBuf,
    serving_key: PathBuf,
    admin_crt: PathBuf,
    admin_key: PathBuf,
}

impl Paths {
    fn new(dir: &Path) -> Self {
        let tls = dir.join("tls");
        Self {
            ca_crt: tls.join("ca.crt"),
            ca_key: tls.join("ca.key"),
            serving_crt: tls.join("serving.crt"),
            serving_key: tls.join("serving.key"),
            admin_crt: tls.join("admin.crt"),
            admin_key: tls.join("admin.key"),
        }
    }
}

/// The SANs the serving certificate must carry: loopback, `localhost`, the machine's hostname,
/// the in-cluster names of the `kubernetes` Service (as kube-apiserver's
/// `pkg/controlplane/apiserver/options` adds them), its cluster IP, and the extra ones.
fn wanted_sans(extra: &PkiSans) -> SanSet {
    let mut dns: BTreeSet<String> = [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    if let Some(h) = hostname::get().ok().and_then(|h| h.into_string().ok()) {
        let h = h.trim().to_ascii_lowercase();
        if !h.is_empty() {
            dns.insert(h);
        }
    }
    dns.extend(extra.dns_names.iter().map(|d| d.to_ascii_lowercase()));
    let mut ips: BTreeSet<IpAddr> =
        [IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST), DEFAULT_KUBERNETES_SERVICE_IP].into();
    ips.extend(extra.ips.iter().copied());
    SanSet { dns, ips }
}

/// Loads a cert/key pair if both files exist. One without the other is an error: we never
/// silently replace half of a pair.
fn load_pair(crt: &Path, key: &Path) -> Result<Option<CertAndKey>, PkiError> {
    match (files::read_optional(crt)?, files::read_optional(key)?) {
        (Some(cert_pem), Some(key_pem)) => Ok(Some(CertAndKey { cert_pem, key_pem })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(PkiError::Parse(format!("{} exists but {} does not", crt.display(), key.display()))),
        (None, Some(_)) => Err(PkiError::Parse(format!("{} exists but {} does not", key.display(), crt.display()))),
    }
}

fn store_pair(crt: &Path, key: &Path, pair: &CertAndKey) -> Result<(), PkiError> {
    files::write_atomic(key, pair.key_pem.as_bytes(), 0o600)?;
    files::write_atomic(crt, pair.cert_pem.as_bytes(), 0o644)
}

/// Keeps an existing leaf pair when it matches its key and is signed by the CA and not near
/// expiry; `None` means it must be re-issued.
fn reusable(existing: Option<CertAndKey>, ca: &CertAndKey) -> Result<Option<CertAndKey>, PkiError> {
    let Some(pair) = existing else { return Ok(None) };
    let ok = certs::key_matches(&pair.cert_pem, &pair.key_pem).unwrap_or(false)
        && certs::still_good(&pair.cert_pem, &ca.cert_pem).unwrap_or(false);
    Ok(ok.then_some(pair))
}

/// Loads the cluster PKI from `dir/tls`, creating what is missing.
///
/// On first start this creates the CA, the serving certificate and the admin client
/// certificate. Later starts reuse them; the serving certificate is re-issued (with the same CA)
/// when it lacks a now-requested SAN, is not signed by the CA, or is within 90 days of expiry;
/// the admin certificate is re-issued only when invalid or near expiry. An existing CA whose key
/// does not match its certificate is an error, never silently replaced.
pub fn load_or_create(dir: &Path, sans: &PkiSans) -> Result<ClusterPki, PkiError> {
    let paths = Paths::new(dir);
    let ca = match load_pair(&paths.ca_crt, &paths.ca_key)? {
        Some(ca) => {
            if !certs::key_matches(&ca.cert_pem, &ca.key_pem)? {
                return Err(PkiError::Parse(format!(
                    "{} does not hold the private key of {}",
                    paths.ca_key.display(),
                    paths.ca_crt.display()
                )));
            }
            ca
        }
        None => {
            let ca = certs::new_ca()?;
            store_pair(&paths.ca_crt, &paths.ca_key, &ca)?;
            ca
        }
    };
    let issuer = certs::issuer(&ca)?;

    let wanted = wanted_sans(sans);
    let serving = match reusable(load_pair(&paths.serving_crt, &paths.serving_key)?, &ca)? {
        Some(pair) if certs::sans_of(&pair.cert_pem)?.covers(&wanted) => pair,
        _ => {
            let pair = certs::new_serving(&issuer, &wanted)?;
            store_pair(&paths.serving_crt, &paths.serving_key, &pair)?;
            pair
        }
    };

    let admin = match reusable(load_pair(&paths.admin_crt, &paths.admin_key)?, &ca)? {
        Some(pair) => pair,
        None => {
            let pair = certs::new_client(&issuer, ADMIN_USER, &[ADMIN_GROUP])?;
            store_pair(&paths.admin_crt, &paths.admin_key, &pair)?;
            pair
        }
    };

    Ok(ClusterPki {
        ca_cert_pem: ca.cert_pem,
        ca_key_pem: ca.key_pem,
        serving_cert_pem: serving.cert_pem,
        serving_key_pem: serving.key_pem,
        admin_cert_pem: admin.cert_pem,
        admin_key_pem: admin.key_pem,
    })
}

impl ClusterPki {
    /// Issues a client certificate signed by the cluster CA: CN is the user name, each `orgs`
    /// entry becomes an O value (a group). Returns `(cert_pem, key_pem)`. Nothing is written.
    pub fn issue_client_cert(&self, cn: &str, orgs: &[&str]) -> Result<(String, String), PkiError> {
        let issuer = certs::issuer(&CertAndKey { cert_pem: self.ca_cert_pem.clone(), key_pem: self.ca_key_pem.clone() })?;
        let pair = certs::new_client(&issuer, cn, orgs)?;
        Ok((pair.cert_pem, pair.key_pem))
    }

    /// A signer of certificate requests with the cluster CA (the CSR signing controller's).
    pub fn csr_signer(&self) -> Result<csr::Signer, PkiError> {
        csr::Signer::new(&self.ca_cert_pem, &self.ca_key_pem)
    }

    /// The CA certificate in DER form (for building trust stores).
    pub fn ca_cert_der(&self) -> Result<Vec<u8>, PkiError> {
        certs::pem_to_der(&self.ca_cert_pem)
    }

    /// The DNS names and IP addresses the serving certificate carries, as strings.
    pub fn serving_sans(&self) -> Result<Vec<String>, PkiError> {
        let set = certs::sans_of(&self.serving_cert_pem)?;
        Ok(set.dns.into_iter().chain(set.ips.iter().map(IpAddr::to_string)).collect())
    }
}

/// Writes a secret file (a token, a kubeconfig with a key) atomically with mode 0600, creating
/// its directory.
pub fn write_private_file(path: &Path, data: &[u8]) -> Result<(), PkiError> {
    files::write_atomic(path, data, 0o600)
}

/// Writes a kubeconfig at `path` for user `cn` in groups `orgs`, with a client certificate
/// signed by the CA kept in `dir` (for tools and tests minting users; nothing else in `dir`
/// changes).
pub fn write_user_kubeconfig(dir: &Path, path: &Path, server_url: &str, cn: &str, orgs: &[&str]) -> Result<(), PkiError> {
    let paths = Paths::new(dir);
    let ca = load_pair(&paths.ca_crt, &paths.ca_key)?.ok_or_else(|| PkiError::Parse(format!("no CA in {}", dir.display())))?;
    let issuer = certs::issuer(&ca)?;
    let pair = certs::new_client(&issuer, cn, orgs)?;
    let yaml = kubeconfig_yaml(server_url, KUBECONFIG_NAME, cn, &ca.cert_pem, &pair.cert_pem, &pair.key_pem)?;
    files::write_atomic(path, yaml.as_bytes(), 0o600)
}

#[cfg(test)]
mod tests;
