//! The CRD controllers of apiextensions-apiserver, folded into one reconcile pass that runs in the
//! server whenever a CRD changes:
//!
//! - naming (`pkg/controller/status/naming_controller.go`): accepts the requested names unless
//!   another CRD of the group holds them (`NamesAccepted`, reasons `NoConflicts`,
//!   `PluralConflict`, `SingularConflict`, `ShortNamesConflict`, `KindConflict`,
//!   `ListKindConflict`);
//! - establishing (`pkg/controller/establish/establishing_controller.go`): `Established=True`,
//!   reason `InitialNamesAccepted`, once the names are accepted;
//! - serving and discovery: the registry's resource table gets the resources of every
//!   established CRD ([`Registry::set_custom_resources`]);
//! - finalizer (`pkg/controller/finalizer/crd_finalizer.go`): a CRD being deleted has its objects
//!   deleted, then loses the `customresourcecleanup.apiextensions.k8s.io` finalizer and goes.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use rkube_apimachinery::{ApiError, meta};
use serde_json::{Map, Value, json};

use super::strategy::{condition_true, set_condition};
use super::{CLEANUP_FINALIZER, CustomResource, GROUP, PLURAL};
use crate::options::{DeleteOptions, ListOptions};
use crate::store::Registry;

/// How often the controller re-checks while a CRD is terminating with objects left.
const RECHECK: Duration = Duration::from_millis(500);

/// Runs until the task is aborted: one reconcile pass per CRD change.
pub async fn run(registry: Arc<Registry>) {
    let prefix = crate::keys::resource_prefix(GROUP, PLURAL);
    loop {
        let revision = registry.cache().revision();
        let pending = match sync_all(&registry).await {
            Ok(pending) => pending,
            Err(e) => {
                tracing::warn!(error = %e, "CRD reconcile failed; will retry");
                true
            }
        };
        let mut watch = registry.cache().watch(&prefix, revision).ok();
        let wait = if pending {
            RECHECK
        } else {
            Duration::from_secs(30)
        };
        match watch.as_mut() {
            Some(w) => {
                let _ = tokio::time::timeout(wait, w.next()).await;
            }
            None => tokio::time::sleep(RECHECK).await,
        }
    }
}

/// One reconcile pass over every CRD. Returns true when work is left (a CRD still terminating).
pub async fn sync_all(registry: &Arc<Registry>) -> Result<bool, ApiError> {
    let Some(crd_res) = registry.lookup(GROUP, "v1", PLURAL) else {
        return Ok(false);
    };
    let list = registry
        .list(&crd_res, None, &ListOptions::default())
        .await?;
    let mut crds: Vec<Value> = list["items"].as_array().cloned().unwrap_or_default();
    // Older CRDs keep their names when a newer one asks for the same.
    crds.sort_by(|a, b| {
        let key = |v: &Value| {
            (
                meta::meta_str(v, "creationTimestamp")
                    .unwrap_or("")
                    .to_string(),
                meta::name(v).to_string(),
            )
        };
        key(a).cmp(&key(b))
    });
    for i in 0..crds.len() {
        let (names, names_cond, established) = accepted_names(&crds[i], &crds, i);
        let mut desired = crds[i].clone();
        if let Some(st) = desired
            .as_object_mut()
            .map(|o| o.entry("status").or_insert_with(|| json!({})))
            && let Some(st) = st.as_object_mut()
        {
            st.insert("acceptedNames".into(), names);
        }
        set_condition(
            &mut desired,
            "NamesAccepted",
            names_cond.0,
            names_cond.1,
            &names_cond.2,
        );
        set_condition(
            &mut desired,
            "Established",
            established.0,
            established.1,
            &established.2,
        );
        if desired["status"] != crds[i]["status"] {
            let name = meta::name(&desired).to_string();
            let status = desired["status"].clone();
            match registry
                .modify(&crd_res, None, &name, true, false, |old| {
                    let mut new = old.clone();
                    if let Some(o) = new.as_object_mut() {
                        o.insert("status".into(), status.clone());
                    }
                    meta::remove_meta(&mut new, "resourceVersion");
                    Ok(new)
                })
                .await
            {
                Ok(v) => crds[i] = v,
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
    }
    let served: Vec<Arc<CustomResource>> = crds
        .iter()
        .filter(|c| condition_true(c, "Established"))
        .filter_map(CustomResource::from_crd)
        .map(Arc::new)
        .collect();
    registry.set_custom_resources(served);
    let mut pending = false;
    for crd in crds
        .iter()
        .filter(|c| meta::meta_str(c, "deletionTimestamp").is_some())
    {
        if meta::finalizers(crd).iter().any(|f| f == CLEANUP_FINALIZER) {
            pending |= !finalize(registry, &crd_res, crd).await?;
        }
    }
    Ok(pending)
}

/// Names claimed by the other CRDs of the same group: (resource names, kinds).
fn claimed_names(crds: &[Value], me: usize) -> (HashSet<String>, HashSet<String>) {
    let group = crds[me]["spec"]["group"].as_str().unwrap_or("");
    let mut resources = HashSet::new();
    let mut kinds = HashSet::new();
    for (j, other) in crds.iter().enumerate() {
        if j == me || other["spec"]["group"].as_str().unwrap_or("") != group {
            continue;
        }
        let a = &other["status"]["acceptedNames"];
        for k in ["plural", "singular"] {
            if let Some(v) = a[k].as_str().filter(|s| !s.is_empty()) {
                resources.insert(v.to_string());
            }
        }
        for v in a["shortNames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            resources.insert(v.to_string());
        }
        for k in ["kind", "listKind"] {
            if let Some(v) = a[k].as_str().filter(|s| !s.is_empty()) {
                kinds.insert(v.to_string());
            }
        }
    }
    (resources, kinds)
}

type Condition = (&'static str, &'static str, String);

/// The naming controller's `calculateNamesAndConditions`.
fn accepted_names(crd: &Value, crds: &[Value], me: usize) -> (Value, Condition, Condition) {
    let (resources, kinds) = claimed_names(crds, me);
    let requested = &crd["spec"]["names"];
    let accepted = &crd["status"]["acceptedNames"];
    let mut out: Map<String, Value> = accepted.as_object().cloned().unwrap_or_default();
    let mut cond: Option<Condition> = None;
    let fresh = |req: &str, acc: &str, used: &HashSet<String>| req == acc || !used.contains(req);
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_string();
    for (key, reason, used) in [
        ("plural", "PluralConflict", &resources),
        ("singular", "SingularConflict", &resources),
        ("kind", "KindConflict", &kinds),
        ("listKind", "ListKindConflict", &kinds),
    ] {
        let (req, acc) = (text(requested, key), text(accepted, key));
        if fresh(&req, &acc, used) {
            out.insert(key.into(), Value::String(req));
        } else if cond.is_none() {
            cond = Some(("False", reason, format!("{req:?} is already in use")));
        }
    }
    let req_short: Vec<String> = requested["shortNames"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    let acc_short: HashSet<String> = accepted["shortNames"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    let mut short_ok = true;
    for s in &req_short {
        if !acc_short.contains(s) && resources.contains(s) {
            short_ok = false;
            if cond.is_none() {
                cond = Some((
                    "False",
                    "ShortNamesConflict",
                    format!("{s:?} is already in use"),
                ));
            }
        }
    }
    if short_ok && !req_short.is_empty() {
        out.insert("shortNames".into(), json!(req_short));
    } else if short_ok {
        out.shift_remove("shortNames");
    }
    match requested
        .get("categories")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
    {
        Some(c) => out.insert("categories".into(), Value::Array(c.clone())),
        None => out.shift_remove("categories"),
    };
    // Field order as the Go struct prints it.
    let mut ordered = Map::new();
    for k in [
        "plural",
        "singular",
        "shortNames",
        "kind",
        "listKind",
        "categories",
    ] {
        match out.get(k) {
            Some(v) if k == "plural" || k == "kind" || !v.as_str().is_some_and(str::is_empty) => {
                ordered.insert(k.into(), v.clone());
            }
            None if k == "plural" || k == "kind" => {
                ordered.insert(k.into(), json!(""));
            }
            _ => {}
        }
    }
    let names_cond = cond.unwrap_or(("True", "NoConflicts", "no conflicts found".to_string()));
    // Once established, a CRD stays established (the establishing controller never reverts it).
    let established = if condition_true(crd, "Established") || names_cond.0 == "True" {
        (
            "True",
            "InitialNamesAccepted",
            "the initial names have been accepted".to_string(),
        )
    } else {
        (
            "False",
            "NotAccepted",
            "not all names are accepted".to_string(),
        )
    };
    (Value::Object(ordered), names_cond, established)
}

/// Deletes the CRD's objects; once none is left, clears the finalizer so the CRD goes. Returns
/// true when done.
async fn finalize(
    registry: &Arc<Registry>,
    crd_res: &rkube_apimachinery::ResourceInfo,
    crd: &Value,
) -> Result<bool, ApiError> {
    let name = meta::name(crd).to_string();
    let mut remaining = 0;
    if let Some(cr) = CustomResource::from_crd(crd)
        && let Some(storage) = cr.storage_version()
    {
        let res = cr.resource_info(storage);
        set_terminating(
            registry,
            crd_res,
            &name,
            "InstanceDeletionInProgress",
            "CustomResource deletion is in progress",
        )
        .await?;
        let opts = DeleteOptions {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        registry
            .delete_collection(&res, None, &ListOptions::default(), &opts)
            .await?;
        let left = registry.list(&res, None, &ListOptions::default()).await?;
        remaining = left["items"].as_array().map_or(0, Vec::len);
    }
    if remaining > 0 {
        let msg =
            format!("could not confirm zero CustomResources remaining: {remaining} remaining");
        set_terminating(registry, crd_res, &name, "InstanceDeletionCheck", &msg).await?;
        return Ok(false);
    }
    set_terminating(
        registry,
        crd_res,
        &name,
        "InstanceDeletionCompleted",
        "removed all instances",
    )
    .await?;
    let result = registry
        .modify(crd_res, None, &name, false, false, |old| {
            let mut new = old.clone();
            if let Some(f) = meta::metadata_mut(&mut new)
                .and_then(|m| m.get_mut("finalizers"))
                .and_then(Value::as_array_mut)
            {
                f.retain(|x| x != CLEANUP_FINALIZER);
            }
            meta::remove_meta(&mut new, "resourceVersion");
            Ok(new)
        })
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.code == 404 => Ok(true),
        Err(e) => Err(e),
    }
}

async fn set_terminating(
    registry: &Arc<Registry>,
    crd_res: &rkube_apimachinery::ResourceInfo,
    name: &str,
    reason: &'static str,
    message: &str,
) -> Result<(), ApiError> {
    let status = if reason == "InstanceDeletionCompleted" {
        "False"
    } else {
        "True"
    };
    registry
        .modify(crd_res, None, name, true, false, |old| {
            let mut new = old.clone();
            set_condition(&mut new, "Terminating", status, reason, message);
            meta::remove_meta(&mut new, "resourceVersion");
            Ok(new)
        })
        .await
        .map(|_| ())
        .or_else(|e| if e.code == 404 { Ok(()) } else { Err(e) })
}
