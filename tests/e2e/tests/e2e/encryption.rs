//! Encryption at rest (`--encryption-provider-config`): Secrets are unreadable in the datastore
//! file, read back fine through the API, and keys rotate by rewriting.

use rkube_testkit::TestCluster;

const KEY_A: &str = "c2VjcmV0IGlzIHNlY3VyZSwgb3IgaXMgaXQ/IDMyYno=";
const KEY_B: &str = "YW5vdGhlciBzZWNyZXQga2V5LCAzMiBieXRlcyEhISE=";

fn config(providers: &str) -> String {
    format!("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources:\n  - secrets\n  providers:\n{providers}")
}

/// Every byte the datastore holds (database and write-ahead log).
fn datastore_bytes(c: &TestCluster) -> Vec<u8> {
    let mut all = Vec::new();
    for f in ["state.db", "state.db-wal"] {
        all.extend(std::fs::read(c.data_dir().join(f)).unwrap_or_default());
    }
    all
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn secrets_are_encrypted_at_rest_and_keys_rotate_by_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("encryption.yaml");
    std::fs::write(&cfg, config(&format!("  - aescbc:\n      keys:\n      - name: key-a\n        secret: {KEY_A}\n  - identity: {{}}\n"))).unwrap();
    let cfg_arg = cfg.to_str().unwrap().to_string();
    let mut c = TestCluster::start_with(&["--encryption-provider-config", &cfg_arg]).unwrap();
    let k = c.kubectl();
    k.ok(&["create", "secret", "generic", "db", "--from-literal=password=correct-horse-battery"]).unwrap();
    k.ok(&["create", "configmap", "plain", "--from-literal=note=visible-in-the-file"]).unwrap();
    assert_eq!(k.ok(&["get", "secret", "db", "-o", "jsonpath={.data.password}"]).unwrap(), "Y29ycmVjdC1ob3JzZS1iYXR0ZXJ5");
    let raw = datastore_bytes(&c);
    assert!(contains(&raw, "k8s:enc:aescbc:v1:key-a:"), "the secret is stored encrypted");
    assert!(!contains(&raw, "Y29ycmVjdC1ob3JzZS1iYXR0ZXJ5") && !contains(&raw, "correct-horse-battery"), "no plaintext secret in the datastore");
    assert!(contains(&raw, "visible-in-the-file"), "configmaps are not covered by this configuration");

    // Rotate: a new secretbox key first, the old key still readable; restart and rewrite.
    std::fs::write(
        &cfg,
        config(&format!("  - secretbox:\n      keys:\n      - name: key-b\n        secret: {KEY_B}\n  - aescbc:\n      keys:\n      - name: key-a\n        secret: {KEY_A}\n")),
    )
    .unwrap();
    c.restart().unwrap();
    let k = c.kubectl();
    assert_eq!(k.ok(&["get", "secret", "db", "-o", "jsonpath={.data.password}"]).unwrap(), "Y29ycmVjdC1ob3JzZS1iYXR0ZXJ5", "old key still reads");
    let all = k.ok(&["get", "secrets", "-A", "-o", "json"]).unwrap();
    k.ok_stdin(&["replace", "-f", "-"], &all).unwrap();
    // The latest revision of the secret now carries the new key's prefix.
    let raw = datastore_bytes(&c);
    assert!(contains(&raw, "k8s:enc:secretbox:v1:key-b:"), "rewritten with the new key");
    // Drop the old key: the rewritten secret still reads.
    std::fs::write(&cfg, config(&format!("  - secretbox:\n      keys:\n      - name: key-b\n        secret: {KEY_B}\n"))).unwrap();
    c.restart().unwrap();
    assert_eq!(c.kubectl().ok(&["get", "secret", "db", "-o", "jsonpath={.data.password}"]).unwrap(), "Y29ycmVjdC1ob3JzZS1iYXR0ZXJ5");
}

#[test]
fn an_invalid_configuration_stops_the_server_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.yaml");
    std::fs::write(&cfg, config("  - aescbc:\n      keys:\n      - name: k\n        secret: c2hvcnQ=\n")).unwrap();
    let err = match TestCluster::start_with(&["--encryption-provider-config", cfg.to_str().unwrap()]) {
        Ok(_) => panic!("the server started with an invalid encryption configuration"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("secret is not of the expected length, got 5"), "{err}");
}
