//! Streaming through the API server to the node agent and containerd with the real kubectl:
//! `exec` (a command, exit codes, a shell fed through stdin, stdin closed at EOF), `cp` both
//! ways, `attach` and `port-forward`, each over kubectl's default WebSockets (v5 translated to
//! SPDY in the API server; SPDY tunnelled for port-forward) and over plain SPDY; upstream's
//! errors for a missing container and for a user who may only read pods.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use rkube_testkit::Kubectl;

use crate::agent::{RuntimeEnv, skip_without_runtime, wait_for};

/// kubectl's switches between its WebSocket and SPDY clients.
const SPDY_EXEC: (&str, &str) = ("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false");
const SPDY_PORT_FORWARD: (&str, &str) = ("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false");

/// Runs kubectl with `env` and `stdin`, killing it after `timeout` (a stream that never ends
/// is a failure, not a hang).
fn run(k: &Kubectl, env: Option<(&str, &str)>, args: &[&str], stdin: &[u8], timeout: Duration) -> anyhow::Result<Output> {
    let mut command = k.command(args);
    if let Some((key, value)) = env {
        command.env(key, value);
    }
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin)?;
    }
    let deadline = Instant::now() + timeout;
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            child.kill()?;
            let out = child.wait_with_output()?;
            anyhow::bail!("kubectl {args:?} did not end within {timeout:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(child.wait_with_output()?)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Starts a long-running kubectl and returns it once a stdout line contains `ready`.
fn spawn_until(k: &Kubectl, env: Option<(&str, &str)>, args: &[&str], ready: &str) -> anyhow::Result<(Child, String)> {
    let mut command = k.command(args);
    if let Some((key, value)) = env {
        command.env(key, value);
    }
    let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = String::new();
    while Instant::now() < deadline {
        if let Ok(line) = lines_rx.recv_timeout(Duration::from_millis(200)) {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains(ready) {
                return Ok((child, seen));
            }
        }
    }
    child.kill()?;
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut err)?;
    }
    anyhow::bail!("kubectl {args:?} never printed {ready:?}: {seen}{err}")
}

/// `kubectl attach -i` to `container` of pod `web`, writes `line` to its stdin (kept open) and
/// returns what came back until the line was echoed (or 20 s passed).
fn attach_and_type(k: &Kubectl, env: Option<(&str, &str)>, container: &str, line: &str) -> anyhow::Result<String> {
    let mut command = k.command(&["attach", "-i", "web", "-c", container]);
    if let Some((key, value)) = env {
        command.env(key, value);
    }
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(l).is_err() {
                break;
            }
        }
    });
    let mut stdin = child.stdin.take().ok_or_else(|| anyhow::anyhow!("no stdin"))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = String::new();
    // Typed again every second until it comes back: the first lines may be sent before the
    // attach stream is up.
    let mut next_write = Instant::now();
    while Instant::now() < deadline {
        if Instant::now() >= next_write {
            writeln!(stdin, "{line}")?;
            stdin.flush()?;
            next_write = Instant::now() + Duration::from_secs(1);
        }
        if let Ok(l) = lines_rx.recv_timeout(Duration::from_millis(200)) {
            seen.push_str(&l);
            seen.push('\n');
            if l == line {
                break;
            }
        }
    }
    child.kill()?;
    child.wait()?;
    Ok(seen)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One HTTP GET through a forwarded local port.
fn http_get(port: u16) -> anyhow::Result<String> {
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    tcp.write_all(b"GET / HTTP/1.0\r\nHost: pod\r\n\r\n")?;
    let mut response = String::new();
    tcp.read_to_string(&mut response)?;
    Ok(response)
}

#[test]
fn exec_cp_attach_and_port_forward_reach_the_container() -> anyhow::Result<()> {
    if skip_without_runtime("exec_cp_attach_and_port_forward_reach_the_container")? {
        return Ok(());
    }
    let env = RuntimeEnv::start()?;
    let cluster = env.cluster()?;
    let k = cluster.kubectl();
    // `web` serves HTTP on port 80; `ticker` prints a line a second for attach.
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","annotations":{"kubectl.kubernetes.io/default-container":"web"}},
      "spec":{"terminationGracePeriodSeconds":0,"containers":[
        {"name":"web","image":"IMAGE","command":["httpd","-f","-p","80","-h","/www"]},
        {"name":"ticker","image":"IMAGE","command":["/bin/sh","-c","i=0; while true; do echo tick $i; i=$((i+1)); sleep 1; done"]},
        {"name":"echo","image":"IMAGE","command":["cat"],"stdin":true}]}}"#
        .replace("IMAGE", &env.image());
    k.ok_stdin(&["apply", "-f", "-"], &pod)?;
    wait_for(&k, "web", "{.status.phase}", "Running", Duration::from_secs(60))?;
    let long = Duration::from_secs(30);

    for (mode, exec_env, forward_env) in [("websocket", None, None), ("spdy", Some(SPDY_EXEC), Some(SPDY_PORT_FORWARD))] {
        // A command's output and exit code.
        let out = run(&k, exec_env, &["exec", "web", "--", "echo", "hi"], b"", long)?;
        assert_eq!((text(&out.stdout), out.status.code()), ("hi\n".to_string(), Some(0)), "{mode}: {}", text(&out.stderr));
        let out = run(&k, exec_env, &["exec", "web", "--", "sh", "-c", "echo to-stderr >&2; exit 3"], b"", long)?;
        assert_eq!(out.status.code(), Some(3), "{mode}: exit code propagates: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains("to-stderr"), "{mode}: {}", text(&out.stderr));

        // An interactive shell fed through stdin; EOF on stdin ends it.
        let out = run(&k, exec_env, &["exec", "-i", "web", "--", "sh"], b"echo one\ncd /www && ls\n", long)?;
        assert_eq!(text(&out.stdout), "one\nindex.html\n", "{mode}: {}", text(&out.stderr));
        let out = run(&k, exec_env, &["exec", "-i", "web", "--", "cat"], b"data through stdin\n", long)?;
        assert_eq!(text(&out.stdout), "data through stdin\n", "{mode}: {}", text(&out.stderr));

        // `kubectl cp` into the pod and back (tar through exec, stdin closed at the end).
        let local = env.dir.path().join(format!("cp-{mode}.txt"));
        let content = format!("copied over {mode}\n").repeat(2000);
        std::fs::write(&local, &content)?;
        let remote = format!("web:/tmp/cp-{mode}.txt");
        let out = run(&k, exec_env, &["cp", &local.to_string_lossy(), &remote], b"", long)?;
        assert!(out.status.success(), "{mode}: cp in: {}", text(&out.stderr));
        let back = env.dir.path().join(format!("back-{mode}.txt"));
        let out = run(&k, exec_env, &["cp", &remote, &back.to_string_lossy()], b"", long)?;
        assert!(out.status.success(), "{mode}: cp out: {}", text(&out.stderr));
        assert_eq!(std::fs::read_to_string(&back)?, content, "{mode}: the file came back unchanged");

        // attach follows the container's output.
        let (mut attach, seen) = spawn_until(&k, exec_env, &["attach", "web", "-c", "ticker"], "tick")?;
        attach.kill()?;
        attach.wait()?;
        assert!(seen.starts_with("tick "), "{mode}: {seen}");

        // attach -i reaches the stdin of a container created with `stdin: true`.
        let typed = format!("typed over {mode}");
        let seen = attach_and_type(&k, exec_env, "echo", &typed)?;
        assert!(seen.lines().any(|l| l == typed), "{mode}: {seen}");

        // port-forward, then HTTP through it to httpd in the pod. One request per session:
        // httpd closes each connection, containerd 1.6 then may report the client's stream
        // reset on the error stream (its 1 s close timeout), and kubectl ≥ 1.23 ends the whole
        // session on such an error. A local connection can be reset that way too, so up to
        // three sessions are tried; each of them must at least start forwarding.
        let mut failures = Vec::new();
        for _ in 0..3 {
            let port = free_port()?;
            let mapping = format!("{port}:80");
            let (mut forward, _) = spawn_until(&k, forward_env, &["port-forward", "pod/web", &mapping], "Forwarding from")?;
            let response = http_get(port);
            forward.kill()?;
            let stderr = text(&forward.wait_with_output()?.stderr);
            match response {
                Ok(r) if r.starts_with("HTTP/1.") && r.contains("hello from busybox pod") => break,
                other => failures.push(format!("{other:?} {stderr}")),
            }
        }
        assert!(failures.len() < 3, "{mode}: port-forward never answered: {failures:#?}");
        if !failures.is_empty() {
            eprintln!("{mode}: port-forward needed {} retries: {failures:?}", failures.len());
        }
    }

    // Errors as upstream words them.
    let out = run(&k, None, &["exec", "web", "-c", "missing", "--", "true"], b"", long)?;
    assert!(text(&out.stderr).contains("container missing is not valid for pod web"), "{}", text(&out.stderr));
    let out = run(&k, None, &["exec", "nosuchpod", "--", "true"], b"", long)?;
    assert!(text(&out.stderr).contains("pods \"nosuchpod\" not found"), "{}", text(&out.stderr));

    // A user who may only read pods cannot exec into them.
    k.ok_stdin(
        &["apply", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"List","items":[
          {"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"pod-reader","namespace":"default"},
           "rules":[{"apiGroups":[""],"resources":["pods"],"verbs":["get","list"]}]},
          {"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"pod-reader","namespace":"default"},
           "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"pod-reader"},
           "subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"User","name":"reader"}]}]}"#,
    )?;
    let reader = cluster.user_kubectl("reader", &[])?;
    for exec_env in [None, Some(SPDY_EXEC)] {
        let out = run(&reader, exec_env, &["exec", "web", "--", "echo", "hi"], b"", long)?;
        let stderr = text(&out.stderr);
        assert!(!out.status.success() && out.stdout.is_empty(), "{stderr}");
        assert!(
            stderr.contains("pods \"web\" is forbidden: User \"reader\" cannot create resource \"pods/exec\" in API group \"\" in the namespace \"default\""),
            "{exec_env:?}: {stderr}"
        );
    }
    // Straight to the node's kubelet endpoint through `nodes/{name}/proxy`: a WebSocket exec
    // upgrade (remotecommand v4) relayed by the API server, as tools that talk to kubelets do.
    let node = k.ok(&["get", "pod", "web", "-o", "jsonpath={.spec.nodeName}"])?;
    let (status, messages) = websocket_through_node_proxy(
        &cluster.url,
        &cluster.kubeconfig,
        &format!("/api/v1/nodes/{node}/proxy/exec/default/web/web?command=echo&command=via-node-proxy&output=1"),
    )?;
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");
    let stdout: Vec<u8> = messages.iter().filter(|(c, _)| *c == 1).flat_map(|(_, d)| d.clone()).collect();
    assert_eq!(text(&stdout), "via-node-proxy\n", "{messages:?}");
    let error_channel: Vec<u8> = messages.iter().filter(|(c, _)| *c == 3).flat_map(|(_, d)| d.clone()).collect();
    assert!(text(&error_channel).contains("Success"), "{}", text(&error_channel));

    k.ok(&["delete", "pod", "web", "--wait=true", "--timeout=60s"])?;
    drop(cluster);
    Ok(())
}

/// The base64 value of `key` in a kubeconfig written by rkube (one `key: value` per line).
fn kubeconfig_data(kubeconfig: &str, key: &str) -> anyhow::Result<Vec<u8>> {
    use base64::Engine as _;
    let value = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}:")))
        .ok_or_else(|| anyhow::anyhow!("kubeconfig has no {key}"))?;
    Ok(base64::engine::general_purpose::STANDARD.decode(value.trim().trim_matches('"'))?)
}

/// Opens a WebSocket (`v4.channel.k8s.io`) to `path` with the admin's client certificate and
/// returns the response's status line and the (channel, data) of every message until close.
fn websocket_through_node_proxy(url: &str, kubeconfig: &std::path::Path, path: &str) -> anyhow::Result<(String, Vec<(u8, Vec<u8>)>)> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let config = std::fs::read_to_string(kubeconfig)?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(&kubeconfig_data(&config, "certificate-authority-data")?)?)?;
    let chain = vec![CertificateDer::from_pem_slice(&kubeconfig_data(&config, "client-certificate-data")?)?];
    let key = PrivateKeyDer::from_pem_slice(&kubeconfig_data(&config, "client-key-data")?)?;
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    let authority = url.trim_start_matches("https://");
    let tcp = std::net::TcpStream::connect(authority)?;
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    let connection = rustls::ClientConnection::new(std::sync::Arc::new(tls), ServerName::try_from("127.0.0.1")?.to_owned())?;
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n"
    )?;
    stream.flush()?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte)?;
        head.push(byte[0]);
    }
    let head = text(&head);
    let status = head.lines().next().unwrap_or_default().to_string();
    if !status.contains(" 101 ") {
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
        return Ok((format!("{head}{}", text(&rest)), Vec::new()));
    }
    let mut messages = Vec::new();
    loop {
        let mut header = [0u8; 2];
        if stream.read_exact(&mut header).is_err() {
            break;
        }
        let opcode = header[0] & 0x0f;
        let mut len = u64::from(header[1] & 0x7f);
        if len == 126 {
            let mut ext = [0u8; 2];
            stream.read_exact(&mut ext)?;
            len = u64::from(u16::from_be_bytes(ext));
        } else if len == 127 {
            let mut ext = [0u8; 8];
            stream.read_exact(&mut ext)?;
            len = u64::from_be_bytes(ext);
        }
        let mut payload = vec![0u8; usize::try_from(len)?];
        stream.read_exact(&mut payload)?;
        match opcode {
            0x8 => break,
            0x1 | 0x2 if !payload.is_empty() => messages.push((payload[0], payload[1..].to_vec())),
            _ => {}
        }
    }
    Ok((status, messages))
}
