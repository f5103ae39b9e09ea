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

const EVERY_STAGE_POLICY: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: None
  nonResourceURLs: ["/healthz*", "/readyz*", "/livez*", "/version"]
- level: Metadata
  omitStages: [ResponseStarted]
  resources: [{group: "", resources: [secrets]}]
- level: Metadata
"#;

fn audited_cluster(policy_text: &str) -> (TestCluster, tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    let log = dir.path().join("audit.log");
    std::fs::write(&policy, policy_text).unwrap();
    let c = TestCluster::start_with(&[
        "--disable=controller-manager,scheduler,node-lifecycle",
        "--disable-admission-plugins=ServiceAccount",
        &format!("--audit-policy-file={}", policy.display()),
        &format!("--audit-log-path={}", log.display()),
    ])
    .unwrap();
    (c, dir, log)
}

#[test]
fn audit_stages_follow_the_request_and_share_its_audit_id() {
    let (c, _dir, log) = audited_cluster(EVERY_STAGE_POLICY);
    let k = c.kubectl();
    k.ok(&["create", "configmap", "cm", "--from-literal=k=v"]).unwrap();
    // kubectl logs response headers at -v=8: the server names the request's audit ID.
    let traced = k.run(&["get", "configmap", "cm", "-v=8"]).unwrap();
    assert!(traced.success, "{}", traced.stderr);
    // kubectl also logs the discovery requests it makes first; each names its own ID.
    let header_ids: Vec<String> = traced.stderr.lines().filter_map(|l| l.split_once("Audit-Id: ").map(|(_, id)| id.trim().to_string())).collect();
    assert!(!header_ids.is_empty(), "no Audit-Id response header in {}", traced.stderr);
    // A watch that ends after its timeout: ResponseStarted when it starts streaming, then
    // ResponseComplete when it ends.
    let _ = k.run(&["get", "configmaps", "--watch", "--request-timeout=2s"]).unwrap();
    k.ok(&["create", "secret", "generic", "s", "--from-literal=a=b"]).unwrap();
    let _ = k.run(&["get", "secrets", "--watch", "--request-timeout=1s"]).unwrap();
    // A watch's ResponseComplete is written when the server notices the client has gone.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let all = loop {
        let all = events(&log);
        let done = all.iter().filter(|e| e["verb"] == "watch" && e["stage"] == "ResponseComplete").count();
        if done >= 2 || std::time::Instant::now() > deadline {
            break all;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };

    let stages = |verb: &str, resource: &str, name: Option<&str>| -> Vec<(String, String)> {
        all.iter()
            .filter(|e| e["verb"] == verb && e["objectRef"]["resource"] == resource && name.is_none_or(|n| e["objectRef"]["name"] == n))
            .map(|e| (e["auditID"].as_str().unwrap_or("").to_string(), e["stage"].as_str().unwrap_or("").to_string()))
            .collect()
    };
    let get = stages("get", "configmaps", Some("cm"));
    let get_stages: Vec<&str> = get.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(get_stages, vec!["RequestReceived", "ResponseComplete"], "{all:#?}");
    assert_eq!(get[0].0, get[1].0);
    assert!(header_ids.contains(&get[0].0), "{} not among the response headers' {header_ids:?}", get[0].0);

    // The create's RequestReceived comes first and shares the auditID of its ResponseComplete.
    let create: Vec<&Value> = all.iter().filter(|e| e["verb"] == "create" && e["objectRef"]["resource"] == "configmaps").collect();
    assert_eq!(create.len(), 2, "{create:#?}");
    assert_eq!(create[0]["stage"], "RequestReceived");
    assert!(create[0]["responseStatus"].is_null());
    assert_eq!(create[1]["stage"], "ResponseComplete");
    assert_eq!(create[0]["auditID"], create[1]["auditID"]);
    assert_eq!(create[1]["responseStatus"]["code"], 201);

    let watch = stages("watch", "configmaps", None);
    let watch_stages: Vec<&str> = watch.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(watch_stages, vec!["RequestReceived", "ResponseStarted", "ResponseComplete"], "{all:#?}");
    assert!(watch.iter().all(|(id, _)| *id == watch[0].0));

    // omitStages on the rule: the secrets watch has no ResponseStarted.
    let watch = stages("watch", "secrets", None);
    let watch_stages: Vec<&str> = watch.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(watch_stages, vec!["RequestReceived", "ResponseComplete"], "{all:#?}");
}

#[test]
fn pod_security_audit_mode_annotates_the_audit_event() {
    let (c, _dir, log) = audited_cluster(EVERY_STAGE_POLICY);
    let k = c.kubectl();
    k.ok(&["create", "namespace", "audited"]).unwrap();
    k.ok(&["label", "namespace", "audited", "pod-security.kubernetes.io/audit=baseline", "pod-security.kubernetes.io/audit-version=v1.33"]).unwrap();
    let o = k
        .run_stdin(
            &["create", "-n", "audited", "-f", "-"],
            "apiVersion: v1\nkind: Pod\nmetadata: {name: loud}\nspec:\n  hostNetwork: true\n  containers: [{name: c, image: nginx}]\n",
        )
        .unwrap();
    // Audit mode neither refuses nor warns.
    assert!(o.success, "{}", o.stderr);
    assert!(!o.stderr.contains("PodSecurity"), "{}", o.stderr);
    let all = events(&log);
    let done = all
        .iter()
        .find(|e| e["verb"] == "create" && e["objectRef"]["resource"] == "pods" && e["stage"] == "ResponseComplete")
        .unwrap_or_else(|| panic!("no pod create event in {all:#?}"));
    assert_eq!(
        done["annotations"]["pod-security.kubernetes.io/audit-violations"],
        "would violate PodSecurity \"baseline:v1.33\": host namespaces (hostNetwork=true)",
        "{done}"
    );
    assert_eq!(done["annotations"]["pod-security.kubernetes.io/enforce-policy"], "privileged:latest", "{done}");
}
