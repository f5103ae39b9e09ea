//! The rkube API server: the only crate that serves HTTP.
//!
//! [`router`] builds the axum app (one dispatcher that parses the path like upstream's
//! RequestInfoFactory, then discovery, health, or the resource handlers); [`server::serve`] runs it
//! over TLS, attaching the verified client-certificate identity to each request.

pub mod custom_resource;
pub mod csr;
pub mod custom_table;
pub mod audit;
pub mod authz;
pub mod discovery;
pub mod encode;
pub mod field_validation;
pub mod handler;
pub mod metrics;
pub mod negotiate;
pub mod node_proxy;
pub mod openapi;
pub mod patch;
pub mod pod_logs;
pub mod kubelet_client;
mod pod_stream;
pub mod request_info;
pub mod scale;
pub mod server;
pub mod state;
pub mod table;
pub mod watch;
pub mod write_options;

pub use handler::router;
pub use state::{ApiServerConfig, AppState, UserInfo};
