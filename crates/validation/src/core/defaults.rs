//! Defaulting of core/v1 objects, as upstream's `pkg/apis/core/v1/defaults.go` (the
//! `SetDefaults_*` functions and the generated `SetObjectDefaults_*` walks that apply them to
//! nested pod specs, containers, probes, ports and volumes).

use serde_json::{Value, json};

use crate::util::{
    default_nonzero, default_str, default_val, each_mut, ensure_obj, is_empty_str, is_unset, obj, opt_int, st,
    with_obj,
};

/// `DefaultTerminationGracePeriodSeconds`.
const DEFAULT_TERMINATION_GRACE_PERIOD: i64 = 30;
/// Default file mode of secret, configMap, downwardAPI and projected volumes (0644).
const DEFAULT_MODE: i64 = 0o644;
/// `DefaultClientIPServiceAffinitySeconds` (3 hours).
const DEFAULT_CLIENT_IP_AFFINITY_SECONDS: i64 = 10800;

/// The tag `parsers.ParseImageName` reports: `latest` when the reference has neither tag nor
/// digest, `None` for digest-only or unparsable references.
fn image_tag(image: &str) -> Option<String> {
    if image.is_empty() || image.chars().any(char::is_whitespace) {
        return None;
    }
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last_slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (repo, tag) = match name.get(last_slash..).and_then(|tail| tail.rfind(':')) {
        Some(colon) => {
            let split = last_slash + colon;
            (name.get(..split).unwrap_or(""), name.get(split + 1..))
        }
        None => (name, None),
    };
    // Docker references require a lower-case repository path (the domain may differ).
    let path = match repo.split_once('/') {
        Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => rest,
        _ => repo,
    };
    if repo.is_empty() || path.chars().any(|c| c.is_ascii_uppercase()) {
        return None;
    }
    match (tag, digest) {
        (Some(t), _) if !t.is_empty() => Some(t.to_string()),
        (Some(_), _) => None,
        (None, Some(_)) => None,
        (None, None) => Some("latest".to_string()),
    }
}

/// `SetDefaults_HTTPGetAction`.
fn default_http_get(handler: &mut Value) {
    with_obj(handler, "httpGet", |h| {
        default_str(h, "path", "/");
        default_str(h, "scheme", "HTTP");
    });
}

/// `SetDefaults_Probe` plus its handler.
fn default_probe(probe: &mut Value) {
    default_nonzero(probe, "timeoutSeconds", 1);
    default_nonzero(probe, "periodSeconds", 10);
    default_nonzero(probe, "successThreshold", 1);
    default_nonzero(probe, "failureThreshold", 3);
    default_http_get(probe);
}

/// `SetDefaults_Container` and the nested defaults of ports, probes, lifecycle and env.
fn default_container(c: &mut Value) {
    if is_empty_str(c, "imagePullPolicy") {
        let policy = if image_tag(st(c, "image")).as_deref() == Some("latest") { "Always" } else { "IfNotPresent" };
        default_str(c, "imagePullPolicy", policy);
    }
    default_str(c, "terminationMessagePath", "/dev/termination-log");
    default_str(c, "terminationMessagePolicy", "File");
    each_mut(c, "ports", |p| default_str(p, "protocol", "TCP"));
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        with_obj(c, probe, default_probe);
    }
    with_obj(c, "lifecycle", |l| {
        with_obj(l, "postStart", default_http_get);
        with_obj(l, "preStop", default_http_get);
    });
    each_mut(c, "env", |e| {
        with_obj(e, "valueFrom", |vf| with_obj(vf, "fieldRef", |fr| default_str(fr, "apiVersion", "v1")));
    });
}

/// `SetDefaults_Volume` (no source → `emptyDir: {}`) and the per-source defaults.
fn default_volume(v: &mut Value) {
    let has_source = v.as_object().is_some_and(|m| m.iter().any(|(k, val)| k != "name" && !val.is_null()));
    if !has_source {
        default_val(v, "emptyDir", json!({}));
    }
    for source in ["secret", "configMap", "downwardAPI", "projected"] {
        with_obj(v, source, |s| default_val(s, "defaultMode", json!(DEFAULT_MODE)));
    }
    with_obj(v, "downwardAPI", |d| {
        each_mut(d, "items", |i| with_obj(i, "fieldRef", |fr| default_str(fr, "apiVersion", "v1")));
    });
    with_obj(v, "projected", |p| {
        each_mut(p, "sources", |s| {
            with_obj(s, "serviceAccountToken", |t| default_val(t, "expirationSeconds", json!(3600)));
            with_obj(s, "downwardAPI", |d| {
                each_mut(d, "items", |i| with_obj(i, "fieldRef", |fr| default_str(fr, "apiVersion", "v1")));
            });
        });
    });
    with_obj(v, "hostPath", |h| default_str(h, "type", ""));
    with_obj(v, "ephemeral", |e| {
        with_obj(e, "volumeClaimTemplate", |t| with_obj(t, "spec", |s| default_str(s, "volumeMode", "Filesystem")));
    });
}

/// `defaultHostNetworkPorts`: with host networking, an unset hostPort takes the containerPort.
fn default_host_network_ports(spec: &mut Value) {
    for list in ["containers", "initContainers"] {
        each_mut(spec, list, |c| {
            each_mut(c, "ports", |p| {
                if opt_int(p, "hostPort").unwrap_or(0) == 0
                    && let Some(cp) = opt_int(p, "containerPort")
                        && let Some(m) = p.as_object_mut() {
                            m.insert("hostPort".into(), json!(cp));
                        }
            });
        });
    }
}

/// `SetDefaults_PodSpec` and the generated walk over containers and volumes. `is_pod` adds
/// `SetDefaults_Pod`'s pod-only defaults (service links, requests from limits, host ports).
pub(crate) fn default_pod_spec(spec: &mut Value, is_pod: bool) {
    default_str(spec, "dnsPolicy", "ClusterFirst");
    default_str(spec, "restartPolicy", "Always");
    default_val(spec, "securityContext", json!({}));
    default_val(spec, "terminationGracePeriodSeconds", json!(DEFAULT_TERMINATION_GRACE_PERIOD));
    default_str(spec, "schedulerName", "default-scheduler");
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        each_mut(spec, list, default_container);
    }
    each_mut(spec, "volumes", default_volume);
    if is_pod {
        default_val(spec, "enableServiceLinks", json!(true));
        for list in ["containers", "initContainers"] {
            each_mut(spec, list, |c| {
                let Some(limits) = obj(c, "resources").and_then(|r| r.get("limits")).and_then(Value::as_object).cloned()
                else {
                    return;
                };
                if let Some(resources) = ensure_obj(c, "resources") {
                    let requests = resources.entry("requests").or_insert_with(|| json!({}));
                    if requests.is_null() {
                        *requests = json!({});
                    }
                    if let Some(req) = requests.as_object_mut() {
                        for (k, v) in limits {
                            req.entry(k).or_insert(v);
                        }
                    }
                }
            });
        }
        if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
            default_host_network_ports(spec);
        }
    }
}

/// Defaults of a `PodTemplateSpec` inside a workload (no pod-only defaults).
pub(crate) fn default_pod_template(template: &mut Value) {
    if ensure_obj(template, "spec").is_some() {
        with_obj(template, "spec", |s| default_pod_spec(s, false));
    }
}

/// `SetDefaults_Service`.
pub(crate) fn default_service(svc: &mut Value) {
    let Some(_) = ensure_obj(svc, "spec") else { return };
    with_obj(svc, "spec", |spec| {
        default_str(spec, "sessionAffinity", "None");
        match st(spec, "sessionAffinity") {
            "None" => {
                if let Some(m) = spec.as_object_mut() {
                    m.remove("sessionAffinityConfig");
                }
            }
            "ClientIP" => {
                let has_timeout = obj(spec, "sessionAffinityConfig")
                    .and_then(|c| c.get("clientIP"))
                    .and_then(|c| c.get("timeoutSeconds"))
                    .is_some_and(|t| !t.is_null());
                if !has_timeout
                    && let Some(m) = spec.as_object_mut() {
                        m.insert(
                            "sessionAffinityConfig".into(),
                            json!({"clientIP": {"timeoutSeconds": DEFAULT_CLIENT_IP_AFFINITY_SECONDS}}),
                        );
                    }
            }
            _ => {}
        }
        default_str(spec, "type", "ClusterIP");
        each_mut(spec, "ports", |p| {
            default_str(p, "protocol", "TCP");
            let unset = match p.get("targetPort") {
                None | Some(Value::Null) => true,
                Some(Value::Number(n)) => n.as_i64() == Some(0),
                Some(Value::String(s)) => s.is_empty(),
                _ => false,
            };
            if unset {
                let port = opt_int(p, "port").unwrap_or(0);
                if let Some(m) = p.as_object_mut() {
                    m.insert("targetPort".into(), json!(port));
                }
            }
        });
        let ty = st(spec, "type").to_string();
        let externally_accessible = ty == "LoadBalancer"
            || ty == "NodePort"
            || (ty == "ClusterIP" && !crate::util::arr(spec, "externalIPs").is_empty());
        if externally_accessible {
            default_str(spec, "externalTrafficPolicy", "Cluster");
        }
        if matches!(ty.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP") {
            default_val(spec, "internalTrafficPolicy", json!("Cluster"));
        }
        if ty == "LoadBalancer" {
            default_val(spec, "allocateLoadBalancerNodePorts", json!(true));
        }
        if ty != "ExternalName" {
            // The service REST storage (not defaults.go) fills these in upstream, together with
            // the cluster IP allocation; the single-stack IPv4 cluster's values are set here so the
            // allocator only has to pick the address. clusterIPs mirrors clusterIP (the strategy's
            // normalizeClusterIPs).
            let headless = st(spec, "clusterIP") == "None";
            let selectorless = obj(spec, "selector").is_none_or(|m| m.is_empty());
            let policy = if headless && selectorless { "RequireDualStack" } else { "SingleStack" };
            default_val(spec, "ipFamilyPolicy", json!(policy));
            default_val(spec, "ipFamilies", json!(["IPv4"]));
            let cluster_ip = st(spec, "clusterIP").to_string();
            if !cluster_ip.is_empty() && crate::util::arr(spec, "clusterIPs").is_empty()
                && let Some(m) = spec.as_object_mut() {
                    m.insert("clusterIPs".into(), json!([cluster_ip]));
                }
        }
    });
}

/// `SetDefaults_Namespace` (the `kubernetes.io/metadata.name` label) and `SetDefaults_NamespaceStatus`.
pub(crate) fn default_namespace(ns: &mut Value) {
    let name = obj(ns, "metadata").and_then(|m| m.get("name")).and_then(Value::as_str).unwrap_or("").to_string();
    if !name.is_empty()
        && let Some(meta) = ensure_obj(ns, "metadata") {
            let labels = meta.entry("labels").or_insert_with(|| json!({}));
            if labels.is_null() {
                *labels = json!({});
            }
            if let Some(l) = labels.as_object_mut() {
                l.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
        }
    if ensure_obj(ns, "status").is_some() {
        with_obj(ns, "status", |s| default_str(s, "phase", "Active"));
    }
}

/// `SetDefaults_ReplicationController`: selector and labels from the template, replicas 1.
fn default_replication_controller(rc: &mut Value) {
    let labels = obj(rc, "spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .filter(|l| l.is_object())
        .cloned();
    if let Some(labels) = labels {
        if let Some(spec) = ensure_obj(rc, "spec")
            && spec.get("selector").and_then(Value::as_object).is_none_or(|m| m.is_empty()) {
                spec.insert("selector".into(), labels.clone());
            }
        if let Some(meta) = ensure_obj(rc, "metadata")
            && meta.get("labels").and_then(Value::as_object).is_none_or(|m| m.is_empty()) {
                meta.insert("labels".into(), labels);
            }
    }
    with_obj(rc, "spec", |spec| {
        default_val(spec, "replicas", json!(1));
        with_obj(spec, "template", default_pod_template);
    });
}

/// `SetDefaults_PersistentVolumeClaimSpec` / `SetDefaults_PersistentVolumeClaim`.
pub(crate) fn default_pvc(pvc: &mut Value) {
    with_obj(pvc, "spec", |s| default_val(s, "volumeMode", json!("Filesystem")));
    if let Some(status) = ensure_obj(pvc, "status")
        && status.get("phase").and_then(Value::as_str).unwrap_or("").is_empty() {
            status.insert("phase".into(), json!("Pending"));
        }
}

/// Applies the core/v1 defaults for `kind`. Unknown kinds are left alone.
pub(crate) fn apply(kind: &str, o: &mut Value) {
    match kind {
        "Pod"
            if ensure_obj(o, "spec").is_some() => {
                with_obj(o, "spec", |s| default_pod_spec(s, true));
            }
        "PodTemplate" => with_obj(o, "template", default_pod_template),
        "ReplicationController" => default_replication_controller(o),
        "Service" => default_service(o),
        "Secret" => default_str(o, "type", "Opaque"),
        "Namespace" => default_namespace(o),
        "PersistentVolumeClaim" => default_pvc(o),
        "PersistentVolume" => {
            with_obj(o, "spec", |s| {
                default_str(s, "persistentVolumeReclaimPolicy", "Retain");
                default_val(s, "volumeMode", json!("Filesystem"));
            });
            if let Some(status) = ensure_obj(o, "status")
                && status.get("phase").and_then(Value::as_str).unwrap_or("").is_empty() {
                    status.insert("phase".into(), json!("Pending"));
                }
        }
        "Endpoints" => each_mut(o, "subsets", |s| each_mut(s, "ports", |p| default_str(p, "protocol", "TCP"))),
        "Node" => {
            with_obj(o, "status", |s| {
                if is_unset(s, "allocatable")
                    && let Some(cap) = s.get("capacity").cloned() {
                        default_val(s, "allocatable", cap);
                    }
            });
            with_obj(o, "spec", sync_pod_cidrs);
        }
        _ => {}
    }
}

/// `podCIDR` and `podCIDRs` as upstream's v1 NodeSpec conversions keep them: a lone `podCIDR`
/// becomes the list, and `podCIDR` is always the list's first entry.
fn sync_pod_cidrs(spec: &mut Value) {
    let Some(spec) = spec.as_object_mut() else { return };
    let list = spec.get("podCIDRs").and_then(Value::as_array).filter(|l| !l.is_empty()).cloned();
    match list {
        Some(list) => {
            if let Some(first) = list.first() {
                spec.insert("podCIDR".into(), first.clone());
            }
        }
        None => {
            let single = spec.get("podCIDR").and_then(Value::as_str).filter(|c| !c.is_empty()).map(str::to_string);
            if let Some(cidr) = single {
                spec.insert("podCIDRs".into(), json!([cidr]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_pull_policy_follows_the_tag() {
        assert_eq!(image_tag("nginx").as_deref(), Some("latest"));
        assert_eq!(image_tag("nginx:latest").as_deref(), Some("latest"));
        assert_eq!(image_tag("nginx:1.27").as_deref(), Some("1.27"));
        assert_eq!(image_tag("localhost:5000/app").as_deref(), Some("latest"));
        assert_eq!(image_tag("localhost:5000/app:v1").as_deref(), Some("v1"));
        assert_eq!(image_tag("nginx@sha256:abc"), None);
        assert_eq!(image_tag("Nginx"), None);
        assert_eq!(image_tag(""), None);
    }

    #[test]
    fn pod_defaults_match_upstream() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "c", "image": "nginx", "ports": [{"containerPort": 80}],
             "resources": {"limits": {"cpu": "1"}},
             "livenessProbe": {"httpGet": {"port": 80}}}]}});
        apply("Pod", &mut pod);
        let spec = &pod["spec"];
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["dnsPolicy"], "ClusterFirst");
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["schedulerName"], "default-scheduler");
        assert_eq!(spec["securityContext"], json!({}));
        assert_eq!(spec["enableServiceLinks"], true);
        let c = &spec["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Always");
        assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(c["terminationMessagePolicy"], "File");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(c["resources"]["requests"]["cpu"], "1");
        let p = &c["livenessProbe"];
        assert_eq!(
            (p["timeoutSeconds"].clone(), p["periodSeconds"].clone(), p["successThreshold"].clone(), p["failureThreshold"].clone()),
            (json!(1), json!(10), json!(1), json!(3))
        );
        assert_eq!(p["httpGet"]["path"], "/");
        assert_eq!(p["httpGet"]["scheme"], "HTTP");
    }

    #[test]
    fn service_defaults_match_upstream() {
        let mut svc = json!({"metadata": {"name": "s"}, "spec": {"type": "NodePort", "selector": {"a": "b"}, "ports": [{"port": 80}]}});
        apply("Service", &mut svc);
        let s = &svc["spec"];
        assert_eq!(s["sessionAffinity"], "None");
        assert_eq!(s["ports"][0]["protocol"], "TCP");
        assert_eq!(s["ports"][0]["targetPort"], 80);
        assert_eq!(s["externalTrafficPolicy"], "Cluster");
        assert_eq!(s["internalTrafficPolicy"], "Cluster");
        assert_eq!(s["ipFamilyPolicy"], "SingleStack");
    }

    #[test]
    fn namespace_gets_its_name_label() {
        let mut ns = json!({"metadata": {"name": "team-a"}});
        apply("Namespace", &mut ns);
        assert_eq!(ns["metadata"]["labels"]["kubernetes.io/metadata.name"], "team-a");
        assert_eq!(ns["status"]["phase"], "Active");
    }
}
