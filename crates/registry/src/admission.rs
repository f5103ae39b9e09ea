//! The seam through which every API write passes admission control. The registry knows when to
//! call it (upstream's handlers call mutating admission before `BeforeCreate`/`BeforeUpdate` and
//! validating admission after them, `staging/src/k8s.io/apiserver/pkg/endpoints/handlers`); what
//! the plugins do lives in `rkube-admission`, installed once at start-up.

use std::sync::Arc;

use rkube_apimachinery::{ApiError, ResourceInfo};
use serde_json::Value;

/// `admission.Operation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A create (POST, or PUT that creates).
    Create,
    /// An update (PUT, PATCH).
    Update,
    /// A delete.
    Delete,
    /// A connect (exec, attach, port-forward, proxy).
    Connect,
}

impl Operation {
    /// The wire spelling (`CREATE`, …) used by AdmissionReview and webhook rules.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "CREATE",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
            Self::Connect => "CONNECT",
        }
    }
}

/// What admission sees of a request (upstream `admission.Attributes`); the user is the task's
/// request user (`rkube_auth::current_user`).
#[derive(Debug, Clone, Copy)]
pub struct AdmissionRequest<'a> {
    /// The resource written.
    pub resource: &'a ResourceInfo,
    /// `status` for status updates, else empty.
    pub subresource: &'a str,
    /// What is done.
    pub operation: Operation,
    /// The namespace (None for cluster-scoped resources).
    pub namespace: Option<&'a str>,
    /// The object's name (may be empty for a create with generateName before naming).
    pub name: &'a str,
    /// The stored object for updates and deletes.
    pub old: Option<&'a Value>,
    /// Whether the request is a dry run.
    pub dry_run: bool,
}

/// The admission chain as the registry calls it.
#[async_trait::async_trait]
pub trait AdmissionHook: Send + Sync {
    /// The mutating phase: may change `obj` (absent for deletes).
    async fn mutate(&self, req: &AdmissionRequest<'_>, obj: Option<&mut Value>) -> Result<(), ApiError>;
    /// The validating phase, on the object as it will be stored.
    async fn validate(&self, req: &AdmissionRequest<'_>, obj: Option<&Value>) -> Result<(), ApiError>;
}

/// An installed chain.
pub type SharedAdmission = Arc<dyn AdmissionHook>;

tokio::task_local! {
    static WARNINGS: std::cell::RefCell<Vec<String>>;
}

/// Runs `f` collecting the warnings admission adds; returns them with `f`'s output. The API
/// server sends them as `Warning` headers.
pub async fn collect_warnings<F: std::future::Future>(f: F) -> (F::Output, Vec<String>) {
    WARNINGS
        .scope(std::cell::RefCell::new(Vec::new()), async move {
            let out = f.await;
            let warnings = WARNINGS.try_with(|w| w.take()).unwrap_or_default();
            (out, warnings)
        })
        .await
}

/// Adds a warning to the current request's response (no-op outside a request).
pub fn add_warning(text: impl Into<String>) {
    let text = text.into();
    let _ = WARNINGS.try_with(|w| {
        let mut w = w.borrow_mut();
        if !w.contains(&text) {
            w.push(text);
        }
    });
}

tokio::task_local! {
    static AUDIT_ANNOTATIONS: std::cell::RefCell<Vec<(String, String)>>;
}

/// Runs `f` collecting the audit annotations admission adds (upstream
/// `Attributes.AddAnnotation`); the API server writes them into the request's audit event.
pub async fn collect_audit_annotations<F: std::future::Future>(f: F) -> (F::Output, Vec<(String, String)>) {
    AUDIT_ANNOTATIONS
        .scope(std::cell::RefCell::new(Vec::new()), async move {
            let out = f.await;
            let annotations = AUDIT_ANNOTATIONS.try_with(|a| a.take()).unwrap_or_default();
            (out, annotations)
        })
        .await
}

/// Adds (or replaces) an annotation on the current request's audit event (no-op outside a
/// request).
pub fn add_audit_annotation(key: impl Into<String>, value: impl Into<String>) {
    let (key, value) = (key.into(), value.into());
    let _ = AUDIT_ANNOTATIONS.try_with(|a| {
        let mut a = a.borrow_mut();
        a.retain(|(k, _)| *k != key);
        a.push((key, value));
    });
}
