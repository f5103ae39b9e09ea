//! Durability: a create acknowledged with 2xx survives `kill -9` of the server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};

use crate::cluster;
use crate::kube_client::client;

#[test]
fn acknowledged_creates_survive_kill_9() {
    let mut c = cluster();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let acked: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
    let kubeconfig = c.kubeconfig.clone();
    let writers = {
        let acked = acked.clone();
        rt.spawn(async move {
            let client = client(&kubeconfig).await;
            let mut tasks = Vec::new();
            for w in 0..8 {
                let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
                let acked = acked.clone();
                tasks.push(tokio::spawn(async move {
                    for i in 0.. {
                        let mut cm = ConfigMap::default();
                        cm.metadata.name = Some(format!("crash-{w}-{i}"));
                        cm.data = Some([("payload".to_string(), "x".repeat(512))].into());
                        match cms.create(&PostParams::default(), &cm).await {
                            Ok(o) => {
                                let rv = o.metadata.resource_version.unwrap().parse().unwrap();
                                acked.lock().unwrap().push((format!("crash-{w}-{i}"), rv));
                            }
                            Err(_) => return, // the server is gone
                        }
                    }
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        })
    };
    // Let writes flow, then pull the plug mid-stream.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while acked.lock().unwrap().len() < 300 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    c.kill9().unwrap();
    rt.block_on(async { let _ = tokio::time::timeout(Duration::from_secs(10), writers).await; });
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 300, "only {} creates were acknowledged before the kill", acked.len());
    let max_rv = acked.iter().map(|(_, rv)| *rv).max().unwrap();

    c.restart().unwrap();
    rt.block_on(async {
        let client = client(&c.kubeconfig).await;
        let cms: Api<ConfigMap> = Api::namespaced(client, "default");
        let list = cms.list(&ListParams::default()).await.unwrap();
        let present: std::collections::HashMap<String, ConfigMap> =
            list.items.into_iter().map(|o| (o.metadata.name.clone().unwrap(), o)).collect();
        for (name, rv) in &acked {
            let o = present.get(name).unwrap_or_else(|| panic!("acknowledged create {name} (rv {rv}) lost after kill -9"));
            assert_eq!(o.data.as_ref().unwrap()["payload"].len(), 512, "{name} intact");
        }
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some("after-restart".into());
        let o = cms.create(&PostParams::default(), &cm).await.unwrap();
        let rv: i64 = o.metadata.resource_version.unwrap().parse().unwrap();
        assert!(rv > max_rv, "revisions keep increasing: {rv} <= {max_rv}");
    });
}
