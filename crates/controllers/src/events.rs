//! Event recording as upstream's legacy `record.EventRecorder` does for kube-controller-manager:
//! core/v1 Events named `<object>.<hex nanoseconds>` in the object's namespace, with
//! `source.component` the controller's component name (e.g. `deployment-controller`).
//!
//! Like upstream, repeats raise the `count` of one Event, more than ten events of one reason about
//! one object within ten minutes are combined, and a source may write 25 events about one
//! object at once, then one per five minutes.
//!
//! kube-rs' `events::Recorder` writes events.k8s.io Events and folds events with the same reason
//! into one series regardless of the message, which would turn "Created pod: a" and
//! "Created pod: b" into one event; upstream keeps them apart, so this recorder does too.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

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

/// Records events for one component. Recording never waits for the API server: events pass
/// through upstream's correlator (spam filter, aggregation, de-duplication into `count`) and
/// are written by a background task, so a controller creating 10,000 pods is not slowed down by
/// 10,000 event writes (upstream's broadcaster is asynchronous too).
#[derive(Clone)]
pub struct EventRecorder {
    component: String,
    host: String,
    correlator: Arc<Mutex<Correlator>>,
    sink: mpsc::Sender<Write>,
}

/// Events waiting to be written; more are dropped (upstream's broadcaster queue is 1,000 too).
const QUEUE_LENGTH: usize = 1000;

impl EventRecorder {
    /// A recorder whose events carry `component` (upstream's `<name>-controller`) as source.
    /// Must be called inside a Tokio runtime: it starts the writer task.
    pub fn new(client: Client, component: &str, host: &str) -> Self {
        let (sink, queue) = mpsc::channel(QUEUE_LENGTH);
        tokio::spawn(write_events(client, component.to_string(), queue));
        Self {
            component: component.to_string(),
            host: host.to_string(),
            correlator: Arc::new(Mutex::new(Correlator::default())),
            sink,
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
                namespace: Some(namespace),
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
        let write = {
            let mut correlator = self.correlator.lock().unwrap_or_else(PoisonError::into_inner);
            correlator.correlate(event, Instant::now())
        };
        let Some(write) = write else {
            return;
        };
        if self.sink.try_send(write).is_err() {
            tracing::debug!(component = %self.component, reason, "event queue full; dropping event");
        }
    }
}

/// What the writer does with one correlated event.
#[derive(Debug)]
enum Write {
    /// A first occurrence: create it.
    Create(Event),
    /// A repeat of an event already written under its name: raise its count.
    Repeat(Event),
}

async fn write_events(client: Client, component: String, mut queue: mpsc::Receiver<Write>) {
    while let Some(write) = queue.recv().await {
        let (event, repeat) = match write {
            Write::Create(e) => (e, false),
            Write::Repeat(e) => (e, true),
        };
        let namespace = event.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
        if repeat {
            let name = event.metadata.name.clone().unwrap_or_default();
            // As upstream's recordToSink: patch count, lastTimestamp and message.
            let patch = serde_json::json!({
                "count": event.count,
                "lastTimestamp": event.last_timestamp,
                "message": event.message,
            });
            match api.patch(&name, &PatchParams::default(), &Patch::Strategic(&patch)).await {
                Ok(_) => continue,
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => {
                    tracing::debug!(%component, error = %e, "updating an event failed");
                    continue;
                }
            }
        }
        let mut event = event;
        event.metadata.resource_version = None;
        if let Err(e) = api.create(&PostParams::default(), &event).await {
            tracing::debug!(%component, error = %e, "recording an event failed");
        }
    }
}

/// Upstream's EventSourceObjectSpamFilter: a token bucket per source and object, 25 events at
/// once, then one per five minutes.
const SPAM_BURST: f64 = 25.0;
const SPAM_REFILL_PER_SEC: f64 = 1.0 / 300.0;
/// Upstream's EventAggregator: more than 10 events of one reason about one object within ten
/// minutes that differ only in message are folded into one "combined" event.
const AGGREGATE_MAX_EVENTS: usize = 10;
const AGGREGATE_INTERVAL: Duration = Duration::from_secs(600);
const AGGREGATED_PREFIX: &str = "(combined from similar events): ";
/// Entries kept per cache (upstream's LRU caches hold 4,096).
const CACHE_SIZE: usize = 4096;

struct TokenBucket {
    tokens: f64,
    refreshed: Instant,
}

struct AggregateRecord {
    messages: HashSet<String>,
    last_seen: Instant,
}

struct Observation {
    name: String,
    count: i32,
    first_timestamp: Option<Time>,
    last_seen: Instant,
}

/// client-go's `EventCorrelator` (tools/record/events_cache.go) for one recorder.
#[derive(Default)]
struct Correlator {
    spam: HashMap<String, TokenBucket>,
    aggregates: HashMap<String, AggregateRecord>,
    observed: HashMap<String, Observation>,
}

fn object_key(e: &Event) -> String {
    let o = &e.involved_object;
    let source = e.source.as_ref().and_then(|s| s.component.clone()).unwrap_or_default();
    [
        source.as_str(),
        o.kind.as_deref().unwrap_or(""),
        o.namespace.as_deref().unwrap_or(""),
        o.name.as_deref().unwrap_or(""),
        o.uid.as_deref().unwrap_or(""),
        o.api_version.as_deref().unwrap_or(""),
        e.type_.as_deref().unwrap_or(""),
    ]
    .join("\u{0}")
}

/// Drops the oldest entries once a cache is full, as an LRU would.
fn bound<V>(cache: &mut HashMap<String, V>, last_used: impl Fn(&V) -> Instant) {
    if cache.len() < CACHE_SIZE {
        return;
    }
    let mut ages: Vec<Instant> = cache.values().map(&last_used).collect();
    ages.sort();
    let cutoff = ages[ages.len() / 4];
    cache.retain(|_, v| last_used(v) > cutoff);
}

impl Correlator {
    /// What to write for `event` now, or nothing when the spam filter drops it.
    fn correlate(&mut self, mut event: Event, now: Instant) -> Option<Write> {
        let object = object_key(&event);
        if !self.allow(&object, now) {
            return None;
        }
        let reason = event.reason.clone().unwrap_or_default();
        let message = event.message.clone().unwrap_or_default();
        let aggregate_key = format!("{object}\u{0}{reason}");
        bound(&mut self.aggregates, |r| r.last_seen);
        let record = self.aggregates.entry(aggregate_key.clone()).or_insert_with(|| AggregateRecord {
            messages: HashSet::new(),
            last_seen: now,
        });
        if now.duration_since(record.last_seen) > AGGREGATE_INTERVAL {
            record.messages.clear();
        }
        record.last_seen = now;
        record.messages.insert(message.clone());
        let key = if record.messages.len() < AGGREGATE_MAX_EVENTS {
            format!("{aggregate_key}\u{0}{message}")
        } else {
            event.message = Some(format!("{AGGREGATED_PREFIX}{message}"));
            aggregate_key
        };
        bound(&mut self.observed, |o| o.last_seen);
        match self.observed.get_mut(&key) {
            Some(seen) => {
                seen.count += 1;
                seen.last_seen = now;
                event.metadata.name = Some(seen.name.clone());
                event.count = Some(seen.count);
                event.first_timestamp = seen.first_timestamp.clone();
                Some(Write::Repeat(event))
            }
            None => {
                self.observed.insert(
                    key,
                    Observation {
                        name: event.metadata.name.clone().unwrap_or_default(),
                        count: 1,
                        first_timestamp: event.first_timestamp.clone(),
                        last_seen: now,
                    },
                );
                Some(Write::Create(event))
            }
        }
    }

    fn allow(&mut self, object: &str, now: Instant) -> bool {
        bound(&mut self.spam, |b| b.refreshed);
        let bucket = self.spam.entry(object.to_string()).or_insert(TokenBucket { tokens: SPAM_BURST, refreshed: now });
        let refill = now.duration_since(bucket.refreshed).as_secs_f64() * SPAM_REFILL_PER_SEC;
        bucket.tokens = (bucket.tokens + refill).min(SPAM_BURST);
        bucket.refreshed = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
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

#[cfg(test)]
mod tests {
    use super::*;

    fn event(object: &str, reason: &str, message: &str) -> Event {
        Event {
            metadata: ObjectMeta { name: Some(format!("{object}.{message}")), namespace: Some("ns".into()), ..Default::default() },
            involved_object: ObjectReference { kind: Some("ReplicaSet".into()), name: Some(object.into()), ..Default::default() },
            reason: Some(reason.into()),
            message: Some(message.into()),
            type_: Some("Normal".into()),
            count: Some(1),
            source: Some(EventSource { component: Some("replicaset-controller".into()), host: None }),
            ..Default::default()
        }
    }

    fn summary(w: Option<Write>) -> Option<(bool, String, i32, String)> {
        w.map(|w| {
            let (repeat, e) = match w {
                Write::Create(e) => (false, e),
                Write::Repeat(e) => (true, e),
            };
            (repeat, e.metadata.name.unwrap_or_default(), e.count.unwrap_or(0), e.message.unwrap_or_default())
        })
    }

    #[test]
    fn identical_events_raise_the_count_of_the_first() {
        let mut c = Correlator::default();
        let now = Instant::now();
        assert_eq!(summary(c.correlate(event("rs", "Failed", "boom"), now)), Some((false, "rs.boom".into(), 1, "boom".into())));
        let mut again = event("rs", "Failed", "boom");
        again.metadata.name = Some("rs.other-name".into());
        assert_eq!(summary(c.correlate(again, now)), Some((true, "rs.boom".into(), 2, "boom".into())));
    }

    #[test]
    fn similar_events_are_combined_after_ten() {
        let mut c = Correlator::default();
        let now = Instant::now();
        for i in 0..9 {
            let w = summary(c.correlate(event("rs", "SuccessfulCreate", &format!("Created pod: p{i}")), now));
            assert_eq!(w.map(|w| (w.0, w.2)), Some((false, 1)), "event {i} written as is");
        }
        let tenth = summary(c.correlate(event("rs", "SuccessfulCreate", "Created pod: p9"), now)).unwrap();
        assert_eq!((tenth.0, tenth.2, tenth.3.as_str()), (false, 1, "(combined from similar events): Created pod: p9"));
        let eleventh = summary(c.correlate(event("rs", "SuccessfulCreate", "Created pod: p10"), now)).unwrap();
        assert_eq!((eleventh.0, eleventh.1, eleventh.2), (true, tenth.1, 2));
        // Another object is counted apart.
        let other = summary(c.correlate(event("rs2", "SuccessfulCreate", "Created pod: q"), now)).unwrap();
        assert_eq!((other.0, other.3.as_str()), (false, "Created pod: q"));
    }

    #[test]
    fn spam_filter_allows_a_burst_of_25_then_one_per_five_minutes() {
        let mut c = Correlator::default();
        let now = Instant::now();
        let written = (0..40).filter(|i| c.correlate(event("rs", &format!("R{i}"), "m"), now).is_some()).count();
        assert_eq!(written, 25);
        assert!(c.correlate(event("rs", "R", "m"), now + Duration::from_secs(299)).is_none());
        assert!(c.correlate(event("rs", "R", "m"), now + Duration::from_secs(301)).is_some());
    }
}
