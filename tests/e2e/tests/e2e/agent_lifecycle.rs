//! Pod lifecycle on the node agent with a real containerd: init containers (in order, to
//! completion, failure under each restart policy, sidecars), as kubectl shows them.

use std::time::{Duration, Instant};

use rkube_testkit::Kubectl;

use crate::agent::{RuntimeEnv, missing_prerequisites, wait_for};

fn skip(test: &str) -> anyhow::Result<bool> {
    if let Some(why) = missing_prerequisites() {
        if std::env::var_os("CI").is_some() {
            anyhow::bail!("node agent e2e cannot run under CI: {why}");
        }
        eprintln!("SKIPPED {test}: {why}");
        return Ok(true);
    }
    Ok(false)
}

/// Waits until `kubectl get pod` shows `status` in its STATUS column.
fn wait_for_status_column(k: &Kubectl, pod: &str, status: &str, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut row = String::new();
    while Instant::now() < deadline {
        row = k.ok(&["get", "pod", pod, "--no-headers"]).unwrap_or_default();
        if row.split_whitespace().nth(2) == Some(status) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let dump = k.ok(&["get", "pod", pod, "-o", "yaml"]).unwrap_or_default();
    anyhow::bail!("pod {pod}: STATUS never {status:?}; last row {row:?}\n{dump}")
}

#[test]
fn init_containers_run_in_order_before_app_containers() -> anyhow::Result<()> {
    if skip("init_containers_run_in_order_before_app_containers")? {
        return Ok(());
    }
    let env = RuntimeEnv::start()?;
    let cluster = env.cluster()?;
    let k = cluster.kubectl();
    let image = env.image();

    // Two init containers share an emptyDir with the app; the first takes a while, so the pod
    // is seen as Init:0/2 first.
    let pod = serde_json::json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"ordered"},"spec":{
      "terminationGracePeriodSeconds": 1,
      "volumes":[{"name":"work","emptyDir":{}}],
      "initContainers":[
        {"name":"first","image":image,"command":["/bin/sh","-c","sleep 3; echo one > /work/order"],"volumeMounts":[{"name":"work","mountPath":"/work"}]},
        {"name":"second","image":image,"command":["/bin/sh","-c","echo two >> /work/order; echo second-done"],"volumeMounts":[{"name":"work","mountPath":"/work"}]}],
      "containers":[{"name":"app","image":image,"command":["/bin/sh","-c","cat /work/order; while true; do sleep 1; done"],
        "volumeMounts":[{"name":"work","mountPath":"/work"}]}]}});
    k.ok_stdin(&["apply", "-f", "-"], &pod.to_string())?;
    wait_for_status_column(&k, "ordered", "Init:0/2", Duration::from_secs(30))?;
    wait_for(
        &k,
        "ordered",
        "{.status.conditions[?(@.type==\"Initialized\")].reason} {.status.containerStatuses[0].state.waiting.reason}",
        "ContainersNotInitialized PodInitializing",
        Duration::from_secs(5),
    )?;
    wait_for_status_column(&k, "ordered", "Running", Duration::from_secs(30))?;
    assert_eq!(k.ok(&["logs", "ordered"])?, "one\ntwo\n");
    assert_eq!(k.ok(&["logs", "ordered", "-c", "second"])?, "second-done\n");
    assert_eq!(
        k.ok(&["get", "pod", "ordered", "-o", "jsonpath={.status.initContainerStatuses[*].state.terminated.reason} {.status.initContainerStatuses[*].ready} {.status.conditions[?(@.type==\"Initialized\")].status}"])?,
        "Completed Completed true true True"
    );

    // An init container failing under restartPolicy Never fails the pod; app containers never run.
    k.ok(&["run", "init-fails", "--image", &image, "--restart=Never", "--overrides",
        &serde_json::json!({"spec":{"initContainers":[{"name":"check","image":image,"command":["/bin/sh","-c","exit 7"]}],
          "containers":[{"name":"init-fails","image":image,"command":["/bin/sh","-c","echo must not run"]}]}}).to_string()])?;
    wait_for(&k, "init-fails", "{.status.phase}", "Failed", Duration::from_secs(30))?;
    wait_for_status_column(&k, "init-fails", "Init:Error", Duration::from_secs(5))?;
    assert_eq!(
        k.ok(&["get", "pod", "init-fails", "-o", "jsonpath={.status.initContainerStatuses[0].state.terminated.exitCode} {.status.containerStatuses[0].state.waiting.reason}"])?,
        "7 PodInitializing"
    );

    // Under restartPolicy Always a failing init container is retried with back-off.
    k.ok(&["run", "init-retries", "--image", &image, "--overrides",
        &serde_json::json!({"spec":{"initContainers":[{"name":"check","image":image,"command":["/bin/sh","-c","exit 2"]}],
          "containers":[{"name":"init-retries","image":image,"command":["/bin/sh","-c","sleep 3600"]}]}}).to_string()])?;
    wait_for_status_column(&k, "init-retries", "Init:CrashLoopBackOff", Duration::from_secs(30))?;
    let check = k.ok(&["get", "pod", "init-retries", "-o", "jsonpath={.status.phase} {.status.initContainerStatuses[0].lastState.terminated.exitCode}"])?;
    assert_eq!(check, "Pending 2");

    // A sidecar (init container with restartPolicy Always) starts before the app and keeps running.
    let pod = serde_json::json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"with-sidecar"},"spec":{
      "terminationGracePeriodSeconds": 1,
      "volumes":[{"name":"work","emptyDir":{}}],
      "initContainers":[{"name":"sidecar","image":image,"restartPolicy":"Always",
        "command":["/bin/sh","-c","echo sidecar-up > /work/flag; while true; do sleep 1; done"],"volumeMounts":[{"name":"work","mountPath":"/work"}]}],
      "containers":[{"name":"app","image":image,"command":["/bin/sh","-c","cat /work/flag; while true; do sleep 1; done"],
        "volumeMounts":[{"name":"work","mountPath":"/work"}]}]}});
    k.ok_stdin(&["apply", "-f", "-"], &pod.to_string())?;
    wait_for(
        &k,
        "with-sidecar",
        "{.status.phase} {.status.initContainerStatuses[0].ready} {.status.conditions[?(@.type==\"Ready\")].status}",
        "Running true True",
        Duration::from_secs(30),
    )?;
    assert_eq!(k.ok(&["logs", "with-sidecar", "-c", "app"])?, "sidecar-up\n");
    let row = k.ok(&["get", "pod", "with-sidecar", "--no-headers"])?;
    assert_eq!(row.split_whitespace().nth(1), Some("2/2"), "{row}");

    k.ok(&["delete", "pod", "ordered", "init-fails", "init-retries", "with-sidecar", "--wait=true", "--timeout=60s"])?;
    drop(cluster);
    Ok(())
}
