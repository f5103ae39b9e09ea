//! OpenAPI for rkube: the definitions of every type it serves, named as upstream
//! (`io.k8s.api.apps.v1.Deployment`), the documents clients download (`/openapi/v2` as JSON and
//! as gnostic protobuf, `/openapi/v3` per group-version), and schema lookups by GVK and field path
//! for strategic merge patch and server-side apply.
//!
//! The built-in definitions are data generated once by `tools/openapi-gen` (see its README) into
//! `data/definitions.json`, parsed on first use. Custom resources add theirs at run time through
//! [`Catalog::register`].

pub mod catalog;
pub mod documents;
pub mod gnostic;
mod paths;
pub mod schema;
mod v3;

pub use catalog::{Catalog, Gvk};
pub use documents::{OpenApiDocuments, V2Document, V3Documents};
pub use schema::{ListType, MapType, SchemaRef};
