//! Mutating and validating admission webhooks (placeholder until implemented).

use rkube_apimachinery::ApiError;
use serde_json::Value;

use crate::context::{Context, Plugin};

/// One phase of webhooks.
pub struct Webhooks {
    mutating: bool,
}

impl Webhooks {
    /// MutatingAdmissionWebhook.
    pub fn mutating() -> Self {
        Self { mutating: true }
    }
    /// ValidatingAdmissionWebhook.
    pub fn validating() -> Self {
        Self { mutating: false }
    }
}

#[async_trait::async_trait]
impl Plugin for Webhooks {
    async fn admit(&self, _ctx: &Context<'_>, _obj: Option<&mut Value>) -> Result<(), ApiError> {
        let _ = self.mutating;
        Ok(())
    }
}
