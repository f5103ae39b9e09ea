//! Who is asking and what they may do.
//!
//! - [`user::UserInfo`]: the identity of a request; [`context`] carries it through a request.
//! - [`attributes::Attributes`]: what a request asks, and upstream's 403 when it is denied.
//! - [`authorizer::Authorizer`]: the `system:masters` shortcut and RBAC over an index of
//!   roles and bindings ([`index`]) fed from the watch cache ([`feed`]).
//! - [`node`]: the Node authorizer, asked before RBAC, over a graph of what each node's pods use.
//! - [`rules`]: rule matching and the rule-set comparison behind [`escalation`] checks.
//! - [`bootstrap_policy`]: upstream's default roles and bindings, as data, and their reconciliation.
//! - [`aggregation`]: the ClusterRole aggregation controller.
//! - [`impersonation`]: `Impersonate-*` headers.
//! - [`reviews`]: SubjectAccessReview and friends, SelfSubjectReview.

pub mod aggregation;
pub mod attributes;
pub mod authn;
pub mod authorizer;
pub mod bootstrap_policy;
pub mod context;
pub mod escalation;
pub mod feed;
pub mod impersonation;
pub mod index;
pub mod node;
pub mod reviews;
pub mod rules;
pub mod user;

pub use attributes::Attributes;
pub use authorizer::{Authorizer, Decision};
pub use context::{current_user, with_user};
pub use user::UserInfo;
