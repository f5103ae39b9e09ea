//! The node's registries file (`--registries-config`, k3s's `registries.yaml` format): mirrors
//! and per-registry TLS become containerd's hosts configuration (`<dir>/<host>/hosts.toml`,
//! read from the CRI plugin's `config_path` by containerd 1.6, 1.7 and 2.x alike), and
//! per-registry credentials become the node's pull credentials (sent as CRI AuthConfig, after
//! the pod's imagePullSecrets). Registries on loopback need no entry: containerd speaks plain
//! HTTP to them by itself.
//!
//! ```yaml
//! mirrors:
//!   docker.io:
//!     endpoint: ["http://127.0.0.1:5000", "https://mirror.example.com/dockerhub"]
//! configs:
//!   mirror.example.com:
//!     auth: {username: kube, password: s3cret}
//!     tls: {ca_file: /etc/ssl/mirror-ca.pem, cert_file: …, key_file: …, insecure_skip_verify: false}
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::images::NodeCredentials;
use crate::keyring::{self, Keyring};
use crate::runtime::PullAuth;

/// The file as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistriesConfig {
    #[serde(default)]
    pub mirrors: BTreeMap<String, Mirror>,
    #[serde(default)]
    pub configs: BTreeMap<String, RegistryConfig>,
}

/// Where pulls of one registry (or of every registry, `"*"`) go first.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mirror {
    /// Endpoint URLs tried in order before the registry itself (`https://` when no scheme).
    #[serde(default)]
    pub endpoint: Vec<String>,
    /// k3s's repository rewrites: accepted so k3s files load, refused when not empty.
    #[serde(default)]
    pub rewrite: BTreeMap<String, String>,
}

/// Credentials and TLS settings of one registry host (a registry or a mirror endpoint).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    pub auth: Option<RegistryAuth>,
    pub tls: Option<RegistryTls>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryAuth {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    /// base64 of `username:password`, as in docker config files.
    #[serde(default)]
    pub auth: String,
    #[serde(default)]
    pub identity_token: String,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryTls {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// A registries file that cannot be used, with the reason.
#[derive(Debug, thiserror::Error)]
#[error("registries config {path}: {reason}")]
pub struct RegistriesError {
    pub path: String,
    pub reason: String,
}

/// containerd's `hosts.toml` for one registry.
#[derive(Debug, Serialize, PartialEq)]
struct HostsFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<String>,
    #[serde(flatten)]
    tls: HostTls,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    host: BTreeMap<String, HostEntry>,
}

#[derive(Debug, Default, Serialize, PartialEq)]
struct HostTls {
    #[serde(skip_serializing_if = "Option::is_none")]
    ca: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<Vec<[String; 2]>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skip_verify: Option<bool>,
}

#[derive(Debug, Serialize, PartialEq)]
struct HostEntry {
    capabilities: Vec<&'static str>,
    #[serde(flatten)]
    tls: HostTls,
}

/// The host (with port) of an endpoint URL or bare `host[:port][/path]`.
fn endpoint_host(endpoint: &str) -> &str {
    let rest = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest)
}

/// The registry's own address, used when no mirror answers (containerd's `server`).
fn default_server(registry: &str) -> String {
    match registry {
        "docker.io" => "https://registry-1.docker.io".into(),
        other => format!("https://{other}"),
    }
}

impl RegistriesConfig {
    /// Reads and checks the file.
    pub fn load(path: &Path) -> Result<Self, RegistriesError> {
        let error = |reason: String| RegistriesError {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        let config: Self = serde_yaml_ng::from_str(&text).map_err(|e| error(e.to_string()))?;
        config.check().map_err(error)?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        for (registry, mirror) in &self.mirrors {
            if !mirror.rewrite.is_empty() {
                return Err(format!(
                    "mirrors.{registry}.rewrite: repository rewrites are not supported"
                ));
            }
            for endpoint in &mirror.endpoint {
                let scheme = endpoint.split_once("://").map(|(s, _)| s);
                if !matches!(scheme, None | Some("http" | "https"))
                    || endpoint_host(endpoint).is_empty()
                {
                    return Err(format!(
                        "mirrors.{registry}.endpoint: {endpoint:?} is not an http(s) URL"
                    ));
                }
            }
        }
        for (host, config) in &self.configs {
            if let Some(tls) = &config.tls
                && tls.cert_file.is_some() != tls.key_file.is_some()
            {
                return Err(format!(
                    "configs.{host}.tls: cert_file and key_file go together"
                ));
            }
            if let Some(auth) = &config.auth
                && !auth.auth.is_empty()
            {
                keyring::decode_auth_field(&auth.auth)
                    .map_err(|e| format!("configs.{host}.auth.auth: {e}"))?;
            }
        }
        Ok(())
    }

    fn tls_of(&self, host: &str) -> HostTls {
        let Some(tls) = self.configs.get(host).and_then(|c| c.tls.as_ref()) else {
            return HostTls::default();
        };
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        HostTls {
            ca: path(&tls.ca_file),
            client: path(&tls.cert_file)
                .zip(path(&tls.key_file))
                .map(|pair| vec![[pair.0, pair.1]]),
            skip_verify: tls.insecure_skip_verify.then_some(true),
        }
    }

    /// The `hosts.toml` of every registry the file mentions, by containerd's directory name
    /// (`docker.io`, `127.0.0.1:5000`; `_default` for the `"*"` mirror).
    fn hosts_files(&self) -> BTreeMap<String, HostsFile> {
        let mut files = BTreeMap::new();
        for (registry, mirror) in &self.mirrors {
            let host = mirror
                .endpoint
                .iter()
                .map(|endpoint| {
                    let url = if endpoint.contains("://") {
                        endpoint.trim_end_matches('/').to_string()
                    } else {
                        format!("https://{}", endpoint.trim_end_matches('/'))
                    };
                    let entry = HostEntry {
                        capabilities: vec!["pull", "resolve"],
                        tls: self.tls_of(endpoint_host(endpoint)),
                    };
                    (url, entry)
                })
                .collect();
            let (dir, server) = if registry == "*" {
                ("_default".to_string(), None)
            } else {
                (registry.clone(), Some(default_server(registry)))
            };
            files.insert(
                dir,
                HostsFile {
                    server,
                    tls: self.tls_of(registry),
                    host,
                },
            );
        }
        // Registries with only TLS settings: the registry itself as an explicit https host
        // with them (containerd 1.6 would otherwise speak plain HTTP to a loopback server).
        for (registry, config) in &self.configs {
            if config.tls.is_some() && !files.contains_key(registry) {
                let server = default_server(registry);
                let entry = HostEntry {
                    capabilities: vec!["pull", "resolve"],
                    tls: self.tls_of(registry),
                };
                files.insert(
                    registry.clone(),
                    HostsFile {
                        server: Some(server.clone()),
                        tls: HostTls::default(),
                        host: BTreeMap::from([(server, entry)]),
                    },
                );
            }
        }
        files
    }

    /// Writes `<dir>/<registry>/hosts.toml` for every registry the file configures.
    pub fn write_hosts(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        let mut written = Vec::new();
        for (name, file) in self.hosts_files() {
            let toml = toml::to_string(&file).map_err(std::io::Error::other)?;
            let registry_dir = dir.join(&name);
            std::fs::create_dir_all(&registry_dir)?;
            let path = registry_dir.join("hosts.toml");
            let tmp = registry_dir.join(".hosts.toml.tmp");
            std::fs::write(
                &tmp,
                format!("# Written by rkube from its registries config.\n{toml}"),
            )?;
            std::fs::rename(&tmp, &path)?;
            written.push(path);
        }
        Ok(written)
    }

    /// The node's pull credentials from `configs.<host>.auth`.
    pub fn credentials(&self) -> RegistryCredentials {
        let mut keyring = Keyring::default();
        for (host, config) in &self.configs {
            let Some(auth) = &config.auth else { continue };
            let (username, password) = if !auth.auth.is_empty() {
                keyring::decode_auth_field(&auth.auth).unwrap_or_default()
            } else if !auth.identity_token.is_empty() {
                // containerd sends an identity token as the password of an empty user.
                (String::new(), auth.identity_token.clone())
            } else {
                (auth.username.clone(), auth.password.clone())
            };
            keyring.add([(
                host.clone(),
                PullAuth {
                    username,
                    password,
                    // A URL: containerd compares its host with the host it is pulling from.
                    server_address: format!("https://{}", endpoint_host(host)),
                },
            )]);
        }
        let mirrors = self
            .mirrors
            .iter()
            .map(|(registry, m)| {
                let hosts = m.endpoint.iter().map(|e| endpoint_host(e).to_string());
                (registry.clone(), hosts.collect())
            })
            .collect();
        RegistryCredentials { keyring, mirrors }
    }
}

/// Credentials of the registries file: those of the image's registry, then those of its
/// mirrors' endpoints (each bound to its host, so containerd sends it nowhere else).
#[derive(Debug, Default, Clone)]
pub struct RegistryCredentials {
    keyring: Keyring,
    /// Endpoint hosts by registry (`"*"` for every registry).
    mirrors: BTreeMap<String, Vec<String>>,
}

impl NodeCredentials for RegistryCredentials {
    fn lookup(&self, repository: &str) -> Vec<PullAuth> {
        let mut found = self.keyring.lookup(repository);
        let registry = keyring::registry_host(repository);
        let path = &repository[registry.len()..];
        let endpoints = self
            .mirrors
            .get(registry)
            .into_iter()
            .chain(self.mirrors.get("*"))
            .flatten();
        for endpoint in endpoints {
            for auth in self.keyring.lookup(&format!("{endpoint}{path}")) {
                if !found.contains(&auth) {
                    found.push(auth);
                }
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> RegistriesConfig {
        match serde_yaml_ng::from_str::<RegistriesConfig>(yaml) {
            Ok(c) => c,
            Err(e) => unreachable!("valid config: {e}"),
        }
    }

    fn hosts(config: &RegistriesConfig) -> BTreeMap<String, String> {
        config
            .hosts_files()
            .into_iter()
            .map(|(k, v)| (k, toml::to_string(&v).unwrap_or_default()))
            .collect()
    }

    #[test]
    fn mirrors_become_containerd_hosts_files() {
        let config = parse(
            r#"
mirrors:
  docker.io:
    endpoint: ["http://127.0.0.1:5000", "mirror.example.com/dockerhub/"]
  "*":
    endpoint: ["https://cache.example.com"]
configs:
  mirror.example.com:
    tls: {ca_file: /etc/ca.pem, cert_file: /etc/c.pem, key_file: /etc/k.pem}
  registry.example.com:
    tls: {insecure_skip_verify: true}
"#,
        );
        let files = hosts(&config);
        assert_eq!(
            files["docker.io"],
            "server = \"https://registry-1.docker.io\"\n\n\
             [host.\"http://127.0.0.1:5000\"]\ncapabilities = [\"pull\", \"resolve\"]\n\n\
             [host.\"https://mirror.example.com/dockerhub\"]\ncapabilities = [\"pull\", \"resolve\"]\n\
             ca = \"/etc/ca.pem\"\nclient = [[\"/etc/c.pem\", \"/etc/k.pem\"]]\n"
        );
        assert_eq!(
            files["_default"],
            "[host.\"https://cache.example.com\"]\ncapabilities = [\"pull\", \"resolve\"]\n"
        );
        assert_eq!(
            files["registry.example.com"],
            "server = \"https://registry.example.com\"\n\n\
             [host.\"https://registry.example.com\"]\ncapabilities = [\"pull\", \"resolve\"]\nskip_verify = true\n"
        );
        // The mirror's TLS also serves images named after the mirror itself.
        assert_eq!(
            files["mirror.example.com"],
            "server = \"https://mirror.example.com\"\n\n\
             [host.\"https://mirror.example.com\"]\ncapabilities = [\"pull\", \"resolve\"]\n\
             ca = \"/etc/ca.pem\"\nclient = [[\"/etc/c.pem\", \"/etc/k.pem\"]]\n"
        );
        assert_eq!(files.len(), 4);
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        let path = dir.path().join("registries.yaml");
        let refused = |yaml: &str| {
            std::fs::write(&path, yaml).unwrap_or_else(|e| unreachable!("{e}"));
            RegistriesConfig::load(&path)
                .err()
                .map(|e| e.reason)
                .unwrap_or_default()
        };
        assert!(refused("mirrors: {a: {endpoints: []}}").contains("unknown field `endpoints`"));
        assert_eq!(
            refused("mirrors: {a: {endpoint: [\"ftp://x\"]}}"),
            "mirrors.a.endpoint: \"ftp://x\" is not an http(s) URL"
        );
        assert_eq!(
            refused("configs: {a: {tls: {cert_file: /c}}}"),
            "configs.a.tls: cert_file and key_file go together"
        );
        assert_eq!(
            refused("mirrors: {a: {rewrite: {x: y}}}"),
            "mirrors.a.rewrite: repository rewrites are not supported"
        );
        std::fs::write(&path, "configs: {r: {auth: {username: u, password: p}}}")
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(RegistriesConfig::load(&path).is_ok());
    }

    #[test]
    fn credentials_serve_the_registry_and_its_mirrors_each_bound_to_its_host() {
        let config = parse(
            r#"
mirrors:
  docker.io: {endpoint: ["https://mirror.example.com"]}
configs:
  mirror.example.com: {auth: {username: m, password: mp}}
  127.0.0.1:5001: {auth: {auth: "a3ViZTpzM2NyZXQ="}}
"#,
        );
        let creds = config.credentials();
        let found = creds.lookup("127.0.0.1:5001/private/busybox");
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].username.as_str(), found[0].password.as_str()),
            ("kube", "s3cret")
        );
        assert_eq!(found[0].server_address, "https://127.0.0.1:5001");
        let found = creds.lookup("docker.io/library/busybox");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].username, "m");
        assert_eq!(found[0].server_address, "https://mirror.example.com");
        assert!(creds.lookup("quay.io/app").is_empty());
    }

    #[test]
    fn hosts_files_are_written_per_registry() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        let config = parse("mirrors: {docker.io: {endpoint: [\"http://127.0.0.1:5000\"]}}");
        let written = config.write_hosts(dir.path()).unwrap_or_default();
        assert_eq!(written, [dir.path().join("docker.io/hosts.toml")]);
        let text = std::fs::read_to_string(&written[0]).unwrap_or_default();
        assert!(text.contains("[host.\"http://127.0.0.1:5000\"]"), "{text}");
    }
}
