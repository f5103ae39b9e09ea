//! CertificateSubjectRestriction (plugin/pkg/admission/certificates/subjectrestriction): no
//! CertificateSigningRequest for the `kubernetes.io/kube-apiserver-client` signer may ask for
//! the `system:masters` group, so approving a client certificate never mints a cluster admin
//! that RBAC cannot take back.

use base64::Engine;
use rkube_apimachinery::ApiError;
use rkube_registry::admission::Operation;
use serde_json::Value;

use crate::context::{Context, Plugin};

const API_SERVER_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client";
const SYSTEM_MASTERS: &str = "system:masters";

/// The plugin.
pub struct CertificateSubjectRestriction;

#[async_trait::async_trait]
impl Plugin for CertificateSubjectRestriction {
    async fn validate(&self, ctx: &Context<'_>, obj: Option<&Value>) -> Result<(), ApiError> {
        if !ctx.is("certificates.k8s.io", "certificatesigningrequests") || ctx.req.operation != Operation::Create {
            return Ok(());
        }
        let Some(csr) = obj else { return Ok(()) };
        let signer = csr["spec"]["signerName"].as_str().unwrap_or_default();
        if signer != API_SERVER_CLIENT_SIGNER {
            return Ok(());
        }
        let pem = base64::engine::general_purpose::STANDARD.decode(csr["spec"]["request"].as_str().unwrap_or_default()).unwrap_or_default();
        let request = rkube_pki::csr::parse_certificate_request(&pem).map_err(|e| ctx.forbidden(&format!("failed to parse CSR: {e}")))?;
        if request.organizations.iter().any(|o| o == SYSTEM_MASTERS) {
            return Err(ctx.forbidden(&format!("use of {signer} signer with {SYSTEM_MASTERS} group is not allowed")));
        }
        Ok(())
    }
}
