//! kubeconfig files (client-go `tools/clientcmd/api/v1` `Config`), with embedded base64 data.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use crate::{ADMIN_USER, ClusterPki, PkiError, files};

/// The cluster and context name written into kubeconfig files.
pub const KUBECONFIG_NAME: &str = "rkube";

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Config<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    kind: &'a str,
    clusters: Vec<Named<'a, Cluster>>,
    contexts: Vec<Named<'a, Context<'a>>>,
    current_context: &'a str,
    preferences: Preferences,
    users: Vec<Named<'a, User>>,
}

/// client-go's named entries: `{name, cluster|context|user}`; the payload key is the
/// flattened field name.
#[derive(Serialize)]
struct Named<'a, T: Serialize> {
    name: &'a str,
    #[serde(flatten)]
    item: T,
}

#[derive(Serialize)]
struct Cluster {
    cluster: ClusterBody,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ClusterBody {
    certificate_authority_data: String,
    server: String,
}

#[derive(Serialize)]
struct Context<'a> {
    context: ContextBody<'a>,
}

#[derive(Serialize)]
struct ContextBody<'a> {
    cluster: &'a str,
    user: &'a str,
}

#[derive(Serialize)]
struct Preferences {}

#[derive(Serialize)]
struct User {
    user: UserBody,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct UserBody {
    client_certificate_data: String,
    client_key_data: String,
}

/// Renders a kubeconfig for one cluster/user/context (`name` is used for the cluster and the
/// context, `user` for the user entry), with the CA, client certificate and key embedded.
pub fn kubeconfig_yaml(
    server_url: &str,
    name: &str,
    user: &str,
    ca_cert_pem: &str,
    client_cert_pem: &str,
    client_key_pem: &str,
) -> Result<String, PkiError> {
    let config = Config {
        api_version: "v1",
        kind: "Config",
        clusters: vec![Named {
            name,
            item: Cluster {
                cluster: ClusterBody {
                    certificate_authority_data: STANDARD.encode(ca_cert_pem),
                    server: server_url.to_string(),
                },
            },
        }],
        contexts: vec![Named { name, item: Context { context: ContextBody { cluster: name, user } } }],
        current_context: name,
        preferences: Preferences {},
        users: vec![Named {
            name: user,
            item: User {
                user: UserBody {
                    client_certificate_data: STANDARD.encode(client_cert_pem),
                    client_key_data: STANDARD.encode(client_key_pem),
                },
            },
        }],
    };
    Ok(serde_yaml_ng::to_string(&config)?)
}

/// Writes the admin kubeconfig (cluster and context `rkube`, user `rkube-admin`) to `path`
/// with mode 0600, atomically.
pub fn write_kubeconfig(path: &Path, server_url: &str, pki: &ClusterPki) -> Result<(), PkiError> {
    let yaml = kubeconfig_yaml(
        server_url,
        KUBECONFIG_NAME,
        ADMIN_USER,
        &pki.ca_cert_pem,
        &pki.admin_cert_pem,
        &pki.admin_key_pem,
    )?;
    files::write_atomic(path, yaml.as_bytes(), 0o600)
}
