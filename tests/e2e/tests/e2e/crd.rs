//! CustomResourceDefinitions with the real kubectl and kube-rs: the seed's ExternalSecret CRD
//! (group kubernetes-client.io) is applied, established, used, and deleted.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{StreamExt, TryStreamExt};
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
    WatchEvent, WatchParams,
};
use rkube_testkit::{Kubectl, TestCluster};
use serde_json::json;

use crate::cluster;

const CRD: &str = include_str!("testdata/externalsecret-crd.yaml");
const CRD_NAME: &str = "crd/externalsecrets.kubernetes-client.io";

const DB_CREDS: &str = r#"apiVersion: kubernetes-client.io/v1
kind: ExternalSecret
metadata:
  name: db-creds
spec:
  backendType: secretsManager
  region: eu-west-1
  data:
  - key: prod/db
    name: password
    property: password
"#;

const INVALID: &str = r#"apiVersion: kubernetes-client.io/v1
kind: ExternalSecret
metadata:
  name: broken
spec:
  backendType: keepass
  data:
  - name: password
"#;

const UNKNOWN_FIELD: &str = r#"apiVersion: kubernetes-client.io/v1
kind: ExternalSecret
metadata:
  name: typo
spec:
  backendType: vault
  refreshIntervall: 30
"#;

/// RFC 3339 for a UNIX time (civil-from-days, as chrono would print it), to put known
/// timestamps into objects.
fn rfc3339(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// How objects are sent: `kubectl apply` (1.33), or `kubectl create --validate=false` for
/// kubectl 1.27, whose apply/create first read the protobuf OpenAPI v2 document, which rkube does
/// not serve yet (`proto: cannot parse invalid wire-format data`, also for built-in kinds).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Send {
    Apply,
    CreateWithoutClientValidation,
}

impl Send {
    fn args(self) -> &'static [&'static str] {
        match self {
            Send::Apply => &["apply", "-f", "-"],
            Send::CreateWithoutClientValidation => &["create", "--validate=false", "-f", "-"],
        }
    }
}

fn install_crd(k: &Kubectl) {
    install_crd_with(k, Send::Apply);
}

fn install_crd_with(k: &Kubectl, send: Send) {
    let out = k.ok_stdin(send.args(), CRD).unwrap();
    assert_eq!(
        out.trim(),
        "customresourcedefinition.apiextensions.k8s.io/externalsecrets.kubernetes-client.io created"
    );
    let waited = k
        .ok(&[
            "wait",
            "--for",
            "condition=established",
            CRD_NAME,
            "--timeout=5s",
        ])
        .unwrap();
    assert_eq!(
        waited.trim(),
        "customresourcedefinition.apiextensions.k8s.io/externalsecrets.kubernetes-client.io condition met"
    );
}

/// The flow every kubectl version must get through.
fn externalsecret_flow(k: &Kubectl, send: Send) {
    install_crd_with(k, send);

    // Discovery right after established: api-resources and the short name.
    let resources = k
        .ok(&[
            "api-resources",
            "--api-group=kubernetes-client.io",
            "--no-headers",
        ])
        .unwrap();
    let row: Vec<&str> = resources
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        row,
        vec![
            "externalsecrets",
            "es",
            "kubernetes-client.io/v1",
            "true",
            "ExternalSecret"
        ],
        "{resources}"
    );

    // Create; the schema default fills refreshInterval.
    let out = k.ok_stdin(send.args(), DB_CREDS).unwrap();
    assert_eq!(
        out.trim(),
        "externalsecret.kubernetes-client.io/db-creds created"
    );
    let obj = k.json(&["get", "es", "db-creds", "-o", "json"]).unwrap();
    assert_eq!(obj["spec"]["refreshInterval"], 60);
    assert_eq!(obj["metadata"]["generation"], 1);

    // Rejected by the schema with upstream's message.
    let o = k.run_stdin(send.args(), INVALID).unwrap();
    assert!(!o.success);
    assert!(
        o.stderr.contains(
            "The ExternalSecret \"broken\" is invalid: \n* spec.backendType: Unsupported value: \"keepass\": supported values: \"secretsManager\", \"systemManager\", \"vault\", \"azureKeyVault\", \"gcpSecretsManager\"\n* spec.data[0].key: Required value"
        ),
        "{}",
        o.stderr
    );

    // Unknown fields: kubectl's default (Strict) rejects, --validate=warn warns and prunes.
    if send == Send::Apply {
        let o = k.run_stdin(&["apply", "-f", "-"], UNKNOWN_FIELD).unwrap();
        assert!(!o.success);
        assert!(
            o.stderr.contains("ExternalSecret in version \"v1\" cannot be handled as a ExternalSecret: strict decoding error: unknown field \"spec.refreshIntervall\""),
            "{}",
            o.stderr
        );
        let o = k
            .run_stdin(&["apply", "--validate=warn", "-f", "-"], UNKNOWN_FIELD)
            .unwrap();
        assert!(o.success, "{}", o.stderr);
        assert!(
            o.stderr
                .contains("Warning: unknown field \"spec.refreshIntervall\""),
            "{}",
            o.stderr
        );
    } else {
        k.ok_stdin(send.args(), UNKNOWN_FIELD).unwrap();
    }
    let typo = k.json(&["get", "es", "typo", "-o", "json"]).unwrap();
    assert!(
        typo["spec"].get("refreshIntervall").is_none(),
        "pruned: {typo}"
    );

    // Status through the subresource; the main resource ignores status and bumps generation
    // only for spec changes.
    let two_hours_ago = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 7200;
    let status =
        json!({"status": {"lastSync": rfc3339(two_hours_ago), "status": "SUCCESS"}}).to_string();
    k.ok(&[
        "patch",
        "es",
        "db-creds",
        "--subresource=status",
        "--type=merge",
        "-p",
        &status,
    ])
    .unwrap();
    k.ok(&[
        "patch",
        "es",
        "db-creds",
        "--type=merge",
        "-p",
        r#"{"status":{"status":"IGNORED"},"metadata":{"labels":{"a":"b"}}}"#,
    ])
    .unwrap();
    let obj = k.json(&["get", "es", "db-creds", "-o", "json"]).unwrap();
    assert_eq!(obj["status"]["status"], "SUCCESS");
    assert_eq!(obj["metadata"]["generation"], 1);
    k.ok(&[
        "patch",
        "es",
        "db-creds",
        "--type=merge",
        "-p",
        r#"{"spec":{"region":"us-east-1"}}"#,
    ])
    .unwrap();
    assert_eq!(
        k.json(&["get", "es", "db-creds", "-o", "json"]).unwrap()["metadata"]["generation"],
        2
    );

    // Strategic merge patch is not for custom resources.
    let o = k
        .run(&[
            "patch",
            "es",
            "db-creds",
            "--type=strategic",
            "-p",
            r#"{"spec":{"region":"x"}}"#,
        ])
        .unwrap();
    assert!(!o.success);
    assert!(
        o.stderr.contains("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"),
        "{}",
        o.stderr
    );

    // Printer columns.
    let table = k.ok(&["get", "externalsecrets"]).unwrap();
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        vec!["NAME", "LAST", "SYNC", "STATUS", "AGE"],
        "{table}"
    );
    assert_eq!(lines.len(), 3, "{table}");
    let db = &lines[1];
    assert_eq!(db[0], "db-creds");
    assert!(
        db[1] == "120m" || db[1] == "121m",
        "LAST SYNC of a sync two hours ago: {table}"
    );
    assert_eq!(db[2], "SUCCESS");
    assert!(db[3].ends_with('s'), "AGE in seconds: {table}");
    assert_eq!(lines[2].len(), 2, "typo has no status columns: {table}");
    let by_category = k.ok(&["get", "all", "-o", "name"]).unwrap();
    assert!(
        by_category.contains("externalsecret.kubernetes-client.io/db-creds"),
        "{by_category}"
    );

    // Deleting the CRD removes its objects, then the CRD and the resource.
    k.ok(&["delete", CRD_NAME, "--timeout=10s"]).unwrap();
    let crds = k.ok(&["get", "crd", "-o", "name"]).unwrap();
    assert!(!crds.contains("externalsecrets"), "{crds}");
    let resources = k
        .ok(&[
            "api-resources",
            "--api-group=kubernetes-client.io",
            "--no-headers",
        ])
        .unwrap();
    assert!(resources.trim().is_empty(), "{resources}");
    // Re-creating the CRD shows that no object survived.
    install_crd_with(k, send);
    let left = k.ok(&["get", "es", "-A", "-o", "name"]).unwrap();
    assert!(left.trim().is_empty(), "objects survived their CRD: {left}");
}

#[test]
fn externalsecret_crd_with_kubectl_1_33() {
    let c = cluster();
    externalsecret_flow(&c.kubectl(), Send::Apply);
}

#[test]
fn externalsecret_crd_with_kubectl_1_27() {
    let c = cluster();
    externalsecret_flow(&c.kubectl_version(27), Send::CreateWithoutClientValidation);
}

#[test]
fn crd_validation_names_conflicts_and_crd_status() {
    let c = cluster();
    let k = c.kubectl();
    install_crd(&k);
    let crd = k.json(&["get", CRD_NAME, "-o", "json"]).unwrap();
    assert_eq!(crd["status"]["storedVersions"], json!(["v1"]));
    assert_eq!(crd["spec"]["names"]["listKind"], "ExternalSecretList");
    assert_eq!(crd["spec"]["conversion"], json!({"strategy": "None"}));
    let conditions: Vec<(String, String, String)> = crd["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["type"].as_str().unwrap().into(),
                c["status"].as_str().unwrap().into(),
                c["reason"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        conditions.contains(&("NamesAccepted".into(), "True".into(), "NoConflicts".into())),
        "{conditions:?}"
    );
    assert!(
        conditions.contains(&(
            "Established".into(),
            "True".into(),
            "InitialNamesAccepted".into()
        )),
        "{conditions:?}"
    );

    // A second CRD of the group claiming the same kind and short name is not accepted.
    let conflicting = CRD
        .replace(
            "externalsecrets.kubernetes-client.io",
            "secretstores.kubernetes-client.io",
        )
        .replace("plural: externalsecrets", "plural: secretstores")
        .replace("singular: externalsecret", "singular: secretstore");
    k.ok_stdin(&["apply", "-f", "-"], &conflicting).unwrap();
    let mut names_accepted = json!(null);
    for _ in 0..50 {
        let other = k
            .json(&["get", "crd/secretstores.kubernetes-client.io", "-o", "json"])
            .unwrap();
        if let Some(c) = other["status"]["conditions"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["type"] == "NamesAccepted"))
        {
            names_accepted = c.clone();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(names_accepted["status"], "False", "{names_accepted}");
    assert_eq!(names_accepted["reason"], "KindConflict", "{names_accepted}");
    assert_eq!(
        names_accepted["message"], "\"ExternalSecret\" is already in use",
        "{names_accepted}"
    );

    // Invalid CRDs are rejected with upstream's messages.
    let bad = CRD
        .replace(
            "name: externalsecrets.kubernetes-client.io",
            "name: wrong.kubernetes-client.io",
        )
        .replace("storage: true", "storage: false");
    let o = k.run_stdin(&["apply", "-f", "-"], &bad).unwrap();
    assert!(!o.success);
    assert!(o.stderr.contains("metadata.name: Invalid value: \"wrong.kubernetes-client.io\": must be spec.names.plural+\".\"+spec.group"), "{}", o.stderr);
    assert!(
        o.stderr
            .contains("must have exactly one version marked as storage version"),
        "{}",
        o.stderr
    );
}

#[test]
fn crds_are_served_again_after_restart() {
    let mut c: TestCluster = cluster();
    let k = c.kubectl();
    install_crd(&k);
    k.ok_stdin(&["apply", "-f", "-"], DB_CREDS).unwrap();
    c.restart().unwrap();
    let k = c.kubectl();
    let name = k.ok(&["get", "es", "-o", "name"]).unwrap();
    assert_eq!(name.trim(), "externalsecret.kubernetes-client.io/db-creds");
}

#[tokio::test]
async fn kube_rs_dynamic_objects() {
    let c = cluster();
    let k = c.kubectl();
    install_crd(&k);
    let client = crate::kube_client::client(&c.kubeconfig).await;
    let gvk = GroupVersionKind::gvk("kubernetes-client.io", "v1", "ExternalSecret");
    let (ar, caps) = kube::discovery::pinned_kind(&client, &gvk).await.unwrap();
    assert_eq!(ar.plural, "externalsecrets");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &ApiResource { ..ar.clone() });

    let mut watch = api
        .watch(&WatchParams::default().timeout(10), "0")
        .await
        .unwrap()
        .boxed();
    let mut obj = DynamicObject::new("from-kube-rs", &ar);
    obj.data = json!({"spec": {"backendType": "vault", "data": [{"key": "k", "name": "n"}]}});
    let created = api.create(&PostParams::default(), &obj).await.unwrap();
    assert_eq!(created.data["spec"]["refreshInterval"], 60);

    let patched = api
        .patch_status(
            "from-kube-rs",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"status": "SUCCESS"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["status"]["status"], "SUCCESS");
    let listed = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);

    let mut seen = Vec::new();
    while let Some(ev) = watch.try_next().await.unwrap() {
        match ev {
            WatchEvent::Added(o) | WatchEvent::Modified(o) => seen.push(
                o.data["status"]["status"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            ),
            _ => {}
        }
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(seen, vec!["".to_string(), "SUCCESS".to_string()]);

    let err = api
        .create(
            &PostParams::default(),
            &DynamicObject::new("bad", &ar).data(json!({"spec": {"backendType": "nope"}})),
        )
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 422);
            assert_eq!(
                s.message,
                "ExternalSecret.kubernetes-client.io \"bad\" is invalid: spec.backendType: Unsupported value: \"nope\": supported values: \"secretsManager\", \"systemManager\", \"vault\", \"azureKeyVault\", \"gcpSecretsManager\""
            );
        }
        other => panic!("unexpected error {other:?}"),
    }
}

const WORKER_CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: workers.example.com
spec:
  group: example.com
  scope: Cluster
  names: {plural: workers, kind: Worker}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {replicas: {type: integer}}}
          status: {type: object, properties: {replicas: {type: integer}}}
"#;

#[test]
fn cluster_scoped_crd_with_scale_and_default_age_column() {
    let c = cluster();
    let k = c.kubectl();
    k.ok_stdin(&["apply", "-f", "-"], WORKER_CRD).unwrap();
    k.ok(&[
        "wait",
        "--for",
        "condition=established",
        "crd/workers.example.com",
        "--timeout=5s",
    ])
    .unwrap();
    let worker = r#"{"apiVersion":"example.com/v1","kind":"Worker","metadata":{"name":"w"},"spec":{"replicas":1}}"#;
    k.ok_stdin(&["create", "-f", "-"], worker).unwrap();
    assert_eq!(
        k.ok(&["scale", "worker", "w", "--replicas=3"])
            .unwrap()
            .trim(),
        "worker.example.com/w scaled"
    );
    assert_eq!(
        k.json(&["get", "worker", "w", "-o", "json"]).unwrap()["spec"]["replicas"],
        3
    );
    let scale = k
        .json(&["get", "--raw", "/apis/example.com/v1/workers/w/scale"])
        .unwrap();
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["spec"]["replicas"], 3);
    assert_eq!(scale["status"]["replicas"], 0);
    // No printer columns declared: NAME and upstream's default AGE.
    let table = k.ok(&["get", "workers"]).unwrap();
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(header, vec!["NAME", "AGE"], "{table}");
    // Cluster-scoped: a namespaced path does not exist.
    let o = k
        .run(&[
            "get",
            "--raw",
            "/apis/example.com/v1/namespaces/default/workers",
        ])
        .unwrap();
    assert!(!o.success && o.stderr.contains("NotFound"), "{}", o.stderr);
}

/// A new CRD's schema is published in OpenAPI: `kubectl explain` (v3 for 1.33, v2 protobuf for
/// 1.27) describes its fields, and it disappears with the CRD.
#[test]
fn crd_schema_is_served_in_openapi_for_explain() {
    let c = cluster();
    let k = c.kubectl();
    install_crd(&k);
    let explained = k.ok(&["explain", "externalsecrets.spec"]).unwrap();
    assert!(explained.contains("KIND:       ExternalSecret"), "{explained}");
    assert!(explained.contains("backendType\t<string> -required-"), "{explained}");
    let old = c.kubectl_version(27).ok(&["explain", "externalsecrets.spec.backendType"]).unwrap();
    assert!(old.contains("FIELD: backendType <string>"), "{old}");
    let v3 = k.json(&["get", "--raw", "/openapi/v3/apis/kubernetes-client.io/v1"]).unwrap();
    assert!(v3["components"]["schemas"].get("io.kubernetes-client.v1.ExternalSecret").is_some(), "definition named as upstream");
    k.ok(&["delete", CRD_NAME]).unwrap();
    let root = k.json(&["get", "--raw", "/openapi/v3"]).unwrap();
    assert!(root["paths"].get("apis/kubernetes-client.io/v1").is_none(), "the group-version is gone after the CRD");
}
