//! Bootstrap signer (pkg/controller/bootstrap/bootstrapsigner.go) and token cleaner
//! (pkg/controller/bootstrap/tokencleaner.go).
//!
//! The signer keeps one `jws-kubeconfig-<token-id>` key in `kube-public/cluster-info` per
//! bootstrap token that is usable for signing and not expired, and removes the keys of tokens
//! that are gone, so a joining node can check the ConfigMap against the token it was given.
//! The cleaner deletes bootstrap token Secrets once their `expiration` has passed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use crate::context::{Context, drain, requeue_on_error};
use crate::error::Result;

const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
const CLUSTER_INFO: &str = "cluster-info";
const KUBECONFIG_KEY: &str = "kubeconfig";
const JWS_KEY_PREFIX: &str = "jws-kubeconfig-";

fn field(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .and_then(|v| String::from_utf8(v.0.clone()).ok())
}

/// Unix time a token Secret expires at, if it has a valid `expiration`.
fn expiration(secret: &Secret) -> Option<i64> {
    field(secret, "expiration")
        .and_then(|e| e.parse::<Timestamp>().ok())
        .map(|t| t.as_second())
}

/// Token id and secret of a bootstrap token Secret usable for signing at `now`.
fn signing_token(secret: &Secret, now: i64) -> Option<(String, String)> {
    if secret.type_.as_deref() != Some(SECRET_TYPE) || secret.metadata.deletion_timestamp.is_some()
    {
        return None;
    }
    if field(secret, "usage-bootstrap-signing").as_deref() != Some("true") {
        return None;
    }
    if expiration(secret).is_some_and(|t| t <= now) {
        return None;
    }
    let id = field(secret, "token-id")?;
    // Upstream ignores Secrets whose name does not match their token id.
    if secret.name_any() != format!("bootstrap-token-{id}") {
        return None;
    }
    Some((id, field(secret, "token-secret")?))
}

/// The signature keys `cluster-info` should have for `kubeconfig` given the tokens.
pub fn desired_signatures(
    kubeconfig: &str,
    secrets: &[Secret],
    now: i64,
) -> BTreeMap<String, String> {
    secrets
        .iter()
        .filter_map(|s| signing_token(s, now))
        .map(|(id, secret)| {
            let jws = rkube_pki::join::detached_signature(kubeconfig, &id, &secret);
            (format!("{JWS_KEY_PREFIX}{id}"), jws)
        })
        .collect()
}

/// Runs the bootstrap signer.
pub async fn run_signer(ctx: Context) -> Result<()> {
    let client = ctx.client.clone();
    let cluster_info = Api::<ConfigMap>::namespaced(client.clone(), "kube-public");
    let secrets = Api::<Secret>::namespaced(client, "kube-system");
    let stream = Controller::new(
        cluster_info,
        watcher::Config::default().fields(&format!("metadata.name={CLUSTER_INFO}")),
    )
    .watches(secrets, watcher::Config::default(), |s| {
        (s.type_.as_deref() == Some(SECRET_TYPE))
            .then(|| ObjectRef::new(CLUSTER_INFO).within("kube-public"))
    })
    .run(sign, requeue_on_error, Arc::new(ctx));
    drain("bootstrapsigner", stream).await;
    Ok(())
}

async fn sign(cm: Arc<ConfigMap>, ctx: Arc<Context>) -> Result<Action> {
    let Some(kubeconfig) = cm
        .data
        .as_ref()
        .and_then(|d| d.get(KUBECONFIG_KEY))
        .cloned()
    else {
        return Ok(Action::await_change());
    };
    let secrets = Api::<Secret>::namespaced(ctx.client.clone(), "kube-system")
        .list(&ListParams::default())
        .await?
        .items;
    let now = Timestamp::now().as_second();
    let desired = desired_signatures(&kubeconfig, &secrets, now);
    let mut data = cm.data.clone().unwrap_or_default();
    let current: BTreeMap<String, String> = data
        .iter()
        .filter(|(k, _)| k.starts_with(JWS_KEY_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // Signatures of tokens that expire are dropped then: look again at the earliest expiry.
    let next_expiry = secrets
        .iter()
        .filter(|s| signing_token(s, now).is_some())
        .filter_map(expiration)
        .min();
    let action = match next_expiry {
        Some(t) => Action::requeue(Duration::from_secs((t - now).max(1) as u64)),
        None => Action::await_change(),
    };
    if current == desired {
        return Ok(action);
    }
    data.retain(|k, _| !k.starts_with(JWS_KEY_PREFIX));
    data.extend(desired);
    let mut updated = (*cm).clone();
    updated.data = Some(data);
    let api = Api::<ConfigMap>::namespaced(ctx.client.clone(), "kube-public");
    api.replace(CLUSTER_INFO, &PostParams::default(), &updated)
        .await?;
    tracing::info!("updated the signatures of kube-public/cluster-info");
    Ok(action)
}

/// Runs the token cleaner.
pub async fn run_cleaner(ctx: Context) -> Result<()> {
    let secrets = Api::<Secret>::namespaced(ctx.client.clone(), "kube-system");
    let stream = Controller::new(secrets, watcher::Config::default()).run(
        clean,
        requeue_on_error,
        Arc::new(ctx),
    );
    drain("tokencleaner", stream).await;
    Ok(())
}

async fn clean(secret: Arc<Secret>, ctx: Arc<Context>) -> Result<Action> {
    if secret.type_.as_deref() != Some(SECRET_TYPE) || secret.metadata.deletion_timestamp.is_some()
    {
        return Ok(Action::await_change());
    }
    let Some(expires) = expiration(&secret) else {
        return Ok(Action::await_change());
    };
    let now = Timestamp::now().as_second();
    if expires > now {
        return Ok(Action::requeue(Duration::from_secs((expires - now) as u64)));
    }
    tracing::info!(secret = %secret.name_any(), "deleting expired bootstrap token");
    let api = Api::<Secret>::namespaced(ctx.client.clone(), "kube-system");
    let precondition = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: secret.metadata.uid.clone(),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(&secret.name_any(), &precondition).await {
        Err(kube::Error::Api(s)) if matches!(s.code, 404 | 409) => {}
        other => {
            other?;
        }
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn token(id: &str, secret: &str, signing: bool, expiration: Option<&str>) -> Secret {
        let mut data = BTreeMap::new();
        let mut put = |k: &str, v: &str| {
            data.insert(k.to_string(), ByteString(v.as_bytes().to_vec()));
        };
        put("token-id", id);
        put("token-secret", secret);
        put(
            "usage-bootstrap-signing",
            if signing { "true" } else { "false" },
        );
        if let Some(e) = expiration {
            put("expiration", e);
        }
        Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(format!("bootstrap-token-{id}")),
                ..Default::default()
            },
            type_: Some(SECRET_TYPE.into()),
            data: Some(data),
            ..Default::default()
        }
    }

    #[test]
    fn signs_with_each_valid_signing_token_only() {
        let now = "2026-01-01T00:00:00Z"
            .parse::<Timestamp>()
            .expect("time")
            .as_second();
        let secrets = vec![
            token("aaaaaa", "0123456789abcdef", true, None),
            token("bbbbbb", "0123456789abcdef", false, None),
            token(
                "cccccc",
                "0123456789abcdef",
                true,
                Some("2025-12-31T00:00:00Z"),
            ),
            token(
                "dddddd",
                "0123456789abcdef",
                true,
                Some("2026-01-02T00:00:00Z"),
            ),
        ];
        let got = desired_signatures("cfg", &secrets, now);
        assert_eq!(
            got.keys().cloned().collect::<Vec<_>>(),
            vec!["jws-kubeconfig-aaaaaa", "jws-kubeconfig-dddddd"]
        );
        assert!(rkube_pki::join::verify_detached_signature(
            &got["jws-kubeconfig-aaaaaa"],
            "cfg",
            "aaaaaa",
            "0123456789abcdef"
        ));
    }

    #[test]
    fn a_secret_named_for_another_token_is_ignored() {
        let mut s = token("aaaaaa", "0123456789abcdef", true, None);
        s.metadata.name = Some("bootstrap-token-zzzzzz".into());
        assert!(desired_signatures("cfg", &[s], 0).is_empty());
    }
}
