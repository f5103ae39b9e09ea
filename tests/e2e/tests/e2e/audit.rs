//! The audit log: who did what, at the level the policy gives each request.

use rkube_testkit::TestCluster;
use serde_json::Value;

const POLICY: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  nonResourceURLs: ["/healthz*", "/readyz*", "/livez*", "/version"]
- level: Metadata
  resources: [{group: "", resources: [secrets]}]
- level: Request
  resources: [{group: "", resources: [configmaps]}]
- level: RequestResponse
  resources: [{group: "", resources: [serviceaccounts]}]
- level: None
"#;

fn events(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

fn find<'a>(events: &'a [Value], verb: &str, resource: &str, name: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["verb"] == verb && e["objectRef"]["resource"] == resource && e["objectRef"]["name"] == name)
        .unwrap_or_else(|| panic!("no {verb} {resource}/{name} event in {events:#?}"))
}

#[test]
fn audit_events_record_who_did_what_at_each_level() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    let log = dir.path().join("audit.log");
    std::fs::write(&policy, POLICY).unwrap();
    let c = TestCluster::start_with(&[
        "--disable=controller-manager,scheduler,node-lifecycle",
        &format!("--audit-policy-file={}", policy.display()),
        &format!("--audit-log-path={}", log.display()),
    ])
    .unwrap();
    let k = c.kubectl();
    k.ok(&["create", "secret", "generic", "s", "--from-literal=password=hunter2"]).unwrap();
    k.ok(&["create", "configmap", "cm", "--from-literal=k=v"]).unwrap();
    k.ok(&["create", "serviceaccount", "robot"]).unwrap();
    k.fails(&["get", "configmap", "missing"]).unwrap();
    let all = events(&log);

    let secret = find(&all, "create", "secrets", "s");
    assert_eq!(secret["level"], "Metadata");
    assert_eq!(secret["stage"], "ResponseComplete");
    assert_eq!(secret["apiVersion"], "audit.k8s.io/v1");
    assert_eq!(secret["user"]["username"], "rkube-admin");
    assert_eq!(secret["objectRef"]["namespace"], "default");
    assert_eq!(secret["responseStatus"]["code"], 201);
    assert!(secret["requestURI"].as_str().is_some_and(|u| u.starts_with("/api/v1/namespaces/default/secrets")), "{secret}");
    assert!(secret["userAgent"].as_str().is_some_and(|u| u.starts_with("kubectl")), "{secret}");
    assert!(secret["requestReceivedTimestamp"].is_string() && secret["stageTimestamp"].is_string() && secret["auditID"].is_string());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("aHVudGVyMg==") && !text.contains("hunter2"), "secret data in the audit log");

    let cm = find(&all, "create", "configmaps", "cm");
    assert_eq!(cm["level"], "Request");
    assert_eq!(cm["requestObject"]["data"]["k"], "v");
    assert!(cm["responseObject"].is_null());

    let sa = find(&all, "create", "serviceaccounts", "robot");
    assert_eq!(sa["level"], "RequestResponse");
    assert_eq!(sa["responseObject"]["metadata"]["name"], "robot");
    assert!(sa["responseObject"]["metadata"]["uid"].is_string());

    let missing = find(&all, "get", "configmaps", "missing");
    assert_eq!(missing["responseStatus"]["code"], 404);
    assert_eq!(missing["responseStatus"]["reason"], "NotFound");
    assert!(all.iter().all(|e| e["stage"] == "ResponseComplete"), "RequestReceived was omitted");
    assert!(!all.iter().any(|e| e["requestURI"].as_str().is_some_and(|u| u.starts_with("/readyz"))));
}
