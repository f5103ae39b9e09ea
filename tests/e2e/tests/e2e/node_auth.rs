//! Kubelet credentials with the real kubectl: the Node authorizer (a node reads only what its
//! own pods use, its own Node and Lease) and the NodeRestriction admission plugin (a node
//! writes only its own Node, within the kubelet's labels, and mirror pods bound to it).

use rkube_testkit::{Kubectl, TestCluster};
use serde_json::json;

use crate::api_only_cluster;

const FORBIDDEN: &str = "Error from server (Forbidden): ";

fn node_kubectl(c: &TestCluster, node: &str) -> Kubectl {
    c.user_kubectl(&format!("system:node:{node}"), &["system:nodes"]).expect("node credentials")
}

/// Nodes n1 and n2, their Leases, and a pod on each using its own secret.
fn two_nodes_with_pods(admin: &Kubectl) {
    for n in ["n1", "n2"] {
        let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": n, "labels": {"kubernetes.io/hostname": n}}});
        admin.ok_stdin(&["create", "-f", "-"], &node.to_string()).expect("node");
        let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": n, "namespace": "kube-node-lease"}, "spec": {"holderIdentity": n}});
        admin.ok_stdin(&["create", "-f", "-"], &lease.to_string()).expect("lease");
        admin.ok(&["create", "secret", "generic", &format!("{n}-secret"), "--from-literal=k=v"]).expect("secret");
        admin.ok(&["create", "configmap", &format!("{n}-config"), "--from-literal=k=v"]).expect("configmap");
        admin.ok(&["create", "serviceaccount", &format!("{n}-sa")]).expect("serviceaccount");
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": format!("{n}-pod")},
            "spec": {"nodeName": n, "serviceAccountName": format!("{n}-sa"), "containers": [{"name": "c", "image": "busybox",
                "envFrom": [{"configMapRef": {"name": format!("{n}-config")}}]}],
                "volumes": [{"name": "s", "secret": {"secretName": format!("{n}-secret")}}]}});
        admin.ok_stdin(&["create", "-f", "-"], &pod.to_string()).expect("pod");
    }
}

#[test]
fn a_node_reads_only_what_its_own_pods_use_and_its_own_node_and_lease() {
    let c = api_only_cluster();
    let admin = c.kubectl();
    two_nodes_with_pods(&admin);
    let n1 = node_kubectl(&c, "n1");

    let out = n1.ok(&["get", "secret", "n1-secret", "-o", "jsonpath={.data.k}"]).expect("own pod's secret");
    assert_eq!(out, "dg==");
    n1.ok(&["get", "configmap", "n1-config"]).expect("own pod's configmap");
    // The list form kubelets use to watch one object is allowed too.
    n1.ok(&["get", "secrets", "--field-selector", "metadata.name=n1-secret"]).expect("list by name");

    let err = n1.fails(&["get", "secret", "n2-secret"]).expect("other node's secret");
    assert!(
        err.contains(&format!(
            "{FORBIDDEN}secrets \"n2-secret\" is forbidden: User \"system:node:n1\" cannot get resource \"secrets\" in API group \"\" in the namespace \"default\": no relationship found between node 'n1' and this object"
        )),
        "{err}"
    );
    let err = n1.fails(&["get", "secrets"]).expect("listing secrets");
    assert!(err.contains("cannot list resource \"secrets\" in API group \"\" in the namespace \"default\": No Object name found"), "{err}");

    n1.ok(&["get", "node", "n1"]).expect("own node");
    let err = n1.fails(&["get", "node", "n2"]).expect("other node");
    assert!(
        err.contains(&format!(
            "{FORBIDDEN}nodes \"n2\" is forbidden: User \"system:node:n1\" cannot get resource \"nodes\" in API group \"\" at the cluster scope: node 'n1' cannot read 'n2', only its own Node object"
        )),
        "{err}"
    );

    // Pods: its own by name or scoped to the node; others' are out of reach.
    n1.ok(&["get", "pod", "n1-pod"]).expect("own pod");
    let pods = n1.ok(&["get", "pods", "-A", "--field-selector", "spec.nodeName=n1", "-o", "name"]).expect("pods on n1");
    assert_eq!(pods.trim(), "pod/n1-pod");
    let err = n1.fails(&["get", "pod", "n2-pod"]).expect("other pod");
    assert!(err.contains("no relationship found between node 'n1' and this object"), "{err}");

    // The own Lease is writable, the other node's is not.
    n1.ok(&["annotate", "lease", "n1", "-n", "kube-node-lease", "renewed=yes"]).expect("own lease");
    let err = n1.fails(&["annotate", "lease", "n2", "-n", "kube-node-lease", "renewed=yes"]).expect("other lease");
    assert!(
        err.contains("leases.coordination.k8s.io \"n2\" is forbidden: User \"system:node:n1\" cannot get resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"kube-node-lease\": can only access node lease with the same name as the requesting node"),
        "{err}"
    );

    // A pod moving to n1 gives n1 its secret at once; deleting it takes it away again.
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "mover"},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}],
            "volumes": [{"name": "s", "secret": {"secretName": "n2-secret"}}]}});
    admin.ok_stdin(&["create", "-f", "-"], &pod.to_string()).expect("pod using n2's secret on n1");
    n1.ok(&["get", "secret", "n2-secret"]).expect("secret of a pod just bound to n1");
    admin.ok(&["delete", "pod", "mover", "--grace-period=0", "--force"]).expect("delete pod");
    let err = n1.fails(&["get", "secret", "n2-secret"]).expect("secret after the pod left");
    assert!(err.contains("no relationship found between node 'n1' and this object"), "{err}");

    // A node's permissions cannot be listed: the rules review says it is incomplete.
    let out = n1.run(&["auth", "can-i", "--list"]).expect("can-i --list");
    assert!(out.stderr.contains("node authorizer does not support user rule resolution"), "{}\n{}", out.stdout, out.stderr);

    // Non-node users are unaffected: plain RBAC.
    let err = c.user_kubectl("alice", &[]).expect("alice").fails(&["get", "secret", "n1-secret"]).expect("alice");
    assert!(err.contains("User \"alice\" cannot get resource \"secrets\"") && !err.contains("relationship"), "{err}");
}

#[test]
fn node_restriction_limits_a_node_to_its_own_node_and_mirror_pods() {
    let c = api_only_cluster();
    let admin = c.kubectl();
    two_nodes_with_pods(&admin);
    let n1 = node_kubectl(&c, "n1");

    // Its own node: kubelet labels are fine, others are refused with upstream's message.
    n1.ok(&["label", "node", "n1", "topology.kubernetes.io/zone=z1", "team=a"]).expect("own node, allowed labels");
    let err = n1.fails(&["label", "node", "n1", "node-role.kubernetes.io/control-plane="]).expect("restricted label");
    assert!(
        err.contains(&format!("{FORBIDDEN}nodes \"n1\" is forbidden: is not allowed to modify labels: node-role.kubernetes.io/control-plane")),
        "{err}"
    );
    let err = n1.fails(&["taint", "node", "n1", "dedicated=x:NoSchedule"]).expect("taint");
    assert!(err.contains("nodes \"n1\" is forbidden: node \"n1\" is not allowed to modify taints"), "{err}");
    // Another node: the authorizer lets writes through to NodeRestriction, which refuses them.
    let err = n1.fails(&["label", "node", "n2", "team=a"]).expect("other node");
    assert!(err.contains("node 'n1' cannot read 'n2', only its own Node object"), "{err}");
    let n2 = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n2", "labels": {"team": "a"}}}).to_string();
    let out = n1.run_stdin(&["replace", "-f", "-"], &n2).expect("replace other node");
    let err = out.stderr;
    assert!(err.contains("nodes \"n2\" is forbidden: node \"n1\" is not allowed to modify node \"n2\""), "{err}");

    // Pods: only mirror pods bound to itself, owned by its Node.
    let uid = admin.ok(&["get", "node", "n1", "-o", "jsonpath={.metadata.uid}"]).expect("uid");
    let pod = |name: &str, annotations: serde_json::Value, node: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "annotations": annotations,
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": uid, "controller": true}]},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}})
        .to_string()
    };
    let out = n1.run_stdin(&["create", "-f", "-"], &pod("plain", json!({}), "n1")).expect("plain pod");
    assert!(
        out.stderr.contains("pods \"plain\" is forbidden: pod does not have \"kubernetes.io/config.mirror\" annotation, node \"n1\" can only create mirror pods"),
        "{}",
        out.stderr
    );
    let mirror = json!({"kubernetes.io/config.mirror": "hash"});
    let out = n1.run_stdin(&["create", "-f", "-"], &pod("elsewhere", mirror.clone(), "n2")).expect("mirror pod for n2");
    assert!(out.stderr.contains("node \"n1\" can only create pods with spec.nodeName set to itself"), "{}", out.stderr);
    let mut stale_owner: serde_json::Value = serde_json::from_str(&pod("stale", mirror.clone(), "n1")).expect("pod json");
    stale_owner["metadata"]["ownerReferences"][0]["uid"] = json!("0000");
    let out = n1.run_stdin(&["create", "-f", "-"], &stale_owner.to_string()).expect("mirror pod with a stale owner");
    assert!(out.stderr.contains(&format!("node n1 UID mismatch: expected 0000 got {uid}")), "{}", out.stderr);
    n1.ok_stdin(&["create", "-f", "-"], &pod("static-web-n1", mirror, "n1")).expect("own mirror pod");

    // Status of pods on another node is refused, its own are fine (kubectl replace, since
    // nodes may not GET pods/status, which kubectl patch would do first).
    let with_status = |name: &str| {
        let mut pod = admin.json(&["get", "pod", name, "-o", "json"]).expect("pod");
        pod["status"]["phase"] = json!("Running");
        pod.to_string()
    };
    let out = n1.run_stdin(&["replace", "--subresource=status", "-f", "-"], &with_status("n2-pod")).expect("other pod status");
    assert!(
        out.stderr.contains("pods \"n2-pod\" is forbidden: node \"n1\" can only update pod status for pods with spec.nodeName set to itself"),
        "{}",
        out.stderr
    );
    n1.ok_stdin(&["replace", "--subresource=status", "-f", "-"], &with_status("n1-pod")).expect("own pod status");
    let err = n1.fails(&["delete", "pod", "n2-pod"]).expect("delete other pod");
    assert!(err.contains("pods \"n2-pod\" is forbidden: node \"n1\" can only delete pods with spec.nodeName set to itself"), "{err}");
    // Tokens only for its pods' ServiceAccounts, and only bound to a pod on this node.
    let err = n1.fails(&["create", "token", "n1-sa"]).expect("unbound token");
    assert!(err.contains("serviceaccounts \"n1-sa\" is forbidden: node requested token not bound to a pod"), "{err}");
    let uid = |pod: &str| admin.ok(&["get", "pod", pod, "-o", "jsonpath={.metadata.uid}"]).expect("pod uid");
    let bound = |pod: &str, uid: &str| vec!["create".to_string(), "token".into(), "n1-sa".into(), "--bound-object-kind=Pod".into(), format!("--bound-object-name={pod}"), format!("--bound-object-uid={uid}")];
    let args = bound("n1-pod", &uid("n1-pod"));
    let token = n1.ok(&args.iter().map(String::as_str).collect::<Vec<_>>()).expect("token bound to own pod");
    assert!(token.trim().starts_with("ey"), "{token}");
    let args = bound("n2-pod", &uid("n2-pod"));
    let err = n1.fails(&args.iter().map(String::as_str).collect::<Vec<_>>()).expect("token bound to other node's pod");
    assert!(err.contains("node requested token bound to a pod scheduled on a different node"), "{err}");
    let err = n1.fails(&["create", "token", "n2-sa"]).expect("other pod's serviceaccount");
    assert!(err.contains("no relationship found between node 'n1' and this object"), "{err}");

    // Evictions only of its own pods.
    let eviction = |pod: &str| {
        let file = c.data_dir().join(format!("evict-{pod}.json"));
        let body = json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod, "namespace": "default"}});
        std::fs::write(&file, body.to_string()).expect("eviction body");
        n1.run(&["create", "--raw", &format!("/api/v1/namespaces/default/pods/{pod}/eviction"), "-f", &file.to_string_lossy()]).expect("eviction")
    };
    let out = eviction("n2-pod");
    assert!(out.stderr.contains("node n1 can only evict pods with spec.nodeName set to itself"), "{}", out.stderr);

    // Updating a pod itself is never a node's business (the Node authorizer has no opinion).
    let err = n1.fails(&["label", "pod", "n1-pod", "x=y"]).expect("label own pod");
    assert!(err.contains("User \"system:node:n1\" cannot patch resource \"pods\" in API group \"\" in the namespace \"default\""), "{err}");
    let out = eviction("n1-pod");
    assert!(out.success, "{}", out.stderr);
}
