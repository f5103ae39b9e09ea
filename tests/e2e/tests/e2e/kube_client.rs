//! kube-rs against rkube: list, watch, create, merge patch.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::cluster;

pub async fn client(kubeconfig: &std::path::Path) -> kube::Client {
    let kc = Kubeconfig::read_from(kubeconfig).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await.unwrap();
    kube::Client::try_from(cfg).unwrap()
}

#[tokio::test]
async fn kube_rs_list_watch_create_merge_patch() {
    let c = cluster();
    let client = client(&c.kubeconfig).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    let listed = cms.list(&ListParams::default()).await.unwrap();
    let rv = listed.metadata.resource_version.clone().unwrap();

    // Only this test's object: the root CA publisher may add kube-root-ca.crt meanwhile.
    let mut watch = cms.watch(&WatchParams::default().fields("metadata.name=from-kube-rs").timeout(10), &rv).await.unwrap().boxed();

    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("from-kube-rs".into());
    cm.data = Some([("k".to_string(), "v".to_string())].into());
    let created = cms.create(&PostParams::default(), &cm).await.unwrap();
    assert!(created.metadata.uid.is_some());

    let patched = cms
        .patch("from-kube-rs", &PatchParams::default(), &Patch::Merge(serde_json::json!({"data": {"k": "v2", "new": "x"}})))
        .await
        .unwrap();
    assert_eq!(patched.data.as_ref().unwrap()["k"], "v2");
    assert_eq!(patched.data.as_ref().unwrap()["new"], "x");

    let mut kinds = Vec::new();
    while let Some(ev) = watch.try_next().await.unwrap() {
        match ev {
            WatchEvent::Added(o) => kinds.push(("ADDED", o.data.unwrap()["k"].clone())),
            WatchEvent::Modified(o) => kinds.push(("MODIFIED", o.data.unwrap()["k"].clone())),
            other => panic!("unexpected event {other:?}"),
        }
        if kinds.len() == 2 {
            break;
        }
    }
    assert_eq!(kinds, vec![("ADDED", "v".to_string()), ("MODIFIED", "v2".to_string())]);

    // Errors arrive as Status objects kube-rs understands.
    let err = cms.get("missing").await.unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 404);
            assert_eq!(s.reason, "NotFound");
            assert_eq!(s.message, "configmaps \"missing\" not found");
        }
        other => panic!("expected an API error, got {other:?}"),
    }
}
