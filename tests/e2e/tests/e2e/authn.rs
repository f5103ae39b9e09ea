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

    // kubectl 1.27 sends the TokenRequest as protobuf too.
    let old_kubectl_token = admin.with_version(27).ok(&["create", "token", "default"]).expect("create token with kubectl 1.27");
    // Without --audience the token is for every API audience.
    assert_eq!(jwt_payload(old_kubectl_token.trim())["aud"], json!(["https://kubernetes.default.svc.cluster.local", "x"]));

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

/// A one-request-per-connection HTTPS server on loopback with its own CA, answering with
/// `respond(method, path, body) -> (status, JSON body)`.
struct HttpsServer {
    port: u16,
    ca_pem: String,
    _runtime: tokio::runtime::Runtime,
}

type Responder = std::sync::Arc<dyn Fn(&str, &str, &[u8]) -> (u16, String) + Send + Sync>;

impl HttpsServer {
    fn start(respond: Responder) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "test issuer CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA cert");
        let leaf_key = KeyPair::generate().expect("leaf key");
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("leaf params").signed_by(&leaf_key, &Issuer::new(ca_params, ca_key)).expect("leaf cert");
        let key_der = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).expect("leaf key DER");
        let tls = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], key_der)
            .expect("TLS config");
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(tls));
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
        let port = listener.local_addr().expect("addr").port();
        runtime.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, respond) = (acceptor.clone(), respond.clone());
                tokio::spawn(async move {
                    if let Ok(stream) = acceptor.accept(tcp).await {
                        let _ = serve_one(stream, respond).await;
                    }
                });
            }
        });
        Self { port, ca_pem: ca_cert.pem(), _runtime: runtime }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

async fn serve_one<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut stream: S, respond: Responder) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let length = head.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0))).unwrap_or(0);
    while buf.len() < header_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let mut first = head.lines().next().unwrap_or("").split_whitespace();
    let (method, path) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    let (status, body) = respond(method, path, &buf[header_end..]);
    let response = format!("HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[test]
fn an_oidc_issuer_served_over_https_authenticates_users_with_groups() {
    use base64::Engine;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let signing = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("issuer key");
    let raw = signing.public_key_raw().to_vec();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwk = |kid: &str| json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256", "x": b64(&raw[1..33]), "y": b64(&raw[33..])});
    // The issuer "rotates": from its second answer on it also publishes key id k2.
    let (first_jwks, rotated_jwks) = (json!({"keys": [jwk("k1")]}), json!({"keys": [jwk("k1"), jwk("k2")]}));
    let jwks_fetches = Arc::new(AtomicUsize::new(0));
    let issuer_url = Arc::new(std::sync::OnceLock::<String>::new());
    let (fetches, issuer_for_server) = (jwks_fetches.clone(), issuer_url.clone());
    let server = HttpsServer::start(Arc::new(move |_, path, _| {
        let issuer = issuer_for_server.get().cloned().unwrap_or_default();
        match path {
            "/.well-known/openid-configuration" => (200, json!({"issuer": issuer, "jwks_uri": format!("{issuer}/keys")}).to_string()),
            "/keys" => {
                let earlier = fetches.fetch_add(1, Ordering::SeqCst);
                (200, if earlier == 0 { first_jwks.to_string() } else { rotated_jwks.to_string() })
            }
            _ => (404, "{}".into()),
        }
    }));
    issuer_url.set(server.url()).expect("issuer set once");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = dir.path().join("issuer-ca.pem");
    std::fs::write(&ca_file, &server.ca_pem).expect("CA file");
    let c = start(&[
        "--disable=controller-manager,scheduler,node-lifecycle",
        &format!("--oidc-issuer-url={}", server.url()),
        "--oidc-client-id=rkube",
        "--oidc-groups-claim=groups",
        "--oidc-groups-prefix=oidc:",
        &format!("--oidc-ca-file={}", ca_file.display()),
    ]);

    let encoding = jsonwebtoken::EncodingKey::from_ec_pem(signing.serialize_pem().as_bytes()).expect("encoding key");
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("k1".into());
    let now = chrono::Utc::now().timestamp();
    let id_token = |header: &jsonwebtoken::Header, aud: &str| {
        let claims = json!({"iss": server.url(), "sub": "jane", "aud": aud, "exp": now + 600, "iat": now, "groups": ["dev", "ops"]});
        jsonwebtoken::encode(header, &claims, &encoding).expect("ID token")
    };
    let jane = token_kubectl(&c, "oidc-jane", &id_token(&header, "rkube"));
    for _ in 0..2 {
        let who = jane.json(&["auth", "whoami", "-o", "json"]).expect("whoami");
        assert_eq!(who["status"]["userInfo"]["username"], format!("{}#jane", server.url()), "{who}");
        assert_eq!(who["status"]["userInfo"]["groups"], json!(["oidc:dev", "oidc:ops", "system:authenticated"]), "{who}");
    }
    assert_eq!(jwks_fetches.load(Ordering::SeqCst), 1, "the JWKS is fetched once and cached");

    // A token signed with a key id not in the cache makes the server fetch the keys again.
    header.kid = Some("k2".into());
    let rotated = token_kubectl(&c, "oidc-rotated", &id_token(&header, "rkube"));
    let who = rotated.json(&["auth", "whoami", "-o", "json"]).expect("whoami with the rotated key");
    assert_eq!(who["status"]["userInfo"]["username"], format!("{}#jane", server.url()), "{who}");
    assert_eq!(jwks_fetches.load(Ordering::SeqCst), 2, "an unknown kid refetches the JWKS");

    let other_client = token_kubectl(&c, "oidc-other", &id_token(&header, "someone-else"));
    assert!(other_client.fails(&["auth", "whoami"]).expect("whoami").contains(UNAUTHORIZED));
}

#[test]
fn a_token_review_webhook_decides_tokens_and_its_answers_are_cached() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let server = HttpsServer::start(Arc::new(move |method, _, body| {
        counted.fetch_add(1, Ordering::SeqCst);
        let review: Value = serde_json::from_slice(body).unwrap_or_default();
        assert_eq!((method, review["kind"].as_str()), ("POST", Some("TokenReview")));
        let status = if review["spec"]["token"] == "hook-token" {
            json!({"authenticated": true, "user": {"username": "hooked-user", "uid": "42", "groups": ["hooked"]}})
        } else {
            json!({"authenticated": false, "error": "unknown token"})
        };
        (200, json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status}).to_string())
    }));
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ca.pem"), &server.ca_pem).expect("CA file");
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: hook\n  cluster:\n    server: {}/authenticate\n    certificate-authority: ca.pem\nusers:\n- name: apiserver\n  user: {{}}\ncurrent-context: hook\ncontexts:\n- name: hook\n  context: {{cluster: hook, user: apiserver}}\n",
        server.url()
    );
    let config_file = dir.path().join("webhook.kubeconfig");
    std::fs::write(&config_file, kubeconfig).expect("webhook kubeconfig");
    let c = start(&[
        "--disable=controller-manager,scheduler,node-lifecycle",
        &format!("--authentication-token-webhook-config-file={}", config_file.display()),
        "--authentication-token-webhook-cache-ttl=5m",
    ]);

    let hooked = token_kubectl(&c, "hooked", "hook-token");
    for _ in 0..2 {
        let who = hooked.json(&["auth", "whoami", "-o", "json"]).expect("whoami");
        assert_eq!(who["status"]["userInfo"]["username"], "hooked-user", "{who}");
        assert_eq!(who["status"]["userInfo"]["groups"], json!(["hooked", "system:authenticated"]), "{who}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the webhook's answer is cached");

    let stranger = token_kubectl(&c, "stranger", "who-knows");
    assert!(stranger.fails(&["auth", "whoami"]).expect("whoami").contains(UNAUTHORIZED));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn a_legacy_service_account_token_secret_authenticates_while_the_secret_holds_it() {
    use base64::Engine;
    let c = cluster();
    let admin = c.kubectl();
    wait_for_default_service_account(&admin);
    let sa_uid = admin.ok(&["get", "sa", "default", "-o", "jsonpath={.metadata.uid}"]).expect("sa uid");
    // Sign the token as the token controller would, with the server's own key.
    let pem = std::fs::read(c.data_dir().join("service-account.key")).expect("server key");
    let claims = json!({
        "iss": "kubernetes/serviceaccount",
        "kubernetes.io/serviceaccount/namespace": "default",
        "kubernetes.io/serviceaccount/secret.name": "default-token",
        "kubernetes.io/serviceaccount/service-account.name": "default",
        "kubernetes.io/serviceaccount/service-account.uid": sa_uid,
        "sub": "system:serviceaccount:default:default",
    });
    let key = jsonwebtoken::EncodingKey::from_ec_pem(&pem).expect("encoding key");
    let token = jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256), &claims, &key).expect("token");
    let legacy = token_kubectl(&c, "legacy", &token);
    assert!(legacy.fails(&["auth", "whoami"]).expect("whoami without the secret").contains(UNAUTHORIZED));

    let secret = json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": {"name": "default-token", "annotations": {"kubernetes.io/service-account.name": "default"}},
        "data": {"token": base64::engine::general_purpose::STANDARD.encode(&token)},
    });
    admin.ok_stdin(&["create", "-f", "-"], &secret.to_string()).expect("token secret");
    let who = legacy.json(&["auth", "whoami", "-o", "json"]).expect("whoami");
    assert_eq!(who["status"]["userInfo"]["username"], "system:serviceaccount:default:default", "{who}");
    assert_eq!(who["status"]["userInfo"]["uid"], sa_uid.as_str(), "{who}");

    admin.ok(&["delete", "secret", "default-token"]).expect("delete secret");
    assert!(legacy.fails(&["auth", "whoami"]).expect("whoami after delete").contains(UNAUTHORIZED));
}
