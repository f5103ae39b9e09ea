//! Configuration objects: config maps, secrets, service accounts and resource quotas.

use serde_json::json;

use crate::format::{count, map, quantity, text};
use crate::{
    AGE, CellType::String as Str, Ctx, NAME, Printer, Row, col, descriptions as d, printer,
};

pub(crate) static CONFIG_MAP: Printer = printer(
    &[NAME, col("Data", Str, d::CONFIGMAP_DATA), AGE],
    print_config_map,
);

pub(crate) static SECRET: Printer = printer(
    &[
        NAME,
        col("Type", Str, d::SECRET_TYPE),
        col("Data", Str, d::SECRET_DATA),
        AGE,
    ],
    print_secret,
);

pub(crate) static SERVICE_ACCOUNT: Printer = printer(
    &[NAME, col("Secrets", Str, d::SERVICE_ACCOUNT_SECRETS), AGE],
    print_service_account,
);

pub(crate) static RESOURCE_QUOTA: Printer = printer(
    &[
        NAME,
        col(
            "Request",
            Str,
            "Request represents a minimum amount of cpu/memory that a container may consume.",
        ),
        col(
            "Limit",
            Str,
            "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
        ),
        AGE,
    ],
    print_resource_quota,
);

fn print_config_map(c: &Ctx<'_>) -> Row {
    vec![
        c.name(),
        json!(count(c.obj, "/data") + count(c.obj, "/binaryData")),
        c.age(),
    ]
    .into()
}

fn print_secret(c: &Ctx<'_>) -> Row {
    vec![
        c.name(),
        json!(text(c.obj, "/type")),
        json!(count(c.obj, "/data")),
        c.age(),
    ]
    .into()
}

fn print_service_account(c: &Ctx<'_>) -> Row {
    vec![c.name(), json!(count(c.obj, "/secrets")), c.age()].into()
}

/// `resource: used/hard` for every hard limit, sorted by name; `limits.*` in the Limit column.
fn print_resource_quota(c: &Ctx<'_>) -> Row {
    let mut names: Vec<&String> = map(c.obj, "/status/hard")
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
        .collect();
    names.sort();
    let mut requests = Vec::new();
    let mut limits = Vec::new();
    for name in names {
        let used = quantity(c.obj, &format!("/status/used/{}", escape_pointer(name)));
        let hard = quantity(c.obj, &format!("/status/hard/{}", escape_pointer(name)));
        let entry = format!("{name}: {used}/{hard}");
        let mut pieces = name.split('.');
        if pieces.next() == Some("limits") && pieces.next().is_some() {
            limits.push(entry);
        } else {
            requests.push(entry);
        }
    }
    vec![
        c.name(),
        json!(requests.join(", ")),
        json!(limits.join(", ")),
        c.age(),
    ]
    .into()
}

/// A map key as one JSON pointer segment (resource names may contain `/`).
fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use crate::testing::{ago, cells, texts};
    use serde_json::json;

    #[test]
    fn config_maps_secrets_service_accounts() {
        let cm = json!({"metadata": {"name": "cfg", "creationTimestamp": ago(7)}, "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
        assert_eq!(texts("", "ConfigMap", &cm), ["cfg", "3", "7s"]);
        assert_eq!(cells("", "ConfigMap", &cm)[1], json!(3));
        let empty = json!({"metadata": {"name": "e"}});
        assert_eq!(texts("", "ConfigMap", &empty), ["e", "0", "<unknown>"]);
        let secret = json!({"metadata": {"name": "tls"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}});
        assert_eq!(
            texts("", "Secret", &secret),
            ["tls", "kubernetes.io/tls", "2", "<unknown>"]
        );
        let sa = json!({"metadata": {"name": "default"}});
        assert_eq!(
            texts("", "ServiceAccount", &sa),
            ["default", "0", "<unknown>"]
        );
    }

    #[test]
    fn resource_quota_splits_requests_and_limits() {
        let q = json!({"metadata": {"name": "q"}, "status": {
            "hard": {"pods": "10", "requests.cpu": "1", "limits.memory": "2Gi", "limits.cpu": "2", "requests.nvidia.com/gpu": "1"},
            "used": {"pods": "3", "requests.cpu": "500m", "limits.cpu": "1"}}});
        assert_eq!(
            texts("", "ResourceQuota", &q)[1..3],
            [
                "pods: 3/10, requests.cpu: 500m/1, requests.nvidia.com/gpu: 0/1",
                "limits.cpu: 1/2, limits.memory: 0/2Gi"
            ]
        );
    }
}
