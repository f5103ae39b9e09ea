//! Priority: resolves `spec.priorityClassName` (or the global default class) into
//! `spec.priority` and `spec.preemptionPolicy`, and keeps a single global default
//! (upstream `plugin/pkg/admission/priority/admission.go`).

use rkube_apimachinery::ApiError;
use serde_json::{Value, json};

use crate::context::{Context, Plugin};
use rkube_registry::admission::Operation;

const GROUP: &str = "scheduling.k8s.io";

/// The plugin.
pub struct Priority;

#[async_trait::async_trait]
impl Plugin for Priority {
    async fn admit(&self, ctx: &Context<'_>, obj: Option<&mut Value>) -> Result<(), ApiError> {
        let Some(obj) = obj else { return Ok(()) };
        if ctx.is_pod_create() {
            return admit_pod(ctx, obj).await;
        }
        Ok(())
    }

    async fn validate(&self, ctx: &Context<'_>, obj: Option<&Value>) -> Result<(), ApiError> {
        let Some(pc) = obj else { return Ok(()) };
        if !ctx.is(GROUP, "priorityclasses") || !matches!(ctx.req.operation, Operation::Create | Operation::Update) {
            return Ok(());
        }
        if pc["globalDefault"].as_bool() != Some(true) {
            return Ok(());
        }
        let name = pc["metadata"]["name"].as_str().unwrap_or("");
        for other in ctx.list(GROUP, "v1", "priorityclasses", None).await? {
            let other_name = other["metadata"]["name"].as_str().unwrap_or("");
            if other_name != name && other["globalDefault"].as_bool() == Some(true) {
                return Err(ctx.forbidden(&format!("PriorityClass {other_name} is already marked as default. Only one default can exist")));
            }
        }
        Ok(())
    }
}

async fn admit_pod(ctx: &Context<'_>, pod: &mut Value) -> Result<(), ApiError> {
    let spec = &mut pod["spec"];
    let (priority, preemption) = match spec["priorityClassName"].as_str().filter(|s| !s.is_empty()) {
        Some(name) => {
            let name = name.to_string();
            let Some(pc) = ctx.get(GROUP, "v1", "priorityclasses", None, &name).await? else {
                return Err(ctx.forbidden(&format!("no PriorityClass with name {name} was found")));
            };
            (pc["value"].as_i64().unwrap_or(0), preemption_of(&pc))
        }
        None => {
            let classes = ctx.list(GROUP, "v1", "priorityclasses", None).await?;
            // With several defaults (written around this check) upstream takes the lowest value.
            match classes.iter().filter(|pc| pc["globalDefault"].as_bool() == Some(true)).min_by_key(|pc| pc["value"].as_i64().unwrap_or(0)) {
                Some(pc) => {
                    spec["priorityClassName"] = pc["metadata"]["name"].clone();
                    (pc["value"].as_i64().unwrap_or(0), preemption_of(pc))
                }
                None => (0, "PreemptLowerPriority".to_string()),
            }
        }
    };
    if let Some(given) = spec["priority"].as_i64().filter(|p| *p != priority) {
        return Err(ctx.forbidden(&format!(
            "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name"
        )));
    }
    if let Some(given) = spec["preemptionPolicy"].as_str().filter(|p| *p != preemption) {
        return Err(ctx.forbidden(&format!(
            "the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {preemption} from the given PriorityClass name"
        )));
    }
    spec["priority"] = json!(priority);
    spec["preemptionPolicy"] = json!(preemption);
    Ok(())
}

fn preemption_of(pc: &Value) -> String {
    pc["preemptionPolicy"].as_str().unwrap_or("PreemptLowerPriority").to_string()
}
