//! Core/v1 Events, as client-go's event recorder writes them (`source.component`,
//! `reportingComponent`, first/last timestamps, count 1).

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;

/// Writes events for one component.
#[derive(Clone)]
pub struct EventRecorder {
    client: kube::Client,
    component: String,
    instance: String,
}

impl EventRecorder {
    /// A recorder reporting as `component` (e.g. `default-scheduler`) from `instance`.
    pub fn new(client: kube::Client, component: impl Into<String>, instance: impl Into<String>) -> Self {
        Self { client, component: component.into(), instance: instance.into() }
    }

    /// Records an event about `object`; failures are logged, never fatal (as client-go).
    pub async fn record(&self, object: ObjectReference, type_: &str, reason: &str, action: &str, message: String) {
        let namespace = object.namespace.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "default".into());
        let now = Timestamp::now();
        let nanos = now.as_nanosecond();
        let event = Event {
            metadata: ObjectMeta {
                name: Some(format!("{}.{:x}", object.name.as_deref().unwrap_or("object"), nanos)),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            involved_object: object,
            reason: Some(reason.into()),
            message: Some(message),
            type_: Some(type_.into()),
            action: Some(action.into()),
            source: Some(EventSource { component: Some(self.component.clone()), host: None }),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.instance.clone()),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            count: Some(1),
            ..Default::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        if let Err(e) = api.create(&PostParams::default(), &event).await {
            tracing::debug!(error = %e, reason, "recording event");
        }
    }
}

/// Now as RFC 3339 with whole seconds, the form `metav1.Time` is written in.
pub fn now_rfc3339() -> String {
    Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A reference to a namespaced or cluster-scoped object for `involvedObject`.
pub fn reference(kind: &str, meta: &ObjectMeta) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some(kind.into()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        field_path: None,
    }
}
