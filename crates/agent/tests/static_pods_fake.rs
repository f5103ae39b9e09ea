//! The static pod manager against the in-memory runtime and no API server: manifests become
//! sandboxes and containers, an edited manifest replaces its pod, a removed one stops it, a
//! bad one is skipped.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rkube_agent::fake::FakeRuntime;
use rkube_agent::static_pods::{StaticPodManager, StaticPodState};
use rkube_agent::sync::{NodeContext, PodSyncer};

fn manifest(version: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: web}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - {{name: app, image: busybox, command: [sh, -c, 'echo {version}']}}\n"
    )
}

/// Waits (up to 10 s) until `check` holds for the runtime.
async fn eventually(
    runtime: &FakeRuntime,
    what: &str,
    check: impl Fn(&FakeRuntime) -> bool,
) -> anyhow::Result<()> {
    for _ in 0..200 {
        if check(runtime) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!(
        "{what} did not happen; runtime calls: {:?}",
        runtime.calls()
    )
}

fn commands(runtime: &FakeRuntime) -> Vec<String> {
    runtime
        .created_containers()
        .iter()
        .map(|c| c.command.join(" "))
        .collect()
}

fn write(dir: &Path, file: &str, text: &str) -> std::io::Result<()> {
    std::fs::write(dir.join(file), text)
}

#[tokio::test]
async fn manifests_run_change_and_stop_without_an_api_server() -> anyhow::Result<()> {
    let runtime = Arc::new(FakeRuntime::default());
    let root = tempfile::tempdir()?;
    let manifests = root.path().join("manifests");
    let syncer = Arc::new(PodSyncer::new(
        runtime.clone(),
        NodeContext {
            node_name: "n1".into(),
            node_ip: "192.0.2.10".into(),
            log_root: root.path().join("logs"),
            runtime_name: "fake".into(),
            root_dir: root.path().join("agent"),
            allocatable: Default::default(),
        },
    ));
    // Nothing listens there: every API call fails, as with the API server down.
    let client = kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse()?))?;
    let state = Arc::new(StaticPodState::default());
    let mut manager = StaticPodManager::new(
        Some(manifests.clone()),
        "n1".into(),
        syncer,
        client,
        state.clone(),
    );
    assert!(manifests.is_dir(), "the manifest directory is created");

    write(&manifests, "web.yaml", &manifest("one"))?;
    write(&manifests, "bad.yaml", "kind: Pod\napiVersion: v1\nspec: [")?;
    manager.poll().await;
    eventually(&runtime, "the static pod's container", |r| {
        commands(r) == ["sh -c echo one"]
    })
    .await?;
    assert_eq!(runtime.sandbox_count(), 1);
    let first_uids = state.uids();
    assert_eq!(first_uids.len(), 1);
    let sandbox_names = |r: &FakeRuntime| {
        r.calls()
            .into_iter()
            .filter(|c| c.starts_with("run_sandbox"))
            .collect::<Vec<_>>()
    };
    assert!(
        sandbox_names(&runtime).iter().all(|c| c.contains("web-n1")),
        "{:?}",
        runtime.calls()
    );

    // Read again unchanged: nothing happens.
    manager.poll().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(state.uids(), first_uids);
    assert_eq!(commands(&runtime), ["sh -c echo one"]);

    // Edited: the old pod is stopped and removed, the new one started.
    write(&manifests, "web.yaml", &manifest("two"))?;
    manager.poll().await;
    eventually(&runtime, "the new version alone", |r| {
        commands(r) == ["sh -c echo two"] && r.sandbox_count() == 1
    })
    .await?;
    manager.poll().await;
    let second_uids = state.uids();
    assert_eq!(second_uids.len(), 1);
    assert_ne!(second_uids, first_uids);

    // Removed: stopped, nothing left.
    std::fs::remove_file(manifests.join("web.yaml"))?;
    manager.poll().await;
    eventually(&runtime, "the pod's removal", |r| r.sandbox_count() == 0).await?;
    manager.poll().await;
    assert!(state.uids().is_empty());
    Ok(())
}
