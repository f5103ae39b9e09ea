//! CSR signing controller (pkg/controller/certificates/signer/signer.go): approved, not failed,
//! not yet issued requests for `kubernetes.io/kube-apiserver-client-kubelet`,
//! `kubernetes.io/kube-apiserver-client` and `kubernetes.io/kubelet-serving` get a certificate
//! from the cluster CA; requests breaking their signer's rules get `Failed`
//! (`SignerValidationFailure`). The certificate lives for `--cluster-signing-duration`, or
//! `spec.expirationSeconds` when shorter (at least 10 minutes). Other signers are left alone
//! (`kubernetes.io/legacy-unknown` is never signed).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{CertificateSigningRequest, CertificateSigningRequestCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;

use crate::context::{Context, drain, requeue_on_error};
use crate::csr_util::{self, API_SERVER_CLIENT_SIGNER, KUBELET_CLIENT_SIGNER, KUBELET_SERVING_SIGNER};
use crate::error::{Error, Result};

/// Upstream's default `--cluster-signing-duration` (one year).
pub const DEFAULT_SIGNING_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);
/// The shortest lifetime honoured from `expirationSeconds` (twice the backdate).
const MIN_DURATION: Duration = Duration::from_secs(600);

/// The CA and policy the signer issues with.
pub struct CsrSigning {
    /// Signs with the cluster CA.
    pub signer: rkube_pki::csr::Signer,
    /// `--cluster-signing-duration`: the longest lifetime issued.
    pub max_duration: Duration,
}

/// Runs the controller; without a CA it has nothing to do.
pub async fn run(ctx: Context) -> Result<()> {
    if ctx.csr_signing.is_none() {
        tracing::info!("no cluster signing CA configured; csrsigning stays idle");
        std::future::pending::<()>().await;
    }
    let stream = Controller::new(Api::<CertificateSigningRequest>::all(ctx.client.clone()), watcher::Config::default())
        .run(reconcile, requeue_on_error, Arc::new(ctx));
    drain("csrsigning", stream).await;
    Ok(())
}

/// The lifetime of an issued certificate (upstream `duration`).
pub fn lifetime(max: Duration, expiration_seconds: Option<i32>) -> Duration {
    match expiration_seconds {
        None => max,
        Some(s) => Duration::from_secs(u64::try_from(s).unwrap_or(0)).clamp(MIN_DURATION, max.max(MIN_DURATION)),
    }
}

async fn reconcile(csr: Arc<CertificateSigningRequest>, ctx: Arc<Context>) -> Result<Action> {
    let Some(signing) = &ctx.csr_signing else { return Ok(Action::await_change()) };
    if !csr_util::has_condition(&csr, "Approved") || csr_util::has_condition(&csr, "Failed") || csr_util::has_certificate(&csr) {
        return Ok(Action::await_change());
    }
    let signer = csr.spec.signer_name.as_str();
    if ![KUBELET_CLIENT_SIGNER, API_SERVER_CLIENT_SIGNER, KUBELET_SERVING_SIGNER].contains(&signer) {
        return Ok(Action::await_change());
    }
    let request = match csr_util::parse(&csr) {
        Ok(r) => r,
        Err(e) => return fail(&ctx, &csr, &format!("unable to parse csr {:?}: {e}", csr.name_any())).await,
    };
    let usages = &csr.spec.usages;
    let verdict = match signer {
        KUBELET_CLIENT_SIGNER => csr_util::validate_kubelet_client(&request, usages),
        KUBELET_SERVING_SIGNER => csr_util::validate_kubelet_serving(&request, usages),
        _ => csr_util::validate_api_server_client(usages),
    };
    if let Err(why) = verdict {
        return fail(&ctx, &csr, &why).await;
    }
    let ttl = lifetime(signing.max_duration, csr.spec.expiration_seconds);
    let pem = signing
        .signer
        .sign(&request, usages.as_deref().unwrap_or_default(), ttl)
        .map_err(|e| Error::Invalid(format!("signing csr {:?}: {e}", csr.name_any())))?;
    let mut issued = (*csr).clone();
    issued.status.get_or_insert_with(Default::default).certificate = Some(ByteString(pem.into_bytes()));
    let api = Api::<CertificateSigningRequest>::all(ctx.client.clone());
    api.replace_status(&csr.name_any(), &PostParams::default(), &issued).await?;
    tracing::info!(csr = %csr.name_any(), signer, seconds = ttl.as_secs(), "issued certificate");
    Ok(Action::await_change())
}

/// Marks the request Failed (`SignerValidationFailure`), which ends its processing.
async fn fail(ctx: &Context, csr: &CertificateSigningRequest, message: &str) -> Result<Action> {
    let mut failed = csr.clone();
    let now = Time(Timestamp::now());
    failed.status.get_or_insert_with(Default::default).conditions.get_or_insert_with(Vec::new).push(CertificateSigningRequestCondition {
        type_: "Failed".into(),
        status: "True".into(),
        reason: Some("SignerValidationFailure".into()),
        message: Some(message.into()),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now),
    });
    let api = Api::<CertificateSigningRequest>::all(ctx.client.clone());
    api.replace_status(&csr.name_any(), &PostParams::default(), &failed).await?;
    tracing::info!(csr = %csr.name_any(), reason = message, "certificate request failed validation");
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_are_bounded_by_the_flag_and_ten_minutes() {
        let year = DEFAULT_SIGNING_DURATION;
        assert_eq!(lifetime(year, None), year);
        assert_eq!(lifetime(year, Some(3600)), Duration::from_secs(3600));
        assert_eq!(lifetime(year, Some(60)), MIN_DURATION);
        assert_eq!(lifetime(Duration::from_secs(7200), Some(315_360_000)), Duration::from_secs(7200));
    }
}
