//! The pod syncer against the in-memory runtime: which runtime calls a pod turns into, and the
//! status reported for each stage.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use rkube_agent::fake::FakeRuntime;
use rkube_agent::sync::{NodeContext, PodSyncer, restart_backoff};
use serde_json::{Value, json};

fn pod(restart_policy: &str, image_pull_policy: &str) -> Pod {
    let Ok(p) = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default", "uid": "uid-1", "labels": {"app": "web"}},
        "spec": {"nodeName": "n1", "restartPolicy": restart_policy, "containers": [{
            "name": "app", "image": "127.0.0.1:5000/busybox:1", "imagePullPolicy": image_pull_policy,
            "command": ["/bin/sh", "-c"], "args": ["echo $(GREETING) from $(POD)"],
            "env": [
                {"name": "GREETING", "value": "hello"},
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
            ]
        }]}
    })) else {
        unreachable!("valid pod")
    };
    p
}

fn syncer(runtime: Arc<FakeRuntime>) -> PodSyncer {
    let dir = std::env::temp_dir().join("rkube-agent-unit-logs");
    PodSyncer::new(
        runtime,
        NodeContext {
            node_name: "n1".into(),
            node_ip: "192.0.2.10".into(),
            log_root: dir,
            runtime_name: "fake".into(),
            root_dir: std::env::temp_dir().join("rkube-agent-unit-root"),
            allocatable: Default::default(),
        },
    )
}

fn container_status(status: &Value) -> &Value {
    &status["containerStatuses"][0]
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a str {
    status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .and_then(|c| c["status"].as_str())
        .unwrap_or("")
}

#[tokio::test]
async fn a_new_pod_gets_a_sandbox_an_image_and_a_running_container() -> anyhow::Result<()> {
    let runtime = Arc::new(FakeRuntime::default());
    let s = syncer(runtime.clone());
    let p = pod("Always", "IfNotPresent");
    let status = s
        .sync(&p)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no status"))?;
    assert_eq!(
        runtime.calls(),
        [
            "run_sandbox web",
            "pull 127.0.0.1:5000/busybox:1",
            "create_container app attempt 0",
            "start_container container-2"
        ]
    );
    let created = &runtime.created_containers()[0];
    assert_eq!(created.command, ["/bin/sh", "-c"]);
    assert_eq!(created.args, ["echo hello from web"]);
    assert_eq!(
        created.env,
        [
            ("GREETING".into(), "hello".into()),
            ("POD".into(), "web".into()),
            ("APP".into(), "web".into()),
            ("IP".into(), "10.88.0.7".into())
        ]
    );
    assert_eq!(created.log_path, "app/0.log");
    assert_eq!(status["phase"], "Running");
    assert_eq!(status["podIP"], "10.88.0.7");
    assert_eq!(status["hostIP"], "192.0.2.10");
    assert_eq!(condition(&status, "Ready"), "True");
    let c = container_status(&status);
    assert_eq!(c["containerID"], "fake://container-2");
    assert_eq!(c["imageID"], "sha256:127.0.0.1:5000/busybox:1");
    assert!(c["state"]["running"]["startedAt"].is_string());
    assert_eq!(c["restartCount"], 0);

    // A second sync changes nothing in the runtime: the pod is adopted from what it reports.
    let again = syncer(runtime.clone());
    again.sync(&p).await?;
    assert_eq!(runtime.calls().len(), 4);
    Ok(())
}

#[tokio::test]
async fn a_container_that_exits_under_never_ends_the_pod() -> anyhow::Result<()> {
    let runtime = Arc::new(FakeRuntime::default());
    let s = syncer(runtime.clone());
    let p = pod("Never", "IfNotPresent");
    s.sync(&p).await?;
    runtime.exit_container("app", 0);
    let status = s
        .sync(&p)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no status"))?;
    assert_eq!(status["phase"], "Succeeded");
    assert_eq!(
        container_status(&status)["state"]["terminated"]["exitCode"],
        0
    );
    assert_eq!(
        container_status(&status)["state"]["terminated"]["reason"],
        "Completed"
    );
    // Sent as a strategic merge patch: the state it left must be cleared explicitly.
    assert_eq!(
        container_status(&status)["state"].get("running"),
        Some(&Value::Null)
    );
    assert_eq!(condition(&status, "Ready"), "False");
    assert!(
        runtime
            .calls()
            .contains(&"stop_sandbox sandbox-1".to_string()),
        "{:?}",
        runtime.calls()
    );
    // Until the Succeeded phase reaches the API, syncs keep reporting it and start nothing.
    let again = s
        .sync(&p)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no status"))?;
    assert_eq!(again["phase"], "Succeeded");
    assert_eq!(runtime.sandbox_count(), 1);

    runtime.exit_container("app", 3);
    let failed = pod("Never", "IfNotPresent");
    let runtime2 = Arc::new(FakeRuntime::default());
    let s2 = syncer(runtime2.clone());
    s2.sync(&failed).await?;
    runtime2.exit_container("app", 3);
    let status = s2
        .sync(&failed)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no status"))?;
    assert_eq!(status["phase"], "Failed");
    assert_eq!(
        container_status(&status)["state"]["terminated"]["reason"],
        "Error"
    );
    Ok(())
}

#[tokio::test]
async fn a_failed_container_under_always_waits_in_crash_loop_back_off() -> anyhow::Result<()> {
    let runtime = Arc::new(FakeRuntime::default());
    let s = syncer(runtime.clone());
    let p = pod("Always", "IfNotPresent");
    s.sync(&p).await?;
    // The first restart is immediate; the second waits 10 s.
    runtime.exit_container("app", 1);
    let status = s
        .sync(&p)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no status"))?;
    assert_eq!(container_status(&status)["restartCount"], 1);
    assert!(container_status(&status)["state"]["running"].is_object());
    runtime.exit_container("app", 1);
    let status = s
        .sync(&p)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no status"))?;
    assert_eq!(status["phase"], "Running");
    let c = container_status(&status);
    assert_eq!(c["state"]["waiting"]["reason"], "CrashLoopBackOff");
    assert!(
        c["state"]["waiting"]["message"].as_str().is_some_and(|m| m
            .starts_with("back-off 10s restarting failed container=app pod=web_default(uid-1)")),
        "{c}"
    );
    assert_eq!(c["lastState"]["terminated"]["exitCode"], 1);
    assert_eq!(condition(&status, "Ready"), "False");
    assert_eq!(restart_backoff(1).as_secs(), 0);
    assert_eq!(restart_backoff(2).as_secs(), 10);
    assert_eq!(restart_backoff(3).as_secs(), 20);
    assert_eq!(restart_backoff(10).as_secs(), 300);
    Ok(())
}

#[tokio::test]
async fn image_pull_failures_and_never_policy_are_reported_as_waiting() -> anyhow::Result<()> {
    let runtime = Arc::new(FakeRuntime::default());
    runtime.break_image("127.0.0.1:5000/busybox:1", "401 Unauthorized");
    let status = syncer(runtime.clone())
        .sync(&pod("Always", "Always"))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no status"))?;
    assert_eq!(status["phase"], "Pending");
    let waiting = &container_status(&status)["state"]["waiting"];
    assert_eq!(waiting["reason"], "ErrImagePull");
    assert!(
        waiting["message"]
            .as_str()
            .unwrap_or("")
            .contains("401 Unauthorized"),
        "{waiting}"
    );

    let runtime = Arc::new(FakeRuntime::default());
    let status = syncer(runtime.clone())
        .sync(&pod("Always", "Never"))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no status"))?;
    assert_eq!(
        container_status(&status)["state"]["waiting"]["reason"],
        "ErrImageNeverPull"
    );
    assert!(!runtime.calls().iter().any(|c| c.starts_with("pull")));

    // IfNotPresent with the image present: no pull.
    let runtime = Arc::new(FakeRuntime::default());
    runtime.add_image("127.0.0.1:5000/busybox:1");
    syncer(runtime.clone())
        .sync(&pod("Always", "IfNotPresent"))
        .await?;
    assert!(
        !runtime.calls().iter().any(|c| c.starts_with("pull")),
        "{:?}",
        runtime.calls()
    );
    Ok(())
}

#[tokio::test]
async fn terminating_stops_containers_with_the_grace_period_then_removes_the_sandbox()
-> anyhow::Result<()> {
    let runtime = Arc::new(FakeRuntime::default());
    let s = syncer(runtime.clone());
    let p = pod("Always", "IfNotPresent");
    s.sync(&p).await?;
    s.terminate(&p, 7).await?;
    let calls = runtime.calls();
    assert_eq!(
        calls[calls.len() - 3..],
        [
            "stop_container container-2 timeout 7",
            "stop_sandbox sandbox-1",
            "remove_sandbox sandbox-1"
        ]
    );
    assert_eq!(runtime.sandbox_count(), 0);
    Ok(())
}
