//! RBAC with the real kubectl: upstream's 403 messages, default roles, `auth can-i` (also with
//! kubectl 1.27), `auth whoami`, impersonation, escalation prevention, and the seed's personas
//! as certificate users in groups.

use rkube_testkit::Kubectl;

use crate::cluster;

/// `kubectl auth can-i …`: "yes" or "no", whatever the exit code.
fn can_i(k: &Kubectl, args: &[&str]) -> String {
    let mut all = vec!["auth", "can-i"];
    all.extend_from_slice(args);
    let o = k.run(&all).expect("running kubectl auth can-i");
    o.stdout.trim().to_string()
}

/// `status.allowed` of a SelfSubjectAccessReview created with kubectl.
fn self_access_review(k: &Kubectl, group: &str, resource: &str, verb: &str, namespace: &str) -> bool {
    let review = serde_json::json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"group": group, "resource": resource, "verb": verb, "namespace": namespace}},
    });
    // --validate=false: the OpenAPI branch serves no authorization.k8s.io schema yet.
    let out = k.ok_stdin(&["create", "--validate=false", "-f", "-", "-o", "json"], &review.to_string()).expect("creating a SelfSubjectAccessReview");
    let v: serde_json::Value = serde_json::from_str(&out).expect("review JSON");
    assert_eq!(v["spec"]["resourceAttributes"]["resource"], resource, "{v}");
    v["status"]["allowed"].as_bool().expect("status.allowed")
}

/// Whether `kubectl auth can-i --list` printed a row with these whitespace-separated cells.
fn lists_row(out: &str, row: &str) -> bool {
    let want: Vec<&str> = row.split_whitespace().collect();
    out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == want)
}

#[test]
fn admin_is_cluster_admin_and_default_roles_exist() {
    let c = cluster();
    let k = c.kubectl();
    assert_eq!(can_i(&k, &["*", "*"]), "yes");
    let who = k.ok(&["auth", "whoami"]).unwrap();
    assert!(lists_row(&who, "Username rkube-admin"), "{who}");
    assert!(lists_row(&who, "Groups [system:masters system:authenticated]"), "{who}");
    let view = k.json(&["get", "clusterrole", "view", "-o", "json"]).unwrap();
    assert_eq!(view["metadata"]["labels"]["kubernetes.io/bootstrapping"], "rbac-defaults");
    assert_eq!(view["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"], "true");
    assert_eq!(view["aggregationRule"]["clusterRoleSelectors"][0]["matchLabels"]["rbac.authorization.k8s.io/aggregate-to-view"], "true");
    // The aggregation controller filled view from system:aggregate-to-view.
    let rules = view["rules"].as_array().unwrap();
    assert!(rules.iter().any(|r| r["resources"].as_array().unwrap().iter().any(|x| x == "pods/log")), "{view}");
    let crb = k.json(&["get", "clusterrolebinding", "cluster-admin", "-o", "json"]).unwrap();
    assert_eq!(crb["subjects"][0]["name"], "system:masters");
    let roles = k.ok(&["get", "roles", "-n", "kube-system", "-o", "name"]).unwrap();
    assert!(roles.contains("role.rbac.authorization.k8s.io/extension-apiserver-authentication-reader"), "{roles}");
}

#[test]
fn unbound_user_is_forbidden_until_bound_to_view() {
    let c = cluster();
    let admin = c.kubectl();
    let alice = c.user_kubectl("alice", &[]).unwrap();
    let err = alice.fails(&["get", "pods"]).unwrap();
    assert!(
        err.contains("Error from server (Forbidden): pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""),
        "{err}"
    );
    let err = alice.fails(&["get", "nodes"]).unwrap();
    assert!(err.contains("nodes is forbidden: User \"alice\" cannot list resource \"nodes\" in API group \"\" at the cluster scope"), "{err}");
    // Discovery and whoami are granted to every authenticated user.
    alice.ok(&["get", "--raw", "/apis"]).unwrap();
    let who = alice.ok(&["auth", "whoami"]).unwrap();
    assert!(lists_row(&who, "Username alice") && lists_row(&who, "Groups [system:authenticated]"), "{who}");
    assert_eq!(can_i(&alice, &["list", "pods"]), "no");

    admin.ok(&["create", "rolebinding", "alice-view", "--clusterrole=view", "--user=alice", "-n", "default"]).unwrap();
    // Effective on the very next command.
    alice.ok(&["get", "pods"]).unwrap();
    let err = alice.fails(&["get", "secrets"]).unwrap();
    assert!(err.contains("secrets is forbidden: User \"alice\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\""), "{err}");
    assert_eq!(can_i(&alice, &["list", "pods"]), "yes");
    assert_eq!(can_i(&alice, &["get", "pods", "--subresource=log"]), "yes");
    assert_eq!(can_i(&alice, &["get", "secrets"]), "no");
    assert_eq!(can_i(&alice, &["list", "pods", "-n", "kube-system"]), "no");
    assert_eq!(can_i(&alice.with_version(27), &["list", "pods"]), "yes");
    assert_eq!(can_i(&alice.with_version(27), &["get", "secrets"]), "no");
    let list = alice.ok(&["auth", "can-i", "--list"]).unwrap();
    assert!(lists_row(&list, "pods [] [] [get list watch]"), "{list}");
    assert!(lists_row(&list, "selfsubjectaccessreviews.authorization.k8s.io [] [] [create]"), "{list}");
    assert!(!list.lines().any(|l| l.starts_with("secrets ")), "{list}");
}

#[test]
fn impersonation_is_authorized_with_the_impersonate_verb() {
    let c = cluster();
    let admin = c.kubectl();
    let err = admin.fails(&["get", "pods", "--as=alice"]).unwrap();
    assert!(err.contains("pods is forbidden: User \"alice\" cannot list resource \"pods\""), "{err}");
    let who = admin.ok(&["auth", "whoami", "--as=alice", "--as-group=devs"]).unwrap();
    assert!(lists_row(&who, "Username alice") && lists_row(&who, "Groups [devs system:authenticated]"), "{who}");
    assert_eq!(can_i(&admin, &["list", "pods", "--as=alice"]), "no");
    admin.ok(&["create", "clusterrolebinding", "devs-view", "--clusterrole=view", "--group=devs"]).unwrap();
    assert_eq!(can_i(&admin, &["list", "pods", "--as=alice", "--as-group=devs"]), "yes");
    assert_eq!(can_i(&admin.with_version(27), &["list", "pods", "--as=alice", "--as-group=devs"]), "yes");

    let alice = c.user_kubectl("alice", &[]).unwrap();
    // Discovery fails first (client-go reports discovery errors without their Status: "unknown"),
    // so read the message from a request whose Status kubectl decodes.
    let err = alice.fails(&["get", "pods", "--as=bob"]).unwrap();
    assert!(err.contains("Error from server (Forbidden)"), "{err}");
    let err = alice.fails(&["auth", "can-i", "list", "pods", "--as=bob"]).unwrap();
    assert!(
        err.contains("users \"bob\" is forbidden: User \"alice\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"),
        "{err}"
    );
}

#[test]
fn rbac_writes_cannot_escalate_privileges() {
    let c = cluster();
    let admin = c.kubectl();
    admin.ok(&["create", "namespace", "team"]).unwrap();
    admin.ok(&["create", "rolebinding", "alice-admin", "--clusterrole=admin", "--user=alice", "-n", "team"]).unwrap();
    let alice = c.user_kubectl("alice", &[]).unwrap();
    let err = alice.fails(&["create", "role", "node-reader", "--verb=get", "--resource=nodes", "-n", "team"]).unwrap();
    assert!(
        err.contains(
            "roles.rbac.authorization.k8s.io \"node-reader\" is forbidden: user \"alice\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"nodes\"], Verbs:[\"get\"]}"
        ),
        "{err}"
    );
    let err = alice.fails(&["create", "rolebinding", "bob-admin", "--clusterrole=cluster-admin", "--user=bob", "-n", "team"]).unwrap();
    assert!(err.contains("rolebindings.rbac.authorization.k8s.io \"bob-admin\" is forbidden: user \"alice\""), "{err}");
    assert!(err.contains("{NonResourceURLs:[\"*\"], Verbs:[\"*\"]}"), "{err}");
    // What alice holds she may grant.
    alice.ok(&["create", "role", "pod-reader", "--verb=get,list", "--resource=pods", "-n", "team"]).unwrap();
    alice.ok(&["create", "rolebinding", "bob-view", "--clusterrole=view", "--user=bob", "-n", "team"]).unwrap();
    // `escalate` and `bind` lift the checks.
    admin
        .ok_stdin(
            &["apply", "-f", "-"],
            r#"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"rbac-delegate"},"rules":[{"apiGroups":["rbac.authorization.k8s.io"],"resources":["roles","clusterroles"],"verbs":["escalate","bind"]}]}"#,
        )
        .unwrap();
    admin.ok(&["create", "rolebinding", "alice-delegate", "--clusterrole=rbac-delegate", "--user=alice", "-n", "team"]).unwrap();
    alice.ok(&["create", "role", "node-reader", "--verb=get", "--resource=nodes", "-n", "team"]).unwrap();
    alice.ok(&["create", "rolebinding", "bob-admin", "--clusterrole=cluster-admin", "--user=bob", "-n", "team"]).unwrap();
}

pub(crate) const PERSONAS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: team}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: readonly-role-view}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: readonly}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: readwrite, namespace: team}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: readwrite}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: readwrite-secrets, namespace: team}
rules:
- apiGroups: [kubernetes-client.io]
  resources: [externalsecrets]
  verbs: [get, list, watch, create, update, patch, delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: readwrite-secrets, namespace: team}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: readwrite-secrets}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: readwrite}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: debug-mode, namespace: team}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, create]
- apiGroups: [""]
  resources: [pods/portforward, pods/exec]
  verbs: [create]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: debug-mode, namespace: team}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: debug-mode}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: debugmode}]
"#;

#[test]
fn seed_personas_get_upstream_answers() {
    let c = cluster();
    c.kubectl().ok_stdin(&["apply", "-f", "-"], PERSONAS).unwrap();
    let dev = c.user_kubectl("dev", &["readwrite"]).unwrap();
    let reader = c.user_kubectl("reader", &["readonly"]).unwrap();
    let debugger = c.user_kubectl("debugger", &["readonly", "debugmode"]).unwrap();
    let checks: &[(&Kubectl, &[&str], &str)] = &[
        (&dev, &["create", "deployments", "-n", "team"], "yes"),
        (&dev, &["get", "secrets", "-n", "team"], "yes"),
        (&dev, &["create", "pods/exec", "-n", "team"], "yes"),
        (&dev, &["create", "rolebindings", "-n", "team"], "no"),
        (&dev, &["list", "pods", "-n", "default"], "no"),
        (&reader, &["list", "pods", "--all-namespaces"], "yes"),
        (&reader, &["get", "deployments", "-n", "team"], "yes"),
        (&reader, &["get", "secrets", "-n", "team"], "no"),
        (&reader, &["create", "pods/exec", "-n", "team"], "no"),
        (&reader, &["delete", "pods", "-n", "team"], "no"),
        (&debugger, &["create", "pods", "--subresource=exec", "-n", "team"], "yes"),
        (&debugger, &["create", "pods/portforward", "-n", "team"], "yes"),
        (&debugger, &["create", "pods/exec", "-n", "default"], "no"),
        (&debugger, &["delete", "pods", "-n", "team"], "no"),
        (&debugger, &["get", "secrets", "-n", "team"], "no"),
    ];
    for (k, args, want) in checks {
        assert_eq!(can_i(k, args), *want, "kubectl 1.33 auth can-i {args:?} for {}", k.kubeconfig.display());
        assert_eq!(can_i(&k.with_version(27), args), *want, "kubectl 1.27 auth can-i {args:?}");
    }
    // Without the ExternalSecret CRD kubectl cannot resolve the resource for can-i, so ask the
    // SelfSubjectAccessReview API directly.
    assert!(self_access_review(&dev, "kubernetes-client.io", "externalsecrets", "list", "team"));
    assert!(!self_access_review(&dev, "kubernetes-client.io", "externalsecrets", "list", "default"));
    assert!(!self_access_review(&reader, "kubernetes-client.io", "externalsecrets", "get", "team"));
    // Real requests agree with can-i.
    dev.ok(&["create", "configmap", "app", "-n", "team", "--from-literal=a=b"]).unwrap();
    let err = reader.fails(&["get", "secrets", "-n", "team"]).unwrap();
    assert!(err.contains("secrets is forbidden: User \"reader\" cannot list resource \"secrets\" in API group \"\" in the namespace \"team\""), "{err}");
    reader.ok(&["get", "configmap", "app", "-n", "team"]).unwrap();
}

