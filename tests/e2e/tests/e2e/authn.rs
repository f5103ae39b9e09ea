//! Bearer-token authentication with the real kubectl: a static token file, ServiceAccount tokens
//! from `kubectl create token` (bound to a pod, verified with the published JWKS), bootstrap
//! tokens, TokenReview, and upstream's 401 for tokens nobody accepts.

use std::time::{Duration, Instant};

use rkube_testkit::{Kubectl, TestCluster};
use serde_json::{Value, json};

use crate::cluster;

/// kubectl's message when the server answers 401 with upstream's Status.
const UNAUTHORIZED: &str = "error: You must be logged in to the server (Unauthorized)";
/// What kubectl prints instead when its discovery requests already get 401.
const UNAUTHORIZED_DISCOVERY: &str = "error: You must be logged in to the server (the server has asked for the client to provide credentials)";

/// A kubectl that authenticates with `token` only (no client certificate), with its own
/// kubeconfig and discovery cache under the data directory.
fn token_kubectl(c: &TestCluster, label: &str, token: &str) -> Kubectl {
    let admin = c.kubectl();
    let raw = admin.json(&["config", "view", "--raw", "--minify", "-o", "json"]).expect("admin kubeconfig");
    let cluster = &raw["clusters"][0]["cluster"];
    let config = json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "t",
        "clusters": [{"name": "c", "cluster": {"server": cluster["server"], "certificate-authority-data": cluster["certificate-authority-data"]}}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": "t", "context": {"cluster": "c", "user": "u"}}],
    });
    let dir = c.data_dir().join("token-users").join(label);
    std::fs::create_dir_all(&dir).expect("kubeconfig dir");
    let path = dir.join("kubeconfig");
    std::fs::write(&path, config.to_string()).expect("writing kubeconfig");
    Kubectl { bin: admin.bin.clone(), kubeconfig: path }
}

fn start(args: &[&str]) -> TestCluster {
    match TestCluster::start_with(args) {
        Ok(c) => c,
        Err(e) => panic!("starting rkube: {e:#}"),
    }
}

fn wait_for_default_service_account(k: &Kubectl) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while k.run(&["get", "serviceaccount", "default"]).map(|o| !o.success).unwrap_or(true) {
        assert!(Instant::now() < deadline, "the default ServiceAccount never appeared");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn static_token_user_bound_to_view_reads_pods_not_secrets_and_bad_tokens_get_401() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("tokens.csv");
    std::fs::write(&file, "s3cr3t-token,jane,1001,\"readers,auditors\"\n").expect("token file");
    let c = start(&["--token-auth-file", file.to_str().expect("utf-8 path"), "--disable=controller-manager,scheduler,node-lifecycle"]);
    let admin = c.kubectl();
    admin.ok(&["create", "clusterrolebinding", "readers-view", "--clusterrole=view", "--group=readers"]).expect("binding");

    let jane = token_kubectl(&c, "jane", "s3cr3t-token");
    let who = jane.json(&["auth", "whoami", "-o", "json"]).expect("whoami");
    assert_eq!(who["status"]["userInfo"]["username"], "jane", "{who}");
    assert_eq!(who["status"]["userInfo"]["uid"], "1001", "{who}");
    assert_eq!(who["status"]["userInfo"]["groups"], json!(["readers", "auditors", "system:authenticated"]), "{who}");
    let pods = jane.run(&["get", "pods"]).expect("get pods");
    assert!(pods.success, "{}", pods.stderr);
    assert!(pods.stderr.contains("No resources found in default namespace."), "{}", pods.stderr);
    let secrets = jane.fails(&["get", "secrets"]).expect("get secrets");
    assert!(
        secrets.contains(r#"Error from server (Forbidden): secrets is forbidden: User "jane" cannot list resource "secrets" in API group "" in the namespace "default""#),
        "{secrets}"
    );

    let wrong = token_kubectl(&c, "wrong", "not-a-token");
    let out = wrong.fails(&["get", "pods"]).expect("get pods with a wrong token");
    assert!(out.contains(UNAUTHORIZED_DISCOVERY), "{out}");
    let out = wrong.fails(&["auth", "whoami"]).expect("whoami with a wrong token");
    assert!(out.contains(UNAUTHORIZED), "{out}");
}

/// The three parts of a JWT, the payload decoded.
fn jwt_payload(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("JWT payload");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("claims JSON")
}

#[test]
fn create_token_gives_a_jwt_that_kubectl_uses_and_the_jwks_verifies() {
    let c = start(&["--api-audiences=https://kubernetes.default.svc.cluster.local,x"]);
    let admin = c.kubectl();
    wait_for_default_service_account(&admin);
    let token = admin.ok(&["create", "token", "default", "--audience=x", "--duration=10m"]).expect("create token");
    let token = token.trim();
    let claims = jwt_payload(token);
    assert_eq!(claims["iss"], "https://kubernetes.default.svc.cluster.local");
    assert_eq!(claims["sub"], "system:serviceaccount:default:default");
    assert_eq!(claims["aud"], json!(["x"]));
    assert_eq!(claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat"), 600);
    let sa_uid = admin.ok(&["get", "sa", "default", "-o", "jsonpath={.metadata.uid}"]).expect("sa uid");
    assert_eq!(claims["kubernetes.io"]["serviceaccount"], json!({"name": "default", "uid": sa_uid}));

    let sa = token_kubectl(&c, "sa", token);
    let who = sa.json(&["auth", "whoami", "-o", "json"]).expect("whoami");
    assert_eq!(who["status"]["userInfo"]["username"], "system:serviceaccount:default:default", "{who}");
    assert_eq!(who["status"]["userInfo"]["groups"], json!(["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"]), "{who}");
    // The default ServiceAccount has no RBAC grants beyond discovery.
    let out = sa.fails(&["get", "pods"]).expect("get pods");
    assert!(out.contains(r#"User "system:serviceaccount:default:default" cannot list resource "pods""#), "{out}");

    // Issuer discovery is open to ServiceAccounts, and its key verifies the token.
    let config: Value = serde_json::from_str(&sa.ok(&["get", "--raw", "/.well-known/openid-configuration"]).expect("openid config")).expect("json");
    assert_eq!(config["issuer"], "https://kubernetes.default.svc.cluster.local");
    assert_eq!(config["jwks_uri"], "https://kubernetes.default.svc.cluster.local/openid/v1/jwks");
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&sa.ok(&["get", "--raw", "/openid/v1/jwks"]).expect("jwks")).expect("JWK set");
    let kid = jsonwebtoken::decode_header(token).expect("header").kid.expect("kid");
    let jwk = jwks.find(&kid).expect("the token's key is published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("decoding key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&["x"]);
    validation.set_issuer(&["https://kubernetes.default.svc.cluster.local"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation).expect("the JWKS verifies the token");

    // TokenReview answers for the token, with the requested audience.
    let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token, "audiences": ["x"]}});
    let out: Value = serde_json::from_str(&admin.ok_stdin(&["create", "-f", "-", "-o", "json"], &review.to_string()).expect("token review")).expect("json");
    assert_eq!(out["status"]["authenticated"], true, "{out}");
    assert_eq!(out["status"]["user"]["username"], "system:serviceaccount:default:default", "{out}");
    assert_eq!(out["status"]["audiences"], json!(["x"]), "{out}");
    let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token, "audiences": ["other"]}});
    let out: Value = serde_json::from_str(&admin.ok_stdin(&["create", "-f", "-", "-o", "json"], &review.to_string()).expect("token review")).expect("json");
    assert_eq!(out["status"]["authenticated"], Value::Null, "{out}");
    assert!(out["status"]["error"].as_str().unwrap_or("").contains("invalid for the target audiences"), "{out}");

    // A token for an audience the API server is not is refused.
    let other = admin.ok(&["create", "token", "default", "--audience=elsewhere"]).expect("create token");
    let out = token_kubectl(&c, "other", other.trim()).fails(&["auth", "whoami"]).expect("whoami");
    assert!(out.contains(UNAUTHORIZED), "{out}");

    // Too short a duration is refused as upstream validates it.
    let out = admin.fails(&["create", "token", "default", "--duration=5m"]).expect("short token");
    assert!(out.contains("spec.expirationSeconds: Invalid value: 300: may not specify a duration less than 10 minutes"), "{out}");
}

#[test]
fn a_token_bound_to_a_pod_stops_working_once_the_pod_is_deleted() {
    let c = cluster();
    let admin = c.kubectl();
    wait_for_default_service_account(&admin);
    admin.ok(&["run", "web", "--image=nginx"]).expect("pod");
    let token = admin.ok(&["create", "token", "default", "--bound-object-kind=Pod", "--bound-object-name=web"]).expect("create token");
    let token = token.trim();
    let pod_uid = admin.ok(&["get", "pod", "web", "-o", "jsonpath={.metadata.uid}"]).expect("pod uid");
    assert_eq!(jwt_payload(token)["kubernetes.io"]["pod"], json!({"name": "web", "uid": pod_uid}));

    let sa = token_kubectl(&c, "bound", token);
    let who = sa.json(&["auth", "whoami", "-o", "json"]).expect("whoami");
    assert_eq!(who["status"]["userInfo"]["extra"]["authentication.kubernetes.io/pod-name"], json!(["web"]), "{who}");
    assert_eq!(who["status"]["userInfo"]["extra"]["authentication.kubernetes.io/pod-uid"], json!([pod_uid]), "{who}");

    admin.ok(&["delete", "pod", "web", "--wait=true"]).expect("delete pod");
    let out = sa.fails(&["auth", "whoami"]).expect("whoami after delete");
    assert!(out.contains(UNAUTHORIZED), "{out}");

    let out = admin.fails(&["create", "token", "default", "--bound-object-kind=Pod", "--bound-object-name=gone"]).expect("unbound");
    assert!(out.contains(r#"pods "gone" not found"#), "{out}");
}

#[test]
fn a_bootstrap_token_authenticates_until_it_expires() {
    let c = start(&["--disable=controller-manager,scheduler,node-lifecycle"]);
    let admin = c.kubectl();
    let expiration = (chrono::Utc::now() + chrono::Duration::seconds(8)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
        "metadata": {"name": "bootstrap-token-abcdef", "namespace": "kube-system"},
        "stringData": {"token-id": "abcdef", "token-secret": "0123456789abcdef", "expiration": expiration,
            "usage-bootstrap-authentication": "true", "auth-extra-groups": "system:bootstrappers:worker"},
    });
    admin.ok_stdin(&["create", "-f", "-"], &secret.to_string()).expect("bootstrap secret");
    let boot = token_kubectl(&c, "boot", "abcdef.0123456789abcdef");
    let who = boot.json(&["auth", "whoami", "-o", "json"]).expect("whoami");
    assert_eq!(who["status"]["userInfo"]["username"], "system:bootstrap:abcdef", "{who}");
    assert_eq!(who["status"]["userInfo"]["groups"], json!(["system:bootstrappers", "system:bootstrappers:worker", "system:authenticated"]), "{who}");
    let wrong = token_kubectl(&c, "boot-wrong", "abcdef.0123456789abcdee");
    assert!(wrong.fails(&["auth", "whoami"]).expect("whoami").contains(UNAUTHORIZED));

    std::thread::sleep(Duration::from_secs(9));
    let out = boot.fails(&["auth", "whoami"]).expect("whoami after expiry");
    assert!(out.contains(UNAUTHORIZED), "{out}");
}
