//! The kubelet's file source: pod manifests read from a directory, one pod per file, with the
//! defaults a static pod gets (upstream `pkg/kubelet/config/file.go`, `common.go`).

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The pod's configuration hash: its UID, which changes with the manifest's content.
pub const CONFIG_HASH_ANNOTATION: &str = "kubernetes.io/config.hash";
/// Set on mirror pods to the hash of the static pod they mirror.
pub const CONFIG_MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// When the agent first saw this version of the pod (RFC 3339 with nanoseconds).
pub const CONFIG_SEEN_ANNOTATION: &str = "kubernetes.io/config.seen";
/// Where the pod came from: `file` for static pods, `api` for the rest.
pub const CONFIG_SOURCE_ANNOTATION: &str = "kubernetes.io/config.source";
/// The source name of manifest files.
pub const FILE_SOURCE: &str = "file";

/// One pod read from a manifest file, with the static pod defaults applied.
#[derive(Debug, Clone)]
pub struct StaticPod {
    pub path: PathBuf,
    pub pod: Pod,
}

impl StaticPod {
    /// The generated UID, which is also the configuration hash.
    pub fn uid(&self) -> &str {
        self.pod.metadata.uid.as_deref().unwrap_or_default()
    }

    /// `<namespace>/<name>`: the kubelet's pod full name, shared with the mirror pod.
    pub fn full_name(&self) -> String {
        full_name(&self.pod)
    }
}

/// `<namespace>/<name>` of a pod.
pub fn full_name(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

/// A manifest that could not be used, with upstream's wording of why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    pub path: PathBuf,
    pub message: String,
}

impl std::fmt::Display for ManifestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

/// What one read of the manifest directory found.
#[derive(Debug, Default)]
pub struct DirContents {
    /// Sorted by file name, duplicates of an earlier pod's full name left out.
    pub pods: Vec<StaticPod>,
    pub errors: Vec<ManifestError>,
}

/// Whether a file in the manifest directory is read: visible `.yaml`, `.yml` and `.json` files.
/// (Upstream reads every non-hidden file; restricting the extensions keeps editor backups and
/// swap files from being parsed as pods.)
fn is_manifest_name(name: &str) -> bool {
    !name.starts_with('.')
        && [".yaml", ".yml", ".json"]
            .iter()
            .any(|ext| name.len() > ext.len() && name.ends_with(ext))
}

/// Reads every manifest in `dir` (upstream `extractFromDir`): subdirectories are not entered,
/// a file that cannot be used is reported and skipped. A missing directory holds no pods.
pub fn read_dir(dir: &Path, node_name: &str) -> DirContents {
    let mut contents = DirContents::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return contents,
        Err(e) => {
            contents.errors.push(ManifestError {
                path: dir.to_path_buf(),
                message: format!("unable to read config path: {e}"),
            });
            return contents;
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_str().is_some_and(is_manifest_name))
        .map(|e| e.path())
        .collect();
    paths.sort();
    let mut names = std::collections::HashSet::new();
    for path in paths {
        // Follows symlinks, as upstream's os.Stat does.
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => continue,
            // Removed between listing and reading: not an error.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                contents.errors.push(ManifestError {
                    path,
                    message: e.to_string(),
                });
                continue;
            }
        }
        let data = match std::fs::read(&path) {
            Ok(data) => data,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                contents.errors.push(ManifestError {
                    path,
                    message: e.to_string(),
                });
                continue;
            }
        };
        match parse_manifest(&path, &data, node_name) {
            Ok(pod) => {
                let found = StaticPod { path, pod };
                // Upstream's filterInvalidPods: the first file with a full name wins.
                if names.insert(found.full_name()) {
                    contents.pods.push(found);
                } else {
                    let message = format!(
                        "detected duplicate pod name {:?}",
                        found.pod.metadata.name.as_deref().unwrap_or_default()
                    );
                    contents.errors.push(ManifestError {
                        path: found.path,
                        message,
                    });
                }
            }
            Err(message) => contents.errors.push(ManifestError { path, message }),
        }
    }
    contents
}

/// Decodes one manifest into a static pod (upstream `tryDecodeSinglePod` + `applyDefaults`):
/// API defaults, the generated UID and name, then validation as for a pod create.
pub fn parse_manifest(path: &Path, data: &[u8], node_name: &str) -> Result<Pod, String> {
    let couldnt_parse =
        |why: String| format!("couldn't parse as pod({why}), please check config file");
    let text = std::str::from_utf8(data).map_err(|e| couldnt_parse(e.to_string()))?;
    // JSON is YAML: one parser reads both.
    let mut obj: Value = serde_yaml_ng::from_str(text).map_err(|e| couldnt_parse(e.to_string()))?;
    if !obj.is_object() {
        return Err(couldnt_parse(format!(
            "Object 'Kind' is missing in '{}'",
            text.trim()
        )));
    }
    match (obj["apiVersion"].as_str(), obj["kind"].as_str()) {
        (_, None) | (_, Some("")) => {
            return Err(couldnt_parse(format!(
                "Object 'Kind' is missing in '{}'",
                compact(&obj)
            )));
        }
        (Some("v1"), Some("Pod")) => {}
        (version, Some(kind)) => {
            return Err(format!(
                "invalid pod: a manifest holds one v1 Pod, not {}/{kind}",
                version.unwrap_or_default()
            ));
        }
    }
    // Upstream decodes through the API scheme, which applies the v1 defaults before the hash.
    rkube_validation::apply_defaults("", "v1", "Pod", &mut obj);
    apply_static_defaults(&mut obj, path, node_name)?;
    let errors = rkube_validation::validate_create("", "v1", "Pod", &obj);
    if !errors.is_empty() {
        let listed: Vec<String> = errors.iter().map(|e| e.message()).collect();
        return Err(format!("invalid pod: [{}]", listed.join(", ")));
    }
    refuse_api_objects_a_static_pod_cannot_use(&obj)?;
    serde_json::from_value(obj).map_err(|e| format!("invalid pod: {e}"))
}

/// What 1.33's `tryDecodeSinglePod` refuses without the PreventStaticPodAPIReferences gate
/// (beta only from 1.34): ClusterTrustBundle projections and resource claims, which a node
/// could only resolve through the API.
fn refuse_api_objects_a_static_pod_cannot_use(pod: &Value) -> Result<(), String> {
    let volumes = pod["spec"]["volumes"].as_array().into_iter().flatten();
    let trust_bundles = volumes
        .flat_map(|v| v["projected"]["sources"].as_array().into_iter().flatten())
        .any(|source| source["clusterTrustBundle"].is_object());
    if trust_bundles {
        return Err("static pods may not use ClusterTrustBundle projected volume sources".into());
    }
    if pod["spec"]["resourceClaims"]
        .as_array()
        .is_some_and(|claims| !claims.is_empty())
    {
        return Err("static pods may not use ResourceClaims".into());
    }
    Ok(())
}

fn compact(obj: &Value) -> String {
    serde_json::to_string(obj).unwrap_or_default()
}

/// `applyDefaults` of upstream's `config/common.go` for a file source: UID from a hash of the
/// pod, the node and the file; name `<name>-<node>`; namespace `default`; bound to this node;
/// the config hash annotation; a toleration of every NoExecute taint; phase Pending.
pub fn apply_static_defaults(obj: &mut Value, path: &Path, node_name: &str) -> Result<(), String> {
    // Indexing below writes into these; anything but an object (or absent) is not a pod.
    for (field, value) in [
        ("metadata", &obj["metadata"]),
        ("metadata.annotations", &obj["metadata"]["annotations"]),
        ("spec", &obj["spec"]),
        ("status", &obj["status"]),
    ] {
        if !(value.is_null() || value.is_object()) {
            return Err(format!("invalid pod: {field} is not an object"));
        }
    }
    if !(obj["spec"]["tolerations"].is_null() || obj["spec"]["tolerations"].is_array()) {
        return Err("invalid pod: spec.tolerations is not a list".into());
    }
    let uid = match obj["metadata"]["uid"].as_str() {
        Some(uid) if !uid.is_empty() => uid.to_string(),
        _ => {
            let uid = static_pod_uid(obj, path, node_name);
            obj["metadata"]["uid"] = json!(uid);
            uid
        }
    };
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    obj["metadata"]["name"] = json!(format!("{name}-{}", node_name.to_lowercase()));
    if obj["metadata"]["namespace"]
        .as_str()
        .is_none_or(str::is_empty)
    {
        obj["metadata"]["namespace"] = json!("default");
    }
    obj["metadata"]["annotations"][CONFIG_HASH_ANNOTATION] = json!(uid);
    obj["spec"]["nodeName"] = json!(node_name);
    tolerate_all_no_execute(&mut obj["spec"]["tolerations"]);
    obj["status"]["phase"] = json!("Pending");
    Ok(())
}

/// `AddOrUpdateTolerationInPod` with `{operator: Exists, effect: NoExecute}`, so node problems
/// never evict a static pod.
fn tolerate_all_no_execute(tolerations: &mut Value) {
    let wanted = json!({"operator": "Exists", "effect": "NoExecute"});
    if tolerations.is_null() {
        *tolerations = json!([]);
    }
    if let Some(list) = tolerations.as_array_mut() {
        let same = |t: &Value| {
            t["key"].as_str().unwrap_or_default() == ""
                && t["operator"] == "Exists"
                && t["value"].as_str().unwrap_or_default() == ""
                && t["effect"] == "NoExecute"
        };
        match list.iter_mut().find(|t| same(t)) {
            Some(existing) => *existing = wanted,
            None => list.push(wanted),
        }
    }
}

/// The UID of a static pod: a hash of the decoded pod (field order does not matter), then of
/// the node and the file (upstream hashes `host:<node>` and `file:<path>` after the object),
/// as 32 hex digits like upstream's md5.
pub fn static_pod_uid(pod: &Value, path: &Path, node_name: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(canonical_json(pod).as_bytes());
    hasher.update(format!("host:{node_name}").as_bytes());
    hasher.update(format!("file:{}", path.display()).as_bytes());
    hex::encode(&hasher.finalize()[..16])
}

/// JSON with object keys sorted at every level: the same pod gives the same text however
/// its manifest orders the fields.
fn canonical_json(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", compact(&json!(k)), canonical_json(&m[k.as_str()])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical_json).collect::<Vec<_>>().join(",")
        ),
        other => compact(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEB: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels: {app: web}\nspec:\n  containers:\n  - name: app\n    image: busybox\n    command: [sleep, '3600']\n";

    fn parse(text: &str) -> Result<Pod, String> {
        parse_manifest(
            Path::new("/etc/manifests/web.yaml"),
            text.as_bytes(),
            "node-1",
        )
    }

    #[test]
    fn a_manifest_gets_the_static_pod_defaults() -> Result<(), String> {
        let pod = parse(WEB)?;
        assert_eq!(pod.metadata.name.as_deref(), Some("web-node-1"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("default"));
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        assert_eq!(uid.len(), 32);
        assert!(uid.chars().all(|c| c.is_ascii_hexdigit()));
        let annotations = pod.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(annotations.get(CONFIG_HASH_ANNOTATION), Some(&uid));
        let spec = pod.spec.clone().unwrap_or_default();
        assert_eq!(spec.node_name.as_deref(), Some("node-1"));
        // API defaults were applied before the hash, as upstream's decode does.
        assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
        assert_eq!(
            spec.containers[0].image_pull_policy.as_deref(),
            Some("Always")
        );
        let tolerations = spec.tolerations.unwrap_or_default();
        assert_eq!(tolerations.len(), 1);
        assert_eq!(tolerations[0].operator.as_deref(), Some("Exists"));
        assert_eq!(tolerations[0].effect.as_deref(), Some("NoExecute"));
        assert_eq!(tolerations[0].key, None);
        assert_eq!(pod.status.and_then(|s| s.phase).as_deref(), Some("Pending"));
        Ok(())
    }

    #[test]
    fn the_namespace_and_uid_of_the_manifest_are_kept() -> Result<(), String> {
        let pod = parse(&WEB.replace(
            "  name: web\n",
            "  name: web\n  namespace: kube-system\n  uid: '1234'\n",
        ))?;
        assert_eq!(pod.metadata.namespace.as_deref(), Some("kube-system"));
        assert_eq!(pod.metadata.uid.as_deref(), Some("1234"));
        assert_eq!(
            pod.metadata.annotations.unwrap_or_default()[CONFIG_HASH_ANNOTATION],
            "1234"
        );
        Ok(())
    }

    #[test]
    fn an_existing_no_execute_toleration_is_not_repeated() -> Result<(), String> {
        let pod = parse(&format!(
            "{WEB}  tolerations: [{{operator: Exists, effect: NoExecute, tolerationSeconds: 5}}, {{key: a, operator: Exists}}]\n"
        ))?;
        let tolerations = pod.spec.unwrap_or_default().tolerations.unwrap_or_default();
        assert_eq!(tolerations.len(), 2);
        assert_eq!(tolerations[0].toleration_seconds, None);
        assert_eq!(tolerations[1].key.as_deref(), Some("a"));
        Ok(())
    }

    #[test]
    fn the_uid_changes_with_the_content_node_and_file_only() -> Result<(), String> {
        let uid = |text: &str, path: &str, node: &str| -> Result<String, String> {
            let pod = parse_manifest(Path::new(path), text.as_bytes(), node)?;
            Ok(pod.metadata.uid.unwrap_or_default())
        };
        let base = uid(WEB, "/m/web.yaml", "n1")?;
        assert_eq!(base, uid(WEB, "/m/web.yaml", "n1")?, "stable");
        // The same pod written as JSON, fields in another order: the same pod.
        let json = r#"{"spec": {"containers": [{"command": ["sleep", "3600"], "image": "busybox", "name": "app"}]},
            "metadata": {"labels": {"app": "web"}, "name": "web"}, "kind": "Pod", "apiVersion": "v1"}"#;
        assert_eq!(base, uid(json, "/m/web.yaml", "n1")?, "field order");
        assert_ne!(
            base,
            uid(&WEB.replace("3600", "3601"), "/m/web.yaml", "n1")?,
            "content"
        );
        assert_ne!(base, uid(WEB, "/m/other.yaml", "n1")?, "file");
        assert_ne!(base, uid(WEB, "/m/web.yaml", "n2")?, "node");
        Ok(())
    }

    #[test]
    fn unusable_manifests_say_why() {
        let error = |text: &str| parse(text).err().unwrap_or_default();
        assert!(
            error("apiVersion: v1\nkind: Pod\nmetadata: [").starts_with("couldn't parse as pod("),
            "{}",
            error("apiVersion: v1\nkind: Pod\nmetadata: [")
        );
        assert!(
            error("apiVersion: v1\nkind: Pod\nmetadata: [")
                .ends_with("), please check config file")
        );
        assert_eq!(
            error("just text"),
            "couldn't parse as pod(Object 'Kind' is missing in 'just text'), please check config file"
        );
        assert!(error("metadata: {name: x}").contains("Object 'Kind' is missing"));
        assert_eq!(
            error("apiVersion: v1\nkind: Service\nmetadata: {name: x}"),
            "invalid pod: a manifest holds one v1 Pod, not v1/Service"
        );
        assert_eq!(
            error("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: 3"),
            "invalid pod: spec is not an object"
        );
        let invalid = error(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: [{name: app}]}",
        );
        assert!(invalid.starts_with("invalid pod: ["), "{invalid}");
        assert!(
            invalid.contains("spec.containers[0].image: Required value"),
            "{invalid}"
        );
        assert_eq!(
            error(&format!(
                "{WEB}  resourceClaims: [{{name: gpu, resourceClaimName: gpu}}]\n"
            )),
            "static pods may not use ResourceClaims"
        );
        let bundle = "  volumes: [{name: ca, projected: {sources: [{clusterTrustBundle: {name: b, path: ca.pem}}]}}]\n";
        assert_eq!(
            error(&format!("{WEB}{bundle}")),
            "static pods may not use ClusterTrustBundle projected volume sources"
        );
        let bad_name = error(&WEB.replace("name: web", "name: Web_1"));
        assert!(
            bad_name.contains("metadata.name: Invalid value: \"Web_1-node-1\""),
            "{bad_name}"
        );
    }

    #[test]
    fn the_directory_is_read_in_order_skipping_what_is_not_a_manifest() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("b.yaml"), WEB.replace("web", "bee"))?;
        std::fs::write(
            dir.path().join("a.json"),
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"ant"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#,
        )?;
        std::fs::write(dir.path().join("c.yml"), "not: [a pod")?;
        std::fs::write(dir.path().join("d.yaml"), WEB.replace("web", "ant"))?;
        std::fs::write(
            dir.path().join(".hidden.yaml"),
            WEB.replace("web", "hidden"),
        )?;
        std::fs::write(dir.path().join("e.yaml~"), WEB.replace("web", "backup"))?;
        std::fs::write(dir.path().join("README"), "notes")?;
        std::fs::create_dir(dir.path().join("sub.yaml"))?;
        let found = read_dir(dir.path(), "n");
        let names: Vec<String> = found.pods.iter().map(StaticPod::full_name).collect();
        assert_eq!(names, ["default/ant-n", "default/bee-n"]);
        let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].starts_with(&format!(
                "{}: couldn't parse as pod(",
                dir.path().join("c.yml").display()
            )),
            "{errors:?}"
        );
        assert_eq!(
            errors[1],
            format!(
                "{}: detected duplicate pod name \"ant-n\"",
                dir.path().join("d.yaml").display()
            )
        );
        assert!(read_dir(&dir.path().join("missing"), "n").pods.is_empty());
        Ok(())
    }
}
