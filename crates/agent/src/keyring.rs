//! Registry credentials matched to images as the kubelet's credential keyring does (upstream
//! `pkg/credentialprovider/keyring.go`, `config.go` and `secrets/secrets.go`): docker config
//! entries keyed by `host[:port][/path]` (an `https://` or `http://` prefix and a `/v1/` or
//! `/v2/` path are dropped), host names may hold globs per dot-separated part (`*.example.com`),
//! the path is a prefix, longer keys are tried first, and `index.docker.io` credentials serve
//! every Docker Hub image. Every matching credential is returned, in order, so a pull can try
//! each in turn.

use std::collections::HashMap;

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use serde::Deserialize;

use crate::runtime::PullAuth;

/// The Secret types and keys the kubelet reads pull credentials from.
pub const DOCKER_CONFIG_JSON_TYPE: &str = "kubernetes.io/dockerconfigjson";
pub const DOCKER_CONFIG_JSON_KEY: &str = ".dockerconfigjson";
pub const DOCKERCFG_TYPE: &str = "kubernetes.io/dockercfg";
pub const DOCKERCFG_KEY: &str = ".dockercfg";

/// Docker Hub's key in docker config files (`https://index.docker.io/v1/` normalises to it).
const DEFAULT_REGISTRY_HOST: &str = "index.docker.io";

/// One entry of a docker config (`auths.<registry>` in `config.json`, or a `.dockercfg` value).
#[derive(Debug, Default, Deserialize)]
struct DockerConfigEntry {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    /// base64 of `username:password`; wins over the separate fields when set.
    #[serde(default)]
    auth: String,
}

#[derive(Debug, Default, Deserialize)]
struct DockerConfigJson {
    #[serde(default)]
    auths: serde_json::Map<String, serde_json::Value>,
}

/// Credentials keyed by registry location; see the module documentation.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    /// Distinct keys, reverse-sorted so more specific paths come first
    /// (`quay.io/coreos` before `quay.io`).
    index: Vec<String>,
    credentials: HashMap<String, Vec<PullAuth>>,
}

/// `user:password` from the base64 `auth` field (padded or not, as the kubelet accepts).
pub(crate) fn decode_auth_field(field: &str) -> Result<(String, String), String> {
    let trimmed = field.trim();
    let decoded = if trimmed.ends_with('=') {
        base64::engine::general_purpose::STANDARD.decode(trimmed)
    } else {
        base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed)
    }
    .map_err(|e| format!("illegal base64 data in auth field: {e}"))?;
    let text = String::from_utf8_lossy(&decoded);
    match text.split_once(':') {
        Some((user, password)) => Ok((user.to_string(), password.to_string())),
        None => Err("must be formatted as base64(username:password)".into()),
    }
}

/// The `(location, credential)` pairs of a docker config's registry map.
fn entries_of(
    map: serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<(String, PullAuth)>, String> {
    let mut out = Vec::new();
    for (location, value) in map {
        let entry: DockerConfigEntry =
            serde_json::from_value(value).map_err(|e| format!("{location}: {e}"))?;
        let (username, password) = if entry.auth.is_empty() {
            (entry.username, entry.password)
        } else {
            decode_auth_field(&entry.auth)?
        };
        out.push((
            location,
            PullAuth {
                username,
                password,
                ..Default::default()
            },
        ));
    }
    Ok(out)
}

/// The credentials of a `kubernetes.io/dockerconfigjson` or `kubernetes.io/dockercfg` Secret;
/// other Secrets (or ones missing their key) give none, as upstream ignores them.
pub fn secret_credentials(secret: &Secret) -> Result<Vec<(String, PullAuth)>, String> {
    let data = secret.data.as_ref();
    let bytes = |key: &str| {
        data.and_then(|d| d.get(key))
            .map(|b| b.0.as_slice())
            .filter(|b| !b.is_empty())
    };
    match secret.type_.as_deref() {
        Some(DOCKER_CONFIG_JSON_TYPE) => match bytes(DOCKER_CONFIG_JSON_KEY) {
            Some(b) => {
                let config: DockerConfigJson =
                    serde_json::from_slice(b).map_err(|e| e.to_string())?;
                entries_of(config.auths)
            }
            None => Ok(Vec::new()),
        },
        Some(DOCKERCFG_TYPE) => match bytes(DOCKERCFG_KEY) {
            Some(b) => {
                let config: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_slice(b).map_err(|e| e.to_string())?;
                entries_of(config)
            }
            None => Ok(Vec::new()),
        },
        _ => Ok(Vec::new()),
    }
}

/// A location without scheme, split as Go's `url.Parse("https://" + s)` splits it: the host
/// (with port) and the path (empty or starting with `/`).
fn split_location(location: &str) -> (&str, &str) {
    match location.find('/') {
        Some(i) => (&location[..i], &location[i..]),
        None => (location, ""),
    }
}

/// The keyring key of a docker config location (upstream `BasicDockerKeyring.Add`).
fn key_of(location: &str) -> String {
    let schemeless = location
        .strip_prefix("https://")
        .or_else(|| location.strip_prefix("http://"))
        .unwrap_or(location);
    let (host, path) = split_location(schemeless);
    // The docker client treats `/v1/` and `/v2/` as the registry itself.
    let path = if path.starts_with("/v1/") || path.starts_with("/v2/") {
        &path[3..]
    } else {
        path
    };
    if path.is_empty() || path == "/" {
        host.to_string()
    } else {
        format!("{host}{path}")
    }
}

/// Host name parts and port (Go's `net.SplitHostPort`, the whole host when it has no port).
fn host_parts(host: &str) -> (Vec<&str>, &str) {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, tail)) => (ip, tail.strip_prefix(':').unwrap_or("")),
            None => (host, ""),
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if !name.contains(':') => (name, port),
            _ => (host, ""),
        }
    };
    (name.split('.').collect(), port)
}

/// Whether the key (whose host parts may be globs) matches the image repository (upstream
/// `URLsMatch`): same port, same number of host parts each matching, key path a prefix.
fn location_matches(key: &str, repository: &str) -> bool {
    let (key_host, key_path) = split_location(key);
    let (repo_host, repo_path) = split_location(repository);
    let (globs, key_port) = host_parts(key_host);
    let (parts, repo_port) = host_parts(repo_host);
    if key_port != repo_port || globs.len() != parts.len() || !repo_path.starts_with(key_path) {
        return false;
    }
    globs.iter().zip(&parts).all(|(pattern, part)| {
        glob::Pattern::new(pattern)
            .map(|p| p.matches(part))
            .unwrap_or(false)
    })
}

/// Whether the repository is pulled from Docker Hub (upstream `isDefaultRegistryMatch`).
fn is_default_registry(repository: &str) -> bool {
    let (first, rest) = match repository.split_once('/') {
        Some((first, rest)) => (first, Some(rest)),
        None => (repository, None),
    };
    if first.is_empty() {
        return false;
    }
    rest.is_none()
        || first == "docker.io"
        || first == DEFAULT_REGISTRY_HOST
        || !first.contains(['.', ':'])
}

impl Keyring {
    /// Adds credentials by docker config location (`https://index.docker.io/v1/`,
    /// `registry.example.com:5000`, `*.example.com/team`).
    pub fn add(&mut self, entries: impl IntoIterator<Item = (String, PullAuth)>) {
        for (location, auth) in entries {
            let key = key_of(&location);
            if !self.credentials.contains_key(&key) {
                self.index.push(key.clone());
            }
            self.credentials.entry(key).or_default().push(auth);
        }
        self.index.sort_by(|a, b| b.cmp(a));
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Every credential whose location matches the repository (`docker.io/library/busybox`,
    /// see [`repository_of`]), most specific location first; Docker Hub credentials when none
    /// matches and the repository is on Docker Hub.
    pub fn lookup(&self, repository: &str) -> Vec<PullAuth> {
        let found: Vec<PullAuth> = self
            .index
            .iter()
            .filter(|key| location_matches(key, repository))
            .flat_map(|key| self.credentials.get(key).into_iter().flatten().cloned())
            .collect();
        if !found.is_empty() || !is_default_registry(repository) {
            return found;
        }
        self.credentials
            .get(DEFAULT_REGISTRY_HOST)
            .cloned()
            .unwrap_or_default()
    }
}

/// The registry host of a normalised repository (`docker.io`, `127.0.0.1:5000`).
pub fn registry_host(repository: &str) -> &str {
    split_location(repository).0
}

/// The fully qualified repository of an image reference, without tag or digest, as the
/// kubelet looks credentials up (`busybox:1` → `docker.io/library/busybox`,
/// `127.0.0.1:5000/team/app@sha256:…` → `127.0.0.1:5000/team/app`).
pub fn repository_of(image: &str) -> String {
    let name = image.split_once('@').map_or(image, |(name, _)| name);
    let name = match name.rfind(':') {
        Some(colon) if !name[colon..].contains('/') => &name[..colon],
        _ => name,
    };
    let (domain, path) = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (first, rest.to_string())
        }
        _ => ("docker.io", name.to_string()),
    };
    let domain = if domain == DEFAULT_REGISTRY_HOST {
        "docker.io"
    } else {
        domain
    };
    if domain == "docker.io" && !path.contains('/') {
        format!("{domain}/library/{path}")
    } else {
        format!("{domain}/{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use std::collections::BTreeMap;

    fn auth(user: &str) -> PullAuth {
        PullAuth {
            username: user.into(),
            password: format!("{user}-pw"),
            ..Default::default()
        }
    }

    fn users(found: &[PullAuth]) -> Vec<&str> {
        found.iter().map(|a| a.username.as_str()).collect()
    }

    #[test]
    fn image_references_normalise_like_docker() {
        assert_eq!(repository_of("busybox"), "docker.io/library/busybox");
        assert_eq!(repository_of("busybox:1.36"), "docker.io/library/busybox");
        assert_eq!(repository_of("team/app:v1"), "docker.io/team/app");
        assert_eq!(
            repository_of("index.docker.io/library/busybox"),
            "docker.io/library/busybox"
        );
        assert_eq!(
            repository_of("127.0.0.1:5000/private/busybox:latest"),
            "127.0.0.1:5000/private/busybox"
        );
        assert_eq!(repository_of("localhost/app@sha256:abc"), "localhost/app");
        assert_eq!(
            repository_of("registry.example.com:5000/a/b:tag@sha256:abc"),
            "registry.example.com:5000/a/b"
        );
    }

    #[test]
    fn longer_paths_match_first_and_all_matches_are_returned() {
        let mut k = Keyring::default();
        k.add([
            ("quay.io".to_string(), auth("host")),
            ("quay.io/coreos".to_string(), auth("team")),
            ("https://quay.io/v2/".to_string(), auth("host2")),
        ]);
        assert_eq!(
            users(&k.lookup("quay.io/coreos/etcd")),
            ["team", "host", "host2"]
        );
        assert_eq!(users(&k.lookup("quay.io/other/etcd")), ["host", "host2"]);
        assert!(k.lookup("gcr.io/coreos/etcd").is_empty());
    }

    #[test]
    fn hosts_match_by_glob_part_and_port_exactly() {
        let mut k = Keyring::default();
        k.add([
            ("*.example.com".to_string(), auth("glob")),
            ("127.0.0.1:5000".to_string(), auth("local")),
        ]);
        assert_eq!(users(&k.lookup("eu.example.com/app")), ["glob"]);
        // A glob part matches one host part only.
        assert!(k.lookup("a.eu.example.com/app").is_empty());
        assert!(k.lookup("example.com/app").is_empty());
        assert_eq!(
            users(&k.lookup("127.0.0.1:5000/private/busybox")),
            ["local"]
        );
        assert!(k.lookup("127.0.0.1:5001/private/busybox").is_empty());
        assert!(k.lookup("127.0.0.1/private/busybox").is_empty());
    }

    #[test]
    fn docker_hub_credentials_serve_docker_hub_images() {
        let mut k = Keyring::default();
        k.add([("https://index.docker.io/v1/".to_string(), auth("hub"))]);
        assert_eq!(users(&k.lookup(&repository_of("busybox"))), ["hub"]);
        assert_eq!(users(&k.lookup(&repository_of("team/app"))), ["hub"]);
        assert!(k.lookup("quay.io/team/app").is_empty());
    }

    fn secret(type_: &str, key: &str, data: &str) -> Secret {
        Secret {
            type_: Some(type_.into()),
            data: Some(BTreeMap::from([(
                key.to_string(),
                ByteString(data.as_bytes().to_vec()),
            )])),
            ..Default::default()
        }
    }

    #[test]
    fn dockerconfigjson_and_dockercfg_secrets_give_their_credentials() {
        // `kubectl create secret docker-registry` writes both the fields and `auth`.
        let json = secret(
            DOCKER_CONFIG_JSON_TYPE,
            DOCKER_CONFIG_JSON_KEY,
            r#"{"auths":{"127.0.0.1:5000":{"username":"kube","password":"s3cret","auth":"a3ViZTpzM2NyZXQ="}}}"#,
        );
        let found = secret_credentials(&json).unwrap_or_default();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "127.0.0.1:5000");
        assert_eq!(
            (found[0].1.username.as_str(), found[0].1.password.as_str()),
            ("kube", "s3cret")
        );
        // `auth` alone (unpadded base64 too) is enough, and wins over the fields.
        let legacy = secret(
            DOCKERCFG_TYPE,
            DOCKERCFG_KEY,
            r#"{"https://index.docker.io/v1/":{"username":"x","auth":"dTpwOnc"}}"#,
        );
        let found = secret_credentials(&legacy).unwrap_or_default();
        assert_eq!(
            (found[0].1.username.as_str(), found[0].1.password.as_str()),
            ("u", "p:w")
        );
        // The key must belong to the type; other secrets hold no credentials.
        let mismatched = secret(DOCKERCFG_TYPE, DOCKER_CONFIG_JSON_KEY, "{}");
        assert!(
            secret_credentials(&mismatched)
                .unwrap_or_default()
                .is_empty()
        );
        let opaque = secret("Opaque", DOCKER_CONFIG_JSON_KEY, "{\"auths\":{}}");
        assert!(secret_credentials(&opaque).unwrap_or_default().is_empty());
        let broken = secret(DOCKER_CONFIG_JSON_TYPE, DOCKER_CONFIG_JSON_KEY, "{");
        assert!(secret_credentials(&broken).is_err());
        let bad_auth = secret(
            DOCKER_CONFIG_JSON_TYPE,
            DOCKER_CONFIG_JSON_KEY,
            r#"{"auths":{"r":{"auth":"bm9jb2xvbg=="}}}"#,
        );
        assert_eq!(
            secret_credentials(&bad_auth).err().as_deref(),
            Some("must be formatted as base64(username:password)")
        );
    }
}
