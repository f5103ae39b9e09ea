//! A containerd the agent runs itself when no runtime socket is given (as k3s does): its
//! configuration is the installed version's `containerd config default` with the settings a
//! node needs (own root/state/socket under the agent's directory, cgroupfs, OOM score
//! adjustments restricted, CNI from `/usr/lib/cni` with a bridge + host-local network on the
//! pod CIDR, the registry hosts directory, and a sandbox image made by rkube: a static pause
//! binary built by the build script, packed as an OCI archive and imported with `ctr`, so no
//! registry is needed for sandboxes). Stopped with the agent; pods keep running in their shims.
//!
//! Starting takes two steps, [`ManagedContainerd::prepare`] (can containerd run here? its
//! configuration written) and [`PreparedContainerd::start`] (with the pod CIDR), because the
//! pod CIDR may come from the server, which assigns it to the Node only once the Node exists.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use sha2::{Digest, Sha256};
use toml_edit::{DocumentMut, Item, Table, value};

/// The sandbox binary (empty when the build had no static C toolchain).
const PAUSE_BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pause"));
/// The sandbox image's name once imported.
pub const PAUSE_IMAGE_NAME: &str = "docker.io/rkube/pause";
pub const PAUSE_IMAGE_TAG: &str = "1";
/// Bridge of the managed pod network.
const BRIDGE: &str = "rkube0";

/// Why the managed runtime could not start.
#[derive(Debug, thiserror::Error)]
#[error("managed containerd: {0}")]
pub struct ManagedRuntimeError(String);

fn fail(context: &str, e: impl std::fmt::Display) -> ManagedRuntimeError {
    ManagedRuntimeError(format!("{context}: {e}"))
}

/// Where the managed runtime lives and what it serves.
#[derive(Debug, Clone)]
pub struct ManagedSettings {
    /// Root of everything it writes (`<agent root>/containerd`).
    pub dir: PathBuf,
    /// Registry hosts directory (`config_path`).
    pub registry_hosts_dir: PathBuf,
}

impl ManagedSettings {
    pub fn socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }
    fn cni_conf_dir(&self) -> PathBuf {
        self.dir.join("cni/net.d")
    }
    fn cni_conf_file(&self) -> PathBuf {
        self.cni_conf_dir().join("10-rkube.conflist")
    }
}

/// Sets `path` (tables created as needed) in the document.
fn set(doc: &mut DocumentMut, path: &[&str], item: Item) {
    let Some((last, tables)) = path.split_last() else {
        return;
    };
    let mut table: &mut Table = doc.as_table_mut();
    for name in tables {
        let entry = table
            .entry(name)
            .or_insert_with(|| Item::Table(Table::new()));
        if !entry.is_table() {
            *entry = Item::Table(Table::new());
        }
        let Some(next) = entry.as_table_mut() else {
            return;
        };
        table = next;
    }
    table.insert(last, item);
}

/// The containerd configuration: `defaults` (the installed version's `config default`) with
/// the node's settings. Configuration version 2 is containerd 1.x; version 3 is 2.x, whose CRI
/// plugin is split into `cri.v1.runtime` and `cri.v1.images`.
pub fn containerd_config(defaults: &str, s: &ManagedSettings) -> Result<String, String> {
    let mut doc: DocumentMut = defaults.parse().map_err(|e| format!("{e}"))?;
    let path_str = |p: PathBuf| p.display().to_string();
    let version = doc.get("version").and_then(Item::as_integer).unwrap_or(2);
    set(&mut doc, &["root"], value(path_str(s.dir.join("root"))));
    set(&mut doc, &["state"], value(path_str(s.dir.join("state"))));
    set(&mut doc, &["grpc", "address"], value(path_str(s.socket())));
    let sandbox = format!("{PAUSE_IMAGE_NAME}:{PAUSE_IMAGE_TAG}");
    let (runtime, images) = if version >= 3 {
        (
            "io.containerd.cri.v1.runtime",
            "io.containerd.cri.v1.images",
        )
    } else {
        ("io.containerd.grpc.v1.cri", "io.containerd.grpc.v1.cri")
    };
    set(
        &mut doc,
        &["plugins", "io.containerd.internal.v1.opt", "path"],
        value(path_str(s.dir.join("opt"))),
    );
    set(
        &mut doc,
        &["plugins", runtime, "restrict_oom_score_adj"],
        value(true),
    );
    let cni_bin = if version >= 3 && doc["plugins"][runtime]["cni"].get("bin_dirs").is_some() {
        (
            "bin_dirs",
            Item::Value(toml_edit::Array::from_iter(["/usr/lib/cni"]).into()),
        )
    } else {
        ("bin_dir", value("/usr/lib/cni"))
    };
    set(&mut doc, &["plugins", runtime, "cni", cni_bin.0], cni_bin.1);
    set(
        &mut doc,
        &["plugins", runtime, "cni", "conf_dir"],
        value(path_str(s.cni_conf_dir())),
    );
    if version >= 3 {
        set(
            &mut doc,
            &["plugins", images, "pinned_images", "sandbox"],
            value(&sandbox),
        );
    } else {
        set(
            &mut doc,
            &["plugins", runtime, "sandbox_image"],
            value(&sandbox),
        );
    }
    set(
        &mut doc,
        &["plugins", images, "registry", "config_path"],
        value(path_str(s.registry_hosts_dir.clone())),
    );
    Ok(doc.to_string())
}

/// The CNI network: a bridge with host-local addresses from the pod CIDR (gateway = its first
/// address) and port mappings. `ipMasq` has the bridge plugin masquerade traffic leaving the
/// pod CIDR behind the node's address (iptables `nat` rules per pod, which needs the `iptables`
/// command). `forceAddress` lets a changed pod CIDR replace the bridge's old gateway address
/// (without it the plugin refuses to add pods); pods still on the old range lose their gateway
/// until they are recreated.
pub fn cni_config(pod_cidr: &str, ipam_dir: &Path) -> Result<String, String> {
    let (network, prefix) = pod_cidr
        .split_once('/')
        .ok_or_else(|| format!("pod CIDR {pod_cidr:?} is not address/prefix"))?;
    let network: Ipv4Addr = network
        .parse()
        .map_err(|e| format!("pod CIDR {pod_cidr:?}: {e}"))?;
    let prefix: u8 = prefix
        .parse()
        .ok()
        .filter(|p| *p <= 30)
        .ok_or_else(|| format!("pod CIDR {pod_cidr:?}: prefix must be at most 30"))?;
    let gateway = Ipv4Addr::from(u32::from(network) + 1);
    let config = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "rkube",
        "plugins": [
            {"type": "bridge", "bridge": BRIDGE, "isGateway": true, "ipMasq": true,
             "forceAddress": true, "hairpinMode": true,
             "ipam": {"type": "host-local",
                      "ranges": [[{"subnet": format!("{network}/{prefix}"), "gateway": gateway.to_string()}]],
                      "routes": [{"dst": "0.0.0.0/0"}],
                      "dataDir": ipam_dir.display().to_string()}},
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    });
    Ok(serde_json::to_string_pretty(&config).unwrap_or_default())
}

/// The subnet a CNI configuration written by [`cni_config`] hands addresses from.
pub fn cni_config_subnet(config: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(config).ok()?;
    v["plugins"][0]["ipam"]["ranges"][0][0]["subnet"]
        .as_str()
        .map(str::to_string)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn append(
    builder: &mut tar::Builder<Vec<u8>>,
    path: &str,
    mode: u32,
    data: &[u8],
) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(mode);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, path, data)
}

/// The sandbox image as an OCI archive (layout with `index.json`), one uncompressed layer
/// holding `/pause`; the index names it `PAUSE_IMAGE_TAG` for `ctr import --base-name`.
pub fn pause_image_archive(binary: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut layer = tar::Builder::new(Vec::new());
    append(&mut layer, "pause", 0o755, binary)?;
    let layer = layer.into_inner()?;
    let layer_digest = sha256_hex(&layer);
    let config = serde_json::json!({
        "architecture": oci_arch(), "os": "linux",
        "config": {"Entrypoint": ["/pause"], "User": "65535:65535"},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_digest}")]}
    })
    .to_string();
    let config_digest = sha256_hex(config.as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": format!("sha256:{config_digest}"), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": format!("sha256:{layer_digest}"), "size": layer.len()}]
    })
    .to_string();
    let manifest_digest = sha256_hex(manifest.as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": format!("sha256:{manifest_digest}"), "size": manifest.len(),
                       "platform": {"architecture": oci_arch(), "os": "linux"},
                       "annotations": {"org.opencontainers.image.ref.name": PAUSE_IMAGE_TAG}}]
    })
    .to_string();
    let mut archive = tar::Builder::new(Vec::new());
    append(
        &mut archive,
        "oci-layout",
        0o644,
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    append(&mut archive, "index.json", 0o644, index.as_bytes())?;
    for (digest, bytes) in [
        (&layer_digest, layer.as_slice()),
        (&config_digest, config.as_bytes()),
        (&manifest_digest, manifest.as_bytes()),
    ] {
        append(
            &mut archive,
            &format!("blobs/sha256/{digest}"),
            0o644,
            bytes,
        )?;
    }
    archive.into_inner()
}

/// Stops a containerd left running by an agent that did not stop it (killed): two containerds
/// on one root and socket misbehave. Its pods keep running in their shims and are adopted.
async fn stop_stale(dir: &Path) {
    let Some(pid) = std::fs::read_to_string(dir.join("containerd.pid"))
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
    else {
        return;
    };
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if comm.trim() != "containerd" {
        return;
    }
    tracing::info!(
        pid,
        "stopping the managed containerd a previous agent left running"
    );
    let signal = |name: &'static str| async move {
        let _ = tokio::process::Command::new("kill")
            .args([name, &pid.to_string()])
            .status()
            .await;
    };
    signal("-TERM").await;
    for _ in 0..100 {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    signal("-KILL").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// The running containerd.
pub struct ManagedContainerd {
    child: tokio::process::Child,
    settings: ManagedSettings,
}

/// A containerd that can run here, its configuration written, not started yet.
pub struct PreparedContainerd {
    settings: ManagedSettings,
    config_path: PathBuf,
}

impl ManagedContainerd {
    /// Checks that containerd can run here (the sandbox binary is built in, `containerd config
    /// default` answers) and writes its configuration.
    pub async fn prepare(settings: ManagedSettings) -> Result<PreparedContainerd, ManagedRuntimeError> {
        if PAUSE_BINARY.is_empty() {
            return Err(ManagedRuntimeError(
                "rkube was built without the static pause binary (no static C toolchain); give --containerd-socket".into(),
            ));
        }
        let dir = settings.dir.clone();
        std::fs::create_dir_all(settings.cni_conf_dir())
            .map_err(|e| fail("creating directories", e))?;
        std::fs::create_dir_all(&settings.registry_hosts_dir)
            .map_err(|e| fail("creating the registry hosts directory", e))?;
        let defaults = tokio::process::Command::new("containerd")
            .args(["config", "default"])
            .output()
            .await
            .map_err(|e| fail("running `containerd config default`", e))?;
        if !defaults.status.success() {
            return Err(fail(
                "`containerd config default`",
                String::from_utf8_lossy(&defaults.stderr),
            ));
        }
        let config = containerd_config(&String::from_utf8_lossy(&defaults.stdout), &settings)
            .map_err(|e| fail("editing the default configuration", e))?;
        let config_path = dir.join("config.toml");
        std::fs::write(&config_path, config).map_err(|e| fail("writing config.toml", e))?;
        Ok(PreparedContainerd {
            settings,
            config_path,
        })
    }
}

impl PreparedContainerd {
    /// Writes the pod network's CNI configuration for `pod_cidr` (rewritten at every start, so
    /// a Node whose CIDR changed gets the new one), starts containerd, waits for its socket and
    /// imports the sandbox image.
    pub async fn start(self, pod_cidr: &str) -> Result<ManagedContainerd, ManagedRuntimeError> {
        let Self {
            settings,
            config_path,
        } = self;
        let dir = settings.dir.clone();
        let cni = cni_config(pod_cidr, &dir.join("cni/ipam")).map_err(ManagedRuntimeError)?;
        let conf_file = settings.cni_conf_file();
        let previous = std::fs::read_to_string(&conf_file)
            .ok()
            .and_then(|c| cni_config_subnet(&c));
        if let Some(previous) = previous.filter(|p| Some(p) != cni_config_subnet(&cni).as_ref()) {
            tracing::warn!(
                %previous,
                current = %pod_cidr,
                "the node's pod CIDR changed since the last start: new pods get addresses from the new range; pods started on the old one keep running but lose their network (the bridge's gateway moves) until they are recreated"
            );
        }
        std::fs::write(&conf_file, cni).map_err(|e| fail("writing the CNI configuration", e))?;
        tracing::info!(%pod_cidr, file = %conf_file.display(), "pod network configured");
        let log = std::fs::File::create(dir.join("containerd.log"))
            .map_err(|e| fail("creating containerd.log", e))?;
        let log2 = log.try_clone().map_err(|e| fail("containerd.log", e))?;
        let socket = settings.socket();
        stop_stale(&dir).await;
        let _ = std::fs::remove_file(&socket);
        let child = tokio::process::Command::new("containerd")
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .kill_on_drop(false)
            .spawn()
            .map_err(|e| fail("starting containerd", e))?;
        if let Some(pid) = child.id() {
            // For operators (and test harnesses) that must stop it without the agent.
            let _ = std::fs::write(dir.join("containerd.pid"), pid.to_string());
        }
        let mut managed = ManagedContainerd { child, settings };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !socket.exists() {
            if tokio::time::Instant::now() >= deadline {
                managed.stop().await;
                return Err(ManagedRuntimeError(format!(
                    "containerd did not open {} (see {})",
                    socket.display(),
                    dir.join("containerd.log").display()
                )));
            }
            if let Ok(Some(status)) = managed.child.try_wait() {
                return Err(ManagedRuntimeError(format!(
                    "containerd exited ({status}); see {}",
                    dir.join("containerd.log").display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if let Err(e) = managed.import_pause_image().await {
            managed.stop().await;
            return Err(e);
        }
        tracing::info!(socket = %socket.display(), "managed containerd running");
        Ok(managed)
    }
}

impl ManagedContainerd {
    async fn import_pause_image(&self) -> Result<(), ManagedRuntimeError> {
        let archive =
            pause_image_archive(PAUSE_BINARY).map_err(|e| fail("packing the pause image", e))?;
        let path = self.settings.dir.join("pause.oci.tar");
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(&archive))
            .map_err(|e| fail("writing the pause image", e))?;
        let out = tokio::process::Command::new("ctr")
            .arg("--address")
            .arg(self.settings.socket())
            .args([
                "--namespace",
                "k8s.io",
                "images",
                "import",
                "--base-name",
                PAUSE_IMAGE_NAME,
            ])
            .arg(&path)
            .output()
            .await
            .map_err(|e| fail("running ctr", e))?;
        if !out.status.success() {
            return Err(fail(
                "importing the pause image",
                String::from_utf8_lossy(&out.stderr),
            ));
        }
        Ok(())
    }

    pub fn socket(&self) -> PathBuf {
        self.settings.socket()
    }

    /// SIGTERM, then SIGKILL after 10 s. Containers keep running in their shims.
    pub async fn stop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = tokio::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ManagedSettings {
        ManagedSettings {
            dir: PathBuf::from("/var/lib/rkube/agent/containerd"),
            registry_hosts_dir: PathBuf::from("/etc/containerd/certs.d"),
        }
    }

    #[test]
    fn version_2_defaults_get_the_nodes_settings() {
        let defaults = "version = 2\nroot = \"/var/lib/containerd\"\n[grpc]\n  address = \"/run/containerd/containerd.sock\"\n[plugins]\n  [plugins.\"io.containerd.grpc.v1.cri\"]\n    restrict_oom_score_adj = false\n    sandbox_image = \"registry.k8s.io/pause:3.6\"\n    [plugins.\"io.containerd.grpc.v1.cri\".cni]\n      bin_dir = \"/opt/cni/bin\"\n    [plugins.\"io.containerd.grpc.v1.cri\".registry]\n      config_path = \"\"\n";
        let out = containerd_config(defaults, &settings()).unwrap_or_default();
        let doc: DocumentMut = out.parse().unwrap_or_default();
        let cri = &doc["plugins"]["io.containerd.grpc.v1.cri"];
        assert_eq!(cri["restrict_oom_score_adj"].as_bool(), Some(true));
        assert_eq!(
            cri["sandbox_image"].as_str(),
            Some("docker.io/rkube/pause:1")
        );
        assert_eq!(cri["cni"]["bin_dir"].as_str(), Some("/usr/lib/cni"));
        assert_eq!(
            cri["cni"]["conf_dir"].as_str(),
            Some("/var/lib/rkube/agent/containerd/cni/net.d")
        );
        assert_eq!(
            cri["registry"]["config_path"].as_str(),
            Some("/etc/containerd/certs.d")
        );
        assert_eq!(
            doc["grpc"]["address"].as_str(),
            Some("/var/lib/rkube/agent/containerd/containerd.sock")
        );
        assert_eq!(
            doc["root"].as_str(),
            Some("/var/lib/rkube/agent/containerd/root")
        );
    }

    #[test]
    fn version_3_defaults_use_the_split_cri_plugins() {
        let defaults = "version = 3\n[plugins]\n  [plugins.'io.containerd.cri.v1.images']\n    [plugins.'io.containerd.cri.v1.images'.pinned_images]\n      sandbox = 'registry.k8s.io/pause:3.10'\n  [plugins.'io.containerd.cri.v1.runtime']\n    [plugins.'io.containerd.cri.v1.runtime'.cni]\n      bin_dirs = ['/opt/cni/bin']\n";
        let out = containerd_config(defaults, &settings()).unwrap_or_default();
        let doc: DocumentMut = out.parse().unwrap_or_default();
        let images = &doc["plugins"]["io.containerd.cri.v1.images"];
        assert_eq!(
            images["pinned_images"]["sandbox"].as_str(),
            Some("docker.io/rkube/pause:1")
        );
        let runtime = &doc["plugins"]["io.containerd.cri.v1.runtime"];
        assert_eq!(runtime["cni"]["bin_dirs"][0].as_str(), Some("/usr/lib/cni"));
        assert_eq!(runtime["restrict_oom_score_adj"].as_bool(), Some(true));
    }

    #[test]
    fn the_pod_network_uses_the_cidr_and_its_first_address_as_gateway() {
        let text = cni_config("10.42.3.0/24", Path::new("/x/ipam")).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let range = &v["plugins"][0]["ipam"]["ranges"][0][0];
        assert_eq!(range["subnet"], "10.42.3.0/24");
        assert_eq!(range["gateway"], "10.42.3.1");
        let bridge = &v["plugins"][0];
        assert_eq!(bridge["ipMasq"], true);
        assert_eq!(bridge["forceAddress"], true);
        assert_eq!(cni_config_subnet(&text).as_deref(), Some("10.42.3.0/24"));
        assert_eq!(cni_config_subnet("{}"), None);
        assert!(cni_config("10.42.3.0", Path::new("/x")).is_err());
        assert!(cni_config("10.42.3.0/31", Path::new("/x")).is_err());
    }

    #[test]
    fn the_pause_image_archive_is_an_oci_layout_with_consistent_digests() {
        let archive = pause_image_archive(b"binary").unwrap_or_default();
        let mut entries = tar::Archive::new(archive.as_slice());
        let mut files = std::collections::BTreeMap::new();
        for entry in entries.entries().into_iter().flatten().flatten() {
            let mut entry = entry;
            let path = entry
                .path()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            let mut data = Vec::new();
            let _ = std::io::Read::read_to_end(&mut entry, &mut data);
            files.insert(path, data);
        }
        let index: serde_json::Value =
            serde_json::from_slice(&files["index.json"]).unwrap_or_default();
        let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap_or_default();
        let manifest_blob = &files[&format!("blobs/{}", manifest_digest.replace(':', "/"))];
        assert_eq!(
            format!("sha256:{}", sha256_hex(manifest_blob)),
            manifest_digest
        );
        let manifest: serde_json::Value = serde_json::from_slice(manifest_blob).unwrap_or_default();
        for blob in [&manifest["config"], &manifest["layers"][0]] {
            let digest = blob["digest"].as_str().unwrap_or_default();
            let bytes = &files[&format!("blobs/{}", digest.replace(':', "/"))];
            assert_eq!(format!("sha256:{}", sha256_hex(bytes)), digest);
            assert_eq!(blob["size"].as_u64(), Some(bytes.len() as u64));
        }
        assert_eq!(
            index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
            PAUSE_IMAGE_TAG
        );
    }
}
