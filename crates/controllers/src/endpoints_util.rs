//! Which pod addresses and ports a Service selects, free of I/O (pkg/controller/endpoint,
//! pkg/controller/endpointslice/reconciler.go and pkg/api/v1/endpoints `RepackSubsets`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use crate::pod_util;

/// One resolved port of a Service for one pod.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResolvedPort {
    /// The Service port's name ("" when unnamed).
    pub name: String,
    /// The pod's port number the Service port targets.
    pub port: i32,
    /// TCP, UDP or SCTP.
    pub protocol: String,
    /// `appProtocol`, when the Service port has one.
    pub app_protocol: Option<String>,
}

/// A pod a Service selects, with what it serves.
#[derive(Debug, Clone, PartialEq)]
pub struct PodEndpoint {
    /// `status.podIP`.
    pub ip: String,
    /// `spec.nodeName`, when scheduled.
    pub node_name: Option<String>,
    /// Pod name, namespace and uid (for targetRef).
    pub pod_name: String,
    /// Namespace of the pod.
    pub namespace: String,
    /// Pod uid.
    pub uid: String,
    /// `spec.hostname` when the pod's subdomain is the Service's name.
    pub hostname: Option<String>,
    /// The Ready condition is True.
    pub ready: bool,
    /// Being deleted.
    pub terminating: bool,
    /// The Service's ports resolved against this pod (named targetPorts looked up in its
    /// containers; ports it does not have are left out), sorted.
    pub ports: Vec<ResolvedPort>,
}

/// Resolves a Service port's targetPort for a pod (upstream `podutil.FindPort`): a number is
/// used as is, a name is looked up among the containers' ports with the same protocol.
pub fn find_port(pod: &Pod, sp: &ServicePort) -> Option<i32> {
    let protocol = sp.protocol.as_deref().unwrap_or("TCP");
    match &sp.target_port {
        None => Some(sp.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            if let Ok(n) = name.parse::<i32>() {
                return Some(n);
            }
            pod.spec
                .as_ref()?
                .containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find_map(|p| {
                    let same_protocol = p.protocol.as_deref().unwrap_or("TCP") == protocol;
                    (p.name.as_deref() == Some(name.as_str()) && same_protocol)
                        .then_some(p.container_port)
                })
        }
    }
}

/// The pods of `pods` the Service selects and may route to (upstream
/// `ShouldPodBeInEndpoints`): matching the selector, with an IP, not terminated;
/// `include_terminating` keeps pods being deleted (EndpointSlices report them as terminating).
pub fn select_endpoints(
    service: &Service,
    pods: &[Pod],
    include_terminating: bool,
) -> Vec<PodEndpoint> {
    let Some(selector) = service
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .filter(|s| !s.is_empty())
    else {
        return Vec::new();
    };
    let ns = service.namespace().unwrap_or_default();
    let service_name = service.name_any();
    let service_ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    let mut out = Vec::new();
    for pod in pods {
        if pod.namespace().as_deref() != Some(ns.as_str()) {
            continue;
        }
        if !selector.iter().all(|(k, v)| pod.labels().get(k) == Some(v)) {
            continue;
        }
        let phase = pod_util::phase(pod);
        if phase == "Succeeded" || phase == "Failed" {
            continue;
        }
        let terminating = pod.metadata.deletion_timestamp.is_some();
        if terminating && !include_terminating {
            continue;
        }
        let Some(ip) = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .filter(|ip| !ip.is_empty())
        else {
            continue;
        };
        let mut ports: Vec<ResolvedPort> = service_ports
            .iter()
            .filter_map(|sp| {
                find_port(pod, sp).map(|port| ResolvedPort {
                    name: sp.name.clone().unwrap_or_default(),
                    port,
                    protocol: sp.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    app_protocol: sp.app_protocol.clone(),
                })
            })
            .collect();
        ports.sort();
        let spec = pod.spec.as_ref();
        let hostname = spec
            .filter(|s| s.subdomain.as_deref() == Some(service_name.as_str()))
            .and_then(|s| s.hostname.clone())
            .filter(|h| !h.is_empty());
        out.push(PodEndpoint {
            ip,
            node_name: spec
                .and_then(|s| s.node_name.clone())
                .filter(|n| !n.is_empty()),
            pod_name: pod.name_any(),
            namespace: ns.clone(),
            uid: pod.uid().unwrap_or_default(),
            hostname,
            ready: pod_util::is_ready(pod),
            terminating,
            ports,
        });
    }
    out.sort_by(|a, b| a.ip.cmp(&b.ip).then_with(|| a.pod_name.cmp(&b.pod_name)));
    out
}

/// Endpoints grouped by their port sets (one Endpoints subset or EndpointSlice per set), in a
/// stable order. A Service without ports gets one group with no ports.
pub fn group_by_ports(
    endpoints: &[PodEndpoint],
    service_has_ports: bool,
) -> BTreeMap<Vec<ResolvedPort>, Vec<PodEndpoint>> {
    let mut groups: BTreeMap<Vec<ResolvedPort>, Vec<PodEndpoint>> = BTreeMap::new();
    for e in endpoints {
        if service_has_ports && e.ports.is_empty() {
            // Upstream skips a pod none of whose ports resolve.
            continue;
        }
        groups.entry(e.ports.clone()).or_default().push(e.clone());
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service() -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"selector": {"app": "web"}, "ports": [
                {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
                {"name": "metrics", "port": 9090, "targetPort": 9100, "protocol": "TCP"}
            ]}
        }))
        .unwrap()
    }

    fn pod(name: &str, ip: Option<&str>, ready: bool, http_port: Option<i32>) -> Pod {
        let mut v = json!({
            "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"), "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
        });
        if let Some(ip) = ip {
            v["status"]["podIP"] = json!(ip);
        }
        if let Some(p) = http_port {
            v["spec"]["containers"][0]["ports"] = json!([{"name": "http", "containerPort": p}]);
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn named_target_ports_resolve_per_pod_and_pods_without_ip_are_left_out() {
        let pods = vec![
            pod("a", Some("10.0.0.2"), true, Some(8080)),
            pod("b", None, true, Some(8080)),
            pod("c", Some("10.0.0.1"), false, Some(8081)),
        ];
        let eps = select_endpoints(&service(), &pods, false);
        assert_eq!(
            eps.iter().map(|e| e.pod_name.as_str()).collect::<Vec<_>>(),
            ["c", "a"],
            "sorted by IP, b has no IP"
        );
        assert_eq!(
            eps[1]
                .ports
                .iter()
                .map(|p| (p.name.as_str(), p.port))
                .collect::<Vec<_>>(),
            [("http", 8080), ("metrics", 9100)]
        );
        assert!(eps[1].ready && !eps[0].ready);
        // Different resolved ports → different groups (subsets / slices).
        assert_eq!(group_by_ports(&eps, true).len(), 2);
    }

    #[test]
    fn a_pod_without_the_named_port_serves_only_the_numeric_one() {
        let eps = select_endpoints(&service(), &[pod("a", Some("10.0.0.2"), true, None)], false);
        assert_eq!(
            eps[0]
                .ports
                .iter()
                .map(|p| (p.name.as_str(), p.port))
                .collect::<Vec<_>>(),
            [("metrics", 9100)]
        );
    }

    #[test]
    fn selectorless_services_and_terminating_pods() {
        let mut s = service();
        s.spec.as_mut().unwrap().selector = None;
        assert!(
            select_endpoints(&s, &[pod("a", Some("10.0.0.2"), true, Some(80))], false).is_empty()
        );
        let mut p = pod("a", Some("10.0.0.2"), true, Some(80));
        p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2024-01-01T00:00:00Z".parse().unwrap(),
        ));
        assert!(select_endpoints(&service(), std::slice::from_ref(&p), false).is_empty());
        assert!(select_endpoints(&service(), &[p], true)[0].terminating);
    }
}
