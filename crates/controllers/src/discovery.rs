//! The server's resources, as the garbage collector and the namespace controller see them
//! (upstream uses discovery the same way: `GetDeletableResources`).

use kube::Client;
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope, verbs};

use crate::error::Result;

/// A resource that can be listed, watched and deleted.
#[derive(Clone, Debug)]
pub struct Deletable {
    /// Group, version, kind, plural.
    pub resource: ApiResource,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// DELETE on a collection is served.
    pub delete_collection: bool,
}

/// The preferred version of every resource with list, watch and delete (Events excluded: they
/// take no part in garbage collection, and namespace deletion removes them by collection).
pub async fn deletable_resources(client: &Client, include_events: bool) -> Result<Vec<Deletable>> {
    let discovery = Discovery::new(client.clone()).run().await?;
    let mut out = Vec::new();
    for group in discovery.groups() {
        for (resource, caps) in group.recommended_resources() {
            if !usable(&caps) || (!include_events && resource.plural == "events") {
                continue;
            }
            out.push(Deletable {
                namespaced: caps.scope == Scope::Namespaced,
                delete_collection: caps.supports_operation(verbs::DELETE_COLLECTION),
                resource,
            });
        }
    }
    Ok(out)
}

fn usable(caps: &ApiCapabilities) -> bool {
    [verbs::LIST, verbs::WATCH, verbs::DELETE]
        .iter()
        .all(|v| caps.supports_operation(v))
}
