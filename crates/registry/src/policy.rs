//! Per-resource generic-store behaviour of upstream Kubernetes 1.33, as data.
//!
//! Every row of [`policy`] encodes what upstream's `genericregistry.Store` and the resource's
//! REST strategy do for one built-in resource: whether DELETE answers with the object, whether
//! PUT may create, whether PUT needs `metadata.resourceVersion`, how `metadata.generation`
//! moves, what `status` a create starts from, whether a PUT on the main resource keeps the old
//! status, and which field-selector labels the resource accepts. [`status_update_rule`] says what
//! a PUT to `/status` may change, [`generation_rule`] refines `tracks_generation`,
//! [`field_label_value`] renders a field label exactly as upstream's `GetAttrs` does, and
//! [`unsupported_field_label_message`] gives the per-kind error text for a label the kind does
//! not accept.
//!
//! # Upstream sources read (kubernetes/kubernetes)
//!
//! Generic machinery:
//! `staging/src/k8s.io/apiserver/pkg/registry/generic/registry/store.go` (Create, Update,
//! Delete, `updateForGracefulDeletionAndFinalizers`, `markAsDeleting`, `finalizeDelete`,
//! `ShouldDeleteDuringUpdate`, GC finalizer handling),
//! `staging/src/k8s.io/apiserver/pkg/registry/rest/{create,update,delete}.go`
//! (`BeforeCreate`, `BeforeUpdate`, `BeforeDelete`),
//! `staging/src/k8s.io/apimachinery/pkg/runtime` `DefaultMetaV1FieldSelectorConversion`.
//!
//! Field-label conversions: `pkg/apis/core/v1/conversion.go` (Pod, Node, ReplicationController,
//! Event, Namespace, Secret, Service), `pkg/apis/events/v1/conversion.go` and `register.go`,
//! `pkg/apis/batch/v1/conversion.go` (Job), `pkg/apis/certificates/v1beta1/conversion.go`
//! (CertificateSigningRequest, ClusterTrustBundle), `pkg/apis/apps/v1/conversion.go` and
//! `pkg/apis/coordination/v1beta1/register.go` (neither registers field-label conversions).
//!
//! Strategies (`strategy.go`) and stores (`storage/storage.go`, or `etcd.go`) under
//! `pkg/registry/`: core/{pod, configmap, endpoint, event, limitrange, namespace, node,
//! persistentvolume, persistentvolumeclaim, podtemplate, replicationcontroller, resourcequota,
//! secret, serviceaccount, service}; apps/{deployment, replicaset, statefulset, daemonset,
//! controllerrevision}; batch/{job, cronjob}; autoscaling/horizontalpodautoscaler;
//! policy/poddisruptionbudget; networking/{ingress, ingressclass, networkpolicy, ipaddress,
//! servicecidr}; rbac/{role, clusterrole, rolebinding, clusterrolebinding}; coordination/{lease,
//! leasecandidate}; discovery/endpointslice; storage/{storageclass, volumeattachment, csidriver,
//! csinode, csistoragecapacity, volumeattributesclass}; scheduling/priorityclass;
//! node/runtimeclass; certificates/{certificates, clustertrustbundle};
//! admissionregistration/{validatingwebhookconfiguration, mutatingwebhookconfiguration,
//! validatingadmissionpolicy, validatingadmissionpolicybinding}; flowcontrol/flowschema;
//! `staging/src/k8s.io/kube-aggregator/pkg/registry/apiservice/{strategy.go,etcd/etcd.go}`;
//! `staging/src/k8s.io/apiextensions-apiserver/pkg/registry/customresourcedefinition/{strategy.go,etcd.go}`.
//! Status JSON shapes were checked against the `k8s.io/api` Go JSON tags (a non-pointer struct
//! field is always emitted by Go even with `omitempty`; an `int32` without `omitempty` is
//! emitted as `0`) and `pkg/apis/core/v1/defaults.go` (status defaulting applied on decode).
//!
//! The stored copies of those files are of mixed ages; rows whose 1.33 value could not be pinned
//! to a 1.33-era copy carry an `// unverified:` comment.
//!
//! # Generic rules every resource obeys (store.go / rest/*.go)
//!
//! Create: `metadata.uid` and `metadata.creationTimestamp` are filled in, `generateName` is
//! expanded (retried up to 8 times on a name conflict), then the strategy's `PrepareForCreate`
//! runs, then validation. `metadata.generation` is not cleared generically: only strategies that
//! track generation set it to 1.
//!
//! Update (`BeforeUpdate`): `metadata.generation` is first copied from the stored object (a
//! client can never set it), then the strategy's `PrepareForUpdate` runs (which may bump it);
//! an empty `metadata.uid` takes the stored one; `metadata.creationTimestamp`,
//! `metadata.deletionTimestamp` and (when the request has none) `deletionGracePeriodSeconds`
//! always keep their stored values; a cluster-scoped object's `metadata.namespace` is cleared.
//! Without `metadata.resourceVersion` the update is unconditional when
//! `allow_unconditional_update`, otherwise it fails with 422 Invalid whose details `kind` is the
//! *plural resource* and whose cause is `metadata.resourceVersion: Invalid value: 0x0: must be
//! specified for an update`. A mismatching resourceVersion is 409 Conflict "the object has been
//! modified; please apply your changes to the latest version and try again". A PUT of a missing
//! object is 404 unless `allow_create_on_update` (or server-side apply forces creation); a
//! create-through-PUT answers 201. An update that leaves no finalizers on an object whose
//! `deletionTimestamp` is set and whose grace period is 0/absent deletes it (the PUT still
//! answers with the object).
//!
//! Delete: preconditions are checked first (409 on UID/resourceVersion mismatch). An object with
//! finalizers (after the GC finalizers implied by `propagationPolicy`/`orphanDependents` are
//! added: `orphan` or `foregroundDeletion`) is not removed: `deletionTimestamp` becomes now,
//! `deletionGracePeriodSeconds` 0, `metadata.generation` +1 when it was > 0, and the response is
//! the updated object regardless of `return_deleted_object` (HTTP 200; 202 only when the request
//! set `orphanDependents: false` explicitly). A repeated DELETE of an object already being
//! deleted answers with the object too. Otherwise the object is removed and the response is the
//! object when `return_deleted_object`, else `{"kind":"Status","apiVersion":"v1","metadata":{},
//! "status":"Success","details":{"name":..,"group":..,"kind":<plural resource>,"uid":..}}`
//! (`group` omitted for the core group).
//! Only pods implement graceful deletion among these resources. DELETE on a collection returns
//! the list of the objects it deleted.
//!
//! # What a PUT to `/status` may change
//!
//! Upstream status strategies do *not* generally freeze metadata: almost all of them copy only
//! `spec` (sometimes more) from the stored object, so labels, annotations, finalizers and
//! ownerReferences sent to `/status` are persisted, while `generation`, `uid`,
//! `creationTimestamp`, `deletionTimestamp` and `deletionGracePeriodSeconds` are protected by
//! `BeforeUpdate` as for any update. Kinds that differ are listed by [`status_update_rule`]:
//! deployments also keep labels; pods keep ownerReferences; apiservices keep labels,
//! annotations, finalizers and ownerReferences; servicecidrs, volumeattachments and
//! validatingadmissionpolicies use `metav1.ResetObjectMetaForStatus` (labels, annotations,
//! finalizers, ownerReferences, deletionTimestamp, generation, selfLink kept); flowschemas and
//! prioritylevelconfigurations keep all of metadata except managedFields. CRDs *call*
//! `ResetObjectMetaForStatus` but with the new object as both arguments, which is a no-op, so CRD
//! `/status` writes may change metadata like the common case. A status subresource never creates
//! (`forceAllowCreate` is false); a status PUT inherits `allow_unconditional_update` of the
//! resource.
//!
//! # Field selectors
//!
//! `field_labels` lists the labels accepted beyond `metadata.name`/`metadata.namespace`, each with
//! the dotted JSON path (in the wire form of the group the request addressed) it reads. Upstream
//! renders an absent field as the zero value of its Go type: `""`, `"0"`, or `"false"` — see
//! [`field_label_value`], which also applies the few fallbacks (`status.podIP` from `podIPs[0]`,
//! events' `source` falling back to the reporting controller). An empty path means upstream
//! accepts the label but never populates it, so it always reads as `""`. Some kinds do not
//! accept `metadata.namespace` at all ([`supports_field_label`]).
#![allow(clippy::too_many_lines)]

use serde_json::Value;

/// How upstream's generic store and the resource's strategy treat one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourcePolicy {
    /// store.ReturnDeletedObject: DELETE answers with the object instead of a Success Status
    pub return_deleted_object: bool,
    /// strategy.AllowCreateOnUpdate(): PUT of a missing object creates it
    pub allow_create_on_update: bool,
    /// strategy.AllowUnconditionalUpdate(): PUT without metadata.resourceVersion is allowed
    pub allow_unconditional_update: bool,
    /// the strategy sets metadata.generation = 1 on create and increments it when the spec
    /// (anything but metadata and status) changes; see [`generation_rule`] for the exceptions
    pub tracks_generation: bool,
    /// PrepareForCreate resets status: None = status left as sent; Some(json) = status replaced
    /// by this JSON, as it is observed in the create response (v1 wire form)
    pub status_on_create: Option<&'static str>,
    /// PUT on the main resource keeps the old status (resource has a status subresource)
    pub update_keeps_status: bool,
    /// field selector labels supported beyond metadata.name/metadata.namespace, each with the
    /// JSON path it reads (empty path: accepted, never populated)
    pub field_labels: &'static [(&'static str, &'static str)],
    /// free text: anything else notable
    pub notes: &'static str,
}

/// A plain generic store: upstream's defaults when a strategy does nothing special.
pub const GENERIC: ResourcePolicy = ResourcePolicy {
    return_deleted_object: false,
    allow_create_on_update: false,
    allow_unconditional_update: true,
    tracks_generation: false,
    status_on_create: None,
    update_keeps_status: false,
    field_labels: &[],
    notes: "",
};

const POD_FIELDS: &[(&str, &str)] = &[
    ("spec.nodeName", "spec.nodeName"),
    ("spec.restartPolicy", "spec.restartPolicy"),
    ("spec.schedulerName", "spec.schedulerName"),
    ("spec.serviceAccountName", "spec.serviceAccountName"),
    ("spec.hostNetwork", "spec.hostNetwork"),
    ("status.phase", "status.phase"),
    ("status.podIP", "status.podIP"),
    ("status.podIPs", ""),
    ("status.nominatedNodeName", "status.nominatedNodeName"),
    // Backwards compatibility for old v1 clients: converted to spec.nodeName.
    ("spec.host", "spec.nodeName"),
];

const CORE_EVENT_FIELDS: &[(&str, &str)] = &[
    ("involvedObject.kind", "involvedObject.kind"),
    ("involvedObject.namespace", "involvedObject.namespace"),
    ("involvedObject.name", "involvedObject.name"),
    ("involvedObject.uid", "involvedObject.uid"),
    ("involvedObject.apiVersion", "involvedObject.apiVersion"),
    ("involvedObject.resourceVersion", "involvedObject.resourceVersion"),
    ("involvedObject.fieldPath", "involvedObject.fieldPath"),
    ("reason", "reason"),
    ("reportingComponent", "reportingComponent"),
    ("source", "source.component"),
    ("type", "type"),
];

const EVENTS_V1_FIELDS: &[(&str, &str)] = &[
    ("regarding.kind", "regarding.kind"),
    ("regarding.namespace", "regarding.namespace"),
    ("regarding.name", "regarding.name"),
    ("regarding.uid", "regarding.uid"),
    ("regarding.apiVersion", "regarding.apiVersion"),
    ("regarding.resourceVersion", "regarding.resourceVersion"),
    ("regarding.fieldPath", "regarding.fieldPath"),
    ("reason", "reason"),
    ("reportingController", "reportingController"),
    ("source", "deprecatedSource.component"),
    ("type", "type"),
];

/// The policy of `group`/`plural` (`""` or `"core"` for the core group). Unknown resources get
/// [`GENERIC`].
pub fn policy(group: &str, plural: &str) -> ResourcePolicy {
    let group = if group == "core" { "" } else { group };
    match (group, plural) {
        // ---------------------------------------------------------------- core
        ("", "configmaps") => ResourcePolicy {
            notes: "Plain store. `immutable: true` makes data/binaryData/immutable read-only (validation).",
            ..GENERIC
        },
        ("", "endpoints") => ResourcePolicy {
            allow_create_on_update: true,
            notes: "Canonicalize repacks subsets after validation (endpoints.RepackSubsets: addresses and \
                    ports merged and sorted), so the stored/returned subsets can differ in order and grouping \
                    from the request.",
            ..GENERIC
        },
        ("", "events") => ResourcePolicy {
            allow_create_on_update: true,
            field_labels: CORE_EVENT_FIELDS,
            notes: "DefaultGarbageCollectionPolicy is Unsupported: DELETE never adds orphan/foregroundDeletion \
                    finalizers whatever propagationPolicy says. Every write is stored with a TTL (--event-ttl, \
                    default 1h) so events expire. Not watch-cached upstream. `source` reads source.component and \
                    falls back to reportingComponent when that is empty. Same storage as events.k8s.io/events.",
            ..GENERIC
        },
        ("", "limitranges") => ResourcePolicy {
            allow_create_on_update: true,
            // unverified: read from a pre-1.2x copy of the strategy; PrepareForCreate there names a
            // LimitRange created with an empty metadata.name (and no generateName) with a random UUID.
            notes: "PrepareForCreate gives a LimitRange with an empty metadata.name a random UUID name \
                    (unverified for 1.33).",
            ..GENERIC
        },
        ("", "namespaces") => ResourcePolicy {
            return_deleted_object: true,
            status_on_create: Some(r#"{"phase":"Active"}"#),
            update_keeps_status: true,
            field_labels: &[("status.phase", "status.phase")],
            notes: "Create: status replaced by {phase: Active} and \"kubernetes\" appended to spec.finalizers when \
                    missing. PUT keeps the old status AND the old spec.finalizers (only PUT .../finalize may \
                    change spec.finalizers; it keeps status). PUT .../status keeps spec. First DELETE does not \
                    remove: it sets deletionTimestamp and status.phase=Terminating and answers 200 with the \
                    namespace; a DELETE while spec.finalizers is non-empty and deletionTimestamp is set answers \
                    409 Conflict \"The system is ensuring all content is removed from this namespace.  Upon \
                    completion, this namespace will automatically be purged by the system.\" (two spaces after \
                    the first period); once spec.finalizers is empty the generic delete runs (metadata.finalizers \
                    still honoured) and answers with the object. A UID precondition is always added. Field \
                    selector accepts only metadata.name and status.phase (metadata.namespace is rejected with \
                    \"field label not supported: metadata.namespace\").",
            ..GENERIC
        },
        ("", "nodes") => ResourcePolicy {
            update_keeps_status: true,
            field_labels: &[("spec.unschedulable", "spec.unschedulable")],
            notes: "Create keeps status as sent (nodes may set status on create). PUT keeps old status; PUT \
                    .../status keeps spec. spec.unschedulable renders \"true\"/\"false\" (absent = \"false\"). \
                    Field selector accepts only metadata.name and spec.unschedulable (metadata.namespace is \
                    rejected).",
            ..GENERIC
        },
        ("", "persistentvolumeclaims") => ResourcePolicy {
            return_deleted_object: true,
            status_on_create: Some(r#"{"phase":"Pending"}"#),
            update_keeps_status: true,
            notes: "PrepareForCreate clears status to {}; v1 defaulting (applied when the object is decoded, \
                    including from storage) then sets status.phase=Pending, which is what clients see. A read \
                    fills spec.dataSourceRef from spec.dataSource when only the latter is set. PUT .../status \
                    keeps spec.",
            ..GENERIC
        },
        ("", "persistentvolumes") => ResourcePolicy {
            return_deleted_object: true,
            status_on_create: Some(r#"{"phase":"Pending"}"#),
            update_keeps_status: true,
            notes: "Create: status replaced by {phase: Pending, lastPhaseTransitionTime: <now, RFC3339 seconds>} \
                    (PersistentVolumeLastPhaseTransitionTime is GA; the JSON above omits the timestamp). PUT \
                    .../status keeps spec; when status.phase changes and the request did not change \
                    lastPhaseTransitionTime it becomes now, when the phase is unchanged and the request sent no \
                    lastPhaseTransitionTime the old one is kept.",
            ..GENERIC
        },
        ("", "pods") => ResourcePolicy {
            return_deleted_object: true,
            tracks_generation: true,
            status_on_create: Some(r#"{"phase":"Pending"}"#),
            update_keeps_status: true,
            field_labels: POD_FIELDS,
            notes: "Create: status replaced by {phase: Pending, qosClass: <computed>} where qosClass is \
                    Guaranteed (every container has equal cpu+memory requests and limits), BestEffort (no \
                    requests/limits at all) or Burstable; a pod with spec.schedulingGates also gets condition \
                    {type: PodScheduled, status: \"False\", reason: SchedulingGated, message: \"Scheduling is \
                    blocked due to non-empty scheduling gates\"}. metadata.generation is set to 1 on create and \
                    +1 on any spec change (1.33 sets it unconditionally, PodObservedGenerationTracking only \
                    gates status.observedGeneration). Graceful deletion: grace = \
                    DeleteOptions.gracePeriodSeconds, else spec.terminationGracePeriodSeconds, else 0; forced \
                    to 0 when spec.nodeName is empty or status.phase is Failed/Succeeded; negative becomes 1. \
                    Grace > 0: the pod stays with deletionTimestamp = now+grace, \
                    deletionGracePeriodSeconds = grace and generation+1, DELETE answers 200 with the pod; a \
                    later DELETE may only shorten the grace. PUT .../status keeps spec and ownerReferences and \
                    cannot clear deletionTimestamp; an empty status.qosClass keeps the old one, a zero \
                    status.observedGeneration (pod or condition) keeps the old one. Field selector: \
                    spec.hostNetwork absent renders \"false\"; status.podIP reads status.podIPs[0].ip; \
                    status.podIPs is accepted but never populated (always \"\"); spec.host is an alias of \
                    spec.nodeName. pods/binding sets spec.nodeName only when it is empty, merges annotations \
                    and sets condition PodScheduled=True; it fails if deletionTimestamp is set.",
            ..GENERIC
        },
        ("", "podtemplates") => ResourcePolicy {
            return_deleted_object: true,
            tracks_generation: true,
            notes: "Generation 1 on create, +1 whenever `template` changes.",
            ..GENERIC
        },
        ("", "replicationcontrollers") => ResourcePolicy {
            tracks_generation: true,
            status_on_create: Some(r#"{"replicas":0}"#),
            update_keeps_status: true,
            field_labels: &[("status.replicas", "status.replicas")],
            notes: "status.replicas renders as a decimal integer (absent = \"0\"). DefaultGarbageCollectionPolicy \
                    is OrphanDependents for core/v1: a DELETE without propagationPolicy/orphanDependents adds the \
                    \"orphan\" finalizer, so the RC is kept (deletionTimestamp set) until the garbage collector \
                    removes the finalizer. PUT .../status keeps spec.",
            ..GENERIC
        },
        ("", "resourcequotas") => ResourcePolicy {
            return_deleted_object: true,
            status_on_create: Some("{}"),
            update_keeps_status: true,
            notes: "PUT .../status keeps spec.",
            ..GENERIC
        },
        ("", "secrets") => ResourcePolicy {
            field_labels: &[("type", "type")],
            notes: "v1 stringData is merged into data on decode and never stored. `immutable: true` makes \
                    data/immutable read-only (validation).",
            ..GENERIC
        },
        ("", "serviceaccounts") => ResourcePolicy {
            return_deleted_object: true,
            notes: "Create and update trim every secrets[] reference to {name} only.",
            ..GENERIC
        },
        ("", "services") => ResourcePolicy {
            return_deleted_object: true,
            allow_create_on_update: true,
            status_on_create: Some(r#"{"loadBalancer":{}}"#),
            update_keeps_status: true,
            field_labels: &[("spec.clusterIP", "spec.clusterIP"), ("spec.type", "spec.type")],
            notes: "Create allocates spec.clusterIP/clusterIPs (unless type ExternalName or clusterIP None) and \
                    node ports for NodePort/LoadBalancer (healthCheckNodePort for LoadBalancer with \
                    externalTrafficPolicy Local); ipFamilies/ipFamilyPolicy are defaulted, also on read. Update \
                    away from a type drops, when the request left them unchanged: clusterIP(s)/ipFamilies/ \
                    ipFamilyPolicy (to ExternalName), nodePorts and healthCheckNodePort, \
                    allocateLoadBalancerNodePorts and loadBalancerClass (leaving LoadBalancer), \
                    externalTrafficPolicy (no longer externally accessible); status.loadBalancer is cleared \
                    whenever the type is not LoadBalancer. Delete releases the allocations and deletes the \
                    service's Endpoints object. PUT .../status keeps spec (and, as status inherits \
                    AllowCreateOnUpdate=true, a status PUT of a missing service goes down the create path — \
                    unverified quirk).",
            ..GENERIC
        },

        // ---------------------------------------------------------------- apps
        ("apps", "controllerrevisions") => GENERIC,
        ("apps", "daemonsets") => ResourcePolicy {
            tracks_generation: true,
            status_on_create: Some(
                r#"{"currentNumberScheduled":0,"numberMisscheduled":0,"desiredNumberScheduled":0,"numberReady":0}"#,
            ),
            update_keeps_status: true,
            notes: "apps/v1 objects carry annotation deprecated.daemonset.template.generation (the internal \
                    spec.templateGeneration): \"1\" on create, +1 whenever spec.template changes, and a client \
                    cannot change it. Generation +1 on any spec change. PUT .../status keeps spec. apps/v1 \
                    registers no field-label conversion: only metadata.name/namespace.",
            ..GENERIC
        },
        ("apps", "deployments") => ResourcePolicy {
            tracks_generation: true,
            status_on_create: Some("{}"),
            update_keeps_status: true,
            notes: "Generation +1 when spec OR metadata.annotations change (annotations are copied to \
                    ReplicaSets). PUT .../status keeps spec AND metadata.labels. spec.selector is immutable in \
                    apps/v1. Scale subresource maps to spec.replicas. No field labels beyond metadata.",
            ..GENERIC
        },
        ("apps", "replicasets") => ResourcePolicy {
            tracks_generation: true,
            status_on_create: Some(r#"{"replicas":0}"#),
            update_keeps_status: true,
            // unverified: the strategy puts status.replicas in its field set, but no apps/v1
            // field-label conversion was found, so upstream would reject the label.
            notes: "PUT .../status keeps spec. status.replicas is in the strategy's field set but apps/v1 \
                    registers no field-label conversion, so it is rejected as a selector (unverified).",
            ..GENERIC
        },
        ("apps", "statefulsets") => ResourcePolicy {
            tracks_generation: true,
            status_on_create: Some(r#"{"replicas":0,"availableReplicas":0}"#),
            update_keeps_status: true,
            notes: "PUT .../status keeps spec. No field labels beyond metadata in apps/v1.",
            ..GENERIC
        },

        // ---------------------------------------------------------------- batch
        ("batch", "cronjobs") => ResourcePolicy {
            tracks_generation: true,
            status_on_create: Some("{}"),
            update_keeps_status: true,
            notes: "PUT .../status keeps spec. Warning when spec.schedule contains TZ or CRON_TZ.",
            ..GENERIC
        },
        ("batch", "jobs") => ResourcePolicy {
            tracks_generation: true,
            status_on_create: Some("{}"),
            update_keeps_status: true,
            field_labels: &[("status.successful", "status.succeeded")],
            notes: "Unless spec.manualSelector is true, create adds template labels job-name and \
                    batch.kubernetes.io/job-name (= metadata.name), controller-uid and \
                    batch.kubernetes.io/controller-uid (= metadata.uid), and selector.matchLabels \
                    {batch.kubernetes.io/controller-uid: <uid>} (labels already present are kept). \
                    DefaultGarbageCollectionPolicy is OrphanDependents for batch/v1: a DELETE without \
                    propagationPolicy adds the \"orphan\" finalizer. status.successful renders \
                    status.succeeded as a decimal (absent = \"0\"). PUT .../status keeps spec.",
            ..GENERIC
        },

        // ---------------------------------------------------------------- autoscaling
        ("autoscaling", "horizontalpodautoscalers") => ResourcePolicy {
            // unverified: the only post-1.33 copy seen gates generation behind HPAGeneration; no
            // 1.33-era copy sets metadata.generation, so 1.33 is taken not to track it.
            status_on_create: Some(r#"{"desiredReplicas":0}"#),
            update_keeps_status: true,
            notes: "Status JSON above is autoscaling/v2; in autoscaling/v1 it reads \
                    {\"currentReplicas\":0,\"desiredReplicas\":0}. No metadata.generation in 1.33 (later \
                    releases add it behind HPAGeneration; unverified). PUT .../status keeps spec.",
            ..GENERIC
        },

        // ---------------------------------------------------------------- policy
        ("policy", "poddisruptionbudgets") => ResourcePolicy {
            allow_unconditional_update: false,
            tracks_generation: true,
            status_on_create: Some(
                r#"{"disruptionsAllowed":0,"currentHealthy":0,"desiredHealthy":0,"expectedPods":0}"#,
            ),
            update_keeps_status: true,
            notes: "PUT (main and /status) requires metadata.resourceVersion. PUT .../status keeps spec.",
            ..GENERIC
        },

        // ---------------------------------------------------------------- networking.k8s.io
        ("networking.k8s.io", "ingressclasses") => ResourcePolicy { tracks_generation: true, ..GENERIC },
        ("networking.k8s.io", "ingresses") => ResourcePolicy {
            tracks_generation: true,
            status_on_create: Some(r#"{"loadBalancer":{}}"#),
            update_keeps_status: true,
            notes: "PUT .../status keeps spec.",
            ..GENERIC
        },
        ("networking.k8s.io", "networkpolicies") => ResourcePolicy {
            // unverified: the NetworkPolicy status field (alpha NetworkPolicyStatus) was removed before
            // 1.33 as far as known; a copy that still had it reset status on create/update.
            tracks_generation: true,
            notes: "No status in 1.33 (the alpha status field was removed; unverified).",
            ..GENERIC
        },
        ("networking.k8s.io", "ipaddresses") => ResourcePolicy {
            notes: "generateName is NOT expanded: the name generator returns the prefix unchanged.",
            ..GENERIC
        },
        ("networking.k8s.io", "servicecidrs") => ResourcePolicy {
            notes: "The main strategy neither resets status on create nor keeps it on update (status as sent \
                    is stored). PUT .../status keeps spec and uses ResetObjectMetaForStatus (labels, \
                    annotations, finalizers, ownerReferences kept). The apiserver's own controller adds the \
                    networking.k8s.io/service-cidr-finalizer finalizer.",
            ..GENERIC
        },

        // ---------------------------------------------------------------- rbac.authorization.k8s.io
        ("rbac.authorization.k8s.io", "roles" | "rolebindings" | "clusterroles" | "clusterrolebindings") => {
            ResourcePolicy {
                allow_create_on_update: true,
                notes: "Create and update additionally enforce RBAC escalation prevention (the requester must \
                        hold the permissions granted, or the escalate/bind verbs). roleRef of a binding is \
                        immutable (validation).",
                ..GENERIC
            }
        }

        // ---------------------------------------------------------------- coordination.k8s.io
        ("coordination.k8s.io", "leases") => ResourcePolicy {
            allow_create_on_update: true,
            allow_unconditional_update: false,
            notes: "PUT may create, but an update of an existing Lease requires metadata.resourceVersion.",
            ..GENERIC
        },
        ("coordination.k8s.io", "leasecandidates") => ResourcePolicy {
            allow_create_on_update: true,
            allow_unconditional_update: false,
            // unverified: spec.leaseName is in the strategy's field set but coordination v1beta1
            // registers no field-label conversion, so upstream rejects it as a selector.
            notes: "Beta in 1.33 (v1beta1, off by default). spec.leaseName is in the strategy's field set but \
                    no field-label conversion is registered, so only metadata.name/namespace are accepted \
                    (unverified).",
            ..GENERIC
        },

        // ---------------------------------------------------------------- discovery.k8s.io
        ("discovery.k8s.io", "endpointslices") => ResourcePolicy {
            tracks_generation: true,
            notes: "Generation +1 when anything outside metadata changes OR metadata.labels change. A \
                    discovery/v1 write that changes endpoints clears each endpoint's deprecatedTopology.",
            ..GENERIC
        },

        // ---------------------------------------------------------------- events.k8s.io
        ("events.k8s.io", "events") => ResourcePolicy {
            allow_create_on_update: true,
            field_labels: EVENTS_V1_FIELDS,
            notes: "Same storage and strategy as core/v1 events (TTL, GC Unsupported). Field selector uses the \
                    events.k8s.io names (regarding.*, reportingController, source, reason, type); the core names \
                    (involvedObject.*, reportingComponent) are rejected with \"field label not supported: X\". \
                    `source` reads deprecatedSource.component and falls back to reportingController.",
            ..GENERIC
        },

        // ---------------------------------------------------------------- storage.k8s.io
        ("storage.k8s.io", "csidrivers") => ResourcePolicy {
            return_deleted_object: true,
            allow_unconditional_update: false,
            tracks_generation: true,
            // unverified: AllowUnconditionalUpdate=false read from a ~1.19 copy.
            ..GENERIC
        },
        ("storage.k8s.io", "csinodes") => ResourcePolicy {
            return_deleted_object: true,
            allow_unconditional_update: false,
            notes: "No status subresource in 1.33 (a later release adds one; unverified).",
            ..GENERIC
        },
        ("storage.k8s.io", "csistoragecapacities") => ResourcePolicy { allow_unconditional_update: false, ..GENERIC },
        ("storage.k8s.io", "storageclasses") => ResourcePolicy { return_deleted_object: true, ..GENERIC },
        ("storage.k8s.io", "volumeattachments") => ResourcePolicy {
            return_deleted_object: true,
            allow_unconditional_update: false,
            status_on_create: Some(r#"{"attached":false}"#),
            update_keeps_status: true,
            notes: "PUT .../status keeps spec and uses ResetObjectMetaForStatus (labels, annotations, \
                    finalizers, ownerReferences kept). spec is immutable (validation), so generation is never \
                    bumped.",
            ..GENERIC
        },
        ("storage.k8s.io", "volumeattributesclasses") => ResourcePolicy {
            return_deleted_object: true,
            notes: "storage.k8s.io/v1beta1 in 1.33 (v1 arrives later).",
            ..GENERIC
        },

        // ---------------------------------------------------------------- scheduling.k8s.io
        ("scheduling.k8s.io", "priorityclasses") => ResourcePolicy {
            tracks_generation: true,
            notes: "Generation is set to 1 on create and NEVER incremented (PrepareForUpdate is empty). DELETE \
                    of system-cluster-critical or system-node-critical answers 403 Forbidden \"this is a system \
                    priority class and cannot be deleted\".",
            ..GENERIC
        },

        // ---------------------------------------------------------------- node.k8s.io
        ("node.k8s.io", "runtimeclasses") => ResourcePolicy {
            allow_create_on_update: true,
            allow_unconditional_update: false,
            // unverified: both values read from a ~1.19 copy of the strategy.
            notes: "PUT may create, but an update of an existing RuntimeClass requires \
                    metadata.resourceVersion. handler is immutable (validation).",
            ..GENERIC
        },

        // ---------------------------------------------------------------- certificates.k8s.io
        ("certificates.k8s.io", "certificatesigningrequests") => ResourcePolicy {
            status_on_create: Some("{}"),
            update_keeps_status: true,
            field_labels: &[("spec.signerName", "spec.signerName")],
            notes: "Create overwrites spec.username, spec.uid, spec.groups (and spec.extra) with the \
                    authenticated requester. PUT on the main resource keeps BOTH the old spec and the old status \
                    (only metadata can change). PUT .../status keeps spec and the approval conditions; PUT \
                    .../approval changes only status.conditions. Field selector accepts only metadata.name and \
                    spec.signerName (metadata.namespace is rejected).",
            ..GENERIC
        },
        ("certificates.k8s.io", "clustertrustbundles") => ResourcePolicy {
            allow_unconditional_update: false,
            field_labels: &[("spec.signerName", "spec.signerName")],
            notes: "v1beta1 in 1.33 (off by default). Field selector accepts only metadata.name and \
                    spec.signerName.",
            ..GENERIC
        },

        // ---------------------------------------------------------------- admissionregistration.k8s.io
        ("admissionregistration.k8s.io", "validatingwebhookconfigurations" | "mutatingwebhookconfigurations") => {
            ResourcePolicy {
                allow_unconditional_update: false,
                tracks_generation: true,
                notes: "Generation +1 when `webhooks` changes.",
                ..GENERIC
            }
        }
        ("admissionregistration.k8s.io", "validatingadmissionpolicies") => ResourcePolicy {
            allow_unconditional_update: false,
            tracks_generation: true,
            status_on_create: Some("{}"),
            update_keeps_status: true,
            notes: "PUT .../status keeps spec and uses ResetObjectMetaForStatus. Create/update also authorize \
                    the paramKind for the requester.",
            ..GENERIC
        },
        ("admissionregistration.k8s.io", "validatingadmissionpolicybindings") => ResourcePolicy {
            allow_unconditional_update: false,
            tracks_generation: true,
            notes: "Create/update also authorize the paramRef for the requester.",
            ..GENERIC
        },
        ("admissionregistration.k8s.io", "mutatingadmissionpolicies" | "mutatingadmissionpolicybindings") => {
            // unverified: v1alpha1 in 1.33; values taken by analogy with the validating variants.
            ResourcePolicy {
                allow_unconditional_update: false,
                tracks_generation: true,
                notes: "v1alpha1 in 1.33 (off by default); behaviour by analogy with the validating variants \
                        (unverified).",
                ..GENERIC
            }
        }

        // ---------------------------------------------------------------- flowcontrol.apiserver.k8s.io
        ("flowcontrol.apiserver.k8s.io", "flowschemas" | "prioritylevelconfigurations") => ResourcePolicy {
            // unverified for prioritylevelconfigurations: taken by analogy with flowschemas.
            tracks_generation: true,
            status_on_create: Some("{}"),
            update_keeps_status: true,
            notes: "PUT .../status keeps spec and ALL of metadata except managedFields. The apiserver maintains \
                    mandatory/suggested objects itself.",
            ..GENERIC
        },

        // ---------------------------------------------------------------- apiregistration.k8s.io
        ("apiregistration.k8s.io", "apiservices") => ResourcePolicy {
            allow_unconditional_update: false,
            status_on_create: Some("{}"),
            update_keeps_status: true,
            notes: "Create resets status; an APIService without spec.service (local) immediately gets condition \
                    {type: Available, status: \"True\", reason: Local, message: \"Local APIServices are always \
                    available\", lastTransitionTime: now}. PUT .../status keeps spec, labels, annotations, \
                    finalizers and ownerReferences.",
            ..GENERIC
        },

        // ---------------------------------------------------------------- apiextensions.k8s.io
        ("apiextensions.k8s.io", "customresourcedefinitions") => ResourcePolicy {
            allow_unconditional_update: false,
            tracks_generation: true,
            // unverified: the exact JSON of an empty acceptedNames/conditions in v1.
            status_on_create: Some(r#"{"acceptedNames":{"plural":"","kind":""},"storedVersions":[]}"#),
            update_keeps_status: true,
            notes: "Create resets status and puts the name of the spec.versions entry with storage: true into \
                    status.storedVersions (the JSON above shows it empty); update appends the current storage \
                    version to storedVersions when missing. First DELETE does not remove: it sets \
                    deletionTimestamp, adds finalizer customresourcecleanup.apiextensions.k8s.io and condition \
                    {type: Terminating, status: \"True\", reason: InstanceDeletionPending, message: \
                    \"CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon\"} \
                    and answers with the CRD; later DELETEs go through the generic store. PUT .../status keeps \
                    spec only (its ResetObjectMetaForStatus call is a no-op upstream).",
            ..GENERIC
        },

        _ => GENERIC,
    }
}

/// How `metadata.generation` moves for a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenerationRule {
    /// Never set by the server (a value sent on create is kept; updates keep the stored value).
    Untracked,
    /// 1 on create, +1 on an update that changes anything outside metadata and status.
    SpecChange,
    /// Like `SpecChange`, and also +1 when `metadata.annotations` change (deployments).
    SpecOrAnnotations,
    /// Like `SpecChange`, and also +1 when `metadata.labels` change (endpointslices).
    SpecOrLabels,
    /// 1 on create, never incremented by updates (priorityclasses).
    CreateOnly,
}

/// The generation behaviour of `group`/`plural`; consistent with `tracks_generation`.
///
/// Independently of this rule, a delete that leaves the object in place (graceful deletion or
/// pending finalizers) bumps a generation that is > 0, once, when it first sets
/// `deletionTimestamp`.
pub fn generation_rule(group: &str, plural: &str) -> GenerationRule {
    let group = if group == "core" { "" } else { group };
    match (group, plural) {
        ("apps", "deployments") => GenerationRule::SpecOrAnnotations,
        ("discovery.k8s.io", "endpointslices") => GenerationRule::SpecOrLabels,
        ("scheduling.k8s.io", "priorityclasses") => GenerationRule::CreateOnly,
        _ if policy(group, plural).tracks_generation => GenerationRule::SpecChange,
        _ => GenerationRule::Untracked,
    }
}

/// What a PUT to `.../status` takes from the stored object instead of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusUpdateRule {
    /// Top-level keys copied from the stored object (for most kinds only `spec`).
    pub keep_from_stored: &'static [&'static str],
    /// `metadata` keys copied from the stored object, on top of what every update protects
    /// (`generation`, `uid`, `creationTimestamp`, `deletionTimestamp`,
    /// `deletionGracePeriodSeconds`). The single entry `"*"` means all of metadata except
    /// `managedFields`.
    pub keep_metadata: &'static [&'static str],
    /// Anything else the status strategy does.
    pub notes: &'static str,
}

const KEEP_SPEC: &[&str] = &["spec"];
const RESET_OBJECT_META_FOR_STATUS: &[&str] =
    &["labels", "annotations", "finalizers", "ownerReferences", "deletionTimestamp", "generation", "selfLink"];

/// The `/status` rule of `group`/`plural`, or `None` when the resource has no status subresource.
pub fn status_update_rule(group: &str, plural: &str) -> Option<StatusUpdateRule> {
    let group = if group == "core" { "" } else { group };
    let spec_only = StatusUpdateRule { keep_from_stored: KEEP_SPEC, keep_metadata: &[], notes: "" };
    let rule = match (group, plural) {
        ("", "pods") => StatusUpdateRule {
            keep_from_stored: KEEP_SPEC,
            keep_metadata: &["ownerReferences"],
            notes: "deletionTimestamp cannot be changed; an empty status.qosClass keeps the stored one; a zero \
                    status.observedGeneration (of the pod or of a condition, matched by type) keeps the stored one.",
        },
        ("", "persistentvolumes") => StatusUpdateRule {
            keep_from_stored: KEEP_SPEC,
            keep_metadata: &[],
            notes: "status.lastPhaseTransitionTime becomes now when the phase changes and the request did not \
                    change it; kept when the phase is unchanged and the request omitted it.",
        },
        (
            "",
            "namespaces"
            | "nodes"
            | "persistentvolumeclaims"
            | "replicationcontrollers"
            | "resourcequotas"
            | "services",
        )
        | ("apps", "daemonsets" | "replicasets" | "statefulsets")
        | ("batch", "cronjobs" | "jobs")
        | ("autoscaling", "horizontalpodautoscalers")
        | ("policy", "poddisruptionbudgets")
        | ("networking.k8s.io", "ingresses")
        | ("apiextensions.k8s.io", "customresourcedefinitions") => spec_only,
        ("apps", "deployments") => {
            StatusUpdateRule { keep_from_stored: KEEP_SPEC, keep_metadata: &["labels"], notes: "" }
        }
        ("networking.k8s.io", "servicecidrs")
        | ("storage.k8s.io", "volumeattachments")
        | ("admissionregistration.k8s.io", "validatingadmissionpolicies") => StatusUpdateRule {
            keep_from_stored: KEEP_SPEC,
            keep_metadata: RESET_OBJECT_META_FOR_STATUS,
            notes: "metav1.ResetObjectMetaForStatus.",
        },
        ("flowcontrol.apiserver.k8s.io", "flowschemas" | "prioritylevelconfigurations") => StatusUpdateRule {
            keep_from_stored: KEEP_SPEC,
            keep_metadata: &["*"],
            notes: "All of metadata except managedFields comes from the stored object.",
        },
        ("apiregistration.k8s.io", "apiservices") => StatusUpdateRule {
            keep_from_stored: KEEP_SPEC,
            keep_metadata: &["labels", "annotations", "finalizers", "ownerReferences"],
            notes: "",
        },
        ("certificates.k8s.io", "certificatesigningrequests") => StatusUpdateRule {
            keep_from_stored: KEEP_SPEC,
            keep_metadata: &[],
            notes: "The approval conditions (Approved/Denied) keep their stored values; use .../approval to \
                    change them.",
        },
        _ => return None,
    };
    Some(rule)
}

/// True when a PUT to `/status` of this resource cannot change labels, annotations, finalizers
/// and ownerReferences (the stored values win). False for most kinds: upstream lets a status
/// write change them.
pub fn status_update_keeps_metadata(group: &str, plural: &str) -> bool {
    status_update_rule(group, plural).is_some_and(|r| {
        r.keep_metadata == ["*"]
            || ["labels", "annotations", "finalizers", "ownerReferences"].iter().all(|k| r.keep_metadata.contains(k))
    })
}

/// The garbage-collection default a DELETE without `propagationPolicy`/`orphanDependents` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultGcPolicy {
    /// Background deletion: no GC finalizer is added.
    Background,
    /// The `orphan` finalizer is added (the object stays until the GC removes it).
    Orphan,
    /// GC finalizers are never added, whatever the request says.
    Unsupported,
}

/// The default GC policy of `group`/`plural` for its current storage version
/// (core/v1 replicationcontrollers and batch/v1 jobs orphan for backwards compatibility).
pub fn default_gc_policy(group: &str, plural: &str) -> DefaultGcPolicy {
    let group = if group == "core" { "" } else { group };
    match (group, plural) {
        ("", "replicationcontrollers") | ("batch", "jobs") => DefaultGcPolicy::Orphan,
        ("", "events") | ("events.k8s.io", "events") => DefaultGcPolicy::Unsupported,
        _ => DefaultGcPolicy::Background,
    }
}

/// How the kind's field-label conversion treats labels (which function upstream registered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conversion {
    /// No conversion function: only metadata.name and metadata.namespace.
    Default,
    /// A conversion function that accepts `metadata.namespace` too; error "field label not supported: X".
    WithNamespace,
    /// A conversion function that does not accept `metadata.namespace`.
    WithoutNamespace,
    /// batch/v1 Job: error `field label "X" not supported for batchv1.Job`.
    Job,
}

fn conversion(group: &str, plural: &str) -> Conversion {
    let group = if group == "core" { "" } else { group };
    match (group, plural) {
        ("", "pods" | "replicationcontrollers" | "events" | "secrets" | "services") | ("events.k8s.io", "events") => {
            Conversion::WithNamespace
        }
        ("", "nodes" | "namespaces")
        | ("certificates.k8s.io", "certificatesigningrequests" | "clustertrustbundles") => Conversion::WithoutNamespace,
        ("batch", "jobs") => Conversion::Job,
        _ => Conversion::Default,
    }
}

/// Whether upstream accepts `label` in a field selector on `group`/`plural`.
pub fn supports_field_label(group: &str, plural: &str, label: &str) -> bool {
    match label {
        "metadata.name" => true,
        "metadata.namespace" => !matches!(conversion(group, plural), Conversion::WithoutNamespace),
        _ => policy(group, plural).field_labels.iter().any(|(l, _)| *l == label),
    }
}

/// The error text upstream's field-label conversion gives for a label the kind does not accept
/// (the API answers 400 BadRequest with this message; kubectl prefixes its own
/// "Unable to find ... that match label selector ..." text).
pub fn unsupported_field_label_message(group: &str, plural: &str, label: &str) -> String {
    match conversion(group, plural) {
        Conversion::Default => {
            format!("\"{label}\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"")
        }
        Conversion::WithNamespace | Conversion::WithoutNamespace => format!("field label not supported: {label}"),
        Conversion::Job => format!("field label \"{label}\" not supported for batchv1.Job"),
    }
}

/// How one label is rendered from the wire object.
enum Render {
    Str(&'static str),
    /// A string read from the first path whose value is a non-empty string.
    FirstNonEmpty(&'static [&'static str]),
    Bool(&'static str),
    Int(&'static str),
    /// Accepted but never populated.
    Empty,
}

fn render_rule(group: &str, plural: &str, label: &str) -> Option<Render> {
    let group = if group == "core" { "" } else { group };
    let r = match (group, plural, label) {
        ("", "pods", "spec.hostNetwork") => Render::Bool("spec.hostNetwork"),
        ("", "pods", "status.podIP") => Render::FirstNonEmpty(&["status.podIPs.0.ip", "status.podIP"]),
        ("", "pods", "status.podIPs") => Render::Empty,
        ("", "nodes", "spec.unschedulable") => Render::Bool("spec.unschedulable"),
        ("", "replicationcontrollers", "status.replicas") => Render::Int("status.replicas"),
        ("batch", "jobs", "status.successful") => Render::Int("status.succeeded"),
        ("", "events", "source") => Render::FirstNonEmpty(&["source.component", "reportingComponent"]),
        ("events.k8s.io", "events", "source") => {
            Render::FirstNonEmpty(&["deprecatedSource.component", "reportingController"])
        }
        _ => {
            let (_, path) = policy(group, plural).field_labels.iter().find(|(l, _)| *l == label)?;
            Render::Str(path)
        }
    };
    Some(r)
}

/// Follows a dotted path; numeric segments index arrays.
fn lookup<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = obj;
    for part in path.split('.') {
        cur = match cur {
            Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
            _ => cur.get(part)?,
        };
    }
    Some(cur)
}

fn string_at(obj: &Value, path: &str) -> String {
    match lookup(obj, path) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// The value upstream's `GetAttrs` gives `label` for `obj` (in the wire form of the group the
/// request addressed), or `None` when the kind does not accept the label. Absent fields render
/// as their Go zero value: `""`, `"0"` or `"false"`.
pub fn field_label_value(group: &str, plural: &str, obj: &Value, label: &str) -> Option<String> {
    if !supports_field_label(group, plural, label) {
        return None;
    }
    match label {
        "metadata.name" => return Some(string_at(obj, "metadata.name")),
        "metadata.namespace" => return Some(string_at(obj, "metadata.namespace")),
        _ => {}
    }
    let value = match render_rule(group, plural, label)? {
        Render::Str("") => String::new(),
        Render::Str(path) => string_at(obj, path),
        Render::FirstNonEmpty(paths) => {
            paths.iter().map(|p| string_at(obj, p)).find(|s| !s.is_empty()).unwrap_or_default()
        }
        Render::Bool(path) => match lookup(obj, path) {
            Some(Value::Bool(true)) => "true".to_string(),
            _ => "false".to_string(),
        },
        Render::Int(path) => match lookup(obj, path) {
            Some(Value::Number(n)) => n.to_string(),
            _ => "0".to_string(),
        },
        Render::Empty => String::new(),
    };
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const GROUPS: &[&str] = &[
        "",
        "apps",
        "batch",
        "autoscaling",
        "policy",
        "networking.k8s.io",
        "rbac.authorization.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "events.k8s.io",
        "storage.k8s.io",
        "scheduling.k8s.io",
        "node.k8s.io",
        "certificates.k8s.io",
        "admissionregistration.k8s.io",
        "flowcontrol.apiserver.k8s.io",
        "apiregistration.k8s.io",
        "apiextensions.k8s.io",
    ];

    const RESOURCES: &[(&str, &str)] = &[
        ("", "configmaps"),
        ("", "endpoints"),
        ("", "events"),
        ("", "limitranges"),
        ("", "namespaces"),
        ("", "nodes"),
        ("", "persistentvolumeclaims"),
        ("", "persistentvolumes"),
        ("", "pods"),
        ("", "podtemplates"),
        ("", "replicationcontrollers"),
        ("", "resourcequotas"),
        ("", "secrets"),
        ("", "serviceaccounts"),
        ("", "services"),
        ("apps", "controllerrevisions"),
        ("apps", "daemonsets"),
        ("apps", "deployments"),
        ("apps", "replicasets"),
        ("apps", "statefulsets"),
        ("batch", "cronjobs"),
        ("batch", "jobs"),
        ("autoscaling", "horizontalpodautoscalers"),
        ("policy", "poddisruptionbudgets"),
        ("networking.k8s.io", "ingressclasses"),
        ("networking.k8s.io", "ingresses"),
        ("networking.k8s.io", "networkpolicies"),
        ("networking.k8s.io", "ipaddresses"),
        ("networking.k8s.io", "servicecidrs"),
        ("rbac.authorization.k8s.io", "roles"),
        ("rbac.authorization.k8s.io", "rolebindings"),
        ("rbac.authorization.k8s.io", "clusterroles"),
        ("rbac.authorization.k8s.io", "clusterrolebindings"),
        ("coordination.k8s.io", "leases"),
        ("coordination.k8s.io", "leasecandidates"),
        ("discovery.k8s.io", "endpointslices"),
        ("events.k8s.io", "events"),
        ("storage.k8s.io", "csidrivers"),
        ("storage.k8s.io", "csinodes"),
        ("storage.k8s.io", "csistoragecapacities"),
        ("storage.k8s.io", "storageclasses"),
        ("storage.k8s.io", "volumeattachments"),
        ("storage.k8s.io", "volumeattributesclasses"),
        ("scheduling.k8s.io", "priorityclasses"),
        ("node.k8s.io", "runtimeclasses"),
        ("certificates.k8s.io", "certificatesigningrequests"),
        ("certificates.k8s.io", "clustertrustbundles"),
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"),
        ("admissionregistration.k8s.io", "validatingwebhookconfigurations"),
        ("admissionregistration.k8s.io", "validatingadmissionpolicies"),
        ("admissionregistration.k8s.io", "validatingadmissionpolicybindings"),
        ("admissionregistration.k8s.io", "mutatingadmissionpolicies"),
        ("admissionregistration.k8s.io", "mutatingadmissionpolicybindings"),
        ("flowcontrol.apiserver.k8s.io", "flowschemas"),
        ("flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations"),
        ("apiregistration.k8s.io", "apiservices"),
        ("apiextensions.k8s.io", "customresourcedefinitions"),
    ];

    #[test]
    fn pods_row() {
        let p = policy("", "pods");
        assert!(p.return_deleted_object);
        assert!(!p.allow_create_on_update);
        assert!(p.allow_unconditional_update);
        assert!(p.tracks_generation);
        assert_eq!(p.status_on_create, Some(r#"{"phase":"Pending"}"#));
        assert!(p.update_keeps_status);
        assert_eq!(policy("core", "pods"), p);
        let pod = json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"nodeName": "n1", "restartPolicy": "Always"},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.7"}]}
        });
        let v = |l| field_label_value("", "pods", &pod, l);
        assert_eq!(v("spec.hostNetwork").as_deref(), Some("false"));
        assert_eq!(v("status.podIP").as_deref(), Some("10.0.0.7"));
        assert_eq!(v("status.podIPs").as_deref(), Some(""));
        assert_eq!(v("spec.host").as_deref(), Some("n1"));
        assert_eq!(v("status.nominatedNodeName").as_deref(), Some(""));
        assert_eq!(v("metadata.namespace").as_deref(), Some("ns"));
        assert_eq!(v("spec.priority"), None);
        assert_eq!(
            unsupported_field_label_message("", "pods", "spec.priority"),
            "field label not supported: spec.priority"
        );
        let rule = status_update_rule("", "pods");
        assert_eq!(rule.map(|r| r.keep_metadata), Some(&["ownerReferences"][..]));
        assert!(!status_update_keeps_metadata("", "pods"));
    }

    #[test]
    fn deployments_row() {
        let p = policy("apps", "deployments");
        assert!(!p.return_deleted_object);
        assert!(!p.allow_create_on_update);
        assert!(p.tracks_generation);
        assert_eq!(p.status_on_create, Some("{}"));
        assert!(p.update_keeps_status);
        assert!(p.field_labels.is_empty());
        assert_eq!(generation_rule("apps", "deployments"), GenerationRule::SpecOrAnnotations);
        assert_eq!(status_update_rule("apps", "deployments").map(|r| r.keep_metadata), Some(&["labels"][..]));
        assert_eq!(
            unsupported_field_label_message("apps", "deployments", "status.replicas"),
            "\"status.replicas\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        );
    }

    #[test]
    fn namespaces_row() {
        let p = policy("", "namespaces");
        assert!(p.return_deleted_object);
        assert_eq!(p.status_on_create, Some(r#"{"phase":"Active"}"#));
        assert!(p.update_keeps_status);
        assert_eq!(p.field_labels, &[("status.phase", "status.phase")]);
        assert!(!supports_field_label("", "namespaces", "metadata.namespace"));
        assert!(supports_field_label("", "namespaces", "metadata.name"));
        let ns = json!({"metadata": {"name": "a"}, "status": {"phase": "Terminating"}});
        assert_eq!(field_label_value("", "namespaces", &ns, "status.phase").as_deref(), Some("Terminating"));
        assert_eq!(field_label_value("", "namespaces", &ns, "name"), None);
    }

    #[test]
    fn events_field_labels() {
        let ev = json!({
            "metadata": {"name": "e", "namespace": "ns"},
            "involvedObject": {"kind": "Pod", "name": "p"},
            "reason": "Started",
            "reportingComponent": "kubelet",
            "type": "Normal"
        });
        let v = |l| field_label_value("", "events", &ev, l);
        assert_eq!(v("involvedObject.kind").as_deref(), Some("Pod"));
        assert_eq!(v("involvedObject.uid").as_deref(), Some(""));
        // source.component is empty, so `source` falls back to the reporting component.
        assert_eq!(v("source").as_deref(), Some("kubelet"));
        assert_eq!(v("regarding.kind"), None);
        assert!(policy("", "events").allow_create_on_update);
        assert_eq!(default_gc_policy("", "events"), DefaultGcPolicy::Unsupported);

        let ev1 = json!({
            "metadata": {"name": "e", "namespace": "ns"},
            "regarding": {"kind": "Pod"},
            "deprecatedSource": {"component": "scheduler"},
            "reportingController": "kubelet"
        });
        let v1 = |l| field_label_value("events.k8s.io", "events", &ev1, l);
        assert_eq!(v1("regarding.kind").as_deref(), Some("Pod"));
        assert_eq!(v1("source").as_deref(), Some("scheduler"));
        assert_eq!(v1("reportingController").as_deref(), Some("kubelet"));
        assert_eq!(v1("involvedObject.kind"), None);
    }

    #[test]
    fn configmaps_are_a_plain_store() {
        let p = policy("", "configmaps");
        assert_eq!(ResourcePolicy { notes: "", ..p }, GENERIC);
        assert_eq!(policy("example.com", "widgets"), GENERIC);
        assert_eq!(status_update_rule("", "configmaps"), None);
        assert_eq!(generation_rule("", "configmaps"), GenerationRule::Untracked);
    }

    #[test]
    fn int_and_bool_labels_render_zero_values() {
        let rc = json!({"metadata": {"name": "r"}, "status": {}});
        assert_eq!(field_label_value("", "replicationcontrollers", &rc, "status.replicas").as_deref(), Some("0"));
        let job = json!({"metadata": {"name": "j"}, "status": {"succeeded": 2}});
        assert_eq!(field_label_value("batch", "jobs", &job, "status.successful").as_deref(), Some("2"));
        assert_eq!(
            unsupported_field_label_message("batch", "jobs", "status.failed"),
            "field label \"status.failed\" not supported for batchv1.Job"
        );
        let node = json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true}});
        assert_eq!(field_label_value("", "nodes", &node, "spec.unschedulable").as_deref(), Some("true"));
        assert_eq!(field_label_value("", "nodes", &node, "metadata.namespace"), None);
    }

    #[test]
    fn every_row_is_consistent() {
        for &(group, plural) in RESOURCES {
            assert!(GROUPS.contains(&group), "{group}");
            let p = policy(group, plural);
            if let Some(s) = p.status_on_create {
                let parsed: Value = serde_json::from_str(s).unwrap_or(Value::Null);
                assert!(parsed.is_object(), "{group}/{plural}: {s}");
            }
            for (label, _) in p.field_labels {
                assert!(supports_field_label(group, plural, label), "{group}/{plural} {label}");
                assert!(render_rule(group, plural, label).is_some(), "{group}/{plural} {label}");
            }
            if status_update_rule(group, plural).is_some() {
                assert!(p.update_keeps_status || plural == "servicecidrs", "{group}/{plural}");
            }
            assert_eq!(p.tracks_generation, generation_rule(group, plural) != GenerationRule::Untracked);
        }
    }

    #[test]
    fn deleted_object_and_create_on_update_sets() {
        let rdo: Vec<_> =
            RESOURCES.iter().filter(|(g, r)| policy(g, r).return_deleted_object).map(|(_, r)| *r).collect();
        assert_eq!(
            rdo,
            [
                "namespaces",
                "persistentvolumeclaims",
                "persistentvolumes",
                "pods",
                "podtemplates",
                "resourcequotas",
                "serviceaccounts",
                "services",
                "csidrivers",
                "csinodes",
                "storageclasses",
                "volumeattachments",
                "volumeattributesclasses",
            ]
        );
        let acou: Vec<_> =
            RESOURCES.iter().filter(|(g, r)| policy(g, r).allow_create_on_update).map(|(_, r)| *r).collect();
        assert_eq!(
            acou,
            [
                "endpoints",
                "events",
                "limitranges",
                "services",
                "roles",
                "rolebindings",
                "clusterroles",
                "clusterrolebindings",
                "leases",
                "leasecandidates",
                "events",
                "runtimeclasses",
            ]
        );
    }
}
