//! Selectors and pagination.

use crate::cluster;

#[test]
fn label_and_field_selectors() {
    let c = cluster();
    let k = c.kubectl();
    for (name, labels) in [("a", "tier=web,env=prod"), ("b", "tier=db,env=prod"), ("c", "tier=web,env=dev"), ("d", "")] {
        k.ok(&["create", "configmap", name]).unwrap();
        if !labels.is_empty() {
            let mut args = vec!["label", "configmap", name];
            args.extend(labels.split(','));
            k.ok(&args).unwrap();
        }
    }
    let names = |sel: &[&str]| -> Vec<String> {
        let mut args = vec!["get", "configmaps", "-o", "name"];
        args.extend_from_slice(sel);
        let mut v: Vec<String> = k.ok(&args).unwrap().lines().map(|l| l.trim_start_matches("configmap/").to_string()).filter(|n| n != "kube-root-ca.crt").collect();
        v.sort();
        v
    };
    assert_eq!(names(&["-l", "tier=web"]), ["a", "c"]);
    assert_eq!(names(&["-l", "tier!=web"]), ["b", "d"]);
    assert_eq!(names(&["-l", "tier in (web,db),env=prod"]), ["a", "b"]);
    assert_eq!(names(&["-l", "env notin (prod)"]), ["c", "d"]);
    assert_eq!(names(&["-l", "tier"]), ["a", "b", "c"]);
    assert_eq!(names(&["-l", "!tier"]), ["d"]);
    assert_eq!(names(&["--field-selector", "metadata.name=b"]), ["b"]);
    assert_eq!(names(&["--field-selector", "metadata.name!=b", "-l", "env=prod"]), ["a"]);
    let err = k.fails(&["get", "configmaps", "--field-selector", "spec.nope=1"]).unwrap();
    assert!(err.contains("\"spec.nope\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""), "{err}");
    let err = k.fails(&["get", "configmaps", "-l", "a b"]).unwrap();
    assert!(err.contains("unable to parse requirement"), "{err}");

    // Per-kind field labels: pods by spec.nodeName and status.phase.
    k.ok_stdin(&["create", "-f", "-"], r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"on-n1"},"spec":{"nodeName":"n1","containers":[{"name":"c","image":"busybox"}]}}"#).unwrap();
    k.ok_stdin(&["create", "-f", "-"], r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"nowhere"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}"#).unwrap();
    let on = k.ok(&["get", "pods", "--field-selector", "spec.nodeName=n1", "-o", "name"]).unwrap();
    assert_eq!(on.trim(), "pod/on-n1");
    let unscheduled = k.ok(&["get", "pods", "--field-selector", "spec.nodeName=", "-o", "name"]).unwrap();
    assert_eq!(unscheduled.trim(), "pod/nowhere");
    let pending = k.ok(&["get", "pods", "--field-selector", "status.phase=Pending", "-o", "name"]).unwrap();
    assert_eq!(pending.lines().count(), 2, "{pending}");
}

#[test]
fn chunked_list_over_a_thousand_objects() {
    let c = cluster();
    let k = c.kubectl();
    const N: usize = 1100;
    // One multi-document YAML stream, as users write manifests.
    let docs: Vec<String> = (0..N)
        .map(|i| format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i:04}\n  labels:\n    batch: big\ndata:\n  i: \"{i}\"\n"))
        .collect();
    k.ok_stdin(&["create", "-f", "-"], &docs.join("---\n")).unwrap();
    let out = k.run(&["get", "configmaps", "-l", "batch=big", "--chunk-size=100", "-o", "name", "-v=6"]).unwrap();
    assert!(out.success, "{}", out.stderr);
    let names: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(names.len(), N);
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), N, "no duplicates across pages");
    let pages = out.stderr.lines().filter(|l| l.contains("limit=100") && l.contains("200 OK")).count();
    assert!(pages >= 11, "expected at least 11 pages, saw {pages}:\n{}", out.stderr);
    assert!(out.stderr.contains("continue="), "kubectl followed continue tokens");

    // The same through the raw API: remainingItemCount and a continue token on the first page.
    let page = k.json(&["get", "--raw", "/api/v1/namespaces/default/configmaps?limit=500"]).unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 500);
    let remaining = page["metadata"]["remainingItemCount"].as_i64().unwrap();
    // Every namespace also holds the root-ca-cert-publisher's kube-root-ca.crt ConfigMap.
    assert_eq!(remaining as usize, N + 1 - 500);
    let token = page["metadata"]["continue"].as_str().unwrap();
    let page2 = k.json(&["get", "--raw", &format!("/api/v1/namespaces/default/configmaps?limit=500&continue={token}")]).unwrap();
    assert_eq!(page2["metadata"]["resourceVersion"], page["metadata"]["resourceVersion"], "every page is read at the first page's revision");
}
