//! ServiceAccount controller (pkg/controller/serviceaccount/serviceaccounts_controller.go) and
//! root-ca-cert-publisher (pkg/controller/certificates/rootcacertpublisher/publisher.go): every
//! active namespace gets the `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap, and
//! gets them back when they are deleted.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use crate::context::{Context, drain, requeue_on_error};
use crate::error::Result;

/// The ServiceAccount every namespace gets.
const DEFAULT_SA: &str = "default";
/// The ConfigMap carrying the cluster CA.
const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";
/// Upstream's description annotation on that ConfigMap.
const ROOT_CA_DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

fn namespace_of<K: Resource>(obj: &K, name: &str) -> Option<ObjectRef<Namespace>> {
    (obj.meta().name.as_deref() == Some(name))
        .then(|| ObjectRef::new(obj.meta().namespace.as_deref().unwrap_or_default()))
}

fn active(ns: &Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_none()
        && ns.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Terminating")
}

/// Creating in a namespace that started terminating meanwhile, or that exists already, is fine.
fn ignore_benign(r: std::result::Result<(), kube::Error>) -> Result<()> {
    match r {
        Err(kube::Error::Api(s)) if matches!(s.code, 403 | 404 | 409) => Ok(()),
        other => other.map_err(Into::into),
    }
}

/// Runs the ServiceAccount controller.
pub async fn run_serviceaccounts(ctx: Context) -> Result<()> {
    let client = ctx.client.clone();
    let stream = Controller::new(
        Api::<Namespace>::all(client.clone()),
        watcher::Config::default(),
    )
    .watches(
        Api::<ServiceAccount>::all(client),
        watcher::Config::default(),
        |sa| namespace_of(&sa, DEFAULT_SA),
    )
    .run(
        ensure_default_service_account,
        requeue_on_error,
        Arc::new(ctx),
    );
    drain("serviceaccount", stream).await;
    Ok(())
}

async fn ensure_default_service_account(ns: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action> {
    if !active(&ns) {
        return Ok(Action::await_change());
    }
    let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &ns.name_any());
    if api.get_opt(DEFAULT_SA).await?.is_none() {
        let sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some(DEFAULT_SA.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        ignore_benign(api.create(&PostParams::default(), &sa).await.map(|_| ()))?;
    }
    Ok(Action::await_change())
}

/// Runs the root CA publisher.
pub async fn run_root_ca_publisher(ctx: Context) -> Result<()> {
    let client = ctx.client.clone();
    let stream = Controller::new(
        Api::<Namespace>::all(client.clone()),
        watcher::Config::default(),
    )
    .watches(
        Api::<ConfigMap>::all(client),
        watcher::Config::default(),
        |cm| namespace_of(&cm, ROOT_CA_CONFIGMAP),
    )
    .run(ensure_root_ca, requeue_on_error, Arc::new(ctx));
    drain("root-ca-cert-publisher", stream).await;
    Ok(())
}

async fn ensure_root_ca(ns: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action> {
    if !active(&ns) || ctx.root_ca_pem.is_empty() {
        return Ok(Action::await_change());
    }
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns.name_any());
    let data = [("ca.crt".to_string(), ctx.root_ca_pem.clone())].into();
    match api.get_opt(ROOT_CA_CONFIGMAP).await? {
        None => {
            let cm = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(ROOT_CA_CONFIGMAP.into()),
                    annotations: Some(
                        [(
                            "kubernetes.io/description".to_string(),
                            ROOT_CA_DESCRIPTION.to_string(),
                        )]
                        .into(),
                    ),
                    ..Default::default()
                },
                data: Some(data),
                ..Default::default()
            };
            ignore_benign(api.create(&PostParams::default(), &cm).await.map(|_| ()))?;
        }
        Some(mut cm) if cm.data.as_ref() != Some(&data) => {
            cm.data = Some(data);
            cm.metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(
                    "kubernetes.io/description".into(),
                    ROOT_CA_DESCRIPTION.into(),
                );
            ignore_benign(
                api.replace(ROOT_CA_CONFIGMAP, &PostParams::default(), &cm)
                    .await
                    .map(|_| ()),
            )?;
        }
        Some(_) => {}
    }
    Ok(Action::await_change())
}
