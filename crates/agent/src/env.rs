//! A container's environment as the kubelet builds it (`makeEnvironmentVariables`): service
//! links first (`KUBERNETES_SERVICE_HOST` … for the `kubernetes` Service, and every Service of
//! the pod's namespace unless `enableServiceLinks: false`), then `envFrom` (ConfigMaps and
//! Secrets, with prefix), then `env` (value with `$(VAR)` expansion, configMapKeyRef,
//! secretKeyRef, fieldRef, resourceFieldRef); later definitions win.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod, ResourceFieldSelector, Service};
use kube::ResourceExt;

use crate::objects::PodObjects;

/// What the node offers a container without limits (`resourceFieldRef` on `limits.*` falls
/// back to the node's allocatable, as upstream).
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeAllocatable {
    pub cpu_milli: i64,
    pub memory_bytes: i64,
}

/// Expands `$(VAR)` references to variables defined earlier (`$$` escapes a `$`), as the kubelet does.
pub fn expand(value: &str, defined: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('(')
            && let Some(end) = body.find(')')
        {
            let name = &body[..end];
            match defined.iter().rev().find(|(k, _)| k == name) {
                Some((_, v)) => out.push_str(v),
                None => out.push_str(&rest[i..i + 2 + end + 1]),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// `key="value"` lines, sorted by key, as the downward API renders labels and annotations.
fn format_map(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The value of a `fieldRef` path for the pod (env and downward API volumes).
pub fn field_value(pod: &Pod, path: &str, pod_ip: &str, host_ip: &str) -> Option<String> {
    let meta_key = |prefix: &str, map: &BTreeMap<String, String>| {
        let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(map.get(key).cloned().unwrap_or_default())
    };
    match path {
        "metadata.name" => Some(pod.name_any()),
        "metadata.namespace" => pod.namespace(),
        "metadata.uid" => pod.uid(),
        "metadata.labels" => Some(format_map(pod.labels())),
        "metadata.annotations" => Some(format_map(pod.annotations())),
        "spec.nodeName" => pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        "spec.serviceAccountName" => pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone()),
        "status.podIP" | "status.podIPs" => Some(pod_ip.to_string()),
        "status.hostIP" | "status.hostIPs" => Some(host_ip.to_string()),
        _ => meta_key("metadata.labels['", pod.labels())
            .or_else(|| meta_key("metadata.annotations['", pod.annotations())),
    }
}

/// The value of a `resourceFieldRef` (`limits.cpu`, `requests.memory` …) of `container`,
/// divided by the divisor and rounded up as upstream (`ExtractContainerResourceValue`).
pub fn resource_value(
    selector: &ResourceFieldSelector,
    container: &Container,
    node: NodeAllocatable,
) -> Result<String, String> {
    let resources = container.resources.as_ref();
    let (kind, resource) = selector
        .resource
        .split_once('.')
        .ok_or_else(|| format!("unsupported container resource : {}", selector.resource))?;
    let list = match kind {
        "limits" => resources.and_then(|r| r.limits.as_ref()),
        "requests" => resources.and_then(|r| r.requests.as_ref()),
        _ => {
            return Err(format!(
                "unsupported container resource : {}",
                selector.resource
            ));
        }
    };
    let quantity = list.and_then(|l| l.get(resource)).map(|q| q.0.clone());
    let divisor = selector
        .divisor
        .as_ref()
        .map(|d| d.0.as_str())
        .unwrap_or("");
    let ceil_div = |n: i64, d: i64| if d <= 0 { n } else { (n + d - 1).div_euclid(d) };
    match resource {
        "cpu" => {
            let milli = match quantity {
                Some(q) => rkube_apimachinery::quantity::milli_value(&q).unwrap_or(0),
                None if kind == "limits" => node.cpu_milli,
                None => 0,
            };
            let divisor = match divisor {
                "" => 1000,
                d => rkube_apimachinery::quantity::milli_value(d).unwrap_or(1000),
            };
            Ok(ceil_div(milli, divisor).to_string())
        }
        "memory" | "ephemeral-storage" => {
            let bytes = match quantity {
                Some(q) => rkube_apimachinery::quantity::value(&q).unwrap_or(0),
                None if kind == "limits" && resource == "memory" => node.memory_bytes,
                None => 0,
            };
            let divisor = match divisor {
                "" => 1,
                d => rkube_apimachinery::quantity::value(d).unwrap_or(1),
            };
            Ok(ceil_div(bytes, divisor).to_string())
        }
        _ => Err(format!(
            "unsupported container resource : {}",
            selector.resource
        )),
    }
}

/// The docker-link style variables of one Service (`<NAME>_SERVICE_HOST`, `<NAME>_PORT_80_TCP`
/// …), as upstream's `envvars.FromServices`; none for headless Services.
pub fn service_link_vars(service: &Service) -> Vec<(String, String)> {
    let Some(spec) = service.spec.as_ref() else {
        return Vec::new();
    };
    let ip = spec.cluster_ip.clone().unwrap_or_default();
    if ip.is_empty() || ip == "None" {
        return Vec::new();
    }
    let ports = spec.ports.as_deref().unwrap_or_default();
    let Some(first) = ports.first() else {
        return Vec::new();
    };
    let prefix = service.name_any().to_uppercase().replace('-', "_");
    let protocol = |p: &k8s_openapi::api::core::v1::ServicePort| {
        p.protocol.clone().unwrap_or_else(|| "TCP".into())
    };
    let mut vars = vec![
        (format!("{prefix}_SERVICE_HOST"), ip.clone()),
        (format!("{prefix}_SERVICE_PORT"), first.port.to_string()),
    ];
    for port in ports {
        if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
            let name = name.to_uppercase().replace('-', "_");
            vars.push((
                format!("{prefix}_SERVICE_PORT_{name}"),
                port.port.to_string(),
            ));
        }
    }
    vars.push((
        format!("{prefix}_PORT"),
        format!("{}://{ip}:{}", protocol(first).to_lowercase(), first.port),
    ));
    for port in ports {
        let proto = protocol(port);
        let base = format!("{prefix}_PORT_{}_{}", port.port, proto.to_uppercase());
        vars.push((
            base.clone(),
            format!("{}://{ip}:{}", proto.to_lowercase(), port.port),
        ));
        vars.push((format!("{base}_PROTO"), proto.to_lowercase()));
        vars.push((format!("{base}_PORT"), port.port.to_string()));
        vars.push((format!("{base}_ADDR"), ip.clone()));
    }
    vars
}

/// The service-link variables the pod's containers get. A static pod starts without them when
/// the Services cannot be read (the API server may be down): upstream waits for the Service
/// informer only for pods from the API (`makeEnvironmentVariables`).
async fn service_env(objects: &dyn PodObjects, pod: &Pod) -> Result<Vec<(String, String)>, String> {
    match linked_services(objects, pod).await {
        Err(message) if crate::static_pods::is_static_pod(pod) => {
            tracing::info!(pod = %pod.name_any(), error = %message, "static pod started without service links");
            Ok(Vec::new())
        }
        other => other,
    }
}

async fn linked_services(objects: &dyn PodObjects, pod: &Pod) -> Result<Vec<(String, String)>, String> {
    let namespace = pod.namespace().unwrap_or_default();
    let links = pod
        .spec
        .as_ref()
        .and_then(|s| s.enable_service_links)
        .unwrap_or(true);
    let mut services = Vec::new();
    if links {
        services = objects.services(&namespace).await.map_err(|e| e.message)?;
    }
    if namespace != "default" || !links {
        // The API server's own Service is always linked, from the default namespace.
        let master = objects.services("default").await.map_err(|e| e.message)?;
        services.extend(master.into_iter().filter(|s| s.name_any() == "kubernetes"));
    }
    // Sorted by name so a later Service's variables override an earlier one's consistently.
    services.sort_by_key(|s| s.name_any());
    Ok(services.iter().flat_map(service_link_vars).collect())
}

/// The environment of `container`; the error is the kubelet's message for a
/// `CreateContainerConfigError` (`configmap "x" not found`, `couldn't find key …`).
pub async fn container_env(
    objects: &dyn PodObjects,
    pod: &Pod,
    container: &Container,
    pod_ip: &str,
    host_ip: &str,
    node: NodeAllocatable,
) -> Result<Vec<(String, String)>, String> {
    let namespace = pod.namespace().unwrap_or_default();
    let mut env: Vec<(String, String)> = service_env(objects, pod).await?;
    let set = |env: &mut Vec<(String, String)>, name: String, value: String| {
        env.retain(|(k, _)| *k != name);
        env.push((name, value));
    };
    for from in container.env_from.as_deref().unwrap_or_default() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            let optional = r.optional.unwrap_or(false);
            match objects.config_map(&namespace, &r.name).await {
                Ok(cm) => {
                    for (k, v) in cm.data.unwrap_or_default() {
                        set(&mut env, format!("{prefix}{k}"), v);
                    }
                }
                Err(e) if e.not_found && optional => {}
                Err(e) => return Err(e.message),
            }
        }
        if let Some(r) = &from.secret_ref {
            let optional = r.optional.unwrap_or(false);
            match objects.secret(&namespace, &r.name).await {
                Ok(secret) => {
                    for (k, v) in secret.data.unwrap_or_default() {
                        set(
                            &mut env,
                            format!("{prefix}{k}"),
                            String::from_utf8_lossy(&v.0).into_owned(),
                        );
                    }
                }
                Err(e) if e.not_found && optional => {}
                Err(e) => return Err(e.message),
            }
        }
    }
    for var in container.env.as_deref().unwrap_or_default() {
        let value = match (&var.value, &var.value_from) {
            (Some(v), _) => Some(expand(v, &env)),
            (None, Some(from)) => {
                if let Some(f) = &from.field_ref {
                    Some(
                        field_value(pod, &f.field_path, pod_ip, host_ip)
                            .ok_or_else(|| format!("unsupported fieldPath: {}", f.field_path))?,
                    )
                } else if let Some(r) = &from.resource_field_ref {
                    let target = match r.container_name.as_deref() {
                        None | Some("") => container,
                        Some(name) => pod
                            .spec
                            .as_ref()
                            .and_then(|s| s.containers.iter().find(|c| c.name == name))
                            .ok_or_else(|| format!("container {name} not found"))?,
                    };
                    Some(resource_value(r, target, node)?)
                } else if let Some(r) = &from.config_map_key_ref {
                    let optional = r.optional.unwrap_or(false);
                    match objects.config_map(&namespace, &r.name).await {
                        Ok(cm) => match cm.data.unwrap_or_default().remove(&r.key) {
                            Some(v) => Some(v),
                            None if optional => None,
                            None => {
                                return Err(format!(
                                    "couldn't find key {} in ConfigMap {namespace}/{}",
                                    r.key, r.name
                                ));
                            }
                        },
                        Err(e) if e.not_found && optional => None,
                        Err(e) => return Err(e.message),
                    }
                } else if let Some(r) = &from.secret_key_ref {
                    let optional = r.optional.unwrap_or(false);
                    match objects.secret(&namespace, &r.name).await {
                        Ok(s) => match s.data.unwrap_or_default().remove(&r.key) {
                            Some(v) => Some(String::from_utf8_lossy(&v.0).into_owned()),
                            None if optional => None,
                            None => {
                                return Err(format!(
                                    "couldn't find key {} in Secret {namespace}/{}",
                                    r.key, r.name
                                ));
                            }
                        },
                        Err(e) if e.not_found && optional => None,
                        Err(e) => return Err(e.message),
                    }
                } else {
                    Some(String::new())
                }
            }
            (None, None) => Some(String::new()),
        };
        if let Some(value) = value {
            set(&mut env, var.name.clone(), value);
        }
    }
    Ok(env)
}
