//! The kubelet's streaming endpoints on the agent's HTTPS port: `/exec/<ns>/<pod>/<container>`,
//! `/attach/<ns>/<pod>/<container>` and `/portForward/<ns>/<pod>` (each also with the pod UID
//! before the container, as the kubelet accepts). Like the kubelet (`pkg/kubelet/server/
//! server.go`, `proxyStream`), the agent resolves the pod's sandbox and container, asks the
//! runtime for a streaming URL (CRI `Exec`/`Attach`/`PortForward`) and proxies the client's
//! upgrade request there: the runtime's streaming server speaks the protocols (SPDY/3.1 and the
//! WebSocket channel protocols), the agent only relays bytes once both sides switched.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::runtime::{ContainerState, Runtime, StreamFlags};
use crate::server::{Body, text};

/// The streaming endpoint a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Exec { container: String },
    Attach { container: String },
    PortForward,
}

/// A parsed streaming path: which pod, and what to do there.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StreamPath {
    namespace: String,
    pod: String,
    uid: Option<String>,
    target: Target,
}

/// Parses the kubelet's streaming paths; `None` for any other path.
fn parse_path(path: &str) -> Option<StreamPath> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let owned = |s: &&str| s.to_string();
    let (kind, namespace, pod, uid, container) = match parts.as_slice() {
        [kind @ ("exec" | "attach"), ns, pod, container] => (*kind, ns, pod, None, Some(container)),
        [kind @ ("exec" | "attach"), ns, pod, uid, container] => {
            (*kind, ns, pod, Some(uid), Some(container))
        }
        ["portForward", ns, pod] => ("portForward", ns, pod, None, None),
        ["portForward", ns, pod, uid] => ("portForward", ns, pod, Some(uid), None),
        _ => return None,
    };
    let target = match (kind, container) {
        ("exec", Some(c)) => Target::Exec {
            container: c.to_string(),
        },
        ("attach", Some(c)) => Target::Attach {
            container: c.to_string(),
        },
        _ => Target::PortForward,
    };
    Some(StreamPath {
        namespace: namespace.to_string(),
        pod: pod.to_string(),
        uid: uid.map(owned),
        target,
    })
}

/// Whether `path` is one of the streaming endpoints.
pub(crate) fn is_streaming_path(path: &str) -> bool {
    parse_path(path).is_some()
}

/// The query of an exec or attach: the command and which streams the client opens. Flags are
/// `1`/`true` as the kubelet's `remotecommand.NewOptions` reads them; with a terminal stderr is
/// merged into stdout, so it is dropped.
fn stream_options(query: &str) -> Result<(Vec<String>, StreamFlags), String> {
    let mut command = Vec::new();
    let mut flags = StreamFlags::default();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let on = value == "1" || value.eq_ignore_ascii_case("true");
        match key.as_ref() {
            "command" => command.push(value.into_owned()),
            "input" => flags.stdin = on,
            "output" => flags.stdout = on,
            "error" => flags.stderr = on,
            "tty" => flags.tty = on,
            _ => {}
        }
    }
    if flags.tty {
        flags.stderr = false;
    }
    if !(flags.stdin || flags.stdout || flags.stderr) {
        return Err("you must specify at least 1 of stdin, stdout, stderr".into());
    }
    Ok((command, flags))
}

/// The ports named in a port-forward query (`port=80&port=8080`); SPDY clients name them per
/// stream instead, so none is fine.
fn forwarded_ports(query: &str) -> Result<Vec<i32>, String> {
    form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "port")
        .map(|(_, v)| match v.parse::<u16>() {
            Ok(p) if p > 0 => Ok(i32::from(p)),
            _ => Err(format!("invalid port {v:?}")),
        })
        .collect()
}

/// Serves a streaming request (the caller checked [`is_streaming_path`]).
pub(crate) async fn serve(runtime: &Arc<dyn Runtime>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let Some(target) = parse_path(&path) else {
        return text(StatusCode::NOT_FOUND, format!("no handler for {path}"));
    };
    match streaming_url(runtime.as_ref(), &target, &query).await {
        Ok(url) => proxy(req, &url).await,
        Err((status, message)) => text(status, message),
    }
}

/// Resolves the pod and container and asks the runtime for the streaming URL.
async fn streaming_url(
    runtime: &dyn Runtime,
    target: &StreamPath,
    query: &str,
) -> Result<String, (StatusCode, String)> {
    let internal = |e: crate::runtime::RuntimeError| (StatusCode::INTERNAL_SERVER_ERROR, e.0);
    let sandboxes = runtime.list_sandboxes().await.map_err(internal)?;
    // The newest sandbox of the pod (a restarted pod has older, stopped ones).
    let sandbox = sandboxes
        .into_iter()
        .filter(|s| s.pod_namespace == target.namespace && s.pod_name == target.pod)
        .filter(|s| target.uid.as_ref().is_none_or(|uid| *uid == s.pod_uid))
        .max_by_key(|s| (s.ready, s.created_at))
        .ok_or_else(|| (StatusCode::NOT_FOUND, "pod does not exist".to_string()))?;
    let container_name = match &target.target {
        Target::PortForward => {
            let ports = forwarded_ports(query).map_err(|m| (StatusCode::BAD_REQUEST, m))?;
            return runtime
                .port_forward_url(&sandbox.id, &ports)
                .await
                .map_err(internal);
        }
        Target::Exec { container } | Target::Attach { container } => container,
    };
    let (command, flags) = stream_options(query).map_err(|m| (StatusCode::BAD_REQUEST, m))?;
    let container = runtime
        .list_containers(&sandbox.id)
        .await
        .map_err(internal)?
        .into_iter()
        .filter(|c| c.name == *container_name && c.state == ContainerState::Running)
        .max_by_key(|c| c.attempt)
        .ok_or_else(|| {
            (
                StatusCode::NOT_FOUND,
                format!("container not found ({container_name:?})"),
            )
        })?;
    match &target.target {
        Target::Exec { .. } => runtime.exec_url(&container.id, &command, flags).await,
        _ => runtime.attach_url(&container.id, flags).await,
    }
    .map_err(internal)
}

/// Sends the client's request to the runtime's streaming server at `url` (plain HTTP, as
/// containerd and CRI-O serve it on the loopback) and relays the answer; a `101 Switching
/// Protocols` answer is relayed too, then both upgraded connections are spliced until either
/// side closes.
async fn proxy(mut req: Request<Incoming>, url: &str) -> Response<Body> {
    let bad_gateway = |e: String| {
        text(
            StatusCode::BAD_GATEWAY,
            format!("error dialing the container runtime's streaming server {url}: {e}"),
        )
    };
    let uri: http::Uri = match url.parse() {
        Ok(u) => u,
        Err(e) => return bad_gateway(e.to_string()),
    };
    let (Some("http"), Some(authority)) = (uri.scheme_str(), uri.authority().cloned()) else {
        return bad_gateway("only plain-HTTP streaming URLs are supported".into());
    };
    let tcp = match tokio::net::TcpStream::connect(authority.as_str()).await {
        Ok(t) => t,
        Err(e) => return bad_gateway(e.to_string()),
    };
    // Interactive streams write small pieces: no Nagle delay.
    let _ = tcp.set_nodelay(true);
    let (mut sender, connection) =
        match hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await {
            Ok(c) => c,
            Err(e) => return bad_gateway(e.to_string()),
        };
    tokio::spawn(async move {
        if let Err(e) = connection.with_upgrades().await {
            tracing::debug!(error = %e, "streaming server connection");
        }
    });
    let client_upgrade = hyper::upgrade::on(&mut req);
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut forwarded = Request::builder().method(req.method().clone()).uri(path);
    for (name, value) in req.headers() {
        if name != header::HOST {
            forwarded = forwarded.header(name, value);
        }
    }
    let Ok(host) = HeaderValue::from_str(authority.as_str()) else {
        return bad_gateway("invalid authority".into());
    };
    let forwarded = match forwarded
        .header(header::HOST, host)
        .body(Empty::<Bytes>::new())
    {
        Ok(r) => r,
        Err(e) => return bad_gateway(e.to_string()),
    };
    let mut response = match sender.send_request(forwarded).await {
        Ok(r) => r,
        Err(e) => return bad_gateway(e.to_string()),
    };
    let status = response.status();
    let mut relayed = Response::builder().status(status);
    for (name, value) in response.headers() {
        relayed = relayed.header(name, value);
    }
    if status == StatusCode::SWITCHING_PROTOCOLS {
        let runtime_upgrade = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            let (client, runtime) = match tokio::try_join!(client_upgrade, runtime_upgrade) {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::debug!(error = %e, "streaming upgrade");
                    return;
                }
            };
            let mut client = TokioIo::new(client);
            let mut runtime = TokioIo::new(runtime);
            if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut runtime).await {
                tracing::debug!(error = %e, "streaming session ended");
            }
        });
        return relayed
            .body(empty())
            .unwrap_or_else(|e| text(StatusCode::BAD_GATEWAY, e.to_string()));
    }
    let body = response
        .into_body()
        .map_err(std::io::Error::other)
        .boxed_unsync();
    relayed
        .body(body)
        .unwrap_or_else(|e| text(StatusCode::BAD_GATEWAY, e.to_string()))
}

fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeRuntime;
    use crate::runtime::{ContainerSpec, SandboxSpec};

    #[test]
    fn paths_name_the_pod_and_container() {
        let p = parse_path("/exec/default/web/app").unwrap();
        assert_eq!(
            (p.namespace.as_str(), p.pod.as_str(), p.uid, p.target),
            (
                "default",
                "web",
                None,
                Target::Exec {
                    container: "app".into()
                }
            )
        );
        let p = parse_path("/attach/ns/web/uid-1/app").unwrap();
        assert_eq!(p.uid.as_deref(), Some("uid-1"));
        assert_eq!(
            parse_path("/portForward/ns/web").unwrap().target,
            Target::PortForward
        );
        assert!(parse_path("/containerLogs/ns/web/app").is_none());
        assert!(parse_path("/exec/ns/web").is_none());
    }

    #[test]
    fn exec_options_follow_the_kubelet() {
        let (command, flags) =
            stream_options("command=sh&command=-c&command=echo+hi&output=1&error=1").unwrap();
        assert_eq!(command, vec!["sh", "-c", "echo hi"]);
        assert!(flags.stdout && flags.stderr && !flags.stdin && !flags.tty);
        let (_, flags) = stream_options("input=1&output=1&error=1&tty=1").unwrap();
        assert!(flags.tty && !flags.stderr, "a terminal merges stderr");
        assert_eq!(
            stream_options("command=ls").unwrap_err(),
            "you must specify at least 1 of stdin, stdout, stderr"
        );
        assert_eq!(
            forwarded_ports("port=80&port=8080").unwrap(),
            vec![80, 8080]
        );
        assert!(forwarded_ports("port=0").is_err());
    }

    fn sandbox(name: &str) -> SandboxSpec {
        crate::fake::sandbox_spec(name, &format!("uid-{name}"))
    }

    fn container(name: &str) -> ContainerSpec {
        crate::fake::container_spec(name)
    }

    #[tokio::test]
    async fn resolves_the_running_container_of_the_named_pod() {
        let runtime = FakeRuntime::default();
        runtime.set_streaming_base("http://127.0.0.1:1");
        let spec = sandbox("web");
        let sandbox_id = runtime.run_sandbox(&spec).await.unwrap();
        let id = runtime
            .create_container(&sandbox_id, &spec, &container("app"))
            .await
            .unwrap();
        runtime.start_container(&id).await.unwrap();
        let exec = parse_path("/exec/default/web/app").unwrap();
        let url = streaming_url(&runtime, &exec, "command=ls&output=1")
            .await
            .unwrap();
        assert_eq!(url, format!("http://127.0.0.1:1/exec/{id}"));
        assert!(
            runtime
                .calls()
                .iter()
                .any(|c| c.starts_with(&format!("exec_url {id} ls")))
        );
        let missing = parse_path("/exec/default/web/other").unwrap();
        let (status, message) = streaming_url(&runtime, &missing, "output=1")
            .await
            .unwrap_err();
        assert_eq!(
            (status, message.as_str()),
            (StatusCode::NOT_FOUND, "container not found (\"other\")")
        );
        let gone = parse_path("/portForward/default/db").unwrap();
        let (status, _) = streaming_url(&runtime, &gone, "").await.unwrap_err();
        assert_eq!(status, StatusCode::NOT_FOUND);
        let forward = parse_path("/portForward/default/web").unwrap();
        let url = streaming_url(&runtime, &forward, "port=80").await.unwrap();
        assert_eq!(url, format!("http://127.0.0.1:1/portforward/{sandbox_id}"));
    }
}
