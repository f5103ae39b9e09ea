//! What the node as a whole uses, read from the host as cAdvisor reads the kubelet's root
//! container "/": cumulative CPU time and memory of the root cgroup (cgroup v1, v2 or the v1
//! hierarchies of a hybrid host), network interfaces of the host's namespace, boot time and
//! process counts.

use std::path::PathBuf;

use super::types::{InterfaceStats, MemoryStats, NetworkStats, Time};

/// Interfaces cAdvisor leaves out of container network stats (`ignoredDevicePrefixes`).
const IGNORED_INTERFACE_PREFIXES: [&str; 4] = ["lo", "veth", "docker", "nerdctl"];
/// The interface the kubelet reports inline as the node's default (`network.DefaultInterfaceName`).
const DEFAULT_INTERFACE: &str = "eth0";
/// Kernel clock ticks per second of /proc/stat (USER_HZ, 100 on every Linux ABI).
const USER_HZ: u64 = 100;

/// Where to read from (the real `/sys/fs/cgroup` and `/proc`, or test directories).
#[derive(Debug, Clone)]
pub struct Host {
    pub cgroup_root: PathBuf,
    pub proc_root: PathBuf,
}

impl Default for Host {
    fn default() -> Self {
        Self {
            cgroup_root: "/sys/fs/cgroup".into(),
            proc_root: "/proc".into(),
        }
    }
}

/// The node's memory, before the working set is derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeMemory {
    pub total_bytes: u64,
    pub usage_bytes: u64,
    pub inactive_file_bytes: u64,
    pub rss_bytes: Option<u64>,
    pub page_faults: Option<u64>,
    pub major_page_faults: Option<u64>,
}

impl NodeMemory {
    /// MemoryStats as the kubelet reports the node's: working set = usage − inactive file,
    /// available = machine memory − working set.
    pub fn stats(&self, time: Time) -> MemoryStats {
        let working_set = self.usage_bytes.saturating_sub(self.inactive_file_bytes);
        MemoryStats {
            time,
            available_bytes: Some(self.total_bytes.saturating_sub(working_set)),
            usage_bytes: Some(self.usage_bytes),
            working_set_bytes: Some(working_set),
            rss_bytes: self.rss_bytes,
            page_faults: self.page_faults,
            major_page_faults: self.major_page_faults,
        }
    }
}

fn field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut parts = l.split_whitespace();
        (parts.next() == Some(key))
            .then(|| parts.next()?.parse().ok())
            .flatten()
    })
}

/// A /proc/meminfo value in bytes (`MemTotal:  24684084 kB`).
fn meminfo(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        let kib: u64 = rest.split_whitespace().next()?.parse().ok()?;
        Some(kib * 1024)
    })
}

impl Host {
    fn read(&self, relative: &str) -> Option<String> {
        std::fs::read_to_string(self.cgroup_root.join(relative)).ok()
    }

    fn read_proc(&self, relative: &str) -> Option<String> {
        std::fs::read_to_string(self.proc_root.join(relative)).ok()
    }

    /// A pure cgroup v2 mount (the root has `cgroup.controllers`); hybrid hosts have v1
    /// hierarchies under tmpfs and are read as v1.
    fn unified(&self) -> bool {
        self.cgroup_root.join("cgroup.controllers").exists()
    }

    /// Cumulative CPU time of the whole node in nanoseconds.
    pub fn cpu_usage_nanos(&self) -> Option<u64> {
        if self.unified() {
            if let Some(usec) = self.read("cpu.stat").and_then(|s| field(&s, "usage_usec")) {
                return Some(usec * 1000);
            }
        } else {
            for dir in ["cpuacct", "cpu,cpuacct", "cpuacct,cpu"] {
                if let Some(ns) = self
                    .read(&format!("{dir}/cpuacct.usage"))
                    .and_then(|s| s.trim().parse().ok())
                {
                    return Some(ns);
                }
            }
        }
        // No readable root cgroup: the non-idle time of /proc/stat.
        let stat = self.read_proc("stat")?;
        let cpu = stat.lines().find(|l| l.starts_with("cpu "))?;
        let ticks: Vec<u64> = cpu
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal …
        let busy: u64 = [0, 1, 2, 5, 6, 7]
            .iter()
            .filter_map(|i| ticks.get(*i))
            .sum();
        Some(busy * (1_000_000_000 / USER_HZ))
    }

    /// Memory of the whole node.
    pub fn memory(&self) -> Option<NodeMemory> {
        let info = self.read_proc("meminfo")?;
        let total_bytes = meminfo(&info, "MemTotal")?;
        if !self.unified()
            && let Some(usage) = self
                .read("memory/memory.usage_in_bytes")
                .and_then(|s| s.trim().parse().ok())
        {
            let stat = self.read("memory/memory.stat").unwrap_or_default();
            return Some(NodeMemory {
                total_bytes,
                usage_bytes: usage,
                inactive_file_bytes: field(&stat, "total_inactive_file").unwrap_or(0),
                rss_bytes: field(&stat, "total_rss"),
                page_faults: field(&stat, "total_pgfault"),
                major_page_faults: field(&stat, "total_pgmajfault"),
            });
        }
        // cgroup v2 has no memory.current at the root: usage is what the machine does not
        // have free (runc's root stats do the same), the rest from the root memory.stat.
        let stat = self.read("memory.stat").unwrap_or_default();
        let free = meminfo(&info, "MemFree").unwrap_or(0);
        Some(NodeMemory {
            total_bytes,
            usage_bytes: total_bytes.saturating_sub(free),
            inactive_file_bytes: field(&stat, "inactive_file")
                .or_else(|| meminfo(&info, "Inactive(file)"))
                .unwrap_or(0),
            rss_bytes: field(&stat, "anon"),
            page_faults: field(&stat, "pgfault"),
            major_page_faults: field(&stat, "pgmajfault"),
        })
    }

    /// Counters of the host's interfaces (/proc/net/dev), with `eth0` inline as the default.
    pub fn network(&self, time: Time) -> Option<NetworkStats> {
        let dev = self.read_proc("net/dev")?;
        let interfaces = parse_net_dev(&dev);
        let default_interface = interfaces
            .iter()
            .find(|i| i.name == DEFAULT_INTERFACE)
            .cloned()
            .unwrap_or_default();
        Some(NetworkStats {
            time,
            default_interface,
            interfaces,
        })
    }

    /// When the machine booted (`btime` of /proc/stat).
    pub fn boot_time(&self) -> Option<Time> {
        let seconds = field(&self.read_proc("stat")?, "btime")?;
        Some(Time(i64::try_from(seconds).ok()? * 1_000_000_000))
    }

    /// The kernel's PID limit and the number of tasks now (the kubelet's rlimit stats).
    pub fn pids(&self) -> (Option<i64>, Option<i64>) {
        let max = self
            .read_proc("sys/kernel/pid_max")
            .and_then(|s| s.trim().parse().ok());
        // `0.00 0.01 0.05 1/123 456`: runnable/total scheduling entities.
        let current = self
            .read_proc("loadavg")
            .and_then(|s| s.split_whitespace().nth(3)?.split('/').nth(1)?.parse().ok());
        (max, current)
    }
}

/// Interfaces of /proc/net/dev, without those cAdvisor ignores.
fn parse_net_dev(text: &str) -> Vec<InterfaceStats> {
    text.lines()
        .skip(2)
        .filter_map(|line| {
            let (name, counters) = line.split_once(':')?;
            let name = name.trim();
            if IGNORED_INTERFACE_PREFIXES
                .iter()
                .any(|p| name.starts_with(p))
            {
                return None;
            }
            let v: Vec<u64> = counters
                .split_whitespace()
                .filter_map(|c| c.parse().ok())
                .collect();
            // Receive: bytes packets errs drop fifo frame compressed multicast; then transmit.
            Some(InterfaceStats {
                name: name.to_string(),
                rx_bytes: v.first().copied(),
                rx_errors: v.get(2).copied(),
                tx_bytes: v.get(8).copied(),
                tx_errors: v.get(10).copied(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMINFO: &str =
        "MemTotal:       1000 kB\nMemFree:         400 kB\nInactive(file):   50 kB\n";
    const STAT: &str =
        "cpu  100 20 30 4000 5 6 7 8 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nbtime 1700000000\n";

    fn host(files: &[(&str, &str)]) -> anyhow::Result<(tempfile::TempDir, Host)> {
        let dir = tempfile::tempdir()?;
        for (path, content) in files {
            let p = dir.path().join(path);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(p, content)?;
        }
        let host = Host {
            cgroup_root: dir.path().join("cgroup"),
            proc_root: dir.path().join("proc"),
        };
        Ok((dir, host))
    }

    #[test]
    fn cgroup_v1_root_counters() -> anyhow::Result<()> {
        let (_dir, h) = host(&[
            ("cgroup/cpuacct/cpuacct.usage", "656071726651\n"),
            ("cgroup/memory/memory.usage_in_bytes", "700000\n"),
            (
                "cgroup/memory/memory.stat",
                "inactive_file 1\ntotal_rss 300000\ntotal_pgfault 9\ntotal_pgmajfault 2\ntotal_inactive_file 200000\n",
            ),
            ("proc/meminfo", MEMINFO),
            ("proc/stat", STAT),
        ])?;
        assert_eq!(h.cpu_usage_nanos(), Some(656_071_726_651));
        let m = h.memory().ok_or_else(|| anyhow::anyhow!("no memory"))?;
        let stats = m.stats(Time(5));
        assert_eq!(stats.working_set_bytes, Some(500_000));
        assert_eq!(stats.available_bytes, Some(1000 * 1024 - 500_000));
        assert_eq!(
            (stats.rss_bytes, stats.page_faults, stats.major_page_faults),
            (Some(300_000), Some(9), Some(2))
        );
        assert_eq!(h.boot_time(), Some(Time(1_700_000_000_000_000_000)));
        Ok(())
    }

    #[test]
    fn cgroup_v2_root_counters() -> anyhow::Result<()> {
        let (_dir, h) = host(&[
            ("cgroup/cgroup.controllers", "cpu memory\n"),
            ("cgroup/cpu.stat", "usage_usec 1500\nuser_usec 1000\n"),
            (
                "cgroup/memory.stat",
                "anon 4096\ninactive_file 10240\npgfault 7\npgmajfault 1\n",
            ),
            ("proc/meminfo", MEMINFO),
            ("proc/stat", STAT),
        ])?;
        assert_eq!(h.cpu_usage_nanos(), Some(1_500_000));
        let stats = h
            .memory()
            .ok_or_else(|| anyhow::anyhow!("no memory"))?
            .stats(Time(0));
        // usage = total − free = 600 KiB; working set = usage − inactive_file.
        assert_eq!(stats.usage_bytes, Some(600 * 1024));
        assert_eq!(stats.working_set_bytes, Some(600 * 1024 - 10240));
        assert_eq!(stats.rss_bytes, Some(4096));
        Ok(())
    }

    #[test]
    fn without_cgroups_cpu_comes_from_proc_stat() -> anyhow::Result<()> {
        let (_dir, h) = host(&[("proc/stat", STAT), ("proc/meminfo", MEMINFO)])?;
        // user+nice+system+irq+softirq+steal = 100+20+30+6+7+8 ticks of 10 ms.
        assert_eq!(h.cpu_usage_nanos(), Some(171 * 10_000_000));
        let m = h.memory().ok_or_else(|| anyhow::anyhow!("no memory"))?;
        assert_eq!(m.inactive_file_bytes, 50 * 1024);
        Ok(())
    }

    #[test]
    fn network_interfaces_skip_loopback_and_veths() -> anyhow::Result<()> {
        let dev = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0\n  eth0: 177640058    5953    3    0    0     0          0         0   312976    3043    4    0    0     0       0          0\nvethab12:  1 2 0 0 0 0 0 0 3 4 0 0 0 0 0 0\n  cni0: 10 1 0 0 0 0 0 0 20 2 0 0 0 0 0 0\n";
        let (_dir, h) = host(&[
            ("proc/net/dev", dev),
            ("proc/loadavg", "0.1 0.2 0.3 8/147 11665\n"),
            ("proc/sys/kernel/pid_max", "32768\n"),
        ])?;
        let n = h
            .network(Time(1))
            .ok_or_else(|| anyhow::anyhow!("no network"))?;
        let names: Vec<&str> = n.interfaces.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["eth0", "cni0"]);
        assert_eq!(
            n.default_interface,
            InterfaceStats {
                name: "eth0".into(),
                rx_bytes: Some(177_640_058),
                rx_errors: Some(3),
                tx_bytes: Some(312_976),
                tx_errors: Some(4),
            }
        );
        assert_eq!(h.pids(), (Some(32768), Some(147)));
        Ok(())
    }
}
