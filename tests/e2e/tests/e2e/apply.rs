//! `kubectl apply`, client-side (last-applied annotation + strategic merge) and server-side
//! (field managers, conflicts, force), and server-side apply from kube-rs.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::cluster;

fn deployment(replicas: u32, image: &str, extra_label: bool) -> String {
    let label = if extra_label { "\n    tier: frontend" } else { "" };
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web{label}
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: nginx
        image: {image}
"
    )
}

/// What a second manager (an autoscaler) applies: only the replica count.
fn replicas_only(replicas: u32) -> String {
    format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: {replicas}\n")
}

/// Field managers other than the controller manager (whose status writes get their own
/// `kube-controller-manager` Update entry, as upstream).
fn managers(obj: &serde_json::Value) -> Vec<(String, String)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["manager"] != "kube-controller-manager")
        .map(|e| (e["manager"].as_str().unwrap_or_default().to_string(), e["operation"].as_str().unwrap_or_default().to_string()))
        .collect()
}

#[test]
fn server_side_apply_owns_fields_conflicts_and_forces() {
    let c = cluster();
    let k = c.kubectl();
    let out = k.ok_stdin(&["apply", "--server-side", "-f", "-"], &deployment(2, "nginx:1.25", true)).unwrap();
    assert_eq!(out.trim(), "deployment.apps/web serverside-applied");
    let d = k.json(&["get", "deploy", "web", "-o", "json", "--show-managed-fields"]).unwrap();
    assert_eq!(managers(&d), [("kubectl".to_string(), "Apply".to_string())]);
    let owned = &d["metadata"]["managedFields"][0]["fieldsV1"];
    assert!(owned["f:spec"].get("f:replicas").is_some(), "{owned}");
    assert!(owned["f:metadata"]["f:labels"].get("f:tier").is_some(), "{owned}");

    // A second manager changing a field kubectl owns conflicts; kubectl prints upstream's message.
    let err = k
        .run_stdin(&["apply", "--server-side", "--field-manager=autoscaler", "-f", "-"], &replicas_only(5))
        .unwrap();
    assert!(!err.success);
    assert!(
        err.stderr.contains("Apply failed with 1 conflict: conflict with \"kubectl\": .spec.replicas"),
        "{}",
        err.stderr
    );
    assert_eq!(k.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]).unwrap(), "2");

    // Forced: the value changes and ownership of replicas moves to the second manager.
    k.ok_stdin(&["apply", "--server-side", "--field-manager=autoscaler", "--force-conflicts", "-f", "-"], &replicas_only(5))
        .unwrap();
    let d = k.json(&["get", "deploy", "web", "-o", "json", "--show-managed-fields"]).unwrap();
    assert_eq!(d["spec"]["replicas"], 5);
    let ms = managers(&d);
    assert!(ms.contains(&("autoscaler".to_string(), "Apply".to_string())), "{ms:?}");
    let kubectl_entry = d["metadata"]["managedFields"].as_array().unwrap().iter().find(|e| e["manager"] == "kubectl").unwrap();
    assert!(kubectl_entry["fieldsV1"]["f:spec"].get("f:replicas").is_none(), "{kubectl_entry}");

    // kubectl re-applies without the tier label: the label it alone owned is removed.
    k.ok_stdin(&["apply", "--server-side", "-f", "-"], &deployment(5, "nginx:1.26", false)).unwrap();
    let d = k.json(&["get", "deploy", "web", "-o", "json"]).unwrap();
    assert_eq!(d["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.26");
    assert_eq!(d["metadata"]["generation"], 3);

    // Other writers are recorded as Update managers.
    k.ok(&["label", "deploy", "web", "owner=ops"]).unwrap();
    let d = k.json(&["get", "deploy", "web", "-o", "json", "--show-managed-fields"]).unwrap();
    assert!(managers(&d).contains(&("kubectl-label".to_string(), "Update".to_string())), "{:?}", managers(&d));
}

#[test]
fn client_side_apply_creates_changes_and_removes_fields() {
    let c = cluster();
    let k = c.kubectl();
    let v1 = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  labels:\n    app: web\ndata:\n  mode: fast\n  retries: \"3\"\n";
    assert_eq!(k.ok_stdin(&["apply", "-f", "-"], v1).unwrap().trim(), "configmap/settings created");
    let v2 = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  labels:\n    app: web\ndata:\n  mode: safe\n";
    assert_eq!(k.ok_stdin(&["apply", "-f", "-"], v2).unwrap().trim(), "configmap/settings configured");
    let cm = k.json(&["get", "cm", "settings", "-o", "json"]).unwrap();
    assert_eq!(cm["data"], json!({"mode": "safe"}), "the dropped key is removed");
    let last: serde_json::Value =
        serde_json::from_str(cm["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"].as_str().unwrap()).unwrap();
    assert_eq!(last["data"], json!({"mode": "safe"}));
    assert_eq!(k.ok_stdin(&["apply", "-f", "-"], v2).unwrap().trim(), "configmap/settings unchanged");
    // A field someone else added survives a client-side apply that never mentioned it.
    k.ok(&["label", "cm", "settings", "owner=ops"]).unwrap();
    k.ok_stdin(&["apply", "-f", "-"], v2).unwrap();
    let cm = k.json(&["get", "cm", "settings", "-o", "json", "--show-managed-fields"]).unwrap();
    assert_eq!(cm["metadata"]["labels"]["owner"], "ops");
    let ms = managers(&cm);
    assert!(ms.contains(&("kubectl-client-side-apply".to_string(), "Update".to_string())), "{ms:?}");
}

#[tokio::test]
async fn kube_rs_server_side_apply() {
    let c = cluster();
    let client = crate::kube_client::client(&c.kubeconfig).await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let params = PatchParams::apply("rkube-e2e");
    let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "1", "b": "2"}});
    let created = cms.patch("ssa", &params, &Patch::Apply(&cfg)).await.unwrap();
    assert_eq!(created.data.as_ref().unwrap()["b"], "2");
    let mf = created.metadata.managed_fields.clone().unwrap();
    assert_eq!(mf.len(), 1);
    assert_eq!(mf[0].manager.as_deref(), Some("rkube-e2e"));
    assert_eq!(mf[0].operation.as_deref(), Some("Apply"));

    // Dropping a key removes it; another manager's conflicting change needs force.
    let cfg2 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "1"}});
    let updated = cms.patch("ssa", &params, &Patch::Apply(&cfg2)).await.unwrap();
    assert_eq!(updated.data.unwrap().keys().cloned().collect::<Vec<_>>(), ["a"]);
    let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "9"}});
    let err = cms.patch("ssa", &PatchParams::apply("other"), &Patch::Apply(&other)).await.unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert_eq!(s.message, "Apply failed with 1 conflict: conflict with \"rkube-e2e\": .data.a");
        }
        e => panic!("expected a conflict, got {e}"),
    }
    let forced = cms.patch("ssa", &PatchParams::apply("other").force(), &Patch::Apply(&other)).await.unwrap();
    assert_eq!(forced.data.unwrap()["a"], "9");
}
