//! Objects a real kube-apiserver 1.33 creates at start that clients can list, as JSON:
//!
//! * the API Priority and Fairness bootstrap configuration: 8 `PriorityLevelConfiguration`s and
//!   13 `FlowSchema`s of `flowcontrol.apiserver.k8s.io/v1` ([`flowcontrol_objects`]);
//! * the local `APIService` the aggregator's autoregister controller creates for every
//!   group-version the server serves ([`apiservice_for`]), with the priorities of upstream's table
//!   ([`group_priority`]).
//!
//! Upstream sources read (kubernetes/kubernetes, release 1.33 era):
//!
//! * `staging/src/k8s.io/apiserver/pkg/apis/flowcontrol/bootstrap/default.go`: the mandatory and
//!   suggested objects, their specs, and the `apf.kubernetes.io/autoupdate-spec: "true"`
//!   annotation `newPriorityLevelConfiguration` / `newFlowSchema` put on every one of them. 1.33
//!   still has `workload-leader-election` and `endpoint-controller`; they were removed for 1.34 by
//!   kubernetes/kubernetes#131215 (opened 2025-04-09, after the 1.33 branch). The attempts to change
//!   shares for 1.33 (#129646, #130459) were closed unmerged.
//! * `pkg/registry/flowcontrol/rest/storage_flowcontrol.go` (`ensure`): creation order is suggested
//!   levels, suggested schemas, mandatory levels, mandatory schemas.
//! * `staging/src/k8s.io/api/flowcontrol/v1/types.go`: JSON field names, order and `omitempty`
//!   (`clusterScope` omitted when false; `namespaces`, `queues`, `handSize`, `queueLengthLimit`,
//!   `limited.nominalConcurrencyShares` always written; `distinguisherMethod` omitted when nil;
//!   `borrowingLimitPercent` omitted when nil, and no bootstrap object sets it).
//! * `pkg/apis/flowcontrol/v1/defaults.go`: v1 defaulting. `FlowSchemaSpec.matchingPrecedence`
//!   0 → 1000; `limited.nominalConcurrencyShares` nil → 30; `limited.lendablePercent` nil → 0;
//!   `exempt.nominalConcurrencyShares` and `exempt.lendablePercent` nil → 0; queuing `handSize`
//!   0 → 8, `queues` 0 → 64, `queueLengthLimit` 0 → 50. Every bootstrap object sets all of these
//!   explicitly, so defaulting changes nothing and the objects below are what
//!   `kubectl get flowschema -o yaml` shows (plus server-set metadata and status).
//! * `staging/src/k8s.io/apiserver/pkg/util/flowcontrol/apf_controller.go`: the `Dangling`
//!   condition the APF controller writes into every FlowSchema's status ([`flowschema_status`]);
//!   priority levels keep `status: {}`.
//! * `cmd/kube-apiserver/app/aggregator.go` (kube-specific `apiVersionPriorities`, merged over)
//!   `pkg/controlplane/apiserver/aggregator.go` (`DefaultGenericAPIServicePriorities`,
//!   `makeAPIService`, `apiServicesToRegister`): name `<version>.<group>` (`v1.` for core), spec
//!   group/version/groupPriorityMinimum/versionPriority, no service; group-versions missing from
//!   the table get no APIService at all.
//! * `staging/src/k8s.io/kube-aggregator/pkg/controllers/autoregister`: APIServices synced on start
//!   carry the label `kube-aggregator.kubernetes.io/automanaged: onstart`.
//! * `staging/src/k8s.io/kube-aggregator/pkg/apis/apiregistration/v1/types.go` and the available
//!   condition controller / strategy: `service` and `group` are `omitempty` (so `v1.` has no
//!   `group` key), and a local APIService is `Available=True`, reason `Local`, message
//!   `Local APIServices are always available`.
//!
//! Objects carry only `name` plus the annotation or label upstream sets; the server fills in
//! `uid`, `resourceVersion`, `generation`, `creationTimestamp` when it creates them.

use serde_json::{Map, Value, json};

/// Annotation upstream puts on every APF bootstrap object.
pub const APF_AUTOUPDATE_ANNOTATION: &str = "apf.kubernetes.io/autoupdate-spec";

/// Label the aggregator's autoregister controller puts on the APIServices it manages.
pub const AUTOMANAGED_LABEL: &str = "kube-aggregator.kubernetes.io/automanaged";

/// Value of [`AUTOMANAGED_LABEL`] for the built-in group-versions (synced once on start).
pub const AUTOMANAGED_ON_START: &str = "onstart";

/// `apiVersion` of the APF objects.
pub const FLOWCONTROL_API_VERSION: &str = "flowcontrol.apiserver.k8s.io/v1";

/// `apiVersion` of APIService objects.
pub const APIREGISTRATION_API_VERSION: &str = "apiregistration.k8s.io/v1";

// ---------------------------------------------------------------------------------------------
// API Priority and Fairness
// ---------------------------------------------------------------------------------------------

/// Well-known user and group names (`k8s.io/apiserver/pkg/authentication/user`, `serviceaccount`).
const SYSTEM_MASTERS: &str = "system:masters";
const ALL_AUTHENTICATED: &str = "system:authenticated";
const ALL_UNAUTHENTICATED: &str = "system:unauthenticated";
const NODES_GROUP: &str = "system:nodes";
const ALL_SERVICE_ACCOUNTS: &str = "system:serviceaccounts";
const KUBE_CONTROLLER_MANAGER: &str = "system:kube-controller-manager";
const KUBE_SCHEDULER: &str = "system:kube-scheduler";

/// How a priority level limits requests.
#[derive(Clone, Copy)]
enum Level {
    /// `type: Exempt` with `exempt: {nominalConcurrencyShares, lendablePercent}`.
    Exempt { shares: i64, lendable: i64 },
    /// `type: Limited`; `queuing` is `(queues, handSize, queueLengthLimit)` for `Queue`, `None` for
    /// `Reject`.
    Limited { shares: i64, lendable: i64, queuing: Option<(i64, i64, i64)> },
}

struct PriorityLevel {
    name: &'static str,
    level: Level,
}

const fn limited(name: &'static str, shares: i64, lendable: i64, queuing: (i64, i64, i64)) -> PriorityLevel {
    PriorityLevel { name, level: Level::Limited { shares, lendable, queuing: Some(queuing) } }
}

/// `SuggestedPriorityLevelConfigurations`, in upstream's order.
const SUGGESTED_PRIORITY_LEVELS: &[PriorityLevel] = &[
    limited("system", 30, 33, (64, 6, 50)),
    limited("node-high", 40, 25, (64, 6, 50)),
    limited("leader-election", 10, 0, (16, 4, 50)),
    limited("workload-high", 40, 50, (128, 6, 50)),
    limited("workload-low", 100, 90, (128, 6, 50)),
    limited("global-default", 20, 50, (128, 6, 50)),
];

/// `MandatoryPriorityLevelConfigurations`, in upstream's order.
const MANDATORY_PRIORITY_LEVELS: &[PriorityLevel] = &[
    PriorityLevel { name: "catch-all", level: Level::Limited { shares: 5, lendable: 0, queuing: None } },
    PriorityLevel { name: "exempt", level: Level::Exempt { shares: 0, lendable: 0 } },
];

/// A FlowSchema subject.
#[derive(Clone, Copy)]
enum Subject {
    User(&'static str),
    Group(&'static str),
    /// A ServiceAccount in `kube-system` (`*` = every one).
    KubeSystemServiceAccount(&'static str),
}

/// A `ResourcePolicyRule`.
struct ResourceRule {
    verbs: &'static [&'static str],
    api_groups: &'static [&'static str],
    resources: &'static [&'static str],
    cluster_scope: bool,
    namespaces: &'static [&'static str],
}

/// A `NonResourcePolicyRule`.
struct NonResourceRule {
    verbs: &'static [&'static str],
    urls: &'static [&'static str],
}

/// A FlowSchema with its single `PolicyRulesWithSubjects` (every bootstrap schema has one).
struct Schema {
    name: &'static str,
    priority_level: &'static str,
    precedence: i64,
    /// `ByUser` / `ByNamespace`; `None` = no `distinguisherMethod`.
    distinguisher: Option<&'static str>,
    subjects: &'static [Subject],
    resource_rules: &'static [ResourceRule],
    non_resource_rules: &'static [NonResourceRule],
}

const STAR: &[&str] = &["*"];
const GET_CREATE_UPDATE: &[&str] = &["get", "create", "update"];

/// Every verb, group, resource and namespace, cluster scope included.
const ALL_RESOURCES: &[ResourceRule] =
    &[ResourceRule { verbs: STAR, api_groups: STAR, resources: STAR, cluster_scope: true, namespaces: STAR }];

/// Every verb on every non-resource URL.
const ALL_NON_RESOURCES: &[NonResourceRule] = &[NonResourceRule { verbs: STAR, urls: STAR }];

const EVERYONE: &[Subject] = &[Subject::Group(ALL_UNAUTHENTICATED), Subject::Group(ALL_AUTHENTICATED)];

const LEASES_GET_CREATE_UPDATE: ResourceRule = ResourceRule {
    verbs: GET_CREATE_UPDATE,
    api_groups: &["coordination.k8s.io"],
    resources: &["leases"],
    cluster_scope: false,
    namespaces: STAR,
};

/// A schema that matches the subjects regardless of verb and target.
const fn match_all(
    name: &'static str,
    priority_level: &'static str,
    precedence: i64,
    distinguisher: Option<&'static str>,
    subjects: &'static [Subject],
) -> Schema {
    Schema {
        name,
        priority_level,
        precedence,
        distinguisher,
        subjects,
        resource_rules: ALL_RESOURCES,
        non_resource_rules: ALL_NON_RESOURCES,
    }
}

/// `SuggestedFlowSchemas`, in upstream's order.
const SUGGESTED_FLOW_SCHEMAS: &[Schema] = &[
    match_all("system-nodes", "system", 500, Some("ByUser"), &[Subject::Group(NODES_GROUP)]),
    Schema {
        name: "system-node-high",
        priority_level: "node-high",
        precedence: 400,
        distinguisher: Some("ByUser"),
        subjects: &[Subject::Group(NODES_GROUP)],
        resource_rules: &[
            ResourceRule {
                verbs: STAR,
                api_groups: &[""],
                resources: &["nodes", "nodes/status"],
                cluster_scope: true,
                namespaces: STAR,
            },
            ResourceRule {
                verbs: STAR,
                api_groups: &["coordination.k8s.io"],
                resources: &["leases"],
                cluster_scope: false,
                namespaces: STAR,
            },
        ],
        non_resource_rules: &[],
    },
    Schema {
        name: "probes",
        priority_level: "exempt",
        precedence: 2,
        distinguisher: None,
        subjects: EVERYONE,
        resource_rules: &[],
        non_resource_rules: &[NonResourceRule { verbs: &["get"], urls: &["/healthz", "/readyz", "/livez"] }],
    },
    Schema {
        name: "system-leader-election",
        priority_level: "leader-election",
        precedence: 100,
        distinguisher: Some("ByUser"),
        subjects: &[
            Subject::User(KUBE_CONTROLLER_MANAGER),
            Subject::User(KUBE_SCHEDULER),
            Subject::KubeSystemServiceAccount("*"),
        ],
        resource_rules: &[LEASES_GET_CREATE_UPDATE],
        non_resource_rules: &[],
    },
    Schema {
        name: "workload-leader-election",
        priority_level: "leader-election",
        precedence: 200,
        distinguisher: Some("ByUser"),
        subjects: &[Subject::KubeSystemServiceAccount("*")],
        resource_rules: &[
            ResourceRule {
                verbs: GET_CREATE_UPDATE,
                api_groups: &[""],
                resources: &["endpoints", "configmaps"],
                cluster_scope: false,
                namespaces: STAR,
            },
            LEASES_GET_CREATE_UPDATE,
        ],
        non_resource_rules: &[],
    },
    Schema {
        name: "endpoint-controller",
        priority_level: "workload-high",
        precedence: 150,
        distinguisher: Some("ByUser"),
        subjects: &[
            Subject::User(KUBE_CONTROLLER_MANAGER),
            Subject::KubeSystemServiceAccount("endpoint-controller"),
            Subject::KubeSystemServiceAccount("endpointslicemirroring-controller"),
        ],
        resource_rules: &[ResourceRule {
            verbs: GET_CREATE_UPDATE,
            api_groups: &[""],
            resources: &["endpoints"],
            cluster_scope: false,
            namespaces: STAR,
        }],
        non_resource_rules: &[],
    },
    match_all("kube-controller-manager", "workload-high", 800, Some("ByNamespace"), &[Subject::User(KUBE_CONTROLLER_MANAGER)]),
    match_all("kube-scheduler", "workload-high", 800, Some("ByNamespace"), &[Subject::User(KUBE_SCHEDULER)]),
    match_all(
        "kube-system-service-accounts",
        "workload-high",
        900,
        Some("ByNamespace"),
        &[Subject::KubeSystemServiceAccount("*")],
    ),
    match_all("service-accounts", "workload-low", 9000, Some("ByUser"), &[Subject::Group(ALL_SERVICE_ACCOUNTS)]),
    match_all("global-default", "global-default", 9900, Some("ByUser"), EVERYONE),
];

/// `MandatoryFlowSchemas`, in upstream's order.
const MANDATORY_FLOW_SCHEMAS: &[Schema] = &[
    match_all("exempt", "exempt", 1, None, &[Subject::Group(SYSTEM_MASTERS)]),
    match_all("catch-all", "catch-all", 10000, Some("ByUser"), EVERYONE),
];

fn strings(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|s| Value::String((*s).to_owned())).collect())
}

fn apf_metadata(name: &str) -> Value {
    json!({"name": name, "annotations": {APF_AUTOUPDATE_ANNOTATION: "true"}})
}

fn priority_level_json(pl: &PriorityLevel) -> Value {
    let spec = match pl.level {
        Level::Exempt { shares, lendable } => json!({
            "type": "Exempt",
            "exempt": {"nominalConcurrencyShares": shares, "lendablePercent": lendable},
        }),
        Level::Limited { shares, lendable, queuing } => {
            let limit_response = match queuing {
                Some((queues, hand_size, queue_length_limit)) => json!({
                    "type": "Queue",
                    "queuing": {"queues": queues, "handSize": hand_size, "queueLengthLimit": queue_length_limit},
                }),
                None => json!({"type": "Reject"}),
            };
            json!({
                "type": "Limited",
                "limited": {
                    "nominalConcurrencyShares": shares,
                    "limitResponse": limit_response,
                    "lendablePercent": lendable,
                },
            })
        }
    };
    json!({
        "kind": "PriorityLevelConfiguration",
        "apiVersion": FLOWCONTROL_API_VERSION,
        "metadata": apf_metadata(pl.name),
        "spec": spec,
        "status": {},
    })
}

fn subject_json(subject: Subject) -> Value {
    match subject {
        Subject::User(name) => json!({"kind": "User", "user": {"name": name}}),
        Subject::Group(name) => json!({"kind": "Group", "group": {"name": name}}),
        Subject::KubeSystemServiceAccount(name) => {
            json!({"kind": "ServiceAccount", "serviceAccount": {"namespace": "kube-system", "name": name}})
        }
    }
}

fn resource_rule_json(rule: &ResourceRule) -> Value {
    let mut m = Map::new();
    m.insert("verbs".into(), strings(rule.verbs));
    m.insert("apiGroups".into(), strings(rule.api_groups));
    m.insert("resources".into(), strings(rule.resources));
    if rule.cluster_scope {
        m.insert("clusterScope".into(), Value::Bool(true));
    }
    m.insert("namespaces".into(), strings(rule.namespaces));
    Value::Object(m)
}

fn flow_schema_json(fs: &Schema) -> Value {
    let mut rule = Map::new();
    rule.insert("subjects".into(), Value::Array(fs.subjects.iter().map(|s| subject_json(*s)).collect()));
    if !fs.resource_rules.is_empty() {
        rule.insert("resourceRules".into(), Value::Array(fs.resource_rules.iter().map(resource_rule_json).collect()));
    }
    if !fs.non_resource_rules.is_empty() {
        rule.insert(
            "nonResourceRules".into(),
            Value::Array(
                fs.non_resource_rules
                    .iter()
                    .map(|r| json!({"verbs": strings(r.verbs), "nonResourceURLs": strings(r.urls)}))
                    .collect(),
            ),
        );
    }
    let mut spec = Map::new();
    spec.insert("priorityLevelConfiguration".into(), json!({"name": fs.priority_level}));
    spec.insert("matchingPrecedence".into(), json!(fs.precedence));
    if let Some(dm) = fs.distinguisher {
        spec.insert("distinguisherMethod".into(), json!({"type": dm}));
    }
    spec.insert("rules".into(), Value::Array(vec![Value::Object(rule)]));
    json!({
        "kind": "FlowSchema",
        "apiVersion": FLOWCONTROL_API_VERSION,
        "metadata": apf_metadata(fs.name),
        "spec": Value::Object(spec),
        "status": {},
    })
}

/// The 8 bootstrap `PriorityLevelConfiguration`s: suggested (system, node-high, leader-election,
/// workload-high, workload-low, global-default) then mandatory (catch-all, exempt).
pub fn priority_level_configurations() -> Vec<Value> {
    SUGGESTED_PRIORITY_LEVELS.iter().chain(MANDATORY_PRIORITY_LEVELS).map(priority_level_json).collect()
}

/// The 13 bootstrap `FlowSchema`s: suggested then mandatory (exempt, catch-all), each in upstream's
/// order.
pub fn flow_schemas() -> Vec<Value> {
    SUGGESTED_FLOW_SCHEMAS.iter().chain(MANDATORY_FLOW_SCHEMAS).map(flow_schema_json).collect()
}

/// Every APF bootstrap object (21), in the order upstream's ensurer creates them: suggested
/// priority levels, suggested flow schemas, mandatory priority levels, mandatory flow schemas.
/// (Lists come back sorted by name regardless.)
pub fn flowcontrol_objects() -> Vec<Value> {
    let mut out = Vec::with_capacity(21);
    out.extend(SUGGESTED_PRIORITY_LEVELS.iter().map(priority_level_json));
    out.extend(SUGGESTED_FLOW_SCHEMAS.iter().map(flow_schema_json));
    out.extend(MANDATORY_PRIORITY_LEVELS.iter().map(priority_level_json));
    out.extend(MANDATORY_FLOW_SCHEMAS.iter().map(flow_schema_json));
    out
}

/// The `status` the APF controller writes into a FlowSchema shortly after start: one `Dangling`
/// condition, `False`/`Found` when the referenced priority level exists, `True`/`NotFound` when
/// it does not. `last_transition_time` is RFC 3339 (`2025-01-01T00:00:00Z`).
pub fn flowschema_status(priority_level: &str, exists: bool, last_transition_time: &str) -> Value {
    let (status, reason, message) = if exists {
        (
            "False",
            "Found",
            format!("This FlowSchema references the PriorityLevelConfiguration object named {priority_level:?} and it exists"),
        )
    } else {
        (
            "True",
            "NotFound",
            format!(
                "This FlowSchema references the PriorityLevelConfiguration object named {priority_level:?} but there is no such object"
            ),
        )
    };
    json!({"conditions": [{
        "type": "Dangling",
        "status": status,
        "lastTransitionTime": last_transition_time,
        "reason": reason,
        "message": message,
    }]})
}

// ---------------------------------------------------------------------------------------------
// Local APIServices
// ---------------------------------------------------------------------------------------------

/// `(group, version, groupPriorityMinimum, versionPriority)`: upstream's generic table merged with
/// the kube-apiserver table (kube entries win, e.g. `resource.k8s.io/v1alpha3`).
const API_VERSION_PRIORITIES: &[(&str, &str, i64, i64)] = &[
    ("", "v1", 18000, 1),
    ("apps", "v1", 17800, 15),
    ("events.k8s.io", "v1", 17750, 15),
    ("events.k8s.io", "v1beta1", 17750, 5),
    ("authentication.k8s.io", "v1", 17700, 15),
    ("authentication.k8s.io", "v1beta1", 17700, 9),
    ("authentication.k8s.io", "v1alpha1", 17700, 1),
    ("authorization.k8s.io", "v1", 17600, 15),
    ("autoscaling", "v1", 17500, 15),
    ("autoscaling", "v2", 17500, 30),
    ("autoscaling", "v2beta1", 17500, 9),
    ("autoscaling", "v2beta2", 17500, 1),
    ("batch", "v1", 17400, 15),
    ("batch", "v1beta1", 17400, 9),
    ("batch", "v2alpha1", 17400, 9),
    ("certificates.k8s.io", "v1", 17300, 15),
    ("certificates.k8s.io", "v1beta1", 17300, 9),
    ("certificates.k8s.io", "v1alpha1", 17300, 1),
    ("networking.k8s.io", "v1", 17200, 15),
    ("networking.k8s.io", "v1beta1", 17200, 9),
    ("policy", "v1", 17100, 15),
    ("policy", "v1beta1", 17100, 9),
    ("rbac.authorization.k8s.io", "v1", 17000, 15),
    ("storage.k8s.io", "v1", 16800, 15),
    ("storage.k8s.io", "v1beta1", 16800, 9),
    ("storage.k8s.io", "v1alpha1", 16800, 1),
    ("apiextensions.k8s.io", "v1", 16700, 15),
    ("admissionregistration.k8s.io", "v1", 16700, 15),
    ("admissionregistration.k8s.io", "v1beta1", 16700, 12),
    ("admissionregistration.k8s.io", "v1alpha1", 16700, 9),
    ("scheduling.k8s.io", "v1", 16600, 15),
    ("coordination.k8s.io", "v1", 16500, 15),
    ("coordination.k8s.io", "v1beta1", 16500, 13),
    ("coordination.k8s.io", "v1alpha2", 16500, 12),
    ("node.k8s.io", "v1", 16300, 15),
    ("node.k8s.io", "v1beta1", 16300, 9),
    ("node.k8s.io", "v1alpha1", 16300, 1),
    ("discovery.k8s.io", "v1", 16200, 15),
    ("discovery.k8s.io", "v1beta1", 16200, 12),
    ("resource.k8s.io", "v1beta2", 16200, 15),
    ("resource.k8s.io", "v1beta1", 16200, 9),
    ("resource.k8s.io", "v1alpha3", 16200, 1),
    ("flowcontrol.apiserver.k8s.io", "v1", 16100, 21),
    ("flowcontrol.apiserver.k8s.io", "v1beta3", 16100, 18),
    ("flowcontrol.apiserver.k8s.io", "v1beta2", 16100, 15),
    ("flowcontrol.apiserver.k8s.io", "v1beta1", 16100, 12),
    ("flowcontrol.apiserver.k8s.io", "v1alpha1", 16100, 9),
    ("internal.apiserver.k8s.io", "v1alpha1", 16000, 9),
    ("storagemigration.k8s.io", "v1alpha1", 15800, 9),
];

/// `(groupPriorityMinimum, versionPriority)` upstream gives a built-in group-version (`""` is the
/// core group), or `None` when it is not in the table: upstream then creates no APIService for it
/// (`makeAPIService` returns nil). These also order groups and versions in discovery.
pub fn group_priority(group: &str, version: &str) -> Option<(i64, i64)> {
    API_VERSION_PRIORITIES.iter().find(|(g, v, _, _)| *g == group && *v == version).map(|(_, _, gp, vp)| (*gp, *vp))
}

/// `metadata.name` of the APIService for a group-version: `<version>.<group>` (`v1.` for core).
pub fn apiservice_name(group: &str, version: &str) -> String {
    format!("{version}.{group}")
}

/// The `Available` condition of a local APIService; `lastTransitionTime` is left out when `None`
/// (upstream always sets it to the time the condition was first written).
pub fn local_available_condition(last_transition_time: Option<&str>) -> Value {
    let mut c = Map::new();
    c.insert("type".into(), json!("Available"));
    c.insert("status".into(), json!("True"));
    if let Some(t) = last_transition_time {
        c.insert("lastTransitionTime".into(), json!(t));
    }
    c.insert("reason".into(), json!("Local"));
    c.insert("message".into(), json!("Local APIServices are always available"));
    Value::Object(c)
}

/// The local APIService upstream registers on start for a served group-version, with its status
/// condition's `lastTransitionTime` (RFC 3339) when given. `None` for group-versions upstream has
/// no priority for.
pub fn local_apiservice(group: &str, version: &str, last_transition_time: Option<&str>) -> Option<Value> {
    let (group_priority_minimum, version_priority) = group_priority(group, version)?;
    let mut spec = Map::new();
    if !group.is_empty() {
        spec.insert("group".into(), json!(group));
    }
    spec.insert("version".into(), json!(version));
    spec.insert("groupPriorityMinimum".into(), json!(group_priority_minimum));
    spec.insert("versionPriority".into(), json!(version_priority));
    Some(json!({
        "kind": "APIService",
        "apiVersion": APIREGISTRATION_API_VERSION,
        "metadata": {
            "name": apiservice_name(group, version),
            "labels": {AUTOMANAGED_LABEL: AUTOMANAGED_ON_START},
        },
        "spec": Value::Object(spec),
        "status": {"conditions": [local_available_condition(last_transition_time)]},
    }))
}

/// The local APIService for a served group-version (`""` = core → `v1.`), without
/// `lastTransitionTime` on its condition (set it to the creation time to match upstream).
/// `Value::Null` when upstream's table has no entry for the group-version, since upstream then
/// creates none.
pub fn apiservice_for(group: &str, version: &str) -> Value {
    local_apiservice(group, version, None).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_name<'a>(objs: &'a [Value], kind: &str, name: &str) -> &'a Value {
        objs.iter().find(|o| o["kind"] == kind && o["metadata"]["name"] == name).unwrap_or(&Value::Null)
    }

    #[test]
    fn counts() {
        let all = flowcontrol_objects();
        assert_eq!(all.len(), 21);
        assert_eq!(all.iter().filter(|o| o["kind"] == "PriorityLevelConfiguration").count(), 8);
        assert_eq!(all.iter().filter(|o| o["kind"] == "FlowSchema").count(), 13);
        assert_eq!(priority_level_configurations().len(), 8);
        assert_eq!(flow_schemas().len(), 13);
        let mut names: Vec<String> =
            all.iter().map(|o| format!("{}/{}", o["kind"], o["metadata"]["name"].as_str().unwrap_or(""))).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 21);
    }

    #[test]
    fn names_are_upstreams() {
        let pls: Vec<String> =
            priority_level_configurations().iter().filter_map(|o| o["metadata"]["name"].as_str().map(str::to_owned)).collect();
        assert_eq!(
            pls,
            ["system", "node-high", "leader-election", "workload-high", "workload-low", "global-default", "catch-all", "exempt"]
        );
        let mut fss: Vec<String> =
            flow_schemas().iter().filter_map(|o| o["metadata"]["name"].as_str().map(str::to_owned)).collect();
        fss.sort();
        assert_eq!(
            fss,
            [
                "catch-all",
                "endpoint-controller",
                "exempt",
                "global-default",
                "kube-controller-manager",
                "kube-scheduler",
                "kube-system-service-accounts",
                "probes",
                "service-accounts",
                "system-leader-election",
                "system-node-high",
                "system-nodes",
                "workload-leader-election",
            ]
        );
    }

    #[test]
    fn every_object_has_the_autoupdate_annotation_and_v1() {
        for o in flowcontrol_objects() {
            assert_eq!(o["apiVersion"], "flowcontrol.apiserver.k8s.io/v1", "{o}");
            assert_eq!(o["metadata"]["annotations"][APF_AUTOUPDATE_ANNOTATION], "true", "{o}");
            assert_eq!(o["status"], json!({}), "{o}");
        }
    }

    #[test]
    fn exempt_priority_level() {
        let all = flowcontrol_objects();
        let pl = by_name(&all, "PriorityLevelConfiguration", "exempt");
        assert_eq!(pl["spec"], json!({"type": "Exempt", "exempt": {"nominalConcurrencyShares": 0, "lendablePercent": 0}}));
    }

    #[test]
    fn limited_priority_levels() {
        let all = flowcontrol_objects();
        assert_eq!(
            by_name(&all, "PriorityLevelConfiguration", "catch-all")["spec"],
            json!({"type": "Limited", "limited": {"nominalConcurrencyShares": 5, "limitResponse": {"type": "Reject"}, "lendablePercent": 0}})
        );
        assert_eq!(
            by_name(&all, "PriorityLevelConfiguration", "workload-low")["spec"],
            json!({"type": "Limited", "limited": {
                "nominalConcurrencyShares": 100,
                "limitResponse": {"type": "Queue", "queuing": {"queues": 128, "handSize": 6, "queueLengthLimit": 50}},
                "lendablePercent": 90,
            }})
        );
        let le = &by_name(&all, "PriorityLevelConfiguration", "leader-election")["spec"]["limited"];
        assert_eq!(le["nominalConcurrencyShares"], 10);
        assert_eq!(le["limitResponse"]["queuing"], json!({"queues": 16, "handSize": 4, "queueLengthLimit": 50}));
        assert_eq!(by_name(&all, "PriorityLevelConfiguration", "system")["spec"]["limited"]["lendablePercent"], 33);
        assert_eq!(by_name(&all, "PriorityLevelConfiguration", "node-high")["spec"]["limited"]["lendablePercent"], 25);
        for o in priority_level_configurations() {
            assert!(o["spec"]["limited"].get("borrowingLimitPercent").is_none(), "{o}");
        }
    }

    #[test]
    fn catch_all_and_exempt_flow_schemas() {
        let all = flowcontrol_objects();
        let ca = by_name(&all, "FlowSchema", "catch-all");
        assert_eq!(ca["spec"]["matchingPrecedence"], 10000);
        assert_eq!(ca["spec"]["priorityLevelConfiguration"]["name"], "catch-all");
        assert_eq!(ca["spec"]["distinguisherMethod"]["type"], "ByUser");
        assert_eq!(
            ca["spec"]["rules"],
            json!([{
                "subjects": [
                    {"kind": "Group", "group": {"name": "system:unauthenticated"}},
                    {"kind": "Group", "group": {"name": "system:authenticated"}},
                ],
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "clusterScope": true, "namespaces": ["*"]}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            }])
        );
        let ex = by_name(&all, "FlowSchema", "exempt");
        assert_eq!(ex["spec"]["matchingPrecedence"], 1);
        assert!(ex["spec"].get("distinguisherMethod").is_none());
        assert_eq!(ex["spec"]["rules"][0]["subjects"], json!([{"kind": "Group", "group": {"name": "system:masters"}}]));
    }

    #[test]
    fn narrow_flow_schemas() {
        let all = flowcontrol_objects();
        let probes = by_name(&all, "FlowSchema", "probes");
        assert_eq!(probes["spec"]["matchingPrecedence"], 2);
        assert_eq!(probes["spec"]["priorityLevelConfiguration"]["name"], "exempt");
        assert!(probes["spec"]["rules"][0].get("resourceRules").is_none());
        assert_eq!(
            probes["spec"]["rules"][0]["nonResourceRules"],
            json!([{"verbs": ["get"], "nonResourceURLs": ["/healthz", "/readyz", "/livez"]}])
        );

        let ep = by_name(&all, "FlowSchema", "endpoint-controller");
        assert_eq!(ep["spec"]["matchingPrecedence"], 150);
        assert_eq!(
            ep["spec"]["rules"][0]["subjects"],
            json!([
                {"kind": "User", "user": {"name": "system:kube-controller-manager"}},
                {"kind": "ServiceAccount", "serviceAccount": {"namespace": "kube-system", "name": "endpoint-controller"}},
                {"kind": "ServiceAccount", "serviceAccount": {"namespace": "kube-system", "name": "endpointslicemirroring-controller"}},
            ])
        );
        assert_eq!(
            ep["spec"]["rules"][0]["resourceRules"],
            json!([{"verbs": ["get", "create", "update"], "apiGroups": [""], "resources": ["endpoints"], "namespaces": ["*"]}])
        );

        let sle = by_name(&all, "FlowSchema", "system-leader-election");
        assert_eq!(sle["spec"]["rules"][0]["resourceRules"].as_array().map(Vec::len), Some(1));
        assert_eq!(sle["spec"]["rules"][0]["resourceRules"][0]["resources"], json!(["leases"]));

        let snh = by_name(&all, "FlowSchema", "system-node-high");
        assert_eq!(snh["spec"]["rules"][0]["resourceRules"][0]["clusterScope"], true);
        assert!(snh["spec"]["rules"][0]["resourceRules"][1].get("clusterScope").is_none());
        assert!(snh["spec"]["rules"][0].get("nonResourceRules").is_none());

        assert_eq!(by_name(&all, "FlowSchema", "kube-scheduler")["spec"]["distinguisherMethod"]["type"], "ByNamespace");
        assert_eq!(by_name(&all, "FlowSchema", "service-accounts")["spec"]["matchingPrecedence"], 9000);
        assert_eq!(by_name(&all, "FlowSchema", "global-default")["spec"]["matchingPrecedence"], 9900);
    }

    #[test]
    fn every_flow_schema_references_a_bootstrap_priority_level() {
        let all = flowcontrol_objects();
        for fs in all.iter().filter(|o| o["kind"] == "FlowSchema") {
            let pl = fs["spec"]["priorityLevelConfiguration"]["name"].as_str().unwrap_or("");
            assert!(!by_name(&all, "PriorityLevelConfiguration", pl).is_null(), "{fs}");
        }
    }

    #[test]
    fn creation_order_is_the_ensurers() {
        let all = flowcontrol_objects();
        assert_eq!(all[0]["metadata"]["name"], "system");
        assert_eq!(all[6]["kind"], "FlowSchema");
        assert_eq!(all[6]["metadata"]["name"], "system-nodes");
        assert_eq!(all[17]["metadata"]["name"], "catch-all");
        assert_eq!(all[17]["kind"], "PriorityLevelConfiguration");
        assert_eq!(all[20]["metadata"]["name"], "catch-all");
        assert_eq!(all[20]["kind"], "FlowSchema");
    }

    #[test]
    fn dangling_condition() {
        let s = flowschema_status("exempt", true, "2025-01-01T00:00:00Z");
        assert_eq!(
            s,
            json!({"conditions": [{
                "type": "Dangling",
                "status": "False",
                "lastTransitionTime": "2025-01-01T00:00:00Z",
                "reason": "Found",
                "message": "This FlowSchema references the PriorityLevelConfiguration object named \"exempt\" and it exists",
            }]})
        );
        let s = flowschema_status("gone", false, "2025-01-01T00:00:00Z");
        assert_eq!(s["conditions"][0]["status"], "True");
        assert_eq!(s["conditions"][0]["reason"], "NotFound");
    }

    #[test]
    fn apps_apiservice() {
        let a = apiservice_for("apps", "v1");
        assert_eq!(a["kind"], "APIService");
        assert_eq!(a["apiVersion"], "apiregistration.k8s.io/v1");
        assert_eq!(a["metadata"]["name"], "v1.apps");
        assert_eq!(a["metadata"]["labels"][AUTOMANAGED_LABEL], "onstart");
        assert_eq!(a["spec"], json!({"group": "apps", "version": "v1", "groupPriorityMinimum": 17800, "versionPriority": 15}));
        assert!(a["spec"].get("service").is_none());
        assert_eq!(
            a["status"]["conditions"],
            json!([{"type": "Available", "status": "True", "reason": "Local", "message": "Local APIServices are always available"}])
        );
    }

    #[test]
    fn core_and_other_apiservices() {
        let core = apiservice_for("", "v1");
        assert_eq!(core["metadata"]["name"], "v1.");
        assert_eq!(core["spec"], json!({"version": "v1", "groupPriorityMinimum": 18000, "versionPriority": 1}));
        assert_eq!(apiservice_for("autoscaling", "v2")["metadata"]["name"], "v2.autoscaling");
        assert_eq!(group_priority("autoscaling", "v2"), Some((17500, 30)));
        assert_eq!(group_priority("flowcontrol.apiserver.k8s.io", "v1"), Some((16100, 21)));
        assert_eq!(group_priority("resource.k8s.io", "v1alpha3"), Some((16200, 1)));
        assert_eq!(group_priority("apiextensions.k8s.io", "v1"), Some((16700, 15)));
        assert_eq!(group_priority("example.com", "v1"), None);
        assert!(apiservice_for("example.com", "v1").is_null());
        let timed = local_apiservice("batch", "v1", Some("2025-01-01T00:00:00Z"));
        assert_eq!(
            timed.as_ref().map(|a| a["status"]["conditions"][0]["lastTransitionTime"].clone()),
            Some(json!("2025-01-01T00:00:00Z"))
        );
    }

    /// `Value` equality ignores key order; the wire order follows the Go structs' field order.
    #[test]
    fn keys_are_in_go_field_order() {
        let all = flowcontrol_objects();
        assert_eq!(
            by_name(&all, "PriorityLevelConfiguration", "leader-election").to_string(),
            r#"{"kind":"PriorityLevelConfiguration","apiVersion":"flowcontrol.apiserver.k8s.io/v1","metadata":{"name":"leader-election","annotations":{"apf.kubernetes.io/autoupdate-spec":"true"}},"spec":{"type":"Limited","limited":{"nominalConcurrencyShares":10,"limitResponse":{"type":"Queue","queuing":{"queues":16,"handSize":4,"queueLengthLimit":50}},"lendablePercent":0}},"status":{}}"#
        );
        assert_eq!(
            by_name(&all, "FlowSchema", "endpoint-controller")["spec"].to_string(),
            r#"{"priorityLevelConfiguration":{"name":"workload-high"},"matchingPrecedence":150,"distinguisherMethod":{"type":"ByUser"},"rules":[{"subjects":[{"kind":"User","user":{"name":"system:kube-controller-manager"}},{"kind":"ServiceAccount","serviceAccount":{"namespace":"kube-system","name":"endpoint-controller"}},{"kind":"ServiceAccount","serviceAccount":{"namespace":"kube-system","name":"endpointslicemirroring-controller"}}],"resourceRules":[{"verbs":["get","create","update"],"apiGroups":[""],"resources":["endpoints"],"namespaces":["*"]}]}]}"#
        );
        assert_eq!(
            by_name(&all, "FlowSchema", "global-default")["spec"]["rules"][0]["resourceRules"][0].to_string(),
            r#"{"verbs":["*"],"apiGroups":["*"],"resources":["*"],"clusterScope":true,"namespaces":["*"]}"#
        );
        assert_eq!(
            local_apiservice("apps", "v1", Some("2025-01-01T00:00:00Z")).unwrap_or_default().to_string(),
            r#"{"kind":"APIService","apiVersion":"apiregistration.k8s.io/v1","metadata":{"name":"v1.apps","labels":{"kube-aggregator.kubernetes.io/automanaged":"onstart"}},"spec":{"group":"apps","version":"v1","groupPriorityMinimum":17800,"versionPriority":15},"status":{"conditions":[{"type":"Available","status":"True","lastTransitionTime":"2025-01-01T00:00:00Z","reason":"Local","message":"Local APIServices are always available"}]}}"#
        );
    }

    #[test]
    fn priority_table_has_no_duplicates() {
        for (i, (g, v, _, _)) in API_VERSION_PRIORITIES.iter().enumerate() {
            assert!(!API_VERSION_PRIORITIES[i + 1..].iter().any(|(g2, v2, _, _)| g2 == g && v2 == v), "{g}/{v}");
        }
    }
}
