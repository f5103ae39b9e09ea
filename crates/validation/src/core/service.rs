//! Service validation: `ValidateService`, `validateServicePort`,
//! `ValidateServiceClusterIPsRelatedFields` and `ValidateServiceUpdate` in upstream's
//! `pkg/apis/core/validation/validation.go`. Cluster IP and node port allocation is the registry's.

use std::collections::BTreeSet;

use rkube_apimachinery::FieldError;
use serde_json::{Value, json};

use crate::core::container::{dns_label, port_num_or_name, protocol};
use crate::meta;
use crate::names;
use crate::util::{Errs, arr, child, index, is_unset, opt_int, opt_st, st, string_map};

/// `spec.clusterIPs`, falling back to `[clusterIP]` when the strategy has not mirrored it yet.
fn cluster_ips(spec: &Value) -> Vec<String> {
    let ips: Vec<String> = arr(spec, "clusterIPs").iter().filter_map(Value::as_str).map(str::to_string).collect();
    if ips.is_empty() && !st(spec, "clusterIP").is_empty() { vec![st(spec, "clusterIP").to_string()] } else { ips }
}

fn is_headless(spec: &Value) -> bool {
    let ips = cluster_ips(spec);
    ips.len() == 1 && ips[0] == "None"
}

/// `ValidateService` (without metadata).
pub(crate) fn validate_service(errs: &mut Errs, svc: &Value) {
    let empty = json!({});
    let spec = svc.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
    let ty = st(spec, "type");
    let ports = arr(spec, "ports");
    let headless = is_headless(spec);
    if ports.is_empty() && !headless && ty != "ExternalName" {
        errs.push(FieldError::required("spec.ports", ""));
    }
    let ips = cluster_ips(spec);
    match ty {
        "LoadBalancer" | "NodePort" if headless => {
            errs.push(FieldError::invalid(
                "spec.clusterIPs[0]",
                ips[0].as_str(),
                format!("may not be set to 'None' for {ty} services"),
            ));
        }
        "ExternalName" => {
            if !ips.is_empty() {
                errs.push(FieldError::forbidden("spec.clusterIPs", "may not be set for ExternalName services"));
            }
            if !arr(spec, "ipFamilies").is_empty() {
                errs.push(FieldError::forbidden("spec.ipFamilies", "may not be set for ExternalName services"));
            }
            if !is_unset(spec, "ipFamilyPolicy") {
                errs.push(FieldError::forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"));
            }
            let cname = st(spec, "externalName").trim_end_matches('.');
            if cname.is_empty() {
                errs.push(FieldError::required("spec.externalName", ""));
            } else {
                for m in names::is_dns1123_subdomain(cname) {
                    errs.push(FieldError::invalid("spec.externalName", cname, m));
                }
            }
        }
        _ => {}
    }
    let mut port_names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = index("spec.ports", i);
        let name = st(p, "name");
        if ports.len() > 1 && name.is_empty() {
            errs.push(FieldError::required(child(&pp, "name"), ""));
        } else if !name.is_empty() {
            dns_label(errs, name, &child(&pp, "name"));
            if !port_names.insert(name) {
                errs.push(FieldError::duplicate(child(&pp, "name"), name));
            }
        }
        let port = opt_int(p, "port").unwrap_or(0);
        for m in names::is_valid_port_num(port) {
            errs.push(FieldError::invalid(child(&pp, "port"), port, m));
        }
        protocol(errs, st(p, "protocol"), &child(&pp, "protocol"));
        port_num_or_name(errs, p.get("targetPort"), &child(&pp, "targetPort"));
        if let Some(ap) = opt_st(p, "appProtocol") {
            for m in names::is_qualified_name(ap) {
                errs.push(FieldError::invalid(child(&pp, "appProtocol"), ap, m));
            }
        }
    }
    if spec.get("selector").is_some_and(Value::is_object) {
        meta::validate_labels(errs, &string_map(spec, "selector"), "spec.selector");
    }
    let affinity = st(spec, "sessionAffinity");
    match affinity {
        "" => errs.push(FieldError::required("spec.sessionAffinity", "")),
        "ClientIP" => {
            let timeout = spec
                .get("sessionAffinityConfig")
                .and_then(|c| c.get("clientIP"))
                .and_then(|c| opt_int(c, "timeoutSeconds"));
            match timeout {
                None => errs.push(FieldError::required(
                    "spec.sessionAffinityConfig",
                    "when session affinity type is ClientIP",
                )),
                Some(t) if t <= 0 || t > 86400 => errs.push(FieldError::invalid(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    t,
                    "must be greater than 0 and less than 86400",
                )),
                Some(_) => {}
            }
        }
        "None" => {
            if !is_unset(spec, "sessionAffinityConfig") {
                errs.push(FieldError::forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None"));
            }
        }
        other => errs.push(FieldError::not_supported("spec.sessionAffinity", other, &["ClientIP", "None"])),
    }
    validate_cluster_ips(errs, spec);
    for (i, ip) in arr(spec, "externalIPs").iter().enumerate() {
        let ip = ip.as_str().unwrap_or("");
        for m in names::is_valid_ip(ip) {
            errs.push(FieldError::invalid(index("spec.externalIPs", i), ip, m));
        }
    }
    match ty {
        "" => errs.push(FieldError::required("spec.type", "")),
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName" => {}
        other => errs.push(FieldError::not_supported(
            "spec.type",
            other,
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        )),
    }
    if ty == "ClusterIP" {
        for (i, p) in ports.iter().enumerate() {
            if opt_int(p, "nodePort").unwrap_or(0) != 0 {
                errs.push(FieldError::forbidden(
                    child(&index("spec.ports", i), "nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut node_ports = BTreeSet::new();
    let mut port_keys = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let np = opt_int(p, "nodePort").unwrap_or(0);
        if np != 0 && !node_ports.insert((st(p, "protocol"), np)) {
            errs.push(FieldError::duplicate(child(&index("spec.ports", i), "nodePort"), np));
        }
        let port = opt_int(p, "port").unwrap_or(0);
        if !port_keys.insert((st(p, "protocol"), port)) {
            errs.push(FieldError::duplicate(
                index("spec.ports", i),
                json!({"Name": "", "Protocol": st(p, "protocol"), "AppProtocol": null, "Port": port, "TargetPort": 0, "NodePort": 0}),
            ));
        }
    }
    if !arr(spec, "loadBalancerSourceRanges").is_empty() && ty != "LoadBalancer" {
        errs.push(FieldError::forbidden("spec.LoadBalancerSourceRanges", "may only be used when `type` is 'LoadBalancer'"));
    }
    if !is_unset(spec, "allocateLoadBalancerNodePorts") && ty != "LoadBalancer" {
        errs.push(FieldError::forbidden("spec.allocateLoadBalancerNodePorts", "may only be used when `type` is 'LoadBalancer'"));
    }
    if ty == "LoadBalancer" && is_unset(spec, "allocateLoadBalancerNodePorts") {
        errs.push(FieldError::required("allocateLoadBalancerNodePorts", ""));
    }
    traffic_policies(errs, spec, ty);
}

/// `validateServiceExternalTrafficPolicy` and `validateServiceInternalTrafficFieldsValue`.
fn traffic_policies(errs: &mut Errs, spec: &Value, ty: &str) {
    let external = ty == "LoadBalancer" || ty == "NodePort" || (ty == "ClusterIP" && !arr(spec, "externalIPs").is_empty());
    let etp = st(spec, "externalTrafficPolicy");
    if !external {
        if !etp.is_empty() {
            errs.push(FieldError::invalid("spec.externalTrafficPolicy", etp, "may only be set for externally-accessible services"));
        }
    } else if etp.is_empty() {
        errs.push(FieldError::required("spec.externalTrafficPolicy", ""));
    } else if !matches!(etp, "Cluster" | "Local") {
        errs.push(FieldError::not_supported("spec.externalTrafficPolicy", etp, &["Cluster", "Local"]));
    }
    let needs_health_check = ty == "LoadBalancer" && etp == "Local";
    let hc = opt_int(spec, "healthCheckNodePort").unwrap_or(0);
    if !needs_health_check && hc != 0 {
        errs.push(FieldError::invalid(
            "spec.healthCheckNodePort",
            hc,
            "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
        ));
    }
    match opt_st(spec, "internalTrafficPolicy") {
        None if matches!(ty, "NodePort" | "LoadBalancer" | "ClusterIP") => {
            errs.push(FieldError::required("spec.internalTrafficPolicy", ""))
        }
        Some(p) if !matches!(p, "Cluster" | "Local") => {
            errs.push(FieldError::not_supported("spec.internalTrafficPolicy", p, &["Cluster", "Local"]))
        }
        _ => {}
    }
    if let Some(td) = opt_st(spec, "trafficDistribution")
        && td != "PreferClose" {
            errs.push(FieldError::not_supported("spec.trafficDistribution", td, &["PreferClose"]));
        }
}

/// `ValidateServiceClusterIPsRelatedFields`.
fn validate_cluster_ips(errs: &mut Errs, spec: &Value) {
    if st(spec, "type") == "ExternalName" {
        return;
    }
    let ips = cluster_ips(spec);
    let cluster_ip = st(spec, "clusterIP");
    let ips_value = json!(ips);
    if !cluster_ip.is_empty() && ips.first().map(String::as_str) != Some(cluster_ip) {
        errs.push(FieldError::invalid("spec.clusterIPs", ips_value.clone(), "first value must match `clusterIP`"));
    } else if cluster_ip.is_empty() && !arr(spec, "clusterIPs").is_empty() {
        errs.push(FieldError::invalid("spec.clusterIPs", ips_value.clone(), "must be empty when `clusterIP` is not specified"));
    }
    let mut seen = BTreeSet::new();
    for (i, fam) in arr(spec, "ipFamilies").iter().enumerate() {
        let fam = fam.as_str().unwrap_or("");
        if !matches!(fam, "IPv4" | "IPv6") {
            errs.push(FieldError::not_supported(index("spec.ipFamilies", i), fam, &["IPv4", "IPv6"]));
        }
        if !seen.insert(fam) {
            errs.push(FieldError::duplicate(index("spec.ipFamilies", i), fam));
        }
    }
    if let Some(p) = opt_st(spec, "ipFamilyPolicy")
        && !matches!(p, "SingleStack" | "PreferDualStack" | "RequireDualStack") {
            errs.push(FieldError::not_supported(
                "spec.ipFamilyPolicy",
                p,
                &["PreferDualStack", "RequireDualStack", "SingleStack"],
            ));
        }
    let mut invalid = false;
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && ip == "None" {
            if ips.len() > 1 {
                invalid = true;
                errs.push(FieldError::invalid("spec.clusterIPs", ips_value.clone(), "'None' must be the first and only value"));
            }
            continue;
        }
        for m in names::is_valid_ip(ip) {
            invalid = true;
            errs.push(FieldError::invalid(index("spec.clusterIPs", i), ip.as_str(), m));
        }
    }
    if ips.len() > 2 {
        errs.push(FieldError::invalid("spec.clusterIPs", ips_value.clone(), "may only hold up to 2 values"));
    }
    if invalid {
        return;
    }
    let is_v6 = |ip: &str| ip.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_ipv6());
    if ips.len() == 2 && is_v6(&ips[0]) == is_v6(&ips[1]) {
        errs.push(FieldError::invalid("spec.clusterIPs", ips_value, "may specify no more than one IP for each IP family"));
    }
    if !is_headless(spec) {
        for (i, (ip, fam)) in ips.iter().zip(arr(spec, "ipFamilies")).enumerate() {
            match fam.as_str() {
                Some("IPv4") if is_v6(ip) => errs.push(FieldError::invalid(
                    index("spec.clusterIPs", i),
                    ip.as_str(),
                    format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                )),
                Some("IPv6") if !is_v6(ip) => errs.push(FieldError::invalid(
                    index("spec.clusterIPs", i),
                    ip.as_str(),
                    format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                )),
                _ => {}
            }
        }
    }
}

/// The service registry's `patchAllocatedValues` (`pkg/registry/core/service/storage/storage.go`),
/// which runs before update validation upstream: a client may omit the allocated cluster IPs and
/// health check node port, which are then carried over from the stored object.
fn carry_allocated_values(new: &Value, old: &Value) -> Value {
    let mut out = new.clone();
    let empty = json!({});
    let os = old.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
    let needs_ip = |s: &Value| st(s, "type") != "ExternalName";
    let Some(ns) = out.get_mut("spec").filter(|s| s.is_object()) else { return out };
    if needs_ip(ns) && needs_ip(os) {
        let old_ip = st(os, "clusterIP").to_string();
        let old_ips = os.get("clusterIPs").cloned();
        if let Some(m) = ns.as_object_mut() {
            if m.get("clusterIP").and_then(Value::as_str).unwrap_or("").is_empty() && !old_ip.is_empty() {
                m.insert("clusterIP".into(), json!(old_ip));
            }
            if m.get("clusterIPs").and_then(Value::as_array).is_none_or(|a| a.is_empty())
                && let Some(ips) = old_ips.filter(|v| v.as_array().is_some_and(|a| !a.is_empty())) {
                    m.insert("clusterIPs".into(), ips);
                }
        }
    }
    let needs_hc = |s: &Value| st(s, "type") == "LoadBalancer" && st(s, "externalTrafficPolicy") == "Local";
    if needs_hc(ns) && needs_hc(os) && opt_int(ns, "healthCheckNodePort").unwrap_or(0) == 0
        && let (Some(m), Some(hc)) = (ns.as_object_mut(), os.get("healthCheckNodePort")) {
            m.insert("healthCheckNodePort".into(), hc.clone());
        }
    out
}

/// `ValidateServiceUpdate` (without metadata): cluster IPs and families may not change once set
/// (except from/to ExternalName), the health check node port is immutable, then `ValidateService`.
pub(crate) fn validate_service_update(errs: &mut Errs, new: &Value, old: &Value) {
    let carried = carry_allocated_values(new, old);
    let new = &carried;
    let empty = json!({});
    let ns = new.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
    let os = old.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
    let external_name = st(ns, "type") == "ExternalName" || st(os, "type") == "ExternalName";
    if !(external_name || (is_headless(ns) && is_headless(os))) {
        let (n, o) = (cluster_ips(ns), cluster_ips(os));
        let nv = json!(n);
        if n.len() == o.len() {
            for (i, ip) in o.iter().enumerate() {
                if n.get(i) != Some(ip) {
                    errs.push(FieldError::invalid(index("spec.clusterIPs", i), nv.clone(), "may not change once set"));
                }
            }
        } else if o.len() > n.len() {
            if n.is_empty() {
                errs.push(FieldError::invalid("spec.clusterIPs[0]", nv.clone(), "primary clusterIP can not be unset"));
            }
            if !o.is_empty() && !n.is_empty() && n[0] != o[0] {
                errs.push(FieldError::invalid("spec.clusterIPs[0]", nv.clone(), "may not change once set"));
            }
            if n.len() == 1 && opt_st(ns, "ipFamilyPolicy") != Some("SingleStack") {
                errs.push(FieldError::invalid(
                    "spec.ipFamilyPolicy",
                    ns.get("ipFamilyPolicy").cloned().unwrap_or(Value::Null),
                    "must be set to 'SingleStack' when releasing the secondary clusterIP",
                ));
            }
        } else if !o.is_empty() && n[0] != o[0] {
            errs.push(FieldError::invalid("spec.clusterIPs[0]", nv, "may not change once set"));
        }
    }
    if !external_name && is_headless(ns) == is_headless(os) && !is_headless(ns) {
        let (n, o) = (arr(ns, "ipFamilies"), arr(os, "ipFamilies"));
        if n.len() == o.len() && n != o {
            errs.push(FieldError::invalid("spec.ipFamilies[0]", Value::from(n.to_vec()), "may not change once set"));
        }
    }
    let needs_hc = |s: &Value| st(s, "type") == "LoadBalancer" && st(s, "externalTrafficPolicy") == "Local";
    if needs_hc(ns) && needs_hc(os) && opt_int(ns, "healthCheckNodePort") != opt_int(os, "healthCheckNodePort") {
        errs.push(FieldError::forbidden("spec.healthCheckNodePort", "field is immutable"));
    }
    validate_service(errs, new);
}
