//! IAM authentication end to end, the seed scenario: three IAM roles mapped through the
//! `kube-system/aws-auth` ConfigMap to `system:masters`, `readwrite` and `readonly`/`debugmode`;
//! kubeconfig users whose `exec` plugin is the real `aws eks get-token` (awscli from PyPI) or
//! `rkube token`; a local STS stand-in (`tests/e2e/sts_standin.py`) that checks the presigned
//! URLs' SigV4 signatures with botocore and answers GetCallerIdentity as AWS does.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rkube_testkit::{Kubectl, TestCluster};
use serde_json::{Value, json};

use crate::rbac::PERSONAS;

const CLUSTER_ID: &str = "seed-blue";
const ACCOUNT: &str = "111122223333";

/// The seed's aws-auth: ops → system:masters, lead devs → readwrite, devs → readonly + debugmode.
const AWS_AUTH: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: aws-auth
  namespace: kube-system
data:
  mapRoles: |
    - rolearn: arn:aws:iam::111122223333:role/ops
      username: ops:{{SessionName}}
      groups:
        - system:masters
    - rolearn: arn:aws:iam::111122223333:role/lead-devs
      username: lead-dev:{{SessionName}}
      groups:
        - readwrite
    - rolearn: arn:aws:iam::111122223333:role/devs
      username: dev:{{SessionName}}
      groups:
        - readonly
        - debugmode
"#;

/// One IAM principal the stand-in knows: a role session with temporary credentials.
struct Principal {
    persona: &'static str,
    role: &'static str,
    session: &'static str,
    access_key_id: &'static str,
}

const PRINCIPALS: &[Principal] = &[
    Principal { persona: "ops", role: "ops", session: "alice@example.com", access_key_id: "ASIAOPSEXAMPLE000001" },
    Principal { persona: "lead", role: "lead-devs", session: "bob", access_key_id: "ASIALEADEXAMPLE00002" },
    Principal { persona: "dev", role: "devs", session: "carol", access_key_id: "ASIADEVEXAMPLE000003" },
    Principal { persona: "stranger", role: "contractors", session: "mallory", access_key_id: "ASIASTRANGEREXAMPLE4" },
];

fn principal(persona: &str) -> &'static Principal {
    PRINCIPALS.iter().find(|p| p.persona == persona).expect("known persona")
}

fn secret_of(p: &Principal) -> String {
    format!("secret-of-{}", p.persona)
}

fn session_token_of(p: &Principal) -> String {
    format!("session-token-of-{}", p.persona)
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A program from the project's Python venv (scripts/install.sh creates it).
fn venv_bin(name: &str) -> PathBuf {
    let path = repo_root().join(".venv/bin").join(name);
    assert!(path.exists(), "{} is missing: run scripts/install.sh (it installs awscli and botocore)", path.display());
    path
}

/// The STS stand-in on a loopback HTTPS port, with its own CA.
struct StsStandIn {
    child: Child,
    port: u16,
    ca_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl StsStandIn {
    fn start() -> Self {
        let dir = tempfile::Builder::new().prefix("rkube-sts-").tempdir().unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "sts-standin-ca");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::from_ca_cert_pem(&ca.pem(), ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap().signed_by(&leaf_key, &issuer).unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        std::fs::write(dir.path().join("cert.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), leaf_key.serialize_pem()).unwrap();
        let principals: serde_json::Map<String, Value> = PRINCIPALS
            .iter()
            .map(|p| {
                let entry = json!({
                    "secret": secret_of(p),
                    "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/{}/{}", p.role, p.session),
                    "user_id": format!("AROA{}EXAMPLE:{}", p.persona.to_uppercase(), p.session),
                    "account": ACCOUNT,
                });
                (p.access_key_id.to_string(), entry)
            })
            .collect();
        std::fs::write(dir.path().join("principals.json"), Value::Object(principals).to_string()).unwrap();
        let mut child = Command::new(venv_bin("python"))
            .arg(repo_root().join("tests/e2e/sts_standin.py"))
            .args(["--cert", "cert.pem", "--key", "key.pem", "--principals", "principals.json"])
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().strip_prefix("listening on ").and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("stand-in said {line:?}"));
        Self { child, port, ca_file, _dir: dir }
    }

    fn endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// A cluster that accepts IAM tokens for CLUSTER_ID presigned for this stand-in.
    fn cluster(&self) -> TestCluster {
        let endpoint = format!("--iam-sts-endpoint={}", self.endpoint());
        let ca = format!("--iam-sts-ca-file={}", self.ca_file.display());
        let id = format!("--iam-cluster-id={CLUSTER_ID}");
        TestCluster::start_with(&["--disable=controller-manager,scheduler,node-lifecycle", &id, &endpoint, &ca])
            .unwrap_or_else(|e| panic!("starting rkube: {e:#}"))
    }

    /// The credentials of a persona, as a role session's environment.
    fn env(&self, p: &Principal) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", p.access_key_id.to_string()),
            ("AWS_SECRET_ACCESS_KEY", secret_of(p)),
            ("AWS_SESSION_TOKEN", session_token_of(p)),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_DEFAULT_REGION", "us-east-1".to_string()),
            ("AWS_ENDPOINT_URL_STS", self.endpoint()),
            ("AWS_CA_BUNDLE", self.ca_file.display().to_string()),
            ("AWS_CONFIG_FILE", "/dev/null".to_string()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_string()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ]
    }

    /// `aws eks get-token` for `cluster_name` as `p`: the token of the ExecCredential it prints.
    fn aws_token(&self, p: &Principal, cluster_name: &str) -> String {
        let out = Command::new(venv_bin("aws")).args(["eks", "get-token", "--cluster-name", cluster_name]).envs(self.env(p)).output().unwrap();
        assert!(out.status.success(), "aws eks get-token: {}", String::from_utf8_lossy(&out.stderr));
        let credential: Value = serde_json::from_slice(&out.stdout).unwrap();
        credential["status"]["token"].as_str().unwrap().to_string()
    }
}

impl Drop for StsStandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Which exec plugin produces a kubeconfig user's token.
enum Plugin {
    AwsEksGetToken,
    RkubeToken,
}

/// A kubeconfig for the cluster whose user is given by `user` (an `exec` or `token` stanza).
fn kubeconfig_with_user(c: &TestCluster, name: &str, user: Value) -> Kubectl {
    let admin = c.kubectl().json(&["config", "view", "--raw", "-o", "json"]).unwrap();
    let cluster = admin["clusters"][0]["cluster"].clone();
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "rkube", "cluster": cluster}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": "rkube", "user": name}}],
        "current-context": name,
    });
    let dir = c.data_dir().join("iam-users").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("kubeconfig");
    std::fs::write(&path, config.to_string()).unwrap();
    Kubectl { bin: c.kubectl().bin, kubeconfig: path }
}

/// A kubectl whose user gets IAM tokens from an exec plugin as persona `p`.
fn iam_kubectl(c: &TestCluster, sts: &StsStandIn, p: &Principal, plugin: Plugin) -> Kubectl {
    let env: Vec<Value> = sts.env(p).into_iter().map(|(k, v)| json!({"name": k, "value": v})).collect();
    let (command, args) = match plugin {
        Plugin::AwsEksGetToken => (venv_bin("aws"), vec!["eks".to_string(), "get-token".into(), "--cluster-name".into(), CLUSTER_ID.into()]),
        Plugin::RkubeToken => (
            rkube_testkit::rkube_binary().unwrap(),
            vec!["token".to_string(), "--cluster-id".into(), CLUSTER_ID.into(), "--sts-endpoint".into(), sts.endpoint()],
        ),
    };
    let user = json!({"exec": {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": command,
        "args": args,
        "env": env,
        "interactiveMode": "Never",
    }});
    let suffix = match plugin {
        Plugin::AwsEksGetToken => "aws",
        Plugin::RkubeToken => "rkube",
    };
    kubeconfig_with_user(c, &format!("{}-{suffix}", p.persona), user)
}

fn can_i(k: &Kubectl, args: &[&str]) -> String {
    let mut all = vec!["auth", "can-i"];
    all.extend_from_slice(args);
    k.run(&all).unwrap().stdout.trim().to_string()
}

/// Runs `kubectl` until it succeeds (aws-auth edits reach the authenticator through the watch
/// cache, a moment after kubectl apply returns).
fn eventually_ok(k: &Kubectl, args: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let o = k.run(args).unwrap();
        if o.success {
            return o.stdout;
        }
        assert!(Instant::now() < deadline, "kubectl {args:?}: {}", o.stderr);
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn apply_seed(c: &TestCluster) {
    let admin = c.kubectl();
    let crd = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/testdata/externalsecret-crd.yaml")).unwrap();
    admin.ok_stdin(&["apply", "-f", "-"], &crd).unwrap();
    admin.ok(&["wait", "--for=condition=Established", "crd/externalsecrets.kubernetes-client.io", "--timeout=30s"]).unwrap();
    admin.ok_stdin(&["apply", "-f", "-"], PERSONAS).unwrap();
    admin.ok_stdin(&["apply", "-f", "-"], AWS_AUTH).unwrap();
}

/// kubectl's words for a 401 (the reason in parentheses depends on the request that got it:
/// "Unauthorized" or "the server has asked for the client to provide credentials").
const UNAUTHORIZED: &str = "error: You must be logged in to the server (";

/// Each persona's answers, as upstream's RBAC gives them for the groups aws-auth maps it to.
fn check_personas(ops: &Kubectl, lead: &Kubectl, dev: &Kubectl) {
    let who = eventually_ok(ops, &["auth", "whoami", "-o", "json"]);
    let who: Value = serde_json::from_str(&who).unwrap();
    assert_eq!(who["status"]["userInfo"]["username"], "ops:alice-example.com", "{who}");
    assert_eq!(who["status"]["userInfo"]["groups"], json!(["system:masters", "system:authenticated"]), "{who}");
    assert_eq!(who["status"]["userInfo"]["extra"]["arn"], json!([format!("arn:aws:sts::{ACCOUNT}:assumed-role/ops/alice@example.com")]), "{who}");
    let who: Value = serde_json::from_str(&eventually_ok(dev, &["auth", "whoami", "-o", "json"])).unwrap();
    assert_eq!(who["status"]["userInfo"]["username"], "dev:carol");
    assert_eq!(who["status"]["userInfo"]["groups"], json!(["readonly", "debugmode", "system:authenticated"]));

    let checks: &[(&Kubectl, &[&str], &str)] = &[
        (ops, &["*", "*"], "yes"),
        (ops, &["delete", "nodes"], "yes"),
        (lead, &["create", "deployments", "-n", "team"], "yes"),
        (lead, &["get", "secrets", "-n", "team"], "yes"),
        (lead, &["create", "externalsecrets", "-n", "team"], "yes"),
        (lead, &["create", "externalsecrets", "-n", "default"], "no"),
        (lead, &["create", "pods/exec", "-n", "team"], "yes"),
        (lead, &["create", "rolebindings", "-n", "team"], "no"),
        (dev, &["list", "pods", "--all-namespaces"], "yes"),
        (dev, &["get", "deployments", "-n", "team"], "yes"),
        (dev, &["get", "secrets", "-n", "team"], "no"),
        (dev, &["get", "externalsecrets", "-n", "team"], "no"),
        (dev, &["create", "pods/exec", "-n", "team"], "yes"),
        (dev, &["create", "pods/portforward", "-n", "team"], "yes"),
        (dev, &["create", "pods/exec", "-n", "default"], "no"),
        (dev, &["delete", "pods", "-n", "team"], "no"),
    ];
    for (k, args, want) in checks {
        assert_eq!(can_i(k, args), *want, "auth can-i {args:?} as {}", k.kubeconfig.display());
    }

    // Real requests agree.
    ops.ok(&["create", "namespace", "ops-made"]).unwrap();
    lead.ok(&["create", "configmap", "app", "-n", "team", "--from-literal=a=b"]).unwrap();
    let es = "apiVersion: kubernetes-client.io/v1\nkind: ExternalSecret\nmetadata: {name: db, namespace: team}\nspec: {backendType: secretsManager, data: [{key: db, name: password}]}\n";
    lead.ok_stdin(&["apply", "-f", "-"], es).unwrap();
    assert!(lead.ok(&["get", "externalsecrets", "-n", "team"]).unwrap().contains("db"));
    dev.ok(&["get", "configmap", "app", "-n", "team"]).unwrap();
    let err = dev.fails(&["get", "secrets", "-n", "team"]).unwrap();
    assert!(err.contains("secrets is forbidden: User \"dev:carol\" cannot list resource \"secrets\" in API group \"\" in the namespace \"team\""), "{err}");
    let err = dev.fails(&["delete", "configmap", "app", "-n", "team"]).unwrap();
    assert!(err.contains("User \"dev:carol\" cannot delete resource \"configmaps\""), "{err}");
    let err = lead.fails(&["get", "secrets", "-n", "default"]).unwrap();
    assert!(err.contains("User \"lead-dev:bob\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\""), "{err}");
}

#[test]
fn iam_personas_with_aws_eks_get_token() {
    let sts = StsStandIn::start();
    let c = sts.cluster();
    let ops = iam_kubectl(&c, &sts, principal("ops"), Plugin::AwsEksGetToken);
    // Before aws-auth exists the signature is good but the role maps to nobody.
    let o = ops.run(&["get", "namespaces"]).unwrap();
    assert!(o.stderr.contains(UNAUTHORIZED), "{}", o.stderr);
    assert!(c.log().contains("ARN is not mapped: arn:aws:iam::111122223333:role/ops"), "{}", c.log());
    apply_seed(&c);
    let lead = iam_kubectl(&c, &sts, principal("lead"), Plugin::AwsEksGetToken);
    let dev = iam_kubectl(&c, &sts, principal("dev"), Plugin::AwsEksGetToken);
    check_personas(&ops, &lead, &dev);
}

#[test]
fn iam_personas_with_rkube_token() {
    let sts = StsStandIn::start();
    let c = sts.cluster();
    apply_seed(&c);
    let ops = iam_kubectl(&c, &sts, principal("ops"), Plugin::RkubeToken);
    let lead = iam_kubectl(&c, &sts, principal("lead"), Plugin::RkubeToken);
    let dev = iam_kubectl(&c, &sts, principal("dev"), Plugin::RkubeToken);
    check_personas(&ops, &lead, &dev);
    // kubectl 1.27 runs the same exec plugin (client.authentication.k8s.io/v1beta1).
    assert_eq!(can_i(&dev.with_version(27), &["create", "pods/exec", "-n", "team"]), "yes");
    assert_eq!(can_i(&dev.with_version(27), &["get", "secrets", "-n", "team"]), "no");

    // The ExecCredential itself: v1beta1, token prefix, expiry 14 minutes ahead.
    let out = Command::new(rkube_testkit::rkube_binary().unwrap())
        .args(["token", "--cluster-id", CLUSTER_ID, "--sts-endpoint", &sts.endpoint()])
        .envs(sts.env(principal("dev")))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let credential: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((credential["apiVersion"].as_str(), credential["kind"].as_str()), (Some("client.authentication.k8s.io/v1beta1"), Some("ExecCredential")));
    assert!(credential["status"]["token"].as_str().unwrap().starts_with("k8s-aws-v1."), "{credential}");
    // Without a TXT record for the name, the given cluster id is used.
    let out = Command::new(rkube_testkit::rkube_binary().unwrap())
        .args(["token", "--cluster-id", CLUSTER_ID, "--cluster-id-from-txt", "no-such-cluster.invalid", "--sts-endpoint", &sts.endpoint()])
        .envs(sts.env(principal("dev")))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let fallback: Value = serde_json::from_slice(&out.stdout).unwrap();
    let who = token_kubectl(&c, "txt-fallback", fallback["status"]["token"].as_str().unwrap()).ok(&["auth", "whoami"]).unwrap();
    assert!(who.contains("dev:carol"), "{who}");
    let expiry = chrono::DateTime::parse_from_rfc3339(credential["status"]["expirationTimestamp"].as_str().unwrap()).unwrap();
    let ahead = expiry.signed_duration_since(chrono::Utc::now()).num_seconds();
    assert!((13 * 60..=14 * 60).contains(&ahead), "expires in {ahead}s");
}

/// A kubectl that sends exactly `token`.
fn token_kubectl(c: &TestCluster, name: &str, token: &str) -> Kubectl {
    kubeconfig_with_user(c, name, json!({"token": token}))
}

/// The URL inside an IAM token, edited, as a token again.
fn edit_token(token: &str, edit: impl Fn(String) -> String) -> String {
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let url = String::from_utf8(engine.decode(token.trim_start_matches("k8s-aws-v1.")).unwrap()).unwrap();
    format!("k8s-aws-v1.{}", engine.encode(edit(url)))
}

#[test]
fn iam_bad_tokens_are_unauthorized() {
    let sts = StsStandIn::start();
    let c = sts.cluster();
    apply_seed(&c);
    let good = sts.aws_token(principal("dev"), CLUSTER_ID);
    eventually_ok(&token_kubectl(&c, "good", &good), &["get", "configmaps", "-n", "team"]);

    let wrong_cluster = sts.aws_token(principal("dev"), "seed-green");
    let tampered = edit_token(&good, |url| url.replace("X-Amz-Expires=60", "X-Amz-Expires=61"));
    let expired = edit_token(&good, |url| {
        let old = (chrono::Utc::now() - chrono::TimeDelta::minutes(20)).format("%Y%m%dT%H%M%SZ").to_string();
        let at = url.find("X-Amz-Date=").unwrap() + "X-Amz-Date=".len();
        format!("{}{old}{}", &url[..at], &url[at + 16..])
    });
    let foreign_host = edit_token(&good, |url| url.replace(&sts.endpoint(), "https://sts.example.com"));
    let unmapped = sts.aws_token(principal("stranger"), CLUSTER_ID);
    let cases = [
        ("wrong-cluster", wrong_cluster, "SignatureDoesNotMatch"),
        ("tampered", tampered, "SignatureDoesNotMatch"),
        ("expired", expired, "X-Amz-Date parameter is expired (15 minute expiration)"),
        ("foreign-host", foreign_host, "unexpected hostname \"sts.example.com\" in pre-signed URL"),
        ("unmapped", unmapped, "ARN is not mapped: arn:aws:iam::111122223333:role/contractors"),
    ];
    for (name, token, reason) in cases {
        let o = token_kubectl(&c, name, &token).run(&["get", "configmaps", "-n", "team"]).unwrap();
        assert!(!o.success && o.stderr.contains(UNAUTHORIZED), "{name}: {}", o.stderr);
        assert!(c.log().contains(reason), "{name}: no {reason:?} in the server log:\n{}", c.log());
    }

    // A verified token is remembered until it expires: it still works with STS gone, a new
    // token does not.
    let fresh = sts.aws_token(principal("dev"), CLUSTER_ID);
    drop(sts);
    token_kubectl(&c, "cached", &good).ok(&["get", "configmaps", "-n", "team"]).unwrap();
    let o = token_kubectl(&c, "fresh", &fresh).run(&["get", "configmaps", "-n", "team"]).unwrap();
    assert!(!o.success && o.stderr.contains(UNAUTHORIZED), "fresh token without STS: {}", o.stderr);
    assert!(c.log().contains("error during GET"), "{}", c.log());
}

#[test]
fn malformed_aws_auth_keeps_the_last_mapping_and_is_reported() {
    let sts = StsStandIn::start();
    let c = sts.cluster();
    apply_seed(&c);
    let dev = iam_kubectl(&c, &sts, principal("dev"), Plugin::AwsEksGetToken);
    eventually_ok(&dev, &["get", "configmaps", "-n", "team"]);

    let broken = AWS_AUTH.replace("    - rolearn: arn:aws:iam::111122223333:role/devs", "    - rolearn: [arn:aws:iam::111122223333:role/devs");
    c.kubectl().ok_stdin(&["apply", "-f", "-"], &broken).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // The malformed edit neither locks out the certificate admin nor the mapped IAM users.
    dev.ok(&["get", "configmaps", "-n", "team"]).unwrap();
    c.kubectl().ok(&["get", "configmap", "aws-auth", "-n", "kube-system"]).unwrap();
    let events = c.kubectl().ok(&["get", "events", "-n", "kube-system", "--field-selector", "involvedObject.name=aws-auth"]).unwrap();
    assert!(events.contains("Warning") && events.contains("MalformedAwsAuth") && events.contains("configmap/aws-auth"), "{events}");
    assert!(c.log().contains("malformed aws-auth"), "{}", c.log());

    // A valid edit applies without a restart: devs lose their mapping.
    let without_devs = AWS_AUTH.split("    - rolearn: arn:aws:iam::111122223333:role/devs").next().unwrap().to_string();
    c.kubectl().ok_stdin(&["apply", "-f", "-"], &without_devs).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let o = dev.run(&["get", "configmaps", "-n", "team"]).unwrap();
        if o.stderr.contains(UNAUTHORIZED) {
            break;
        }
        assert!(Instant::now() < deadline, "devs still authenticated after their mapping was removed: {}{}", o.stdout, o.stderr);
        std::thread::sleep(Duration::from_millis(200));
    }
}
