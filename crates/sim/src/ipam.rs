//! Node and pod addresses. Each node gets a /24 pod CIDR `10.B.C.0/24`, where the block of
//! second octets (24 of them, room for 6,144 nodes) is chosen by a hash of the name prefix so
//! several simulators rarely overlap; the node's own address is `.1`, pods get `.2`–`.254`.

use std::collections::{BTreeSet, HashMap};

const FIRST_POD_HOST: u8 = 2;
const LAST_POD_HOST: u8 = 254;

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The /24 of node `index` as its first three octets.
pub fn node_block(prefix: &str, index: usize) -> [u8; 3] {
    let base = 64 + (fnv1a(prefix) % 8) as usize * 24;
    let second = (base + index / 256) % 256;
    [10, second as u8, (index % 256) as u8]
}

/// `10.B.C.0/24`.
pub fn pod_cidr(prefix: &str, index: usize) -> String {
    let [a, b, c] = node_block(prefix, index);
    format!("{a}.{b}.{c}.0/24")
}

/// The `.1` of a node's block (kept for the block-layout tests; nodes advertise the
/// simulator's metrics endpoint as their InternalIP).
#[cfg(test)]
pub fn node_ip(prefix: &str, index: usize) -> String {
    let [a, b, c] = node_block(prefix, index);
    format!("{a}.{b}.{c}.1")
}

/// Pod addresses handed out per node.
#[derive(Debug, Default)]
pub struct PodIpam {
    used: HashMap<usize, BTreeSet<u8>>,
}

impl PodIpam {
    /// The lowest free address on node `index`, or `None` when the /24 is full.
    pub fn allocate(&mut self, prefix: &str, index: usize) -> Option<String> {
        let used = self.used.entry(index).or_default();
        let host = (FIRST_POD_HOST..=LAST_POD_HOST).find(|h| !used.contains(h))?;
        used.insert(host);
        let [a, b, c] = node_block(prefix, index);
        Some(format!("{a}.{b}.{c}.{host}"))
    }

    /// Marks an address as used (a pod already running when the simulator starts).
    pub fn reserve(&mut self, index: usize, ip: &str) {
        if let Some(host) = ip.rsplit('.').next().and_then(|h| h.parse::<u8>().ok()) {
            self.used.entry(index).or_default().insert(host);
        }
    }

    /// Frees an address.
    pub fn release(&mut self, index: usize, ip: &str) {
        if let (Some(used), Some(host)) = (self.used.get_mut(&index), ip.rsplit('.').next().and_then(|h| h.parse::<u8>().ok())) {
            used.remove(&host);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_come_from_the_node_block() {
        let cidr = pod_cidr("sim", 257);
        let [_, b, c] = node_block("sim", 257);
        assert_eq!(cidr, format!("10.{b}.{c}.0/24"));
        assert_eq!(c, 1);
        let mut ipam = PodIpam::default();
        assert_eq!(ipam.allocate("sim", 257), Some(format!("10.{b}.1.2")));
        assert_eq!(ipam.allocate("sim", 257), Some(format!("10.{b}.1.3")));
        ipam.release(257, &format!("10.{b}.1.2"));
        assert_eq!(ipam.allocate("sim", 257), Some(format!("10.{b}.1.2")));
        assert_eq!(node_ip("sim", 257), format!("10.{b}.1.1"));
    }
}
