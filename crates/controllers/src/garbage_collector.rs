//! Garbage collector (pkg/controller/garbagecollector): removes objects whose owners are gone,
//! orphans dependents of owners deleted with the `orphan` finalizer, and deletes the dependents
//! of owners deleted with `foregroundDeletion` before letting the owner go.
//!
//! Upstream keeps a graph fed by metadata informers on every deletable resource; here the
//! informers are kube-rs metadata reflectors, and each pass rebuilds the owner index from their
//! caches (cheap next to the API calls it saves). Before deleting a dependent whose owner looks
//! absent, the owner is read live from the API, as upstream does, so a cache that lags behind a
//! just-created owner never causes a wrong deletion.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PropagationPolicy};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::context::Context;
use crate::discovery::{Deletable, deletable_resources};
use crate::error::Result;
use crate::list_or_null;

/// Full passes happen at least this often even without events.
const RESYNC: Duration = Duration::from_secs(10);
/// Events arriving within this window are handled in one pass.
const BATCH: Duration = Duration::from_millis(100);
/// Resources are rediscovered this often (new CRDs).
const REDISCOVER: Duration = Duration::from_secs(60);

const ORPHAN: &str = "orphan";
const FOREGROUND: &str = "foregroundDeletion";

type Meta = PartialObjectMeta<DynamicObject>;

struct Informer {
    resource: Deletable,
    store: Store<Meta>,
}

/// Runs the collector; returns after [`REDISCOVER`] so the supervisor restarts it with fresh
/// discovery.
pub async fn run(ctx: Context) -> Result<()> {
    let client = ctx.client.clone();
    let resources = deletable_resources(&client, false).await?;
    let mut informers = Vec::new();
    let mut triggers: Vec<BoxStream<'static, ()>> = Vec::new();
    for resource in resources {
        let api: Api<Meta> = Api::all_with(client.clone(), &resource.resource);
        let writer = reflector::store::Writer::<Meta>::new(resource.resource.clone());
        let store = writer.as_reader();
        let events = reflector::reflector(writer, watcher(api, watcher::Config::default()))
            .default_backoff()
            .touched_objects();
        triggers.push(events.map(|_| ()).boxed());
        informers.push(Informer { resource, store });
    }
    let informers = Arc::new(informers);
    let mut events = futures::stream::select_all(triggers);
    let deadline = tokio::time::Instant::now() + REDISCOVER;
    loop {
        let woke = tokio::time::timeout(RESYNC, events.next()).await;
        if matches!(woke, Ok(None)) {
            return Ok(());
        }
        // Drain what else arrives right away, so a burst becomes one pass.
        while let Ok(Some(())) = tokio::time::timeout(BATCH, events.next()).await {}
        if !all_ready(&informers) {
            continue;
        }
        if let Err(e) = collect(&client, &informers).await {
            tracing::warn!(error = %e, "garbage collection pass failed");
        }
        if tokio::time::Instant::now() > deadline {
            return Ok(());
        }
    }
}

fn all_ready(informers: &[Informer]) -> bool {
    // A store is ready once its first list arrived; until then its resource is unknown.
    informers.iter().all(|i| {
        futures::FutureExt::now_or_never(i.store.wait_until_ready()).is_some_and(|r| r.is_ok())
    })
}

/// One object as the collector sees it.
struct Node<'a> {
    informer: &'a Informer,
    meta: Arc<Meta>,
}

impl Node<'_> {
    fn namespace(&self) -> Option<String> {
        self.meta.namespace()
    }
    fn deleting(&self) -> bool {
        self.meta.metadata.deletion_timestamp.is_some()
    }
    fn has_finalizer(&self, f: &str) -> bool {
        self.meta.finalizers().iter().any(|x| x == f)
    }
    fn api(&self, client: &Client) -> Api<DynamicObject> {
        match self.namespace() {
            Some(ns) if self.informer.resource.namespaced => {
                Api::namespaced_with(client.clone(), &ns, &self.informer.resource.resource)
            }
            _ => Api::all_with(client.clone(), &self.informer.resource.resource),
        }
    }
}

async fn collect(client: &Client, informers: &[Informer]) -> Result<()> {
    let mut by_uid: HashMap<String, Node<'_>> = HashMap::new();
    let mut dependents: HashMap<String, Vec<String>> = HashMap::new();
    for informer in informers {
        for meta in informer.store.state() {
            let Some(uid) = meta.uid() else { continue };
            for owner in meta.owner_references() {
                dependents
                    .entry(owner.uid.clone())
                    .or_default()
                    .push(uid.clone());
            }
            by_uid.insert(uid, Node { informer, meta });
        }
    }
    let kinds: HashMap<(String, String), &Informer> = informers
        .iter()
        .map(|i| {
            (
                (
                    i.resource.resource.api_version.clone(),
                    i.resource.resource.kind.clone(),
                ),
                i,
            )
        })
        .collect();

    // Owners being deleted: orphan or delete their dependents, then release them.
    for node in by_uid.values().filter(|n| n.deleting()) {
        let uid = node.meta.uid().unwrap_or_default();
        let deps: Vec<&Node<'_>> = dependents
            .get(&uid)
            .into_iter()
            .flatten()
            .filter_map(|d| by_uid.get(d))
            .collect();
        if node.has_finalizer(ORPHAN) {
            for dep in &deps {
                remove_owner_refs(client, dep, &HashSet::from([uid.clone()])).await?;
            }
            remove_finalizer(client, node, ORPHAN).await?;
        } else if node.has_finalizer(FOREGROUND) {
            let blocking: Vec<&&Node<'_>> = deps
                .iter()
                .filter(|d| {
                    d.meta
                        .owner_references()
                        .iter()
                        .any(|r| r.uid == uid && r.block_owner_deletion == Some(true))
                })
                .collect();
            for dep in deps.iter().filter(|d| !d.deleting()) {
                attempt_delete(client, dep, &by_uid, &kinds, &dependents).await?;
            }
            if blocking.is_empty() {
                remove_finalizer(client, node, FOREGROUND).await?;
            }
        }
    }

    // Dependents whose owners are gone.
    for node in by_uid.values() {
        if node.meta.owner_references().is_empty() || node.deleting() {
            continue;
        }
        let all_owners_unseen = node
            .meta
            .owner_references()
            .iter()
            .all(|r| !by_uid.contains_key(&r.uid));
        let any_owner_missing = node
            .meta
            .owner_references()
            .iter()
            .any(|r| !by_uid.contains_key(&r.uid));
        if all_owners_unseen || any_owner_missing {
            attempt_delete(client, node, &by_uid, &kinds, &dependents).await?;
        }
    }
    Ok(())
}

/// Upstream `attemptToDeleteItem`: classify owners as solid, dangling (gone) or waiting for
/// their dependents' deletion; keep the object while a solid owner remains (dropping the
/// references to the others), otherwise delete it.
async fn attempt_delete(
    client: &Client,
    node: &Node<'_>,
    by_uid: &HashMap<String, Node<'_>>,
    kinds: &HashMap<(String, String), &Informer>,
    dependents: &HashMap<String, Vec<String>>,
) -> Result<()> {
    let mut solid = 0;
    let mut dangling = HashSet::new();
    let mut waiting = HashSet::new();
    for owner in node.meta.owner_references() {
        match owner_state(client, node, owner, by_uid, kinds).await? {
            OwnerState::Solid => solid += 1,
            OwnerState::Dangling => {
                dangling.insert(owner.uid.clone());
            }
            OwnerState::Waiting => {
                waiting.insert(owner.uid.clone());
            }
        }
    }
    if solid > 0 {
        if dangling.is_empty() && waiting.is_empty() {
            return Ok(());
        }
        let drop: HashSet<String> = dangling.union(&waiting).cloned().collect();
        return remove_owner_refs(client, node, &drop).await;
    }
    let uid = node.meta.uid().unwrap_or_default();
    let has_dependents = dependents.get(&uid).is_some_and(|d| !d.is_empty());
    let policy = if !waiting.is_empty() && has_dependents {
        PropagationPolicy::Foreground
    } else if node.has_finalizer(ORPHAN) {
        PropagationPolicy::Orphan
    } else if node.has_finalizer(FOREGROUND) {
        PropagationPolicy::Foreground
    } else {
        PropagationPolicy::Background
    };
    tracing::info!(kind = %node.informer.resource.resource.kind, namespace = ?node.namespace(), name = %node.meta.name_any(), ?policy, "garbage collector deleting an object whose owners are gone");
    let params = DeleteParams {
        propagation_policy: Some(policy),
        preconditions: Some(kube::api::Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..Default::default()
    };
    ignore_gone(
        node.api(client)
            .delete(&node.meta.name_any(), &params)
            .await
            .map(|_| ()),
    )
}

enum OwnerState {
    Solid,
    Dangling,
    Waiting,
}

async fn owner_state(
    client: &Client,
    node: &Node<'_>,
    owner: &OwnerReference,
    by_uid: &HashMap<String, Node<'_>>,
    kinds: &HashMap<(String, String), &Informer>,
) -> Result<OwnerState> {
    if let Some(o) = by_uid.get(&owner.uid) {
        return Ok(if o.deleting() && o.has_finalizer(FOREGROUND) {
            OwnerState::Waiting
        } else {
            OwnerState::Solid
        });
    }
    // Not in the caches: ask the API before believing it gone.
    let Some(informer) = kinds.get(&(owner.api_version.clone(), owner.kind.clone())) else {
        // An owner kind the server does not serve: upstream treats it as absent too.
        return Ok(OwnerState::Dangling);
    };
    let api: Api<DynamicObject> = match node.namespace() {
        Some(ns) if informer.resource.namespaced => {
            Api::namespaced_with(client.clone(), &ns, &informer.resource.resource)
        }
        _ => Api::all_with(client.clone(), &informer.resource.resource),
    };
    match api.get_opt(&owner.name).await? {
        Some(live) if live.uid().as_deref() == Some(owner.uid.as_str()) => {
            let waiting = live.metadata.deletion_timestamp.is_some()
                && live.finalizers().iter().any(|f| f == FOREGROUND);
            Ok(if waiting {
                OwnerState::Waiting
            } else {
                OwnerState::Solid
            })
        }
        _ => Ok(OwnerState::Dangling),
    }
}

async fn remove_owner_refs(client: &Client, node: &Node<'_>, uids: &HashSet<String>) -> Result<()> {
    let refs: Vec<&OwnerReference> = node
        .meta
        .owner_references()
        .iter()
        .filter(|r| !uids.contains(&r.uid))
        .collect();
    if refs.len() == node.meta.owner_references().len() {
        return Ok(());
    }
    let patch = json!({"metadata": {"ownerReferences": list_or_null(&refs), "resourceVersion": node.meta.resource_version()}});
    ignore_gone(
        node.api(client)
            .patch(
                &node.meta.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .map(|_| ()),
    )
}

async fn remove_finalizer(client: &Client, node: &Node<'_>, finalizer: &str) -> Result<()> {
    let rest: Vec<&String> = node
        .meta
        .finalizers()
        .iter()
        .filter(|f| *f != finalizer)
        .collect();
    let patch = json!({"metadata": {"finalizers": list_or_null(&rest), "resourceVersion": node.meta.resource_version()}});
    ignore_gone(
        node.api(client)
            .patch(
                &node.meta.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .map(|_| ()),
    )
}

/// Not found and conflicts mean the cache was behind: the next pass sees the truth.
fn ignore_gone(r: std::result::Result<(), kube::Error>) -> Result<()> {
    match r {
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
        other => other.map_err(Into::into),
    }
}
