//! Node IPAM controller (`nodeipam`), upstream's `pkg/controller/nodeipam` with the
//! RangeAllocator (`ipam/range_allocator.go`): every Node without `spec.podCIDRs` gets the next
//! free block of `--cluster-cidr` (one per family in a dual-stack cluster), written with a
//! strategic merge patch of `spec.podCIDR` and `spec.podCIDRs` as `PatchNodeCIDRs` does. CIDRs
//! that Nodes already have are counted as used and never changed; a deleted Node's block is
//! free again; when no block is left the Node stays without one and gets upstream's Warning
//! event `CIDRNotAvailable` (source `cidrAllocator`), and is tried again when a block is freed.
//!
//! Unlike upstream, whose controller manager stops when a Node's CIDR lies outside the cluster
//! CIDR, such Nodes are logged once and left alone: simulated nodes (`rkube sim`) and agents
//! started with an explicit `--pod-cidr` bring their own ranges.
//!
//! One task handles every event in order (allocation is a bitmap lookup; the patch is the only
//! wait), so an allocation and the patch that records it are never raced by another event.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use ipnet::IpNet;
use k8s_openapi::api::core::v1::Node;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

use crate::cidrset::{CidrSet, CidrSetError};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::events::{EventRecorder, EventType};

/// The event source upstream's allocator reports as.
pub const EVENT_COMPONENT: &str = "cidrAllocator";
/// k3s's default cluster CIDR.
pub const DEFAULT_CLUSTER_CIDR: &str = "10.42.0.0/16";
/// Upstream's default node mask sizes (`defaultNodeMaskCIDRIPv4`/`IPv6`).
pub const DEFAULT_NODE_MASK_IPV4: u8 = 24;
pub const DEFAULT_NODE_MASK_IPV6: u8 = 64;
/// How often a patch is tried before the allocation is given back (upstream's
/// `cidrUpdateRetries`).
const CIDR_UPDATE_RETRIES: usize = 3;
/// The label `rkube sim` puts on its nodes (crates/sim, which this crate does not depend on).
const SIMULATOR_LABEL: &str = "sim.rkube.io/simulator";
/// How often Nodes left without a CIDR are tried again (besides whenever a Node goes away).
const RETRY_INTERVAL: Duration = Duration::from_secs(30);

/// The node IPAM flags as given on the command line (kube-controller-manager's names).
#[derive(Debug, Clone, Default)]
pub struct NodeIpamFlags<'a> {
    /// `--cluster-cidr`: one CIDR, or two of different families (comma-separated).
    pub cluster_cidr: &'a str,
    /// `--node-cidr-mask-size` (single-stack only).
    pub node_cidr_mask_size: Option<u8>,
    /// `--node-cidr-mask-size-ipv4`.
    pub node_cidr_mask_size_ipv4: Option<u8>,
    /// `--node-cidr-mask-size-ipv6`.
    pub node_cidr_mask_size_ipv6: Option<u8>,
    /// The Service ClusterIP range(s), kept out of the Nodes' blocks (comma-separated).
    pub service_cidr: Option<&'a str>,
}

/// What the allocator hands out, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIpamConfig {
    /// The cluster CIDRs, at most one per family; a Node's `podCIDRs[i]` comes from the i-th.
    pub cluster_cidrs: Vec<IpNet>,
    /// The node mask size for each cluster CIDR.
    pub node_mask_sizes: Vec<u8>,
    /// Ranges never handed to Nodes (the Service CIDRs where they overlap).
    pub service_cidrs: Vec<IpNet>,
}

fn parse_cidrs(flag: &str, list: &str) -> Result<Vec<IpNet>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .map(|n| n.trunc())
                .map_err(|e| format!("{flag}: {s:?} is not a CIDR: {e}"))
        })
        .collect()
}

impl NodeIpamConfig {
    /// Checks the flags as kube-controller-manager does (`validateCIDRs`,
    /// `setNodeCIDRMaskSizes` in cmd/kube-controller-manager/app/core.go), plus rkube's limits:
    /// a node block keeps at least two host bits (a gateway and a pod), and the number of
    /// blocks per cluster CIDR is bounded (see `cidrset`).
    pub fn from_flags(flags: &NodeIpamFlags<'_>) -> Result<Self, String> {
        let cluster_cidrs = parse_cidrs("--cluster-cidr", flags.cluster_cidr)?;
        let ipv6_count = cluster_cidrs
            .iter()
            .filter(|c| matches!(c, IpNet::V6(_)))
            .count();
        match cluster_cidrs.len() {
            0 => return Err("--cluster-cidr is required when --allocate-node-cidrs is set".into()),
            1 => {}
            2 if ipv6_count == 1 => {}
            2 => {
                return Err(format!(
                    "--cluster-cidr {:?}: two CIDRs must be dual-stack (one IPv4 and one IPv6)",
                    flags.cluster_cidr
                ));
            }
            n => {
                return Err(format!(
                    "--cluster-cidr has {n} CIDRs; at most 2 are allowed (dual-stack)"
                ));
            }
        }
        let dual_stack = cluster_cidrs.len() == 2;
        let single_ipv6 = !dual_stack && ipv6_count == 1;
        let (mut ipv4, mut ipv6) = (DEFAULT_NODE_MASK_IPV4, DEFAULT_NODE_MASK_IPV6);
        if let Some(mask) = flags.node_cidr_mask_size {
            if dual_stack {
                return Err(
                    "usage of --node-cidr-mask-size is not allowed with dual-stack clusters".into(),
                );
            }
            if flags.node_cidr_mask_size_ipv4.is_some() || flags.node_cidr_mask_size_ipv6.is_some()
            {
                return Err("usage of --node-cidr-mask-size-ipv4 and --node-cidr-mask-size-ipv6 is not allowed if --node-cidr-mask-size is set. For dual-stack clusters please unset it and use IPFamily specific flags".into());
            }
            (ipv4, ipv6) = (mask, mask);
        }
        if let Some(mask) = flags.node_cidr_mask_size_ipv4 {
            if single_ipv6 {
                return Err("usage of --node-cidr-mask-size-ipv4 is not allowed for a single-stack IPv6 cluster".into());
            }
            ipv4 = mask;
        }
        if let Some(mask) = flags.node_cidr_mask_size_ipv6 {
            if !dual_stack && !single_ipv6 {
                return Err("usage of --node-cidr-mask-size-ipv6 is not allowed for a single-stack IPv4 cluster".into());
            }
            ipv6 = mask;
        }
        let mut node_mask_sizes = Vec::new();
        for cidr in &cluster_cidrs {
            let (mask, flag) = match cidr {
                IpNet::V4(_) if dual_stack => (ipv4, "--node-cidr-mask-size-ipv4"),
                IpNet::V6(_) if dual_stack => (ipv6, "--node-cidr-mask-size-ipv6"),
                IpNet::V4(_) => (ipv4, "--node-cidr-mask-size"),
                IpNet::V6(_) => (ipv6, "--node-cidr-mask-size"),
            };
            if mask < cidr.prefix_len() {
                return Err(format!(
                    "invalid --cluster-cidr {cidr}: its mask size /{} must be less than or equal to {flag} (/{mask})",
                    cidr.prefix_len()
                ));
            }
            if mask > cidr.max_prefix_len() - 2 {
                return Err(format!(
                    "{flag} /{mask} leaves no room for pods: a node's block needs a gateway and pod addresses (at most /{})",
                    cidr.max_prefix_len() - 2
                ));
            }
            CidrSet::new(*cidr, mask).map_err(|e| format!("{flag}: {e}"))?;
            node_mask_sizes.push(mask);
        }
        let service_cidrs = match flags.service_cidr {
            Some(list) => parse_cidrs("service CIDR", list)?,
            None => Vec::new(),
        };
        Ok(Self {
            cluster_cidrs,
            node_mask_sizes,
            service_cidrs,
        })
    }
}

/// The blocks handed out, and which Nodes hold each (a block counted for several Nodes, which
/// only misconfiguration makes, is freed when the last of them goes).
#[derive(Debug)]
pub struct RangeAllocator {
    config: NodeIpamConfig,
    sets: Vec<CidrSet>,
    holders: HashMap<(usize, IpNet), BTreeSet<String>>,
    held: HashMap<String, Vec<(usize, IpNet)>>,
}

impl RangeAllocator {
    /// Empty sets with the Service ranges taken out (upstream's `filterOutServiceRange`).
    pub fn new(config: &NodeIpamConfig) -> Result<Self, String> {
        let mut sets = Vec::new();
        for (cidr, mask) in config.cluster_cidrs.iter().zip(&config.node_mask_sizes) {
            let mut set = CidrSet::new(*cidr, *mask)?;
            for service in &config.service_cidrs {
                // Out of range only means they do not overlap.
                let _ = set.occupy(service);
            }
            sets.push(set);
        }
        Ok(Self {
            config: config.clone(),
            sets,
            holders: HashMap::new(),
            held: HashMap::new(),
        })
    }

    /// Forgets every allocation (before counting a fresh list of Nodes).
    pub fn reset(&mut self) -> Result<(), String> {
        *self = Self::new(&self.config)?;
        Ok(())
    }

    /// The blocks `node` is counted for.
    pub fn held_by(&self, node: &str) -> Vec<IpNet> {
        self.held
            .get(node)
            .map(|h| h.iter().map(|(_, c)| *c).collect())
            .unwrap_or_default()
    }

    fn hold(&mut self, node: &str, index: usize, cidr: IpNet) {
        self.holders
            .entry((index, cidr))
            .or_default()
            .insert(node.to_string());
        self.held
            .entry(node.to_string())
            .or_default()
            .push((index, cidr));
    }

    /// Counts the CIDRs a Node already has (`podCIDRs[i]` in the i-th cluster CIDR). CIDRs
    /// that cannot be counted (unparsable, outside the cluster CIDR, more than there are
    /// cluster CIDRs) are skipped and described in the error; the others are counted.
    pub fn occupy(&mut self, node: &str, pod_cidrs: &[String]) -> Result<(), String> {
        let mut problems = Vec::new();
        let mut wanted = Vec::new();
        for (index, text) in pod_cidrs.iter().enumerate() {
            let Ok(cidr) = text.parse::<IpNet>().map(|c| c.trunc()) else {
                problems.push(format!("{text:?} is not a CIDR"));
                continue;
            };
            let Some(set) = self.sets.get(index) else {
                problems.push(format!(
                    "{cidr} at index {index} has no cluster CIDR to belong to"
                ));
                continue;
            };
            match set.check(&cidr) {
                Ok(()) => wanted.push((index, cidr)),
                Err(e) => problems.push(e.to_string()),
            }
        }
        if self.held.get(node) != Some(&wanted) {
            self.release(node);
            for (index, cidr) in wanted {
                if let Some(set) = self.sets.get_mut(index) {
                    let _ = set.occupy(&cidr);
                }
                self.hold(node, index, cidr);
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// The next free block of every cluster CIDR for `node`, or nothing when one has none left.
    pub fn allocate(&mut self, node: &str) -> Result<Vec<IpNet>, CidrSetError> {
        let mut allocated = Vec::new();
        for index in 0..self.sets.len() {
            let next = self.sets.get_mut(index).map(CidrSet::allocate_next);
            match next {
                Some(Ok(cidr)) => allocated.push((index, cidr)),
                Some(Err(e)) => {
                    for (i, cidr) in allocated {
                        if let Some(set) = self.sets.get_mut(i) {
                            let _ = set.release(&cidr);
                        }
                    }
                    return Err(e);
                }
                None => {}
            }
        }
        for (index, cidr) in &allocated {
            self.hold(node, *index, *cidr);
        }
        Ok(allocated.into_iter().map(|(_, c)| c).collect())
    }

    /// Frees what `node` holds (blocks other Nodes also hold stay used).
    pub fn release(&mut self, node: &str) {
        for (index, cidr) in self.held.remove(node).unwrap_or_default() {
            let last = match self.holders.get_mut(&(index, cidr)) {
                Some(names) => {
                    names.remove(node);
                    names.is_empty()
                }
                None => true,
            };
            if last {
                self.holders.remove(&(index, cidr));
                if let Some(set) = self.sets.get_mut(index) {
                    let _ = set.release(&cidr);
                }
            }
        }
    }
}


struct NodeIpam {
    nodes: Api<Node>,
    recorder: EventRecorder,
    allocator: RangeAllocator,
    /// Nodes without a CIDR that could not get one yet.
    waiting: BTreeSet<String>,
    /// Nodes whose CIDRs could not be counted, already logged.
    reported: HashSet<String>,
}

/// Runs the controller until its watch ends.
pub async fn run(ctx: Context, config: Arc<NodeIpamConfig>) -> Result<()> {
    let allocator = RangeAllocator::new(&config).map_err(Error::Config)?;
    let cidrs: Vec<String> = config
        .cluster_cidrs
        .iter()
        .map(ToString::to_string)
        .collect();
    tracing::info!(cluster_cidrs = ?cidrs, node_mask_sizes = ?config.node_mask_sizes, "allocating pod CIDRs to nodes");
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let mut controller = NodeIpam {
        nodes: nodes.clone(),
        recorder: ctx.recorder(EVENT_COMPONENT),
        allocator,
        waiting: BTreeSet::new(),
        reported: HashSet::new(),
    };
    let mut events = watcher(nodes, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut listed: Option<Vec<Node>> = None;
    let mut retry = tokio::time::interval(RETRY_INTERVAL);
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = events.next() => match event {
                None => return Ok(()),
                Some(Err(e)) => tracing::warn!(error = %e, "watching nodes"),
                Some(Ok(watcher::Event::Init)) => listed = Some(Vec::new()),
                Some(Ok(watcher::Event::InitApply(node))) => listed.get_or_insert_with(Vec::new).push(node),
                Some(Ok(watcher::Event::InitDone)) => controller.resync(listed.take().unwrap_or_default()).await,
                Some(Ok(watcher::Event::Apply(node))) => controller.sync(&node).await,
                Some(Ok(watcher::Event::Delete(node))) => controller.deleted(&node).await,
            },
            _ = retry.tick() => controller.retry_waiting().await,
        }
    }
}

impl NodeIpam {
    /// A full list (start or re-list): count every Node's CIDRs first, as upstream does
    /// before it handles any event, then give blocks to the Nodes without.
    async fn resync(&mut self, nodes: Vec<Node>) {
        if let Err(e) = self.allocator.reset() {
            tracing::error!(error = %e, "resetting the node CIDR allocator");
        }
        self.waiting.clear();
        let mut without = Vec::new();
        for node in nodes {
            if node.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let cidrs = rkube_apimachinery::nodes::pod_cidrs(&node);
            if cidrs.is_empty() {
                without.push(node);
            } else {
                self.occupy(&node, &cidrs);
            }
        }
        for node in without {
            self.allocate(&node).await;
        }
    }

    async fn sync(&mut self, node: &Node) {
        let name = node.name_any();
        if node.metadata.deletion_timestamp.is_some() {
            tracing::debug!(node = %name, "node is being deleted; releasing its CIDRs");
            self.forget(&name);
            return;
        }
        let cidrs = rkube_apimachinery::nodes::pod_cidrs(node);
        if cidrs.is_empty() {
            self.allocate(node).await;
        } else {
            self.waiting.remove(&name);
            self.occupy(node, &cidrs);
        }
    }

    fn forget(&mut self, name: &str) {
        self.allocator.release(name);
        self.waiting.remove(name);
        self.reported.remove(name);
    }

    async fn deleted(&mut self, node: &Node) {
        let name = node.name_any();
        tracing::debug!(node = %name, released = ?self.allocator.held_by(&name), "node deleted; releasing its CIDRs");
        self.forget(&name);
        // A freed block may be what a waiting Node needs.
        self.retry_waiting().await;
    }

    fn occupy(&mut self, node: &Node, cidrs: &[String]) {
        let name = node.name_any();
        if let Err(e) = self.allocator.occupy(&name, cidrs) {
            if !self.reported.insert(name.clone()) {
                return;
            }
            // Simulated nodes always bring their own ranges: one line each would drown a
            // thousand-node run's log.
            if node.labels().contains_key(SIMULATOR_LABEL) {
                tracing::debug!(node = %name, pod_cidrs = ?cidrs, error = %e, "simulated node's pod CIDRs are not this allocator's");
            } else {
                tracing::warn!(node = %name, pod_cidrs = ?cidrs, error = %e, "node has pod CIDRs this allocator does not manage; leaving them as they are");
            }
        }
    }

    async fn retry_waiting(&mut self) {
        let names: Vec<String> = self.waiting.iter().cloned().collect();
        for name in names {
            match self.nodes.get_opt(&name).await {
                Ok(Some(node)) => self.sync(&node).await,
                Ok(None) => self.forget(&name),
                Err(e) => {
                    tracing::warn!(node = %name, error = %e, "reading a node waiting for a CIDR")
                }
            }
        }
    }

    /// Reserves blocks for a Node without any and patches them in.
    async fn allocate(&mut self, node: &Node) {
        let name = node.name_any();
        let cidrs = match self.allocator.allocate(&name) {
            Ok(cidrs) => cidrs,
            Err(e) => {
                tracing::warn!(node = %name, error = %e, "no pod CIDR left for node");
                self.waiting.insert(name.clone());
                self.record(node, "CIDRNotAvailable").await;
                return;
            }
        };
        let cidrs: Vec<String> = cidrs.iter().map(ToString::to_string).collect();
        let mut resource_version = node.resource_version();
        let mut last_error = String::new();
        for _ in 0..CIDR_UPDATE_RETRIES {
            // The resourceVersion makes the patch fail rather than overwrite CIDRs someone set
            // since this Node was read.
            let patch = json!({
                "metadata": {"resourceVersion": resource_version},
                "spec": {"podCIDR": cidrs.first(), "podCIDRs": cidrs},
            });
            match self
                .nodes
                .patch(&name, &PatchParams::default(), &Patch::Strategic(&patch))
                .await
            {
                Ok(_) => {
                    tracing::info!(node = %name, pod_cidrs = ?cidrs, "set node pod CIDRs");
                    self.waiting.remove(&name);
                    return;
                }
                Err(kube::Error::Api(status)) if status.code == 404 => {
                    self.forget(&name);
                    return;
                }
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    last_error = status.message.clone();
                    match self.nodes.get_opt(&name).await {
                        Ok(Some(fresh)) if !rkube_apimachinery::nodes::pod_cidrs(&fresh).is_empty() => {
                            // Someone else set them: theirs count, ours go back.
                            self.allocator.release(&name);
                            self.waiting.remove(&name);
                            self.occupy(&fresh, &rkube_apimachinery::nodes::pod_cidrs(&fresh));
                            return;
                        }
                        Ok(Some(fresh)) => resource_version = fresh.resource_version(),
                        Ok(None) => {
                            self.forget(&name);
                            return;
                        }
                        Err(e) => last_error = e.to_string(),
                    }
                }
                Err(e) => last_error = e.to_string(),
            }
        }
        tracing::error!(node = %name, pod_cidrs = ?cidrs, error = %last_error, "failed to set node pod CIDRs; will try again");
        self.record(node, "CIDRAssignmentFailed").await;
        self.allocator.release(&name);
        self.waiting.insert(name);
    }

    /// Upstream's `RecordNodeStatusChange`: a Warning whose reason is the new status.
    async fn record(&self, node: &Node, status: &str) {
        let message = format!("Node {} status is now: {status}", node.name_any());
        self.recorder
            .record(node, EventType::Warning, status, message)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(cluster_cidr: &str) -> NodeIpamFlags<'_> {
        NodeIpamFlags {
            cluster_cidr,
            ..Default::default()
        }
    }

    #[test]
    fn defaults_and_single_stack_masks() {
        let c = NodeIpamConfig::from_flags(&flags(DEFAULT_CLUSTER_CIDR)).unwrap();
        assert_eq!(c.cluster_cidrs[0].to_string(), "10.42.0.0/16");
        assert_eq!(c.node_mask_sizes, vec![24]);
        let c = NodeIpamConfig::from_flags(&NodeIpamFlags {
            node_cidr_mask_size: Some(26),
            ..flags("10.42.0.0/16")
        })
        .unwrap();
        assert_eq!(c.node_mask_sizes, vec![26]);
        let c = NodeIpamConfig::from_flags(&flags("fd00:42::/48")).unwrap();
        assert_eq!(c.node_mask_sizes, vec![64]);
        // Host bits are dropped, as ParseCIDR does.
        let c = NodeIpamConfig::from_flags(&flags("10.42.7.1/16")).unwrap();
        assert_eq!(c.cluster_cidrs[0].to_string(), "10.42.0.0/16");
    }

    #[test]
    fn dual_stack_takes_a_mask_per_family() {
        let c = NodeIpamConfig::from_flags(&NodeIpamFlags {
            node_cidr_mask_size_ipv6: Some(120),
            ..flags("10.42.0.0/16,fd00:42::/112")
        })
        .unwrap();
        assert_eq!(c.node_mask_sizes, vec![24, 120]);
        let e = NodeIpamConfig::from_flags(&NodeIpamFlags {
            node_cidr_mask_size: Some(24),
            ..flags("10.42.0.0/16,fd00:42::/112")
        });
        assert!(e.unwrap_err().contains("not allowed with dual-stack"));
    }

    #[test]
    fn bad_flags_are_refused_with_a_reason() {
        let err = |f: NodeIpamFlags<'_>| NodeIpamConfig::from_flags(&f).unwrap_err();
        assert!(err(flags("10.42.0.0")).contains("is not a CIDR"));
        assert!(err(flags("")).contains("required"));
        assert!(err(flags("10.42.0.0/16,10.43.0.0/16")).contains("dual-stack"));
        assert!(err(flags("10.0.0.0/16,fd00::/112,10.1.0.0/16")).contains("at most 2"));
        assert!(
            err(NodeIpamFlags {
                node_cidr_mask_size: Some(15),
                ..flags("10.42.0.0/16")
            })
            .contains("less than or equal")
        );
        assert!(
            err(NodeIpamFlags {
                node_cidr_mask_size: Some(31),
                ..flags("10.42.0.0/16")
            })
            .contains("no room for pods")
        );
        assert!(
            err(NodeIpamFlags {
                node_cidr_mask_size_ipv6: Some(64),
                ..flags("10.42.0.0/16")
            })
            .contains("single-stack IPv4")
        );
        assert!(
            err(NodeIpamFlags {
                node_cidr_mask_size_ipv4: Some(24),
                ..flags("fd00::/48")
            })
            .contains("single-stack IPv6")
        );
        assert!(
            err(NodeIpamFlags {
                node_cidr_mask_size: Some(24),
                node_cidr_mask_size_ipv4: Some(24),
                ..flags("10.42.0.0/16")
            })
            .contains("not allowed if --node-cidr-mask-size is set")
        );
        assert!(err(flags("fd00::/32")).contains("too big"));
    }

    fn allocator(cluster: &str, mask: u8, service: Option<&str>) -> RangeAllocator {
        let config = NodeIpamConfig::from_flags(&NodeIpamFlags {
            node_cidr_mask_size: Some(mask),
            service_cidr: service,
            ..flags(cluster)
        })
        .unwrap();
        RangeAllocator::new(&config).unwrap()
    }

    fn strings(cidrs: Result<Vec<IpNet>, CidrSetError>) -> String {
        match cidrs {
            Ok(c) => c
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn existing_cidrs_are_kept_and_new_nodes_get_the_next_free_block() {
        let mut a = allocator("10.99.0.0/22", 24, None);
        assert!(a.occupy("old", &["10.99.0.0/24".into()]).is_ok());
        assert_eq!(strings(a.allocate("n1")), "10.99.1.0/24");
        // Seen again with the same CIDR: nothing changes.
        assert!(a.occupy("old", &["10.99.0.0/24".into()]).is_ok());
        assert_eq!(strings(a.allocate("n2")), "10.99.2.0/24");
        a.release("n1");
        assert_eq!(strings(a.allocate("n3")), "10.99.3.0/24");
        assert_eq!(strings(a.allocate("n4")), "10.99.1.0/24");
        assert!(strings(a.allocate("n5")).contains("no remaining CIDRs"));
        a.release("old");
        assert_eq!(strings(a.allocate("n5")), "10.99.0.0/24");
    }

    #[test]
    fn foreign_cidrs_are_reported_not_counted() {
        let mut a = allocator("10.42.0.0/16", 24, None);
        let e = a.occupy("sim-0", &["10.64.0.0/24".into()]).unwrap_err();
        assert!(e.contains("out the range"), "{e}");
        assert!(a.occupy("junk", &["nonsense".into()]).is_err());
        assert!(
            a.occupy("v6", &["10.42.5.0/24".into(), "fd00::/64".into()])
                .is_err()
        );
        // The in-range part of that node still counts.
        assert_eq!(a.held_by("v6").len(), 1);
        assert_eq!(strings(a.allocate("n")), "10.42.0.0/24");
        a.release("sim-0");
        a.release("never-seen");
    }

    #[test]
    fn a_block_held_twice_is_freed_with_its_last_holder() {
        let mut a = allocator("10.42.0.0/23", 24, None);
        assert!(a.occupy("a", &["10.42.0.0/24".into()]).is_ok());
        assert!(a.occupy("b", &["10.42.0.0/24".into()]).is_ok());
        a.release("a");
        assert_eq!(strings(a.allocate("c")), "10.42.1.0/24");
        assert!(strings(a.allocate("d")).contains("no remaining"));
        a.release("b");
        assert_eq!(strings(a.allocate("d")), "10.42.0.0/24");
    }

    #[test]
    fn the_service_range_is_never_handed_out() {
        let mut a = allocator("10.42.0.0/22", 24, Some("10.42.1.0/24"));
        assert_eq!(strings(a.allocate("a")), "10.42.0.0/24");
        assert_eq!(strings(a.allocate("b")), "10.42.2.0/24");
        // A reset keeps it out too.
        a.reset().unwrap();
        assert_eq!(strings(a.allocate("a")), "10.42.0.0/24");
        assert_eq!(strings(a.allocate("b")), "10.42.2.0/24");
    }

    #[test]
    fn dual_stack_nodes_get_one_block_per_family() {
        let config = NodeIpamConfig::from_flags(&NodeIpamFlags {
            node_cidr_mask_size_ipv6: Some(121),
            ..flags("10.42.0.0/23,fd00::/120")
        })
        .unwrap();
        let mut a = RangeAllocator::new(&config).unwrap();
        assert_eq!(strings(a.allocate("a")), "10.42.0.0/24,fd00::/121");
        assert_eq!(strings(a.allocate("b")), "10.42.1.0/24,fd00::80/121");
        // One family exhausted: nothing is taken from the other.
        assert!(strings(a.allocate("c")).contains("no remaining"));
        a.release("a");
        assert_eq!(strings(a.allocate("c")), "10.42.0.0/24,fd00::/121");
    }
}
