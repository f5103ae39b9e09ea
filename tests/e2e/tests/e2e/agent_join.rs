//! A machine joins as a node with the server's node token (`rkube agent --server --token
//! --ca-cert-hash`), as `kubeadm join` does: token discovery through the signed
//! `kube-public/cluster-info`, a CertificateSigningRequest auto-approved for bootstrappers, and
//! from then on the node's own identity (`system:node:<name>`), limited by the Node authorizer.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rkube_testkit::{Kubectl, TestCluster};

use crate::agent::{RuntimeEnv, StandaloneAgent, skip_without_runtime, wait_for};

const NODE: &str = "join-e2e";

/// kubeadm's documented way to compute the CA pin, independent of rkube's code.
fn ca_pin(ca_file: &Path) -> anyhow::Result<String> {
    let script = format!(
        "openssl x509 -pubkey -noout -in {} | openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1",
        ca_file.display()
    );
    let out = Command::new("bash").args(["-c", &script]).output()?;
    anyhow::ensure!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(format!(
        "sha256:{}",
        String::from_utf8_lossy(&out.stdout).trim()
    ))
}

fn agent_command(env: &RuntimeEnv, url: &str, extra: &[&str]) -> anyhow::Result<Command> {
    StandaloneAgent::command(env, NODE, url, "join", extra)
}

fn spawn_agent(env: &RuntimeEnv, url: &str, extra: &[&str], log_name: &str) -> anyhow::Result<StandaloneAgent> {
    StandaloneAgent::start(env, NODE, url, "join", extra, log_name)
}

/// Waits until `kube-public/cluster-info` carries the signature for token `token_id` (a join
/// needs it).
pub(crate) fn wait_for_signed_cluster_info(cluster: &TestCluster, token_id: &str) -> anyhow::Result<()> {
    let k = cluster.kubectl();
    let signature = format!("jsonpath={{.data.jws-kubeconfig-{token_id}}}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while k.ok(&["get", "configmap", "cluster-info", "-n", "kube-public", "-o", &signature])?.is_empty() {
        anyhow::ensure!(Instant::now() < deadline, "cluster-info not signed\n{}", cluster.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// Runs an agent that must fail to join; returns what it printed.
fn failed_join(env: &RuntimeEnv, url: &str, extra: &[&str]) -> anyhow::Result<String> {
    let mut cmd = agent_command(env, url, extra)?;
    let out = cmd.output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    anyhow::ensure!(
        !out.status.success(),
        "the join should have failed:\n{text}"
    );
    Ok(text)
}

fn node_ready(k: &Kubectl) -> bool {
    k.ok(&[
        "get",
        "node",
        NODE,
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
    ])
    .is_ok_and(|s| s == "True")
}

#[test]
fn an_agent_joins_with_the_node_token_and_runs_pods_as_its_node() -> anyhow::Result<()> {
    if skip_without_runtime("an_agent_joins_with_the_node_token_and_runs_pods_as_its_node")? {
        return Ok(());
    }
    let env = RuntimeEnv::start()?;
    let cluster = TestCluster::start()?;
    let k = cluster.kubectl();
    let token = std::fs::read_to_string(cluster.data_dir().join("node-token"))?
        .trim()
        .to_string();
    let (token_id, _) = token
        .split_once('.')
        .ok_or_else(|| anyhow::anyhow!("node token {token:?}"))?;
    let pin = ca_pin(&cluster.data_dir().join("tls/ca.crt"))?;

    // The node token is a bootstrap token Secret, and cluster-info gets signed with it.
    let secret_type = k.ok(&[
        "get",
        "secret",
        "-n",
        "kube-system",
        &format!("bootstrap-token-{token_id}"),
        "-o",
        "jsonpath={.type}",
    ])?;
    assert_eq!(secret_type, "bootstrap.kubernetes.io/token");
    wait_for_signed_cluster_info(&cluster, token_id)?;
    // Anyone may read cluster-info, and nothing else in kube-public.
    let anonymous = |path: &str| -> anyhow::Result<serde_json::Value> {
        let out = Command::new("curl")
            .args(["-sk", &format!("{}{path}", cluster.url)])
            .output()?;
        Ok(serde_json::from_slice(&out.stdout)?)
    };
    let info = anonymous("/api/v1/namespaces/kube-public/configmaps/cluster-info")?;
    assert!(
        info["data"]["kubeconfig"]
            .as_str()
            .is_some_and(|k| k.contains("certificate-authority-data")),
        "{info}"
    );
    let others = anonymous("/api/v1/namespaces/kube-public/configmaps")?;
    assert_eq!(others["code"], 403, "{others}");
    assert_eq!(
        others["message"],
        "configmaps is forbidden: User \"system:anonymous\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"kube-public\""
    );

    // Refused joins: a token the cluster does not know, a CA that is not the pinned one.
    let unknown = failed_join(&env, &cluster.url, &["--token", "abcdef.0123456789abcdef"])?;
    assert!(
        unknown.contains("there is no JWS signed token in the cluster-info ConfigMap"),
        "{unknown}"
    );
    let wrong_pin = format!("sha256:{}", "0".repeat(64));
    let pinned = failed_join(
        &env,
        &cluster.url,
        &["--token", &token, "--ca-cert-hash", &wrong_pin],
    )?;
    assert!(pinned.contains("are pinned"), "{pinned}");
    let tampered = format!("{token_id}.0000000000000000");
    let forged = failed_join(&env, &cluster.url, &["--token", &tampered])?;
    assert!(
        forged.contains("failed to verify JWS signature"),
        "{forged}"
    );

    // The real join: a node client certificate through an auto-approved CSR.
    let agent = spawn_agent(
        &env,
        &cluster.url,
        &["--token", &token, "--ca-cert-hash", &pin],
        "join-agent.log",
    )?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !node_ready(&k) {
        anyhow::ensure!(
            Instant::now() < deadline,
            "node {NODE} not Ready\nagent:\n{}\nserver:\n{}",
            agent.log(),
            cluster.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let csrs = k.json(&["get", "csr", "-o", "json"])?;
    let items = csrs["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "{csrs:#}");
    let csr = &items[0];
    assert_eq!(
        csr["spec"]["username"],
        format!("system:bootstrap:{token_id}")
    );
    assert_eq!(
        csr["spec"]["signerName"],
        "kubernetes.io/kube-apiserver-client-kubelet"
    );
    assert!(
        csr["status"]["conditions"].as_array().is_some_and(|cs| cs
            .iter()
            .any(|c| c["type"] == "Approved" && c["reason"] == "AutoApproved")),
        "{csr:#}"
    );
    assert!(
        csr["status"]["certificate"]
            .as_str()
            .is_some_and(|c| !c.is_empty()),
        "{csr:#}"
    );
    let table = k.ok(&["get", "csr"])?;
    assert!(table.contains("Approved,Issued"), "{table}");

    // The node kubeconfig is the node's own identity, held to what the Node authorizer allows.
    let node_kubeconfig = env.dir.path().join("join-agent/kubelet.kubeconfig");
    let node = Kubectl {
        kubeconfig: node_kubeconfig,
        ..cluster.kubectl()
    };
    assert_eq!(
        node.ok(&[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}"
        ])?,
        format!("system:node:{NODE}")
    );
    let denied = node.fails(&["get", "secrets", "-n", "kube-system"])?;
    assert!(
        denied.contains(&format!(
            "User \"system:node:{NODE}\" cannot list resource \"secrets\""
        )),
        "{denied}"
    );

    // A pod using a ConfigMap volume and a Secret env var runs on the joined node with those
    // credentials (the node may read only what its pods use).
    k.ok(&[
        "create",
        "configmap",
        "greeting",
        "--from-literal=text=hello-from-configmap",
    ])?;
    k.ok(&[
        "create",
        "secret",
        "generic",
        "token",
        "--from-literal=value=s3cret",
    ])?;
    let pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "joined"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "main", "image": env.image(),
                "command": ["sh", "-c", "cat /config/text; echo; echo secret=$SECRET"],
                "env": [{"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "token", "key": "value"}}}],
                "volumeMounts": [{"name": "config", "mountPath": "/config"}],
            }],
            "volumes": [{"name": "config", "configMap": {"name": "greeting"}}],
        },
    });
    k.ok_stdin(&["apply", "-f", "-"], &pod.to_string())?;
    wait_for(
        &k,
        "joined",
        "{.status.phase}",
        "Succeeded",
        Duration::from_secs(60),
    )
    .map_err(|e| anyhow::anyhow!("{e}\nagent:\n{}", agent.log()))?;
    assert_eq!(
        k.ok(&["get", "pod", "joined", "-o", "jsonpath={.spec.nodeName}"])?,
        NODE
    );
    let logs = k.ok(&["logs", "joined"])?;
    assert_eq!(logs.trim(), "hello-from-configmap\nsecret=s3cret");

    // Restarted without the token, the agent uses the kubeconfig the join left: no second CSR.
    drop(agent);
    let again = spawn_agent(&env, &cluster.url, &[], "rejoin-agent.log")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !again.log().contains("node agent join-e2e running") {
        anyhow::ensure!(
            Instant::now() < deadline,
            "agent did not start again:\n{}",
            again.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(node_ready(&k));
    let count = k.ok(&["get", "csr", "-o", "name"])?.lines().count();
    assert_eq!(count, 1);
    Ok(())
}

/// A node kubeconfig for `system:node:<NODE>` whose certificate, signed by the cluster CA,
/// expires `remaining` from now (and started an hour ago, so it is due for renewal).
fn expiring_node_kubeconfig(
    cluster: &TestCluster,
    path: &Path,
    remaining: Duration,
) -> anyhow::Result<()> {
    use base64::Engine as _;
    let tls = cluster.data_dir().join("tls");
    let ca_pem = std::fs::read_to_string(tls.join("ca.crt"))?;
    let ca_key = rcgen::KeyPair::from_pem(&std::fs::read_to_string(tls.join("ca.key"))?)?;
    let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_pem, ca_key)?;
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("system:node:{NODE}"));
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:nodes");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let now = std::time::SystemTime::now();
    params.not_before = (now - Duration::from_secs(3600)).into();
    params.not_after = (now + remaining).into();
    let cert = params.signed_by(&key, &issuer)?;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let kubeconfig = serde_json::json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "node",
        "clusters": [{"name": "rkube", "cluster": {"server": cluster.url, "certificate-authority-data": b64(&ca_pem)}}],
        "users": [{"name": "node", "user": {"client-certificate-data": b64(&cert.pem()), "client-key-data": b64(&key.serialize_pem())}}],
        "contexts": [{"name": "node", "context": {"cluster": "rkube", "user": "node"}}],
    });
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, kubeconfig.to_string())?;
    Ok(())
}

fn client_certificate_data(kubeconfig: &Path) -> String {
    std::fs::read_to_string(kubeconfig)
        .ok()
        .and_then(|y| {
            y.lines()
                .find_map(|l| l.trim().strip_prefix("client-certificate-data:").map(|v| v.trim().trim_matches('"').to_string()))
                .or_else(|| {
                    serde_json::from_str::<serde_json::Value>(&y).ok().and_then(|v| {
                        v["users"][0]["user"]["client-certificate-data"].as_str().map(str::to_string)
                    })
                })
        })
        .unwrap_or_default()
}

#[test]
fn a_node_renews_its_client_certificate_before_it_expires() -> anyhow::Result<()> {
    if skip_without_runtime("a_node_renews_its_client_certificate_before_it_expires")? {
        return Ok(());
    }
    let env = RuntimeEnv::start()?;
    let mut cluster = TestCluster::start()?;
    let k = cluster.kubectl();
    let kubeconfig = env.dir.path().join("join-agent/kubelet.kubeconfig");
    let lifetime = Duration::from_secs(25);
    let expires = Instant::now() + lifetime;
    expiring_node_kubeconfig(&cluster, &kubeconfig, lifetime)?;
    let old = env.dir.path().join("old-node.kubeconfig");
    std::fs::copy(&kubeconfig, &old)?;
    let original = client_certificate_data(&kubeconfig);
    assert!(!original.is_empty());

    let agent = spawn_agent(&env, &cluster.url, &[], "rotate-agent.log")?;
    // Past 70–90 % of its lifetime, the certificate is renewed at once through a CSR sent with
    // the node's own identity, auto-approved as selfnodeclient and signed.
    let deadline = Instant::now() + Duration::from_secs(20);
    let issued = loop {
        let csrs = k.json(&["get", "csr", "-o", "json"])?;
        let done = csrs["items"].as_array().and_then(|items| {
            items
                .iter()
                .find(|c| {
                    c["status"]["certificate"]
                        .as_str()
                        .is_some_and(|cert| !cert.is_empty())
                })
                .cloned()
        });
        if let Some(csr) = done {
            break csr;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "no renewal CSR issued: {csrs:#}\nagent:\n{}\nserver:\n{}",
            agent.log(),
            cluster.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(issued["spec"]["username"], format!("system:node:{NODE}"));
    assert!(
        issued["status"]["conditions"].as_array().is_some_and(|cs| cs
            .iter()
            .any(|c| c["type"] == "Approved" && c["reason"] == "AutoApproved")),
        "{issued:#}"
    );
    // The agent keeps the new certificate in its kubeconfig.
    let deadline = Instant::now() + Duration::from_secs(10);
    while client_certificate_data(&kubeconfig) == original {
        anyhow::ensure!(
            Instant::now() < deadline,
            "kubeconfig not updated\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        client_certificate_data(&kubeconfig),
        issued["status"]["certificate"].as_str().unwrap_or_default()
    );
    let node = Kubectl {
        kubeconfig: kubeconfig.clone(),
        ..cluster.kubectl()
    };
    assert_eq!(
        node.ok(&["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"])?,
        format!("system:node:{NODE}")
    );

    // Once the old certificate expired it is refused; a restarted server sees only new
    // connections, and the node keeps renewing its Lease with the new certificate.
    let now = Instant::now();
    if expires > now {
        std::thread::sleep(expires - now + Duration::from_secs(2));
    }
    let expired = Kubectl {
        kubeconfig: old,
        ..cluster.kubectl()
    };
    let refused = expired.fails(&["get", "node", NODE])?;
    assert!(refused.contains("Unauthorized") || refused.contains("certificate"), "{refused}");
    cluster.restart()?;
    let k = cluster.kubectl();
    let renew_time = |k: &Kubectl| {
        k.ok(&["get", "lease", "-n", "kube-node-lease", NODE, "-o", "jsonpath={.spec.renewTime}"])
            .unwrap_or_default()
    };
    let before = renew_time(&k);
    let deadline = Instant::now() + Duration::from_secs(30);
    while renew_time(&k) == before {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the node stopped renewing its Lease after the restart\nagent:\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(node_ready(&k));
    Ok(())
}
