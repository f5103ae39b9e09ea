//! Container probes as the kubelet's prober workers run them: one task per running container
//! with probes, running startup first (liveness and readiness wait for it), then liveness and
//! readiness each on its own period, with initialDelaySeconds, timeoutSeconds and the
//! success/failure thresholds. Readiness and startup results feed the pod status; a liveness (or
//! startup) failure past its threshold kills the container, which the syncer then restarts under
//! the pod's restart policy. Handlers: exec (CRI ExecSync), httpGet and tcpSocket from the
//! agent into the pod network (HTTPS without certificate verification, as the kubelet), grpc
//! (the standard health service).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{Container, Pod, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use parking_lot::Mutex;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::objects::{EventKind, PodObjects};
use crate::runtime::Runtime;

/// What the probes say about a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeState {
    pub ready: bool,
    pub started: bool,
}

struct Worker {
    pod_uid: String,
    task: JoinHandle<()>,
    state: Arc<Mutex<ProbeState>>,
}

/// The probe workers of the node's containers, by runtime container ID.
pub struct ProbeManager {
    runtime: Arc<dyn Runtime>,
    objects: Arc<dyn PodObjects>,
    workers: Mutex<HashMap<String, Worker>>,
}

/// Which probe, as named in events (`Liveness probe failed: …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Startup,
    Liveness,
    Readiness,
}

impl Kind {
    fn title(self) -> &'static str {
        match self {
            Kind::Startup => "Startup",
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
        }
    }
}

/// One probe's schedule and counters.
struct Tracker {
    kind: Kind,
    probe: Probe,
    next_due: Instant,
    successes: i32,
    failures: i32,
    /// The failure streak was reported as an Unhealthy event.
    reported: bool,
}

impl Tracker {
    fn new(kind: Kind, probe: &Probe, container_started: Instant) -> Self {
        let delay = probe.initial_delay_seconds.unwrap_or(0).max(0) as u64;
        Self {
            kind,
            probe: probe.clone(),
            next_due: container_started + Duration::from_secs(delay),
            successes: 0,
            failures: 0,
            reported: false,
        }
    }

    fn period(&self) -> Duration {
        Duration::from_secs(self.probe.period_seconds.unwrap_or(10).max(1) as u64)
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.probe.timeout_seconds.unwrap_or(1).max(1) as u64)
    }

    fn success_threshold(&self) -> i32 {
        self.probe.success_threshold.unwrap_or(1).max(1)
    }

    fn failure_threshold(&self) -> i32 {
        self.probe.failure_threshold.unwrap_or(3).max(1)
    }
}

/// Everything a worker needs about its container.
#[derive(Clone)]
struct Target {
    pod: Pod,
    container: Container,
    container_id: String,
    pod_ip: String,
    /// Seconds given to the container to stop when a probe kills it.
    grace_seconds: i64,
}

impl ProbeManager {
    pub fn new(runtime: Arc<dyn Runtime>, objects: Arc<dyn PodObjects>) -> Self {
        Self {
            runtime,
            objects,
            workers: Mutex::new(HashMap::new()),
        }
    }

    /// Starts the probe worker of a running container if it has probes and none runs yet.
    /// `started_nanos` is when the container started (wall clock), for initialDelaySeconds.
    pub fn ensure(
        &self,
        pod: &Pod,
        container: &Container,
        container_id: &str,
        started_nanos: i64,
        pod_ip: &str,
    ) {
        if container.liveness_probe.is_none()
            && container.readiness_probe.is_none()
            && container.startup_probe.is_none()
        {
            return;
        }
        let mut workers = self.workers.lock();
        if workers.contains_key(container_id) {
            return;
        }
        let state = Arc::new(Mutex::new(ProbeState {
            ready: container.readiness_probe.is_none(),
            started: container.startup_probe.is_none(),
        }));
        let pod_grace = pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(30);
        let target = Target {
            pod: pod.clone(),
            container: container.clone(),
            container_id: container_id.to_string(),
            pod_ip: pod_ip.to_string(),
            grace_seconds: pod_grace,
        };
        let now_nanos = k8s_openapi::jiff::Timestamp::now().as_nanosecond() as i64;
        let running_for =
            Duration::from_nanos(now_nanos.saturating_sub(started_nanos).max(0) as u64);
        let container_started = Instant::now()
            .checked_sub(running_for)
            .unwrap_or_else(Instant::now);
        let task = tokio::spawn(run_worker(
            self.runtime.clone(),
            self.objects.clone(),
            target,
            state.clone(),
            container_started,
        ));
        workers.insert(
            container_id.to_string(),
            Worker {
                pod_uid: pod.uid().unwrap_or_default(),
                task,
                state,
            },
        );
    }

    /// The probe results of a container (`None` when it has no probe worker).
    pub fn state(&self, container_id: &str) -> Option<ProbeState> {
        self.workers
            .lock()
            .get(container_id)
            .map(|w| *w.state.lock())
    }

    /// Stops the workers of the pod's containers that are no longer running.
    pub fn retain(&self, pod_uid: &str, running: &HashSet<String>) {
        self.workers.lock().retain(|id, w| {
            let keep = w.pod_uid != pod_uid || running.contains(id);
            if !keep {
                w.task.abort();
            }
            keep
        });
    }
}

async fn run_worker(
    runtime: Arc<dyn Runtime>,
    objects: Arc<dyn PodObjects>,
    target: Target,
    state: Arc<Mutex<ProbeState>>,
    container_started: Instant,
) {
    let c = &target.container;
    let mut startup = c
        .startup_probe
        .as_ref()
        .map(|p| Tracker::new(Kind::Startup, p, container_started));
    let mut others: Vec<Tracker> = [
        (Kind::Liveness, c.liveness_probe.as_ref()),
        (Kind::Readiness, c.readiness_probe.as_ref()),
    ]
    .into_iter()
    .filter_map(|(kind, p)| p.map(|p| Tracker::new(kind, p, container_started)))
    .collect();
    loop {
        let started = state.lock().started;
        let due: Vec<&mut Tracker> = match (&mut startup, started) {
            (Some(s), false) => vec![s],
            _ => others.iter_mut().collect(),
        };
        let Some(next) = due.iter().map(|t| t.next_due).min() else {
            return;
        };
        tokio::time::sleep_until(next).await;
        for tracker in due {
            if tracker.next_due > Instant::now() {
                continue;
            }
            tracker.next_due = Instant::now() + tracker.period();
            let result = run_probe(&runtime, &target, &tracker.probe, tracker.timeout()).await;
            match result {
                Ok(()) => {
                    tracker.failures = 0;
                    tracker.reported = false;
                    tracker.successes += 1;
                    if tracker.successes >= tracker.success_threshold() {
                        let mut s = state.lock();
                        match tracker.kind {
                            Kind::Startup => s.started = true,
                            Kind::Readiness => s.ready = true,
                            Kind::Liveness => {}
                        }
                    }
                }
                Err(output) => {
                    tracker.successes = 0;
                    tracker.failures += 1;
                    // Upstream records every failure and lets the event recorder aggregate
                    // them; without aggregation here, one event per failure streak.
                    if !tracker.reported {
                        tracker.reported = true;
                        objects
                            .record(
                                &target.pod,
                                Some(field_path(&target)),
                                EventKind::Warning,
                                "Unhealthy",
                                format!("{} probe failed: {output}", tracker.kind.title()),
                            )
                            .await;
                    }
                    if tracker.failures < tracker.failure_threshold() {
                        continue;
                    }
                    match tracker.kind {
                        Kind::Readiness => state.lock().ready = false,
                        Kind::Liveness | Kind::Startup => {
                            kill(&runtime, &objects, &target, tracker).await;
                            state.lock().ready = false;
                            return;
                        }
                    }
                }
            }
        }
    }
}

fn field_path(target: &Target) -> String {
    format!("spec.containers{{{}}}", target.container.name)
}

/// Stops a container whose liveness or startup probe failed, as the kubelet does.
async fn kill(
    runtime: &Arc<dyn Runtime>,
    objects: &Arc<dyn PodObjects>,
    target: &Target,
    tracker: &Tracker,
) {
    let which = match tracker.kind {
        Kind::Startup => "startup",
        _ => "liveness",
    };
    objects
        .record(
            &target.pod,
            Some(field_path(target)),
            EventKind::Normal,
            "Killing",
            format!(
                "Container {} failed {which} probe, will be restarted",
                target.container.name
            ),
        )
        .await;
    let grace = tracker
        .probe
        .termination_grace_period_seconds
        .unwrap_or(target.grace_seconds);
    let mut remaining = grace;
    // As on deletion, the preStop hook runs first, within the grace period.
    if let Some(hook) = target
        .container
        .lifecycle
        .as_ref()
        .and_then(|l| l.pre_stop.as_ref())
    {
        let started = Instant::now();
        let budget = Duration::from_secs(grace.max(0) as u64);
        let run = crate::hooks::run(
            runtime,
            hook,
            &target.pod,
            &target.container,
            &target.container_id,
            &target.pod_ip,
            budget,
        );
        if let Ok(Err(message)) = tokio::time::timeout(budget, run).await {
            objects
                .record(
                    &target.pod,
                    Some(field_path(target)),
                    EventKind::Warning,
                    "FailedPreStopHook",
                    message,
                )
                .await;
        }
        remaining = (grace - started.elapsed().as_secs() as i64).max(2);
    }
    if let Err(e) = runtime
        .stop_container(&target.container_id, remaining)
        .await
    {
        tracing::warn!(container = %target.container_id, error = %e, "stopping a container that failed its probe");
    }
}

/// The container port a probe names (a number, or the name of a declared port).
pub(crate) fn resolve_port(port: &IntOrString, container: &Container) -> Result<u16, String> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).map_err(|_| format!("invalid port number: {n}")),
        IntOrString::String(name) => container
            .ports
            .as_deref()
            .unwrap_or_default()
            .iter()
            .find(|p| p.name.as_deref() == Some(name))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .ok_or_else(|| format!("couldn't find port {name} in container")),
    }
}

/// Go's wording for a failed dial (`dial tcp 10.88.0.5:80: connect: connection refused`).
fn dial_error(address: &str, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => {
            format!("dial tcp {address}: connect: connection refused")
        }
        _ => format!("dial tcp {address}: {e}"),
    }
}

/// Runs one probe; `Err` carries the failure output for the Unhealthy event.
async fn run_probe(
    runtime: &Arc<dyn Runtime>,
    target: &Target,
    probe: &Probe,
    timeout: Duration,
) -> Result<(), String> {
    if let Some(exec) = &probe.exec {
        let command = exec.command.clone().unwrap_or_default();
        let result = runtime
            .exec_sync(&target.container_id, &command, timeout.as_secs() as i64)
            .await
            .map_err(|e| e.to_string())?;
        return if result.exit_code == 0 {
            Ok(())
        } else {
            Err(result.output)
        };
    }
    if let Some(tcp) = &probe.tcp_socket {
        let host = tcp
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| target.pod_ip.clone());
        let port = resolve_port(&tcp.port, &target.container)?;
        let address = format!("{host}:{port}");
        return match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&address)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(dial_error(&address, &e)),
            Err(_) => Err(format!("dial tcp {address}: i/o timeout")),
        };
    }
    if let Some(get) = &probe.http_get {
        let https = get.scheme.as_deref() == Some("HTTPS");
        let host = get
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| target.pod_ip.clone());
        let port = resolve_port(&get.port, &target.container)?;
        let path = get
            .path
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or("/".into());
        let headers: Vec<(String, String)> = get
            .http_headers
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        let scheme = if https { "https" } else { "http" };
        return match tokio::time::timeout(timeout, http_get(https, &host, port, &path, &headers))
            .await
        {
            Ok(result) => result,
            Err(_) => Err(format!(
                "Get \"{scheme}://{host}:{port}{path}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
            )),
        };
    }
    if let Some(grpc) = &probe.grpc {
        let port =
            u16::try_from(grpc.port).map_err(|_| format!("invalid port number: {}", grpc.port))?;
        let service = grpc.service.clone().unwrap_or_default();
        return grpc_health_check(&target.pod_ip, port, &service, timeout).await;
    }
    Err("probe has no handler".into())
}

/// An HTTP(S) GET as the kubelet's prober sends it (certificates not verified); 200–399 is
/// success.
pub(crate) async fn http_get(
    https: bool,
    host: &str,
    port: u16,
    path: &str,
    headers: &[(String, String)],
) -> Result<(), String> {
    let address = format!("{host}:{port}");
    let url = format!("{}://{address}{path}", if https { "https" } else { "http" });
    let fail = |e: &dyn std::fmt::Display| format!("Get \"{url}\": {e}");
    let stream = tokio::net::TcpStream::connect(&address)
        .await
        .map_err(|e| fail(&dial_error(&address, &e)))?;
    let mut request = http::Request::get(path)
        .header(http::header::HOST, &address)
        .header(http::header::USER_AGENT, "kube-probe/1.33")
        .header(http::header::ACCEPT, "*/*");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let request = request.body(Empty::<Bytes>::new()).map_err(|e| fail(&e))?;
    let code = if https {
        let config = rkube_pki::insecure::any_server_certificate_builder().map(|b| b.with_no_client_auth()).map_err(|e| fail(&e))?;
        let name =
            rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| fail(&e))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, stream)
            .await
            .map_err(|e| fail(&e))?;
        send(tls, request).await.map_err(|e| fail(&e))?
    } else {
        send(stream, request).await.map_err(|e| fail(&e))?
    };
    if (200..400).contains(&code) {
        Ok(())
    } else {
        Err(format!("HTTP probe failed with statuscode: {code}"))
    }
}

/// Sends one HTTP/1.1 request over `io` and returns the response status.
async fn send<T>(io: T, request: http::Request<Empty<Bytes>>) -> Result<u16, hyper::Error>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(connection);
    Ok(sender.send_request(request).await?.status().as_u16())
}

/// `grpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    service: String,
}

/// `grpc.health.v1.HealthCheckResponse`.
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    status: i32,
}

/// The serving-status names of the gRPC health protocol, as the kubelet prints them.
fn serving_status_name(status: i32) -> &'static str {
    match status {
        1 => "SERVING",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "UNKNOWN",
    }
}

/// A gRPC health check (`grpc.health.v1.Health/Check`) over plaintext HTTP/2, with the
/// kubelet's failure texts.
pub(crate) async fn grpc_health_check(
    host: &str,
    port: u16,
    service: &str,
    timeout: Duration,
) -> Result<(), String> {
    let address = format!("{host}:{port}");
    let seconds = timeout.as_secs();
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .map_err(|e| e.to_string())?
        .connect_timeout(timeout)
        .timeout(timeout);
    let channel = endpoint.connect().await.map_err(|_| {
        format!("timeout: failed to connect service \"{address}\" within {seconds}s")
    })?;
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await.map_err(|e| {
        format!("timeout: failed to connect service \"{address}\" within {seconds}s: {e}")
    })?;
    let codec = tonic_prost::ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default();
    let path = http::uri::PathAndQuery::from_static("/grpc.health.v1.Health/Check");
    let request = tonic::Request::new(HealthCheckRequest {
        service: service.to_string(),
    });
    let response = client.unary(request, path, codec).await.map_err(|status| {
        if status.code() == tonic::Code::DeadlineExceeded {
            format!("timeout: health rpc did not complete within {seconds}s")
        } else {
            format!("error: health rpc probe failed: {}", status.message())
        }
    })?;
    let status = response.into_inner().status;
    if status == 1 {
        Ok(())
    } else {
        Err(format!(
            "service unhealthy (responded with \"{}\")",
            serving_status_name(status)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_ports_resolve_from_the_container() {
        let Ok(c) = serde_json::from_value::<Container>(serde_json::json!({
            "name": "app", "ports": [{"name": "http", "containerPort": 8080}]
        })) else {
            unreachable!("valid container")
        };
        assert_eq!(
            resolve_port(&IntOrString::String("http".into()), &c),
            Ok(8080)
        );
        assert_eq!(resolve_port(&IntOrString::Int(81), &c), Ok(81));
        assert!(resolve_port(&IntOrString::String("grpc".into()), &c).is_err());
    }

    /// A gRPC health server answering every Check with `status`, over plain HTTP/2.
    async fn health_server(status: u8) -> std::io::Result<u16> {
        use http_body_util::{BodyExt, StreamBody};
        use hyper::body::Frame;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let service = hyper::service::service_fn(
                    move |req: http::Request<hyper::body::Incoming>| async move {
                        let path_ok = req.uri().path() == "/grpc.health.v1.Health/Check";
                        let _ = req.into_body().collect().await;
                        // One length-prefixed message: field 1 (varint) = status.
                        let message = Bytes::from(vec![0, 0, 0, 0, 2, 0x08, status]);
                        let mut trailers = http::HeaderMap::new();
                        trailers.insert(
                            "grpc-status",
                            http::HeaderValue::from_static(if path_ok { "0" } else { "12" }),
                        );
                        let frames = futures::stream::iter(vec![
                            Ok::<_, std::convert::Infallible>(Frame::data(message)),
                            Ok(Frame::trailers(trailers)),
                        ]);
                        let mut response = http::Response::new(StreamBody::new(frames));
                        response.headers_mut().insert(
                            "content-type",
                            http::HeaderValue::from_static("application/grpc"),
                        );
                        Ok::<_, std::convert::Infallible>(response)
                    },
                );
                tokio::spawn(
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        Ok(port)
    }

    #[tokio::test]
    async fn https_probes_do_not_verify_the_certificate() -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let logs = tempfile::tempdir()?;
        let runtime = std::sync::Arc::new(crate::fake::FakeRuntime::default());
        let stats = crate::stats::StatsProvider::new(
            runtime,
            "n".into(),
            logs.path().to_path_buf(),
            logs.path().to_path_buf(),
        );
        // No API server behind it: a request without credentials is refused before any review.
        let client = kube::Client::try_from(kube::Config::new("http://127.0.0.1:1".parse()?))?;
        let auth = crate::endpoint_auth::EndpointAuth::new(client, "n".into());
        let server = tokio::spawn(crate::server::serve(
            listener,
            logs.path().to_path_buf(),
            std::sync::Arc::new(crate::fake::FakeRuntime::default()),
            vec!["agent.invalid".into()],
            std::sync::Arc::new(stats),
            std::sync::Arc::new(auth),
            vec![],
        ));
        // A self-signed certificate for another name: the request still gets its answer (the
        // agent's endpoint refuses a caller without credentials).
        let result = http_get(true, "127.0.0.1", port, "/nothing-here", &[]).await;
        assert_eq!(
            result,
            Err("HTTP probe failed with statuscode: 401".to_string())
        );
        server.abort();
        Ok(())
    }

    #[tokio::test]
    async fn grpc_probes_check_the_health_service() -> std::io::Result<()> {
        let serving = health_server(1).await?;
        assert_eq!(
            grpc_health_check("127.0.0.1", serving, "", Duration::from_secs(2)).await,
            Ok(())
        );
        let not_serving = health_server(2).await?;
        assert_eq!(
            grpc_health_check("127.0.0.1", not_serving, "", Duration::from_secs(2)).await,
            Err("service unhealthy (responded with \"NOT_SERVING\")".to_string())
        );
        let closed = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        assert_eq!(
            grpc_health_check("127.0.0.1", closed, "", Duration::from_secs(1)).await,
            Err(format!(
                "timeout: failed to connect service \"127.0.0.1:{closed}\" within 1s"
            ))
        );
        Ok(())
    }
}
