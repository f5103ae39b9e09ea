//! Optional scalar fields that are Go pointers (`*int32`, `*bool`, `*string`, ..) in the upstream
//! API types, so an explicit zero (`replicas: 0`, `runAsUser: 0`, `storageClassName: ""`) means
//! something different from "not set".
//!
//! Why this list exists: go-to-protobuf writes every non-pointer field on the wire, zero or not,
//! and a pointer field only when it is non-nil. A decoder therefore sees `minReadySeconds = 0`
//! (non-pointer, `omitempty`: Go's JSON omits it) and `replicas = 0` (pointer: Go's JSON keeps it)
//! the same way. Neither the .proto schema, the OpenAPI schema nor k8s-openapi records pointer-ness,
//! so it is written down here, from the Go types in k8s.io/api (`types.go` of each group) and
//! k8s.io/apimachinery (`pkg/apis/meta/v1/types.go`). Fields the OpenAPI schema marks required are
//! kept when zero anyway and are not repeated here.
//!
//! A selector is a message name, optionally prefixed with a package component that must appear in
//! the message's proto package (`discovery/EndpointPort` is not core/v1's `EndpointPort`). Every
//! entry must match at least one field, so a typo fails generation.

/// `(selector, JSON field names)`.
pub const POINTER_SCALARS: &[(&str, &[&str])] = &[
    // k8s.io/apimachinery/pkg/apis/meta/v1
    ("meta/ObjectMeta", &["deletionGracePeriodSeconds"]),
    ("meta/ListMeta", &["remainingItemCount"]),
    (
        "meta/DeleteOptions",
        &[
            "gracePeriodSeconds",
            "orphanDependents",
            "propagationPolicy",
            "ignoreStoreReadErrorWithClusterBreakingPotential",
        ],
    ),
    ("meta/Preconditions", &["uid", "resourceVersion"]),
    ("meta/OwnerReference", &["controller", "blockOwnerDeletion"]),
    ("meta/ListOptions", &["timeoutSeconds", "sendInitialEvents"]),
    ("meta/PatchOptions", &["force"]),
    // k8s.io/api/core/v1
    (
        "core/PodSpec",
        &[
            "terminationGracePeriodSeconds",
            "activeDeadlineSeconds",
            "automountServiceAccountToken",
            "shareProcessNamespace",
            "priority",
            "enableServiceLinks",
            "setHostnameAsFQDN",
            "hostUsers",
            "runtimeClassName",
            "preemptionPolicy",
            "hostnameOverride",
        ],
    ),
    (
        "core/PodSecurityContext",
        &[
            "runAsUser",
            "runAsGroup",
            "runAsNonRoot",
            "fsGroup",
            "fsGroupChangePolicy",
            "supplementalGroupsPolicy",
            "seLinuxChangePolicy",
        ],
    ),
    (
        "core/SecurityContext",
        &[
            "privileged",
            "runAsUser",
            "runAsGroup",
            "runAsNonRoot",
            "readOnlyRootFilesystem",
            "allowPrivilegeEscalation",
            "procMount",
        ],
    ),
    (
        "core/WindowsSecurityContextOptions",
        &[
            "gmsaCredentialSpecName",
            "gmsaCredentialSpec",
            "runAsUserName",
            "hostProcess",
        ],
    ),
    ("core/SeccompProfile", &["localhostProfile"]),
    ("core/AppArmorProfile", &["localhostProfile"]),
    ("core/Container", &["restartPolicy"]),
    ("core/EphemeralContainerCommon", &["restartPolicy"]),
    ("core/Probe", &["terminationGracePeriodSeconds"]),
    ("core/Lifecycle", &["stopSignal"]),
    ("core/ContainerStatus", &["started", "stopSignal"]),
    ("core/GRPCAction", &["service"]),
    ("core/ConfigMap", &["immutable"]),
    ("core/Secret", &["immutable"]),
    ("core/ConfigMapEnvSource", &["optional"]),
    ("core/SecretEnvSource", &["optional"]),
    ("core/ConfigMapKeySelector", &["optional"]),
    ("core/SecretKeySelector", &["optional"]),
    ("core/FileKeySelector", &["optional"]),
    ("core/ConfigMapProjection", &["optional"]),
    ("core/SecretProjection", &["optional"]),
    ("core/ConfigMapVolumeSource", &["defaultMode", "optional"]),
    ("core/SecretVolumeSource", &["defaultMode", "optional"]),
    ("core/DownwardAPIVolumeSource", &["defaultMode"]),
    ("core/DownwardAPIVolumeFile", &["mode"]),
    ("core/ProjectedVolumeSource", &["defaultMode"]),
    ("core/KeyToPath", &["mode"]),
    (
        "core/ClusterTrustBundleProjection",
        &["name", "signerName", "optional"],
    ),
    ("core/ServiceAccountTokenProjection", &["expirationSeconds"]),
    ("core/PodCertificateProjection", &["maxExpirationSeconds"]),
    ("core/HostPathVolumeSource", &["type"]),
    ("core/CSIVolumeSource", &["readOnly", "fsType"]),
    (
        "core/AzureDiskVolumeSource",
        &["cachingMode", "fsType", "readOnly", "kind"],
    ),
    ("core/AzureFilePersistentVolumeSource", &["secretNamespace"]),
    ("core/FCVolumeSource", &["lun"]),
    ("core/ISCSIVolumeSource", &["initiatorName"]),
    ("core/ISCSIPersistentVolumeSource", &["initiatorName"]),
    (
        "core/VolumeMount",
        &["recursiveReadOnly", "mountPropagation"],
    ),
    ("core/VolumeMountStatus", &["recursiveReadOnly"]),
    (
        "core/PersistentVolumeClaimSpec",
        &[
            "storageClassName",
            "volumeMode",
            "volumeAttributesClassName",
        ],
    ),
    (
        "core/PersistentVolumeSpec",
        &["volumeMode", "volumeAttributesClassName"],
    ),
    (
        "core/PersistentVolumeClaimStatus",
        &["currentVolumeAttributesClassName"],
    ),
    (
        "core/ServiceSpec",
        &[
            "allocateLoadBalancerNodePorts",
            "ipFamilyPolicy",
            "loadBalancerClass",
            "internalTrafficPolicy",
            "trafficDistribution",
        ],
    ),
    ("core/ServicePort", &["appProtocol"]),
    ("core/ClientIPConfig", &["timeoutSeconds"]),
    ("core/EndpointPort", &["appProtocol"]),
    ("core/EndpointAddress", &["nodeName"]),
    ("core/LoadBalancerIngress", &["ipMode"]),
    ("core/Toleration", &["tolerationSeconds"]),
    (
        "core/TopologySpreadConstraint",
        &["minDomains", "nodeAffinityPolicy", "nodeTaintsPolicy"],
    ),
    ("core/ReplicationControllerSpec", &["replicas"]),
    ("core/NodeSwapStatus", &["capacity"]),
    ("core/NodeFeatures", &["supplementalGroupsPolicy"]),
    (
        "core/NodeRuntimeHandlerFeatures",
        &["recursiveReadOnlyMounts", "userNamespaces"],
    ),
    (
        "core/PodLogOptions",
        &["sinceSeconds", "tailLines", "limitBytes", "stream"],
    ),
    ("core/PodDNSConfigOption", &["value"]),
    ("core/TypedLocalObjectReference", &["apiGroup"]),
    ("core/TypedObjectReference", &["apiGroup", "namespace"]),
    (
        "core/PodResourceClaim",
        &["resourceClaimName", "resourceClaimTemplateName"],
    ),
    ("core/PodResourceClaimStatus", &["resourceClaimName"]),
    ("core/ServiceAccount", &["automountServiceAccountToken"]),
    // k8s.io/api/apps
    (
        "apps/DeploymentSpec",
        &[
            "replicas",
            "revisionHistoryLimit",
            "progressDeadlineSeconds",
        ],
    ),
    (
        "apps/DeploymentStatus",
        &["collisionCount", "terminatingReplicas"],
    ),
    ("apps/ReplicaSetSpec", &["replicas"]),
    ("apps/ReplicaSetStatus", &["terminatingReplicas"]),
    (
        "apps/StatefulSetSpec",
        &["replicas", "revisionHistoryLimit"],
    ),
    ("apps/StatefulSetStatus", &["collisionCount"]),
    ("apps/RollingUpdateStatefulSetStrategy", &["partition"]),
    ("apps/DaemonSetSpec", &["revisionHistoryLimit"]),
    ("apps/DaemonSetStatus", &["collisionCount"]),
    // k8s.io/api/batch
    (
        "batch/JobSpec",
        &[
            "parallelism",
            "completions",
            "activeDeadlineSeconds",
            "backoffLimit",
            "backoffLimitPerIndex",
            "maxFailedIndexes",
            "ttlSecondsAfterFinished",
            "suspend",
            "manualSelector",
            "completionMode",
            "podReplacementPolicy",
            "managedBy",
        ],
    ),
    (
        "batch/JobStatus",
        &["terminating", "ready", "failedIndexes"],
    ),
    (
        "batch/CronJobSpec",
        &[
            "startingDeadlineSeconds",
            "suspend",
            "successfulJobsHistoryLimit",
            "failedJobsHistoryLimit",
            "timeZone",
        ],
    ),
    (
        "batch/PodFailurePolicyOnExitCodesRequirement",
        &["containerName"],
    ),
    (
        "batch/SuccessPolicyRule",
        &["succeededIndexes", "succeededCount"],
    ),
    // k8s.io/api/autoscaling
    ("autoscaling/HorizontalPodAutoscalerSpec", &["minReplicas"]),
    (
        "autoscaling/v1/HorizontalPodAutoscalerSpec",
        &["targetCPUUtilizationPercentage"],
    ),
    (
        "autoscaling/HorizontalPodAutoscalerStatus",
        &["observedGeneration"],
    ),
    (
        "autoscaling/v1/HorizontalPodAutoscalerStatus",
        &["currentCPUUtilizationPercentage"],
    ),
    (
        "autoscaling/HPAScalingRules",
        &["stabilizationWindowSeconds", "selectPolicy"],
    ),
    ("autoscaling/MetricTarget", &["averageUtilization"]),
    ("autoscaling/MetricValueStatus", &["averageUtilization"]),
    (
        "autoscaling/v1/ResourceMetricSource",
        &["targetAverageUtilization"],
    ),
    (
        "autoscaling/v1/ContainerResourceMetricSource",
        &["targetAverageUtilization"],
    ),
    (
        "autoscaling/v1/ResourceMetricStatus",
        &["currentAverageUtilization"],
    ),
    (
        "autoscaling/v1/ContainerResourceMetricStatus",
        &["currentAverageUtilization"],
    ),
    // k8s.io/api/policy
    (
        "policy/PodDisruptionBudgetSpec",
        &["unhealthyPodEvictionPolicy"],
    ),
    // k8s.io/api/networking
    ("networking/NetworkPolicyPort", &["protocol", "endPort"]),
    ("networking/IngressSpec", &["ingressClassName"]),
    ("networking/IngressPortStatus", &["error"]),
    (
        "networking/IngressClassParametersReference",
        &["apiGroup", "scope", "namespace"],
    ),
    ("networking/HTTPIngressPath", &["pathType"]),
    // k8s.io/api/discovery
    (
        "discovery/EndpointConditions",
        &["ready", "serving", "terminating"],
    ),
    (
        "discovery/EndpointPort",
        &["name", "protocol", "port", "appProtocol"],
    ),
    ("discovery/Endpoint", &["hostname", "nodeName", "zone"]),
    // k8s.io/api/storage
    (
        "storage/CSIDriverSpec",
        &[
            "attachRequired",
            "podInfoOnMount",
            "storageCapacity",
            "requiresRepublish",
            "seLinuxMount",
            "nodeAllocatableUpdatePeriodSeconds",
            "serviceAccountTokenInSecrets",
            "fsGroupPolicy",
        ],
    ),
    (
        "storage/StorageClass",
        &["allowVolumeExpansion", "reclaimPolicy", "volumeBindingMode"],
    ),
    ("storage/TokenRequest", &["expirationSeconds"]),
    ("storage/VolumeError", &["errorCode"]),
    ("storage/VolumeNodeResources", &["count"]),
    ("storage/VolumeAttachmentSource", &["persistentVolumeName"]),
    // k8s.io/api/authentication, certificates, coordination, scheduling
    ("authentication/TokenRequestSpec", &["expirationSeconds"]),
    (
        "certificates/CertificateSigningRequestSpec",
        &["expirationSeconds"],
    ),
    (
        "coordination/LeaseSpec",
        &[
            "holderIdentity",
            "leaseDurationSeconds",
            "leaseTransitions",
            "strategy",
            "preferredHolder",
        ],
    ),
    ("scheduling/PriorityClass", &["preemptionPolicy"]),
    // k8s.io/api/flowcontrol
    (
        "flowcontrol/ExemptPriorityLevelConfiguration",
        &["nominalConcurrencyShares", "lendablePercent"],
    ),
    (
        "flowcontrol/v1/LimitedPriorityLevelConfiguration",
        &[
            "nominalConcurrencyShares",
            "lendablePercent",
            "borrowingLimitPercent",
        ],
    ),
    // k8s.io/api/admissionregistration
    (
        "admissionregistration/MutatingWebhook",
        &[
            "timeoutSeconds",
            "sideEffects",
            "failurePolicy",
            "matchPolicy",
            "reinvocationPolicy",
        ],
    ),
    (
        "admissionregistration/ValidatingWebhook",
        &[
            "timeoutSeconds",
            "sideEffects",
            "failurePolicy",
            "matchPolicy",
        ],
    ),
    ("admissionregistration/ServiceReference", &["port", "path"]),
    ("admissionregistration/WebhookClientConfig", &["url"]),
    ("admissionregistration/Rule", &["scope"]),
    (
        "admissionregistration/ValidatingAdmissionPolicySpec",
        &["failurePolicy"],
    ),
    ("admissionregistration/MatchResources", &["matchPolicy"]),
    (
        "admissionregistration/ParamRef",
        &["parameterNotFoundAction"],
    ),
    ("admissionregistration/Validation", &["reason"]),
    ("admission/AdmissionRequest", &["dryRun"]),
    ("admission/AdmissionResponse", &["patchType"]),
    // k8s.io/apiextensions-apiserver
    (
        "apiextensions/CustomResourceDefinitionVersion",
        &["deprecationWarning"],
    ),
    ("apiextensions/ServiceReference", &["port", "path"]),
    ("apiextensions/WebhookClientConfig", &["url"]),
    (
        "apiextensions/CustomResourceSubresourceScale",
        &["labelSelectorPath"],
    ),
    (
        "apiextensions/ValidationRule",
        &["optionalOldSelf", "reason"],
    ),
    (
        "apiextensions/JSONSchemaProps",
        &[
            "maximum",
            "minimum",
            "maxLength",
            "minLength",
            "maxItems",
            "minItems",
            "multipleOf",
            "maxProperties",
            "minProperties",
            "x-kubernetes-preserve-unknown-fields",
            "x-kubernetes-list-type",
            "x-kubernetes-map-type",
        ],
    ),
    // k8s.io/kube-aggregator
    ("apiregistration/ServiceReference", &["port"]),
    // k8s.io/api/resource
    (
        "resource/v1/Device",
        &[
            "allNodes",
            "bindsToNode",
            "allowMultipleAllocations",
            "nodeName",
        ],
    ),
    (
        "resource/DeviceAttribute",
        &["int", "bool", "string", "version"],
    ),
    ("resource/DeviceRequestAllocationResult", &["adminAccess"]),
    ("resource/ExactDeviceRequest", &["adminAccess"]),
    ("resource/DeviceToleration", &["tolerationSeconds"]),
    (
        "resource/ResourceSliceSpec",
        &["allNodes", "perDeviceNodeSelection", "nodeName"],
    ),
];
