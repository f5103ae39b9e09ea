//! The Pod Security Standards checks of the baseline and restricted levels, as versioned by
//! upstream (`staging/src/k8s.io/pod-security-admission/policy/check_*.go`). Each check reports
//! upstream's reason and detail; violations come in upstream's order (by check id), and a
//! restricted check replaces the baseline check it overrides.

use std::collections::BTreeSet;

use serde_json::Value;

/// The newest policy minor version this server knows (`latest`).
pub const LATEST_MINOR: u32 = 33;

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
    /// Parses a level label value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "privileged" => Some(Self::Privileged),
            "baseline" => Some(Self::Baseline),
            "restricted" => Some(Self::Restricted),
            _ => None,
        }
    }

    /// The label spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Privileged => "privileged",
            Self::Baseline => "baseline",
            Self::Restricted => "restricted",
        }
    }
}

/// One failed check: `reason (detail)` in messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Upstream's `ForbiddenReason`.
    pub reason: String,
    /// Upstream's `ForbiddenDetail`.
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.detail.is_empty() { write!(f, "{}", self.reason) } else { write!(f, "{} ({})", self.reason, self.detail) }
    }
}

/// Capabilities baseline allows to add.
const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
];
/// Volume sources restricted allows.
const RESTRICTED_VOLUMES: &[&str] = &["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"];
/// Volume sources restricted names when refusing them (anything else is "unknown").
const KNOWN_RESTRICTED_VOLUMES: &[&str] = &[
    "hostPath", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "nfs", "iscsi", "glusterfs", "rbd", "flexVolume", "cinder", "cephfs", "flocker", "fc",
    "azureFile", "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk", "portworxVolume", "scaleIO", "storageos",
];

/// Go's `%q` of a string (JSON quoting agrees for the texts checks print).
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

fn join_quote<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> String {
    items.into_iter().map(|s| quote(s.as_ref())).collect::<Vec<_>>().join(", ")
}

fn pluralize<'a>(one: &'a str, many: &'a str, n: usize) -> &'a str {
    if n == 1 { one } else { many }
}

/// `container "a"` / `containers "a", "b"`.
fn containers_phrase(names: &[String]) -> String {
    format!("{} {}", pluralize("container", "containers", names.len()), join_quote(names))
}

fn name_of(v: &Value) -> String {
    v["name"].as_str().unwrap_or("").to_string()
}

/// What one evaluation looks at.
struct Pod<'a> {
    meta: &'a Value,
    spec: &'a Value,
    containers: Vec<&'a Value>,
    minor: u32,
}

impl<'a> Pod<'a> {
    fn psc(&self) -> &'a Value {
        &self.spec["securityContext"]
    }

    /// Names of the containers (init, regular, ephemeral) for which `bad` holds.
    fn containers_where(&self, bad: impl Fn(&Value) -> bool) -> Vec<String> {
        self.containers.iter().filter(|c| bad(c)).map(|c| name_of(c)).collect()
    }

    /// Pods declaring a Windows OS are exempt from some restricted checks since 1.25.
    fn windows_exempt(&self) -> bool {
        self.minor >= 25 && self.spec["os"]["name"] == "windows"
    }
}

fn violation(reason: impl Into<String>, detail: impl Into<String>) -> Option<Violation> {
    Some(Violation { reason: reason.into(), detail: detail.into() })
}

type Check = fn(&Pod) -> Option<Violation>;

/// Every check by id (upstream's order) with its level, the minor version it starts at and the
/// baseline check it overrides at restricted.
const CHECKS: &[(&str, Level, u32, Option<&str>, Check)] = &[
    ("allowPrivilegeEscalation", Level::Restricted, 8, None, allow_privilege_escalation),
    ("appArmorProfile", Level::Baseline, 0, None, app_armor_profile),
    ("capabilities_baseline", Level::Baseline, 0, None, capabilities_baseline),
    ("capabilities_restricted", Level::Restricted, 22, Some("capabilities_baseline"), capabilities_restricted),
    ("hostNamespaces", Level::Baseline, 0, None, host_namespaces),
    ("hostPathVolumes", Level::Baseline, 0, None, host_path_volumes),
    ("hostPorts", Level::Baseline, 0, None, host_ports),
    ("privileged", Level::Baseline, 0, None, privileged),
    ("procMount", Level::Baseline, 0, None, proc_mount),
    ("restrictedVolumes", Level::Restricted, 0, Some("hostPathVolumes"), restricted_volumes),
    ("runAsNonRoot", Level::Restricted, 0, None, run_as_non_root),
    ("runAsUser", Level::Restricted, 23, None, run_as_user),
    ("seLinuxOptions", Level::Baseline, 0, None, se_linux_options),
    ("seccompProfile_baseline", Level::Baseline, 19, None, seccomp_baseline),
    ("seccompProfile_restricted", Level::Restricted, 19, Some("seccompProfile_baseline"), seccomp_restricted),
    ("sysctls", Level::Baseline, 0, None, sysctls),
    ("windowsHostProcess", Level::Baseline, 0, None, windows_host_process),
];

/// Every violation of `level` at policy version `v1.<minor>` by a pod's metadata and spec.
pub fn evaluate(meta: &Value, spec: &Value, level: Level, minor: u32) -> Vec<Violation> {
    if level == Level::Privileged {
        return Vec::new();
    }
    let containers = ["initContainers", "containers", "ephemeralContainers"].iter().flat_map(|f| spec[*f].as_array().into_iter().flatten()).collect();
    let pod = Pod { meta, spec, containers, minor };
    let applies = |(_, l, since, _, _): &&(&str, Level, u32, Option<&str>, Check)| *l <= level && *since <= minor;
    let overridden: Vec<&str> = CHECKS.iter().filter(applies).filter_map(|c| c.3).collect();
    CHECKS.iter().filter(applies).filter(|c| !overridden.contains(&c.0)).filter_map(|c| (c.4)(&pod)).collect()
}

fn allow_privilege_escalation(pod: &Pod) -> Option<Violation> {
    if pod.windows_exempt() {
        return None;
    }
    let bad = pod.containers_where(|c| c["securityContext"]["allowPrivilegeEscalation"].as_bool() != Some(false));
    (!bad.is_empty()).then_some(())?;
    violation("allowPrivilegeEscalation != false", format!("{} must set securityContext.allowPrivilegeEscalation=false", containers_phrase(&bad)))
}

fn app_armor_profile(pod: &Pod) -> Option<Violation> {
    let allowed_type = |t: &Value| matches!(t.as_str(), Some("RuntimeDefault") | Some("Localhost"));
    let mut setters = Vec::new();
    let mut values = BTreeSet::new();
    let profile = &pod.psc()["appArmorProfile"];
    if profile.is_object() && !allowed_type(&profile["type"]) {
        setters.push("pod".to_string());
        values.insert(profile["type"].as_str().unwrap_or("").to_string());
    }
    let bad = pod.containers_where(|c| {
        let p = &c["securityContext"]["appArmorProfile"];
        p.is_object() && !allowed_type(&p["type"])
    });
    for c in &pod.containers {
        let p = &c["securityContext"]["appArmorProfile"];
        if p.is_object() && !allowed_type(&p["type"]) {
            values.insert(p["type"].as_str().unwrap_or("").to_string());
        }
    }
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    let mut annotations: Vec<String> = pod.meta["annotations"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.starts_with("container.apparmor.security.beta.kubernetes.io/"))
        .filter_map(|(k, v)| {
            let v = v.as_str().unwrap_or("");
            let allowed = v.is_empty() || v == "runtime/default" || v.starts_with("localhost/");
            (!allowed).then(|| format!("{k}={}", quote(v)))
        })
        .collect();
    annotations.sort();
    let mut listed: Vec<String> = values.into_iter().collect();
    if !annotations.is_empty() {
        setters.push(pluralize("annotation", "annotations", annotations.len()).to_string());
        listed.extend(annotations);
    }
    if setters.is_empty() {
        return None;
    }
    violation(
        pluralize("forbidden AppArmor profile", "forbidden AppArmor profiles", listed.len()),
        format!("{} must not set AppArmor profile type to {}", setters.join(" and "), join_quote(&listed)),
    )
}

fn added_capabilities(c: &Value) -> impl Iterator<Item = &str> {
    c["securityContext"]["capabilities"]["add"].as_array().into_iter().flatten().filter_map(Value::as_str)
}

fn capabilities_baseline(pod: &Pod) -> Option<Violation> {
    let forbidden = |cap: &str| !BASELINE_CAPABILITIES.contains(&cap);
    let bad = pod.containers_where(|c| added_capabilities(c).any(forbidden));
    if bad.is_empty() {
        return None;
    }
    let caps: BTreeSet<&str> = pod.containers.iter().flat_map(|c| added_capabilities(c)).filter(|c| forbidden(c)).collect();
    violation("non-default capabilities", format!("{} must not include {} in securityContext.capabilities.add", containers_phrase(&bad), join_quote(caps)))
}

fn capabilities_restricted(pod: &Pod) -> Option<Violation> {
    if pod.windows_exempt() {
        return None;
    }
    let missing_drop_all = pod.containers_where(|c| !c["securityContext"]["capabilities"]["drop"].as_array().into_iter().flatten().any(|d| d == "ALL"));
    let forbidden = |cap: &str| cap != "NET_BIND_SERVICE";
    let adding = pod.containers_where(|c| added_capabilities(c).any(forbidden));
    let caps: BTreeSet<&str> = pod.containers.iter().flat_map(|c| added_capabilities(c)).filter(|c| forbidden(c)).collect();
    let mut details = Vec::new();
    if !missing_drop_all.is_empty() {
        details.push(format!("{} must set securityContext.capabilities.drop=[\"ALL\"]", containers_phrase(&missing_drop_all)));
    }
    if !adding.is_empty() {
        details.push(format!("{} must not include {} in securityContext.capabilities.add", containers_phrase(&adding), join_quote(caps)));
    }
    if details.is_empty() {
        return None;
    }
    violation("unrestricted capabilities", details.join("; "))
}

fn host_namespaces(pod: &Pod) -> Option<Violation> {
    let hosts: Vec<String> = ["hostNetwork", "hostPID", "hostIPC"].into_iter().filter(|f| pod.spec[*f].as_bool() == Some(true)).map(|h| format!("{h}=true")).collect();
    if hosts.is_empty() {
        return None;
    }
    violation("host namespaces", hosts.join(", "))
}

fn volumes<'a>(pod: &Pod<'a>) -> impl Iterator<Item = &'a Value> {
    pod.spec["volumes"].as_array().into_iter().flatten()
}

fn host_path_volumes(pod: &Pod) -> Option<Violation> {
    let names: Vec<String> = volumes(pod).filter(|v| v["hostPath"].is_object()).map(name_of).collect();
    if names.is_empty() {
        return None;
    }
    violation("hostPath volumes", format!("{} {}", pluralize("volume", "volumes", names.len()), join_quote(&names)))
}

fn host_ports(pod: &Pod) -> Option<Violation> {
    let host_ports_of = |c: &Value| -> Vec<i64> { c["ports"].as_array().into_iter().flatten().filter_map(|p| p["hostPort"].as_i64()).filter(|p| *p != 0).collect() };
    let bad = pod.containers_where(|c| !host_ports_of(c).is_empty());
    if bad.is_empty() {
        return None;
    }
    // Upstream lists the ports as a sorted set of strings.
    let ports: BTreeSet<String> = pod.containers.iter().flat_map(|c| host_ports_of(c)).map(|p| p.to_string()).collect();
    violation(
        "hostPort",
        format!(
            "{} {} {} {}",
            containers_phrase(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize("hostPort", "hostPorts", ports.len()),
            ports.into_iter().collect::<Vec<_>>().join(", ")
        ),
    )
}

fn privileged(pod: &Pod) -> Option<Violation> {
    let bad = pod.containers_where(|c| c["securityContext"]["privileged"].as_bool() == Some(true));
    (!bad.is_empty()).then_some(())?;
    violation("privileged", format!("{} must not set securityContext.privileged=true", containers_phrase(&bad)))
}

fn proc_mount(pod: &Pod) -> Option<Violation> {
    let mount = |c: &Value| c["securityContext"]["procMount"].as_str().filter(|m| *m != "Default").map(str::to_string);
    let bad = pod.containers_where(|c| mount(c).is_some());
    if bad.is_empty() {
        return None;
    }
    let types: BTreeSet<String> = pod.containers.iter().filter_map(|c| mount(c)).collect();
    violation("procMount", format!("{} must not set securityContext.procMount to {}", containers_phrase(&bad), join_quote(types)))
}

fn restricted_volumes(pod: &Pod) -> Option<Violation> {
    let mut names = Vec::new();
    let mut types = BTreeSet::new();
    for v in volumes(pod) {
        let Some(source) = v.as_object().and_then(|o| o.keys().find(|k| *k != "name")) else { continue };
        if RESTRICTED_VOLUMES.contains(&source.as_str()) {
            continue;
        }
        names.push(name_of(v));
        types.insert(if KNOWN_RESTRICTED_VOLUMES.contains(&source.as_str()) { source.clone() } else { "unknown".to_string() });
    }
    if names.is_empty() {
        return None;
    }
    violation(
        "restricted volume types",
        format!(
            "{} {} {} {} {}",
            pluralize("volume", "volumes", names.len()),
            join_quote(&names),
            pluralize("uses", "use", names.len()),
            pluralize("restricted volume type", "restricted volume types", types.len()),
            join_quote(&types)
        ),
    )
}

fn run_as_non_root(pod: &Pod) -> Option<Violation> {
    let mut setters = Vec::new();
    let pod_value = pod.psc()["runAsNonRoot"].as_bool();
    if pod_value == Some(false) {
        setters.push("pod".to_string());
    }
    let explicit = pod.containers_where(|c| c["securityContext"]["runAsNonRoot"].as_bool() == Some(false));
    let implicit = pod.containers_where(|c| c["securityContext"]["runAsNonRoot"].as_bool().is_none() && pod_value != Some(true));
    if !explicit.is_empty() {
        setters.push(containers_phrase(&explicit));
    }
    if !setters.is_empty() {
        return violation("runAsNonRoot != true", format!("{} must not set securityContext.runAsNonRoot=false", setters.join(" and ")));
    }
    if !implicit.is_empty() {
        return violation("runAsNonRoot != true", format!("pod or {} must set securityContext.runAsNonRoot=true", containers_phrase(&implicit)));
    }
    None
}

fn run_as_user(pod: &Pod) -> Option<Violation> {
    let mut setters = Vec::new();
    if pod.psc()["runAsUser"].as_i64() == Some(0) {
        setters.push("pod".to_string());
    }
    let bad = pod.containers_where(|c| c["securityContext"]["runAsUser"].as_i64() == Some(0));
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    if setters.is_empty() {
        return None;
    }
    violation("runAsUser=0", format!("{} must not set runAsUser=0", setters.join(" and ")))
}

fn se_linux_options(pod: &Pod) -> Option<Violation> {
    let mut allowed = vec!["", "container_t", "container_init_t", "container_kvm_t"];
    if pod.minor >= 31 {
        allowed.push("container_engine_t");
    }
    let mut types = BTreeSet::new();
    let (mut set_user, mut set_role) = (false, false);
    let mut valid = |o: &Value| -> bool {
        let mut ok = true;
        let t = o["type"].as_str().unwrap_or("");
        if !allowed.contains(&t) {
            ok = false;
            types.insert(t.to_string());
        }
        if o["user"].as_str().is_some_and(|u| !u.is_empty()) {
            ok = false;
            set_user = true;
        }
        if o["role"].as_str().is_some_and(|r| !r.is_empty()) {
            ok = false;
            set_role = true;
        }
        ok
    };
    let mut setters = Vec::new();
    let pod_opts = &pod.psc()["seLinuxOptions"];
    if pod_opts.is_object() && !valid(pod_opts) {
        setters.push("pod".to_string());
    }
    let mut bad = Vec::new();
    for c in &pod.containers {
        let o = &c["securityContext"]["seLinuxOptions"];
        if o.is_object() && !valid(o) {
            bad.push(name_of(c));
        }
    }
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    if setters.is_empty() {
        return None;
    }
    let mut data = Vec::new();
    if !types.is_empty() {
        data.push(format!("{} {}", pluralize("type", "types", types.len()), join_quote(&types)));
    }
    if set_user {
        data.push("user may not be set".to_string());
    }
    if set_role {
        data.push("role may not be set".to_string());
    }
    violation("seLinuxOptions", format!("{} set forbidden securityContext.seLinuxOptions: {}", setters.join(" and "), data.join("; ")))
}

fn valid_seccomp(t: &Value) -> bool {
    matches!(t.as_str(), Some("RuntimeDefault") | Some("Localhost"))
}

/// Setters that explicitly chose a bad seccomp type, the types, and whether the pod set a good one.
fn seccomp_setters(pod: &Pod) -> (Vec<String>, BTreeSet<String>, bool, Vec<String>) {
    let mut setters = Vec::new();
    let mut values = BTreeSet::new();
    let profile = &pod.psc()["seccompProfile"];
    let mut pod_set = false;
    if profile.is_object() {
        if valid_seccomp(&profile["type"]) {
            pod_set = true;
        } else {
            setters.push("pod".to_string());
            values.insert(profile["type"].as_str().unwrap_or("").to_string());
        }
    }
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in &pod.containers {
        let p = &c["securityContext"]["seccompProfile"];
        if p.is_object() {
            if !valid_seccomp(&p["type"]) {
                explicit.push(name_of(c));
                values.insert(p["type"].as_str().unwrap_or("").to_string());
            }
        } else if !pod_set {
            implicit.push(name_of(c));
        }
    }
    if !explicit.is_empty() {
        setters.push(containers_phrase(&explicit));
    }
    (setters, values, pod_set, implicit)
}

fn seccomp_baseline(pod: &Pod) -> Option<Violation> {
    let (setters, values, _, _) = seccomp_setters(pod);
    if setters.is_empty() {
        return None;
    }
    violation("seccompProfile", format!("{} must not set securityContext.seccompProfile.type to {}", setters.join(" and "), join_quote(&values)))
}

fn seccomp_restricted(pod: &Pod) -> Option<Violation> {
    if pod.windows_exempt() {
        return None;
    }
    let (setters, values, _, implicit) = seccomp_setters(pod);
    if !setters.is_empty() {
        return violation("seccompProfile", format!("{} must not set securityContext.seccompProfile.type to {}", setters.join(" and "), join_quote(&values)));
    }
    if !implicit.is_empty() {
        return violation(
            "seccompProfile",
            format!("pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"", containers_phrase(&implicit)),
        );
    }
    None
}

fn sysctls(pod: &Pod) -> Option<Violation> {
    let mut allowed = vec!["kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start"];
    if pod.minor >= 29 {
        allowed.extend(["net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"]);
    }
    if pod.minor >= 32 {
        allowed.extend(["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"]);
    }
    let bad: Vec<&str> = pod.psc()["sysctls"].as_array().into_iter().flatten().filter_map(|s| s["name"].as_str()).filter(|n| !allowed.contains(n)).collect();
    if bad.is_empty() {
        return None;
    }
    violation("forbidden sysctls", bad.join(", "))
}

fn windows_host_process(pod: &Pod) -> Option<Violation> {
    let host_process = |sc: &Value| sc["windowsOptions"]["hostProcess"].as_bool() == Some(true);
    let mut setters = Vec::new();
    if host_process(pod.psc()) {
        setters.push("pod".to_string());
    }
    let bad = pod.containers_where(|c| host_process(&c["securityContext"]));
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    if setters.is_empty() {
        return None;
    }
    violation("hostProcess", format!("{} must not set securityContext.windowsOptions.hostProcess=true", setters.join(" and ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn texts(pod: &Value, level: Level) -> Vec<String> {
        evaluate(&pod["metadata"], &pod["spec"], level, LATEST_MINOR).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_privileged_pod_violates_restricted_with_upstream_texts() {
        let pod = json!({"spec": {"containers": [{"name": "c", "image": "nginx", "securityContext": {"privileged": true}}]}});
        assert_eq!(
            texts(&pod, Level::Restricted).join(", "),
            "allowPrivilegeEscalation != false (container \"c\" must set securityContext.allowPrivilegeEscalation=false), \
             unrestricted capabilities (container \"c\" must set securityContext.capabilities.drop=[\"ALL\"]), \
             privileged (container \"c\" must not set securityContext.privileged=true), \
             runAsNonRoot != true (pod or container \"c\" must set securityContext.runAsNonRoot=true), \
             seccompProfile (pod or container \"c\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
        );
        assert_eq!(texts(&pod, Level::Baseline), vec!["privileged (container \"c\" must not set securityContext.privileged=true)".to_string()]);
    }

    #[test]
    fn baseline_checks_added_after_the_first_version_report_upstream_texts() {
        let pod = json!({
            "metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}},
            "spec": {
                "securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}], "seLinuxOptions": {"type": "spc_t"}, "seccompProfile": {"type": "Unconfined"}},
                "containers": [{"name": "c", "securityContext": {"procMount": "Unmasked", "appArmorProfile": {"type": "Unconfined"}, "windowsOptions": {"hostProcess": true}}}],
            }
        });
        assert_eq!(
            texts(&pod, Level::Baseline),
            vec![
                "forbidden AppArmor profiles (container \"c\" and annotation must not set AppArmor profile type to \"Unconfined\", \"container.apparmor.security.beta.kubernetes.io/c=\\\"unconfined\\\"\")",
                "procMount (container \"c\" must not set securityContext.procMount to \"Unmasked\")",
                "seLinuxOptions (pod set forbidden securityContext.seLinuxOptions: type \"spc_t\")",
                "seccompProfile (pod must not set securityContext.seccompProfile.type to \"Unconfined\")",
                "forbidden sysctls (kernel.msgmax)",
                "hostProcess (container \"c\" must not set securityContext.windowsOptions.hostProcess=true)",
            ]
        );
    }

    #[test]
    fn restricted_overrides_hostpath_and_limits_added_capabilities() {
        let pod = json!({"spec": {
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "volumes": [{"name": "h", "hostPath": {"path": "/"}}, {"name": "n", "nfs": {"server": "s", "path": "/"}}],
            "containers": [{"name": "c", "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "CHOWN"]}}}],
        }});
        assert_eq!(
            texts(&pod, Level::Restricted),
            vec![
                "unrestricted capabilities (container \"c\" must not include \"CHOWN\" in securityContext.capabilities.add)",
                "restricted volume types (volumes \"h\", \"n\" use restricted volume types \"hostPath\", \"nfs\")",
            ]
        );
        assert_eq!(texts(&pod, Level::Baseline), vec!["hostPath volumes (volume \"h\")"]);
    }

    #[test]
    fn older_policy_versions_allow_what_they_did_not_check() {
        let pod = json!({"spec": {"securityContext": {"sysctls": [{"name": "net.ipv4.tcp_rmem"}]}, "containers": [{"name": "c"}]}});
        assert!(texts(&pod, Level::Baseline).is_empty());
        assert_eq!(evaluate(&pod["metadata"], &pod["spec"], Level::Baseline, 31).len(), 1);
    }
}
