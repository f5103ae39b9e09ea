//! Service ClusterIP and NodePort allocation.
//!
//! Upstream keeps allocation bitmaps (or IPAddress objects) in etcd. rkube has one writer per
//! datastore, so the registry serialises Service writes behind one lock and derives the used set
//! from the Services themselves, which cannot drift from the truth.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use rkube_apimachinery::{ApiError, FieldError};
use serde_json::Value;

/// The default service CIDR (k3s' default, which also leaves room for 65k Services).
pub const DEFAULT_SERVICE_CIDR: &str = "10.43.0.0/16";

/// NodePort range, upstream's default `--service-node-port-range`.
pub const NODE_PORT_RANGE: std::ops::RangeInclusive<u16> = 30000..=32767;

/// An IPv4 CIDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Cidr {
    /// Network address.
    pub network: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
}

impl Ipv4Cidr {
    /// Parses `10.43.0.0/16`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (ip, len) = s.split_once('/').ok_or_else(|| format!("invalid CIDR {s:?}: missing '/'"))?;
        let ip: Ipv4Addr = ip.parse().map_err(|e| format!("invalid CIDR {s:?}: {e}"))?;
        let prefix: u8 = len.parse().map_err(|e| format!("invalid CIDR {s:?}: {e}"))?;
        if !(8..=30).contains(&prefix) {
            return Err(format!("invalid service CIDR {s:?}: prefix must be between /8 and /30"));
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Self { network: Ipv4Addr::from(u32::from(ip) & mask), prefix })
    }

    fn mask(&self) -> u32 {
        u32::MAX << (32 - self.prefix)
    }

    /// Whether the address is inside the range.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network)
    }

    /// The first usable address (`.1`), reserved for the `kubernetes` Service.
    pub fn first(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// Number of addresses that may be allocated (network and broadcast excluded).
    fn usable(&self) -> u32 {
        (1u32 << (32 - self.prefix)) - 2
    }

    /// The `i`-th usable address, 0-based.
    fn nth(&self, i: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1 + i)
    }
}

/// Picks a free ClusterIP, starting at a random offset so restarts do not reuse freshly freed IPs.
pub fn allocate_cluster_ip(cidr: &Ipv4Cidr, used: &HashSet<Ipv4Addr>) -> Result<Ipv4Addr, ApiError> {
    use rand::Rng;
    let n = cidr.usable();
    let start = rand::rng().random_range(0..n);
    for i in 0..n {
        let ip = cidr.nth((start + i) % n);
        if !used.contains(&ip) {
            return Ok(ip);
        }
    }
    Err(ApiError::internal(format!("failed to allocate a serviceIP: range is full ({}/{})", cidr.network, cidr.prefix)))
}

/// Picks a free NodePort.
pub fn allocate_node_port(used: &HashSet<u16>) -> Result<u16, ApiError> {
    use rand::Rng;
    let lo = *NODE_PORT_RANGE.start();
    let n = u32::from(*NODE_PORT_RANGE.end() - lo) + 1;
    let start = rand::rng().random_range(0..n);
    for i in 0..n {
        let p = lo + ((start + i) % n) as u16;
        if !used.contains(&p) {
            return Ok(p);
        }
    }
    Err(ApiError::internal("failed to allocate a nodePort: range is full"))
}

/// ClusterIPs and NodePorts held by existing Services.
#[derive(Debug, Default)]
pub struct UsedServiceAddresses {
    /// Allocated cluster IPs.
    pub ips: HashSet<Ipv4Addr>,
    /// Allocated node ports.
    pub ports: HashSet<u16>,
}

impl UsedServiceAddresses {
    /// Adds what one Service holds.
    pub fn add(&mut self, svc: &Value) {
        let spec = &svc["spec"];
        for ip in cluster_ips(spec) {
            if let Ok(ip) = ip.parse() {
                self.ips.insert(ip);
            }
        }
        if let Some(ports) = spec["ports"].as_array() {
            for p in ports {
                if let Some(np) = p["nodePort"].as_u64().and_then(|v| u16::try_from(v).ok()) {
                    self.ports.insert(np);
                }
            }
        }
    }
}

fn cluster_ips(spec: &Value) -> Vec<String> {
    let mut out: Vec<String> = spec["clusterIPs"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    if let Some(ip) = spec["clusterIP"].as_str() {
        if !out.iter().any(|x| x == ip) {
            out.push(ip.to_string());
        }
    }
    out.retain(|s| !s.is_empty() && s != "None");
    out
}

fn service_type(spec: &Value) -> &str {
    spec["type"].as_str().unwrap_or("ClusterIP")
}

/// Fills `spec.clusterIP(s)` and `spec.ports[*].nodePort` of a new Service, checking requested
/// values against the range and the used set (upstream `pkg/registry/core/service/storage/alloc.go`).
pub fn allocate_for_create(svc: &mut Value, cidr: &Ipv4Cidr, used: &UsedServiceAddresses) -> Result<(), ApiError> {
    let name = svc["metadata"]["name"].as_str().unwrap_or("").to_string();
    let invalid = |errs: Vec<FieldError>| ApiError::invalid("", "Service", &name, &errs);
    let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    let ty = spec.get("type").and_then(Value::as_str).unwrap_or("ClusterIP").to_string();
    if ty != "ExternalName" {
        let requested = spec.get("clusterIP").and_then(Value::as_str).unwrap_or("").to_string();
        let ip = if requested == "None" {
            None
        } else if requested.is_empty() {
            Some(allocate_cluster_ip(cidr, &used.ips)?)
        } else {
            let ip: Ipv4Addr = requested.parse().map_err(|_| {
                invalid(vec![FieldError::invalid(
                    "spec.clusterIPs[0]",
                    requested.clone(),
                    "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                )])
            })?;
            if !cidr.contains(ip) {
                return Err(invalid(vec![FieldError::invalid(
                    "spec.clusterIPs",
                    requested.clone(),
                    format!(
                        "failed to allocate IP {requested}: the provided IP ({requested}) is not in the valid range. The range of valid IPs is {}/{}",
                        cidr.network, cidr.prefix
                    ),
                )]));
            }
            if used.ips.contains(&ip) {
                return Err(invalid(vec![FieldError::invalid(
                    "spec.clusterIPs",
                    requested.clone(),
                    format!("failed to allocate IP {requested}: provided IP is already allocated"),
                )]));
            }
            Some(ip)
        };
        let s = ip.map(|i| i.to_string()).unwrap_or_else(|| "None".to_string());
        spec.insert("clusterIP".into(), Value::String(s.clone()));
        spec.insert("clusterIPs".into(), Value::Array(vec![Value::String(s)]));
        spec.entry("ipFamilies").or_insert_with(|| serde_json::json!(["IPv4"]));
        spec.entry("ipFamilyPolicy").or_insert_with(|| Value::String("SingleStack".into()));
    }
    if ty == "NodePort" || ty == "LoadBalancer" {
        let mut taken = used.ports.clone();
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for (i, p) in ports.iter_mut().enumerate() {
                match p.get("nodePort").and_then(Value::as_u64) {
                    Some(np) => {
                        let ok = u16::try_from(np).ok().filter(|v| NODE_PORT_RANGE.contains(v));
                        let Some(np16) = ok else {
                            return Err(invalid(vec![FieldError::invalid(
                                format!("spec.ports[{i}].nodePort"),
                                np,
                                format!("provided port is not in the valid range. The range of valid ports is {}-{}", NODE_PORT_RANGE.start(), NODE_PORT_RANGE.end()),
                            )]));
                        };
                        if !taken.insert(np16) {
                            return Err(invalid(vec![FieldError::invalid(
                                format!("spec.ports[{i}].nodePort"),
                                np,
                                "provided port is already allocated",
                            )]));
                        }
                    }
                    None => {
                        let np = allocate_node_port(&taken)?;
                        taken.insert(np);
                        if let Some(o) = p.as_object_mut() {
                            o.insert("nodePort".into(), Value::from(np));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// On update, a Service keeps its ClusterIP unless it is cleared by a type change to
/// ExternalName; node ports are kept when the client omits them (upstream `service/storage/storage.go`
/// patchAllocatedValues).
pub fn carry_over_allocations(new: &mut Value, old: &Value, cidr: &Ipv4Cidr, used: &UsedServiceAddresses) -> Result<(), ApiError> {
    let old_spec = &old["spec"];
    let new_type = service_type(&new["spec"]).to_string();
    if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
        if new_type != "ExternalName" {
            let missing = spec.get("clusterIP").and_then(Value::as_str).is_none_or(str::is_empty);
            if missing {
                if let Some(ip) = old_spec.get("clusterIP") {
                    spec.insert("clusterIP".into(), ip.clone());
                }
                if let Some(ips) = old_spec.get("clusterIPs") {
                    spec.insert("clusterIPs".into(), ips.clone());
                }
            }
            if spec.get("clusterIPs").is_none() {
                if let Some(ip) = spec.get("clusterIP").cloned() {
                    spec.insert("clusterIPs".into(), Value::Array(vec![ip]));
                }
            }
            for k in ["ipFamilies", "ipFamilyPolicy"] {
                if spec.get(k).is_none() {
                    if let Some(v) = old_spec.get(k) {
                        spec.insert(k.into(), v.clone());
                    }
                }
            }
        }
    }
    if new_type == "NodePort" || new_type == "LoadBalancer" {
        let old_ports: Vec<(Option<String>, Option<u64>, Option<u64>)> = old_spec["ports"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|p| (p["name"].as_str().map(str::to_string), p["port"].as_u64(), p["nodePort"].as_u64()))
                    .collect()
            })
            .unwrap_or_default();
        let mut taken = used.ports.clone();
        for (_, _, np) in &old_ports {
            if let Some(np) = np.and_then(|v| u16::try_from(v).ok()) {
                taken.remove(&np);
            }
        }
        if let Some(ports) = new.get_mut("spec").and_then(|s| s.get_mut("ports")).and_then(Value::as_array_mut) {
            for p in ports.iter_mut() {
                if p.get("nodePort").and_then(Value::as_u64).is_none() {
                    let name = p["name"].as_str().map(str::to_string);
                    let port = p["port"].as_u64();
                    let carried = old_ports.iter().find(|(n, pt, _)| *n == name && *pt == port).and_then(|(_, _, np)| *np);
                    let np = match carried {
                        Some(np) => np,
                        None => u64::from(allocate_node_port(&taken)?),
                    };
                    if let Ok(np16) = u16::try_from(np) {
                        taken.insert(np16);
                    }
                    if let Some(o) = p.as_object_mut() {
                        o.insert("nodePort".into(), Value::from(np));
                    }
                }
            }
        }
    }
    let _ = cidr;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn allocates_inside_range_and_skips_used() {
        let cidr = Ipv4Cidr::parse("10.43.0.0/29").unwrap();
        let mut used = UsedServiceAddresses::default();
        for i in 1..=5 {
            used.ips.insert(Ipv4Addr::new(10, 43, 0, i));
        }
        let mut svc = json!({"metadata":{"name":"a"},"spec":{"type":"NodePort","ports":[{"port":80}]}});
        allocate_for_create(&mut svc, &cidr, &used).unwrap();
        assert_eq!(svc["spec"]["clusterIP"], "10.43.0.6");
        let np = svc["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
        assert!((30000..=32767).contains(&np));
    }

    #[test]
    fn rejects_taken_and_out_of_range_ips() {
        let cidr = Ipv4Cidr::parse(DEFAULT_SERVICE_CIDR).unwrap();
        let mut used = UsedServiceAddresses::default();
        used.ips.insert(Ipv4Addr::new(10, 43, 0, 10));
        let mut svc = json!({"metadata":{"name":"a"},"spec":{"clusterIP":"10.43.0.10"}});
        let e = allocate_for_create(&mut svc, &cidr, &used).unwrap_err();
        assert_eq!(e.code, 422);
        assert!(e.message.contains("provided IP is already allocated"), "{}", e.message);
        let mut svc = json!({"metadata":{"name":"a"},"spec":{"clusterIP":"192.168.0.1"}});
        let e = allocate_for_create(&mut svc, &cidr, &used).unwrap_err();
        assert!(e.message.contains("is not in the valid range"), "{}", e.message);
    }

    #[test]
    fn headless_gets_none() {
        let cidr = Ipv4Cidr::parse(DEFAULT_SERVICE_CIDR).unwrap();
        let mut svc = json!({"metadata":{"name":"a"},"spec":{"clusterIP":"None"}});
        allocate_for_create(&mut svc, &cidr, &UsedServiceAddresses::default()).unwrap();
        assert_eq!(svc["spec"]["clusterIPs"], json!(["None"]));
    }
}
