//! Event recording as upstream's legacy `record.EventRecorder` does for kube-controller-manager:
//! core/v1 Events named `<object>.<hex nanoseconds>` in the object's namespace, with
//! `source.component` the controller's component name (e.g. `deployment-controller`).
//!
//! kube-rs' `events::Recorder` writes events.k8s.io Events and folds events with the same reason
//! into one series regardless of the message, which would turn "Created pod: a" and
//! "Created pod: b" into one event; upstream keeps them apart, so this recorder does too.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Api, PostParams};
use kube::{Client, Resource, ResourceExt};

/// `Normal` or `Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Things going as planned.
    Normal,
    /// Something needs attention.
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// Records events for one component.
#[derive(Clone)]
pub struct EventRecorder {
    client: Client,
    component: String,
    host: String,
}

impl EventRecorder {
    /// A recorder whose events carry `component` (upstream's `<name>-controller`) as source.
    pub fn new(client: Client, component: &str, host: &str) -> Self {
        Self {
            client,
            component: component.to_string(),
            host: host.to_string(),
        }
    }

    /// Records an event about `obj`. Failures are logged, never returned: events are best effort
    /// upstream too.
    pub async fn record<K>(&self, obj: &K, kind_type: EventType, reason: &str, message: String)
    where
        K: Resource<DynamicType = ()>,
    {
        let reference = object_reference(obj);
        self.record_ref(reference, kind_type, reason, message).await;
    }

    /// Records an event about the object `reference` points to.
    pub async fn record_ref(
        &self,
        reference: ObjectReference,
        kind_type: EventType,
        reason: &str,
        message: String,
    ) {
        let namespace = reference
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".to_string());
        let now = k8s_openapi::jiff::Timestamp::now();
        let name = format!(
            "{}.{:x}",
            reference.name.as_deref().unwrap_or(&self.component),
            now.as_nanosecond()
        );
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            involved_object: reference,
            reason: Some(reason.to_string()),
            message: Some(message),
            type_: Some(kind_type.as_str().to_string()),
            count: Some(1),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            event_time: None::<MicroTime>,
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: None,
            }),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.host.clone()),
            ..Default::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        if let Err(e) = api.create(&PostParams::default(), &event).await {
            tracing::debug!(component = %self.component, reason, error = %e, "recording an event failed");
        }
    }
}

/// An ObjectReference to `obj` (kind, apiVersion, namespace, name, uid, resourceVersion).
pub fn object_reference<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
    ObjectReference {
        api_version: Some(K::api_version(&()).to_string()),
        kind: Some(K::kind(&()).to_string()),
        namespace: obj.namespace(),
        name: Some(obj.name_any()),
        uid: obj.uid(),
        resource_version: obj.resource_version(),
        field_path: None,
    }
}
