//! PodSecurity: the Pod Security Standards enforced, warned about and audited per namespace
//! through `pod-security.kubernetes.io/<mode>[-version]` labels (upstream
//! `staging/src/k8s.io/pod-security-admission/admission/admission.go`).
//!
//! - Pod creates (and ephemeral containers added to a pod) are checked in all three modes: `enforce` refuses, `warn` adds `Warning`
//!   headers, `audit` adds the `pod-security.kubernetes.io/audit-violations` annotation to the
//!   request's audit event.
//! - Writes of workload resources with a pod template are checked in `warn` and `audit` mode
//!   only, as upstream (their pods are refused when created).
//! - Namespace writes with invalid policy labels are refused (422); tightening the enforce level
//!   answers with warnings naming the existing pods that would violate it.
//!
//! A PodSecurityConfiguration (`--admission-control-config-file`) sets the default policy of
//! namespaces without labels and exempts usernames, namespaces and runtime classes (the request
//! is then only annotated `pod-security.kubernetes.io/exempt`).

mod checks;

use std::collections::BTreeMap;

use rkube_apimachinery::{ApiError, FieldError};
use rkube_registry::admission::{Operation, add_audit_annotation, add_warning};
use serde_json::Value;

pub use checks::{LATEST_MINOR, Level, Violation, evaluate};

use crate::context::{Context, Plugin};

const LABEL_PREFIX: &str = "pod-security.kubernetes.io/";
const MODES: [&str; 3] = ["enforce", "audit", "warn"];

/// A policy version: `latest` or `v1.<minor>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// The newest checks.
    Latest,
    /// The checks as of `v1.<minor>`.
    Minor(u32),
}

impl Version {
    /// Parses a version label value.
    pub fn parse(s: &str) -> Option<Self> {
        if s == "latest" {
            return Some(Self::Latest);
        }
        let minor = s.strip_prefix("v1.")?;
        // Upstream's `^v1\.([0-9]|[1-9][0-9]*)$`: no leading zeros, no sign.
        if minor.is_empty() || !minor.bytes().all(|b| b.is_ascii_digit()) || (minor.len() > 1 && minor.starts_with('0')) {
            return None;
        }
        minor.parse().ok().map(Self::Minor)
    }

    /// The minor version whose checks apply (versions past the newest get the newest).
    fn minor(self) -> u32 {
        match self {
            Self::Latest => LATEST_MINOR,
            Self::Minor(m) => m.min(LATEST_MINOR),
        }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Latest => write!(f, "latest"),
            Self::Minor(m) => write!(f, "v1.{m}"),
        }
    }
}

/// The level and version of one mode, printed `restricted:latest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelVersion {
    /// The level.
    pub level: Level,
    /// The version.
    pub version: Version,
}

impl std::fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.level.as_str(), self.version)
    }
}

impl LevelVersion {
    const PRIVILEGED: Self = Self { level: Level::Privileged, version: Version::Latest };

    fn violations(&self, meta: &Value, spec: &Value) -> Vec<Violation> {
        evaluate(meta, spec, self.level, self.version.minor())
    }
}

/// A policy per mode (`enforce`, `audit`, `warn`).
pub type Policy = BTreeMap<&'static str, LevelVersion>;

/// A namespace's policy per mode (upstream `PolicyToEvaluate`): the labels over `defaults`, with
/// the label errors found. An invalid level is evaluated as restricted and an invalid version as
/// latest, as upstream.
pub fn policy_of(labels: &Value, defaults: &Policy) -> (Policy, Vec<FieldError>) {
    let mut errors = Vec::new();
    let mut policy = BTreeMap::new();
    for mode in MODES {
        let mut lv = defaults.get(mode).copied().unwrap_or(LevelVersion::PRIVILEGED);
        let level_key = format!("{LABEL_PREFIX}{mode}");
        if let Some(text) = labels[&level_key].as_str() {
            lv.level = Level::parse(text).unwrap_or_else(|| {
                errors.push(FieldError::invalid(format!("metadata.labels[{level_key}]"), text, "must be one of privileged, baseline, restricted"));
                Level::Restricted
            });
        }
        let version_key = format!("{LABEL_PREFIX}{mode}-version");
        if let Some(text) = labels[&version_key].as_str() {
            lv.version = Version::parse(text).unwrap_or_else(|| {
                errors.push(FieldError::invalid(format!("metadata.labels[{version_key}]"), text, "must be \"latest\" or \"v1.x\""));
                Version::Latest
            });
        }
        policy.insert(mode, lv);
    }
    // Warn follows a valid enforce level that is stricter, unless set itself (upstream
    // `PolicyToEvaluate`), so workload writes warn about what enforce will refuse.
    let enforce = policy["enforce"];
    let enforce_valid = labels[format!("{LABEL_PREFIX}enforce")].as_str().and_then(Level::parse).is_some();
    let warn_level_set = !labels[format!("{LABEL_PREFIX}warn")].is_null();
    if enforce_valid && !warn_level_set && enforce.level > policy["warn"].level {
        let warn_version_set = !labels[format!("{LABEL_PREFIX}warn-version")].is_null();
        let warn = policy.entry("warn").or_insert(LevelVersion::PRIVILEGED);
        warn.level = enforce.level;
        if !warn_version_set {
            warn.version = enforce.version;
        }
    }
    (policy, errors)
}

/// `would violate PodSecurity "restricted:latest": reason (detail), …`.
fn would_violate(lv: &LevelVersion, violations: &[Violation]) -> String {
    format!("would violate PodSecurity \"{lv}\": {}", join(violations))
}

fn join(violations: &[Violation]) -> String {
    violations.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// Where a workload keeps its pod template, by (group, plural).
fn template_of<'a>(group: &str, plural: &str, obj: &'a Value) -> Option<&'a Value> {
    let t = match (group, plural) {
        ("apps", "deployments" | "replicasets" | "statefulsets" | "daemonsets") | ("batch", "jobs") | ("", "replicationcontrollers") => &obj["spec"]["template"],
        ("batch", "cronjobs") => &obj["spec"]["jobTemplate"]["spec"]["template"],
        ("", "podtemplates") => &obj["template"],
        _ => return None,
    };
    Some(t)
}

/// The plugin, with its configuration.
#[derive(Debug, Default)]
pub struct PodSecurity {
    defaults: Policy,
    exempt_usernames: Vec<String>,
    exempt_namespaces: Vec<String>,
    exempt_runtime_classes: Vec<String>,
}

impl PodSecurity {
    /// The plugin as a PodSecurityConfiguration (`pod-security.admission.config.k8s.io/v1`)
    /// sets it up; privileged:latest everywhere without one.
    pub fn new(config: Option<&Value>) -> Result<Self, String> {
        let Some(config) = config else { return Ok(Self::default()) };
        if config["kind"] != "PodSecurityConfiguration" {
            return Err("PodSecurity configuration: expected kind PodSecurityConfiguration of pod-security.admission.config.k8s.io/v1".into());
        }
        let mut defaults = Policy::new();
        for mode in MODES {
            let mut lv = LevelVersion::PRIVILEGED;
            if let Some(level) = config["defaults"][mode].as_str() {
                lv.level = Level::parse(level).ok_or_else(|| format!("PodSecurity configuration: defaults.{mode}: must be one of privileged, baseline, restricted"))?;
            }
            if let Some(version) = config["defaults"][format!("{mode}-version")].as_str() {
                lv.version = Version::parse(version).ok_or_else(|| format!("PodSecurity configuration: defaults.{mode}-version: must be \"latest\" or \"v1.x\""))?;
            }
            defaults.insert(mode, lv);
        }
        let list = |k: &str| -> Vec<String> { config["exemptions"][k].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect() };
        Ok(Self { defaults, exempt_usernames: list("usernames"), exempt_namespaces: list("namespaces"), exempt_runtime_classes: list("runtimeClasses") })
    }

    /// Why the request is exempt (upstream's order: namespace, user, runtime class), if it is.
    fn exemption(&self, ctx: &Context<'_>, spec: &Value) -> Option<&'static str> {
        if self.exempt_namespaces.iter().any(|n| n == ctx.namespace()) {
            return Some("namespace");
        }
        if self.exempt_usernames.contains(&ctx.user.name) {
            return Some("user");
        }
        let class = spec["runtimeClassName"].as_str()?;
        self.exempt_runtime_classes.iter().any(|c| c == class).then_some("runtimeClass")
    }

    /// The policy of the request's namespace.
    async fn namespace_policy(&self, ctx: &Context<'_>) -> Result<Option<Policy>, ApiError> {
        let Some(ns) = ctx.get("", "v1", "namespaces", None, ctx.namespace()).await? else { return Ok(None) };
        Ok(Some(policy_of(&ns["metadata"]["labels"], &self.defaults).0))
    }
}

#[async_trait::async_trait]
impl Plugin for PodSecurity {
    async fn validate(&self, ctx: &Context<'_>, obj: Option<&Value>) -> Result<(), ApiError> {
        let Some(obj) = obj else { return Ok(()) };
        let res = ctx.req.resource;
        // Adding ephemeral containers (kubectl debug) is checked like a new pod, as upstream;
        // other subresources are not.
        let adds_ephemeral_containers = res.group.is_empty() && res.plural == "pods" && ctx.req.subresource == "ephemeralcontainers";
        if (!ctx.req.subresource.is_empty() && !adds_ephemeral_containers) || !matches!(ctx.req.operation, Operation::Create | Operation::Update) {
            return Ok(());
        }
        if ctx.is("", "namespaces") {
            return self.validate_namespace(ctx, obj).await;
        }
        if ctx.is_pod_create() || adds_ephemeral_containers {
            return self.validate_pod(ctx, &obj["metadata"], &obj["spec"]).await;
        }
        let Some(template) = template_of(&res.group, &res.plural, obj) else { return Ok(()) };
        if ctx.req.operation == Operation::Update
            && let Some(old) = ctx.req.old.and_then(|o| template_of(&res.group, &res.plural, o))
            && old["metadata"] == template["metadata"]
            && old["spec"] == template["spec"]
        {
            // Updates that leave the pod template alone (scaling, labels) are not re-checked.
            return Ok(());
        }
        self.validate_workload(ctx, &template["metadata"], &template["spec"]).await
    }
}

impl PodSecurity {
    async fn validate_pod(&self, ctx: &Context<'_>, meta: &Value, spec: &Value) -> Result<(), ApiError> {
        if let Some(why) = self.exemption(ctx, spec) {
            add_audit_annotation(format!("{LABEL_PREFIX}exempt"), why);
            return Ok(());
        }
        let Some(policy) = self.namespace_policy(ctx).await? else { return Ok(()) };
        let enforce = policy["enforce"];
        add_audit_annotation(format!("{LABEL_PREFIX}enforce-policy"), enforce.to_string());
        let denied = enforce.violations(meta, spec);
        audit_and_warn(&policy, meta, spec, !denied.is_empty());
        if !denied.is_empty() {
            return Err(ctx.forbidden(&format!("violates PodSecurity \"{enforce}\": {}", join(&denied))));
        }
        Ok(())
    }

    async fn validate_workload(&self, ctx: &Context<'_>, meta: &Value, spec: &Value) -> Result<(), ApiError> {
        if let Some(why) = self.exemption(ctx, spec) {
            add_audit_annotation(format!("{LABEL_PREFIX}exempt"), why);
            return Ok(());
        }
        if let Some(policy) = self.namespace_policy(ctx).await? {
            audit_and_warn(&policy, meta, spec, false);
        }
        Ok(())
    }
}

/// Audit mode annotates the audit event; warn mode adds warnings unless the request is refused
/// anyway (upstream does not warn on a request it rejects).
fn audit_and_warn(policy: &Policy, meta: &Value, spec: &Value, refused: bool) {
    if let Some(audit) = policy.get("audit") {
        let v = audit.violations(meta, spec);
        if !v.is_empty() {
            add_audit_annotation(format!("{LABEL_PREFIX}audit-violations"), would_violate(audit, &v));
        }
    }
    if refused {
        return;
    }
    if let Some(warn) = policy.get("warn") {
        let v = warn.violations(meta, spec);
        if !v.is_empty() {
            add_warning(would_violate(warn, &v));
        }
    }
}

impl PodSecurity {
    /// Refuses invalid policy labels; when an update tightens enforcement, warns about the existing
    /// pods that would violate it (upstream `ValidateNamespace`, `EvaluatePodsInNamespace`).
    async fn validate_namespace(&self, ctx: &Context<'_>, ns: &Value) -> Result<(), ApiError> {
        let labels = &ns["metadata"]["labels"];
        let (policy, errors) = policy_of(labels, &self.defaults);
        let name = ns["metadata"]["name"].as_str().unwrap_or(ctx.req.name);
        let refuse = |errors: &[FieldError]| Err(ApiError::invalid("", "Namespace", name, errors));
        let old = ctx.req.old.filter(|_| ctx.req.operation == Operation::Update);
        let (old_policy, old_errors) = match old {
            Some(old) => policy_of(&old["metadata"]["labels"], &self.defaults),
            None => (Policy::new(), Vec::new()),
        };
        // On update, labels that were already invalid the same way do not block unrelated changes.
        if !errors.is_empty() && (old.is_none() || old_errors.is_empty() || format!("{errors:?}") != format!("{old_errors:?}")) {
            return refuse(&errors);
        }
        if self.exempt_namespaces.iter().any(|n| n == name) {
            if let Some(w) = self.exempt_namespace_warning(name, &policy, labels) {
                add_warning(w);
            }
            return Ok(());
        }
        if old.is_none() {
            return Ok(());
        }
        let (enforce, old_enforce) = (policy["enforce"], old_policy["enforce"]);
        if enforce == old_enforce || enforce.level == Level::Privileged || (enforce.version == old_enforce.version && enforce.level <= old_enforce.level) {
            return Ok(());
        }
        let pods = ctx.list("", "v1", "pods", Some(name)).await?;
        // Each distinct set of failed checks is reported once, named by its alphabetically first pod.
        let mut by_reasons: BTreeMap<String, (String, usize)> = BTreeMap::new();
        for pod in &pods {
            let v = enforce.violations(&pod["metadata"], &pod["spec"]);
            if v.is_empty() {
                continue;
            }
            let reasons = v.iter().map(|v| v.reason.as_str()).collect::<Vec<_>>().join(", ");
            let pod_name = pod["metadata"]["name"].as_str().unwrap_or("").to_string();
            let entry = by_reasons.entry(reasons).or_insert((pod_name.clone(), 0));
            if pod_name < entry.0 {
                entry.0 = pod_name;
            }
            entry.1 += 1;
        }
        if by_reasons.is_empty() {
            return Ok(());
        }
        add_warning(format!("existing pods in namespace \"{name}\" violate the new PodSecurity enforce level \"{enforce}\""));
        let mut lines: Vec<String> = by_reasons
            .into_iter()
            .map(|(reasons, (pod, count))| match count {
                1 => format!("{pod}: {reasons}"),
                2 => format!("{pod} (and 1 other pod): {reasons}"),
                n => format!("{pod} (and {} other pods): {reasons}", n - 1),
            })
            .collect();
        lines.sort();
        for l in lines {
            add_warning(l);
        }
        Ok(())
    }

    /// Upstream's `exemptNamespaceWarning`: the explicitly labelled, non-privileged modes of an
    /// exempt namespace, which will not apply.
    fn exempt_namespace_warning(&self, name: &str, policy: &Policy, labels: &Value) -> Option<String> {
        if policy.values().all(|lv| lv.level == Level::Privileged) || *policy == self.defaults_or_privileged() {
            return None;
        }
        let labelled = |mode: &str| !labels[format!("{LABEL_PREFIX}{mode}")].is_null() || !labels[format!("{LABEL_PREFIX}{mode}-version")].is_null();
        let parts: Vec<String> = MODES
            .iter()
            .filter(|m| policy[**m].level != Level::Privileged && labelled(m))
            .map(|m| format!("{m}={}", policy[*m]))
            .collect();
        Some(format!("namespace \"{name}\" is exempt from Pod Security, and the policy ({}) will be ignored", parts.join(", ")))
    }

    fn defaults_or_privileged(&self) -> Policy {
        MODES.iter().map(|m| (*m, self.defaults.get(m).copied().unwrap_or(LevelVersion::PRIVILEGED))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn versions_parse_as_upstream() {
        assert_eq!(Version::parse("latest"), Some(Version::Latest));
        assert_eq!(Version::parse("v1.25"), Some(Version::Minor(25)));
        assert_eq!(Version::parse("v1.0"), Some(Version::Minor(0)));
        for bad in ["v1.025", "1.25", "v2.1", "v1.", "v1.-1", ""] {
            assert_eq!(Version::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn invalid_labels_are_reported_and_evaluated_strictly() {
        let labels = json!({"pod-security.kubernetes.io/enforce": "bogus", "pod-security.kubernetes.io/warn-version": "v1"});
        let (policy, errors) = policy_of(&labels, &Policy::new());
        assert_eq!(policy["enforce"].level, Level::Restricted);
        assert_eq!(errors.len(), 2);
    }
}
