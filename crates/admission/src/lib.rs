//! Admission control: the plugins of kube-apiserver's default chain in upstream's order, then
//! admission webhooks, installed on the registry as its [`AdmissionHook`].
//!
//! Upstream runs every mutating plugin's `Admit` in order, then every validating plugin's
//! `Validate` (`staging/src/k8s.io/apiserver/pkg/admission/chain.go`); the order is
//! kube-apiserver's `RecommendedPluginOrder` (`pkg/kubeapiserver/options/plugins.go`).
//! NamespaceLifecycle stays in the registry (`Registry::check_namespace`), which runs it first.

pub mod config;
pub mod context;
pub mod plugins;
pub mod quota;
pub mod quota_controller;
pub mod webhook;

use std::sync::{Arc, Weak};

use rkube_apimachinery::ApiError;
use rkube_registry::Registry;
use rkube_registry::admission::{AdmissionHook, AdmissionRequest};
use serde_json::Value;

pub use context::{Context, Plugin};

/// Names of the built-in plugins, in upstream's order.
pub const PLUGIN_NAMES: &[&str] = &[
    "NamespaceLifecycle",
    "LimitRanger",
    "ServiceAccount",
    "NodeRestriction",
    "Priority",
    "DefaultTolerationSeconds",
    "DefaultStorageClass",
    "StorageObjectInUseProtection",
    "CertificateSubjectRestriction",
    "PodSecurity",
    "MutatingAdmissionWebhook",
    "ValidatingAdmissionWebhook",
    "ResourceQuota",
];

/// The chain installed on the registry.
pub struct AdmissionChain {
    registry: Weak<Registry>,
    plugins: Vec<Box<dyn Plugin>>,
}

impl AdmissionChain {
    /// The default chain without the plugins named in `disabled` (`--disable-admission-plugins`).
    pub fn new(registry: &Arc<Registry>, disabled: &[String]) -> Result<Self, String> {
        Self::with_config(registry, disabled, &config::AdmissionConfig::default())
    }

    /// As [`AdmissionChain::new`], with plugin configurations (`--admission-control-config-file`).
    pub fn with_config(registry: &Arc<Registry>, disabled: &[String], config: &config::AdmissionConfig) -> Result<Self, String> {
        for d in disabled {
            if !PLUGIN_NAMES.contains(&d.as_str()) {
                return Err(format!("unknown admission plugin \"{d}\""));
            }
        }
        let on = |n: &str| !disabled.iter().any(|d| d == n);
        let mut plugins: Vec<Box<dyn Plugin>> = Vec::new();
        if on("LimitRanger") {
            plugins.push(Box::new(plugins::limit_ranger::LimitRanger));
        }
        if on("ServiceAccount") {
            plugins.push(Box::new(plugins::service_account::ServiceAccount));
        }
        if on("NodeRestriction") {
            plugins.push(Box::new(plugins::node_restriction::NodeRestriction));
        }
        if on("Priority") {
            plugins.push(Box::new(plugins::priority::Priority));
        }
        if on("DefaultTolerationSeconds") {
            plugins.push(Box::new(plugins::default_tolerations::DefaultTolerationSeconds));
        }
        if on("DefaultStorageClass") {
            plugins.push(Box::new(plugins::default_storage_class::DefaultStorageClass));
        }
        if on("StorageObjectInUseProtection") {
            plugins.push(Box::new(plugins::storage_protection::StorageObjectInUseProtection));
        }
        if on("CertificateSubjectRestriction") {
            plugins.push(Box::new(plugins::certificate_subject_restriction::CertificateSubjectRestriction));
        }
        if on("PodSecurity") {
            plugins.push(Box::new(plugins::pod_security::PodSecurity::new(config.plugin("PodSecurity"))?));
        }
        if on("MutatingAdmissionWebhook") {
            plugins.push(Box::new(webhook::Webhooks::mutating()));
        }
        if on("ValidatingAdmissionWebhook") {
            plugins.push(Box::new(webhook::Webhooks::validating()));
        }
        if on("ResourceQuota") {
            plugins.push(Box::new(plugins::resource_quota::ResourceQuota));
        }
        Ok(Self { registry: Arc::downgrade(registry), plugins })
    }

    fn context<'a>(&self, req: &'a AdmissionRequest<'a>) -> Option<Context<'a>> {
        // Writes the server makes itself (bootstrap, CRD status) carry no request user and skip
        // admission, as upstream's privileged loopback writes of internal objects do.
        let user = rkube_auth::current_user()?;
        let registry = self.registry.upgrade()?;
        Some(Context { req, user, registry })
    }
}

#[async_trait::async_trait]
impl AdmissionHook for AdmissionChain {
    async fn mutate(&self, req: &AdmissionRequest<'_>, mut obj: Option<&mut Value>) -> Result<(), ApiError> {
        let Some(ctx) = self.context(req) else { return Ok(()) };
        for p in &self.plugins {
            p.admit(&ctx, obj.as_deref_mut()).await?;
        }
        Ok(())
    }

    async fn validate(&self, req: &AdmissionRequest<'_>, obj: Option<&Value>) -> Result<(), ApiError> {
        let Some(ctx) = self.context(req) else { return Ok(()) };
        for p in &self.plugins {
            p.validate(&ctx, obj).await?;
        }
        Ok(())
    }
}
