//! Keeps every ResourceQuota's `status.hard` and `status.used` current, as upstream's
//! resource quota controller does (`pkg/controller/resourcequota`). It recomputes on a short
//! period from the stored objects with the admission plugin's usage functions, and writes only
//! quotas whose status changed.

use std::sync::Arc;
use std::time::Duration;

use rkube_apimachinery::ApiError;
use rkube_registry::{ListOptions, Registry};
use serde_json::{Map, Value, json};

use crate::plugins::resource_quota::{format_quantity, hard_of, namespace_usage};

/// How often usage is recomputed.
const PERIOD: Duration = Duration::from_secs(1);

/// Runs until the task is aborted.
pub async fn run(registry: Arc<Registry>) {
    loop {
        if let Err(e) = sync_all(&registry).await {
            tracing::warn!(error = %e, "resource quota sync failed");
        }
        tokio::time::sleep(PERIOD).await;
    }
}

/// One pass over every quota.
pub async fn sync_all(registry: &Registry) -> Result<(), ApiError> {
    let Some(res) = registry.lookup("", "v1", "resourcequotas") else { return Ok(()) };
    let listed = registry.list(&res, None, &ListOptions::default()).await?;
    for quota in listed["items"].as_array().into_iter().flatten() {
        let ns = quota["metadata"]["namespace"].as_str().unwrap_or("").to_string();
        let name = quota["metadata"]["name"].as_str().unwrap_or("").to_string();
        let hard = hard_of(quota);
        let names: Vec<String> = hard.keys().cloned().collect();
        let used = namespace_usage(registry, &ns, &names).await?;
        let mut used_out = Map::new();
        for n in &names {
            used_out.insert(n.clone(), json!(format_quantity(n, used.get(n).copied().unwrap_or(0))));
        }
        let status = json!({"hard": quota["spec"]["hard"].clone(), "used": Value::Object(used_out)});
        if quota["status"] == status {
            continue;
        }
        let result = registry
            .modify(&res, Some(&ns), &name, true, false, |current| {
                let mut next = current.clone();
                next["status"] = status.clone();
                Ok(next)
            })
            .await;
        match result {
            Ok(_) => {}
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
