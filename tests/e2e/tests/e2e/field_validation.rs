//! Server-side field validation of built-in kinds through kubectl's `--validate`.

use crate::cluster;

const WITH_UNKNOWN: &str = r#"{
  "apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {"name": "web"},
  "spec": {
    "foo": "bar",
    "replicas": 1,
    "selector": {"matchLabels": {"app": "web"}},
    "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}
  }
}"#;

#[test]
fn unknown_fields_are_rejected_warned_about_or_dropped() {
    let c = cluster();
    let k = c.kubectl();
    // kubectl's default is --validate=strict.
    let o = k.run_stdin(&["create", "-f", "-"], WITH_UNKNOWN).unwrap();
    assert!(!o.success);
    assert!(
        o.stderr.contains(r#"Error from server (BadRequest): error when creating "STDIN": Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.foo""#),
        "{}",
        o.stderr
    );
    let err = k.fails(&["get", "deployment", "web"]).unwrap();
    assert!(err.contains("not found"), "{err}");

    let o = k.run_stdin(&["create", "--validate=warn", "-f", "-"], WITH_UNKNOWN).unwrap();
    assert!(o.success, "{}", o.stderr);
    assert!(o.stderr.contains(r#"Warning: unknown field "spec.foo""#), "{}", o.stderr);
    let d = k.json(&["get", "deployment", "web", "-o", "json"]).unwrap();
    assert!(d["spec"].get("foo").is_none(), "unknown fields are never stored: {d}");
    k.ok(&["delete", "deployment", "web"]).unwrap();

    let o = k.run_stdin(&["create", "--validate=false", "-f", "-"], WITH_UNKNOWN).unwrap();
    assert!(o.success, "{}", o.stderr);
    assert!(!o.stderr.contains("Warning"), "{}", o.stderr);
    let d = k.json(&["get", "deployment", "web", "-o", "json"]).unwrap();
    assert!(d["spec"].get("foo").is_none(), "{d}");
    assert_eq!(d["spec"]["replicas"], 1);

    // Patches are checked after they are applied; kubectl patch sends no fieldValidation, so the
    // server's default (Warn) applies.
    let o = k.run(&["patch", "deployment", "web", "--type=merge", "-p", r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.25","bogus":1}]}}}}"#]).unwrap();
    assert!(o.success, "{}", o.stderr);
    assert!(o.stderr.contains(r#"Warning: unknown field "spec.template.spec.containers[0].bogus""#), "{}", o.stderr);
    let d = k.json(&["get", "deployment", "web", "-o", "json"]).unwrap();
    assert!(d["spec"]["template"]["spec"]["containers"][0].get("bogus").is_none(), "{d}");
    // Duplicate keys in a JSON body.
    let dup = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup"},"data":{"a":"1"},"data":{"a":"2"}}"#;
    let o = k.run_stdin(&["create", "--raw", "/api/v1/namespaces/default/configmaps?fieldValidation=Strict", "-f", "-"], dup).unwrap();
    assert!(!o.success);
    assert!(o.stderr.contains(r#"strict decoding error: duplicate field \"data\""#) || o.stderr.contains(r#"strict decoding error: duplicate field "data""#), "{}", o.stderr);
}
