//! The node agent's container environment and volumes with a real containerd: env from values,
//! ConfigMaps, Secrets, the downward API and resources; ConfigMap/Secret/downward API/emptyDir
//! (tmpfs)/hostPath/PVC volumes; the ServiceAccount's `kube-api-access` volume giving a token
//! and CA that authenticate to the API server; ConfigMap updates reaching a running pod; and
//! the upstream waiting reasons and events when a referenced object is missing.

use std::time::{Duration, Instant};

use rkube_testkit::Kubectl;

use crate::agent::{RuntimeEnv, skip_without_runtime, wait_for};


/// Waits until the pod's logs contain `needle`; returns them.
fn wait_for_log(k: &Kubectl, pod: &str, needle: &str, timeout: Duration) -> anyhow::Result<String> {
    let deadline = Instant::now() + timeout;
    let mut logs = String::new();
    while Instant::now() < deadline {
        logs = k.ok(&["logs", pod]).unwrap_or_default();
        if logs.contains(needle) {
            return Ok(logs);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let dump = k.ok(&["get", "pod", pod, "-o", "yaml"]).unwrap_or_default();
    anyhow::bail!("pod {pod}: logs never contained {needle:?}:\n{logs}\n{dump}")
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

fn wait_for_event(k: &Kubectl, pod: &str, line: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut events = String::new();
    while Instant::now() < deadline {
        events = events_of(k, pod);
        if events.lines().any(|l| l == line) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    anyhow::bail!("pod {pod}: no event {line:?} in\n{events}")
}

#[test]
fn containers_get_env_and_volumes_from_the_api() -> anyhow::Result<()> {
    if skip_without_runtime("containers_get_env_and_volumes_from_the_api")? {
        return Ok(());
    }
    let env = RuntimeEnv::start()?;
    let cluster = env.cluster()?;
    let k = cluster.kubectl();
    let image = env.image();

    k.ok(&[
        "create",
        "configmap",
        "app-config",
        "--from-literal=greeting=hello",
        "--from-literal=file.txt=first",
    ])?;
    // Service links: the pod's environment names the Services that exist when it starts.
    k.ok(&[
        "create",
        "service",
        "clusterip",
        "app-web",
        "--tcp=8080:8080",
    ])?;
    k.ok(&[
        "patch",
        "service",
        "app-web",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/spec/ports/0/name","value":"http"}]"#,
    ])?;
    k.ok(&[
        "create",
        "secret",
        "generic",
        "app-secret",
        "--from-literal=password=s3cret",
    ])?;

    // Environment: envFrom with a prefix, configMapKeyRef, secretKeyRef, the downward API,
    // resources, and $(VAR) expansion in env and args; workingDir.
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"env","labels":{"tier":"web"}},"spec":{
      "restartPolicy":"Never","serviceAccountName":"default",
      "containers":[{"name":"main","image":"IMAGE","workingDir":"/tmp",
        "command":["/bin/sh","-c"],
        "args":["echo \"$(GREETING) G=$GREETING P=$PASSWORD C=$CFG_greeting N=$POD_NAME NS=$POD_NS NODE=$NODE SA=$SA TIER=$TIER MEM=$MEM CPU=$CPU X=$COMBINED\"; pwd; case \"$POD_IP\" in 10.88.0.*) echo ip-ok;; esac; echo host=$HOST_IP; echo svc=$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT $KUBERNETES_PORT_443_TCP $APP_WEB_SERVICE_PORT_HTTP"],
        "resources":{"limits":{"memory":"64Mi","cpu":"1500m"}},
        "envFrom":[{"prefix":"CFG_","configMapRef":{"name":"app-config"}}],
        "env":[
          {"name":"GREETING","valueFrom":{"configMapKeyRef":{"name":"app-config","key":"greeting"}}},
          {"name":"PASSWORD","valueFrom":{"secretKeyRef":{"name":"app-secret","key":"password"}}},
          {"name":"MISSING","valueFrom":{"configMapKeyRef":{"name":"no-such-config","key":"k","optional":true}}},
          {"name":"POD_NAME","valueFrom":{"fieldRef":{"fieldPath":"metadata.name"}}},
          {"name":"POD_NS","valueFrom":{"fieldRef":{"fieldPath":"metadata.namespace"}}},
          {"name":"POD_IP","valueFrom":{"fieldRef":{"fieldPath":"status.podIP"}}},
          {"name":"HOST_IP","valueFrom":{"fieldRef":{"fieldPath":"status.hostIP"}}},
          {"name":"NODE","valueFrom":{"fieldRef":{"fieldPath":"spec.nodeName"}}},
          {"name":"SA","valueFrom":{"fieldRef":{"fieldPath":"spec.serviceAccountName"}}},
          {"name":"TIER","valueFrom":{"fieldRef":{"fieldPath":"metadata.labels['tier']"}}},
          {"name":"MEM","valueFrom":{"resourceFieldRef":{"resource":"limits.memory","divisor":"1Mi"}}},
          {"name":"CPU","valueFrom":{"resourceFieldRef":{"resource":"limits.cpu"}}},
          {"name":"COMBINED","value":"$(POD_NAME).$(POD_NS)"}]}]}}"#
        .replace("IMAGE", &image);
    k.ok_stdin(&["apply", "-f", "-"], &pod)?;
    wait_for(
        &k,
        "env",
        "{.status.phase}",
        "Succeeded",
        Duration::from_secs(60),
    )?;
    let host_ip = k.ok(&["get", "pod", "env", "-o", "jsonpath={.status.hostIP}"])?;
    let kubernetes_ip = k.ok(&[
        "get",
        "service",
        "kubernetes",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ])?;
    assert_eq!(
        k.ok(&["logs", "env"])?,
        format!(
            "hello G=hello P=s3cret C=hello N=env NS=default NODE=agent-e2e SA=default TIER=web MEM=64 CPU=2 X=env.default\n/tmp\nip-ok\nhost={host_ip}\nsvc={kubernetes_ip}:443 tcp://{kubernetes_ip}:443 8080\n"
        )
    );
    wait_for_event(&k, "env", "Normal Started Started container main")?;

    // A missing ConfigMap: CreateContainerConfigError with upstream's message and event, until
    // the ConfigMap appears.
    k.ok(&["run", "needs-config", "--image", &image, "--restart=Never", "--overrides",
        r#"{"spec":{"containers":[{"name":"needs-config","image":"IMAGE","command":["/bin/sh","-c","echo got $VALUE"],
           "env":[{"name":"VALUE","valueFrom":{"configMapKeyRef":{"name":"late","key":"v"}}}]}]}}"#.replace("IMAGE", &image).as_str()])?;
    wait_for(
        &k,
        "needs-config",
        "{.status.containerStatuses[0].state.waiting.reason}: {.status.containerStatuses[0].state.waiting.message}",
        "CreateContainerConfigError: configmap \"late\" not found",
        Duration::from_secs(30),
    )?;
    wait_for_event(
        &k,
        "needs-config",
        "Warning Failed Error: configmap \"late\" not found",
    )?;
    let table = k.ok(&["get", "pod", "needs-config", "--no-headers"])?;
    assert!(table.contains("CreateContainerConfigError"), "{table}");
    k.ok(&["create", "configmap", "late", "--from-literal=v=now"])?;
    wait_for(
        &k,
        "needs-config",
        "{.status.phase}",
        "Succeeded",
        Duration::from_secs(30),
    )?;
    assert_eq!(k.ok(&["logs", "needs-config"])?, "got now\n");

    // A missing ConfigMap volume: FailedMount, the pod waits in ContainerCreating.
    k.ok(&["run", "needs-volume", "--image", &image, "--restart=Never", "--overrides",
        r#"{"spec":{"volumes":[{"name":"cfg","configMap":{"name":"absent"}}],
           "containers":[{"name":"needs-volume","image":"IMAGE","volumeMounts":[{"name":"cfg","mountPath":"/cfg"}]}]}}"#.replace("IMAGE", &image).as_str()])?;
    wait_for_event(
        &k,
        "needs-volume",
        "Warning FailedMount MountVolume.SetUp failed for volume \"cfg\" : configmap \"absent\" not found",
    )?;
    wait_for(
        &k,
        "needs-volume",
        "{.status.phase} {.status.containerStatuses[0].state.waiting.reason}",
        "Pending ContainerCreating",
        Duration::from_secs(5),
    )?;

    // Volumes of every kind in one running pod, plus the kube-api-access volume the
    // ServiceAccount admission plugin adds.
    let host_dir = env.dir.path().join("host-data");
    let pv_dir = env.dir.path().join("pv-data");
    k.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            r#"{{"apiVersion":"v1","kind":"List","items":[
      {{"apiVersion":"v1","kind":"PersistentVolume","metadata":{{"name":"local-pv"}},"spec":{{
        "capacity":{{"storage":"1Gi"}},"accessModes":["ReadWriteOnce"],"storageClassName":"",
        "hostPath":{{"path":"{}","type":"DirectoryOrCreate"}},
        "claimRef":{{"namespace":"default","name":"data"}}}}}},
      {{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{{"name":"data"}},"spec":{{
        "accessModes":["ReadWriteOnce"],"storageClassName":"","volumeName":"local-pv",
        "resources":{{"requests":{{"storage":"1Gi"}}}}}}}}]}}"#,
            pv_dir.display()
        ),
    )?;
    k.ok(&[
        "patch",
        "pvc",
        "data",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Bound"}}"#,
    ])?;
    let script = r#"
      cat /cfg/sub/f.txt; echo; busybox stat -L -c 'cfg-mode %a' /cfg/sub/f.txt
      echo "secret $(cat /sec/password) $(busybox stat -L -c %a /sec/password)"
      echo "name $(cat /info/name)"; cat /info/labels; echo
      busybox grep ' /mem ' /proc/mounts | busybox grep -o 'tmpfs /mem tmpfs rw.*size=[0-9]*k'
      echo from-pod > /host/written; echo claim > /claim/written
      echo scratch > /scratch/file && echo "scratch $(cat /scratch/file)"
      echo "ns $(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace)"
      echo "token $(cat /var/run/secrets/kubernetes.io/serviceaccount/token)"
      echo "ca-begin"; cat /var/run/secrets/kubernetes.io/serviceaccount/ca.crt; echo "ca-end"
      if echo x > /cfg/new 2>/dev/null; then echo cfg-writable; else echo cfg-read-only; fi
      while true; do echo "now $(cat /cfg/greeting)"; sleep 1; done"#;
    let pod = serde_json::json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"vols","labels":{"app":"vols"}},"spec":{
      "terminationGracePeriodSeconds": 1,
      "volumes":[
        {"name":"cfg","configMap":{"name":"app-config","items":[{"key":"file.txt","path":"sub/f.txt","mode":0o400},{"key":"greeting","path":"greeting"}]}},
        {"name":"sec","secret":{"secretName":"app-secret","defaultMode":0o440}},
        {"name":"info","downwardAPI":{"items":[{"path":"name","fieldRef":{"fieldPath":"metadata.name"}},{"path":"labels","fieldRef":{"fieldPath":"metadata.labels"}}]}},
        {"name":"mem","emptyDir":{"medium":"Memory","sizeLimit":"1Mi"}},
        {"name":"scratch","emptyDir":{}},
        {"name":"host","hostPath":{"path":host_dir.to_string_lossy(),"type":"DirectoryOrCreate"}},
        {"name":"claim","persistentVolumeClaim":{"claimName":"data"}}],
      "containers":[{"name":"main","image":image,"command":["/bin/sh","-c",script],
        "volumeMounts":[{"name":"cfg","mountPath":"/cfg"},{"name":"sec","mountPath":"/sec"},{"name":"info","mountPath":"/info"},
          {"name":"mem","mountPath":"/mem"},{"name":"scratch","mountPath":"/scratch"},{"name":"host","mountPath":"/host"},
          {"name":"claim","mountPath":"/claim"}]}]}});
    k.ok_stdin(&["apply", "-f", "-"], &pod.to_string())?;
    let logs = wait_for_log(&k, "vols", "now hello", Duration::from_secs(60))?;
    for line in [
        "first",
        "cfg-mode 400",
        "secret s3cret 440",
        "name vols",
        "app=\"vols\"",
        "scratch scratch",
        "ns default",
        "cfg-read-only",
    ] {
        assert!(
            logs.lines().any(|l| l == line),
            "no line {line:?} in\n{logs}"
        );
    }
    assert!(
        logs.contains("tmpfs /mem tmpfs rw") && logs.contains("size=1024k"),
        "{logs}"
    );
    assert_eq!(
        std::fs::read_to_string(host_dir.join("written"))?,
        "from-pod\n"
    );
    assert_eq!(std::fs::read_to_string(pv_dir.join("written"))?, "claim\n");

    // The projected token and CA authenticate as the pod's ServiceAccount.
    let token = logs
        .lines()
        .find_map(|l| l.strip_prefix("token "))
        .unwrap_or_default()
        .to_string();
    let ca = logs
        .split("ca-begin\n")
        .nth(1)
        .and_then(|rest| rest.split("ca-end").next())
        .unwrap_or_default();
    assert!(ca.contains("BEGIN CERTIFICATE"), "{logs}");
    let ca_file = cluster.data_dir().join("pod-ca.crt");
    std::fs::write(&ca_file, ca)?;
    let server = k.ok(&[
        "config",
        "view",
        "--minify",
        "-o",
        "jsonpath={.clusters[0].cluster.server}",
    ])?;
    let whoami = std::process::Command::new(&k.bin)
        .args([
            "--kubeconfig",
            "/dev/null",
            "--server",
            &server,
            "--certificate-authority",
        ])
        .arg(&ca_file)
        .args([
            "--token",
            &token,
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ])
        .output()?;
    assert_eq!(
        String::from_utf8_lossy(&whoami.stdout),
        "system:serviceaccount:default:default",
        "{}",
        String::from_utf8_lossy(&whoami.stderr)
    );

    // A ConfigMap update reaches the running container through the ..data symlink swap.
    k.ok(&[
        "patch",
        "configmap",
        "app-config",
        "--type=merge",
        "-p",
        r#"{"data":{"greeting":"updated"}}"#,
    ])?;
    wait_for_log(&k, "vols", "now updated", Duration::from_secs(30))?;

    // Deleting the pod removes its volumes from the node (hostPath and PV data stay).
    let uid = k.ok(&["get", "pod", "vols", "-o", "jsonpath={.metadata.uid}"])?;
    let pod_dir = env.dir.path().join("agent").join("pods").join(&uid);
    assert!(pod_dir.join("volumes").exists());
    k.ok(&["delete", "pod", "vols", "--wait=true", "--timeout=60s"])?;
    assert!(!pod_dir.exists(), "{} still exists", pod_dir.display());
    let mounts = std::fs::read_to_string("/proc/self/mounts")?;
    assert!(
        !mounts.contains(&uid),
        "a mount of the deleted pod is left:\n{mounts}"
    );
    assert!(host_dir.join("written").exists() && pv_dir.join("written").exists());

    k.ok(&[
        "delete",
        "pod",
        "env",
        "needs-config",
        "needs-volume",
        "--wait=true",
        "--timeout=60s",
    ])?;
    drop(cluster);
    Ok(())
}
