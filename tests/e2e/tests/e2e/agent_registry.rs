//! Image pulls from a registry that needs credentials (distribution with htpasswd basic auth,
//! started here): without a pull secret the pod waits in ErrImagePull / ImagePullBackOff, with
//! the `kubectl create secret docker-registry` secret (named by the pod or by its
//! ServiceAccount) it runs, and a wrong password fails.

use std::process::Command;
use std::time::{Duration, Instant};

use rkube_testkit::Kubectl;

use crate::agent::{RuntimeEnv, skip_without_runtime, wait_for};

const ENV_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/agent-env.sh");
const USER: &str = "kube";
const PASSWORD: &str = "s3cret";

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn env_script(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("bash").arg(ENV_SCRIPT).args(args).output()?;
    anyhow::ensure!(
        out.status.success(),
        "agent-env.sh {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Starts a registry with basic auth (`kube`/`s3cret`, bcrypt as distribution requires) in
/// the environment and pushes the busybox image to it as `private/busybox:latest`; returns
/// its `127.0.0.1:port`.
pub(crate) fn start_private_registry(env: &RuntimeEnv) -> anyhow::Result<String> {
    let dir = env.dir.path();
    let hash = bcrypt::hash(PASSWORD, 5)?;
    let htpasswd = dir.join("htpasswd");
    std::fs::write(&htpasswd, format!("{USER}:{hash}\n"))?;
    let port = free_port()?.to_string();
    let dir_arg = dir.to_string_lossy();
    env_script(&[
        "registry",
        &dir_arg,
        "private",
        &port,
        &htpasswd.to_string_lossy(),
    ])?;
    env_script(&[
        "push",
        &dir_arg,
        &port,
        "private/busybox",
        "latest",
        &format!("{USER}:{PASSWORD}"),
    ])?;
    Ok(format!("127.0.0.1:{port}"))
}


pub(crate) fn sleeping_pod(name: &str, image: &str, pull_secrets: &[&str]) -> String {
    let secrets = pull_secrets
        .iter()
        .map(|s| format!("{{name: {s}}}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  imagePullSecrets: [{secrets}]\n  containers: [{{name: app, image: \"{image}\", command: [sleep, \"3600\"]}}]\n"
    )
}

/// The STATUS column of `kubectl get pod` once it is one of `want`.
pub(crate) fn wait_for_status(
    k: &Kubectl,
    pod: &str,
    want: &[&str],
    timeout: Duration,
) -> anyhow::Result<String> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        let row = k.ok(&["get", "pod", pod, "--no-headers"])?;
        last = row.split_whitespace().nth(2).unwrap_or("").to_string();
        if want.contains(&last.as_str()) {
            return Ok(last);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let dump = k.ok(&["get", "pod", pod, "-o", "yaml"]).unwrap_or_default();
    anyhow::bail!("pod {pod}: STATUS is {last:?}, want one of {want:?}\n{dump}")
}

fn events_of(k: &Kubectl, pod: &str) -> anyhow::Result<String> {
    k.ok(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={pod}"),
        "-o",
        r#"jsonpath={range .items[*]}{.type} {.reason}: {.message}{"\n"}{end}"#,
    ])
}

#[test]
fn private_registry_images_need_the_right_pull_secret() -> anyhow::Result<()> {
    if skip_without_runtime("private_registry_images_need_the_right_pull_secret")? {
        return Ok(());
    }
    let env = RuntimeEnv::start()?;
    let registry = start_private_registry(&env)?;
    let image = format!("{registry}/private/busybox:latest");
    let cluster = env.cluster()?;
    let k = cluster.kubectl();

    // No credentials: the registry answers 401 and the pod waits.
    k.ok_stdin(
        &["apply", "-f", "-"],
        &sleeping_pod("anonymous", &image, &[]),
    )?;
    wait_for_status(
        &k,
        "anonymous",
        &["ErrImagePull", "ImagePullBackOff"],
        Duration::from_secs(30),
    )?;
    // The next sync inside the back-off shows ImagePullBackOff with the pull error.
    wait_for_status(
        &k,
        "anonymous",
        &["ImagePullBackOff"],
        Duration::from_secs(30),
    )?;
    let message = k.ok(&[
        "get",
        "pod",
        "anonymous",
        "-o",
        "jsonpath={.status.containerStatuses[0].state.waiting.message}",
    ])?;
    assert!(
        message.starts_with(&format!(
            "Back-off pulling image \"{image}\": ErrImagePull: rpc error: code = "
        )) && message.contains("401 Unauthorized"),
        "{message}"
    );
    let events = events_of(&k, "anonymous")?;
    for expected in [
        format!("Normal Pulling: Pulling image \"{image}\""),
        format!("Warning Failed: Failed to pull image \"{image}\": rpc error"),
        "Warning Failed: Error: ErrImagePull".to_string(),
        format!("Normal BackOff: Back-off pulling image \"{image}\""),
        "Warning Failed: Error: ImagePullBackOff".to_string(),
    ] {
        assert!(events.contains(&expected), "{expected}\n{events}");
    }

    // The docker-registry secret kubectl makes: the pod runs.
    k.ok(&[
        "create",
        "secret",
        "docker-registry",
        "regcred",
        &format!("--docker-server={registry}"),
        &format!("--docker-username={USER}"),
        &format!("--docker-password={PASSWORD}"),
    ])?;
    k.ok_stdin(
        &["apply", "-f", "-"],
        &sleeping_pod("authorized", &image, &["regcred"]),
    )?;
    wait_for(
        &k,
        "authorized",
        "{.status.phase}",
        "Running",
        Duration::from_secs(60),
    )?;
    let events = events_of(&k, "authorized")?;
    assert!(
        events.contains(&format!("Successfully pulled image \"{image}\" in ")),
        "{events}"
    );

    // A wrong password fails like no credentials.
    k.ok(&[
        "create",
        "secret",
        "docker-registry",
        "wrongcred",
        &format!("--docker-server={registry}"),
        &format!("--docker-username={USER}"),
        "--docker-password=wrong",
    ])?;
    k.ok_stdin(
        &["apply", "-f", "-"],
        &sleeping_pod("wrong-password", &image, &["wrongcred"]),
    )?;
    wait_for_status(
        &k,
        "wrong-password",
        &["ErrImagePull", "ImagePullBackOff"],
        Duration::from_secs(30),
    )?;

    // The ServiceAccount's imagePullSecrets reach pods that name none (admission copies them).
    k.ok(&[
        "patch",
        "serviceaccount",
        "default",
        "-p",
        r#"{"imagePullSecrets":[{"name":"regcred"}]}"#,
    ])?;
    k.ok_stdin(
        &["apply", "-f", "-"],
        &sleeping_pod("via-account", &image, &[]),
    )?;
    let secrets = k.ok(&[
        "get",
        "pod",
        "via-account",
        "-o",
        "jsonpath={.spec.imagePullSecrets[*].name}",
    ])?;
    assert_eq!(secrets, "regcred");
    wait_for(
        &k,
        "via-account",
        "{.status.phase}",
        "Running",
        Duration::from_secs(60),
    )?;

    // imagePullPolicy Never with the image absent.
    k.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata: {name: never}\nspec:\n  containers: [{name: app, image: \"127.0.0.1:1/absent:v1\", imagePullPolicy: Never}]\n",
    )?;
    wait_for_status(&k, "never", &["ErrImageNeverPull"], Duration::from_secs(30))?;
    Ok(())
}

/// A registry over HTTPS with a self-signed certificate (for 127.0.0.1 and localhost), serving
/// the main registry's storage; stopped by the environment's `down` (its pid file). Returns its
/// port and the certificate's path.
fn start_tls_registry(env: &RuntimeEnv) -> anyhow::Result<(u16, std::path::PathBuf)> {
    let dir = env.dir.path();
    let key = rcgen::KeyPair::generate()?;
    let cert =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])?
            .self_signed(&key)?;
    let (cert_path, key_path) = (dir.join("tls-registry.crt"), dir.join("tls-registry.key"));
    std::fs::write(&cert_path, cert.pem())?;
    std::fs::write(&key_path, key.serialize_pem())?;
    let port = free_port()?;
    let config = dir.join("tls-registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nstorage: {{ filesystem: {{ rootdirectory: {} }} }}\nhttp: {{ addr: 127.0.0.1:{port}, tls: {{ certificate: {}, key: {} }} }}\n",
            dir.join("registry").display(),
            cert_path.display(),
            key_path.display()
        ),
    )?;
    let log = std::fs::File::create(dir.join("tls-registry.log"))?;
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    std::fs::write(dir.join("tls-registry.pid"), child.id().to_string())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        anyhow::ensure!(Instant::now() < deadline, "the TLS registry did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok((port, cert_path))
}

#[test]
fn registries_config_mirrors_docker_hub_and_authenticates_pulls() -> anyhow::Result<()> {
    if skip_without_runtime("registries_config_mirrors_docker_hub_and_authenticates_pulls")? {
        return Ok(());
    }
    let env = RuntimeEnv::start()?;
    let private = start_private_registry(&env)?;
    // Docker Hub's name for busybox, served by the local registry (no internet here).
    let local_port = env
        .registry
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    env_script(&[
        "push",
        &env.dir.path().to_string_lossy(),
        &local_port,
        "library/busybox",
        "latest",
    ])?;
    let (tls_port, ca) = start_tls_registry(&env)?;
    let config = env.dir.path().join("registries.yaml");
    std::fs::write(
        &config,
        format!(
            "mirrors:\n  docker.io:\n    endpoint: [\"http://{}\"]\nconfigs:\n  \"{private}\":\n    auth: {{username: {USER}, password: {PASSWORD}}}\n  \"127.0.0.1:{tls_port}\":\n    tls: {{ca_file: {}}}\n",
            env.registry,
            ca.display()
        ),
    )?;
    let hosts_dir = env.hosts_dir();
    let cluster = env.cluster_with(&[
        "--registries-config",
        &config.to_string_lossy(),
        "--registry-hosts-dir",
        &hosts_dir.to_string_lossy(),
    ])?;
    let k = cluster.kubectl();
    let hosts = std::fs::read_to_string(hosts_dir.join("docker.io/hosts.toml"))?;
    assert!(
        hosts.contains(&format!("[host.\"http://{}\"]", env.registry)),
        "{hosts}"
    );

    k.ok_stdin(
        &["apply", "-f", "-"],
        &sleeping_pod("hub", "docker.io/library/busybox:latest", &[]),
    )?;
    wait_for(
        &k,
        "hub",
        "{.status.phase}",
        "Running",
        Duration::from_secs(60),
    )?;
    // No internet here: only the mirror could have served the image.

    // The node's credentials for the private registry: no pull secret needed.
    k.ok_stdin(
        &["apply", "-f", "-"],
        &sleeping_pod("private", &format!("{private}/private/busybox:latest"), &[]),
    )?;
    wait_for(
        &k,
        "private",
        "{.status.phase}",
        "Running",
        Duration::from_secs(60),
    )?;

    // A registry with a private CA: trusted through `configs.<host>.tls.ca_file`; the same
    // registry under a name the file does not configure is refused.
    k.ok_stdin(
        &["apply", "-f", "-"],
        &sleeping_pod("tls", &format!("127.0.0.1:{tls_port}/busybox:latest"), &[]),
    )?;
    wait_for(
        &k,
        "tls",
        "{.status.phase}",
        "Running",
        Duration::from_secs(60),
    )?;
    k.ok_stdin(
        &["apply", "-f", "-"],
        &sleeping_pod(
            "untrusted",
            &format!("localhost:{tls_port}/busybox:latest"),
            &[],
        ),
    )?;
    wait_for_status(
        &k,
        "untrusted",
        &["ErrImagePull", "ImagePullBackOff"],
        Duration::from_secs(30),
    )?;
    Ok(())
}

#[test]
fn an_unusable_registries_config_stops_the_server_with_the_reason() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("registries.yaml");
    std::fs::write(
        &config,
        "mirrors:\n  docker.io:\n    endpoint: [\"ftp://mirror\"]\n",
    )?;
    let root = dir.path().join("agent");
    let started = rkube_testkit::TestCluster::start_with(&[
        "--registries-config",
        &config.to_string_lossy(),
        "--agent-root-dir",
        &root.to_string_lossy(),
    ]);
    let Err(e) = started else {
        anyhow::bail!("rkube server started with an unusable registries config");
    };
    let message = format!("{e:#}");
    assert!(
        message.contains(&format!(
            "registries config {}: mirrors.docker.io.endpoint: \"ftp://mirror\" is not an http(s) URL",
            config.display()
        )),
        "{message}"
    );
    // Nothing was started for the agent.
    assert!(!root.join("containerd").exists());
    Ok(())
}
