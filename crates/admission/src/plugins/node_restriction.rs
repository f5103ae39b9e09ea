//! NodeRestriction: a kubelet (`system:node:<name>` in `system:nodes`) may only write its own
//! Node and pods bound to it (upstream `plugin/pkg/admission/noderestriction/admission.go`).

use rkube_apimachinery::ApiError;
use rkube_registry::admission::Operation;
use serde_json::Value;

use crate::context::{Context, Plugin};

const NODE_PREFIX: &str = "system:node:";
const NODES_GROUP: &str = "system:nodes";

/// The plugin.
pub struct NodeRestriction;

#[async_trait::async_trait]
impl Plugin for NodeRestriction {
    async fn admit(&self, ctx: &Context<'_>, obj: Option<&mut Value>) -> Result<(), ApiError> {
        let Some(node) = node_name(ctx) else { return Ok(()) };
        let res = ctx.req.resource;
        if !res.group.is_empty() {
            return Ok(());
        }
        match res.plural.as_str() {
            "nodes" => {
                if ctx.req.name != node {
                    return Err(ctx.forbidden(&format!("node \"{node}\" is not allowed to modify node \"{}\"", ctx.req.name)));
                }
                Ok(())
            }
            "pods" => {
                let pod = obj.as_deref().or(ctx.req.old);
                let bound = pod.and_then(|p| p["spec"]["nodeName"].as_str()).unwrap_or("");
                match ctx.req.operation {
                    Operation::Create if !is_mirror(pod) => {
                        Err(ctx.forbidden(&format!("node \"{node}\" can only create mirror pods")))
                    }
                    _ if bound != node => {
                        let verb = match ctx.req.operation {
                            Operation::Delete => "delete",
                            Operation::Create => "create",
                            _ => "update",
                        };
                        Err(ctx.forbidden(&format!("node \"{node}\" can only {verb} pods with spec.nodeName set to itself")))
                    }
                    _ => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }
}

fn is_mirror(pod: Option<&Value>) -> bool {
    pod.is_some_and(|p| p["metadata"]["annotations"]["kubernetes.io/config.mirror"].is_string())
}

fn node_name(ctx: &Context<'_>) -> Option<String> {
    let name = ctx.user.name.strip_prefix(NODE_PREFIX)?;
    (ctx.user.in_group(NODES_GROUP) && !name.is_empty()).then(|| name.to_string())
}
