//! CSR cleaner (pkg/controller/certificates/cleaner/cleaner.go): once an hour, requests that
//! are done with are deleted — issued, denied or failed ones an hour after their condition was
//! last updated, pending ones a day after creation, and any whose certificate has expired.

use std::time::Duration;

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams};

use crate::context::Context;
use crate::csr_util;
use crate::error::Result;

/// Upstream's `pollingInterval`.
const PERIOD: Duration = Duration::from_secs(3600);
/// Kept after approval and issuance, denial or failure.
const DONE_EXPIRATION: i64 = 3600;
/// Kept while pending.
const PENDING_EXPIRATION: i64 = 24 * 3600;

/// Runs the cleaner.
pub async fn run(ctx: Context) -> Result<()> {
    loop {
        if let Err(e) = pass(&ctx).await {
            tracing::warn!(error = %e, "CSR cleanup failed");
        }
        tokio::time::sleep(PERIOD).await;
    }
}

async fn pass(ctx: &Context) -> Result<()> {
    let api = Api::<CertificateSigningRequest>::all(ctx.client.clone());
    let now = Timestamp::now().as_second();
    for csr in api.list(&ListParams::default()).await?.items {
        if let Some(why) = expired(&csr, now) {
            tracing::info!(csr = %csr.name_any(), why, "deleting certificate signing request");
            match api.delete(&csr.name_any(), &DeleteParams::default()).await {
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                other => {
                    other?;
                }
            }
        }
    }
    Ok(())
}

/// Why `csr` should go, if it should (evaluated at Unix time `now`).
pub fn expired(csr: &CertificateSigningRequest, now: i64) -> Option<&'static str> {
    let updated = |kind: &str| {
        csr.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == kind && c.status == "True"))
            .and_then(|c| c.last_update_time.as_ref())
            .map(|t| t.0.as_second())
    };
    let certificate = csr.status.as_ref().and_then(|s| s.certificate.as_ref()).map(|c| c.0.as_slice()).unwrap_or_default();
    if !certificate.is_empty() && rkube_pki::csr::certificate_not_after(certificate).is_some_and(|t| t <= now) {
        return Some("issued certificate expired");
    }
    if csr_util::has_certificate(csr) && updated("Approved").is_some_and(|t| t + DONE_EXPIRATION <= now) {
        return Some("issued more than an hour ago");
    }
    if updated("Denied").is_some_and(|t| t + DONE_EXPIRATION <= now) {
        return Some("denied more than an hour ago");
    }
    if updated("Failed").is_some_and(|t| t + DONE_EXPIRATION <= now) {
        return Some("failed more than an hour ago");
    }
    let decided = ["Approved", "Denied", "Failed"].iter().any(|k| csr_util::has_condition(csr, k));
    let created = csr.metadata.creation_timestamp.as_ref().map(|t| t.0.as_second());
    if !decided && created.is_some_and(|t| t + PENDING_EXPIRATION <= now) {
        return Some("pending for more than a day");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::certificates::v1::{CertificateSigningRequestCondition, CertificateSigningRequestStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH))
    }

    #[test]
    fn pending_requests_live_a_day_and_decided_ones_an_hour() {
        let mut csr = CertificateSigningRequest::default();
        csr.metadata.creation_timestamp = Some(at(1_000_000));
        assert_eq!(expired(&csr, 1_000_000 + 3600), None);
        assert_eq!(expired(&csr, 1_000_000 + 24 * 3600), Some("pending for more than a day"));
        csr.status = Some(CertificateSigningRequestStatus {
            conditions: Some(vec![CertificateSigningRequestCondition {
                type_: "Denied".into(),
                status: "True".into(),
                last_update_time: Some(at(1_000_100)),
                ..Default::default()
            }]),
            ..Default::default()
        });
        assert_eq!(expired(&csr, 1_000_100 + 60), None);
        assert_eq!(expired(&csr, 1_000_100 + 3600), Some("denied more than an hour ago"));
    }
}
