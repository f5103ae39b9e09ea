//! Node CIDR allocation flags of `rkube server` and `rkube controller-manager`, named as
//! kube-controller-manager's (`--allocate-node-cidrs` is on by default here, as in k3s).

use std::sync::Arc;

use rkube_controllers::nodeipam::{self, NodeIpamConfig, NodeIpamFlags};

/// How Nodes get their `spec.podCIDR`.
#[derive(clap::Args, Debug, Clone)]
pub struct NodeIpamArgs {
    /// Give every Node without one a pod CIDR from --cluster-cidr (controller `nodeipam`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub allocate_node_cidrs: bool,
    /// Pod address range of the cluster: one CIDR, or an IPv4 and an IPv6 one (comma-separated).
    #[arg(long, default_value = nodeipam::DEFAULT_CLUSTER_CIDR)]
    pub cluster_cidr: String,
    /// Mask size of each Node's pod CIDR in a single-stack cluster (default 24 for IPv4, 64 for IPv6).
    #[arg(long)]
    pub node_cidr_mask_size: Option<u8>,
    /// Mask size of each Node's IPv4 pod CIDR in a dual-stack cluster (default 24).
    #[arg(long)]
    pub node_cidr_mask_size_ipv4: Option<u8>,
    /// Mask size of each Node's IPv6 pod CIDR in a dual-stack cluster (default 64).
    #[arg(long)]
    pub node_cidr_mask_size_ipv6: Option<u8>,
}

impl NodeIpamArgs {
    /// The checked allocator configuration, `None` when allocation is off. `service_cidr` is
    /// kept out of the Nodes' ranges.
    pub fn config(&self, service_cidr: Option<&str>) -> anyhow::Result<Option<Arc<NodeIpamConfig>>> {
        if !self.allocate_node_cidrs {
            return Ok(None);
        }
        let flags = NodeIpamFlags {
            cluster_cidr: &self.cluster_cidr,
            node_cidr_mask_size: self.node_cidr_mask_size,
            node_cidr_mask_size_ipv4: self.node_cidr_mask_size_ipv4,
            node_cidr_mask_size_ipv6: self.node_cidr_mask_size_ipv6,
            service_cidr,
        };
        NodeIpamConfig::from_flags(&flags).map(|c| Some(Arc::new(c))).map_err(|e| anyhow::anyhow!(e))
    }
}
