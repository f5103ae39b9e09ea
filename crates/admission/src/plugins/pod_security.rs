//! PodSecurity: the Pod Security Standards enforced, warned about and audited per namespace
//! through `pod-security.kubernetes.io/<mode>[-version]` labels (upstream
//! `staging/src/k8s.io/pod-security-admission`). Checks are reported in upstream's order (by
//! check id) with its texts. Pods are checked when created; workload templates are not yet.

use rkube_apimachinery::ApiError;
use serde_json::Value;

use crate::context::{Context, Plugin};

const LABEL_PREFIX: &str = "pod-security.kubernetes.io/";

/// Capabilities baseline allows to add (upstream `capabilities_baseline.go`).
const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
];
/// Volume types restricted allows (upstream `restrictedVolumes.go`).
const RESTRICTED_VOLUMES: &[&str] = &["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"];

/// A Pod Security Standards level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// No restrictions.
    Privileged,
    /// Known privilege escalations prevented.
    Baseline,
    /// Hardened.
    Restricted,
}

impl Level {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "privileged" => Some(Self::Privileged),
            "baseline" => Some(Self::Baseline),
            "restricted" => Some(Self::Restricted),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Privileged => "privileged",
            Self::Baseline => "baseline",
            Self::Restricted => "restricted",
        }
    }
}

/// The plugin.
pub struct PodSecurity;

#[async_trait::async_trait]
impl Plugin for PodSecurity {
    async fn validate(&self, ctx: &Context<'_>, obj: Option<&Value>) -> Result<(), ApiError> {
        let Some(pod) = obj else { return Ok(()) };
        if !ctx.is_pod_create() {
            return Ok(());
        }
        let Some(ns) = ctx.get("", "v1", "namespaces", None, ctx.namespace()).await? else { return Ok(()) };
        let labels = &ns["metadata"]["labels"];
        let policy = |mode: &str| -> Option<(Level, String)> {
            let level = Level::parse(labels[format!("{LABEL_PREFIX}{mode}")].as_str()?)?;
            let version = labels[format!("{LABEL_PREFIX}{mode}-version")].as_str().unwrap_or("latest").to_string();
            Some((level, version))
        };
        if let Some((level, version)) = policy("enforce") {
            let violations = check_pod(pod, level);
            if !violations.is_empty() {
                return Err(ctx.forbidden(&format!("violates PodSecurity \"{}:{version}\": {}", level.as_str(), violations.join(", "))));
            }
        }
        if let Some((level, version)) = policy("warn") {
            let violations = check_pod(pod, level);
            if !violations.is_empty() {
                rkube_registry::admission::add_warning(format!("would violate PodSecurity \"{}:{version}\": {}", level.as_str(), violations.join(", ")));
            }
        }
        Ok(())
    }
}

/// `container "a"` / `containers "a", "b"`.
fn containers_phrase(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    if names.len() == 1 { format!("container {}", quoted[0]) } else { format!("containers {}", quoted.join(", ")) }
}

fn all_containers(pod: &Value) -> Vec<&Value> {
    let spec = &pod["spec"];
    ["initContainers", "containers", "ephemeralContainers"].iter().flat_map(|f| spec[*f].as_array().into_iter().flatten()).collect()
}

fn name_of(c: &Value) -> String {
    c["name"].as_str().unwrap_or("").to_string()
}

/// Every violation of `level`, each as `<summary> (<detail>)`, in upstream's check-id order.
pub fn check_pod(pod: &Value, level: Level) -> Vec<String> {
    if level == Level::Privileged {
        return Vec::new();
    }
    let restricted = level == Level::Restricted;
    let spec = &pod["spec"];
    let psc = &spec["securityContext"];
    let containers = all_containers(pod);
    let mut out = Vec::new();
    let matching = |f: &dyn Fn(&Value) -> bool| containers.iter().filter(|c| f(c)).map(|c| name_of(c)).collect::<Vec<_>>();

    // allowPrivilegeEscalation (restricted)
    if restricted {
        let bad = matching(&|c| c["securityContext"]["allowPrivilegeEscalation"].as_bool() != Some(false));
        if !bad.is_empty() {
            out.push(format!("allowPrivilegeEscalation != false ({} must set securityContext.allowPrivilegeEscalation=false)", containers_phrase(&bad)));
        }
    }
    // capabilities_baseline
    let mut added: Vec<String> = Vec::new();
    let bad = matching(&|c| {
        c["securityContext"]["capabilities"]["add"].as_array().into_iter().flatten().filter_map(Value::as_str).any(|cap| !BASELINE_CAPABILITIES.contains(&cap))
    });
    if !bad.is_empty() {
        for c in &containers {
            for cap in c["securityContext"]["capabilities"]["add"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                if !BASELINE_CAPABILITIES.contains(&cap) && !added.iter().any(|a| a == cap) {
                    added.push(cap.to_string());
                }
            }
        }
        let caps: Vec<String> = added.iter().map(|c| format!("\"{c}\"")).collect();
        out.push(format!("non-default capabilities ({} must not include {} in securityContext.capabilities.add)", containers_phrase(&bad), caps.join(", ")));
    }
    // capabilities_restricted
    if restricted {
        let bad = matching(&|c| !c["securityContext"]["capabilities"]["drop"].as_array().into_iter().flatten().any(|d| d == "ALL"));
        if !bad.is_empty() {
            out.push(format!("unrestricted capabilities ({} must set securityContext.capabilities.drop=[\"ALL\"])", containers_phrase(&bad)));
        }
    }
    // hostNamespaces
    let hosts: Vec<&str> = ["hostNetwork", "hostPID", "hostIPC"].into_iter().filter(|f| spec[*f].as_bool() == Some(true)).collect();
    if !hosts.is_empty() {
        let list: Vec<String> = hosts.iter().map(|h| format!("{h}=true")).collect();
        out.push(format!("host namespaces ({})", list.join(", ")));
    }
    // hostPathVolumes
    let host_paths: Vec<String> = spec["volumes"].as_array().into_iter().flatten().filter(|v| v["hostPath"].is_object()).map(name_of).collect();
    if !host_paths.is_empty() {
        let noun = if host_paths.len() == 1 { "volume" } else { "volumes" };
        let quoted: Vec<String> = host_paths.iter().map(|n| format!("\"{n}\"")).collect();
        out.push(format!("hostPath volumes ({noun} {})", quoted.join(", ")));
    }
    // hostPorts
    let mut port_containers = Vec::new();
    let mut ports = Vec::new();
    for c in &containers {
        for p in c["ports"].as_array().into_iter().flatten() {
            if let Some(hp) = p["hostPort"].as_i64().filter(|p| *p != 0) {
                if !port_containers.contains(&name_of(c)) {
                    port_containers.push(name_of(c));
                }
                ports.push(hp.to_string());
            }
        }
    }
    if !ports.is_empty() {
        let noun = if ports.len() == 1 { "hostPort" } else { "hostPorts" };
        out.push(format!("hostPort ({} uses {noun} {})", containers_phrase(&port_containers), ports.join(", ")));
    }
    // privileged
    let bad = matching(&|c| c["securityContext"]["privileged"].as_bool() == Some(true));
    if !bad.is_empty() {
        out.push(format!("privileged ({} must not set securityContext.privileged=true)", containers_phrase(&bad)));
    }
    if restricted {
        // restrictedVolumes
        let bad_volumes: Vec<(String, String)> = spec["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| {
                let kind = v.as_object()?.keys().find(|k| *k != "name")?.clone();
                (!RESTRICTED_VOLUMES.contains(&kind.as_str()) && kind != "hostPath").then(|| (name_of(v), kind))
            })
            .collect();
        if !bad_volumes.is_empty() {
            let noun = if bad_volumes.len() == 1 { "volume" } else { "volumes" };
            let names: Vec<String> = bad_volumes.iter().map(|(n, _)| format!("\"{n}\"")).collect();
            let mut kinds: Vec<String> = bad_volumes.iter().map(|(_, k)| k.clone()).collect();
            kinds.dedup();
            out.push(format!("restricted volume types ({noun} {} {} {})", names.join(", "), if bad_volumes.len() == 1 { "uses restricted volume type" } else { "use restricted volume types" }, kinds.iter().map(|k| format!("\"{k}\"")).collect::<Vec<_>>().join(", ")));
        }
        // runAsNonRoot
        let pod_non_root = psc["runAsNonRoot"].as_bool();
        if pod_non_root == Some(false) {
            out.push("runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false)".to_string());
        } else {
            let bad = matching(&|c| match c["securityContext"]["runAsNonRoot"].as_bool() {
                Some(v) => !v,
                None => pod_non_root != Some(true),
            });
            if !bad.is_empty() {
                out.push(format!("runAsNonRoot != true (pod or {} must set securityContext.runAsNonRoot=true)", containers_phrase(&bad)));
            }
        }
        // runAsUser
        let bad = matching(&|c| c["securityContext"]["runAsUser"].as_i64() == Some(0));
        if psc["runAsUser"].as_i64() == Some(0) {
            out.push("runAsUser=0 (pod must not set runAsUser=0)".to_string());
        } else if !bad.is_empty() {
            out.push(format!("runAsUser=0 ({} must not set runAsUser=0)", containers_phrase(&bad)));
        }
        // seccompProfile_restricted
        let allowed = |t: Option<&str>| matches!(t, Some("RuntimeDefault") | Some("Localhost"));
        let pod_type = psc["seccompProfile"]["type"].as_str();
        let bad = matching(&|c| match c["securityContext"]["seccompProfile"]["type"].as_str() {
            Some(t) => !allowed(Some(t)),
            None => !allowed(pod_type),
        });
        if !bad.is_empty() {
            out.push(format!(
                "seccompProfile (pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")",
                containers_phrase(&bad)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_privileged_pod_violates_restricted_with_upstream_texts() {
        let pod = json!({"spec": {"containers": [{"name": "c", "image": "nginx", "securityContext": {"privileged": true}}]}});
        assert_eq!(
            check_pod(&pod, Level::Restricted).join(", "),
            "allowPrivilegeEscalation != false (container \"c\" must set securityContext.allowPrivilegeEscalation=false), \
             unrestricted capabilities (container \"c\" must set securityContext.capabilities.drop=[\"ALL\"]), \
             privileged (container \"c\" must not set securityContext.privileged=true), \
             runAsNonRoot != true (pod or container \"c\" must set securityContext.runAsNonRoot=true), \
             seccompProfile (pod or container \"c\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
        );
        assert_eq!(check_pod(&pod, Level::Baseline), vec!["privileged (container \"c\" must not set securityContext.privileged=true)".to_string()]);
    }
}
