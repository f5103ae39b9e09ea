//! Built-in admission plugins, each acting with upstream's messages.

use std::time::{Duration, Instant};

use crate::{api_only_cluster, cluster};

/// A one-container pod; `container_extra` continues the container's flow mapping.
fn pod(name: &str, container_extra: &str) -> String {
    pod_with(name, container_extra, "")
}

/// As [`pod`], with `spec_extra` lines (indented) added to the spec.
fn pod_with(name: &str, container_extra: &str, spec_extra: &str) -> String {
    format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  containers: [{{name: c, image: registry.example/nginx:1.25{container_extra}}}]\n{spec_extra}")
}

#[test]
fn namespace_lifecycle_refuses_pods_in_a_missing_namespace() {
    let c = api_only_cluster();
    let err = c.kubectl().fails(&["run", "p", "--image=nginx", "-n", "nope"]).unwrap();
    assert!(err.contains("namespaces \"nope\" not found"), "{err}");
}

#[test]
fn limit_ranger_applies_defaults_and_enforces_max_and_ratio() {
    let c = api_only_cluster();
    let k = c.kubectl();
    k.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: LimitRange\nmetadata: {name: limits}\nspec:\n  limits:\n  - type: Container\n    default: {cpu: 500m, memory: 128Mi}\n    max: {cpu: '1'}\n    maxLimitRequestRatio: {memory: '2'}\n",
    )
    .unwrap();
    k.ok_stdin(&["create", "-f", "-"], &pod("defaulted", "")).unwrap();
    let p = k.json(&["get", "pod", "defaulted", "-o", "json"]).unwrap();
    let res = &p["spec"]["containers"][0]["resources"];
    assert_eq!(res["limits"]["cpu"], "500m", "{p}");
    assert_eq!(res["requests"]["memory"], "128Mi", "{p}");
    assert_eq!(
        p["metadata"]["annotations"]["kubernetes.io/limit-ranger"],
        "LimitRanger plugin set: cpu, memory request for container c; cpu, memory limit for container c"
    );
    let big = pod("big", ", resources: {limits: {cpu: '2'}}");
    let o = k.run_stdin(&["create", "-f", "-"], &big).unwrap();
    assert!(!o.success);
    assert!(o.stderr.contains("pods \"big\" is forbidden: maximum cpu usage per Container is 1, but limit is 2"), "{}", o.stderr);
    let ratio = pod("ratio", ", resources: {limits: {memory: 1Gi}, requests: {memory: 256Mi}}");
    let o = k.run_stdin(&["create", "-f", "-"], &ratio).unwrap();
    assert!(o.stderr.contains("memory max limit to request ratio per Container is 2, but provided ratio is 4.000000"), "{}", o.stderr);
}

#[test]
fn service_account_plugin_sets_the_default_account_and_projected_volume() {
    let c = cluster();
    let k = c.kubectl();
    k.ok_stdin(&["create", "-f", "-"], &pod("p", "")).unwrap();
    let p = k.json(&["get", "pod", "p", "-o", "json"]).unwrap();
    assert_eq!(p["spec"]["serviceAccountName"], "default");
    let volume = &p["spec"]["volumes"][0];
    let name = volume["name"].as_str().unwrap_or_default();
    assert!(name.starts_with("kube-api-access-") && name.len() == 21, "{p}");
    let sources = &volume["projected"]["sources"];
    assert_eq!(sources[0]["serviceAccountToken"]["path"], "token");
    assert_eq!(sources[1]["configMap"]["name"], "kube-root-ca.crt");
    assert_eq!(sources[2]["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"], "metadata.namespace");
    let mount = &p["spec"]["containers"][0]["volumeMounts"][0];
    assert_eq!(mount["mountPath"], "/var/run/secrets/kubernetes.io/serviceaccount");
    assert_eq!(mount["readOnly"], true);
    let o = k.run_stdin(&["create", "-f", "-"], &pod_with("q", "", "  serviceAccountName: ghost\n")).unwrap();
    assert!(o.stderr.contains("pods \"q\" is forbidden: error looking up service account default/ghost: serviceaccount \"ghost\" not found"), "{}", o.stderr);
}

#[test]
fn service_account_plugin_copies_the_accounts_image_pull_secrets() {
    let c = cluster();
    let k = c.kubectl();
    k.ok_stdin(&["apply", "-f", "-"], "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: puller}\nimagePullSecrets: [{name: regcred}, {name: backup}]\n").unwrap();
    let account = "  serviceAccountName: puller\n";
    k.ok_stdin(&["create", "-f", "-"], &pod_with("inherits", "", account)).unwrap();
    let secrets = k.ok(&["get", "pod", "inherits", "-o", "jsonpath={.spec.imagePullSecrets[*].name}"]).unwrap();
    assert_eq!(secrets, "regcred backup");
    // A pod naming its own secrets keeps exactly those.
    let own = format!("{account}  imagePullSecrets: [{{name: mine}}]\n");
    k.ok_stdin(&["create", "-f", "-"], &pod_with("own", "", &own)).unwrap();
    let secrets = k.ok(&["get", "pod", "own", "-o", "jsonpath={.spec.imagePullSecrets[*].name}"]).unwrap();
    assert_eq!(secrets, "mine");
}

#[test]
fn service_account_plugin_leaves_mirror_pods_alone_and_refuses_their_credentials() {
    let c = cluster();
    let k = c.kubectl();
    let mirror = |name: &str, spec: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, annotations: {{kubernetes.io/config.mirror: abc}}}}\nspec:\n  nodeName: n1\n  containers: [{{name: c, image: busybox}}]\n{spec}"
        )
    };
    // A mirror pod gets no service account and no API token volume.
    k.ok_stdin(&["create", "-f", "-"], &mirror("plain", "")).unwrap();
    let p = k.json(&["get", "pod", "plain", "-o", "json"]).unwrap();
    assert!(p["spec"]["serviceAccountName"].is_null(), "{p}");
    assert!(p["spec"]["volumes"].is_null(), "{p}");
    let refused = |name: &str, spec: &str| k.run_stdin(&["create", "-f", "-"], &mirror(name, spec)).unwrap().stderr;
    let e = refused("account", "  serviceAccountName: default\n");
    assert!(e.contains("pods \"account\" is forbidden: a mirror pod may not reference service accounts"), "{e}");
    let e = refused("secret", "  volumes: [{name: s, secret: {secretName: s}}]\n");
    assert!(e.contains("pods \"secret\" is forbidden: a mirror pod may not reference secrets"), "{e}");
    let e = refused("token", "  volumes: [{name: t, projected: {sources: [{serviceAccountToken: {path: t}}]}}]\n");
    assert!(e.contains("pods \"token\" is forbidden: a mirror pod may not use ServiceAccountToken volume projections"), "{e}");
}

#[test]
fn priority_and_default_tolerations_are_filled_in() {
    let c = api_only_cluster();
    let k = c.kubectl();
    let classes = k.ok(&["get", "priorityclasses", "-o", "name"]).unwrap();
    assert!(classes.contains("priorityclass.scheduling.k8s.io/system-cluster-critical"), "{classes}");
    assert!(classes.contains("priorityclass.scheduling.k8s.io/system-node-critical"), "{classes}");
    k.ok_stdin(&["create", "-f", "-"], &pod_with("critical", "", "  priorityClassName: system-cluster-critical\n")).unwrap();
    let p = k.json(&["get", "pod", "critical", "-o", "json"]).unwrap();
    assert_eq!(p["spec"]["priority"], 2_000_000_000);
    assert_eq!(p["spec"]["preemptionPolicy"], "PreemptLowerPriority");
    let tolerations = p["spec"]["tolerations"].as_array().cloned().unwrap_or_default();
    for key in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] {
        assert!(
            tolerations.iter().any(|t| t["key"] == key && t["effect"] == "NoExecute" && t["tolerationSeconds"] == 300),
            "{key} in {tolerations:?}"
        );
    }
    let o = k.run_stdin(&["create", "-f", "-"], &pod_with("lost", "", "  priorityClassName: nope\n")).unwrap();
    assert!(o.stderr.contains("pods \"lost\" is forbidden: no PriorityClass with name nope was found"), "{}", o.stderr);
}

#[test]
fn pod_security_enforces_restricted_and_warns_for_baseline() {
    let c = api_only_cluster();
    let k = c.kubectl();
    k.ok(&["create", "namespace", "locked"]).unwrap();
    k.ok(&["label", "namespace", "locked", "pod-security.kubernetes.io/enforce=restricted"]).unwrap();
    let privileged = pod("priv", ", securityContext: {privileged: true}");
    let o = k.run_stdin(&["create", "-n", "locked", "-f", "-"], &privileged).unwrap();
    assert!(!o.success);
    assert!(
        o.stderr.contains(
            "pods \"priv\" is forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"c\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"c\" must set securityContext.capabilities.drop=[\"ALL\"]), privileged (container \"c\" must not set securityContext.privileged=true)"
        ),
        "{}",
        o.stderr
    );
    k.ok(&["create", "namespace", "watched"]).unwrap();
    k.ok(&["label", "namespace", "watched", "pod-security.kubernetes.io/warn=baseline"]).unwrap();
    let o = k.run_stdin(&["create", "-n", "watched", "-f", "-"], &privileged).unwrap();
    assert!(o.success, "{}", o.stderr);
    assert!(
        o.stderr.contains("Warning: would violate PodSecurity \"baseline:latest\": privileged (container \"c\" must not set securityContext.privileged=true)"),
        "{}",
        o.stderr
    );
}

#[test]
fn resource_quota_refuses_over_quota_creates_and_keeps_status_current() {
    let c = api_only_cluster();
    let k = c.kubectl();
    k.ok(&["create", "quota", "q", "--hard=pods=1,requests.cpu=1"]).unwrap();
    k.ok_stdin(&["create", "-f", "-"], &pod("one", ", resources: {requests: {cpu: 500m}}")).unwrap();
    let o = k.run_stdin(&["create", "-f", "-"], &pod("two", ", resources: {requests: {cpu: 500m}}")).unwrap();
    assert!(!o.success);
    assert!(
        o.stderr.contains("pods \"two\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1"),
        "{}",
        o.stderr
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let q = k.json(&["get", "quota", "q", "-o", "json"]).unwrap();
        if q["status"]["used"]["pods"] == "1" && q["status"]["used"]["requests.cpu"] == "500m" && q["status"]["hard"]["pods"] == "1" {
            break;
        }
        assert!(Instant::now() < deadline, "quota status not current: {q}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn namespace_lifecycle_refuses_new_content_in_a_terminating_namespace() {
    let c = cluster();
    let k = c.kubectl();
    k.ok(&["create", "namespace", "leaving"]).unwrap();
    // A finalizer nobody removes keeps the namespace Terminating while its content is deleted.
    k.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  namespace: leaving\n  finalizers: [example.com/hold]\n",
    )
    .unwrap();
    k.ok(&["delete", "namespace", "leaving", "--wait=false"]).unwrap();
    let err = k.fails(&["create", "configmap", "late", "-n", "leaving"]).unwrap();
    assert!(
        err.contains("configmaps \"late\" is forbidden: unable to create new content in namespace leaving because it is being terminated"),
        "{err}"
    );
    // Releasing the finalizer lets the namespace finish terminating.
    k.ok(&["patch", "configmap", "held", "-n", "leaving", "--type=merge", "-p", r#"{"metadata":{"finalizers":null}}"#]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while k.run(&["get", "namespace", "leaving"]).unwrap().success {
        assert!(Instant::now() < deadline, "namespace leaving still exists");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn pod_security_warns_about_workload_templates_in_warn_mode() {
    let c = api_only_cluster();
    let k = c.kubectl();
    k.ok(&["create", "namespace", "strict"]).unwrap();
    k.ok(&["label", "namespace", "strict", "pod-security.kubernetes.io/warn=restricted"]).unwrap();
    let o = k.run(&["create", "deployment", "web", "--image=registry.example/nginx:1.25", "-n", "strict"]).unwrap();
    assert!(o.success, "{}", o.stderr);
    assert!(
        o.stderr.contains(
            "Warning: would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"nginx\" must set securityContext.allowPrivilegeEscalation=false), \
             unrestricted capabilities (container \"nginx\" must set securityContext.capabilities.drop=[\"ALL\"]), \
             runAsNonRoot != true (pod or container \"nginx\" must set securityContext.runAsNonRoot=true), \
             seccompProfile (pod or container \"nginx\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
        ),
        "{}",
        o.stderr
    );
    // A CronJob's template is nested one level deeper; an update that leaves the template alone
    // (scaling) is not re-checked.
    let o = k.run(&["create", "cronjob", "tick", "--image=registry.example/busybox", "--schedule=*/5 * * * *", "-n", "strict"]).unwrap();
    assert!(o.stderr.contains("Warning: would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"tick\""), "{}", o.stderr);
    let o = k.run(&["scale", "deployment", "web", "--replicas=2", "-n", "strict"]).unwrap();
    assert!(o.success && !o.stderr.contains("PodSecurity"), "{}", o.stderr);
}

#[test]
fn pod_security_baseline_refuses_each_newer_check_with_upstream_text() {
    let c = api_only_cluster();
    let k = c.kubectl();
    k.ok(&["create", "namespace", "base"]).unwrap();
    k.ok(&["label", "namespace", "base", "pod-security.kubernetes.io/enforce=baseline"]).unwrap();
    let cases = [
        ("sysctl", "", "  securityContext: {sysctls: [{name: kernel.msgmax, value: '65536'}]}\n", "forbidden sysctls (kernel.msgmax)"),
        ("selinux", ", securityContext: {seLinuxOptions: {type: spc_t}}", "", "seLinuxOptions (container \"c\" set forbidden securityContext.seLinuxOptions: type \"spc_t\")"),
        ("seccomp", "", "  securityContext: {seccompProfile: {type: Unconfined}}\n", "seccompProfile (pod must not set securityContext.seccompProfile.type to \"Unconfined\")"),
        ("apparmor", ", securityContext: {appArmorProfile: {type: Unconfined}}", "", "forbidden AppArmor profile (container \"c\" must not set AppArmor profile type to \"Unconfined\")"),
        ("capadd", ", securityContext: {capabilities: {add: [SYS_ADMIN, NET_RAW]}}", "", "non-default capabilities (container \"c\" must not include \"NET_RAW\", \"SYS_ADMIN\" in securityContext.capabilities.add)"),
        ("ports", ", ports: [{containerPort: 80, hostPort: 8080}]", "", "hostPort (container \"c\" uses hostPort 8080)"),
    ];
    for (name, container_extra, spec_extra, detail) in cases {
        let o = k.run_stdin(&["create", "-n", "base", "-f", "-"], &pod_with(name, container_extra, spec_extra)).unwrap();
        assert!(!o.success, "{name} was admitted");
        let want = format!("pods \"{name}\" is forbidden: violates PodSecurity \"baseline:latest\": {detail}");
        assert!(o.stderr.contains(&want), "want {want}\ngot {}", o.stderr);
    }
    // The AppArmor annotation is checked as well as the field.
    let annotated = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: annotated\n  annotations: {container.apparmor.security.beta.kubernetes.io/c: unconfined}\nspec:\n  containers: [{name: c, image: nginx}]\n";
    let o = k.run_stdin(&["create", "-n", "base", "-f", "-"], annotated).unwrap();
    assert!(
        o.stderr.contains(r#"forbidden AppArmor profile (annotation must not set AppArmor profile type to "container.apparmor.security.beta.kubernetes.io/c=\"unconfined\"")"#),
        "{}",
        o.stderr
    );}

#[test]
fn pod_security_validates_namespace_labels_and_warns_about_existing_pods() {
    let c = api_only_cluster();
    let k = c.kubectl();
    k.ok(&["create", "namespace", "team"]).unwrap();
    let err = k.fails(&["label", "namespace", "team", "pod-security.kubernetes.io/enforce=strict"]).unwrap();
    assert!(
        err.contains(
            "The Namespace \"team\" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: \"strict\": must be one of privileged, baseline, restricted"
        ),
        "{err}"
    );
    let err = k.fails(&["label", "namespace", "team", "pod-security.kubernetes.io/warn-version=1.30"]).unwrap();
    assert!(err.contains("metadata.labels[pod-security.kubernetes.io/warn-version]: Invalid value: \"1.30\": must be \"latest\" or \"v1.x\""), "{err}");
    for name in ["priv-a", "priv-b"] {
        k.ok_stdin(&["create", "-n", "team", "-f", "-"], &pod(name, ", securityContext: {privileged: true}")).unwrap();
    }
    k.ok_stdin(&["create", "-n", "team", "-f", "-"], &pod_with("hostnet", "", "  hostNetwork: true\n")).unwrap();
    let o = k.run(&["label", "namespace", "team", "pod-security.kubernetes.io/enforce=baseline", "pod-security.kubernetes.io/enforce-version=v1.30"]).unwrap();
    assert!(o.success, "{}", o.stderr);
    let warnings: Vec<&str> = o.stderr.lines().filter(|l| l.starts_with("Warning: ")).collect();
    assert_eq!(
        warnings,
        vec![
            "Warning: existing pods in namespace \"team\" violate the new PodSecurity enforce level \"baseline:v1.30\"",
            "Warning: hostnet: host namespaces",
            "Warning: priv-a (and 1 other pod): privileged",
        ],
        "{}",
        o.stderr
    );
    // Relaxing the level does not re-check pods.
    let o = k.run(&["label", "--overwrite", "namespace", "team", "pod-security.kubernetes.io/enforce=privileged"]).unwrap();
    assert!(o.success && !o.stderr.contains("Warning"), "{}", o.stderr);
}

/// Waits until the controller has copied a quota's hard limits into its status.
fn wait_for_quota_status(k: &rkube_testkit::Kubectl, name: &str, namespace: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let q = k.json(&["get", "quota", name, "-n", namespace, "-o", "json"]).unwrap();
        if q["status"]["hard"] == q["spec"]["hard"] && q["status"]["used"].is_object() {
            return;
        }
        assert!(Instant::now() < deadline, "quota {name} never synced: {q}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn resource_quota_charges_usage_at_admission_and_counts_any_resource() {
    let c = api_only_cluster();
    let k = c.kubectl();
    k.ok(&["create", "quota", "q", "--hard=pods=2,count/deployments.apps=1,requests.memory=1Gi"]).unwrap();
    wait_for_quota_status(&k, "q", "default");
    k.ok_stdin(&["create", "-f", "-"], &pod("one", ", resources: {requests: {memory: 256Mi}}")).unwrap();
    // Charged by admission itself: no wait for the controller.
    let q = k.json(&["get", "quota", "q", "-o", "json"]).unwrap();
    assert_eq!(q["status"]["used"]["pods"], "1", "{q}");
    assert_eq!(q["status"]["used"]["requests.memory"], "256Mi", "{q}");
    let o = k.run_stdin(&["create", "-f", "-"], &pod("big", ", resources: {requests: {memory: 1Gi}}")).unwrap();
    assert!(
        o.stderr.contains("pods \"big\" is forbidden: exceeded quota: q, requested: requests.memory=1Gi, used: requests.memory=256Mi, limited: requests.memory=1Gi"),
        "{}",
        o.stderr
    );
    k.ok(&["create", "deployment", "web", "--image=registry.example/nginx:1.25"]).unwrap();
    let err = k.fails(&["create", "deployment", "api", "--image=registry.example/nginx:1.25"]).unwrap();
    assert!(
        err.contains(
            "deployments.apps \"api\" is forbidden: exceeded quota: q, requested: count/deployments.apps=1, used: count/deployments.apps=1, limited: count/deployments.apps=1"
        ),
        "{err}"
    );
    // Storage per StorageClass.
    k.ok(&["create", "quota", "storage", "--hard=requests.storage=5Gi,gold.storageclass.storage.k8s.io/requests.storage=1Gi"]).unwrap();
    let claim = |name: &str, class: &str, size: &str| {
        format!("apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: {name}}}\nspec:\n  storageClassName: {class}\n  accessModes: [ReadWriteOnce]\n  resources: {{requests: {{storage: {size}}}}}\n")
    };
    k.ok_stdin(&["create", "-f", "-"], &claim("plain", "silver", "2Gi")).unwrap();
    let o = k.run_stdin(&["create", "-f", "-"], &claim("shiny", "gold", "2Gi")).unwrap();
    assert!(
        o.stderr.contains(
            "persistentvolumeclaims \"shiny\" is forbidden: exceeded quota: storage, requested: gold.storageclass.storage.k8s.io/requests.storage=2Gi, used: gold.storageclass.storage.k8s.io/requests.storage=0, limited: gold.storageclass.storage.k8s.io/requests.storage=1Gi"
        ),
        "{}",
        o.stderr
    );
    let q = k.json(&["get", "quota", "storage", "-o", "json"]).unwrap();
    assert_eq!(q["status"]["used"]["requests.storage"], "2Gi", "{q}");
    // Concurrent creates cannot both take the last unit: charges are preconditioned writes.
    k.ok(&["create", "namespace", "burst"]).unwrap();
    k.ok(&["create", "quota", "burst", "-n", "burst", "--hard=count/configmaps=5"]).unwrap();
    // (Once synced: a recount racing creates still in flight could undercount, as upstream's.)
    wait_for_quota_status(&k, "burst", "burst");
    let kubectl = &k;
    let admitted = std::thread::scope(|s| {
        let creates: Vec<_> = (0..10).map(|i| s.spawn(move || kubectl.run(&["create", "configmap", &format!("c{i}"), "-n", "burst"]).unwrap())).collect();
        creates.into_iter().filter_map(|h| h.join().ok()).filter(|o| o.success).count()
    });
    assert_eq!(admitted, 5);
    let stored = k.json(&["get", "configmaps", "-n", "burst", "-o", "json"]).unwrap();
    assert_eq!(stored["items"].as_array().map(Vec::len), Some(5), "{stored}");
    // Deleting releases usage through the controller.
    k.ok(&["delete", "pod", "one", "--wait=false"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let q = k.json(&["get", "quota", "q", "-o", "json"]).unwrap();
        if q["status"]["used"]["pods"] == "0" && q["status"]["used"]["requests.memory"] == "0" {
            break;
        }
        assert!(Instant::now() < deadline, "usage not released: {q}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn resource_quota_scopes_select_the_pods_they_limit() {
    let c = api_only_cluster();
    let k = c.kubectl();
    k.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: besteffort}\nspec:\n  hard: {pods: '1'}\n  scopes: [BestEffort]\n---\n\
         apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: bounded}\nspec:\n  hard: {pods: '5'}\n  scopes: [Terminating]\n",
    )
    .unwrap();
    wait_for_quota_status(&k, "besteffort", "default");
    k.ok_stdin(&["create", "-f", "-"], &pod("free", "")).unwrap();
    // A pod with requests is not BestEffort: the scoped quota ignores it.
    k.ok_stdin(&["create", "-f", "-"], &pod("sized", ", resources: {requests: {cpu: 100m}}")).unwrap();
    let o = k.run_stdin(&["create", "-f", "-"], &pod("free2", "")).unwrap();
    assert!(o.stderr.contains("pods \"free2\" is forbidden: exceeded quota: besteffort, requested: pods=1, used: pods=1, limited: pods=1"), "{}", o.stderr);
    k.ok_stdin(&["create", "-f", "-"], &pod_with("deadline", ", resources: {requests: {cpu: 100m}}", "  activeDeadlineSeconds: 60\n")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let be = k.json(&["get", "quota", "besteffort", "-o", "json"]).unwrap();
        let term = k.json(&["get", "quota", "bounded", "-o", "json"]).unwrap();
        if be["status"]["used"]["pods"] == "1" && term["status"]["used"]["pods"] == "1" {
            break;
        }
        assert!(Instant::now() < deadline, "scoped usage wrong: {be} {term}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn resource_quota_requires_requests_and_limits_it_tracks() {
    let c = api_only_cluster();
    let k = c.kubectl();
    k.ok(&["create", "quota", "compute", "--hard=requests.cpu=2,limits.cpu=4"]).unwrap();
    let o = k.run_stdin(&["create", "-f", "-"], &pod("bare", ", resources: {limits: {memory: 64Mi}}")).unwrap();
    assert!(o.stderr.contains("pods \"bare\" is forbidden: failed quota: compute: must specify limits.cpu for: c; requests.cpu for: c"), "{}", o.stderr);
    k.ok_stdin(&["create", "-f", "-"], &pod("sized", ", resources: {requests: {cpu: 500m}, limits: {cpu: '1'}}")).unwrap();
}

#[test]
fn pod_security_configuration_sets_defaults_and_exemptions() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pod-security.yaml"),
        "apiVersion: pod-security.admission.config.k8s.io/v1\nkind: PodSecurityConfiguration\n\
         defaults: {enforce: baseline, enforce-version: latest}\n\
         exemptions: {namespaces: [trusted], runtimeClasses: [sandboxed], usernames: []}\n",
    )
    .unwrap();
    let config = dir.path().join("admission.yaml");
    std::fs::write(&config, "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n- name: PodSecurity\n  path: pod-security.yaml\n").unwrap();
    let c = rkube_testkit::TestCluster::start_with(&[
        "--disable=controller-manager,scheduler,node-lifecycle",
        "--disable-admission-plugins=ServiceAccount",
        &format!("--admission-control-config-file={}", config.display()),
    ])
    .unwrap();
    let k = c.kubectl();
    let privileged = pod("priv", ", securityContext: {privileged: true}");
    // No labels: the configured default applies.
    let o = k.run_stdin(&["create", "-f", "-"], &privileged).unwrap();
    assert!(
        o.stderr.contains("pods \"priv\" is forbidden: violates PodSecurity \"baseline:latest\": privileged (container \"c\" must not set securityContext.privileged=true)"),
        "{}",
        o.stderr
    );
    // An exempt runtime class and an exempt namespace are not checked.
    k.ok_stdin(&["create", "-f", "-"], &pod_with("sandboxed", ", securityContext: {privileged: true}", "  runtimeClassName: sandboxed\n")).unwrap();
    k.ok(&["create", "namespace", "trusted"]).unwrap();
    k.ok_stdin(&["create", "-n", "trusted", "-f", "-"], &privileged).unwrap();
    let o = k.run(&["label", "namespace", "trusted", "pod-security.kubernetes.io/enforce=restricted"]).unwrap();
    assert!(o.success, "{}", o.stderr);
    assert!(
        o.stderr.contains("Warning: namespace \"trusted\" is exempt from Pod Security, and the policy (enforce=restricted:latest) will be ignored"),
        "{}",
        o.stderr
    );
}
