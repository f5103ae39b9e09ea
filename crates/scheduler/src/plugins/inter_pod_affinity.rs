//! InterPodAffinity (upstream `plugins/interpodaffinity`): required and preferred pod affinity
//! and anti-affinity over any topology key, including existing pods' anti-affinity towards the
//! incoming pod (symmetry).

use std::collections::{BTreeMap, HashMap, HashSet};

use k8s_openapi::api::core::v1::{PodAffinityTerm, WeightedPodAffinityTerm};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::{MAX_NODE_SCORE, Rejection, selector_matches};
use crate::cache::{Cache, NodeInfo, PodInfo};

/// Namespace labels by namespace.
pub type NamespaceLabels = HashMap<String, BTreeMap<String, String>>;

/// A (topology key, value) pair.
type TopologyPair = (String, String);

/// An affinity term resolved against the namespace of the pod that declares it.
#[derive(Debug, Clone)]
pub struct Term {
    selector: Option<LabelSelector>,
    namespaces: HashSet<String>,
    namespace_selector: Option<LabelSelector>,
    /// The term's topologyKey.
    pub topology_key: String,
}

impl Term {
    fn new(t: &PodAffinityTerm, owner_namespace: &str) -> Self {
        let mut namespaces: HashSet<String> = t.namespaces.iter().flatten().cloned().collect();
        if namespaces.is_empty() && t.namespace_selector.is_none() {
            namespaces.insert(owner_namespace.to_string());
        }
        Self {
            selector: t.label_selector.clone(),
            namespaces,
            namespace_selector: t.namespace_selector.clone(),
            topology_key: t.topology_key.clone(),
        }
    }

    /// `AffinityTerm.Matches`: the pod is in one of the term's namespaces and has matching labels.
    pub fn matches(&self, pod: &PodInfo, namespace_labels: &NamespaceLabels) -> bool {
        let in_namespace = self.namespaces.contains(pod.namespace())
            || self.namespace_selector.as_ref().is_some_and(|s| {
                let empty = BTreeMap::new();
                selector_matches(Some(s), namespace_labels.get(pod.namespace()).unwrap_or(&empty))
            });
        in_namespace && selector_matches(self.selector.as_ref(), pod.labels())
    }
}

/// The affinity terms a pod declares.
#[derive(Debug, Clone, Default)]
pub struct PodTerms {
    /// Required affinity.
    pub affinity: Vec<Term>,
    /// Required anti-affinity.
    pub anti_affinity: Vec<Term>,
    /// Preferred affinity with weights.
    pub preferred_affinity: Vec<(i64, Term)>,
    /// Preferred anti-affinity with weights.
    pub preferred_anti_affinity: Vec<(i64, Term)>,
}

impl PodTerms {
    /// Reads a pod's terms.
    pub fn of(pod: &PodInfo) -> Self {
        let ns = pod.namespace();
        let affinity = pod.pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
        let pa = affinity.and_then(|a| a.pod_affinity.as_ref());
        let paa = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
        let required = |terms: Option<&Vec<PodAffinityTerm>>| terms.into_iter().flatten().map(|t| Term::new(t, ns)).collect();
        let preferred = |terms: Option<&Vec<WeightedPodAffinityTerm>>| {
            terms.into_iter().flatten().map(|w| (i64::from(w.weight), Term::new(&w.pod_affinity_term, ns))).collect()
        };
        Self {
            affinity: required(pa.and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref())),
            anti_affinity: required(paa.and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref())),
            preferred_affinity: preferred(pa.and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_ref())),
            preferred_anti_affinity: preferred(paa.and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_ref())),
        }
    }
}

/// PreFilter state: counts of matching pods per topology pair.
#[derive(Debug, Clone, Default)]
pub struct State {
    terms: PodTerms,
    incoming_matches_own_terms: bool,
    existing_anti_affinity_counts: HashMap<TopologyPair, i64>,
    anti_affinity_counts: HashMap<TopologyPair, i64>,
    affinity_counts: HashMap<TopologyPair, i64>,
}

fn bump(map: &mut HashMap<TopologyPair, i64>, key: &str, node: &NodeInfo, delta: i64) {
    if let Some(value) = node.labels().get(key) {
        let pair = (key.to_string(), value.clone());
        let count = map.entry(pair.clone()).or_default();
        *count += delta;
        if *count == 0 {
            map.remove(&pair);
        }
    }
}

impl State {
    /// Computes the counts over every pod in the cache.
    pub fn prefilter(pod: &PodInfo, cache: &Cache) -> Self {
        let terms = PodTerms::of(pod);
        let incoming_matches_own_terms = terms.affinity.iter().all(|t| t.matches(pod, &cache.namespace_labels));
        let mut state = Self { terms, incoming_matches_own_terms, ..Default::default() };
        for (node, existing) in cache.all_pods() {
            state.update(pod, existing, node, &cache.namespace_labels, 1);
        }
        state
    }

    /// Accounts (`delta` = 1) or removes (-1) an existing pod (PreFilterExtensions AddPod/RemovePod).
    pub fn update(&mut self, incoming: &PodInfo, existing: &PodInfo, node: &NodeInfo, ns: &NamespaceLabels, delta: i64) {
        if existing.has_affinity() {
            for t in &PodTerms::of(existing).anti_affinity {
                if t.matches(incoming, ns) {
                    bump(&mut self.existing_anti_affinity_counts, &t.topology_key, node, delta);
                }
            }
        }
        for t in &self.terms.anti_affinity {
            if t.matches(existing, ns) {
                bump(&mut self.anti_affinity_counts, &t.topology_key, node, delta);
            }
        }
        if !self.terms.affinity.is_empty() && self.terms.affinity.iter().all(|t| t.matches(existing, ns)) {
            for t in &self.terms.affinity {
                bump(&mut self.affinity_counts, &t.topology_key, node, delta);
            }
        }
    }

    fn satisfies_affinity(&self, node: &NodeInfo) -> bool {
        let mut pods_exist = true;
        for t in &self.terms.affinity {
            let Some(value) = node.labels().get(&t.topology_key) else { return false };
            if self.affinity_counts.get(&(t.topology_key.clone(), value.clone())).copied().unwrap_or(0) <= 0 {
                pods_exist = false;
            }
        }
        // The first pod of a group with affinity to itself may go anywhere with the topology.
        pods_exist || (self.affinity_counts.is_empty() && self.incoming_matches_own_terms)
    }

    fn satisfies_anti_affinity(&self, node: &NodeInfo) -> bool {
        !self.terms.anti_affinity.iter().any(|t| {
            node.labels()
                .get(&t.topology_key)
                .is_some_and(|v| self.anti_affinity_counts.get(&(t.topology_key.clone(), v.clone())).copied().unwrap_or(0) > 0)
        })
    }

    fn satisfies_existing_anti_affinity(&self, node: &NodeInfo) -> bool {
        self.existing_anti_affinity_counts.is_empty()
            || !node.labels().iter().any(|(k, v)| self.existing_anti_affinity_counts.get(&(k.clone(), v.clone())).copied().unwrap_or(0) > 0)
    }

    /// Filter, with upstream's reasons and codes.
    pub fn filter(&self, node: &NodeInfo) -> Result<(), Rejection> {
        if !self.satisfies_affinity(node) {
            return Err(Rejection::unresolvable("InterPodAffinity", "node(s) didn't match pod affinity rules"));
        }
        if !self.satisfies_anti_affinity(node) {
            return Err(Rejection::unschedulable("InterPodAffinity", "node(s) didn't match pod anti-affinity rules"));
        }
        if !self.satisfies_existing_anti_affinity(node) {
            return Err(Rejection::unschedulable("InterPodAffinity", "node(s) didn't satisfy existing pods anti-affinity rules"));
        }
        Ok(())
    }
}

/// Scores of topology pairs from preferred terms in both directions and existing pods'
/// required affinity (hardPodAffinityWeight 1).
pub fn topology_scores(incoming: &PodInfo, cache: &Cache) -> HashMap<TopologyPair, i64> {
    let terms = PodTerms::of(incoming);
    let ns = &cache.namespace_labels;
    let mut scores = HashMap::new();
    let has_preferred = !terms.preferred_affinity.is_empty() || !terms.preferred_anti_affinity.is_empty();
    for (node, existing) in cache.all_pods() {
        if has_preferred {
            for (w, t) in &terms.preferred_affinity {
                if t.matches(existing, ns) {
                    bump(&mut scores, &t.topology_key, node, *w);
                }
            }
            for (w, t) in &terms.preferred_anti_affinity {
                if t.matches(existing, ns) {
                    bump(&mut scores, &t.topology_key, node, -*w);
                }
            }
        }
        if existing.has_affinity() {
            let theirs = PodTerms::of(existing);
            for (w, t) in &theirs.preferred_affinity {
                if t.matches(incoming, ns) {
                    bump(&mut scores, &t.topology_key, node, *w);
                }
            }
            for (w, t) in &theirs.preferred_anti_affinity {
                if t.matches(incoming, ns) {
                    bump(&mut scores, &t.topology_key, node, -*w);
                }
            }
            for t in &theirs.affinity {
                if t.matches(incoming, ns) {
                    bump(&mut scores, &t.topology_key, node, 1);
                }
            }
        }
    }
    scores
}

/// A node's raw score: the sum over its topology pairs.
pub fn score(scores: &HashMap<TopologyPair, i64>, node: &NodeInfo) -> i64 {
    if scores.is_empty() {
        return 0;
    }
    node.labels().iter().map(|(k, v)| scores.get(&(k.clone(), v.clone())).copied().unwrap_or(0)).sum()
}

/// Min-max normalisation as upstream's InterPodAffinity NormalizeScore.
pub fn normalize(scores: &mut [i64]) {
    let (Some(min), Some(max)) = (scores.iter().copied().min(), scores.iter().copied().max()) else { return };
    let diff = max - min;
    for s in scores.iter_mut() {
        *s = if diff > 0 { (MAX_NODE_SCORE as f64 * ((*s - min) as f64 / diff as f64)) as i64 } else { 0 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tests_support::pod;
    use serde_json::json;

    fn cluster() -> Cache {
        let mut cache = Cache::default();
        for (name, zone) in [("n1", "z1"), ("n2", "z1"), ("n3", "z2")] {
            cache.upsert_node(
                serde_json::from_value(json!({"metadata": {"name": name, "labels": {"zone": zone, "kubernetes.io/hostname": name}},
                    "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}))
                .unwrap(),
            );
        }
        cache
    }

    fn web(name: &str, node: Option<&str>) -> serde_json::Value {
        json!({"metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
            "spec": {"nodeName": node, "containers": [{"name": "c"}], "affinity": {"podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "zone"}]}}}})
    }

    #[test]
    fn anti_affinity_on_zone_spreads_and_then_blocks() {
        let mut cache = cluster();
        cache.upsert_pod(std::sync::Arc::new(serde_json::from_value(web("web-0", Some("n1"))).unwrap()));
        let incoming = pod(web("web-1", None));
        let state = State::prefilter(&incoming, &cache);
        assert_eq!(state.filter(&cache.nodes["n2"]).unwrap_err().reasons, vec!["node(s) didn't match pod anti-affinity rules"]);
        assert!(state.filter(&cache.nodes["n3"]).is_ok());

        // A plain pod with the same label is kept out of z1 by web-0's anti-affinity (symmetry).
        let plain = pod(
            json!({"metadata": {"name": "other", "namespace": "default", "labels": {"app": "web"}}, "spec": {"containers": [{"name": "c"}]}}),
        );
        let state = State::prefilter(&plain, &cache);
        assert_eq!(state.filter(&cache.nodes["n1"]).unwrap_err().reasons, vec!["node(s) didn't satisfy existing pods anti-affinity rules"]);
        assert!(state.filter(&cache.nodes["n3"]).is_ok());
    }

    #[test]
    fn affinity_requires_a_matching_pod_in_the_topology_unless_first() {
        let mut cache = cluster();
        let with_affinity = |name: &str| {
            pod(json!({"metadata": {"name": name, "namespace": "default", "labels": {"app": "cache"}},
                "spec": {"containers": [{"name": "c"}], "affinity": {"podAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": "zone"}]}}}}))
        };
        // First of the group: allowed anywhere.
        let state = State::prefilter(&with_affinity("c0"), &cache);
        assert!(state.filter(&cache.nodes["n3"]).is_ok());
        cache.upsert_pod(std::sync::Arc::new(
            serde_json::from_value(json!({"metadata": {"name": "c0", "namespace": "default", "labels": {"app": "cache"}},
                "spec": {"nodeName": "n3", "containers": [{"name": "c"}]}}))
            .unwrap(),
        ));
        let state = State::prefilter(&with_affinity("c1"), &cache);
        assert_eq!(state.filter(&cache.nodes["n1"]).unwrap_err().reasons, vec!["node(s) didn't match pod affinity rules"]);
        assert!(state.filter(&cache.nodes["n3"]).is_ok());
    }

    #[test]
    fn min_max_normalisation() {
        let mut s = vec![-5, 0, 5];
        normalize(&mut s);
        assert_eq!(s, vec![0, 50, 100]);
    }
}
