//! `dryRun=All` through kubectl's `--dry-run=server`, `kubectl diff` and raw requests.

use crate::api_only_cluster;

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: registry.example/nginx:1.25}]}
"#;

#[test]
fn server_dry_run_validates_and_defaults_but_persists_nothing() {
    let c = api_only_cluster();
    let k = c.kubectl();
    // create: the answer is the defaulted object, nothing is stored.
    let d = k.run_stdin(&["create", "--dry-run=server", "-o", "json", "-f", "-"], DEPLOYMENT).unwrap();
    assert!(d.success, "{}", d.stderr);
    let d: serde_json::Value = serde_json::from_str(&d.stdout).unwrap();
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
    assert!(d["metadata"]["uid"].is_string());
    let err = k.fails(&["get", "deployment", "web"]).unwrap();
    assert!(err.contains("not found"), "{err}");
    // Validation still runs.
    let bad = DEPLOYMENT.replace("replicas: 2", "replicas: -2");
    let o = k.run_stdin(&["create", "--dry-run=server", "-f", "-"], &bad).unwrap();
    assert!(!o.success);
    assert!(o.stderr.contains("spec.replicas: Invalid value: -2: must be greater than or equal to 0"), "{}", o.stderr);

    // A Service gets a cluster IP in the answer, but the address is not reserved.
    let svc = k.json(&["create", "service", "clusterip", "db", "--tcp=5432", "--dry-run=server", "-o", "json"]).unwrap();
    assert!(svc["spec"]["clusterIP"].as_str().is_some_and(|ip| ip.starts_with("10.43.")), "{svc}");
    let err = k.fails(&["get", "service", "db"]).unwrap();
    assert!(err.contains("not found"), "{err}");

    // apply, replace, patch, scale and delete leave the stored object alone.
    k.ok_stdin(&["apply", "-f", "-"], DEPLOYMENT).unwrap();
    let before = k.json(&["get", "deployment", "web", "-o", "json"]).unwrap();
    let changed = DEPLOYMENT.replace("replicas: 2", "replicas: 5");
    let out = k.ok_stdin(&["apply", "--dry-run=server", "-f", "-"], &changed).unwrap();
    assert!(out.contains("deployment.apps/web configured (server dry run)"), "{out}");
    let out = k.ok(&["patch", "deployment", "web", "--dry-run=server", "-p", r#"{"spec":{"replicas":9}}"#, "-o", "jsonpath={.spec.replicas}"]).unwrap();
    assert_eq!(out, "9");
    k.ok(&["scale", "deployment", "web", "--replicas=7", "--dry-run=server"]).unwrap();
    let out = k.ok(&["delete", "deployment", "web", "--dry-run=server"]).unwrap();
    assert!(out.contains("deployment.apps \"web\" deleted (server dry run)"), "{out}");
    k.ok(&["delete", "deployments", "--all", "--dry-run=server"]).unwrap();
    let after = k.json(&["get", "deployment", "web", "-o", "json"]).unwrap();
    assert_eq!(after["spec"]["replicas"], 2);
    assert_eq!(after["metadata"]["resourceVersion"], before["metadata"]["resourceVersion"]);

    // kubectl diff asks the server what apply would do.
    let o = k.run_stdin(&["diff", "-f", "-"], &changed).unwrap();
    assert_eq!(o.code, Some(1), "diff exits 1 when there are differences: {}", o.stderr);
    assert!(o.stdout.contains("-  replicas: 2") && o.stdout.contains("+  replicas: 5"), "{}", o.stdout);
    let o = k.run_stdin(&["diff", "-f", "-"], DEPLOYMENT).unwrap();
    assert_eq!(o.code, Some(0), "no differences: {}{}", o.stdout, o.stderr);

    // An unsupported dryRun value is rejected as upstream's options validation does.
    let o = k
        .run_stdin(&["create", "--raw", "/api/v1/namespaces/default/configmaps?dryRun=Sometimes", "-f", "-"], r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}"#)
        .unwrap();
    assert!(!o.success);
    assert!(o.stderr.contains(r#"dryRun: Unsupported value: []string{\"Sometimes\"}: supported values: \"All\""#) || o.stderr.contains(r#"dryRun: Unsupported value: []string{"Sometimes"}: supported values: "All""#), "{}", o.stderr);
}
