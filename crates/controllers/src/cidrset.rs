//! The node CIDRs of one cluster CIDR, as upstream's
//! `pkg/controller/nodeipam/ipam/cidrset/cidr_set.go`: the cluster CIDR is cut into blocks of
//! the node mask size, numbered from its first address; a bitmap says which are used, and the
//! next allocation starts after the last one handed out (round robin, so a released block is
//! reused only after the others, as upstream).
//!
//! IPv4 and IPv6 share the arithmetic: addresses are handled as `u128`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::RangeInclusive;

use ipnet::IpNet;

/// Upstream's `clusterSubnetMaxDiff`: an IPv6 node mask at most 16 bits longer than the
/// cluster's (its bitmap is not compressed).
pub const IPV6_MAX_MASK_DIFF: u8 = 16;
/// rkube's limit for IPv4 (upstream has none): 2^24 blocks keep the bitmap at 2 MiB.
pub const IPV4_MAX_MASK_DIFF: u8 = 24;

/// Why a block could not be allocated, occupied or released.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrSetError {
    /// Every block is in use (upstream's `ErrCIDRRangeNoCIDRsRemaining`).
    #[error(
        "CIDR allocation failed; there are no remaining CIDRs left to allocate in the accepted range"
    )]
    NoCidrsRemaining,
    /// The CIDR does not overlap the cluster CIDR.
    #[error("cidr {cidr} is out the range of cluster cidr {cluster}")]
    OutOfRange { cidr: IpNet, cluster: IpNet },
}

/// The blocks of one cluster CIDR and which of them are used.
#[derive(Debug, Clone)]
pub struct CidrSet {
    cluster: IpNet,
    node_prefix: u8,
    max_cidrs: u64,
    allocated: u64,
    next_candidate: u64,
    used: Vec<u64>,
}

fn to_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_bits(ipv4: bool, bits: u128) -> IpAddr {
    if ipv4 {
        IpAddr::V4(Ipv4Addr::from(u32::try_from(bits).unwrap_or(u32::MAX)))
    } else {
        IpAddr::V6(Ipv6Addr::from(bits))
    }
}

impl CidrSet {
    /// The blocks of `/node_prefix` in `cluster` (its host bits are ignored). The prefix must be
    /// at least the cluster's and within the family's limit of blocks.
    pub fn new(cluster: IpNet, node_prefix: u8) -> Result<Self, String> {
        let cluster = cluster.trunc();
        let cluster_prefix = cluster.prefix_len();
        if node_prefix < cluster_prefix || node_prefix > cluster.max_prefix_len() {
            return Err(format!(
                "node CIDR mask size /{node_prefix} must be between the cluster CIDR's /{cluster_prefix} and /{}",
                cluster.max_prefix_len()
            ));
        }
        let diff = node_prefix - cluster_prefix;
        let limit = match cluster {
            IpNet::V4(_) => IPV4_MAX_MASK_DIFF,
            IpNet::V6(_) => IPV6_MAX_MASK_DIFF,
        };
        if diff > limit {
            return Err(format!(
                "node CIDR mask size /{node_prefix} is {diff} bits longer than cluster CIDR {cluster}; at most {limit} are supported (the node CIDR size is too big)"
            ));
        }
        let max_cidrs = 1u64 << diff;
        Ok(Self {
            cluster,
            node_prefix,
            max_cidrs,
            allocated: 0,
            next_candidate: 0,
            used: vec![0; max_cidrs.div_ceil(64) as usize],
        })
    }

    /// The cluster CIDR.
    pub fn cluster(&self) -> IpNet {
        self.cluster
    }

    /// How many blocks are in use.
    pub fn allocated(&self) -> u64 {
        self.allocated
    }

    /// How many blocks there are.
    pub fn capacity(&self) -> u64 {
        self.max_cidrs
    }

    fn host_bits(&self) -> u32 {
        u32::from(self.cluster.max_prefix_len() - self.node_prefix)
    }

    fn is_used(&self, index: u64) -> bool {
        self.used
            .get((index / 64) as usize)
            .is_some_and(|word| word & (1 << (index % 64)) != 0)
    }

    /// Marks `index` used or free; true when that changed it.
    fn set(&mut self, index: u64, used: bool) -> bool {
        let Some(word) = self.used.get_mut((index / 64) as usize) else {
            return false;
        };
        let bit = 1u64 << (index % 64);
        let was_used = *word & bit != 0;
        if was_used == used {
            return false;
        }
        if used {
            *word |= bit;
            self.allocated += 1;
        } else {
            *word &= !bit;
            self.allocated -= 1;
        }
        true
    }

    fn block(&self, index: u64) -> IpNet {
        let offset = u128::from(index).checked_shl(self.host_bits()).unwrap_or(0);
        let network = from_bits(
            self.cluster.network().is_ipv4(),
            to_bits(self.cluster.network()) | offset,
        );
        IpNet::new(network, self.node_prefix).unwrap_or(self.cluster)
    }

    fn index_of(&self, ip: IpAddr) -> Option<u64> {
        let index = (to_bits(self.cluster.network()) ^ to_bits(ip))
            .checked_shr(self.host_bits())
            .unwrap_or(0);
        u64::try_from(index).ok().filter(|i| *i < self.max_cidrs)
    }

    /// The blocks `cidr` covers: all of them when it contains the cluster CIDR, else the ones
    /// from its first to its last address (upstream's `getBeginningAndEndIndices`).
    fn indices(&self, cidr: &IpNet) -> Result<RangeInclusive<u64>, CidrSetError> {
        let cidr = cidr.trunc();
        let out_of_range = || CidrSetError::OutOfRange {
            cidr,
            cluster: self.cluster,
        };
        let same_family = cidr.network().is_ipv4() == self.cluster.network().is_ipv4();
        if !same_family
            || !(self.cluster.contains(&cidr.network()) || cidr.contains(&self.cluster.network()))
        {
            return Err(out_of_range());
        }
        if cidr.prefix_len() <= self.cluster.prefix_len() {
            return Ok(0..=self.max_cidrs - 1);
        }
        let begin = self.index_of(cidr.network()).ok_or_else(out_of_range)?;
        let end = self.index_of(cidr.broadcast()).ok_or_else(out_of_range)?;
        Ok(begin..=end)
    }

    /// Whether `cidr` could be occupied or released (it overlaps the cluster CIDR).
    pub fn check(&self, cidr: &IpNet) -> Result<(), CidrSetError> {
        self.indices(cidr).map(|_| ())
    }

    /// The next free block after the last one allocated, marked used.
    pub fn allocate_next(&mut self) -> Result<IpNet, CidrSetError> {
        if self.allocated >= self.max_cidrs {
            return Err(CidrSetError::NoCidrsRemaining);
        }
        let mut candidate = self.next_candidate;
        for _ in 0..self.max_cidrs {
            if !self.is_used(candidate) {
                break;
            }
            candidate = (candidate + 1) % self.max_cidrs;
        }
        self.next_candidate = (candidate + 1) % self.max_cidrs;
        self.set(candidate, true);
        Ok(self.block(candidate))
    }

    /// Marks the blocks `cidr` covers as used (already used ones stay so).
    pub fn occupy(&mut self, cidr: &IpNet) -> Result<(), CidrSetError> {
        for index in self.indices(cidr)? {
            self.set(index, true);
        }
        Ok(())
    }

    /// Marks the blocks `cidr` covers as free.
    pub fn release(&mut self, cidr: &IpNet) -> Result<(), CidrSetError> {
        for index in self.indices(cidr)? {
            self.set(index, false);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn allocate(set: &mut CidrSet) -> String {
        set.allocate_next()
            .map(|n| n.to_string())
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn blocks_are_allocated_in_order_until_exhausted() {
        let mut set = CidrSet::new(net("10.42.0.0/22"), 24).unwrap();
        assert_eq!(set.capacity(), 4);
        for want in [
            "10.42.0.0/24",
            "10.42.1.0/24",
            "10.42.2.0/24",
            "10.42.3.0/24",
        ] {
            assert_eq!(allocate(&mut set), want);
        }
        assert_eq!(set.allocate_next(), Err(CidrSetError::NoCidrsRemaining));
        assert_eq!(set.allocated(), 4);
    }

    #[test]
    fn a_released_block_is_reused_after_the_others_as_upstream() {
        let mut set = CidrSet::new(net("10.42.0.0/22"), 24).unwrap();
        for _ in 0..3 {
            set.allocate_next().ok();
        }
        assert!(set.release(&net("10.42.1.0/24")).is_ok());
        assert_eq!(allocate(&mut set), "10.42.3.0/24");
        assert_eq!(allocate(&mut set), "10.42.1.0/24");
        assert_eq!(set.allocate_next(), Err(CidrSetError::NoCidrsRemaining));
    }

    #[test]
    fn occupied_blocks_are_skipped_and_counted_once() {
        let mut set = CidrSet::new(net("10.42.0.0/16"), 24).unwrap();
        assert!(set.occupy(&net("10.42.0.0/24")).is_ok());
        assert!(set.occupy(&net("10.42.0.0/24")).is_ok());
        // Host bits are ignored, as ParseCIDRSloppy does.
        assert!(set.occupy(&net("10.42.1.7/24")).is_ok());
        assert_eq!(set.allocated(), 2);
        assert_eq!(allocate(&mut set), "10.42.2.0/24");
        // A larger CIDR inside the cluster takes every block it covers.
        assert!(set.occupy(&net("10.42.4.0/23")).is_ok());
        assert_eq!(allocate(&mut set), "10.42.3.0/24");
        assert_eq!(allocate(&mut set), "10.42.6.0/24");
        // A smaller one takes the block it lies in.
        assert!(set.occupy(&net("10.42.7.128/25")).is_ok());
        assert_eq!(allocate(&mut set), "10.42.8.0/24");
    }

    #[test]
    fn cidrs_outside_the_cluster_are_refused() {
        let mut set = CidrSet::new(net("10.42.0.0/16"), 24).unwrap();
        let outside = net("10.64.0.0/24");
        assert_eq!(
            set.occupy(&outside),
            Err(CidrSetError::OutOfRange {
                cidr: outside,
                cluster: net("10.42.0.0/16")
            })
        );
        assert!(set.release(&net("fd00::/64")).is_err());
        assert_eq!(set.allocated(), 0);
        // A range containing the cluster CIDR (a service CIDR, say) covers all of it.
        assert!(set.occupy(&net("10.0.0.0/8")).is_ok());
        assert_eq!(set.allocated(), 256);
        assert!(set.release(&net("10.42.0.0/16")).is_ok());
        assert_eq!(set.allocated(), 0);
    }

    #[test]
    fn mask_sizes_are_checked() {
        assert!(CidrSet::new(net("10.42.0.0/16"), 15).is_err());
        assert!(CidrSet::new(net("10.42.0.0/16"), 33).is_err());
        assert!(CidrSet::new(net("10.0.0.0/8"), 32).is_ok());
        assert!(CidrSet::new(net("10.0.0.0/7"), 32).is_err());
        assert!(CidrSet::new(net("fd00::/48"), 64).is_ok());
        assert!(CidrSet::new(net("fd00::/47"), 64).is_err());
        let whole = CidrSet::new(net("10.42.0.0/24"), 24).unwrap();
        assert_eq!(whole.capacity(), 1);
    }

    #[test]
    fn ipv6_blocks() {
        let mut set = CidrSet::new(net("fd00:10:244::/56"), 64).unwrap();
        assert_eq!(set.capacity(), 256);
        assert_eq!(allocate(&mut set), "fd00:10:244::/64");
        assert_eq!(allocate(&mut set), "fd00:10:244:1::/64");
        assert!(set.occupy(&net("fd00:10:244:2::/64")).is_ok());
        assert_eq!(allocate(&mut set), "fd00:10:244:3::/64");
        assert!(set.occupy(&net("fd00:10:245::/64")).is_err());
        let mut wide = CidrSet::new(net("fd00::/112"), 120).unwrap();
        assert_eq!(allocate(&mut wide), "fd00::/120");
        assert_eq!(allocate(&mut wide), "fd00::100/120");
    }
}
