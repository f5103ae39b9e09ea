//! Built-in resources of Kubernetes 1.33.
//!
//! The rows below are what a kube-apiserver 1.33 with default feature gates and no alpha/beta API
//! versions serves in discovery for the group-versions rkube serves: plural, singular, kind, scope,
//! verbs (in discovery's order, which is sorted), short names, categories and subresources (sorted
//! by name, as aggregated discovery lists them).
//!
//! Sources (read, not copied):
//! - kubernetes/kubernetes `api/discovery/aggregated_v2.json` at the 1.33 snapshot (commit
//!   `0b1dcaba0a3f1fdcfe5fbb6516d68ffc8e625d81`: the one where `networking.k8s.io/v1` first serves
//!   `servicecidrs`/`ipaddresses` while `v1beta1` is still served, `clustertrustbundles` is
//!   `v1beta1`, `mutatingadmissionpolicies` is only `v1alpha1`, `volumeattributesclasses` is only
//!   `v1beta1` and `resource.k8s.io` has `v1beta2`). It lists every non-core group with verbs,
//!   short names, categories, singular names and subresources with their response kinds.
//! - `api/discovery/api__v1.json` and a captured `GET /api/v1` from a live 1.33+ cluster for the
//!   core group (the aggregated file covers `/apis` only), including `pods/resize`, which 1.33
//!   serves because `InPlacePodVerticalScaling` is beta and on by default.
//! - `pkg/registry/*/storage/storage.go` for the short-name and category conventions.
//!
//! Alpha and beta group-versions from those snapshots are left out on purpose: a default 1.33
//! server does not serve them.

use super::{ResourceInfo, Scope, SubresourceInfo};

/// Verbs of an ordinary REST store (upstream `genericregistry.Store`), in discovery order.
const CRUD: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
/// Namespaces cannot be deleted as a collection (the namespace REST has no `DeleteCollection`).
const CRUD_NO_COLLECTION: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];
/// Review-style resources (TokenReview, SubjectAccessReview, …) only accept `create`.
const CREATE: &[&str] = &["create"];
/// Verbs of `status`-like subresources (`StatusREST`: Get + Update, so patch too).
const GET_PATCH_UPDATE: &[&str] = &["get", "patch", "update"];
/// Verbs of connect subresources backed by a proxy (`pods/proxy`, `services/proxy`, `nodes/proxy`):
/// the HTTP methods GET/POST/PUT/PATCH/DELETE map to these verbs.
const PROXY: &[&str] = &["create", "delete", "get", "patch", "update"];
/// Verbs of streaming connect subresources (`exec`, `attach`, `portforward`): GET and POST.
const CONNECT: &[&str] = &["create", "get"];

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// A subresource whose request/response kind is the parent's kind in the parent's group-version.
fn sub_same(name: &str, parent_kind: &str, verbs: &[&str]) -> SubresourceInfo {
    SubresourceInfo {
        name: name.to_owned(),
        kind: parent_kind.to_owned(),
        group: String::new(),
        version: String::new(),
        verbs: strings(verbs),
    }
}

/// A subresource whose kind lives in another group-version (e.g. `Scale` in `autoscaling/v1`).
fn sub_other(
    name: &str,
    kind: &str,
    group: &str,
    version: &str,
    verbs: &[&str],
) -> SubresourceInfo {
    SubresourceInfo {
        name: name.to_owned(),
        kind: kind.to_owned(),
        group: group.to_owned(),
        version: version.to_owned(),
        verbs: strings(verbs),
    }
}

/// `<resource>/scale`: upstream serves `autoscaling/v1` `Scale` for every scalable built-in.
fn scale() -> SubresourceInfo {
    sub_other("scale", "Scale", "autoscaling", "v1", GET_PATCH_UPDATE)
}

/// Builds one row; every built-in's singular name is its kind in lower case (upstream derives it
/// the same way when a storage does not name it), so it is computed rather than repeated.
struct Row {
    info: ResourceInfo,
}

impl Row {
    fn new(
        group: &str,
        version: &str,
        plural: &str,
        kind: &str,
        scope: Scope,
        verbs: &[&str],
    ) -> Self {
        Row {
            info: ResourceInfo {
                group: group.to_owned(),
                version: version.to_owned(),
                plural: plural.to_owned(),
                singular: kind.to_lowercase(),
                kind: kind.to_owned(),
                scope,
                verbs: strings(verbs),
                short_names: Vec::new(),
                categories: Vec::new(),
                subresources: Vec::new(),
                storage_version: true,
            },
        }
    }

    fn short(mut self, names: &[&str]) -> Self {
        self.info.short_names = strings(names);
        self
    }

    fn categories(mut self, names: &[&str]) -> Self {
        self.info.categories = strings(names);
        self
    }

    /// Adds `<resource>/status` with the parent's kind and `get patch update`.
    fn status(mut self) -> Self {
        let kind = self.info.kind.clone();
        self.info
            .subresources
            .push(sub_same("status", &kind, GET_PATCH_UPDATE));
        self
    }

    fn sub(mut self, sub: SubresourceInfo) -> Self {
        self.info.subresources.push(sub);
        self
    }

    fn not_storage_version(mut self) -> Self {
        self.info.storage_version = false;
        self
    }

    fn build(mut self) -> ResourceInfo {
        // Discovery lists subresources sorted by name; keeping the table sorted means consumers
        // can print it in order without sorting again.
        self.info.subresources.sort_by(|a, b| a.name.cmp(&b.name));
        self.info
    }
}

use Scope::{Cluster, Namespaced};

/// Every built-in resource rkube serves, grouped in upstream's aggregated-discovery group order
/// (core first, then `apiregistration.k8s.io`, `apps`, …), versions in preference order and
/// resources sorted by plural within a group-version.
pub fn builtin_resources() -> Vec<ResourceInfo> {
    let mut all = Vec::with_capacity(80);
    all.extend(core_v1());
    all.extend(apiregistration_v1());
    all.extend(apps_v1());
    all.extend(events_v1());
    all.extend(authentication_v1());
    all.extend(authorization_v1());
    all.extend(autoscaling());
    all.extend(batch_v1());
    all.extend(certificates_v1());
    all.extend(networking_v1());
    all.extend(policy_v1());
    all.extend(rbac_v1());
    all.extend(storage_v1());
    all.extend(admissionregistration_v1());
    all.extend(apiextensions_v1());
    all.extend(scheduling_v1());
    all.extend(coordination_v1());
    all.extend(node_v1());
    all.extend(discovery_v1());
    all.extend(flowcontrol_v1());
    all
}

/// Core `v1` (`/api/v1`), from `pkg/registry/core/rest/storage_core.go`.
fn core_v1() -> Vec<ResourceInfo> {
    let r = |plural: &str, kind: &str, scope: Scope, verbs: &[&str]| {
        Row::new("", "v1", plural, kind, scope, verbs)
    };
    vec![
        // `bindings` is the legacy top-level form of `pods/binding`.
        r("bindings", "Binding", Namespaced, CREATE).build(),
        // Deprecated, read-only; served by a special REST without watch.
        r(
            "componentstatuses",
            "ComponentStatus",
            Cluster,
            &["get", "list"],
        )
        .short(&["cs"])
        .build(),
        r("configmaps", "ConfigMap", Namespaced, CRUD)
            .short(&["cm"])
            .build(),
        r("endpoints", "Endpoints", Namespaced, CRUD)
            .short(&["ep"])
            .build(),
        r("events", "Event", Namespaced, CRUD)
            .short(&["ev"])
            .build(),
        r("limitranges", "LimitRange", Namespaced, CRUD)
            .short(&["limits"])
            .build(),
        r("namespaces", "Namespace", Cluster, CRUD_NO_COLLECTION)
            .short(&["ns"])
            .sub(sub_same("finalize", "Namespace", &["update"]))
            .status()
            .build(),
        r("nodes", "Node", Cluster, CRUD)
            .short(&["no"])
            .sub(sub_same("proxy", "NodeProxyOptions", PROXY))
            .status()
            .build(),
        r(
            "persistentvolumeclaims",
            "PersistentVolumeClaim",
            Namespaced,
            CRUD,
        )
        .short(&["pvc"])
        .status()
        .build(),
        r("persistentvolumes", "PersistentVolume", Cluster, CRUD)
            .short(&["pv"])
            .status()
            .build(),
        r("pods", "Pod", Namespaced, CRUD)
            .short(&["po"])
            .categories(&["all"])
            .sub(sub_same("attach", "PodAttachOptions", CONNECT))
            .sub(sub_same("binding", "Binding", CREATE))
            .sub(sub_same("ephemeralcontainers", "Pod", GET_PATCH_UPDATE))
            .sub(sub_other("eviction", "Eviction", "policy", "v1", CREATE))
            .sub(sub_same("exec", "PodExecOptions", CONNECT))
            .sub(sub_same("log", "Pod", &["get"]))
            .sub(sub_same("portforward", "PodPortForwardOptions", CONNECT))
            .sub(sub_same("proxy", "PodProxyOptions", PROXY))
            // InPlacePodVerticalScaling is beta and enabled by default in 1.33.
            .sub(sub_same("resize", "Pod", GET_PATCH_UPDATE))
            .status()
            .build(),
        r("podtemplates", "PodTemplate", Namespaced, CRUD).build(),
        r(
            "replicationcontrollers",
            "ReplicationController",
            Namespaced,
            CRUD,
        )
        .short(&["rc"])
        .categories(&["all"])
        .sub(scale())
        .status()
        .build(),
        r("resourcequotas", "ResourceQuota", Namespaced, CRUD)
            .short(&["quota"])
            .status()
            .build(),
        r("secrets", "Secret", Namespaced, CRUD).build(),
        r("serviceaccounts", "ServiceAccount", Namespaced, CRUD)
            .short(&["sa"])
            .sub(sub_other(
                "token",
                "TokenRequest",
                "authentication.k8s.io",
                "v1",
                CREATE,
            ))
            .build(),
        // Services gained deletecollection when their REST moved onto the generic store (1.24+).
        r("services", "Service", Namespaced, CRUD)
            .short(&["svc"])
            .categories(&["all"])
            .sub(sub_same("proxy", "ServiceProxyOptions", PROXY))
            .status()
            .build(),
    ]
}

fn apiregistration_v1() -> Vec<ResourceInfo> {
    vec![
        Row::new(
            "apiregistration.k8s.io",
            "v1",
            "apiservices",
            "APIService",
            Cluster,
            CRUD,
        )
        .categories(&["api-extensions"])
        .status()
        .build(),
    ]
}

fn apps_v1() -> Vec<ResourceInfo> {
    let r = |plural: &str, kind: &str| Row::new("apps", "v1", plural, kind, Namespaced, CRUD);
    vec![
        r("controllerrevisions", "ControllerRevision").build(),
        r("daemonsets", "DaemonSet")
            .short(&["ds"])
            .categories(&["all"])
            .status()
            .build(),
        r("deployments", "Deployment")
            .short(&["deploy"])
            .categories(&["all"])
            .sub(scale())
            .status()
            .build(),
        r("replicasets", "ReplicaSet")
            .short(&["rs"])
            .categories(&["all"])
            .sub(scale())
            .status()
            .build(),
        r("statefulsets", "StatefulSet")
            .short(&["sts"])
            .categories(&["all"])
            .sub(scale())
            .status()
            .build(),
    ]
}

/// `events.k8s.io/v1` events: upstream keeps them in the same storage as core events and gives
/// them the same short name.
fn events_v1() -> Vec<ResourceInfo> {
    vec![
        Row::new("events.k8s.io", "v1", "events", "Event", Namespaced, CRUD)
            .short(&["ev"])
            .build(),
    ]
}

fn authentication_v1() -> Vec<ResourceInfo> {
    let r = |plural: &str, kind: &str| {
        Row::new("authentication.k8s.io", "v1", plural, kind, Cluster, CREATE).build()
    };
    vec![
        r("selfsubjectreviews", "SelfSubjectReview"),
        r("tokenreviews", "TokenReview"),
    ]
}

fn authorization_v1() -> Vec<ResourceInfo> {
    let r = |plural: &str, kind: &str, scope: Scope| {
        Row::new("authorization.k8s.io", "v1", plural, kind, scope, CREATE).build()
    };
    vec![
        r(
            "localsubjectaccessreviews",
            "LocalSubjectAccessReview",
            Namespaced,
        ),
        r(
            "selfsubjectaccessreviews",
            "SelfSubjectAccessReview",
            Cluster,
        ),
        r("selfsubjectrulesreviews", "SelfSubjectRulesReview", Cluster),
        r("subjectaccessreviews", "SubjectAccessReview", Cluster),
    ]
}

/// HPAs are served as `autoscaling/v2` (preferred, stored) and `autoscaling/v1`.
fn autoscaling() -> Vec<ResourceInfo> {
    let hpa = |version: &str| {
        Row::new(
            "autoscaling",
            version,
            "horizontalpodautoscalers",
            "HorizontalPodAutoscaler",
            Namespaced,
            CRUD,
        )
        .short(&["hpa"])
        .categories(&["all"])
        .status()
    };
    vec![hpa("v2").build(), hpa("v1").not_storage_version().build()]
}

fn batch_v1() -> Vec<ResourceInfo> {
    let r = |plural: &str, kind: &str| Row::new("batch", "v1", plural, kind, Namespaced, CRUD);
    vec![
        r("cronjobs", "CronJob")
            .short(&["cj"])
            .categories(&["all"])
            .status()
            .build(),
        r("jobs", "Job").categories(&["all"]).status().build(),
    ]
}

fn certificates_v1() -> Vec<ResourceInfo> {
    vec![
        Row::new(
            "certificates.k8s.io",
            "v1",
            "certificatesigningrequests",
            "CertificateSigningRequest",
            Cluster,
            CRUD,
        )
        .short(&["csr"])
        .sub(sub_same(
            "approval",
            "CertificateSigningRequest",
            GET_PATCH_UPDATE,
        ))
        .status()
        .build(),
    ]
}

/// `servicecidrs` and `ipaddresses` are GA (`networking.k8s.io/v1`) as of 1.33.
fn networking_v1() -> Vec<ResourceInfo> {
    let r = |plural: &str, kind: &str, scope: Scope| {
        Row::new("networking.k8s.io", "v1", plural, kind, scope, CRUD)
    };
    vec![
        r("ingressclasses", "IngressClass", Cluster).build(),
        r("ingresses", "Ingress", Namespaced)
            .short(&["ing"])
            .status()
            .build(),
        r("ipaddresses", "IPAddress", Cluster)
            .short(&["ip"])
            .build(),
        // NetworkPolicy status was removed in 1.28; no subresource.
        r("networkpolicies", "NetworkPolicy", Namespaced)
            .short(&["netpol"])
            .build(),
        r("servicecidrs", "ServiceCIDR", Cluster).status().build(),
    ]
}

fn policy_v1() -> Vec<ResourceInfo> {
    vec![
        Row::new(
            "policy",
            "v1",
            "poddisruptionbudgets",
            "PodDisruptionBudget",
            Namespaced,
            CRUD,
        )
        .short(&["pdb"])
        .status()
        .build(),
    ]
}

fn rbac_v1() -> Vec<ResourceInfo> {
    let r = |plural: &str, kind: &str, scope: Scope| {
        Row::new("rbac.authorization.k8s.io", "v1", plural, kind, scope, CRUD).build()
    };
    vec![
        r("clusterrolebindings", "ClusterRoleBinding", Cluster),
        r("clusterroles", "ClusterRole", Cluster),
        r("rolebindings", "RoleBinding", Namespaced),
        r("roles", "Role", Namespaced),
    ]
}

/// `volumeattributesclasses` is only `v1beta1` in 1.33, so it is not here.
fn storage_v1() -> Vec<ResourceInfo> {
    let r = |plural: &str, kind: &str, scope: Scope| {
        Row::new("storage.k8s.io", "v1", plural, kind, scope, CRUD)
    };
    vec![
        r("csidrivers", "CSIDriver", Cluster).build(),
        r("csinodes", "CSINode", Cluster).build(),
        r("csistoragecapacities", "CSIStorageCapacity", Namespaced).build(),
        r("storageclasses", "StorageClass", Cluster)
            .short(&["sc"])
            .build(),
        r("volumeattachments", "VolumeAttachment", Cluster)
            .status()
            .build(),
    ]
}

/// Mutating admission policies are only `v1alpha1` in 1.33, so they are not here.
fn admissionregistration_v1() -> Vec<ResourceInfo> {
    let r = |plural: &str, kind: &str| {
        Row::new(
            "admissionregistration.k8s.io",
            "v1",
            plural,
            kind,
            Cluster,
            CRUD,
        )
        .categories(&["api-extensions"])
    };
    vec![
        r(
            "mutatingwebhookconfigurations",
            "MutatingWebhookConfiguration",
        )
        .build(),
        r("validatingadmissionpolicies", "ValidatingAdmissionPolicy")
            .status()
            .build(),
        r(
            "validatingadmissionpolicybindings",
            "ValidatingAdmissionPolicyBinding",
        )
        .build(),
        r(
            "validatingwebhookconfigurations",
            "ValidatingWebhookConfiguration",
        )
        .build(),
    ]
}

fn apiextensions_v1() -> Vec<ResourceInfo> {
    vec![
        Row::new(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            Cluster,
            CRUD,
        )
        .short(&["crd", "crds"])
        .categories(&["api-extensions"])
        .status()
        .build(),
    ]
}

fn scheduling_v1() -> Vec<ResourceInfo> {
    vec![
        Row::new(
            "scheduling.k8s.io",
            "v1",
            "priorityclasses",
            "PriorityClass",
            Cluster,
            CRUD,
        )
        .short(&["pc"])
        .build(),
    ]
}

/// `leasecandidates` is beta/alpha only in 1.33, so it is not here.
fn coordination_v1() -> Vec<ResourceInfo> {
    vec![
        Row::new(
            "coordination.k8s.io",
            "v1",
            "leases",
            "Lease",
            Namespaced,
            CRUD,
        )
        .build(),
    ]
}

fn node_v1() -> Vec<ResourceInfo> {
    vec![
        Row::new(
            "node.k8s.io",
            "v1",
            "runtimeclasses",
            "RuntimeClass",
            Cluster,
            CRUD,
        )
        .build(),
    ]
}

fn discovery_v1() -> Vec<ResourceInfo> {
    vec![
        Row::new(
            "discovery.k8s.io",
            "v1",
            "endpointslices",
            "EndpointSlice",
            Namespaced,
            CRUD,
        )
        .build(),
    ]
}

fn flowcontrol_v1() -> Vec<ResourceInfo> {
    let r = |plural: &str, kind: &str| {
        Row::new(
            "flowcontrol.apiserver.k8s.io",
            "v1",
            plural,
            kind,
            Cluster,
            CRUD,
        )
        .status()
        .build()
    };
    vec![
        r("flowschemas", "FlowSchema"),
        r("prioritylevelconfigurations", "PriorityLevelConfiguration"),
    ]
}

#[cfg(test)]
#[path = "builtin_tests.rs"]
mod tests;
