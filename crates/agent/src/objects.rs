//! The API objects a pod's containers and volumes are made from (ConfigMaps, Secrets, claims and
//! their volumes, service account tokens), and the Events the agent records about pods. Behind a
//! trait so the syncer's unit tests run without an API server.

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, Event, EventSource, ObjectReference, PersistentVolume, PersistentVolumeClaim, Pod,
    Secret, Service, ServiceAccount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};

/// Why an object could not be read: the API's message (`configmap "x" not found`), as the
/// kubelet shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectError {
    pub message: String,
    pub not_found: bool,
}

pub type ObjectResult<T> = std::result::Result<T, ObjectError>;

/// A token issued by the TokenRequest API.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    /// Seconds since the epoch.
    pub expires_at: i64,
}

/// Event severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Normal,
    Warning,
}

#[async_trait::async_trait]
pub trait PodObjects: Send + Sync {
    async fn config_map(&self, namespace: &str, name: &str) -> ObjectResult<ConfigMap>;
    async fn secret(&self, namespace: &str, name: &str) -> ObjectResult<Secret>;
    async fn claim(&self, namespace: &str, name: &str) -> ObjectResult<PersistentVolumeClaim>;
    async fn persistent_volume(&self, name: &str) -> ObjectResult<PersistentVolume>;
    /// The Services of a namespace (for service-link environment variables).
    async fn services(&self, namespace: &str) -> ObjectResult<Vec<Service>>;
    /// A token for the pod's service account, bound to the pod.
    async fn service_account_token(
        &self,
        pod: &Pod,
        audience: Option<&str>,
        expiration_seconds: i64,
    ) -> ObjectResult<IssuedToken>;
    /// Records an Event about the pod (`field_path` names a container: `spec.containers{app}`).
    async fn record(
        &self,
        pod: &Pod,
        field_path: Option<String>,
        kind: EventKind,
        reason: &str,
        message: String,
    );
}

/// No API server: every object is missing and events go nowhere (unit tests).
pub struct NoObjects;

fn missing(resource: &str, name: &str) -> ObjectError {
    ObjectError {
        message: format!("{resource} \"{name}\" not found"),
        not_found: true,
    }
}

#[async_trait::async_trait]
impl PodObjects for NoObjects {
    async fn config_map(&self, _: &str, name: &str) -> ObjectResult<ConfigMap> {
        Err(missing("configmap", name))
    }
    async fn secret(&self, _: &str, name: &str) -> ObjectResult<Secret> {
        Err(missing("secret", name))
    }
    async fn claim(&self, _: &str, name: &str) -> ObjectResult<PersistentVolumeClaim> {
        Err(missing("persistentvolumeclaim", name))
    }
    async fn persistent_volume(&self, name: &str) -> ObjectResult<PersistentVolume> {
        Err(missing("persistentvolume", name))
    }
    async fn services(&self, _: &str) -> ObjectResult<Vec<Service>> {
        Ok(Vec::new())
    }
    async fn service_account_token(
        &self,
        pod: &Pod,
        _: Option<&str>,
        _: i64,
    ) -> ObjectResult<IssuedToken> {
        let account = pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default();
        Err(missing("serviceaccount", &account))
    }
    async fn record(&self, _: &Pod, _: Option<String>, _: EventKind, _: &str, _: String) {}
}

/// The objects as the API server has them, read with the agent's credentials.
pub struct ApiObjects {
    client: Client,
    node_name: String,
}

impl ApiObjects {
    pub fn new(client: Client, node_name: String) -> Self {
        Self { client, node_name }
    }
}

fn api_error(e: kube::Error) -> ObjectError {
    match e {
        kube::Error::Api(status) => ObjectError {
            not_found: status.code == 404,
            message: status.message,
        },
        other => ObjectError {
            message: other.to_string(),
            not_found: false,
        },
    }
}

/// The kubelet reads ConfigMaps and Secrets through its object managers, whose not-found errors
/// name the resource in the singular (`configmap "x" not found`), unlike the API server's.
fn kubelet_manager_error(e: kube::Error, resource: &str, name: &str) -> ObjectError {
    let error = api_error(e);
    if error.not_found {
        missing(resource, name)
    } else {
        error
    }
}

#[async_trait::async_trait]
impl PodObjects for ApiObjects {
    async fn config_map(&self, namespace: &str, name: &str) -> ObjectResult<ConfigMap> {
        Api::<ConfigMap>::namespaced(self.client.clone(), namespace)
            .get(name)
            .await
            .map_err(|e| kubelet_manager_error(e, "configmap", name))
    }

    async fn secret(&self, namespace: &str, name: &str) -> ObjectResult<Secret> {
        Api::<Secret>::namespaced(self.client.clone(), namespace)
            .get(name)
            .await
            .map_err(|e| kubelet_manager_error(e, "secret", name))
    }

    async fn claim(&self, namespace: &str, name: &str) -> ObjectResult<PersistentVolumeClaim> {
        Api::<PersistentVolumeClaim>::namespaced(self.client.clone(), namespace)
            .get(name)
            .await
            .map_err(api_error)
    }

    async fn persistent_volume(&self, name: &str) -> ObjectResult<PersistentVolume> {
        Api::<PersistentVolume>::all(self.client.clone())
            .get(name)
            .await
            .map_err(api_error)
    }

    async fn services(&self, namespace: &str) -> ObjectResult<Vec<Service>> {
        Api::<Service>::namespaced(self.client.clone(), namespace)
            .list(&Default::default())
            .await
            .map(|list| list.items)
            .map_err(api_error)
    }

    async fn service_account_token(
        &self,
        pod: &Pod,
        audience: Option<&str>,
        expiration_seconds: i64,
    ) -> ObjectResult<IssuedToken> {
        let namespace = pod.namespace().unwrap_or_default();
        let account = pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into());
        let request = TokenRequest {
            spec: TokenRequestSpec {
                // An empty list means the API server's own audience.
                audiences: audience.map(|a| vec![a.to_string()]).unwrap_or_default(),
                expiration_seconds: Some(expiration_seconds),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: Some(pod.name_any()),
                    uid: pod.uid(),
                }),
            },
            ..Default::default()
        };
        let issued: TokenRequest =
            Api::<ServiceAccount>::namespaced(self.client.clone(), &namespace)
                .create_subresource("token", &account, &PostParams::default(), &request)
                .await
                .map_err(api_error)?;
        let status = issued.status.ok_or_else(|| ObjectError {
            message: "TokenRequest answered without a status".into(),
            not_found: false,
        })?;
        Ok(IssuedToken {
            token: status.token,
            expires_at: status.expiration_timestamp.0.as_second(),
        })
    }

    async fn record(
        &self,
        pod: &Pod,
        field_path: Option<String>,
        kind: EventKind,
        reason: &str,
        message: String,
    ) {
        let namespace = pod.namespace().unwrap_or_default();
        let now = k8s_openapi::jiff::Timestamp::now();
        let event = Event {
            metadata: ObjectMeta {
                name: Some(format!("{}.{:x}", pod.name_any(), now.as_nanosecond())),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            involved_object: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                namespace: Some(namespace.clone()),
                name: Some(pod.name_any()),
                uid: pod.uid(),
                resource_version: pod.resource_version(),
                field_path,
            },
            reason: Some(reason.to_string()),
            message: Some(message),
            type_: Some(
                match kind {
                    EventKind::Normal => "Normal",
                    EventKind::Warning => "Warning",
                }
                .into(),
            ),
            count: Some(1),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            source: Some(EventSource {
                component: Some("kubelet".into()),
                host: Some(self.node_name.clone()),
            }),
            reporting_component: Some("kubelet".into()),
            reporting_instance: Some(self.node_name.clone()),
            ..Default::default()
        };
        if let Err(e) = Api::<Event>::namespaced(self.client.clone(), &namespace)
            .create(&PostParams::default(), &event)
            .await
        {
            tracing::debug!(reason, error = %e, "recording an event");
        }
    }
}
