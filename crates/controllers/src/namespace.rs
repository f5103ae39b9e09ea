//! Namespace controller (pkg/controller/namespace, deletion/namespaced_resources_deleter.go):
//! once a namespace is being deleted, delete every namespaced object in it, report progress in
//! the namespace's conditions, and when nothing is left clear the `kubernetes` finalizer through
//! `namespaces/{name}/finalize` so the namespace itself goes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, PropagationPolicy,
};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::context::{Context, drain, requeue_on_error};
use crate::discovery::{Deletable, deletable_resources};
use crate::error::Result;

/// The finalizer this controller owns.
const FINALIZER: &str = "kubernetes";
/// How soon to look again while content is still terminating.
const RECHECK: Duration = Duration::from_secs(1);

/// Runs the controller until its watch ends.
pub async fn run(ctx: Context) -> Result<()> {
    let api = Api::<Namespace>::all(ctx.client.clone());
    let stream = Controller::new(api, watcher::Config::default()).run(
        reconcile,
        requeue_on_error,
        Arc::new(ctx),
    );
    drain("namespace", stream).await;
    Ok(())
}

async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action> {
    if ns.metadata.deletion_timestamp.is_none() {
        return Ok(Action::await_change());
    }
    let ours = ns
        .spec
        .as_ref()
        .and_then(|s| s.finalizers.as_ref())
        .is_some_and(|f| f.iter().any(|x| x == FINALIZER));
    if !ours {
        return Ok(Action::await_change());
    }
    let client = &ctx.client;
    let name = ns.name_any();
    let resources = deletable_resources(client, true).await?;
    let namespaced: Vec<&Deletable> = resources.iter().filter(|r| r.namespaced).collect();
    let mut delete_failures = Vec::new();
    for r in &namespaced {
        if let Err(e) = delete_all(client, &name, r).await {
            delete_failures.push(format!("{}.{}: {e}", r.resource.plural, r.resource.group));
        }
    }
    let (remaining, finalizers) = remaining(client, &name, &namespaced).await?;
    let conditions = conditions(&delete_failures, &remaining, &finalizers);
    write_conditions(client, &ns, conditions).await?;
    if !remaining.is_empty() || !delete_failures.is_empty() {
        return Ok(Action::requeue(RECHECK));
    }
    finalize(client, &ns).await?;
    Ok(Action::await_change())
}

/// Deletes everything of one resource in the namespace with background propagation.
async fn delete_all(client: &Client, ns: &str, r: &Deletable) -> Result<()> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &r.resource);
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    };
    if r.delete_collection {
        match api.delete_collection(&params, &ListParams::default()).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 405 || s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    for obj in api.list(&ListParams::default()).await?.items {
        match api.delete(&obj.name_any(), &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Objects left per resource ("pods." → count) and finalizers holding them (name → count).
async fn remaining(
    client: &Client,
    ns: &str,
    resources: &[&Deletable],
) -> Result<(BTreeMap<String, usize>, BTreeMap<String, usize>)> {
    let mut left = BTreeMap::new();
    let mut finalizers = BTreeMap::new();
    for r in resources {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &r.resource);
        let items = match api.list(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(kube::Error::Api(s)) if s.code == 404 => continue,
            Err(e) => return Err(e.into()),
        };
        if items.is_empty() {
            continue;
        }
        left.insert(
            format!("{}.{}", r.resource.plural, r.resource.group),
            items.len(),
        );
        for item in &items {
            for f in item.finalizers() {
                *finalizers.entry(f.clone()).or_insert(0) += 1;
            }
        }
    }
    Ok((left, finalizers))
}

/// Upstream's five deletion conditions (deletion/status_condition_utils.go).
fn conditions(
    delete_failures: &[String],
    remaining: &BTreeMap<String, usize>,
    finalizers: &BTreeMap<String, usize>,
) -> Vec<Value> {
    let now = crate::now_rfc3339();
    let c = |type_: &str,
             ok: bool,
             reason_ok: &str,
             message_ok: &str,
             reason_bad: &str,
             message_bad: String| {
        if ok {
            json!({"type": type_, "status": "False", "lastTransitionTime": now, "reason": reason_ok, "message": message_ok})
        } else {
            json!({"type": type_, "status": "True", "lastTransitionTime": now, "reason": reason_bad, "message": message_bad})
        }
    };
    let remaining_text = remaining
        .iter()
        .map(|(r, n)| format!("{r} has {n} resource instances"))
        .collect::<Vec<_>>()
        .join(", ");
    let finalizer_text = finalizers
        .iter()
        .map(|(f, n)| format!("{f} in {n} resource instances"))
        .collect::<Vec<_>>()
        .join(", ");
    vec![
        c(
            "NamespaceDeletionDiscoveryFailure",
            true,
            "ResourcesDiscovered",
            "All resources successfully discovered",
            "DiscoveryFailed",
            String::new(),
        ),
        c(
            "NamespaceDeletionGroupVersionParsingFailure",
            true,
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed",
            "GroupVersionParsingFailed",
            String::new(),
        ),
        c(
            "NamespaceDeletionContentFailure",
            delete_failures.is_empty(),
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization",
            "ContentDeletionFailed",
            format!(
                "Failed to delete all resource types, {} remaining: {}",
                delete_failures.len(),
                delete_failures.join(", ")
            ),
        ),
        c(
            "NamespaceContentRemaining",
            remaining.is_empty(),
            "ContentRemoved",
            "All content successfully removed",
            "SomeResourcesRemain",
            format!("Some resources are remaining: {remaining_text}"),
        ),
        c(
            "NamespaceFinalizersRemaining",
            finalizers.is_empty(),
            "ContentHasNoFinalizers",
            "All content-preserving finalizers finished",
            "SomeFinalizersRemain",
            format!("Some content in the namespace has finalizers remaining: {finalizer_text}"),
        ),
    ]
}

/// Writes the conditions when their status, reason or message changed (keeping transition
/// times of unchanged ones).
async fn write_conditions(
    client: &Client,
    ns: &Namespace,
    mut conditions: Vec<Value>,
) -> Result<()> {
    let current: Vec<Value> = serde_json::to_value(
        ns.status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default(),
    )?
    .as_array()
    .cloned()
    .unwrap_or_default();
    let same = |a: &Value, b: &Value| {
        a["status"] == b["status"] && a["reason"] == b["reason"] && a["message"] == b["message"]
    };
    let mut changed = current.len() != conditions.len();
    for c in &mut conditions {
        match current.iter().find(|x| x["type"] == c["type"]) {
            Some(old) if same(old, c) => {
                c["lastTransitionTime"] = old["lastTransitionTime"].clone()
            }
            _ => changed = true,
        }
    }
    if !changed {
        return Ok(());
    }
    let api = Api::<Namespace>::all(client.clone());
    let patch = json!({"status": {"conditions": conditions}});
    match api
        .patch_status(
            &ns.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Removes `kubernetes` from spec.finalizers through the finalize subresource.
async fn finalize(client: &Client, ns: &Namespace) -> Result<()> {
    let mut ns = ns.clone();
    if let Some(spec) = ns.spec.as_mut() {
        let rest: Vec<String> = spec
            .finalizers
            .iter()
            .flatten()
            .filter(|f| *f != FINALIZER)
            .cloned()
            .collect();
        spec.finalizers = Some(rest);
    }
    let api = Api::<Namespace>::all(client.clone());
    match api
        .replace_subresource("finalize", &ns.name_any(), &PostParams::default(), &ns)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
