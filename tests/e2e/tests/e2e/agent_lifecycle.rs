//! Pod lifecycle on the node agent with a real containerd: init containers (in order, to
//! completion, failure under each restart policy, sidecars), probes (readiness dropping a pod
//! from its Service, liveness restarting a container, startup gating both) and restarts with
//! back-off (CrashLoopBackOff), as kubectl shows them.

use std::time::{Duration, Instant};

use rkube_testkit::Kubectl;

use crate::agent::{RuntimeEnv, skip_without_runtime, wait_for};


/// Waits until `kubectl get pod` shows `status` in its STATUS column.
fn wait_for_status_column(
    k: &Kubectl,
    pod: &str,
    status: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut row = String::new();
    while Instant::now() < deadline {
        row = k
            .ok(&["get", "pod", pod, "--no-headers"])
            .unwrap_or_default();
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
    if skip_without_runtime("init_containers_run_in_order_before_app_containers")? {
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
    wait_for(
        &k,
        "init-fails",
        "{.status.phase}",
        "Failed",
        Duration::from_secs(30),
    )?;
    wait_for_status_column(&k, "init-fails", "Init:Error", Duration::from_secs(5))?;
    assert_eq!(
        k.ok(&["get", "pod", "init-fails", "-o", "jsonpath={.status.initContainerStatuses[0].state.terminated.exitCode} {.status.containerStatuses[0].state.waiting.reason}"])?,
        "7 PodInitializing"
    );

    // Under restartPolicy Always a failing init container is retried with back-off.
    k.ok(&["run", "init-retries", "--image", &image, "--overrides",
        &serde_json::json!({"spec":{"initContainers":[{"name":"check","image":image,"command":["/bin/sh","-c","exit 2"]}],
          "containers":[{"name":"init-retries","image":image,"command":["/bin/sh","-c","sleep 3600"]}]}}).to_string()])?;
    wait_for_status_column(
        &k,
        "init-retries",
        "Init:CrashLoopBackOff",
        Duration::from_secs(30),
    )?;
    let check = k.ok(&[
        "get",
        "pod",
        "init-retries",
        "-o",
        "jsonpath={.status.phase} {.status.initContainerStatuses[0].lastState.terminated.exitCode}",
    ])?;
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
    assert_eq!(
        k.ok(&["logs", "with-sidecar", "-c", "app"])?,
        "sidecar-up\n"
    );
    let row = k.ok(&["get", "pod", "with-sidecar", "--no-headers"])?;
    assert_eq!(row.split_whitespace().nth(1), Some("2/2"), "{row}");

    k.ok(&[
        "delete",
        "pod",
        "ordered",
        "init-fails",
        "init-retries",
        "with-sidecar",
        "--wait=true",
        "--timeout=60s",
    ])?;
    drop(cluster);
    Ok(())
}

fn events_of(k: &Kubectl, pod: &str) -> String {
    k.ok(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={pod}"),
        "-o",
        "jsonpath={range .items[*]}{.type} {.reason} {.message}{\"\\n\"}{end}",
    ])
    .unwrap_or_default()
}

fn wait_for_event(k: &Kubectl, pod: &str, prefix: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut events = String::new();
    while Instant::now() < deadline {
        events = events_of(k, pod);
        if events.lines().any(|l| l.starts_with(prefix)) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    anyhow::bail!("pod {pod}: no event starting {prefix:?} in\n{events}")
}

#[test]
fn probes_drive_readiness_and_restarts_with_back_off() -> anyhow::Result<()> {
    if skip_without_runtime("probes_drive_readiness_and_restarts_with_back_off")? {
        return Ok(());
    }
    let env = RuntimeEnv::start()?;
    let cluster = env.cluster()?;
    let k = cluster.kubectl();
    let image = env.image();
    let hook_dir = env.dir.path().join("probe-hooks");

    let pods = serde_json::json!({"apiVersion":"v1","kind":"List","items":[
      // Ready while /healthz exists, then its readiness probe fails (404): the pod leaves the
      // Service's endpoints but keeps running.
      {"apiVersion":"v1","kind":"Pod","metadata":{"name":"ready-web","labels":{"app":"ready-web"}},"spec":{
        "terminationGracePeriodSeconds": 1,
        "containers":[{"name":"web","image":image,"ports":[{"name":"http","containerPort":8080}],
          "command":["/bin/sh","-c","mkdir -p /tmp/www; echo ok > /tmp/www/healthz; httpd -p 8080 -h /tmp/www; sleep 8; rm /tmp/www/healthz; while true; do sleep 1; done"],
          "readinessProbe":{"httpGet":{"path":"/healthz","port":"http"},"periodSeconds":1,"failureThreshold":1}}]}},
      // Its liveness probe fails after 4 s: killed and restarted.
      // Its preStop hook runs before the kill.
      {"apiVersion":"v1","kind":"Pod","metadata":{"name":"liveness"},"spec":{
        "terminationGracePeriodSeconds": 1,
        "volumes":[{"name":"host","hostPath":{"path":hook_dir.to_string_lossy(),"type":"DirectoryOrCreate"}}],
        "containers":[{"name":"app","image":image,
          "command":["/bin/sh","-c","touch /tmp/alive; sleep 4; rm /tmp/alive; while true; do sleep 1; done"],
          "volumeMounts":[{"name":"host","mountPath":"/host"}],
          "lifecycle":{"preStop":{"exec":{"command":["/bin/sh","-c","echo pre-stop >> /host/liveness"]}}},
          "livenessProbe":{"exec":{"command":["cat","/tmp/alive"]},"periodSeconds":1,"failureThreshold":2}}]}},
      // Not started (nor ready) until its port opens after 6 s.
      {"apiVersion":"v1","kind":"Pod","metadata":{"name":"slow-start"},"spec":{
        "terminationGracePeriodSeconds": 1,
        "containers":[{"name":"app","image":image,
          "command":["/bin/sh","-c","sleep 6; httpd -p 9090 -h /tmp; while true; do sleep 1; done"],
          "startupProbe":{"tcpSocket":{"port":9090},"periodSeconds":1,"failureThreshold":30}}]}},
      // Exits at once, again and again.
      {"apiVersion":"v1","kind":"Pod","metadata":{"name":"crasher"},"spec":{
        "containers":[{"name":"crasher","image":image,"command":["/bin/sh","-c","echo crash; exit 1"]}]}},
      {"apiVersion":"v1","kind":"Service","metadata":{"name":"ready-web"},"spec":{
        "selector":{"app":"ready-web"},"ports":[{"port":8080}]}}]});
    k.ok_stdin(&["apply", "-f", "-"], &pods.to_string())?;

    wait_for(
        &k,
        "slow-start",
        "{.status.phase} {.status.containerStatuses[0].started} {.status.containerStatuses[0].ready}",
        "Running false false",
        Duration::from_secs(30),
    )?;
    wait_for(
        &k,
        "ready-web",
        "{.status.conditions[?(@.type==\"Ready\")].status}",
        "True",
        Duration::from_secs(30),
    )?;
    let ip = k.ok(&["get", "pod", "ready-web", "-o", "jsonpath={.status.podIP}"])?;
    let endpoints = |field: &str| {
        k.ok(&[
            "get",
            "endpoints",
            "ready-web",
            "-o",
            &format!("jsonpath={{.subsets[*].{field}[*].ip}}"),
        ])
        .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while endpoints("addresses") != ip && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(endpoints("addresses"), ip);

    // Crash loop: the first restart is immediate, the next waits 10 s in CrashLoopBackOff.
    wait_for(
        &k,
        "crasher",
        "{.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].state.waiting.reason} {.status.containerStatuses[0].lastState.terminated.exitCode}",
        "1 CrashLoopBackOff 1",
        Duration::from_secs(30),
    )?;
    let message = k.ok(&[
        "get",
        "pod",
        "crasher",
        "-o",
        "jsonpath={.status.containerStatuses[0].state.waiting.message}",
    ])?;
    assert!(
        message
            .starts_with("back-off 10s restarting failed container=crasher pod=crasher_default("),
        "{message}"
    );
    let row = k.ok(&["get", "pod", "crasher", "--no-headers"])?;
    assert_eq!(
        row.split_whitespace().nth(2),
        Some("CrashLoopBackOff"),
        "{row}"
    );
    wait_for_event(
        &k,
        "crasher",
        "Warning BackOff Back-off restarting failed container crasher in pod crasher_default(",
    )?;
    assert_eq!(k.ok(&["logs", "crasher", "--previous"])?, "crash\n");

    // Startup probe passes once the port opens; the container is then started and ready.
    wait_for(
        &k,
        "slow-start",
        "{.status.containerStatuses[0].started} {.status.containerStatuses[0].ready}",
        "true true",
        Duration::from_secs(20),
    )?;

    // Liveness failure: Unhealthy and Killing events, the container stopped (SIGTERM) and
    // restarted.
    wait_for(
        &k,
        "liveness",
        "{.status.containerStatuses[0].lastState.terminated.exitCode} {.status.containerStatuses[0].lastState.terminated.reason}",
        "143 Error",
        Duration::from_secs(30),
    )?;
    let restarts: u32 = k
        .ok(&[
            "get",
            "pod",
            "liveness",
            "-o",
            "jsonpath={.status.containerStatuses[0].restartCount}",
        ])?
        .parse()?;
    assert!(restarts >= 1, "restartCount {restarts}");
    let pre_stop = std::fs::read_to_string(hook_dir.join("liveness"))?;
    assert!(pre_stop.starts_with("pre-stop\n"), "{pre_stop:?}");
    wait_for_event(
        &k,
        "liveness",
        "Warning Unhealthy Liveness probe failed: cat: can't open '/tmp/alive': No such file or directory",
    )?;
    wait_for_event(
        &k,
        "liveness",
        "Normal Killing Container app failed liveness probe, will be restarted",
    )?;

    // Readiness failure: not Ready, out of the endpoints, still running without restarts.
    wait_for(
        &k,
        "ready-web",
        "{.status.conditions[?(@.type==\"Ready\")].status} {.status.containerStatuses[0].ready} {.status.containerStatuses[0].restartCount}",
        "False false 0",
        Duration::from_secs(30),
    )?;
    wait_for_event(
        &k,
        "ready-web",
        "Warning Unhealthy Readiness probe failed: HTTP probe failed with statuscode: 404",
    )?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while endpoints("notReadyAddresses") != ip && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(endpoints("notReadyAddresses"), ip);
    assert_eq!(endpoints("addresses"), "");

    k.ok(&[
        "delete",
        "pod",
        "ready-web",
        "liveness",
        "slow-start",
        "crasher",
        "--wait=true",
        "--timeout=60s",
    ])?;
    drop(cluster);
    Ok(())
}

#[test]
fn limits_reach_cgroups_oom_kills_are_reported_and_hooks_run() -> anyhow::Result<()> {
    if skip_without_runtime("limits_reach_cgroups_oom_kills_are_reported_and_hooks_run")? {
        return Ok(());
    }
    let env = RuntimeEnv::start()?;
    let cluster = env.cluster()?;
    let k = cluster.kubectl();
    let image = env.image();
    let host_dir = env.dir.path().join("hooks");

    let cgroup_script = "if [ -f /sys/fs/cgroup/memory.max ]; then echo \"mem $(cat /sys/fs/cgroup/memory.max)\"; echo \"cpu $(cat /sys/fs/cgroup/cpu.max)\"; \
        else echo \"mem $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)\"; echo \"cpu $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)\"; fi";
    let pods = serde_json::json!({"apiVersion":"v1","kind":"List","items":[
      {"apiVersion":"v1","kind":"Pod","metadata":{"name":"limited"},"spec":{"restartPolicy":"Never",
        "containers":[{"name":"app","image":image,"command":["/bin/sh","-c",cgroup_script],
          "resources":{"requests":{"cpu":"250m","memory":"32Mi"},"limits":{"cpu":"500m","memory":"64Mi"}}}]}},
      // Doubles a string until it outgrows the 32 MiB limit.
      {"apiVersion":"v1","kind":"Pod","metadata":{"name":"oom"},"spec":{
        "containers":[{"name":"hog","image":image,"command":["/bin/sh","-c","x=0123456789; while true; do x=$x$x; done"],
          "resources":{"limits":{"memory":"32Mi"}}}]}},
      // postStart writes a file; preStop writes another and takes 2 s; the container ignores
      // SIGTERM, so it is killed when the 5 s grace period is over.
      {"apiVersion":"v1","kind":"Pod","metadata":{"name":"hooks"},"spec":{"terminationGracePeriodSeconds":5,
        "volumes":[{"name":"host","hostPath":{"path":host_dir.to_string_lossy(),"type":"DirectoryOrCreate"}}],
        "containers":[{"name":"app","image":image,"command":["/bin/sh","-c","trap '' TERM; while true; do sleep 1; done"],
          "volumeMounts":[{"name":"host","mountPath":"/host"}],
          "lifecycle":{"postStart":{"exec":{"command":["/bin/sh","-c","echo post-start > /host/post-start"]}},
                       "preStop":{"exec":{"command":["/bin/sh","-c","echo pre-stop > /host/pre-stop; sleep 2"]}}}}]}},
      // A preStop hook that would take 100 s is cut off by the 3 s grace period.
      {"apiVersion":"v1","kind":"Pod","metadata":{"name":"slow-hook"},"spec":{"terminationGracePeriodSeconds":3,
        "containers":[{"name":"app","image":image,"command":["/bin/sh","-c","while true; do sleep 1; done"],
          "lifecycle":{"preStop":{"exec":{"command":["sleep","100"]}}}}]}}]});
    k.ok_stdin(&["apply", "-f", "-"], &pods.to_string())?;

    // Requests and limits reach the container's cgroup; the QoS class is Burstable.
    wait_for(
        &k,
        "limited",
        "{.status.phase} {.status.qosClass}",
        "Succeeded Burstable",
        Duration::from_secs(60),
    )?;
    assert_eq!(
        k.ok(&["logs", "limited"])?,
        "mem 67108864\ncpu 50000 100000\n"
    );

    // The memory hog is OOM-killed, restarted, and ends in CrashLoopBackOff.
    wait_for(
        &k,
        "oom",
        "{.status.containerStatuses[0].lastState.terminated.reason} {.status.containerStatuses[0].lastState.terminated.exitCode}",
        "OOMKilled 137",
        Duration::from_secs(60),
    )?;
    wait_for(
        &k,
        "oom",
        "{.status.containerStatuses[0].state.waiting.reason}",
        "CrashLoopBackOff",
        Duration::from_secs(30),
    )?;
    let restarts: u32 = k
        .ok(&[
            "get",
            "pod",
            "oom",
            "-o",
            "jsonpath={.status.containerStatuses[0].restartCount}",
        ])?
        .parse()?;
    assert!(restarts >= 1, "restartCount {restarts}");

    // postStart ran once the container started.
    wait_for(
        &k,
        "hooks",
        "{.status.phase}",
        "Running",
        Duration::from_secs(60),
    )?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !host_dir.join("post-start").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        std::fs::read_to_string(host_dir.join("post-start"))?,
        "post-start\n"
    );

    // Deletion runs preStop, then stops the container within the grace period.
    wait_for(
        &k,
        "slow-hook",
        "{.status.phase}",
        "Running",
        Duration::from_secs(60),
    )?;
    let started = Instant::now();
    let slow = k
        .command(&["delete", "pod", "slow-hook", "--wait=true", "--timeout=60s"])
        .spawn()?;
    k.ok(&["delete", "pod", "hooks", "--wait=true", "--timeout=60s"])?;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(20),
        "deleting hooks took {took:?}"
    );
    assert_eq!(
        std::fs::read_to_string(host_dir.join("pre-stop"))?,
        "pre-stop\n"
    );
    let out = slow.wait_with_output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(20),
        "deleting slow-hook took {took:?}"
    );

    k.ok(&[
        "delete",
        "pod",
        "limited",
        "oom",
        "--wait=true",
        "--timeout=60s",
    ])?;
    drop(cluster);
    Ok(())
}

#[test]
fn security_contexts_apply_to_containers() -> anyhow::Result<()> {
    if skip_without_runtime("security_contexts_apply_to_containers")? {
        return Ok(());
    }
    let env = RuntimeEnv::start()?;
    let cluster = env.cluster()?;
    let k = cluster.kubectl();
    let image = env.image();

    let pods = serde_json::json!({"apiVersion":"v1","kind":"List","items":[
      // User, groups and a read-only root filesystem from the pod's and container's contexts.
      {"apiVersion":"v1","kind":"Pod","metadata":{"name":"as-user"},"spec":{"restartPolicy":"Never",
        "securityContext":{"runAsUser":1000,"runAsGroup":3000,"supplementalGroups":[4000]},
        "containers":[{"name":"app","image":image,"securityContext":{"readOnlyRootFilesystem":true},
          "command":["/bin/sh","-c","id -u; id -g; id -G; if touch /x 2>/dev/null; then echo rw; else echo ro; fi"]}]}},
      // Every capability dropped.
      {"apiVersion":"v1","kind":"Pod","metadata":{"name":"no-caps"},"spec":{"restartPolicy":"Never",
        "containers":[{"name":"app","image":image,"securityContext":{"capabilities":{"drop":["ALL"]},"allowPrivilegeEscalation":false},
          "command":["/bin/sh","-c","busybox grep -E '^(CapEff|NoNewPrivs)' /proc/self/status"]}]}},
      // runAsNonRoot with an image that runs as root: refused before the container is created.
      {"apiVersion":"v1","kind":"Pod","metadata":{"name":"non-root"},"spec":{
        "securityContext":{"runAsNonRoot":true},
        "containers":[{"name":"app","image":image,"command":["/bin/sh","-c","sleep 3600"]}]}}]});
    k.ok_stdin(&["apply", "-f", "-"], &pods.to_string())?;

    wait_for(
        &k,
        "as-user",
        "{.status.phase}",
        "Succeeded",
        Duration::from_secs(60),
    )?;
    assert_eq!(k.ok(&["logs", "as-user"])?, "1000\n3000\n3000 4000\nro\n");
    wait_for(
        &k,
        "no-caps",
        "{.status.phase}",
        "Succeeded",
        Duration::from_secs(60),
    )?;
    assert_eq!(
        k.ok(&["logs", "no-caps"])?,
        "CapEff:\t0000000000000000\nNoNewPrivs:\t1\n"
    );
    let uid = k.ok(&["get", "pod", "non-root", "-o", "jsonpath={.metadata.uid}"])?;
    wait_for(
        &k,
        "non-root",
        "{.status.containerStatuses[0].state.waiting.reason}: {.status.containerStatuses[0].state.waiting.message}",
        &format!(
            "CreateContainerConfigError: container has runAsNonRoot and image will run as root (pod: \"non-root_default({uid})\", container: app)"
        ),
        Duration::from_secs(60),
    )?;

    k.ok(&[
        "delete",
        "pod",
        "as-user",
        "no-caps",
        "non-root",
        "--wait=true",
        "--timeout=60s",
    ])?;
    drop(cluster);
    Ok(())
}
