//! Request bodies recorded from the real kubectl 1.33 binary (`testdata/kubectl-1.33/*.pb`,
//! captured by pointing kubectl at a local HTTP listener). Where kubectl can print the same
//! object itself (`--dry-run=client -o json`, saved as `*.json`), our decoding must equal
//! kubectl's own JSON: that checks field names, omitted zero values and kept pointer zeros
//! against Go's encoders.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test code

use std::path::Path;

use rkube_protobuf::ProtoCodec;
use serde_json::Value;

fn testdata() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/kubectl-1.33")
}

#[test]
fn decoded_bodies_equal_kubectls_own_json() {
    let codec = ProtoCodec::new().expect("schema");
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(testdata())
        .expect("testdata")
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for pb in entries
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pb"))
    {
        let body = std::fs::read(pb).expect("read");
        let mut got = codec
            .decode(&body)
            .unwrap_or_else(|e| panic!("{}: {e}", pb.display()));
        // Round trip: our encoding of the decoded object decodes to the same JSON.
        let again = codec
            .decode(&codec.encode(&got).expect("encode"))
            .expect("decode");
        assert_eq!(again, got, "{}", pb.display());
        let json = pb.with_extension("json");
        if !json.exists() {
            continue;
        }
        let want: Value =
            serde_json::from_slice(&std::fs::read(&json).expect("read")).expect("json");
        // The printed object carries the namespace from the command line; the request body
        // leaves it to the URL.
        if let (Some(ns), Some(m)) = (
            want["metadata"].get("namespace"),
            got["metadata"].as_object_mut(),
        ) {
            m.entry("namespace").or_insert(ns.clone());
        }
        assert_eq!(got, want, "{}:\n got {got:#}\nwant {want:#}", pb.display());
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} bodies compared");
}

#[test]
fn auth_and_token_bodies() {
    let codec = ProtoCodec::new().expect("schema");
    let read = |name: &str| {
        let body = std::fs::read(testdata().join(name)).expect("read");
        codec.decode(&body).expect("decode")
    };
    let ssar = read("auth-can-i.pb");
    assert_eq!(ssar["kind"], "SelfSubjectAccessReview");
    assert_eq!(ssar["spec"]["resourceAttributes"]["verb"], "create");
    assert_eq!(ssar["spec"]["resourceAttributes"]["resource"], "pods");
    assert_eq!(ssar["spec"]["resourceAttributes"]["namespace"], "default");
    let ssrr = read("auth-can-i-list.pb");
    assert_eq!(
        (ssrr["kind"].as_str(), ssrr["spec"]["namespace"].as_str()),
        (Some("SelfSubjectRulesReview"), Some("default"))
    );
    let ssr = read("auth-whoami.pb");
    assert_eq!(
        (ssr["kind"].as_str(), ssr["apiVersion"].as_str()),
        (Some("SelfSubjectReview"), Some("authentication.k8s.io/v1"))
    );
    let tr = read("create-token.pb");
    assert_eq!(tr["kind"], "TokenRequest");
    assert_eq!(tr["spec"]["audiences"], serde_json::json!(["api"]));
    assert_eq!(tr["spec"]["expirationSeconds"], 600);
}
