//! Pod volumes on the node, laid out like the kubelet's (`<root>/pods/<uid>/volumes/<plugin>/<name>`)
//! and bind-mounted into containers: emptyDir (tmpfs for `medium: Memory`), hostPath (with its
//! type checks), persistentVolumeClaim (the bound PV's hostPath or local path), and the API-data
//! volumes (configMap, secret, downwardAPI, projected) written through [`atomic_writer`] and
//! refreshed while the pod runs, with service account tokens renewed before they expire.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, DownwardAPIVolumeFile, KeyToPath, Pod, Volume};
use kube::ResourceExt;
use parking_lot::Mutex;

use crate::atomic_writer::{self, FileContent, Payload};
use crate::env::{self, NodeAllocatable};
use crate::objects::{IssuedToken, PodObjects};
use crate::runtime::Mount;

/// How often the API-data volumes of a running pod are rewritten from the API (the kubelet
/// re-syncs them about every minute; sooner here so updates show quickly).
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(5);
/// Default file mode of API-data volumes (0644, upstream's `defaultMode: 420`).
const DEFAULT_MODE: u32 = 0o644;
/// A token older than this is renewed whatever its expiry (the kubelet's 24 h rule).
const TOKEN_MAX_AGE_SECONDS: i64 = 24 * 3600;

/// Why a volume could not be set up (`MountVolume.SetUp failed for volume "x" : …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeError {
    pub volume: String,
    pub message: String,
}

impl std::fmt::Display for VolumeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MountVolume.SetUp failed for volume \"{}\" : {}",
            self.volume, self.message
        )
    }
}

/// A volume ready on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedVolume {
    pub host_path: PathBuf,
    /// ConfigMap, Secret, downward API and projected volumes are always mounted read-only.
    pub read_only: bool,
}

pub type Prepared = HashMap<String, PreparedVolume>;

struct CachedToken {
    token: IssuedToken,
    issued_at: i64,
}

/// Sets up and tears down the volumes of the pods on this node.
pub struct VolumeManager {
    root: PathBuf,
    objects: Arc<dyn PodObjects>,
    node: NodeAllocatable,
    /// Tokens by `<pod uid>/<volume>/<source index>`.
    tokens: Mutex<HashMap<String, CachedToken>>,
    /// The last successful set-up of each pod, reused until [`REFRESH_INTERVAL`] passes.
    prepared: Mutex<HashMap<String, (Instant, Prepared)>>,
}

fn now_seconds() -> i64 {
    k8s_openapi::jiff::Timestamp::now().as_second()
}

fn fail(volume: &str, message: impl Into<String>) -> VolumeError {
    VolumeError {
        volume: volume.to_string(),
        message: message.into(),
    }
}

fn mode_of(mode: Option<i32>, default: u32) -> u32 {
    mode.map(|m| (m as u32) & 0o7777).unwrap_or(default)
}

/// Whether a filesystem is mounted at `path`.
fn is_mount_point(path: &Path) -> bool {
    let wanted = path.to_string_lossy();
    std::fs::read_to_string("/proc/self/mounts")
        .map(|m| {
            m.lines()
                .any(|l| l.split_whitespace().nth(1) == Some(&*wanted))
        })
        .unwrap_or(false)
}

fn mount_tmpfs(path: &Path, size_bytes: Option<i64>) -> Result<(), String> {
    if is_mount_point(path) {
        return Ok(());
    }
    let mut options = String::from("mode=0777");
    if let Some(size) = size_bytes.filter(|s| *s > 0) {
        options.push_str(&format!(",size={size}"));
    }
    let out = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &options, "tmpfs"])
        .arg(path)
        .output()
        .map_err(|e| format!("mount tmpfs: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "mount tmpfs: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The files of `items` (or of every key) from a ConfigMap's or Secret's data.
fn key_files(
    data: HashMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    default_mode: u32,
    missing_key: impl Fn(&str) -> String,
) -> Result<Payload, String> {
    let mut payload = Payload::new();
    match items {
        Some(items) if !items.is_empty() => {
            for item in items {
                let data = data.get(&item.key).ok_or_else(|| missing_key(&item.key))?;
                payload.insert(
                    item.path.clone(),
                    FileContent {
                        data: data.clone(),
                        mode: mode_of(item.mode, default_mode),
                    },
                );
            }
        }
        _ => {
            for (key, data) in data {
                payload.insert(
                    key,
                    FileContent {
                        data,
                        mode: default_mode,
                    },
                );
            }
        }
    }
    Ok(payload)
}

impl VolumeManager {
    pub fn new(root: PathBuf, objects: Arc<dyn PodObjects>, node: NodeAllocatable) -> Self {
        Self {
            root,
            objects,
            node,
            tokens: Mutex::new(HashMap::new()),
            prepared: Mutex::new(HashMap::new()),
        }
    }

    /// `<root>/pods/<uid>`: everything the agent keeps on disk for the pod.
    pub fn pod_dir(&self, uid: &str) -> PathBuf {
        self.root.join("pods").join(uid)
    }

    fn volume_dir(&self, uid: &str, plugin: &str, name: &str) -> PathBuf {
        self.pod_dir(uid)
            .join("volumes")
            .join(format!("kubernetes.io~{plugin}"))
            .join(name)
    }

    /// Sets up every volume of the pod (or reuses the last set-up while it is fresh).
    pub async fn prepare(&self, pod: &Pod, host_ip: &str) -> Result<Prepared, VolumeError> {
        let uid = pod.uid().unwrap_or_default();
        if let Some((at, prepared)) = self.prepared.lock().get(&uid)
            && at.elapsed() < REFRESH_INTERVAL
        {
            return Ok(prepared.clone());
        }
        let mut prepared = Prepared::new();
        let volumes = pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.clone())
            .unwrap_or_default();
        for volume in &volumes {
            let ready = self.prepare_one(pod, &uid, volume, host_ip).await?;
            prepared.insert(volume.name.clone(), ready);
        }
        self.prepared
            .lock()
            .insert(uid, (Instant::now(), prepared.clone()));
        Ok(prepared)
    }

    async fn prepare_one(
        &self,
        pod: &Pod,
        uid: &str,
        volume: &Volume,
        host_ip: &str,
    ) -> Result<PreparedVolume, VolumeError> {
        let name = volume.name.as_str();
        let namespace = pod.namespace().unwrap_or_default();
        let writable = |host_path: PathBuf| PreparedVolume {
            host_path,
            read_only: false,
        };
        if let Some(empty) = &volume.empty_dir {
            let dir = self.volume_dir(uid, "empty-dir", name);
            std::fs::create_dir_all(&dir).map_err(|e| fail(name, e.to_string()))?;
            if empty.medium.as_deref() == Some("Memory") {
                let size = empty
                    .size_limit
                    .as_ref()
                    .and_then(|q| rkube_apimachinery::quantity::value(&q.0))
                    .or(Some(self.node.memory_bytes));
                mount_tmpfs(&dir, size).map_err(|e| fail(name, e))?;
            } else {
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
                    .map_err(|e| fail(name, e.to_string()))?;
            }
            return Ok(writable(dir));
        }
        if let Some(host) = &volume.host_path {
            let path = PathBuf::from(&host.path);
            check_host_path(&path, host.type_.as_deref().unwrap_or(""))
                .map_err(|e| fail(name, e))?;
            return Ok(writable(path));
        }
        if let Some(claim_source) = &volume.persistent_volume_claim {
            let path = self
                .claim_path(&namespace, &claim_source.claim_name)
                .await
                .map_err(|e| fail(name, e))?;
            std::fs::create_dir_all(&path).map_err(|e| fail(name, e.to_string()))?;
            return Ok(PreparedVolume {
                host_path: path,
                read_only: claim_source.read_only.unwrap_or(false),
            });
        }
        let (plugin, payload) = if let Some(source) = &volume.config_map {
            let mode = mode_of(source.default_mode, DEFAULT_MODE);
            let payload = self
                .config_map_files(
                    &namespace,
                    &source.name,
                    source.items.as_deref(),
                    mode,
                    source.optional.unwrap_or(false),
                )
                .await
                .map_err(|e| fail(name, e))?;
            ("configmap", payload)
        } else if let Some(source) = &volume.secret {
            let mode = mode_of(source.default_mode, DEFAULT_MODE);
            let secret_name = source.secret_name.clone().unwrap_or_default();
            let payload = self
                .secret_files(
                    &namespace,
                    &secret_name,
                    source.items.as_deref(),
                    mode,
                    source.optional.unwrap_or(false),
                )
                .await
                .map_err(|e| fail(name, e))?;
            ("secret", payload)
        } else if let Some(source) = &volume.downward_api {
            let mode = mode_of(source.default_mode, DEFAULT_MODE);
            let payload = downward_files(
                pod,
                source.items.as_deref().unwrap_or_default(),
                mode,
                host_ip,
                self.node,
            )
            .map_err(|e| fail(name, e))?;
            ("downward-api", payload)
        } else if let Some(source) = &volume.projected {
            let mode = mode_of(source.default_mode, DEFAULT_MODE);
            let mut payload = Payload::new();
            for (index, projection) in source.sources.iter().flatten().enumerate() {
                let files = if let Some(cm) = &projection.config_map {
                    self.config_map_files(
                        &namespace,
                        &cm.name,
                        cm.items.as_deref(),
                        mode,
                        cm.optional.unwrap_or(false),
                    )
                    .await
                } else if let Some(secret) = &projection.secret {
                    self.secret_files(
                        &namespace,
                        &secret.name,
                        secret.items.as_deref(),
                        mode,
                        secret.optional.unwrap_or(false),
                    )
                    .await
                } else if let Some(downward) = &projection.downward_api {
                    downward_files(
                        pod,
                        downward.items.as_deref().unwrap_or_default(),
                        mode,
                        host_ip,
                        self.node,
                    )
                } else if let Some(token) = &projection.service_account_token {
                    let key = format!("{uid}/{name}/{index}");
                    let issued = self
                        .token(
                            &key,
                            pod,
                            token.audience.as_deref().filter(|a| !a.is_empty()),
                            token.expiration_seconds.unwrap_or(3600),
                        )
                        .await
                        .map_err(|e| fail(name, e))?;
                    Ok(Payload::from([(
                        token.path.clone(),
                        FileContent {
                            data: issued.into_bytes(),
                            mode,
                        },
                    )]))
                } else {
                    Ok(Payload::new())
                };
                payload.extend(files.map_err(|e| fail(name, e))?);
            }
            ("projected", payload)
        } else {
            return Err(fail(
                name,
                "this volume type is not supported by this node agent",
            ));
        };
        let dir = self.volume_dir(uid, plugin, name);
        atomic_writer::write(&dir, &payload).map_err(|e| fail(name, e.to_string()))?;
        Ok(PreparedVolume {
            host_path: dir,
            read_only: true,
        })
    }

    async fn config_map_files(
        &self,
        namespace: &str,
        name: &str,
        items: Option<&[KeyToPath]>,
        mode: u32,
        optional: bool,
    ) -> Result<Payload, String> {
        let cm = match self.objects.config_map(namespace, name).await {
            Ok(cm) => cm,
            Err(e) if e.not_found && optional => return Ok(Payload::new()),
            Err(e) => return Err(e.message),
        };
        let mut data: HashMap<String, Vec<u8>> = cm
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.into_bytes()))
            .collect();
        for (k, v) in cm.binary_data.unwrap_or_default() {
            data.insert(k, v.0);
        }
        key_files(data, items, mode, |key| {
            format!("configmap references non-existent config key: {key}")
        })
    }

    async fn secret_files(
        &self,
        namespace: &str,
        name: &str,
        items: Option<&[KeyToPath]>,
        mode: u32,
        optional: bool,
    ) -> Result<Payload, String> {
        let secret = match self.objects.secret(namespace, name).await {
            Ok(s) => s,
            Err(e) if e.not_found && optional => return Ok(Payload::new()),
            Err(e) => return Err(e.message),
        };
        let data = secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        key_files(data, items, mode, |key| {
            format!("references non-existent secret key: {key}")
        })
    }

    /// The pod's token for `key`, requested again once 80 % of its lifetime has passed or it is
    /// a day old (the kubelet's token manager rule).
    async fn token(
        &self,
        key: &str,
        pod: &Pod,
        audience: Option<&str>,
        expiration_seconds: i64,
    ) -> Result<String, String> {
        let now = now_seconds();
        if let Some(cached) = self.tokens.lock().get(key) {
            let lifetime = cached.token.expires_at - cached.issued_at;
            let renew_at = cached.issued_at + lifetime * 8 / 10;
            if now < renew_at && now - cached.issued_at < TOKEN_MAX_AGE_SECONDS {
                return Ok(cached.token.token.clone());
            }
        }
        let issued = self
            .objects
            .service_account_token(pod, audience, expiration_seconds)
            .await
            .map_err(|e| e.message)?;
        let token = issued.token.clone();
        self.tokens.lock().insert(
            key.to_string(),
            CachedToken {
                token: issued,
                issued_at: now,
            },
        );
        Ok(token)
    }

    /// The directory of the PV bound to the claim (hostPath or local).
    async fn claim_path(&self, namespace: &str, claim: &str) -> Result<PathBuf, String> {
        let pvc = self
            .objects
            .claim(namespace, claim)
            .await
            .map_err(|e| e.message)?;
        let phase = pvc.status.as_ref().and_then(|s| s.phase.as_deref());
        let volume_name = pvc
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .filter(|v| !v.is_empty() && phase == Some("Bound"))
            .ok_or_else(|| format!("PVC {namespace}/{claim} is not bound"))?;
        let pv = self
            .objects
            .persistent_volume(&volume_name)
            .await
            .map_err(|e| e.message)?;
        let spec = pv.spec.unwrap_or_default();
        spec.host_path
            .map(|h| PathBuf::from(h.path))
            .or_else(|| spec.local.map(|l| PathBuf::from(l.path)))
            .ok_or_else(|| {
                format!(
                    "persistentvolume {volume_name} has no hostPath or local source this node agent can mount"
                )
            })
    }

    /// Unmounts and removes everything the pod had on disk.
    pub fn cleanup(&self, uid: &str) {
        self.prepared.lock().remove(uid);
        self.tokens
            .lock()
            .retain(|k, _| !k.starts_with(&format!("{uid}/")));
        let dir = self.pod_dir(uid);
        let prefix = format!("{}/", dir.to_string_lossy());
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        for point in mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|p| p.starts_with(&prefix))
        {
            let _ = std::process::Command::new("umount").arg(point).status();
        }
        if let Err(e) = std::fs::remove_dir_all(&dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %dir.display(), error = %e, "removing pod volumes");
        }
    }

    /// The UIDs of pods that have a directory here (to remove those of pods that are gone).
    pub fn pods_on_disk(&self) -> Vec<String> {
        std::fs::read_dir(self.root.join("pods"))
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Checks (and for the `…OrCreate` types creates) a hostPath as upstream's type checker.
fn check_host_path(path: &Path, type_: &str) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::metadata(path);
    let shown = path.display();
    match type_ {
        "" => Ok(()),
        "DirectoryOrCreate" => {
            if meta.is_err() {
                std::fs::create_dir_all(path).map_err(|e| e.to_string())?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
                    .map_err(|e| e.to_string())?;
                return Ok(());
            }
            match meta {
                Ok(m) if m.is_dir() => Ok(()),
                _ => Err(format!(
                    "hostPath type check failed: {shown} is not a directory"
                )),
            }
        }
        "Directory" => match meta {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(format!(
                "hostPath type check failed: {shown} is not a directory"
            )),
            Err(_) => Err(format!(
                "hostPath type check failed: {shown} is not a directory"
            )),
        },
        "FileOrCreate" => {
            if meta.is_err() {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| e.to_string())?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
                    .map_err(|e| e.to_string())?;
                return Ok(());
            }
            match meta {
                Ok(m) if m.is_file() => Ok(()),
                _ => Err(format!("hostPath type check failed: {shown} is not a file")),
            }
        }
        "File" => match meta {
            Ok(m) if m.is_file() => Ok(()),
            _ => Err(format!("hostPath type check failed: {shown} is not a file")),
        },
        "Socket" => match meta {
            Ok(m) if m.file_type().is_socket() => Ok(()),
            _ => Err(format!(
                "hostPath type check failed: {shown} is not a socket file"
            )),
        },
        "CharDevice" => match meta {
            Ok(m) if m.file_type().is_char_device() => Ok(()),
            _ => Err(format!(
                "hostPath type check failed: {shown} is not a character device"
            )),
        },
        "BlockDevice" => match meta {
            Ok(m) if m.file_type().is_block_device() => Ok(()),
            _ => Err(format!(
                "hostPath type check failed: {shown} is not a block device"
            )),
        },
        other => Err(format!("hostPath type {other} is not supported")),
    }
}

/// The files of a downward API volume (or projection).
fn downward_files(
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
    default_mode: u32,
    host_ip: &str,
    node: NodeAllocatable,
) -> Result<Payload, String> {
    let mut payload = Payload::new();
    let pod_ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .unwrap_or_default();
    for item in items {
        let value = if let Some(f) = &item.field_ref {
            env::field_value(pod, &f.field_path, &pod_ip, host_ip)
                .ok_or_else(|| format!("unsupported fieldPath: {}", f.field_path))?
        } else if let Some(r) = &item.resource_field_ref {
            let name = r.container_name.clone().unwrap_or_default();
            let container: &Container = pod
                .spec
                .as_ref()
                .and_then(|s| s.containers.iter().find(|c| c.name == name))
                .ok_or_else(|| format!("container {name} not found"))?;
            env::resource_value(r, container, node)?
        } else {
            String::new()
        };
        payload.insert(
            item.path.clone(),
            FileContent {
                data: value.into_bytes(),
                mode: mode_of(item.mode, default_mode),
            },
        );
    }
    Ok(payload)
}

/// The bind mounts of `container` from the pod's prepared volumes; the error is the kubelet's
/// message for a `CreateContainerConfigError`.
pub fn container_mounts(
    container: &Container,
    prepared: &Prepared,
    env: &[(String, String)],
) -> Result<Vec<Mount>, String> {
    let mut mounts = Vec::new();
    for m in container.volume_mounts.as_deref().unwrap_or_default() {
        let volume = prepared.get(&m.name).ok_or_else(|| {
            format!(
                "cannot find volume \"{}\" to mount into container \"{}\"",
                m.name, container.name
            )
        })?;
        let sub_path = match (&m.sub_path, &m.sub_path_expr) {
            (Some(p), _) if !p.is_empty() => p.clone(),
            (_, Some(expr)) if !expr.is_empty() => env::expand(expr, env),
            _ => String::new(),
        };
        let host_path = if sub_path.is_empty() {
            volume.host_path.clone()
        } else {
            atomic_writer::validate_path(&sub_path)?;
            let path = volume.host_path.join(&sub_path);
            if !volume.read_only && std::fs::symlink_metadata(&path).is_err() {
                std::fs::create_dir_all(&path).map_err(|e| e.to_string())?;
            }
            path
        };
        mounts.push(Mount {
            container_path: m.mount_path.clone(),
            host_path: host_path.to_string_lossy().into_owned(),
            read_only: volume.read_only || m.read_only.unwrap_or(false),
        });
    }
    Ok(mounts)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use k8s_openapi::api::core::v1::{
        ConfigMap, PersistentVolume, PersistentVolumeClaim, Secret, Service,
    };

    use super::*;
    use crate::objects::{EventKind, ObjectError, ObjectResult};

    /// One ConfigMap `cfg`, one Secret `sec`, and tokens living `token_lifetime` seconds.
    struct Objects {
        token_lifetime: i64,
        tokens_issued: AtomicUsize,
    }

    fn parse<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
        match serde_json::from_value(v) {
            Ok(t) => t,
            Err(e) => unreachable!("fixture: {e}"),
        }
    }

    fn gone(name: &str) -> ObjectError {
        ObjectError {
            message: format!("\"{name}\" not found"),
            not_found: true,
        }
    }

    #[async_trait::async_trait]
    impl PodObjects for Objects {
        async fn config_map(&self, _: &str, name: &str) -> ObjectResult<ConfigMap> {
            match name {
                "cfg" => Ok(parse(serde_json::json!({"data": {"a": "1", "b": "2"}}))),
                _ => Err(gone(name)),
            }
        }
        async fn secret(&self, _: &str, name: &str) -> ObjectResult<Secret> {
            match name {
                "sec" => Ok(parse(serde_json::json!({"data": {"pw": "czNjcmV0"}}))),
                _ => Err(gone(name)),
            }
        }
        async fn claim(&self, _: &str, name: &str) -> ObjectResult<PersistentVolumeClaim> {
            Err(gone(name))
        }
        async fn persistent_volume(&self, name: &str) -> ObjectResult<PersistentVolume> {
            Err(gone(name))
        }
        async fn services(&self, _: &str) -> ObjectResult<Vec<Service>> {
            Ok(Vec::new())
        }
        async fn service_account_token(
            &self,
            _: &Pod,
            audience: Option<&str>,
            _: i64,
        ) -> ObjectResult<IssuedToken> {
            let n = self.tokens_issued.fetch_add(1, Ordering::SeqCst);
            Ok(IssuedToken {
                token: format!("token-{n}-{}", audience.unwrap_or("api")),
                expires_at: now_seconds() + self.token_lifetime,
            })
        }
        async fn record(&self, _: &Pod, _: Option<String>, _: EventKind, _: &str, _: String) {}
    }

    fn manager(dir: &Path, token_lifetime: i64) -> (VolumeManager, Arc<Objects>) {
        let objects = Arc::new(Objects {
            token_lifetime,
            tokens_issued: AtomicUsize::new(0),
        });
        let manager = VolumeManager::new(
            dir.to_path_buf(),
            objects.clone(),
            NodeAllocatable::default(),
        );
        (manager, objects)
    }

    fn pod() -> Pod {
        parse(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"app": "x"}},
            "spec": {"containers": [{"name": "c"}], "volumes": [{"name": "all", "projected": {
                "defaultMode": 0o600,
                "sources": [
                    {"configMap": {"name": "cfg", "items": [{"key": "a", "path": "conf/a"}]}},
                    {"secret": {"name": "sec"}},
                    {"secret": {"name": "absent", "optional": true}},
                    {"downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
                    {"serviceAccountToken": {"path": "token", "audience": "vault", "expirationSeconds": 3600}}
                ]}}]}
        }))
    }

    #[tokio::test]
    async fn projected_volumes_combine_their_sources() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let (volumes, _) = manager(dir.path(), 3600);
        let prepared = volumes
            .prepare(&pod(), "192.0.2.1")
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let root = &prepared["all"].host_path;
        assert!(prepared["all"].read_only);
        assert_eq!(std::fs::read_to_string(root.join("conf/a"))?, "1");
        assert!(!root.join("b").exists(), "items select keys");
        assert_eq!(std::fs::read_to_string(root.join("pw"))?, "s3cret");
        assert_eq!(std::fs::read_to_string(root.join("labels"))?, "app=\"x\"");
        assert_eq!(
            std::fs::read_to_string(root.join("token"))?,
            "token-0-vault"
        );
        let mode = std::fs::metadata(root.join("pw"))?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        volumes.cleanup("u1");
        assert!(!volumes.pod_dir("u1").exists());
        Ok(())
    }

    #[tokio::test]
    async fn tokens_are_renewed_after_80_percent_of_their_lifetime() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let (long, long_objects) = manager(dir.path(), 3600);
        long.token("k", &pod(), None, 3600).await?;
        long.token("k", &pod(), None, 3600).await?;
        assert_eq!(long_objects.tokens_issued.load(Ordering::SeqCst), 1);
        // A token whose lifetime is already over is requested again.
        let (short, short_objects) = manager(dir.path(), 0);
        short.token("k", &pod(), None, 600).await?;
        short.token("k", &pod(), None, 600).await?;
        assert_eq!(short_objects.tokens_issued.load(Ordering::SeqCst), 2);
        Ok(())
    }

    #[tokio::test]
    async fn a_missing_config_map_fails_the_volume_unless_optional() {
        let dir = std::env::temp_dir().join(format!("rkube-volumes-{}", std::process::id()));
        let (volumes, _) = manager(&dir, 3600);
        let p: Pod = parse(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u2"},
            "spec": {"containers": [{"name": "c"}], "volumes": [{"name": "v", "configMap": {"name": "nope"}}]}
        }));
        let e = volumes.prepare(&p, "192.0.2.1").await.err();
        assert_eq!(
            e.map(|e| e.to_string()),
            Some("MountVolume.SetUp failed for volume \"v\" : \"nope\" not found".to_string())
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
