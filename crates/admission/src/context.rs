//! What a plugin sees of a request, and the plugin interface.

use std::sync::Arc;

use rkube_apimachinery::{ApiError, ResourceInfo};
use rkube_auth::UserInfo;
use rkube_registry::admission::{AdmissionRequest, Operation};
use rkube_registry::{ListOptions, Registry};
use serde_json::Value;

/// One request as admission sees it.
pub struct Context<'a> {
    /// The registry's description of the write.
    pub req: &'a AdmissionRequest<'a>,
    /// Who writes.
    pub user: UserInfo,
    /// For plugins that read other objects (ServiceAccounts, LimitRanges, quotas, …).
    pub registry: Arc<Registry>,
}

impl Context<'_> {
    /// Whether the request writes `group`/`plural` itself (not a subresource).
    pub fn is(&self, group: &str, plural: &str) -> bool {
        self.req.resource.group == group && self.req.resource.plural == plural && self.req.subresource.is_empty()
    }

    /// Whether this is a pod create.
    pub fn is_pod_create(&self) -> bool {
        self.is("", "pods") && self.req.operation == Operation::Create
    }

    /// `admission.NewForbidden`: `<resource> "<name>" is forbidden: <why>`.
    pub fn forbidden(&self, why: &str) -> ApiError {
        ApiError::forbidden(&self.req.resource.group, &self.req.resource.plural, self.req.name, why)
    }

    /// The namespace of the request, or "".
    pub fn namespace(&self) -> &str {
        self.req.namespace.unwrap_or("")
    }

    fn resource(&self, group: &str, version: &str, plural: &str) -> Result<Arc<ResourceInfo>, ApiError> {
        self.registry.lookup(group, version, plural).ok_or_else(|| ApiError::internal(format!("resource {plural} is not served")))
    }

    /// Reads one object; `Ok(None)` when it does not exist.
    pub async fn get(&self, group: &str, version: &str, plural: &str, ns: Option<&str>, name: &str) -> Result<Option<Value>, ApiError> {
        let res = self.resource(group, version, plural)?;
        match self.registry.get(&res, ns, name, "").await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.code == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Lists objects (of one namespace, or all when `ns` is None).
    pub async fn list(&self, group: &str, version: &str, plural: &str, ns: Option<&str>) -> Result<Vec<Value>, ApiError> {
        let res = self.resource(group, version, plural)?;
        let listed = self.registry.list(&res, ns, &ListOptions::default()).await?;
        Ok(listed["items"].as_array().cloned().unwrap_or_default())
    }
}

/// An admission plugin: `admit` runs in the mutating phase, `validate` in the validating one.
#[async_trait::async_trait]
pub trait Plugin: Send + Sync {
    /// Mutating phase (`obj` is None for deletes).
    async fn admit(&self, _ctx: &Context<'_>, _obj: Option<&mut Value>) -> Result<(), ApiError> {
        Ok(())
    }
    /// Validating phase.
    async fn validate(&self, _ctx: &Context<'_>, _obj: Option<&Value>) -> Result<(), ApiError> {
        Ok(())
    }
}
