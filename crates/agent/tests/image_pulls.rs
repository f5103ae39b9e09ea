//! Image pulls as the kubelet does them, against the in-memory runtime: credentials from the
//! pod's imagePullSecrets and the node's, each tried in turn, ErrImagePull then ImagePullBackOff
//! with the kubelet's messages and events.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolume, PersistentVolumeClaim, Pod, Secret, Service,
};
use parking_lot::Mutex;
use rkube_agent::fake::FakeRuntime;
use rkube_agent::keyring::Keyring;
use rkube_agent::objects::{EventKind, IssuedToken, ObjectError, ObjectResult, PodObjects};
use rkube_agent::runtime::PullAuth;
use rkube_agent::sync::{NodeContext, PodSyncer};
use serde_json::{Value, json};

const IMAGE: &str = "127.0.0.1:5000/private/busybox:latest";

/// Secrets by name; events recorded as `Type Reason: message`.
#[derive(Default)]
struct Objects {
    secrets: BTreeMap<String, Secret>,
    events: Mutex<Vec<String>>,
}

fn missing(name: &str) -> ObjectError {
    ObjectError {
        message: format!("secret \"{name}\" not found"),
        not_found: true,
    }
}

#[async_trait::async_trait]
impl PodObjects for Objects {
    async fn config_map(&self, _: &str, name: &str) -> ObjectResult<ConfigMap> {
        Err(missing(name))
    }
    async fn secret(&self, _: &str, name: &str) -> ObjectResult<Secret> {
        self.secrets.get(name).cloned().ok_or_else(|| missing(name))
    }
    async fn claim(&self, _: &str, name: &str) -> ObjectResult<PersistentVolumeClaim> {
        Err(missing(name))
    }
    async fn persistent_volume(&self, name: &str) -> ObjectResult<PersistentVolume> {
        Err(missing(name))
    }
    async fn services(&self, _: &str) -> ObjectResult<Vec<Service>> {
        Ok(Vec::new())
    }
    async fn service_account_token(
        &self,
        _: &Pod,
        _: Option<&str>,
        _: i64,
    ) -> ObjectResult<IssuedToken> {
        Err(missing("token"))
    }
    async fn record(
        &self,
        _: &Pod,
        _: Option<String>,
        kind: EventKind,
        reason: &str,
        message: String,
    ) {
        self.events
            .lock()
            .push(format!("{kind:?} {reason}: {message}"));
    }
}

fn docker_registry_secret(server: &str, user: &str, password: &str) -> Secret {
    let config = json!({"auths": {server: {"username": user, "password": password}}});
    Secret {
        type_: Some("kubernetes.io/dockerconfigjson".into()),
        data: Some(BTreeMap::from([(
            ".dockerconfigjson".to_string(),
            ByteString(config.to_string().into_bytes()),
        )])),
        ..Default::default()
    }
}

fn pod(pull_secrets: &[&str]) -> Pod {
    let secrets: Vec<Value> = pull_secrets.iter().map(|n| json!({"name": n})).collect();
    let Ok(p) = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default", "uid": "uid-1"},
        "spec": {"nodeName": "n1", "imagePullSecrets": secrets, "containers": [{
            "name": "app", "image": IMAGE, "imagePullPolicy": "Always"
        }]}
    })) else {
        unreachable!("valid pod")
    };
    p
}

fn syncer(runtime: Arc<FakeRuntime>, objects: Arc<Objects>, node: Keyring) -> PodSyncer {
    PodSyncer::with_credentials(
        runtime,
        objects,
        Arc::new(node),
        NodeContext {
            node_name: "n1".into(),
            node_ip: "192.0.2.10".into(),
            log_root: std::env::temp_dir().join("rkube-agent-unit-logs"),
            runtime_name: "fake".into(),
            root_dir: std::env::temp_dir().join("rkube-agent-unit-root"),
            allocatable: Default::default(),
        },
    )
}

async fn waiting(s: &PodSyncer, p: &Pod) -> anyhow::Result<Value> {
    let status = s
        .sync(p)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no status"))?;
    Ok(status["containerStatuses"][0]["state"]["waiting"].clone())
}

fn pulls(runtime: &FakeRuntime) -> Vec<String> {
    runtime
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("pull"))
        .collect()
}

#[tokio::test]
async fn without_credentials_the_pull_fails_then_backs_off_with_the_kubelets_messages()
-> anyhow::Result<()> {
    let runtime = Arc::new(FakeRuntime::default());
    runtime.require_credentials(IMAGE, "kube", "s3cret");
    let objects = Arc::new(Objects::default());
    let s = syncer(runtime.clone(), objects.clone(), Keyring::default());
    let p = pod(&[]);

    let first = waiting(&s, &p).await?;
    assert_eq!(first["reason"], "ErrImagePull");
    let pull_error = format!(
        "rpc error: code = Unknown desc = failed to pull and unpack image \"{IMAGE}\": 401 Unauthorized"
    );
    assert_eq!(first["message"], pull_error.as_str());
    // Within the back-off: no new pull, the kubelet's back-off reason and message.
    let second = waiting(&s, &p).await?;
    assert_eq!(second["reason"], "ImagePullBackOff");
    assert_eq!(
        second["message"],
        format!("Back-off pulling image \"{IMAGE}\": ErrImagePull: {pull_error}").as_str()
    );
    waiting(&s, &p).await?;
    assert_eq!(pulls(&runtime), [format!("pull {IMAGE}")]);
    assert_eq!(
        *objects.events.lock(),
        [
            format!("Normal Pulling: Pulling image \"{IMAGE}\""),
            format!("Warning Failed: Failed to pull image \"{IMAGE}\": {pull_error}"),
            "Warning Failed: Error: ErrImagePull".to_string(),
            format!("Normal BackOff: Back-off pulling image \"{IMAGE}\""),
            "Warning Failed: Error: ImagePullBackOff".to_string(),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn pull_secrets_credentials_are_tried_in_turn_until_one_works() -> anyhow::Result<()> {
    let runtime = Arc::new(FakeRuntime::default());
    runtime.require_credentials(IMAGE, "kube", "s3cret");
    let mut objects = Objects::default();
    // Longer (more specific) locations first: the wrong one is tried before the right one.
    objects.secrets.insert(
        "team".into(),
        docker_registry_secret("127.0.0.1:5000/private", "kube", "wrong"),
    );
    objects.secrets.insert(
        "registry".into(),
        docker_registry_secret("https://127.0.0.1:5000/v2/", "kube", "s3cret"),
    );
    objects.secrets.insert(
        "elsewhere".into(),
        docker_registry_secret("quay.io", "other", "x"),
    );
    let objects = Arc::new(objects);
    let s = syncer(runtime.clone(), objects.clone(), Keyring::default());
    let p = pod(&["registry", "elsewhere", "missing", "team"]);
    let status = s
        .sync(&p)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no status"))?;
    assert!(
        status["containerStatuses"][0]["state"]["running"].is_object(),
        "{status}"
    );
    assert_eq!(
        pulls(&runtime),
        [
            format!("pull {IMAGE} as kube:wrong"),
            format!("pull {IMAGE} as kube:s3cret")
        ]
    );
    let events = objects.events.lock().clone();
    assert!(
        events.contains(&"Warning FailedToRetrieveImagePullSecret: Unable to retrieve some image pull secrets (missing); attempting to pull the image may not succeed.".to_string()),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e.starts_with(&format!(
            "Normal Pulled: Successfully pulled image \"{IMAGE}\" in "
        )) && e.ends_with("Image size: 1024 bytes.")),
        "{events:?}"
    );
    Ok(())
}

#[tokio::test]
async fn node_credentials_follow_the_pods_and_every_failure_is_reported() -> anyhow::Result<()> {
    let runtime = Arc::new(FakeRuntime::default());
    runtime.require_credentials(IMAGE, "node", "pw");
    let mut objects = Objects::default();
    objects.secrets.insert(
        "wrong".into(),
        docker_registry_secret("127.0.0.1:5000", "kube", "wrong"),
    );
    let objects = Arc::new(objects);
    let mut node = Keyring::default();
    node.add([(
        "127.0.0.1:5000".to_string(),
        PullAuth {
            username: "node".into(),
            password: "pw".into(),
            ..Default::default()
        },
    )]);
    let s = syncer(runtime.clone(), objects, node);
    s.sync(&pod(&["wrong"])).await?;
    assert_eq!(
        pulls(&runtime),
        [
            format!("pull {IMAGE} as kube:wrong"),
            format!("pull {IMAGE} as node:pw")
        ]
    );

    // Two failing credentials: both errors, as Go aggregates them.
    let runtime = Arc::new(FakeRuntime::default());
    runtime.require_credentials(IMAGE, "kube", "s3cret");
    let mut objects = Objects::default();
    objects.secrets.insert(
        "a".into(),
        docker_registry_secret("127.0.0.1:5000", "kube", "one"),
    );
    objects.secrets.insert(
        "b".into(),
        docker_registry_secret("127.0.0.1:5000", "kube", "two"),
    );
    let s = syncer(runtime.clone(), Arc::new(objects), Keyring::default());
    let w = waiting(&s, &pod(&["a", "b"])).await?;
    assert_eq!(w["reason"], "ErrImagePull");
    assert_eq!(pulls(&runtime).len(), 2);
    // Identical runtime messages are printed once.
    assert!(
        w["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("rpc error") && m.ends_with("401 Unauthorized")),
        "{w}"
    );
    Ok(())
}

#[tokio::test]
async fn never_and_if_not_present_policies_are_honoured() -> anyhow::Result<()> {
    let runtime = Arc::new(FakeRuntime::default());
    let objects = Arc::new(Objects::default());
    let s = syncer(runtime.clone(), objects.clone(), Keyring::default());
    let mut p = pod(&[]);
    if let Some(c) = p.spec.as_mut().and_then(|s| s.containers.first_mut()) {
        c.image_pull_policy = Some("Never".into());
    }
    let w = waiting(&s, &p).await?;
    assert_eq!(w["reason"], "ErrImageNeverPull");
    assert_eq!(
        w["message"],
        format!("Container image \"{IMAGE}\" is not present with pull policy of Never").as_str()
    );
    waiting(&s, &p).await?;
    assert!(pulls(&runtime).is_empty());
    // Reported once, not on every sync.
    assert_eq!(
        *objects.events.lock(),
        [
            format!(
                "Warning ErrImageNeverPull: Container image \"{IMAGE}\" is not present with pull policy of Never"
            ),
            "Warning Failed: Error: ErrImageNeverPull".to_string(),
        ]
    );
    runtime.add_image(IMAGE);
    let status = s
        .sync(&p)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no status"))?;
    assert!(status["containerStatuses"][0]["state"]["running"].is_object());
    assert!(objects.events.lock().contains(&format!(
        "Normal Pulled: Container image \"{IMAGE}\" already present on machine"
    )));
    Ok(())
}
