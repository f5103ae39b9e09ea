//! Images for containers, as the kubelet's image manager provides them (upstream
//! `pkg/kubelet/images/image_manager.go`, `kuberuntime_image.go`): imagePullPolicy, credentials
//! from the pod's imagePullSecrets and then the node's own (the registries file) tried in turn,
//! a per pod-and-image back-off after a failed pull (10 s doubling to 5 min), and the kubelet's
//! waiting reasons, messages and events (`Pulling`, `Pulled`, `Failed`, `BackOff`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Pod};
use kube::ResourceExt;
use parking_lot::Mutex;

use crate::keyring::{self, Keyring};
use crate::objects::{EventKind, PodObjects};
use crate::runtime::{PullAuth, Runtime};
use crate::status::Waiting;

/// First delay after a failed pull and its cap (the kubelet's image back-off).
const BACKOFF_INITIAL: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// Credentials the node has of its own, tried after those of the pod's imagePullSecrets.
pub trait NodeCredentials: Send + Sync {
    /// Credentials for a normalised repository (`docker.io/library/busybox`).
    fn lookup(&self, repository: &str) -> Vec<PullAuth>;
}

impl NodeCredentials for Keyring {
    fn lookup(&self, repository: &str) -> Vec<PullAuth> {
        Keyring::lookup(self, repository)
    }
}

/// The back-off of one pod's image (upstream `flowcontrol.Backoff` entry).
struct PullBackoff {
    delay: Duration,
    last_failure: Instant,
    /// `ErrImagePull: <message>` of the failure, shown during the back-off.
    last_error: String,
    /// The back-off of this window was reported (event) already.
    reported: bool,
}

/// Provides containers' images through the runtime.
pub struct ImageManager {
    runtime: Arc<dyn Runtime>,
    objects: Arc<dyn PodObjects>,
    node_credentials: Arc<dyn NodeCredentials>,
    /// By `<pod uid>_<image>`, as the kubelet keys it.
    backoff: Mutex<HashMap<String, PullBackoff>>,
    /// `<pod uid>_<image>` whose ErrImageNeverPull was reported.
    never_reported: Mutex<HashSet<String>>,
}

/// The image's pull policy: the container's, or the API's default for the image (Always for
/// `:latest` or no tag, else IfNotPresent).
pub fn pull_policy(container: &Container) -> String {
    if let Some(p) = container
        .image_pull_policy
        .as_ref()
        .filter(|p| !p.is_empty())
    {
        return p.clone();
    }
    let image = container.image.as_deref().unwrap_or("");
    let last = image.rsplit('/').next().unwrap_or(image);
    let tagged = last.contains(':') && !last.ends_with(":latest");
    if tagged || image.contains('@') {
        "IfNotPresent".into()
    } else {
        "Always".into()
    }
}

/// Go's `time.Duration.String()` of a duration truncated to milliseconds (`1.234s`, `85ms`).
fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (m, s, frac) = (ms / 60_000, ms / 1000 % 60, ms % 1000);
    let seconds = if frac == 0 {
        format!("{s}s")
    } else {
        format!("{s}.{}s", format!("{frac:03}").trim_end_matches('0'))
    };
    match (m / 60, m % 60) {
        (0, 0) => seconds,
        (0, m) => format!("{m}m{seconds}"),
        (h, m) => format!("{h}h{m}m{seconds}"),
    }
}

/// Several pull errors as Go's `utilerrors.NewAggregate` prints them (duplicates once).
fn aggregate(errors: Vec<String>) -> String {
    let mut distinct: Vec<String> = Vec::new();
    for e in errors {
        if !distinct.contains(&e) {
            distinct.push(e);
        }
    }
    if distinct.len() == 1 {
        distinct.remove(0)
    } else {
        format!("[{}]", distinct.join(", "))
    }
}

fn waiting(reason: &str, message: String) -> Waiting {
    Waiting {
        reason: reason.into(),
        message,
    }
}

impl ImageManager {
    pub fn new(
        runtime: Arc<dyn Runtime>,
        objects: Arc<dyn PodObjects>,
        node_credentials: Arc<dyn NodeCredentials>,
    ) -> Self {
        Self {
            runtime,
            objects,
            node_credentials,
            backoff: Mutex::new(HashMap::new()),
            never_reported: Mutex::new(HashSet::new()),
        }
    }

    async fn event(
        &self,
        pod: &Pod,
        field_path: &str,
        kind: EventKind,
        reason: &str,
        message: String,
    ) {
        self.objects
            .record(pod, Some(field_path.to_string()), kind, reason, message)
            .await;
    }

    /// The image reference to create the container from, or why the container must wait
    /// (`ErrImagePull`, `ImagePullBackOff`, `ErrImageNeverPull`, `ErrImageInspect`).
    /// `field_path` names the container in events (`spec.containers{app}`).
    pub async fn ensure(
        &self,
        pod: &Pod,
        container: &Container,
        field_path: &str,
    ) -> Result<String, Waiting> {
        let image = container.image.clone().unwrap_or_default();
        let policy = pull_policy(container);
        let key = format!("{}_{image}", pod.uid().unwrap_or_default());
        if policy != "Always" {
            match self.runtime.image_status(&image).await {
                Ok(Some(_)) => {
                    self.event(
                        pod,
                        field_path,
                        EventKind::Normal,
                        "Pulled",
                        format!("Container image \"{image}\" already present on machine"),
                    )
                    .await;
                    return Ok(image);
                }
                Ok(None) if policy == "Never" => {
                    let message = format!(
                        "Container image \"{image}\" is not present with pull policy of Never"
                    );
                    let first_report = self.never_reported.lock().insert(key);
                    if first_report {
                        self.event(
                            pod,
                            field_path,
                            EventKind::Warning,
                            "ErrImageNeverPull",
                            message.clone(),
                        )
                        .await;
                        self.container_error(pod, field_path, "ErrImageNeverPull")
                            .await;
                    }
                    return Err(waiting("ErrImageNeverPull", message));
                }
                Ok(None) => {}
                Err(e) => {
                    // Upstream prints the (empty) reference it failed to get.
                    let message = format!("Failed to inspect image \"\": {e}");
                    self.event(
                        pod,
                        field_path,
                        EventKind::Warning,
                        "InspectFailed",
                        message.clone(),
                    )
                    .await;
                    return Err(waiting("ErrImageInspect", message));
                }
            }
        }
        if let Some(message) = self.in_backoff(&key, &image) {
            let first_report = self
                .backoff
                .lock()
                .get_mut(&key)
                .is_some_and(|b| !std::mem::replace(&mut b.reported, true));
            if first_report {
                self.event(
                    pod,
                    field_path,
                    EventKind::Normal,
                    "BackOff",
                    format!("Back-off pulling image \"{image}\""),
                )
                .await;
                self.container_error(pod, field_path, "ImagePullBackOff")
                    .await;
            }
            return Err(waiting("ImagePullBackOff", message));
        }
        let credentials = self.credentials_for(pod, &image).await?;
        self.event(
            pod,
            field_path,
            EventKind::Normal,
            "Pulling",
            format!("Pulling image \"{image}\""),
        )
        .await;
        let started = Instant::now();
        match self.pull(&image, credentials).await {
            Ok(_) => {
                self.backoff.lock().remove(&key);
                let took = go_duration(started.elapsed());
                let size = match self.runtime.image_status(&image).await {
                    Ok(Some(info)) => info.size_bytes,
                    _ => 0,
                };
                self.event(
                    pod,
                    field_path,
                    EventKind::Normal,
                    "Pulled",
                    format!(
                        "Successfully pulled image \"{image}\" in {took} ({took} including waiting). Image size: {size} bytes."
                    ),
                )
                .await;
                Ok(image)
            }
            Err(message) => {
                self.event(
                    pod,
                    field_path,
                    EventKind::Warning,
                    "Failed",
                    format!("Failed to pull image \"{image}\": {message}"),
                )
                .await;
                self.record_failure(&key, &message);
                self.container_error(pod, field_path, "ErrImagePull").await;
                Err(waiting("ErrImagePull", message))
            }
        }
    }

    /// The kubelet's `Error: <reason>` event when a container cannot be started.
    async fn container_error(&self, pod: &Pod, field_path: &str, reason: &str) {
        self.event(
            pod,
            field_path,
            EventKind::Warning,
            "Failed",
            format!("Error: {reason}"),
        )
        .await;
    }

    /// The waiting message while `key` is backing off (`Back-off pulling image "x": ErrImagePull: …`).
    fn in_backoff(&self, key: &str, image: &str) -> Option<String> {
        let backoff = self.backoff.lock();
        let entry = backoff.get(key)?;
        (entry.last_failure.elapsed() < entry.delay)
            .then(|| format!("Back-off pulling image \"{image}\": {}", entry.last_error))
    }

    /// A failed pull starts or doubles the back-off (afresh once the last failure is older
    /// than twice the maximum, as upstream's entries expire).
    fn record_failure(&self, key: &str, message: &str) {
        let mut backoff = self.backoff.lock();
        let delay = match backoff.get(key) {
            Some(b) if b.last_failure.elapsed() <= BACKOFF_MAX * 2 => {
                (b.delay * 2).min(BACKOFF_MAX)
            }
            _ => BACKOFF_INITIAL,
        };
        backoff.insert(
            key.to_string(),
            PullBackoff {
                delay,
                last_failure: Instant::now(),
                last_error: format!("ErrImagePull: {message}"),
                reported: false,
            },
        );
    }

    /// Credentials for the image: the pod's imagePullSecrets (those that exist) first, then
    /// the node's. A secret that cannot be read is reported and skipped, as the kubelet does.
    async fn credentials_for(&self, pod: &Pod, image: &str) -> Result<Vec<PullAuth>, Waiting> {
        let namespace = pod.namespace().unwrap_or_default();
        let names = pod
            .spec
            .as_ref()
            .and_then(|s| s.image_pull_secrets.as_deref())
            .unwrap_or_default()
            .iter()
            .map(|r| r.name.clone())
            .filter(|n| !n.is_empty());
        let mut keyring = Keyring::default();
        let mut unreadable = Vec::new();
        for name in names {
            match self.objects.secret(&namespace, &name).await {
                Ok(secret) => match keyring::secret_credentials(&secret) {
                    Ok(entries) => keyring.add(entries),
                    Err(e) => return Err(waiting("ErrImagePull", e)),
                },
                Err(e) => {
                    tracing::info!(pod = %pod.name_any(), secret = %name, error = %e.message, "unable to retrieve pull secret, the image pull may not succeed");
                    unreadable.push(name);
                }
            }
        }
        if !unreadable.is_empty() {
            self.objects
                .record(
                    pod,
                    None,
                    EventKind::Warning,
                    "FailedToRetrieveImagePullSecret",
                    format!(
                        "Unable to retrieve some image pull secrets ({}); attempting to pull the image may not succeed.",
                        unreadable.join(", ")
                    ),
                )
                .await;
        }
        let repository = keyring::repository_of(image);
        let mut found = keyring.lookup(&repository);
        found.extend(self.node_credentials.lookup(&repository));
        Ok(found)
    }

    /// Pulls without credentials when there are none, else with each in turn until one works.
    async fn pull(&self, image: &str, credentials: Vec<PullAuth>) -> Result<String, String> {
        if credentials.is_empty() {
            return self
                .runtime
                .pull_image(image, None)
                .await
                .map_err(|e| e.to_string());
        }
        let mut errors = Vec::new();
        for auth in credentials {
            match self.runtime.pull_image(image, Some(auth)).await {
                Ok(reference) => return Ok(reference),
                Err(e) => errors.push(e.to_string()),
            }
        }
        Err(aggregate(errors))
    }

    /// Forgets a pod's back-offs (it is gone).
    pub fn forget(&self, uid: &str) {
        let prefix = format!("{uid}_");
        self.backoff.lock().retain(|k, _| !k.starts_with(&prefix));
        self.never_reported
            .lock()
            .retain(|k| !k.starts_with(&prefix));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_go_does() {
        assert_eq!(go_duration(Duration::from_millis(85)), "85ms");
        assert_eq!(go_duration(Duration::from_millis(1234)), "1.234s");
        assert_eq!(go_duration(Duration::from_millis(2500)), "2.5s");
        assert_eq!(go_duration(Duration::from_millis(61_000)), "1m1s");
    }

    #[test]
    fn errors_aggregate_as_go_does() {
        assert_eq!(aggregate(vec!["a".into(), "a".into()]), "a");
        assert_eq!(aggregate(vec!["a".into(), "b".into()]), "[a, b]");
    }
}
