//! Options of list, watch and delete requests, parsed by the API server.

use rkube_apimachinery::selectors::{FieldSelector, LabelSelector};

/// `metav1.ListOptions` (the parts that affect what is read).
#[derive(Debug, Default, Clone)]
pub struct ListOptions {
    /// `labelSelector`
    pub label_selector: Option<LabelSelector>,
    /// `fieldSelector`
    pub field_selector: Option<FieldSelector>,
    /// `limit` (0 = all)
    pub limit: usize,
    /// `continue`
    pub continue_token: Option<String>,
    /// `resourceVersion` as sent ("" = unset)
    pub resource_version: String,
    /// `resourceVersionMatch` as sent ("" = unset)
    pub resource_version_match: String,
}

/// `metav1.DeleteOptions`.
#[derive(Debug, Default, Clone)]
pub struct DeleteOptions {
    /// `gracePeriodSeconds`
    pub grace_period_seconds: Option<i64>,
    /// `preconditions.uid`
    pub precondition_uid: Option<String>,
    /// `preconditions.resourceVersion`
    pub precondition_resource_version: Option<String>,
    /// `propagationPolicy`: Orphan | Background | Foreground
    pub propagation_policy: Option<String>,
    /// `orphanDependents` (deprecated)
    pub orphan_dependents: Option<bool>,
    /// `dryRun=All`
    pub dry_run: bool,
}
