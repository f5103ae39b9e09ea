//! Built-in resources of Kubernetes 1.33.

use super::ResourceInfo;

/// Every built-in resource rkube serves.
pub fn builtin_resources() -> Vec<ResourceInfo> {
    Vec::new()
}
