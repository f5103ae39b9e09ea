//! The kubelet's hard eviction thresholds (`--eviction-hard`, e.g.
//! `memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%`, its Linux default): they
//! are held back from the Node's allocatable and crossing one is memory or disk pressure.
//! kind and other test setups turn the disk thresholds off (`nodefs.available<0%`) so that a
//! full build machine does not taint its only node.

/// One signal's threshold: an absolute amount (bytes, or inodes) or a share of the capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    Quantity(u64),
    Percent(f64),
}

impl Threshold {
    /// The amount this threshold holds back of `capacity`.
    pub fn of(&self, capacity: u64) -> u64 {
        match *self {
            Threshold::Quantity(q) => q,
            Threshold::Percent(p) => (capacity as f64 * p / 100.0) as u64,
        }
    }

    /// Whether `available` of `capacity` is below the threshold.
    pub fn crossed(&self, available: u64, capacity: u64) -> bool {
        available < self.of(capacity)
    }
}

/// The thresholds rkube acts on. `imagefs.*` signals are accepted and ignored: the images live
/// on the agent's node filesystem here.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvictionHard {
    pub memory_available: Threshold,
    pub nodefs_available: Threshold,
    pub nodefs_inodes_free: Threshold,
}

/// The kubelet's Linux default.
pub const DEFAULT_EVICTION_HARD: &str = "memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%";

impl Default for EvictionHard {
    fn default() -> Self {
        Self {
            memory_available: Threshold::Quantity(100 * 1024 * 1024),
            nodefs_available: Threshold::Percent(10.0),
            nodefs_inodes_free: Threshold::Percent(5.0),
        }
    }
}

impl EvictionHard {
    /// Parses the kubelet's flag syntax; signals not named keep no threshold (as the kubelet,
    /// which replaces the whole default map when the flag is given).
    pub fn parse(text: &str) -> Result<Self, String> {
        let none = Threshold::Quantity(0);
        let mut out = Self { memory_available: none, nodefs_available: none, nodefs_inodes_free: none };
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (signal, value) = item
                .split_once('<')
                .ok_or_else(|| format!("invalid eviction threshold {item:?}: expected <signal><<value>"))?;
            let threshold = match value.strip_suffix('%') {
                Some(p) => {
                    let p: f64 = p.parse().map_err(|_| format!("invalid eviction threshold {item:?}: bad percentage"))?;
                    if !(0.0..=100.0).contains(&p) {
                        return Err(format!("invalid eviction threshold {item:?}: percentage must be between 0% and 100%"));
                    }
                    Threshold::Percent(p)
                }
                None => {
                    let q = rkube_apimachinery::quantity::value(value)
                        .filter(|q| *q >= 0)
                        .ok_or_else(|| format!("invalid eviction threshold {item:?}: bad quantity"))?;
                    Threshold::Quantity(q as u64)
                }
            };
            match signal {
                "memory.available" => out.memory_available = threshold,
                "nodefs.available" => out.nodefs_available = threshold,
                "nodefs.inodesFree" => out.nodefs_inodes_free = threshold,
                "imagefs.available" | "imagefs.inodesFree" | "containerfs.available" | "containerfs.inodesFree" | "pid.available" => {}
                other => return Err(format!("unsupported eviction signal {other}")),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_flag_is_the_default() {
        assert_eq!(EvictionHard::parse(DEFAULT_EVICTION_HARD), Ok(EvictionHard::default()));
    }

    #[test]
    fn thresholds_parse_and_apply() {
        let e = EvictionHard::parse("memory.available<1Gi, nodefs.available<0%,imagefs.available<15%").expect("parses");
        assert_eq!(e.memory_available, Threshold::Quantity(1 << 30));
        assert_eq!(e.nodefs_available, Threshold::Percent(0.0));
        assert_eq!(e.nodefs_inodes_free, Threshold::Quantity(0), "not named: none");
        assert!(!e.nodefs_available.crossed(0, 1000));
        assert!(Threshold::Percent(10.0).crossed(99, 1000));
        assert!(!Threshold::Percent(10.0).crossed(100, 1000));
        assert_eq!(Threshold::Percent(10.0).of(1000), 100);
        assert!(EvictionHard::parse("disk.free<1Gi").unwrap_err().contains("unsupported eviction signal disk.free"));
        assert!(EvictionHard::parse("memory.available=1Gi").is_err());
        assert!(EvictionHard::parse("nodefs.available<120%").is_err());
    }
}
