//! The in-memory store of scraped usage, as metrics-server's (`pkg/storage`): the last two
//! points of every node and container, from which CPU is a rate (nanocores over the window
//! between the points) and memory the latest working set.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::RwLock;

use super::prometheus::{NodeScrape, Point};

/// Usage over one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// CPU rate in nanocores.
    pub cpu_nanocores: u64,
    /// Working set in bytes.
    pub memory_bytes: u64,
    /// End of the window (milliseconds since the epoch).
    pub timestamp_ms: i64,
    /// Length of the window in milliseconds.
    pub window_ms: i64,
}

/// A pod's usage, per container in name order.
#[derive(Debug, Clone, PartialEq)]
pub struct PodUsage {
    /// End of the window (milliseconds since the epoch).
    pub timestamp_ms: i64,
    /// Length of the window in milliseconds.
    pub window_ms: i64,
    /// Containers with their usage.
    pub containers: Vec<(String, Usage)>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Pair {
    prev: Option<Point>,
    last: Option<Point>,
}

impl Pair {
    /// Moves a new point in; a restarted container (other start time) or a counter that went
    /// backwards starts over, as the rate across them would be meaningless.
    fn push(&mut self, p: Point) {
        match self.last {
            Some(last) if last.timestamp_ms == p.timestamp_ms => {}
            Some(last) if last.start_seconds != p.start_seconds || p.cpu_seconds < last.cpu_seconds || p.timestamp_ms < last.timestamp_ms => {
                self.prev = None;
                self.last = Some(p);
            }
            Some(last) => {
                self.prev = Some(last);
                self.last = Some(p);
            }
            None => self.last = Some(p),
        }
    }

    fn usage(&self) -> Option<Usage> {
        let (prev, last) = (self.prev?, self.last?);
        let window_ms = last.timestamp_ms - prev.timestamp_ms;
        if window_ms <= 0 {
            return None;
        }
        let rate = (last.cpu_seconds - prev.cpu_seconds) / (window_ms as f64 / 1000.0);
        Some(Usage {
            cpu_nanocores: (rate * 1e9).round().max(0.0) as u64,
            memory_bytes: last.memory_bytes.max(0.0) as u64,
            timestamp_ms: last.timestamp_ms,
            window_ms,
        })
    }
}

#[derive(Debug, Default)]
struct PodState {
    node: String,
    containers: BTreeMap<String, Pair>,
}

#[derive(Debug, Default)]
struct Inner {
    nodes: HashMap<String, Pair>,
    pods: HashMap<(String, String), PodState>,
}

/// Usage of nodes and pods, written by the scraper and read by `metrics.k8s.io` requests.
#[derive(Debug, Default)]
pub struct MetricsStore {
    inner: RwLock<Inner>,
}

impl MetricsStore {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records one scrape of `node`: pods it no longer reports are forgotten.
    pub fn record(&self, node: &str, scrape: NodeScrape) {
        let mut inner = self.write();
        match scrape.node {
            Some(p) => inner.nodes.entry(node.to_string()).or_default().push(p),
            None => {
                inner.nodes.remove(node);
            }
        }
        inner.pods.retain(|key, state| state.node != node || scrape.pods.contains_key(key));
        for (key, containers) in scrape.pods {
            let state = inner.pods.entry(key).or_default();
            if state.node != node {
                *state = PodState { node: node.to_string(), containers: BTreeMap::new() };
            }
            state.containers.retain(|name, _| containers.contains_key(name));
            for (name, point) in containers {
                state.containers.entry(name).or_default().push(point);
            }
        }
    }

    /// Forgets nodes (and their pods) that are not in `nodes`.
    pub fn retain_nodes(&self, nodes: &HashSet<String>) {
        let mut inner = self.write();
        inner.nodes.retain(|n, _| nodes.contains(n));
        inner.pods.retain(|_, p| nodes.contains(&p.node));
    }

    /// A node's usage, once two scrapes are known.
    pub fn node(&self, name: &str) -> Option<Usage> {
        self.read().nodes.get(name)?.usage()
    }

    /// A pod's usage, once two scrapes are known for each of its containers.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<PodUsage> {
        let inner = self.read();
        let state = inner.pods.get(&(namespace.to_string(), name.to_string()))?;
        let containers: Vec<(String, Usage)> = state.containers.iter().filter_map(|(n, p)| Some((n.clone(), p.usage()?))).collect();
        if containers.is_empty() || containers.len() != state.containers.len() {
            return None;
        }
        let timestamp_ms = containers.iter().map(|(_, u)| u.timestamp_ms).max()?;
        let window_ms = containers.iter().map(|(_, u)| u.window_ms).max()?;
        Some(PodUsage { timestamp_ms, window_ms, containers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(ts: i64, cpu: f64, mem: f64) -> Point {
        Point { timestamp_ms: ts, cpu_seconds: cpu, memory_bytes: mem, start_seconds: 1.0 }
    }

    fn scrape(ts: i64, node_cpu: f64, pod_cpu: f64) -> NodeScrape {
        let mut s = NodeScrape { node: Some(point(ts, node_cpu, 1e9)), ..Default::default() };
        s.pods.entry(("ns".into(), "p".into())).or_default().insert("c".into(), point(ts, pod_cpu, 64.0 * 1024.0 * 1024.0));
        s
    }

    #[test]
    fn rates_need_two_scrapes() {
        let store = MetricsStore::default();
        store.record("n", scrape(10_000, 100.0, 5.0));
        assert_eq!(store.node("n"), None);
        assert_eq!(store.pod("ns", "p"), None);
        store.record("n", scrape(25_000, 103.0, 6.5));
        assert_eq!(store.node("n"), Some(Usage { cpu_nanocores: 200_000_000, memory_bytes: 1_000_000_000, timestamp_ms: 25_000, window_ms: 15_000 }));
        let pod = store.pod("ns", "p").unwrap();
        assert_eq!(pod.containers, vec![("c".to_string(), Usage { cpu_nanocores: 100_000_000, memory_bytes: 67_108_864, timestamp_ms: 25_000, window_ms: 15_000 })]);
    }

    #[test]
    fn restarts_and_vanished_pods_start_over() {
        let store = MetricsStore::default();
        store.record("n", scrape(1_000, 1.0, 5.0));
        store.record("n", scrape(2_000, 2.0, 4.0));
        assert_eq!(store.pod("ns", "p"), None, "a counter going backwards is a restart");
        store.record("n", NodeScrape { node: Some(point(3_000, 3.0, 1.0)), ..Default::default() });
        store.record("n", scrape(4_000, 4.0, 5.0));
        assert_eq!(store.pod("ns", "p"), None);
        store.retain_nodes(&HashSet::new());
        assert_eq!(store.node("n"), None);
    }
}
