//! Cluster-level and policy kinds: disruption budgets, autoscalers, certificate signing
//! requests, leases, priority and runtime classes, API priority and fairness, and APIServices
//! (whose table kube-aggregator's registry builds).

use std::cmp::Ordering;

use serde_json::{Value, json};

use crate::duration::human;
use crate::format::{at, int, int_or_string, list, opt_flag, opt_int, opt_text, quantity, text};
use crate::{
    AGE,
    CellType::{Boolean as Bool, Integer as Int, String as Str},
    Ctx, NAME, Printer, Row, col, descriptions as d, printer,
};

pub(crate) static POD_DISRUPTION_BUDGET: Printer = printer(
    &[
        NAME,
        col(
            "Min Available",
            Str,
            "The minimum number of pods that must be available.",
        ),
        col(
            "Max Unavailable",
            Str,
            "The maximum number of pods that may be unavailable.",
        ),
        col(
            "Allowed Disruptions",
            Int,
            "Calculated number of pods that may be disrupted at this time.",
        ),
        AGE,
    ],
    print_pod_disruption_budget,
);

pub(crate) static HORIZONTAL_POD_AUTOSCALER: Printer = printer(
    &[
        NAME,
        col("Reference", Str, d::HPA_SPEC_SCALE_TARGET_REF),
        col("Targets", Str, d::HPA_SPEC_METRICS),
        col("MinPods", Str, d::HPA_SPEC_MIN_REPLICAS),
        col("MaxPods", Str, d::HPA_SPEC_MAX_REPLICAS),
        col("Replicas", Str, d::HPA_STATUS_CURRENT_REPLICAS),
        AGE,
    ],
    print_horizontal_pod_autoscaler,
);

pub(crate) static CERTIFICATE_SIGNING_REQUEST: Printer = printer(
    &[
        NAME,
        AGE,
        col("SignerName", Str, d::CSR_SPEC_SIGNER_NAME),
        col("Requestor", Str, d::CSR_SPEC_REQUEST),
        col("RequestedDuration", Str, d::CSR_SPEC_EXPIRATION_SECONDS),
        col("Condition", Str, d::CSR_STATUS_CONDITIONS),
    ],
    print_certificate_signing_request,
);

pub(crate) static LEASE: Printer = printer(
    &[NAME, col("Holder", Str, d::LEASE_SPEC_HOLDER_IDENTITY), AGE],
    print_lease,
);

pub(crate) static PRIORITY_CLASS: Printer = printer(
    &[
        NAME,
        col("Value", Int, d::PRIORITY_CLASS_VALUE),
        col("Global-Default", Bool, d::PRIORITY_CLASS_GLOBAL_DEFAULT),
        AGE,
        // Upstream defines this column without priority 1 but only fills it when wide.
        col("PreemptionPolicy", Str, d::PRIORITY_CLASS_PREEMPTION_POLICY),
    ],
    print_priority_class,
);

/// Upstream reads ObjectMeta's documentation of a "handler" field, which has none: "".
pub(crate) static RUNTIME_CLASS: Printer =
    printer(&[NAME, col("Handler", Str, ""), AGE], print_runtime_class);

pub(crate) static FLOW_SCHEMA: Printer = Printer {
    columns: &[
        NAME,
        col("PriorityLevel", Str, d::FLOW_SCHEMA_PL_NAME),
        col(
            "MatchingPrecedence",
            Str,
            d::FLOW_SCHEMA_MATCHING_PRECEDENCE,
        ),
        col("DistinguisherMethod", Str, d::FLOW_SCHEMA_DISTINGUISHER),
        AGE,
        col(
            "MissingPL",
            Str,
            "references a broken or non-existent PriorityLevelConfiguration",
        ),
    ],
    print: print_flow_schema,
    order: Some(flow_schema_order),
};

pub(crate) static PRIORITY_LEVEL_CONFIGURATION: Printer = printer(
    &[
        NAME,
        col("Type", Str, d::PLC_SPEC_TYPE),
        col("NominalConcurrencyShares", Str, d::PLC_NOMINAL_SHARES),
        col("Queues", Str, d::PLC_QUEUES),
        col("HandSize", Str, d::PLC_HAND_SIZE),
        col("QueueLengthLimit", Str, d::PLC_QUEUE_LENGTH_LIMIT),
        AGE,
    ],
    print_priority_level_configuration,
);

pub(crate) static API_SERVICE: Printer = printer(
    &[
        NAME,
        col(
            "Service",
            Str,
            "The reference to the service that hosts this API endpoint.",
        ),
        col("Available", Str, "Whether this service is available."),
        AGE,
    ],
    print_api_service,
);

fn print_pod_disruption_budget(c: &Ctx<'_>) -> Row {
    let o = c.obj;
    let bound = |p: &str| at(o, p).map(int_or_string).unwrap_or_else(|| "N/A".into());
    vec![
        c.name(),
        json!(bound("/spec/minAvailable")),
        json!(bound("/spec/maxUnavailable")),
        json!(int(o, "/status/disruptionsAllowed")),
        c.age(),
    ]
    .into()
}

/// One `current/target` pair of `formatHPAMetrics` for a metric with a value or average target.
fn value_metric(spec: &Value, status: Option<&Value>) -> String {
    if at(spec, "/target/averageValue").is_some() {
        let current = status
            .filter(|s| at(s, "/current/averageValue").is_some())
            .map(|s| quantity(s, "/current/averageValue"))
            .unwrap_or_else(|| "<unknown>".into());
        format!("{current}/{} (avg)", quantity(spec, "/target/averageValue"))
    } else {
        let current = status
            .map(|s| quantity(s, "/current/value"))
            .unwrap_or_else(|| "<unknown>".into());
        format!("{current}/{}", quantity(spec, "/target/value"))
    }
}

/// `name: current/target` of a (container) resource metric.
fn resource_metric(spec: &Value, status: Option<&Value>) -> String {
    let name = text(spec, "/name");
    if at(spec, "/target/averageValue").is_some() {
        let current = status
            .map(|s| quantity(s, "/current/averageValue"))
            .unwrap_or_else(|| "<unknown>".into());
        return format!(
            "{name}: {current}/{}",
            quantity(spec, "/target/averageValue")
        );
    }
    let current = status
        .and_then(|s| opt_int(s, "/current/averageUtilization"))
        .map(|u| format!("{u}%"))
        .unwrap_or_else(|| "<unknown>".into());
    let target = opt_int(spec, "/target/averageUtilization")
        .map(|u| format!("{u}%"))
        .unwrap_or_else(|| "<auto>".into());
    format!("{name}: {current}/{target}")
}

/// `formatHPAMetrics` over autoscaling/v2 metric specs and statuses (matched by index).
fn format_metrics(specs: &[Value], statuses: &[Value]) -> String {
    if specs.is_empty() {
        return "<none>".into();
    }
    const MAX: usize = 2;
    let entries: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let status_of = |field: &str| statuses.get(i).and_then(|s| at(s, &format!("/{field}")));
            match text(spec, "/type") {
                "External" => value_metric(&spec["external"], status_of("external")),
                "Pods" => {
                    let current = status_of("pods")
                        .map(|s| quantity(s, "/current/averageValue"))
                        .unwrap_or_else(|| "<unknown>".into());
                    format!("{current}/{}", quantity(spec, "/pods/target/averageValue"))
                }
                "Object" => value_metric(&spec["object"], status_of("object")),
                "Resource" => resource_metric(&spec["resource"], status_of("resource")),
                "ContainerResource" => {
                    resource_metric(&spec["containerResource"], status_of("containerResource"))
                }
                _ => "<unknown type>".into(),
            }
        })
        .collect();
    let shown = entries
        .iter()
        .take(MAX)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if entries.len() > MAX {
        format!("{shown} + {} more...", entries.len() - MAX)
    } else {
        shown
    }
}

/// The autoscaling/v1 form carries only the CPU utilisation target; read it as the v2 metric.
fn v1_cpu_metric(o: &Value) -> (Vec<Value>, Vec<Value>) {
    let Some(target) = opt_int(o, "/spec/targetCPUUtilizationPercentage") else {
        return (Vec::new(), Vec::new());
    };
    let spec = json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}}});
    let status = match opt_int(o, "/status/currentCPUUtilizationPercentage") {
        Some(current) => vec![
            json!({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": current}}}),
        ],
        None => Vec::new(),
    };
    (vec![spec], status)
}

fn print_horizontal_pod_autoscaler(c: &Ctx<'_>) -> Row {
    let o = c.obj;
    let targets = if at(o, "/spec/metrics").is_some()
        || at(o, "/spec/targetCPUUtilizationPercentage").is_none()
    {
        format_metrics(list(o, "/spec/metrics"), list(o, "/status/currentMetrics"))
    } else {
        let (specs, statuses) = v1_cpu_metric(o);
        format_metrics(&specs, &statuses)
    };
    let reference = format!(
        "{}/{}",
        text(o, "/spec/scaleTargetRef/kind"),
        text(o, "/spec/scaleTargetRef/name")
    );
    let min_pods = opt_int(o, "/spec/minReplicas")
        .map(|n| n.to_string())
        .unwrap_or_else(|| "<unset>".into());
    vec![
        c.name(),
        json!(reference),
        json!(targets),
        json!(min_pods),
        json!(int(o, "/spec/maxReplicas")),
        json!(int(o, "/status/currentReplicas")),
        c.age(),
    ]
    .into()
}

/// `extractCSRStatus`: Denied over Approved over Pending, then Failed and Issued.
fn csr_status(o: &Value) -> String {
    let has = |ty: &str| {
        list(o, "/status/conditions")
            .iter()
            .any(|c| text(c, "/type") == ty)
    };
    let mut status = if has("Denied") {
        "Denied".to_string()
    } else if has("Approved") {
        "Approved".to_string()
    } else {
        "Pending".to_string()
    };
    if has("Failed") {
        status.push_str(",Failed");
    }
    if !text(o, "/status/certificate").is_empty() {
        status.push_str(",Issued");
    }
    status
}

fn print_certificate_signing_request(c: &Ctx<'_>) -> Row {
    let o = c.obj;
    let signer = match text(o, "/spec/signerName") {
        "" => "<none>",
        s => s,
    };
    let requested = opt_int(o, "/spec/expirationSeconds")
        .map(|s| human(s.saturating_mul(1_000_000_000)))
        .unwrap_or_else(|| "<none>".into());
    vec![
        c.name(),
        c.age(),
        json!(signer),
        json!(text(o, "/spec/username")),
        json!(requested),
        json!(csr_status(o)),
    ]
    .into()
}

fn print_lease(c: &Ctx<'_>) -> Row {
    vec![
        c.name(),
        json!(text(c.obj, "/spec/holderIdentity")),
        c.age(),
    ]
    .into()
}

fn print_priority_class(c: &Ctx<'_>) -> Row {
    let o = c.obj;
    vec![
        c.name(),
        json!(int(o, "/value")),
        json!(opt_flag(o, "/globalDefault").unwrap_or(false)),
        c.age(),
        json!(text(o, "/preemptionPolicy")),
    ]
    .into()
}

fn print_runtime_class(c: &Ctx<'_>) -> Row {
    vec![c.name(), json!(text(c.obj, "/handler")), c.age()].into()
}

fn print_flow_schema(c: &Ctx<'_>) -> Row {
    let o = c.obj;
    let distinguisher = opt_text(o, "/spec/distinguisherMethod/type").unwrap_or("<none>");
    let missing_pl = list(o, "/status/conditions")
        .iter()
        .find(|c| text(c, "/type") == "Dangling")
        .map(|c| text(c, "/status"))
        .unwrap_or("?");
    vec![
        c.name(),
        json!(text(o, "/spec/priorityLevelConfiguration/name")),
        json!(int(o, "/spec/matchingPrecedence")),
        json!(distinguisher),
        c.age(),
        json!(missing_pl),
    ]
    .into()
}

/// `FlowSchemaSequence`: by matching precedence, then name.
fn flow_schema_order(a: &Value, b: &Value) -> Ordering {
    int(a, "/spec/matchingPrecedence")
        .cmp(&int(b, "/spec/matchingPrecedence"))
        .then_with(|| text(a, "/metadata/name").cmp(text(b, "/metadata/name")))
}

fn print_priority_level_configuration(c: &Ctx<'_>) -> Row {
    let o = c.obj;
    let none = || json!("<none>");
    let (mut shares, mut queues, mut hand_size, mut queue_length) =
        (none(), none(), none(), none());
    if at(o, "/spec/limited").is_some() {
        shares = json!(int(o, "/spec/limited/nominalConcurrencyShares"));
        if at(o, "/spec/limited/limitResponse/queuing").is_some() {
            queues = json!(int(o, "/spec/limited/limitResponse/queuing/queues"));
            hand_size = json!(int(o, "/spec/limited/limitResponse/queuing/handSize"));
            queue_length = json!(int(
                o,
                "/spec/limited/limitResponse/queuing/queueLengthLimit"
            ));
        }
    }
    vec![
        c.name(),
        json!(text(o, "/spec/type")),
        shares,
        queues,
        hand_size,
        queue_length,
        c.age(),
    ]
    .into()
}

fn print_api_service(c: &Ctx<'_>) -> Row {
    let o = c.obj;
    let service = match at(o, "/spec/service") {
        Some(s) => format!("{}/{}", text(s, "/namespace"), text(s, "/name")),
        None => "Local".into(),
    };
    let available = match list(o, "/status/conditions")
        .iter()
        .find(|c| text(c, "/type") == "Available")
    {
        None => "Unknown".to_string(),
        Some(cond) => match (text(cond, "/status"), text(cond, "/reason")) {
            ("True", _) => "True".to_string(),
            (status, "") => status.to_string(),
            (status, reason) => format!("{status} ({reason})"),
        },
    };
    vec![c.name(), json!(service), json!(available), c.age()].into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ago, texts};

    fn hpa(metrics: Value, current: Value) -> Value {
        json!({"metadata": {"name": "web"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 10, "metrics": metrics}, "status": {"currentReplicas": 2, "currentMetrics": current}})
    }

    fn cpu(target: Value) -> Value {
        json!({"type": "Resource", "resource": {"name": "cpu", "target": target}})
    }

    #[test]
    fn hpa_targets_format_like_1_33() {
        let h = hpa(
            json!([cpu(
                json!({"type": "Utilization", "averageUtilization": 50})
            )]),
            json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 20, "averageValue": "100m"}}}]),
        );
        assert_eq!(
            texts("autoscaling", "HorizontalPodAutoscaler", &h)[..6],
            ["web", "Deployment/web", "cpu: 20%/50%", "1", "10", "2"]
        );
        let unknown = hpa(
            json!([cpu(
                json!({"type": "Utilization", "averageUtilization": 80})
            )]),
            json!([]),
        );
        assert_eq!(
            texts("autoscaling", "HorizontalPodAutoscaler", &unknown)[2],
            "cpu: <unknown>/80%"
        );
        let none = hpa(json!([]), json!([]));
        assert_eq!(
            texts("autoscaling", "HorizontalPodAutoscaler", &none)[2],
            "<none>"
        );
    }

    #[test]
    fn hpa_value_pods_external_and_more() {
        let h = hpa(
            json!([
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "500Mi"}}},
                {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1k"}}},
                {"type": "External", "external": {"metric": {"name": "queue"}, "target": {"type": "Value", "value": "30"}}}
            ]),
            json!([{"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "200Mi"}}}]),
        );
        assert_eq!(
            texts("autoscaling", "HorizontalPodAutoscaler", &h)[2],
            "memory: 200Mi/500Mi, <unknown>/1k + 1 more..."
        );
        let ext = hpa(
            json!([{"type": "External", "external": {"target": {"type": "AverageValue", "averageValue": "5"}}},
                   {"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app", "target": {"type": "Utilization"}}}]),
            json!([]),
        );
        assert_eq!(
            texts("autoscaling", "HorizontalPodAutoscaler", &ext)[2],
            "<unknown>/5 (avg), cpu: <unknown>/<auto>"
        );
    }

    #[test]
    fn hpa_autoscaling_v1_form() {
        let h = json!({"metadata": {"name": "v1"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "maxReplicas": 3, "targetCPUUtilizationPercentage": 70}, "status": {"currentReplicas": 1, "currentCPUUtilizationPercentage": 35}});
        assert_eq!(
            texts("autoscaling", "HorizontalPodAutoscaler", &h)[2..6],
            ["cpu: 35%/70%", "<unset>", "3", "1"]
        );
    }

    #[test]
    fn pdb_csr_lease() {
        let pdb = json!({"metadata": {"name": "p"}, "spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}});
        assert_eq!(
            texts("policy", "PodDisruptionBudget", &pdb)[1..4],
            ["50%", "N/A", "1"]
        );
        let pdb2 = json!({"metadata": {"name": "p"}, "spec": {"maxUnavailable": 1}});
        assert_eq!(
            texts("policy", "PodDisruptionBudget", &pdb2)[1..4],
            ["N/A", "1", "0"]
        );
        let csr = json!({"metadata": {"name": "c", "creationTimestamp": ago(5)}, "spec": {"signerName": "kubernetes.io/kube-apiserver-client",
            "username": "alice", "expirationSeconds": 86400}, "status": {"conditions": [{"type": "Approved"}], "certificate": "LS0t"}});
        assert_eq!(
            texts("certificates.k8s.io", "CertificateSigningRequest", &csr),
            [
                "c",
                "5s",
                "kubernetes.io/kube-apiserver-client",
                "alice",
                "24h",
                "Approved,Issued"
            ]
        );
        let pending =
            json!({"metadata": {"name": "c"}, "status": {"conditions": [{"type": "Failed"}]}});
        assert_eq!(
            texts("certificates.k8s.io", "CertificateSigningRequest", &pending)[2..],
            ["<none>", "", "<none>", "Pending,Failed"]
        );
        let lease = json!({"metadata": {"name": "l"}, "spec": {"holderIdentity": "node-1"}});
        assert_eq!(texts("coordination.k8s.io", "Lease", &lease)[1], "node-1");
    }

    #[test]
    fn scheduling_runtime_and_apf() {
        let pc = json!({"metadata": {"name": "high"}, "value": 1000000, "globalDefault": false, "preemptionPolicy": "PreemptLowerPriority"});
        assert_eq!(
            texts("scheduling.k8s.io", "PriorityClass", &pc),
            [
                "high",
                "1000000",
                "false",
                "<unknown>",
                "PreemptLowerPriority"
            ]
        );
        let rc = json!({"metadata": {"name": "gvisor"}, "handler": "runsc"});
        assert_eq!(texts("node.k8s.io", "RuntimeClass", &rc)[1], "runsc");
        let fs = json!({"metadata": {"name": "exempt"}, "spec": {"priorityLevelConfiguration": {"name": "exempt"}, "matchingPrecedence": 1},
            "status": {"conditions": [{"type": "Dangling", "status": "False"}]}});
        assert_eq!(
            texts("flowcontrol.apiserver.k8s.io", "FlowSchema", &fs),
            ["exempt", "exempt", "1", "<none>", "<unknown>", "False"]
        );
        let plc = json!({"metadata": {"name": "global-default"}, "spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": 20,
            "limitResponse": {"type": "Queue", "queuing": {"queues": 128, "handSize": 6, "queueLengthLimit": 50}}}}});
        assert_eq!(
            texts(
                "flowcontrol.apiserver.k8s.io",
                "PriorityLevelConfiguration",
                &plc
            )[..6],
            ["global-default", "Limited", "20", "128", "6", "50"]
        );
        let exempt =
            json!({"metadata": {"name": "exempt"}, "spec": {"type": "Exempt", "exempt": {}}});
        assert_eq!(
            texts(
                "flowcontrol.apiserver.k8s.io",
                "PriorityLevelConfiguration",
                &exempt
            )[1..6],
            ["Exempt", "<none>", "<none>", "<none>", "<none>"]
        );
    }

    #[test]
    fn flow_schemas_sort_by_precedence_then_name() {
        let fs = |name: &str, p: i64| json!({"metadata": {"name": name}, "spec": {"matchingPrecedence": p}});
        let (a, b, c) = (fs("b", 100), fs("a", 100), fs("z", 1));
        let mut items = vec![&a, &b, &c];
        FLOW_SCHEMA.sort_items(&mut items);
        let names: Vec<&str> = items.iter().map(|v| text(v, "/metadata/name")).collect();
        assert_eq!(names, ["z", "a", "b"]);
    }

    #[test]
    fn api_services() {
        let local = json!({"metadata": {"name": "v1."}, "status": {"conditions": [{"type": "Available", "status": "True", "reason": "Local"}]}});
        assert_eq!(
            texts("apiregistration.k8s.io", "APIService", &local)[1..3],
            ["Local", "True"]
        );
        let remote = json!({"metadata": {"name": "v1beta1.metrics.k8s.io"}, "spec": {"service": {"namespace": "kube-system", "name": "metrics-server"}},
            "status": {"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints"}]}});
        assert_eq!(
            texts("apiregistration.k8s.io", "APIService", &remote)[1..3],
            ["kube-system/metrics-server", "False (MissingEndpoints)"]
        );
        let fresh = json!({"metadata": {"name": "x"}});
        assert_eq!(
            texts("apiregistration.k8s.io", "APIService", &fresh)[2],
            "Unknown"
        );
    }
}
