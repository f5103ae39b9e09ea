//! Mutating and validating admission webhooks: `admissionregistration.k8s.io/v1`
//! configurations read through the registry (watch cache), AdmissionReview v1 over HTTPS with
//! the configuration's `caBundle`, JSON patch responses, failurePolicy, namespace and object
//! selectors, timeouts and `reinvocationPolicy: IfNeeded` (upstream
//! `staging/src/k8s.io/apiserver/pkg/admission/plugin/webhook`), and CEL `matchConditions`
//! ([`match_conditions`]).

use std::time::Duration;

use base64::Engine;
use rkube_apimachinery::ApiError;
use rkube_registry::admission::{Operation, add_warning};
use serde_json::{Value, json};

use crate::context::{Context, Plugin};

mod client;
pub mod match_conditions;
mod matching;

const GROUP: &str = "admissionregistration.k8s.io";
const DEFAULT_TIMEOUT: u64 = 10;

/// One phase of webhooks.
pub struct Webhooks {
    mutating: bool,
}

impl Webhooks {
    /// MutatingAdmissionWebhook.
    pub fn mutating() -> Self {
        Self { mutating: true }
    }
    /// ValidatingAdmissionWebhook.
    pub fn validating() -> Self {
        Self { mutating: false }
    }

    /// The webhooks of every configuration of this phase, by configuration name (as upstream
    /// sorts them).
    async fn hooks(&self, ctx: &Context<'_>) -> Result<Vec<Value>, ApiError> {
        let plural = if self.mutating { "mutatingwebhookconfigurations" } else { "validatingwebhookconfigurations" };
        let mut configs = ctx.list(GROUP, "v1", plural, None).await?;
        configs.sort_by(|a, b| a["metadata"]["name"].as_str().cmp(&b["metadata"]["name"].as_str()));
        Ok(configs.iter().flat_map(|c| c["webhooks"].as_array().cloned().unwrap_or_default()).collect())
    }
}

#[async_trait::async_trait]
impl Plugin for Webhooks {
    async fn admit(&self, ctx: &Context<'_>, obj: Option<&mut Value>) -> Result<(), ApiError> {
        if !self.mutating || skipped(ctx) {
            return Ok(());
        }
        let hooks = self.hooks(ctx).await?;
        if hooks.is_empty() {
            return Ok(());
        }
        let mut current = obj.as_deref().cloned();
        let mut reinvoke = Vec::new();
        for hook in &hooks {
            if !should_call(ctx, hook, current.as_ref()).await? {
                continue;
            }
            call(ctx, hook, &mut current, true).await?;
            if hook["reinvocationPolicy"] == "IfNeeded" {
                reinvoke.push(hook);
            }
        }
        // Webhooks that asked for it run once more when a later webhook changed the object.
        if obj.as_deref() != current.as_ref() {
            for hook in reinvoke {
                if should_call(ctx, hook, current.as_ref()).await? {
                    call(ctx, hook, &mut current, true).await?;
                }
            }
        }
        if let (Some(o), Some(c)) = (obj, current) {
            *o = c;
        }
        Ok(())
    }

    async fn validate(&self, ctx: &Context<'_>, obj: Option<&Value>) -> Result<(), ApiError> {
        let (plural, kind) = if self.mutating {
            ("mutatingwebhookconfigurations", "MutatingWebhookConfiguration")
        } else {
            ("validatingwebhookconfigurations", "ValidatingWebhookConfiguration")
        };
        if ctx.is(GROUP, plural)
            && let Some(config) = obj.filter(|_| matches!(ctx.req.operation, Operation::Create | Operation::Update))
        {
            let errors = match_conditions::validate(config);
            if !errors.is_empty() {
                let name = config["metadata"]["name"].as_str().unwrap_or(ctx.req.name);
                return Err(ApiError::invalid(GROUP, kind, name, &errors));
            }
        }
        if self.mutating || skipped(ctx) {
            return Ok(());
        }
        let hooks = self.hooks(ctx).await?;
        for hook in &hooks {
            if !should_call(ctx, hook, obj).await? {
                continue;
            }
            let mut unchanged = obj.cloned();
            call(ctx, hook, &mut unchanged, false).await?;
        }
        Ok(())
    }
}

/// Whether a webhook is called: its rules and selectors match, then its matchConditions hold.
/// Conditions that fail to evaluate skip the webhook under failurePolicy Ignore and refuse the
/// request under Fail, as upstream's dispatcher.
async fn should_call(ctx: &Context<'_>, hook: &Value, obj: Option<&Value>) -> Result<bool, ApiError> {
    if !matching::applies(ctx, hook, obj).await? {
        return Ok(false);
    }
    if hook["matchConditions"].as_array().is_none_or(|c| c.is_empty()) {
        return Ok(true);
    }
    let mut request = review(ctx, None, "")["request"].clone();
    if let Some(r) = request.as_object_mut() {
        r.remove("object");
        r.remove("oldObject");
        r.remove("uid");
    }
    let namespace_object = match ctx.req.namespace.filter(|_| ctx.req.resource.namespaced()) {
        Some(ns) => ctx.get("", "v1", "namespaces", None, ns).await?.unwrap_or(Value::Null),
        None => Value::Null,
    };
    let vars = match_conditions::Variables {
        object: obj.unwrap_or(&Value::Null),
        old_object: ctx.req.old.unwrap_or(&Value::Null),
        request: &request,
        namespace_object: &namespace_object,
    };
    match match_conditions::evaluate(hook, &vars) {
        match_conditions::Outcome::Call => Ok(true),
        match_conditions::Outcome::Skip => Ok(false),
        match_conditions::Outcome::Failed(e) => {
            if hook["failurePolicy"] == "Ignore" {
                tracing::warn!(webhook = hook["name"].as_str().unwrap_or(""), error = %e, "matchConditions failed, webhook skipped by failurePolicy");
                return Ok(false);
            }
            Err(ctx.forbidden(&e))
        }
    }
}

/// Webhooks never see writes of webhook configurations themselves (so a broken webhook can be
/// removed), as upstream.
fn skipped(ctx: &Context<'_>) -> bool {
    let r = ctx.req.resource;
    r.group == GROUP && (r.plural.ends_with("webhookconfigurations") || r.plural.starts_with("validatingadmissionpolic"))
}

fn review(ctx: &Context<'_>, obj: Option<&Value>, uid: &str) -> Value {
    let r = ctx.req.resource;
    let user = &ctx.user;
    let mut request = json!({
        "uid": uid,
        "kind": {"group": r.group, "version": r.version, "kind": r.kind},
        "resource": {"group": r.group, "version": r.version, "resource": r.plural},
        "requestKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "requestResource": {"group": r.group, "version": r.version, "resource": r.plural},
        "name": ctx.req.name,
        "operation": ctx.req.operation.as_str(),
        "userInfo": {"username": user.name, "groups": user.groups},
        "object": obj.cloned().unwrap_or(Value::Null),
        "oldObject": ctx.req.old.cloned().unwrap_or(Value::Null),
        "dryRun": ctx.req.dry_run,
    });
    if !user.uid.is_empty() {
        request["userInfo"]["uid"] = json!(user.uid);
    }
    if !user.extra.is_empty() {
        request["userInfo"]["extra"] = json!(user.extra);
    }
    if let Some(ns) = ctx.req.namespace {
        request["namespace"] = json!(ns);
    }
    if !ctx.req.subresource.is_empty() {
        request["subResource"] = json!(ctx.req.subresource);
        request["requestSubResource"] = json!(ctx.req.subresource);
    }
    let options = match ctx.req.operation {
        Operation::Create => json!({"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}),
        Operation::Update => json!({"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1"}),
        Operation::Delete => json!({"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1"}),
        Operation::Connect => Value::Null,
    };
    request["options"] = options;
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
}

/// Calls one webhook; a mutating one may change `obj`.
async fn call(ctx: &Context<'_>, hook: &Value, obj: &mut Option<Value>, mutating: bool) -> Result<(), ApiError> {
    let name = hook["name"].as_str().unwrap_or("");
    if ctx.req.dry_run && !matches!(hook["sideEffects"].as_str(), Some("None") | Some("NoneOnDryRun")) {
        return Err(ApiError::bad_request(format!("admission webhook \"{name}\" does not support dry run")));
    }
    let uid = uuid::Uuid::new_v4().to_string();
    let body = review(ctx, obj.as_ref(), &uid);
    let timeout = Duration::from_secs(hook["timeoutSeconds"].as_u64().unwrap_or(DEFAULT_TIMEOUT));
    let answer = match client::post(ctx, &hook["clientConfig"], &body, timeout).await {
        Ok(a) => a,
        Err(e) => {
            if hook["failurePolicy"] == "Ignore" {
                tracing::warn!(webhook = name, error = %e, "webhook failed, ignored by failurePolicy");
                return Ok(());
            }
            return Err(ApiError::internal(format!("failed calling webhook \"{name}\": {e}")));
        }
    };
    let response = &answer["response"];
    if response["uid"].as_str() != Some(uid.as_str()) {
        let e = format!("expected response.uid=\"{uid}\", got \"{}\"", response["uid"].as_str().unwrap_or(""));
        if hook["failurePolicy"] == "Ignore" {
            return Ok(());
        }
        return Err(ApiError::internal(format!("failed calling webhook \"{name}\": {e}")));
    }
    for w in response["warnings"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        add_warning(w.to_string());
    }
    if response["allowed"].as_bool() != Some(true) {
        return Err(denied(name, &response["status"]));
    }
    if mutating && let (Some(patch), Some(target)) = (response["patch"].as_str(), obj.as_mut()) {
        let bytes = base64::engine::general_purpose::STANDARD.decode(patch).map_err(|e| ApiError::internal(format!("failed calling webhook \"{name}\": invalid patch: {e}")))?;
        let ops: json_patch::Patch = serde_json::from_slice(&bytes).map_err(|e| ApiError::internal(format!("failed calling webhook \"{name}\": invalid patch: {e}")))?;
        json_patch::patch(target, &ops.0).map_err(|e| ApiError::internal(format!("failed calling webhook \"{name}\": {e}")))?;
    }
    Ok(())
}

/// Upstream's `webhookerrors.ToStatusErr`: a code of at least 400 (default 400) and
/// `admission webhook "<name>" denied the request: <message>`.
fn denied(name: &str, status: &Value) -> ApiError {
    let code = status["code"].as_u64().map_or(400, |c| c.max(400)) as u16;
    let base = format!("admission webhook \"{name}\" denied the request");
    let message = match (status["message"].as_str().filter(|m| !m.is_empty()), status["reason"].as_str().filter(|r| !r.is_empty())) {
        (Some(m), _) => format!("{base}: {m}"),
        (None, Some(r)) => format!("{base}: {r}"),
        (None, None) => format!("{base} without explanation"),
    };
    ApiError::with_code(code, status["reason"].as_str().unwrap_or(""), message)
}
