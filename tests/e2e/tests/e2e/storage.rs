//! Persistent volumes: the default `local-path` StorageClass and its provisioner, the PV binder,
//! the protection finalizers and the scheduler's VolumeBinding, with `rkube sim` nodes and the
//! real kubectl.

use std::time::Duration;

use rkube_testkit::Kubectl;
use serde_json::Value;

use crate::scheduling::{Sim, start, wait_for, wait_nodes_ready};

const TIMEOUT: Duration = Duration::from_secs(30);

fn get(k: &Kubectl, kind: &str, name: &str) -> Option<Value> {
    k.json(&["get", kind, name, "-o", "json"]).ok()
}

/// Messages of events about `object` with `reason`.
fn events(k: &Kubectl, object: &str, reason: &str) -> Vec<String> {
    let ev = k.json(&["get", "events", "-o", "json"]).unwrap();
    ev["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["involvedObject"]["name"] == object && e["reason"] == reason)
        .filter_map(|e| e["message"].as_str().map(str::to_string))
        .collect()
}

fn wait_event(k: &Kubectl, object: &str, reason: &str) -> String {
    wait_for(&format!("{reason} event for {object}"), TIMEOUT, || events(k, object, reason).into_iter().last())
}

fn wait_claim_phase(k: &Kubectl, name: &str, phase: &str) -> Value {
    wait_for(&format!("claim {name} {phase}"), TIMEOUT, || get(k, "pvc", name).filter(|c| c["status"]["phase"] == phase))
}

fn wait_gone(k: &Kubectl, kind: &str, name: &str) {
    wait_for(&format!("{kind} {name} gone"), TIMEOUT, || get(k, kind, name).is_none().then_some(()));
}

const CLAIM: &str = r#"
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: NAME
spec:
  accessModes: ["ReadWriteOnce"]
  resources:
    requests:
      storage: 1Gi
"#;

const POD_WITH_CLAIM: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: NAME
spec:
  containers:
  - name: app
    image: registry.k8s.io/pause:3.10
  volumes:
  - name: data
    persistentVolumeClaim:
      claimName: CLAIM
"#;

fn pod_with_claim(name: &str, claim: &str) -> String {
    POD_WITH_CLAIM.replace("NAME", name).replace("CLAIM", claim)
}

#[test]
fn claim_without_class_is_provisioned_on_the_node_of_its_first_consumer_and_deleted_with_it() {
    let c = start(&[]);
    let k = c.kubectl();
    let _sim = Sim::start(&c, &["--nodes", "2", "--name-prefix", "store"]);
    wait_nodes_ready(&k, 2);

    let classes = k.ok(&["get", "storageclass"]).unwrap();
    let header: Vec<&str> = classes.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION", "AGE"]);
    let row: Vec<&str> = classes.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[..6], ["local-path", "(default)", "rancher.io/local-path", "Delete", "WaitForFirstConsumer", "false"]);

    // DefaultStorageClass names the class; StorageObjectInUseProtection adds the finalizer.
    k.ok_stdin(&["apply", "-f", "-"], &CLAIM.replace("NAME", "data")).unwrap();
    let claim = get(&k, "pvc", "data").unwrap();
    assert_eq!(claim["spec"]["storageClassName"], "local-path");
    assert_eq!(claim["metadata"]["finalizers"], serde_json::json!(["kubernetes.io/pvc-protection"]));
    assert_eq!(wait_event(&k, "data", "WaitForFirstConsumer"), "waiting for first consumer to be created before binding");
    assert_eq!(get(&k, "pvc", "data").unwrap()["status"]["phase"], "Pending");
    assert!(k.ok(&["get", "pv", "-o", "name"]).unwrap().trim().is_empty(), "no volume before a consumer exists");

    k.ok_stdin(&["apply", "-f", "-"], &pod_with_claim("app", "data")).unwrap();
    let node = wait_for("app scheduled", TIMEOUT, || get(&k, "pod", "app")?["spec"]["nodeName"].as_str().map(str::to_string));
    let claim = wait_claim_phase(&k, "data", "Bound");
    let uid = claim["metadata"]["uid"].as_str().unwrap();
    let volume = format!("pvc-{uid}");
    assert_eq!(claim["spec"]["volumeName"], volume.as_str());
    assert_eq!(claim["metadata"]["annotations"]["volume.kubernetes.io/selected-node"], node.as_str());
    assert_eq!(claim["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"], "yes");
    assert_eq!(claim["status"]["capacity"]["storage"], "1Gi");
    assert_eq!(claim["status"]["accessModes"], serde_json::json!(["ReadWriteOnce"]));
    assert_eq!(
        wait_event(&k, "data", "ExternalProvisioning"),
        "Waiting for a volume to be created either by the external provisioner 'rancher.io/local-path' or manually by the system \
         administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered."
    );
    assert_eq!(wait_event(&k, "data", "ProvisioningSucceeded"), format!("Successfully provisioned volume {volume}"));

    let pv = get(&k, "pv", &volume).unwrap();
    assert_eq!(pv["status"]["phase"], "Bound");
    assert_eq!(pv["spec"]["claimRef"]["name"], "data");
    assert_eq!(pv["spec"]["claimRef"]["uid"], uid);
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Delete");
    assert_eq!(pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"], "rancher.io/local-path");
    assert_eq!(pv["metadata"]["finalizers"], serde_json::json!(["kubernetes.io/pv-protection"]));
    let term = &pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0];
    assert_eq!(term["key"], "kubernetes.io/hostname");
    assert_eq!(term["values"], serde_json::json!([node]));
    let expected_path = c.data_dir().join("storage").join(format!("{volume}_default_data"));
    assert_eq!(pv["spec"]["hostPath"]["path"], expected_path.to_str().unwrap());
    assert_eq!(pv["spec"]["hostPath"]["type"], "DirectoryOrCreate");

    let table = k.ok(&["get", "pv"]).unwrap();
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "CAPACITY", "ACCESS", "MODES", "RECLAIM", "POLICY", "STATUS", "CLAIM", "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "REASON", "AGE"]
    );
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[..7], [volume.as_str(), "1Gi", "RWO", "Delete", "Bound", "default/data", "local-path"]);
    let table = k.ok(&["get", "pvc"]).unwrap();
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS", "MODES", "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "AGE"]);
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[..6], ["data", "Bound", volume.as_str(), "1Gi", "RWO", "local-path"]);

    // Reclaim policy Delete: the volume goes with its claim.
    k.ok(&["delete", "pod", "app", "--wait=true"]).unwrap();
    k.ok(&["delete", "pvc", "data", "--wait=true"]).unwrap();
    wait_gone(&k, "pv", &volume);
}

const STATIC_VOLUME: &str = r#"
apiVersion: v1
kind: PersistentVolume
metadata:
  name: NAME
spec:
  capacity:
    storage: SIZE
  accessModes: ["ReadWriteOnce"]
  storageClassName: ""
  hostPath:
    path: /tmp/NAME
"#;

const NO_CLASS_CLAIM: &str = r#"
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: NAME
spec:
  storageClassName: ""
  accessModes: ["ReadWriteOnce"]
  resources:
    requests:
      storage: SIZE
"#;

#[test]
fn static_volume_binds_the_smallest_match_and_is_retained_after_release() {
    // Without the local-path provisioner (k3s's flag) there is no default class.
    let c = start(&["--disable=local-storage"]);
    let k = c.kubectl();
    let classes = k.run(&["get", "storageclass"]).unwrap();
    assert!(classes.stdout.trim().is_empty() && classes.stderr.contains("No resources found"), "{} {}", classes.stdout, classes.stderr);
    for (name, size) in [("big", "5Gi"), ("small", "2Gi")] {
        k.ok_stdin(&["apply", "-f", "-"], &STATIC_VOLUME.replace("NAME", name).replace("SIZE", size)).unwrap();
    }
    wait_for("volumes Available", TIMEOUT, || {
        ["big", "small"].iter().all(|v| get(&k, "pv", v).is_some_and(|p| p["status"]["phase"] == "Available")).then_some(())
    });

    // Too big for any volume: stays Pending with upstream's event.
    k.ok_stdin(&["apply", "-f", "-"], &NO_CLASS_CLAIM.replace("NAME", "huge").replace("SIZE", "10Gi")).unwrap();
    assert_eq!(wait_event(&k, "huge", "FailedBinding"), "no persistent volumes available for this claim and no storage class is set");

    k.ok_stdin(&["apply", "-f", "-"], &NO_CLASS_CLAIM.replace("NAME", "fits").replace("SIZE", "1Gi")).unwrap();
    let claim = wait_claim_phase(&k, "fits", "Bound");
    assert_eq!(claim["spec"]["volumeName"], "small");
    assert_eq!(claim["status"]["capacity"]["storage"], "2Gi");
    assert_eq!(claim["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"], "yes");
    let pv = wait_for("small Bound", TIMEOUT, || get(&k, "pv", "small").filter(|p| p["status"]["phase"] == "Bound"));
    assert_eq!(pv["spec"]["claimRef"]["namespace"], "default");
    assert_eq!(pv["spec"]["claimRef"]["name"], "fits");
    assert_eq!(pv["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"], "yes");
    assert_eq!(get(&k, "pv", "big").unwrap()["status"]["phase"], "Available");
    assert_eq!(get(&k, "pvc", "huge").unwrap()["status"]["phase"], "Pending");

    // Pre-binding from either side: a claim naming its volume, a volume naming its claim.
    k.ok_stdin(&["apply", "-f", "-"], &STATIC_VOLUME.replace("NAME", "scratch").replace("SIZE", "3Gi").replace(
        "  storageClassName: \"\"\n",
        "  storageClassName: \"\"\n  persistentVolumeReclaimPolicy: Delete\n",
    ))
    .unwrap();
    k.ok_stdin(&["apply", "-f", "-"], &STATIC_VOLUME.replace("NAME", "reserved").replace("SIZE", "1Gi").replace(
        "  storageClassName: \"\"\n",
        "  storageClassName: \"\"\n  claimRef:\n    namespace: default\n    name: wanted\n",
    ))
    .unwrap();
    let pinned = NO_CLASS_CLAIM.replace("NAME", "pinned").replace("SIZE", "1Gi").replace("  storageClassName", "  volumeName: scratch\n  storageClassName");
    k.ok_stdin(&["apply", "-f", "-"], &pinned).unwrap();
    k.ok_stdin(&["apply", "-f", "-"], &NO_CLASS_CLAIM.replace("NAME", "wanted").replace("SIZE", "1Gi")).unwrap();
    let claim = wait_claim_phase(&k, "pinned", "Bound");
    assert_eq!(claim["spec"]["volumeName"], "scratch");
    assert!(claim["metadata"]["annotations"].get("pv.kubernetes.io/bound-by-controller").is_none(), "the user bound it: {claim}");
    assert_eq!(wait_claim_phase(&k, "wanted", "Bound")["spec"]["volumeName"], "reserved");
    assert_eq!(get(&k, "pvc", "huge").unwrap()["status"]["phase"], "Pending");

    // Delete without a provisioner: nothing can delete the volume, so it fails as upstream.
    k.ok(&["delete", "pvc", "pinned", "--wait=true"]).unwrap();
    wait_for("scratch Failed", TIMEOUT, || get(&k, "pv", "scratch").filter(|p| p["status"]["phase"] == "Failed"));
    assert_eq!(
        wait_event(&k, "scratch", "VolumeFailedDelete"),
        "error getting deleter volume plugin for volume \"scratch\": no deletable volume plugin matched"
    );

    // Static volumes default to Retain: Released, and not bound again.
    k.ok(&["delete", "pvc", "fits", "--wait=true"]).unwrap();
    wait_for("small Released", TIMEOUT, || get(&k, "pv", "small").filter(|p| p["status"]["phase"] == "Released"));
    let row = k.ok(&["get", "pv", "small", "--no-headers"]).unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[..5], ["small", "2Gi", "RWO", "Retain", "Released"]);
    assert_eq!(cells[5], "default/fits");
}

#[test]
fn claim_in_use_stays_terminating_until_its_pod_is_gone() {
    let c = start(&[]);
    let k = c.kubectl();
    let _sim = Sim::start(&c, &["--nodes", "1", "--name-prefix", "guard"]);
    wait_nodes_ready(&k, 1);
    k.ok_stdin(&["apply", "-f", "-"], &CLAIM.replace("NAME", "keep")).unwrap();
    k.ok_stdin(&["apply", "-f", "-"], &pod_with_claim("user", "keep")).unwrap();
    let claim = wait_claim_phase(&k, "keep", "Bound");
    let volume = claim["spec"]["volumeName"].as_str().unwrap().to_string();
    wait_for("user Running", TIMEOUT, || get(&k, "pod", "user").filter(|p| p["status"]["phase"] == "Running"));

    k.ok(&["delete", "pvc", "keep", "--wait=false"]).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let row = k.ok(&["get", "pvc", "keep", "--no-headers"]).unwrap();
    assert_eq!(row.split_whitespace().nth(1), Some("Terminating"), "{row}");
    let claim = get(&k, "pvc", "keep").unwrap();
    assert_eq!(claim["metadata"]["finalizers"], serde_json::json!(["kubernetes.io/pvc-protection"]));
    assert_eq!(get(&k, "pv", &volume).unwrap()["status"]["phase"], "Bound");

    k.ok(&["delete", "pod", "user", "--wait=true"]).unwrap();
    wait_gone(&k, "pvc", "keep");
    wait_gone(&k, "pv", &volume);
}

const NO_PROVISIONER_CLASS: &str = r#"
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local-static
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
"#;

const PINNED_VOLUME: &str = r#"
apiVersion: v1
kind: PersistentVolume
metadata:
  name: on-NODE
spec:
  capacity:
    storage: 1Gi
  accessModes: ["ReadWriteOnce"]
  storageClassName: local-static
  local:
    path: /mnt/disks/vol1
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions:
        - key: kubernetes.io/hostname
          operator: In
          values: [NODE]
"#;

const STATIC_CLASS_CLAIM: &str = r#"
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: NAME
spec:
  storageClassName: local-static
  accessModes: ["ReadWriteOnce"]
  resources:
    requests:
      storage: 1Gi
"#;

#[test]
fn scheduler_places_pods_where_their_local_volume_is() {
    let c = start(&[]);
    let k = c.kubectl();
    let _sim = Sim::start(&c, &["--nodes", "3", "--name-prefix", "disk"]);
    wait_nodes_ready(&k, 3);
    k.ok_stdin(&["apply", "-f", "-"], NO_PROVISIONER_CLASS).unwrap();
    k.ok_stdin(&["apply", "-f", "-"], &PINNED_VOLUME.replace("NODE", "disk-1")).unwrap();
    for claim in ["first", "second"] {
        k.ok_stdin(&["apply", "-f", "-"], &STATIC_CLASS_CLAIM.replace("NAME", claim)).unwrap();
    }
    k.ok_stdin(&["apply", "-f", "-"], &pod_with_claim("first", "first")).unwrap();
    let node = wait_for("first scheduled", TIMEOUT, || get(&k, "pod", "first")?["spec"]["nodeName"].as_str().map(str::to_string));
    assert_eq!(node, "disk-1");
    let claim = wait_claim_phase(&k, "first", "Bound");
    assert_eq!(claim["spec"]["volumeName"], "on-disk-1");

    // The only volume is taken and the class cannot provision: no node fits.
    k.ok_stdin(&["apply", "-f", "-"], &pod_with_claim("second", "second")).unwrap();
    let message = wait_event(&k, "second", "FailedScheduling");
    assert!(
        message.starts_with("0/3 nodes are available: 3 node(s) didn't find available persistent volumes to bind."),
        "{message}"
    );

    // PreFilter: a missing claim, and a claim of an Immediate class that nothing binds.
    k.ok_stdin(&["apply", "-f", "-"], &pod_with_claim("orphan", "nope")).unwrap();
    let message = wait_event(&k, "orphan", "FailedScheduling");
    assert!(message.starts_with("0/3 nodes are available: persistentvolumeclaim \"nope\" not found."), "{message}");
    k.ok_stdin(&["apply", "-f", "-"], &NO_PROVISIONER_CLASS.replace("local-static", "static-now").replace("WaitForFirstConsumer", "Immediate"))
        .unwrap();
    k.ok_stdin(&["apply", "-f", "-"], &STATIC_CLASS_CLAIM.replace("NAME", "now").replace("local-static", "static-now")).unwrap();
    k.ok_stdin(&["apply", "-f", "-"], &pod_with_claim("eager", "now")).unwrap();
    let message = wait_event(&k, "eager", "FailedScheduling");
    assert!(message.starts_with("0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims."), "{message}");

    // A pod whose claim is bound to the pinned volume can only go to that volume's node.
    k.ok(&["delete", "pod", "first", "--wait=true"]).unwrap();
    k.ok_stdin(&["apply", "-f", "-"], &pod_with_claim("again", "first")).unwrap();
    let node = wait_for("again scheduled", TIMEOUT, || get(&k, "pod", "again")?["spec"]["nodeName"].as_str().map(str::to_string));
    assert_eq!(node, "disk-1");
}

const STATEFULSET: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  serviceName: db
  replicas: 2
  selector:
    matchLabels:
      app: db
  template:
    metadata:
      labels:
        app: db
    spec:
      containers:
      - name: db
        image: postgres
        volumeMounts:
        - name: data
          mountPath: /var/lib/postgresql/data
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: ["ReadWriteOnce"]
      resources:
        requests:
          storage: 1Gi
"#;

#[test]
fn statefulset_claims_are_provisioned_bound_and_kept_after_scale_down() {
    let c = start(&[]);
    let k = c.kubectl();
    let _sim = Sim::start(&c, &["--nodes", "2", "--name-prefix", "sts"]);
    wait_nodes_ready(&k, 2);
    k.ok_stdin(&["apply", "-f", "-"], STATEFULSET).unwrap();
    for ordinal in 0..2 {
        let claim = wait_claim_phase(&k, &format!("data-db-{ordinal}"), "Bound");
        let pod = wait_for(&format!("db-{ordinal} Running"), TIMEOUT, || {
            get(&k, "pod", &format!("db-{ordinal}")).filter(|p| p["status"]["phase"] == "Running")
        });
        let pv = get(&k, "pv", claim["spec"]["volumeName"].as_str().unwrap()).unwrap();
        let pinned = &pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"][0];
        assert_eq!(pinned, &pod["spec"]["nodeName"], "the volume is on the pod's node");
    }
    k.ok(&["scale", "statefulset", "db", "--replicas=1"]).unwrap();
    wait_gone(&k, "pod", "db-1");
    for ordinal in 0..2 {
        assert_eq!(get(&k, "pvc", &format!("data-db-{ordinal}")).unwrap()["status"]["phase"], "Bound");
    }
}
