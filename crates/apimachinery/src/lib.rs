//! Shared Kubernetes API vocabulary for rkube, with no I/O.
//!
//! - [`error::ApiError`]: every API failure, rendered as a `metav1.Status`.
//! - [`resources`]: the table of served resources (group, version, plural, kind, scope, verbs, …).
//! - [`selectors`]: label and field selector parsing and matching.
//! - [`meta`]: helpers over JSON objects (metadata access, names, timestamps).

pub mod error;
pub mod meta;
pub mod nodes;
pub mod quantity;
pub mod resources;
pub mod selectors;

pub use error::{ApiError, FieldError, FieldErrorType};
pub use resources::{GroupVersionResource, ResourceInfo, Scope};
