//! Storage: persistent volumes and claims, storage and volume attributes classes, CSI objects
//! and volume attachments.

use serde_json::{Value, json};

use crate::format::{at, count, flag, list, opt_flag, opt_text, quantity, text};
use crate::{
    AGE,
    CellType::{Boolean as Bool, Integer as Int, String as Str},
    Column, Ctx, NAME, Printer, Row, col, descriptions as d, printer, wide,
};

pub(crate) static PERSISTENT_VOLUME: Printer = printer(
    &[
        NAME,
        col("Capacity", Str, d::PV_SPEC_CAPACITY),
        col("Access Modes", Str, d::PV_SPEC_ACCESS_MODES),
        col("Reclaim Policy", Str, d::PV_SPEC_RECLAIM_POLICY),
        col("Status", Str, d::PV_STATUS_PHASE),
        col("Claim", Str, d::PV_SPEC_CLAIM_REF),
        col("StorageClass", Str, "StorageClass of the pv"),
        col(
            "VolumeAttributesClass",
            Str,
            "VolumeAttributesClass of the pv",
        ),
        col("Reason", Str, d::PV_STATUS_REASON),
        AGE,
        wide("VolumeMode", Str, d::PV_SPEC_VOLUME_MODE),
    ],
    print_persistent_volume,
);

pub(crate) static PERSISTENT_VOLUME_CLAIM: Printer = printer(
    &[
        NAME,
        col("Status", Str, d::PVC_STATUS_PHASE),
        col("Volume", Str, d::PVC_SPEC_VOLUME_NAME),
        col("Capacity", Str, d::PVC_STATUS_CAPACITY),
        col("Access Modes", Str, d::PVC_STATUS_ACCESS_MODES),
        col("StorageClass", Str, "StorageClass of the pvc"),
        col(
            "VolumeAttributesClass",
            Str,
            "VolumeAttributesClass of the pvc",
        ),
        AGE,
        wide("VolumeMode", Str, d::PVC_SPEC_VOLUME_MODE),
    ],
    print_persistent_volume_claim,
);

pub(crate) static STORAGE_CLASS: Printer = printer(
    &[
        NAME,
        col("Provisioner", Str, d::STORAGE_CLASS_PROVISIONER),
        col("ReclaimPolicy", Str, d::STORAGE_CLASS_RECLAIM_POLICY),
        col(
            "VolumeBindingMode",
            Str,
            d::STORAGE_CLASS_VOLUME_BINDING_MODE,
        ),
        col(
            "AllowVolumeExpansion",
            Str,
            d::STORAGE_CLASS_ALLOW_VOLUME_EXPANSION,
        ),
        AGE,
    ],
    print_storage_class,
);

/// The driver name's documentation as upstream's beta type words it (no GA type in 1.33).
const VAC_DRIVER_NAME: &str = "Name of the CSI driver This field is immutable.";

pub(crate) static VOLUME_ATTRIBUTES_CLASS: Printer = printer(
    &[NAME, col("DriverName", Str, VAC_DRIVER_NAME), AGE],
    print_volume_attributes_class,
);

const CSI_DRIVER_COLUMNS: &[Column] = &[
    NAME,
    col("AttachRequired", Bool, d::CSI_DRIVER_ATTACH_REQUIRED),
    col("PodInfoOnMount", Bool, d::CSI_DRIVER_POD_INFO_ON_MOUNT),
    col("StorageCapacity", Bool, d::CSI_DRIVER_STORAGE_CAPACITY),
    col("TokenRequests", Str, d::CSI_DRIVER_TOKEN_REQUESTS),
    col("RequiresRepublish", Bool, d::CSI_DRIVER_REQUIRES_REPUBLISH),
    col("Modes", Str, d::CSI_DRIVER_MODES),
    AGE,
];

pub(crate) static CSI_DRIVER: Printer = printer(CSI_DRIVER_COLUMNS, print_csi_driver);

pub(crate) static CSI_NODE: Printer = printer(
    &[
        NAME,
        col(
            "Drivers",
            Int,
            "Drivers indicates the number of CSI drivers registered on the node",
        ),
        AGE,
    ],
    print_csi_node,
);

pub(crate) static CSI_STORAGE_CAPACITY: Printer = printer(
    &[
        NAME,
        col("StorageClassName", Str, d::CSI_STORAGE_CAPACITY_CLASS),
        col("Capacity", Str, d::CSI_STORAGE_CAPACITY_CAPACITY),
    ],
    print_csi_storage_capacity,
);

pub(crate) static VOLUME_ATTACHMENT: Printer = printer(
    &[
        NAME,
        Column {
            format: "name",
            ..col("Attacher", Str, d::VOLUME_ATTACHMENT_SPEC_ATTACHER)
        },
        col("PV", Str, d::VOLUME_ATTACHMENT_SOURCE_PV_NAME),
        col("Node", Str, d::VOLUME_ATTACHMENT_SPEC_NODE_NAME),
        col("Attached", Bool, d::VOLUME_ATTACHMENT_STATUS_ATTACHED),
        AGE,
    ],
    print_volume_attachment,
);

const BETA_STORAGE_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

/// `helper.GetAccessModesAsString`: RWO, ROX, RWX, RWOP in that order, each once.
fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| has(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// The beta annotation wins over `spec.storageClassName`, as `GetPersistentVolume(Claim)Class`.
fn storage_class(o: &Value) -> &str {
    at(o, "/metadata/annotations")
        .and_then(|a| a.get(BETA_STORAGE_CLASS_ANNOTATION))
        .and_then(Value::as_str)
        .unwrap_or_else(|| text(o, "/spec/storageClassName"))
}

fn phase_or_terminating(o: &Value) -> &str {
    if at(o, "/metadata/deletionTimestamp").is_some() {
        "Terminating"
    } else {
        text(o, "/status/phase")
    }
}

fn print_persistent_volume(c: &Ctx<'_>) -> Row {
    let o = c.obj;
    let claim = match at(o, "/spec/claimRef") {
        Some(r) => format!("{}/{}", text(r, "/namespace"), text(r, "/name")),
        None => String::new(),
    };
    vec![
        c.name(),
        json!(quantity(o, "/spec/capacity/storage")),
        json!(access_modes(list(o, "/spec/accessModes"))),
        json!(text(o, "/spec/persistentVolumeReclaimPolicy")),
        json!(phase_or_terminating(o)),
        json!(claim),
        json!(storage_class(o)),
        json!(opt_text(o, "/spec/volumeAttributesClassName").unwrap_or("<unset>")),
        json!(text(o, "/status/reason")),
        c.age(),
        json!(opt_text(o, "/spec/volumeMode").unwrap_or("<unset>")),
    ]
    .into()
}

fn print_persistent_volume_claim(c: &Ctx<'_>) -> Row {
    let o = c.obj;
    let volume = text(o, "/spec/volumeName");
    // Capacity and access modes are only shown once the claim is bound to a volume.
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(o, "/status/capacity/storage"),
            access_modes(list(o, "/status/accessModes")),
        )
    };
    vec![
        c.name(),
        json!(phase_or_terminating(o)),
        json!(volume),
        json!(capacity),
        json!(modes),
        json!(storage_class(o)),
        json!(opt_text(o, "/spec/volumeAttributesClassName").unwrap_or("<unset>")),
        c.age(),
        json!(opt_text(o, "/spec/volumeMode").unwrap_or("<unset>")),
    ]
    .into()
}

fn annotation_true(o: &Value, key: &str) -> bool {
    at(o, "/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
        == Some("true")
}

fn print_storage_class(c: &Ctx<'_>) -> Row {
    let o = c.obj;
    let mut name = text(o, "/metadata/name").to_string();
    if annotation_true(o, "storageclass.kubernetes.io/is-default-class")
        || annotation_true(o, "storageclass.beta.kubernetes.io/is-default-class")
    {
        name.push_str(" (default)");
    }
    vec![
        json!(name),
        json!(text(o, "/provisioner")),
        json!(opt_text(o, "/reclaimPolicy").unwrap_or("Delete")),
        json!(opt_text(o, "/volumeBindingMode").unwrap_or("Immediate")),
        json!(flag(o, "/allowVolumeExpansion")),
        c.age(),
    ]
    .into()
}

fn print_volume_attributes_class(c: &Ctx<'_>) -> Row {
    let o = c.obj;
    let mut name = text(o, "/metadata/name").to_string();
    if annotation_true(o, "storage.kubernetes.io/is-default-class") {
        name.push_str(" (default)");
    }
    vec![json!(name), json!(text(o, "/driverName")), c.age()].into()
}

fn print_csi_driver(c: &Ctx<'_>) -> Row {
    let o = c.obj;
    let modes: Vec<&str> = list(o, "/spec/volumeLifecycleModes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let token_requests = match at(o, "/spec/tokenRequests").and_then(Value::as_array) {
        Some(reqs) => reqs
            .iter()
            .map(|r| text(r, "/audience"))
            .collect::<Vec<_>>()
            .join(","),
        None => "<unset>".into(),
    };
    vec![
        c.name(),
        json!(opt_flag(o, "/spec/attachRequired").unwrap_or(true)),
        json!(flag(o, "/spec/podInfoOnMount")),
        json!(flag(o, "/spec/storageCapacity")),
        json!(token_requests),
        json!(flag(o, "/spec/requiresRepublish")),
        json!(if modes.is_empty() {
            "<none>".to_string()
        } else {
            modes.join(",")
        }),
        c.age(),
    ]
    .into()
}

fn print_csi_node(c: &Ctx<'_>) -> Row {
    vec![c.name(), json!(count(c.obj, "/spec/drivers")), c.age()].into()
}

fn print_csi_storage_capacity(c: &Ctx<'_>) -> Row {
    let capacity = match at(c.obj, "/capacity") {
        Some(_) => quantity(c.obj, "/capacity"),
        None => "<unset>".into(),
    };
    vec![
        c.name(),
        json!(text(c.obj, "/storageClassName")),
        json!(capacity),
    ]
    .into()
}

fn print_volume_attachment(c: &Ctx<'_>) -> Row {
    let o = c.obj;
    vec![
        c.name(),
        json!(text(o, "/spec/attacher")),
        json!(text(o, "/spec/source/persistentVolumeName")),
        json!(text(o, "/spec/nodeName")),
        json!(flag(o, "/status/attached")),
        c.age(),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ago, cells, texts};

    #[test]
    fn persistent_volume_cells() {
        let pv = json!({"metadata": {"name": "pv1", "creationTimestamp": ago(60)},
            "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "fast", "volumeMode": "Filesystem",
                     "claimRef": {"namespace": "default", "name": "data"}},
            "status": {"phase": "Bound"}});
        assert_eq!(
            texts("", "PersistentVolume", &pv),
            [
                "pv1",
                "10Gi",
                "RWO,RWX",
                "Retain",
                "Bound",
                "default/data",
                "fast",
                "<unset>",
                "",
                "60s",
                "Filesystem"
            ]
        );
    }

    #[test]
    fn claims_show_capacity_once_bound() {
        let pending = json!({"metadata": {"name": "data", "annotations": {"volume.beta.kubernetes.io/storage-class": "old"}},
            "spec": {"storageClassName": "fast", "resources": {"requests": {"storage": "1Gi"}}}, "status": {"phase": "Pending"}});
        assert_eq!(
            texts("", "PersistentVolumeClaim", &pending),
            [
                "data",
                "Pending",
                "",
                "",
                "",
                "old",
                "<unset>",
                "<unknown>",
                "<unset>"
            ]
        );
        let bound = json!({"metadata": {"name": "data"}, "spec": {"volumeName": "pv1", "storageClassName": "fast", "volumeMode": "Block"},
            "status": {"phase": "Bound", "capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOncePod"]}});
        assert_eq!(
            texts("", "PersistentVolumeClaim", &bound)[1..7],
            ["Bound", "pv1", "10Gi", "RWOP", "fast", "<unset>"]
        );
    }

    #[test]
    fn storage_class_defaults_and_marker() {
        let sc = json!({"metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path"});
        assert_eq!(
            texts("storage.k8s.io", "StorageClass", &sc)[..5],
            [
                "standard (default)",
                "rancher.io/local-path",
                "Delete",
                "Immediate",
                "false"
            ]
        );
        assert_eq!(
            cells("storage.k8s.io", "StorageClass", &sc)[4],
            json!(false)
        );
    }

    #[test]
    fn csi_objects_and_attachments() {
        let drv = json!({"metadata": {"name": "csi.example.com"}, "spec": {"podInfoOnMount": true,
            "tokenRequests": [{"audience": "a"}, {"audience": "b"}], "volumeLifecycleModes": ["Persistent", "Ephemeral"]}});
        assert_eq!(
            texts("storage.k8s.io", "CSIDriver", &drv)[1..7],
            [
                "true",
                "true",
                "false",
                "a,b",
                "false",
                "Persistent,Ephemeral"
            ]
        );
        let bare = json!({"metadata": {"name": "d"}});
        assert_eq!(
            texts("storage.k8s.io", "CSIDriver", &bare)[4..7],
            ["<unset>", "false", "<none>"]
        );
        let node = json!({"metadata": {"name": "n1"}, "spec": {"drivers": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(texts("storage.k8s.io", "CSINode", &node)[1], "2");
        let cap = json!({"metadata": {"name": "c"}, "storageClassName": "fast"});
        assert_eq!(
            texts("storage.k8s.io", "CSIStorageCapacity", &cap),
            ["c", "fast", "<unset>"]
        );
        let va = json!({"metadata": {"name": "va"}, "spec": {"attacher": "csi.example.com", "nodeName": "n1",
            "source": {"persistentVolumeName": "pv1"}}, "status": {"attached": true}});
        assert_eq!(
            texts("storage.k8s.io", "VolumeAttachment", &va)[1..5],
            ["csi.example.com", "pv1", "n1", "true"]
        );
    }
}
