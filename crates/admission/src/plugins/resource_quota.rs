//! ResourceQuota: a write that would take a namespace's usage over a quota's hard limits is
//! refused with upstream's `exceeded quota` 403, and an admitted one is charged to the quotas'
//! `status.used` at once (upstream `staging/src/k8s.io/apiserver/pkg/admission/plugin/
//! resourcequota/controller.go`): every matching quota is checked first, then each is written
//! with its resourceVersion as precondition and re-checked on conflict, so concurrent writes
//! cannot both take the last unit. The quota controller ([`crate::quota_controller`]) later
//! reconciles `status.used` with the stored objects (releasing what deletions and failed creates
//! hold).
//!
//! Differences from upstream: a quota the controller has not synced yet is checked against
//! usage computed from the stored objects instead of refusing with `status unknown for quota`.

use std::collections::BTreeSet;
use std::sync::Arc;

use rkube_apimachinery::ApiError;
use rkube_registry::Registry;
use rkube_registry::admission::Operation;
use serde_json::{Value, json};

use crate::context::{Context, Plugin};
use crate::quota::{Usage, format_quantity, hard_of, missing_pod_resources, object_usage, quota_matches, recompute, used_of};

/// Conflicting quota writes retried before giving up.
const CHARGE_ATTEMPTS: usize = 8;

/// The plugin.
pub struct ResourceQuota;

#[async_trait::async_trait]
impl Plugin for ResourceQuota {
    async fn validate(&self, ctx: &Context<'_>, obj: Option<&Value>) -> Result<(), ApiError> {
        let Some(obj) = obj else { return Ok(()) };
        let res = ctx.req.resource;
        // Services and claims are charged again when an update grows them (type, size);
        // everything else only when created, as upstream's evaluators.
        let charged_on_update = res.group.is_empty() && matches!(res.plural.as_str(), "services" | "persistentvolumeclaims");
        let evaluated = match ctx.req.operation {
            Operation::Create => true,
            Operation::Update => charged_on_update,
            _ => false,
        };
        if !evaluated || !ctx.req.subresource.is_empty() {
            return Ok(());
        }
        let Some(ns) = ctx.req.namespace else { return Ok(()) };
        let quotas = ctx.list("", "v1", "resourcequotas", Some(ns)).await?;
        if quotas.is_empty() {
            return Ok(());
        }
        let mut delta = object_usage(&res.group, &res.plural, obj);
        if ctx.req.operation == Operation::Update
            && let Some(old) = ctx.req.old
        {
            let before = object_usage(&res.group, &res.plural, old);
            for (k, v) in delta.iter_mut() {
                *v = (*v - before.get(k).copied().unwrap_or(0)).max(0);
            }
        }
        delta.retain(|_, v| *v != 0);
        let is_pod = res.group.is_empty() && res.plural == "pods";
        let mut charges = Vec::new();
        for quota in &quotas {
            if !quota_matches(quota, &res.group, &res.plural, obj) {
                continue;
            }
            let name = quota["metadata"]["name"].as_str().unwrap_or("");
            let hard_names: BTreeSet<String> = hard_of(quota).into_keys().collect();
            if is_pod && let Some(missing) = missing_pod_resources(obj, &hard_names) {
                return Err(ctx.forbidden(&format!("failed quota: {name}: {missing}")));
            }
            let requested: Usage = delta.iter().filter(|(k, _)| hard_names.contains(*k)).map(|(k, v)| (k.clone(), *v)).collect();
            if requested.is_empty() {
                continue;
            }
            check(ctx, &ctx.registry, quota, &requested).await?;
            charges.push((name.to_string(), requested));
        }
        if ctx.req.dry_run {
            return Ok(());
        }
        for (name, requested) in charges {
            charge(ctx, ns, &name, &requested).await?;
        }
        Ok(())
    }
}

/// The quota's usage after `requested`, or the `exceeded quota` 403.
async fn check(ctx: &Context<'_>, registry: &Registry, quota: &Value, requested: &Usage) -> Result<Usage, ApiError> {
    let hard = hard_of(quota);
    let mut used = used_of(quota);
    if requested.keys().any(|k| !used.contains_key(k)) {
        let counted = recompute(registry, quota).await?;
        for k in requested.keys() {
            used.entry(k.clone()).or_insert_with(|| counted.get(k).copied().unwrap_or(0));
        }
    }
    let mut new_used = used.clone();
    let mut exceeded = Vec::new();
    for (k, want) in requested {
        let total = used.get(k).copied().unwrap_or(0).saturating_add(*want);
        new_used.insert(k.clone(), total);
        if hard.get(k).is_some_and(|(limit, _)| total > *limit) {
            exceeded.push(k.clone());
        }
    }
    if exceeded.is_empty() {
        return Ok(new_used);
    }
    let show = |f: &dyn Fn(&String) -> String| exceeded.iter().map(|n| format!("{n}={}", f(n))).collect::<Vec<_>>().join(",");
    Err(ctx.forbidden(&format!(
        "exceeded quota: {}, requested: {}, used: {}, limited: {}",
        quota["metadata"]["name"].as_str().unwrap_or(""),
        show(&|n| format_quantity(n, requested.get(n).copied().unwrap_or(0))),
        show(&|n| format_quantity(n, used.get(n).copied().unwrap_or(0))),
        show(&|n| hard.get(n).map(|(_, t)| t.clone()).unwrap_or_default()),
    )))
}

/// Adds `requested` to one quota's `status.used`, re-reading and re-checking it when another
/// write got there first.
async fn charge(ctx: &Context<'_>, ns: &str, name: &str, requested: &Usage) -> Result<(), ApiError> {
    for _ in 0..CHARGE_ATTEMPTS {
        let Some(quota) = ctx.get("", "v1", "resourcequotas", Some(ns), name).await? else { return Ok(()) };
        let new_used = check(ctx, &ctx.registry, &quota, requested).await?;
        match write_used(&ctx.registry, &quota, &new_used, false).await {
            Err(e) if e.code == 409 => continue,
            Err(e) if e.code == 404 => return Ok(()),
            other => return other,
        }
    }
    Err(ApiError::with_code(409, "Conflict", format!("Operation cannot be fulfilled on resourcequotas \"{name}\": too many concurrent writes, please retry")))
}

/// Writes `used` if the quota is still at the version read: merged into `status.used` for a
/// charge, or (`recount`) as the whole `status.used` with `status.hard` copied from the spec. The
/// write is the server's own, so it runs outside the request (no user, no admission), as
/// upstream's quota evaluator writes through its privileged loopback client.
pub(crate) async fn write_used(registry: &Arc<Registry>, quota: &Value, used: &Usage, recount: bool) -> Result<(), ApiError> {
    let Some(res) = registry.lookup("", "v1", "resourcequotas") else { return Ok(()) };
    let ns = quota["metadata"]["namespace"].as_str().unwrap_or("").to_string();
    let name = quota["metadata"]["name"].as_str().unwrap_or("").to_string();
    let version = quota["metadata"]["resourceVersion"].clone();
    let used_text: serde_json::Map<String, Value> = used.iter().map(|(k, v)| (k.clone(), json!(format_quantity(k, *v)))).collect();
    let registry = registry.clone();
    let write = tokio::spawn(async move {
        registry
            .modify(&res, Some(&ns), &name, true, false, |current| {
                let mut next = current.clone();
                next["metadata"]["resourceVersion"] = version.clone();
                if recount || !next["status"]["hard"].is_object() {
                    next["status"]["hard"] = current["spec"]["hard"].clone();
                }
                let mut merged = if recount { serde_json::Map::new() } else { next["status"]["used"].as_object().cloned().unwrap_or_default() };
                merged.extend(used_text.clone());
                next["status"]["used"] = Value::Object(merged);
                Ok(next)
            })
            .await
    });
    match write.await {
        Ok(result) => result.map(|_| ()),
        Err(e) => Err(ApiError::internal(format!("charging quota: {e}"))),
    }
}
