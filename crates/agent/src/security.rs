//! A container's effective security settings (its securityContext over the pod's, as
//! upstream's `determineEffectiveSecurityContext`) and the runAsNonRoot check the kubelet makes
//! before creating the container (`verifyRunAsNonRoot`).

use k8s_openapi::api::core::v1::{Container, Pod};
use kube::ResourceExt;

use crate::runtime::{ContainerSecurity, ImageUser};

/// The settings the runtime applies to `container`.
pub fn effective(pod: &Pod, container: &Container) -> ContainerSecurity {
    let pod_context = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let own = container.security_context.as_ref();
    let capabilities = own.and_then(|c| c.capabilities.as_ref());
    let privileged = own.and_then(|c| c.privileged).unwrap_or(false);
    ContainerSecurity {
        run_as_user: own
            .and_then(|c| c.run_as_user)
            .or(pod_context.and_then(|p| p.run_as_user)),
        run_as_group: own
            .and_then(|c| c.run_as_group)
            .or(pod_context.and_then(|p| p.run_as_group)),
        supplemental_groups: pod_context
            .and_then(|p| p.supplemental_groups.clone())
            .unwrap_or_default(),
        read_only_root_filesystem: own
            .and_then(|c| c.read_only_root_filesystem)
            .unwrap_or(false),
        privileged,
        add_capabilities: capabilities.and_then(|c| c.add.clone()).unwrap_or_default(),
        drop_capabilities: capabilities
            .and_then(|c| c.drop.clone())
            .unwrap_or_default(),
        // allowPrivilegeEscalation defaults to true; privileged containers may always escalate.
        no_new_privileges: !privileged
            && own.and_then(|c| c.allow_privilege_escalation) == Some(false),
    }
}

/// `runAsNonRoot` from the container, else the pod.
fn run_as_non_root(pod: &Pod, container: &Container) -> bool {
    container
        .security_context
        .as_ref()
        .and_then(|c| c.run_as_non_root)
        .or(pod
            .spec
            .as_ref()
            .and_then(|s| s.security_context.as_ref())
            .and_then(|p| p.run_as_non_root))
        .unwrap_or(false)
}

/// The kubelet's refusal to run a `runAsNonRoot` container as root (a
/// `CreateContainerConfigError`).
pub fn verify_run_as_non_root(
    pod: &Pod,
    container: &Container,
    settings: &ContainerSecurity,
    image: &ImageUser,
) -> Result<(), String> {
    if !run_as_non_root(pod, container) {
        return Ok(());
    }
    let pod_ref = format!(
        "{}_{}({})",
        pod.name_any(),
        pod.namespace().unwrap_or_default(),
        pod.uid().unwrap_or_default()
    );
    let name = &container.name;
    match (settings.run_as_user, image.uid) {
        (Some(0), _) => Err(format!(
            "container's runAsUser breaks non-root policy (pod: \"{pod_ref}\", container: {name})"
        )),
        (Some(_), _) => Ok(()),
        (None, Some(0)) => Err(format!(
            "container has runAsNonRoot and image will run as root (pod: \"{pod_ref}\", container: {name})"
        )),
        (None, Some(_)) => Ok(()),
        (None, None) if !image.username.is_empty() => Err(format!(
            "container has runAsNonRoot and image has non-numeric user ({}), cannot verify user is non-root (pod: \"{pod_ref}\", container: {name})",
            image.username
        )),
        (None, None) => Err(format!(
            "container has runAsNonRoot and image will run as root (pod: \"{pod_ref}\", container: {name})"
        )),
    }
}

/// Whether any container of the pod is privileged.
pub fn any_privileged(pod: &Pod) -> bool {
    let spec = pod.spec.as_ref();
    spec.map(|s| s.containers.iter())
        .into_iter()
        .flatten()
        .chain(
            spec.and_then(|s| s.init_containers.as_deref())
                .unwrap_or_default(),
        )
        .any(|c| {
            c.security_context
                .as_ref()
                .and_then(|s| s.privileged)
                .unwrap_or(false)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(spec: serde_json::Value) -> Pod {
        match serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": spec
        })) {
            Ok(p) => p,
            Err(e) => unreachable!("fixture: {e}"),
        }
    }

    #[test]
    fn container_settings_override_the_pod_and_non_root_is_checked() {
        let p = pod(serde_json::json!({
            "securityContext": {"runAsUser": 1000, "runAsGroup": 3000, "runAsNonRoot": true, "supplementalGroups": [4000]},
            "containers": [{"name": "c", "securityContext": {"runAsUser": 2000, "allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"]}}}]
        }));
        let c = p
            .spec
            .as_ref()
            .map(|s| s.containers[0].clone())
            .unwrap_or_default();
        let s = effective(&p, &c);
        assert_eq!((s.run_as_user, s.run_as_group), (Some(2000), Some(3000)));
        assert_eq!(s.supplemental_groups, vec![4000]);
        assert!(s.no_new_privileges);
        assert_eq!(s.drop_capabilities, vec!["ALL".to_string()]);
        assert_eq!(
            verify_run_as_non_root(&p, &c, &s, &ImageUser::default()),
            Ok(())
        );

        let root = ContainerSecurity::default();
        assert_eq!(
            verify_run_as_non_root(&p, &c, &root, &ImageUser::default()),
            Err("container has runAsNonRoot and image will run as root (pod: \"p_ns(u)\", container: c)".into())
        );
        let as_zero = ContainerSecurity {
            run_as_user: Some(0),
            ..Default::default()
        };
        assert_eq!(
            verify_run_as_non_root(&p, &c, &as_zero, &ImageUser::default()),
            Err(
                "container's runAsUser breaks non-root policy (pod: \"p_ns(u)\", container: c)"
                    .into()
            )
        );
        let named = ImageUser {
            uid: None,
            username: "app".into(),
        };
        assert!(
            verify_run_as_non_root(&p, &c, &root, &named)
                .is_err_and(|e| e.contains("non-numeric user (app)"))
        );
    }
}
