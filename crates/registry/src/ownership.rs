//! Field ownership (`metadata.managedFields`) on every write that comes from an API request.
//!
//! Who is writing is request metadata, like the user: the API server runs each request inside
//! [`with_writer`], and the registry's create/update paths record the writer's changes. Writes
//! without a writer (the server's own bootstrap and finalizer loops) are not tracked. Server-side
//! apply computes ownership itself ([`rkube_fieldmanager::apply`]); its writer is marked so the
//! update path leaves the result alone.

use std::future::Future;
use std::sync::Arc;

use rkube_apimachinery::resources::ResourceInfo;
use rkube_fieldmanager::{DynSchema, Path, Set, WriteContext};
use serde_json::Value;

/// The field manager of the current request.
#[derive(Debug, Clone)]
pub struct Writer {
    /// `fieldManager`, or the User-Agent's product name.
    pub manager: String,
    /// `""`, `"status"`, `"scale"`, …
    pub subresource: String,
    /// A server-side apply: ownership was already computed.
    pub applying: bool,
}

tokio::task_local! {
    static WRITER: Writer;
}

/// Runs `f` as a request by `writer`.
pub async fn with_writer<F: Future>(writer: Writer, f: F) -> F::Output {
    WRITER.scope(writer, f).await
}

/// Finds the schema of a kind (group, version, kind) for field management.
pub type SchemaProvider = Arc<dyn Fn(&str, &str, &str) -> Option<DynSchema> + Send + Sync>;

/// Paths a write to `subresource` of `res` may not own: a kind with a status subresource keeps
/// status out of main-resource writes, and a status write owns only status.
pub fn ignored_fields(res: &ResourceInfo, subresource: &str) -> Set {
    let mut s = Set::new();
    let has_status = res.subresources.iter().any(|sr| sr.name == "status");
    match subresource {
        "" if has_status => s.insert(&Path::fields(&["status"]).0),
        "status" => {
            s.insert(&Path::fields(&["spec"]).0);
        }
        _ => {}
    }
    s
}

/// Records the current writer's changes from `old` (None on create) to `new`.
pub(crate) fn track(res: &ResourceInfo, schema: Option<&DynSchema>, old: Option<&Value>, new: &mut Value) {
    let Ok(writer) = WRITER.try_with(Clone::clone) else { return };
    if writer.applying {
        return;
    }
    let empty = serde_json::json!({});
    let ignored = ignored_fields(res, &writer.subresource);
    let now = rkube_apimachinery::meta::now_rfc3339();
    let api_version = res.api_version();
    let ctx = WriteContext { manager: &writer.manager, api_version: &api_version, subresource: &writer.subresource, ignored: &ignored, now: &now };
    rkube_fieldmanager::update(old.unwrap_or(&empty), new, schema, &ctx);
}
