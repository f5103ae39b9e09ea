//! Server-side printing for built-in kinds: the Table columns and row cells upstream's
//! `pkg/printers/internalversion/printers.go` (`AddHandlers`) produces, plus kube-aggregator's
//! APIService table. Given an object as served (JSON, in the requested version) and "now", a
//! [`Printer`] returns the cells of its row; kinds without an upstream printer have none and keep
//! the default Name/Created At columns.
//!
//! Upstream's API server always prints with `Wide: true` (`pkg/printers/storage`), so rows carry
//! the priority-1 columns too and kubectl hides them unless `-o wide`.

mod admission;
mod batch;
mod cluster;
mod config;
pub mod descriptions;
pub mod duration;
mod events;
mod format;
mod nodes;
mod pods;
mod rbac;
mod services;
mod storage;
mod workloads;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// A cell type of a column definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellType {
    /// `string`
    String,
    /// `integer`
    Integer,
    /// `boolean`
    Boolean,
}

impl CellType {
    fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Boolean => "boolean",
        }
    }
}

/// One `metav1.TableColumnDefinition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Column header as upstream spells it (kubectl upper-cases it).
    pub name: &'static str,
    /// Cell type.
    pub cell_type: CellType,
    /// `name` for the object's name column, otherwise "".
    pub format: &'static str,
    /// The field documentation upstream attaches.
    pub description: &'static str,
    /// 0 always shown, 1 only with `-o wide`.
    pub priority: i32,
}

impl Column {
    /// The JSON form (every field present, as upstream serialises it).
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.cell_type.as_str(),
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// Shorthand constructors for the column tables.
const fn col(name: &'static str, cell_type: CellType, description: &'static str) -> Column {
    Column {
        name,
        cell_type,
        format: "",
        description,
        priority: 0,
    }
}

const fn wide(name: &'static str, cell_type: CellType, description: &'static str) -> Column {
    Column {
        name,
        cell_type,
        format: "",
        description,
        priority: 1,
    }
}

const NAME: Column = Column {
    name: "Name",
    cell_type: CellType::String,
    format: "name",
    description: descriptions::NAME,
    priority: 0,
};
const AGE: Column = col("Age", CellType::String, descriptions::CREATION_TIMESTAMP);
const CONTAINERS: Column = wide(
    "Containers",
    CellType::String,
    "Names of each container in the template.",
);
const IMAGES: Column = wide(
    "Images",
    CellType::String,
    "Images referenced by each container in the template.",
);

/// One printed row: the cells, and `conditions` (upstream marks finished pods `Completed`).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Cells in column order.
    pub cells: Vec<Value>,
    /// `metav1.TableRowCondition`s; usually empty.
    pub conditions: Vec<Value>,
}

impl From<Vec<Value>> for Row {
    fn from(cells: Vec<Value>) -> Self {
        Row {
            cells,
            conditions: Vec::new(),
        }
    }
}

/// What a printer function sees: the object and the time ages are measured against.
pub(crate) struct Ctx<'a> {
    pub obj: &'a Value,
    pub now: DateTime<Utc>,
}

impl Ctx<'_> {
    fn name(&self) -> Value {
        Value::String(format::text(self.obj, "/metadata/name").to_string())
    }

    fn age(&self) -> Value {
        Value::String(self.since("/metadata/creationTimestamp"))
    }

    fn since(&self, pointer: &str) -> String {
        duration::since(format::at(self.obj, pointer), self.now)
    }
}

/// The printer for one kind.
pub struct Printer {
    columns: &'static [Column],
    print: fn(&Ctx<'_>) -> Row,
    order: Option<fn(&Value, &Value) -> std::cmp::Ordering>,
}

impl Printer {
    /// Column definitions in cell order.
    pub fn columns(&self) -> &'static [Column] {
        self.columns
    }

    /// The row of one object, with ages measured at `now`.
    pub fn row(&self, obj: &Value, now: DateTime<Utc>) -> Row {
        (self.print)(&Ctx { obj, now })
    }

    /// Orders a list's items the way upstream's list printer does (most keep storage order;
    /// FlowSchemas sort by matching precedence).
    pub fn sort_items(&self, items: &mut [&Value]) {
        if let Some(order) = self.order {
            items.sort_by(|a, b| order(a, b));
        }
    }
}

const fn printer(columns: &'static [Column], print: fn(&Ctx<'_>) -> Row) -> Printer {
    Printer {
        columns,
        print,
        order: None,
    }
}

/// The printer of a built-in kind, or None when upstream uses the default table convertor.
pub fn printer_for(group: &str, kind: &str) -> Option<&'static Printer> {
    let p = match (group, kind) {
        ("", "Pod") => &pods::POD,
        ("", "PodTemplate") => &pods::POD_TEMPLATE,
        ("", "ReplicationController") => &workloads::REPLICATION_CONTROLLER,
        ("apps", "ReplicaSet") => &workloads::REPLICA_SET,
        ("apps", "Deployment") => &workloads::DEPLOYMENT,
        ("apps", "StatefulSet") => &workloads::STATEFUL_SET,
        ("apps", "DaemonSet") => &workloads::DAEMON_SET,
        ("apps", "ControllerRevision") => &workloads::CONTROLLER_REVISION,
        ("batch", "Job") => &batch::JOB,
        ("batch", "CronJob") => &batch::CRON_JOB,
        ("", "Service") => &services::SERVICE,
        ("", "Endpoints") => &services::ENDPOINTS,
        ("discovery.k8s.io", "EndpointSlice") => &services::ENDPOINT_SLICE,
        ("networking.k8s.io", "Ingress") => &services::INGRESS,
        ("networking.k8s.io", "IngressClass") => &services::INGRESS_CLASS,
        ("networking.k8s.io", "NetworkPolicy") => &services::NETWORK_POLICY,
        ("networking.k8s.io", "ServiceCIDR") => &services::SERVICE_CIDR,
        ("networking.k8s.io", "IPAddress") => &services::IP_ADDRESS,
        ("", "Node") => &nodes::NODE,
        ("", "Namespace") => &nodes::NAMESPACE,
        ("", "ComponentStatus") => &nodes::COMPONENT_STATUS,
        ("", "Event") => &events::CORE_EVENT,
        ("events.k8s.io", "Event") => &events::EVENTS_EVENT,
        ("", "ConfigMap") => &config::CONFIG_MAP,
        ("", "Secret") => &config::SECRET,
        ("", "ServiceAccount") => &config::SERVICE_ACCOUNT,
        ("", "ResourceQuota") => &config::RESOURCE_QUOTA,
        ("", "PersistentVolume") => &storage::PERSISTENT_VOLUME,
        ("", "PersistentVolumeClaim") => &storage::PERSISTENT_VOLUME_CLAIM,
        ("storage.k8s.io", "StorageClass") => &storage::STORAGE_CLASS,
        ("storage.k8s.io", "VolumeAttributesClass") => &storage::VOLUME_ATTRIBUTES_CLASS,
        ("storage.k8s.io", "CSIDriver") => &storage::CSI_DRIVER,
        ("storage.k8s.io", "CSINode") => &storage::CSI_NODE,
        ("storage.k8s.io", "CSIStorageCapacity") => &storage::CSI_STORAGE_CAPACITY,
        ("storage.k8s.io", "VolumeAttachment") => &storage::VOLUME_ATTACHMENT,
        ("rbac.authorization.k8s.io", "RoleBinding") => &rbac::ROLE_BINDING,
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => &rbac::CLUSTER_ROLE_BINDING,
        ("policy", "PodDisruptionBudget") => &cluster::POD_DISRUPTION_BUDGET,
        ("autoscaling", "HorizontalPodAutoscaler") => &cluster::HORIZONTAL_POD_AUTOSCALER,
        ("certificates.k8s.io", "CertificateSigningRequest") => {
            &cluster::CERTIFICATE_SIGNING_REQUEST
        }
        ("coordination.k8s.io", "Lease") => &cluster::LEASE,
        ("scheduling.k8s.io", "PriorityClass") => &cluster::PRIORITY_CLASS,
        ("node.k8s.io", "RuntimeClass") => &cluster::RUNTIME_CLASS,
        ("flowcontrol.apiserver.k8s.io", "FlowSchema") => &cluster::FLOW_SCHEMA,
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration") => {
            &cluster::PRIORITY_LEVEL_CONFIGURATION
        }
        ("apiregistration.k8s.io", "APIService") => &cluster::API_SERVICE,
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration") => {
            &admission::MUTATING_WEBHOOK_CONFIGURATION
        }
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration") => {
            &admission::VALIDATING_WEBHOOK_CONFIGURATION
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => {
            &admission::VALIDATING_ADMISSION_POLICY
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding") => {
            &admission::VALIDATING_ADMISSION_POLICY_BINDING
        }
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicy") => {
            &admission::MUTATING_ADMISSION_POLICY
        }
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding") => {
            &admission::MUTATING_ADMISSION_POLICY_BINDING
        }
        _ => return None,
    };
    Some(p)
}

/// The group of an `apiVersion` ("apps/v1" → "apps", "v1" → "").
pub fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("")
}

#[cfg(test)]
pub(crate) mod testing {
    use chrono::{DateTime, TimeDelta, Utc};
    use serde_json::Value;

    /// A fixed "now" for deterministic ages.
    pub fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-06-01T12:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap()
    }

    /// An RFC 3339 timestamp `secs` seconds before [`now`].
    pub fn ago(secs: i64) -> String {
        (now() - TimeDelta::seconds(secs)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    /// The cells of `obj` printed by the printer of (group, kind).
    pub fn cells(group: &str, kind: &str, obj: &Value) -> Vec<Value> {
        super::printer_for(group, kind)
            .unwrap()
            .row(obj, now())
            .cells
    }

    /// The cells as strings (numbers and bools rendered), for compact assertions.
    pub fn texts(group: &str, kind: &str, obj: &Value) -> Vec<String> {
        cells(group, kind, obj)
            .into_iter()
            .map(|c| match c {
                Value::String(s) => s,
                other => other.to_string(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_has_one_cell_per_column() {
        // Upstream's IPAddress printer is the one exception: two columns, three cells.
        let kinds = [
            ("", "Pod"),
            ("", "PodTemplate"),
            ("", "ReplicationController"),
            ("apps", "ReplicaSet"),
            ("apps", "Deployment"),
            ("apps", "StatefulSet"),
            ("apps", "DaemonSet"),
            ("apps", "ControllerRevision"),
            ("batch", "Job"),
            ("batch", "CronJob"),
            ("", "Service"),
            ("", "Endpoints"),
            ("discovery.k8s.io", "EndpointSlice"),
            ("networking.k8s.io", "Ingress"),
            ("networking.k8s.io", "IngressClass"),
            ("networking.k8s.io", "NetworkPolicy"),
            ("networking.k8s.io", "ServiceCIDR"),
            ("", "Node"),
            ("", "Namespace"),
            ("", "ComponentStatus"),
            ("", "Event"),
            ("events.k8s.io", "Event"),
            ("", "ConfigMap"),
            ("", "Secret"),
            ("", "ServiceAccount"),
            ("", "ResourceQuota"),
            ("", "PersistentVolume"),
            ("", "PersistentVolumeClaim"),
            ("storage.k8s.io", "StorageClass"),
            ("storage.k8s.io", "VolumeAttributesClass"),
            ("storage.k8s.io", "CSIDriver"),
            ("storage.k8s.io", "CSINode"),
            ("storage.k8s.io", "CSIStorageCapacity"),
            ("storage.k8s.io", "VolumeAttachment"),
            ("rbac.authorization.k8s.io", "RoleBinding"),
            ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
            ("policy", "PodDisruptionBudget"),
            ("autoscaling", "HorizontalPodAutoscaler"),
            ("certificates.k8s.io", "CertificateSigningRequest"),
            ("coordination.k8s.io", "Lease"),
            ("scheduling.k8s.io", "PriorityClass"),
            ("node.k8s.io", "RuntimeClass"),
            ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
            ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
            ("apiregistration.k8s.io", "APIService"),
            (
                "admissionregistration.k8s.io",
                "MutatingWebhookConfiguration",
            ),
            (
                "admissionregistration.k8s.io",
                "ValidatingWebhookConfiguration",
            ),
            ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
            (
                "admissionregistration.k8s.io",
                "ValidatingAdmissionPolicyBinding",
            ),
            ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
            (
                "admissionregistration.k8s.io",
                "MutatingAdmissionPolicyBinding",
            ),
        ];
        let empty = json!({"metadata": {"name": "x"}});
        for (group, kind) in kinds {
            let p =
                printer_for(group, kind).unwrap_or_else(|| panic!("{group}/{kind} has no printer"));
            let row = p.row(&empty, testing::now());
            assert_eq!(row.cells.len(), p.columns().len(), "{group}/{kind}");
        }
        let ip = printer_for("networking.k8s.io", "IPAddress").unwrap();
        assert_eq!(
            (
                ip.columns().len(),
                ip.row(&empty, testing::now()).cells.len()
            ),
            (2, 3)
        );
    }

    #[test]
    fn kinds_without_upstream_printer_use_default_columns() {
        for (group, kind) in [
            ("rbac.authorization.k8s.io", "Role"),
            ("rbac.authorization.k8s.io", "ClusterRole"),
            ("", "LimitRange"),
            ("apiextensions.k8s.io", "CustomResourceDefinition"),
            ("example.com", "Pod"),
        ] {
            assert!(printer_for(group, kind).is_none(), "{group}/{kind}");
        }
    }

    #[test]
    fn name_column_has_name_format() {
        let cols = printer_for("", "Pod").unwrap().columns();
        assert_eq!(
            cols[0].to_json(),
            json!({"name": "Name", "type": "string", "format": "name", "description": descriptions::NAME, "priority": 0})
        );
        assert_eq!(group_of("apps/v1"), "apps");
        assert_eq!(group_of("v1"), "");
    }
}
