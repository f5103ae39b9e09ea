//! The scheduling queue (upstream `pkg/scheduler/backend/queue/scheduling_queue.go`): activeQ
//! ordered by priority then arrival, backoffQ for pods that failed recently (1 s doubling to
//! 10 s), and unschedulable pods that wait for a cluster event (or 5 minutes) before retrying.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;

/// First backoff after a failed attempt (`podInitialBackoffSeconds`).
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Longest backoff (`podMaxBackoffSeconds`).
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Unschedulable pods are retried at least this often (`podMaxInUnschedulablePodsDuration`).
pub const MAX_UNSCHEDULABLE_DURATION: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Location {
    Active,
    Backoff,
    Unschedulable,
    InFlight,
}

/// A queued pod and its scheduling history.
#[derive(Debug, Clone)]
pub struct QueuedPod {
    /// The latest version of the pod.
    pub pod: Arc<Pod>,
    /// Scheduling attempts so far.
    pub attempts: u32,
    /// When the pod entered activeQ (ordering among equal priorities).
    timestamp: Instant,
    /// When the pod last failed.
    last_failure: Option<Instant>,
    location: Location,
    /// A cluster event arrived while the pod was being scheduled.
    moved_while_in_flight: bool,
    /// Bumped on re-entry so stale heap entries are skipped.
    epoch: u64,
}

impl QueuedPod {
    fn priority(&self) -> i32 {
        self.pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
    }

    fn backoff_expiry(&self) -> Instant {
        let shift = self.attempts.saturating_sub(1).min(16);
        let backoff = INITIAL_BACKOFF.saturating_mul(1 << shift).min(MAX_BACKOFF);
        self.last_failure.map_or_else(Instant::now, |t| t + backoff)
    }
}

/// activeQ entry: higher priority first, then earlier timestamp (PrioritySort).
#[derive(Debug, PartialEq, Eq)]
struct ActiveEntry {
    priority: i32,
    timestamp: Instant,
    key: String,
    epoch: u64,
}

impl Ord for ActiveEntry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority.cmp(&other.priority).then_with(|| other.timestamp.cmp(&self.timestamp))
    }
}

impl PartialOrd for ActiveEntry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The queue.
#[derive(Debug, Default)]
pub struct SchedulingQueue {
    pods: HashMap<String, QueuedPod>,
    active: BinaryHeap<ActiveEntry>,
    backoff: BinaryHeap<Reverse<(Instant, String, u64)>>,
    epoch: u64,
}

impl SchedulingQueue {
    fn push_active(&mut self, key: &str, now: Instant) {
        self.epoch += 1;
        let epoch = self.epoch;
        if let Some(p) = self.pods.get_mut(key) {
            p.location = Location::Active;
            p.timestamp = now;
            p.epoch = epoch;
            self.active.push(ActiveEntry { priority: p.priority(), timestamp: now, key: key.to_string(), epoch });
        }
    }

    fn push_backoff(&mut self, key: &str) {
        self.epoch += 1;
        let epoch = self.epoch;
        if let Some(p) = self.pods.get_mut(key) {
            p.location = Location::Backoff;
            p.epoch = epoch;
            self.backoff.push(Reverse((p.backoff_expiry(), key.to_string(), epoch)));
        }
    }

    /// A new pending pod, or a newer version of a queued one. Updates of pods that wait as
    /// unschedulable move them back (the change may make them schedulable).
    pub fn add_or_update(&mut self, key: &str, pod: Arc<Pod>, now: Instant) {
        match self.pods.get_mut(key) {
            Some(existing) => {
                existing.pod = pod;
                match existing.location {
                    Location::Unschedulable => self.requeue(key, now),
                    Location::InFlight => existing.moved_while_in_flight = true,
                    Location::Active | Location::Backoff => {}
                }
            }
            None => {
                let queued = QueuedPod {
                    pod,
                    attempts: 0,
                    timestamp: now,
                    last_failure: None,
                    location: Location::Active,
                    moved_while_in_flight: false,
                    epoch: 0,
                };
                self.pods.insert(key.to_string(), queued);
                self.push_active(key, now);
            }
        }
    }

    /// The pod was deleted, bound, or is no longer ours.
    pub fn remove(&mut self, key: &str) {
        self.pods.remove(key);
    }

    /// Whether the pod is tracked.
    pub fn contains(&self, key: &str) -> bool {
        self.pods.contains_key(key)
    }

    /// Moves pods whose backoff has expired to activeQ, and unschedulable pods that waited too
    /// long; returns when the next backoff expires.
    pub fn flush(&mut self, now: Instant) -> Option<Instant> {
        let mut next = None;
        while let Some(Reverse((expiry, key, epoch))) = self.backoff.peek().cloned() {
            let current = self.pods.get(&key).is_some_and(|p| p.epoch == epoch && p.location == Location::Backoff);
            if !current {
                self.backoff.pop();
                continue;
            }
            if expiry > now {
                next = Some(expiry);
                break;
            }
            self.backoff.pop();
            self.push_active(&key, now);
        }
        let stale: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, p)| {
                p.location == Location::Unschedulable && p.last_failure.is_some_and(|t| now.duration_since(t) >= MAX_UNSCHEDULABLE_DURATION)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            self.push_active(&key, now);
        }
        next
    }

    /// The next pod to schedule (highest priority, oldest), now in flight.
    pub fn pop(&mut self) -> Option<QueuedPod> {
        while let Some(entry) = self.active.pop() {
            let Some(p) = self.pods.get_mut(&entry.key) else { continue };
            if p.epoch != entry.epoch || p.location != Location::Active {
                continue;
            }
            p.location = Location::InFlight;
            p.attempts += 1;
            p.moved_while_in_flight = false;
            return Some(p.clone());
        }
        None
    }

    /// The in-flight pod could not be scheduled: it waits for a cluster event, unless one
    /// arrived during the attempt, in which case it backs off and retries.
    pub fn unschedulable(&mut self, key: &str, now: Instant) {
        let Some(p) = self.pods.get_mut(key) else { return };
        p.last_failure = Some(now);
        if p.moved_while_in_flight {
            self.push_backoff(key);
        } else {
            p.location = Location::Unschedulable;
        }
    }

    /// The attempt failed for another reason (binding error): back off and retry.
    pub fn error(&mut self, key: &str, now: Instant) {
        if let Some(p) = self.pods.get_mut(key) {
            p.last_failure = Some(now);
            self.push_backoff(key);
        }
    }

    fn requeue(&mut self, key: &str, now: Instant) {
        let Some(p) = self.pods.get(key) else { return };
        if p.backoff_expiry() > now { self.push_backoff(key) } else { self.push_active(key, now) }
    }

    /// A cluster event that may make pods schedulable (`MoveAllToActiveOrBackoffQueue`).
    pub fn move_all(&mut self, now: Instant) {
        let keys: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, p)| matches!(p.location, Location::Unschedulable | Location::InFlight))
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            let Some(p) = self.pods.get_mut(&key) else { continue };
            if p.location == Location::InFlight {
                p.moved_while_in_flight = true;
            } else {
                self.requeue(&key, now);
            }
        }
    }

    /// Pods waiting in activeQ.
    pub fn active_len(&self) -> usize {
        self.pods.values().filter(|p| p.location == Location::Active).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, priority: i32) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(
                json!({"metadata": {"name": name, "namespace": "default"}, "spec": {"priority": priority, "containers": []}}),
            )
            .unwrap(),
        )
    }

    #[test]
    fn priority_then_fifo() {
        let mut q = SchedulingQueue::default();
        let t = Instant::now();
        q.add_or_update("a", pod("a", 0), t);
        q.add_or_update("b", pod("b", 10), t + Duration::from_millis(1));
        q.add_or_update("c", pod("c", 0), t + Duration::from_millis(2));
        let order: Vec<String> = std::iter::from_fn(|| q.pop()).map(|p| p.pod.metadata.name.clone().unwrap()).collect();
        assert_eq!(order, vec!["b", "a", "c"]);
    }

    #[test]
    fn unschedulable_waits_for_an_event_then_backs_off() {
        let mut q = SchedulingQueue::default();
        let t = Instant::now();
        q.add_or_update("a", pod("a", 0), t);
        assert_eq!(q.pop().unwrap().attempts, 1);
        q.unschedulable("a", t);
        assert!(q.pop().is_none());
        assert_eq!(q.flush(t + Duration::from_secs(60)), None);
        assert!(q.pop().is_none(), "no event: stays unschedulable");
        // An event within the backoff window puts it in backoffQ until 1 s after the failure.
        q.move_all(t + Duration::from_millis(100));
        assert_eq!(q.flush(t + Duration::from_millis(200)), Some(t + INITIAL_BACKOFF));
        assert!(q.pop().is_none());
        q.flush(t + INITIAL_BACKOFF);
        let p = q.pop().unwrap();
        assert_eq!(p.attempts, 2);
        // The second failure backs off 2 s.
        q.error("a", t + Duration::from_secs(10));
        assert_eq!(q.flush(t + Duration::from_secs(10)), Some(t + Duration::from_secs(12)));
    }

    #[test]
    fn event_during_attempt_retries_after_backoff() {
        let mut q = SchedulingQueue::default();
        let t = Instant::now();
        q.add_or_update("a", pod("a", 0), t);
        q.pop();
        q.move_all(t);
        q.unschedulable("a", t);
        q.flush(t + INITIAL_BACKOFF);
        assert!(q.pop().is_some());
    }

    #[test]
    fn unschedulable_pods_are_retried_after_five_minutes() {
        let mut q = SchedulingQueue::default();
        let t = Instant::now();
        q.add_or_update("a", pod("a", 0), t);
        q.pop();
        q.unschedulable("a", t);
        q.flush(t + MAX_UNSCHEDULABLE_DURATION);
        assert!(q.pop().is_some());
    }
}
