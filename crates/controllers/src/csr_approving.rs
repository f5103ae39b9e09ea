//! CSR approving controller (pkg/controller/certificates/approver/sarapprove.go): a pending
//! request for the `kubernetes.io/kube-apiserver-client-kubelet` signer that is a well-formed
//! kubelet client certificate request is approved when a SubjectAccessReview says its requester
//! may `create` `certificatesigningrequests/selfnodeclient` (renewing its own identity) or
//! `certificatesigningrequests/nodeclient` (bootstrapping any node). Nothing else is approved
//! automatically.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use k8s_openapi::api::certificates::v1::{CertificateSigningRequest, CertificateSigningRequestCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;

use crate::context::{Context, drain, requeue_on_error};
use crate::csr_util::{self, KUBELET_CLIENT_SIGNER};
use crate::error::Result;

/// How soon a request whose requester lacked permission is reviewed again (RBAC may change).
const RECHECK: Duration = Duration::from_secs(30);

struct Recognizer {
    subresource: &'static str,
    message: &'static str,
    /// The request must name its own requester (renewals).
    self_only: bool,
}

const RECOGNIZERS: [Recognizer; 2] = [
    Recognizer {
        subresource: "selfnodeclient",
        message: "Auto approving self kubelet client certificate after SubjectAccessReview.",
        self_only: true,
    },
    Recognizer {
        subresource: "nodeclient",
        message: "Auto approving kubelet client certificate after SubjectAccessReview.",
        self_only: false,
    },
];

/// Runs the controller.
pub async fn run(ctx: Context) -> Result<()> {
    let stream = Controller::new(Api::<CertificateSigningRequest>::all(ctx.client.clone()), watcher::Config::default())
        .run(reconcile, requeue_on_error, Arc::new(ctx));
    drain("csrapproving", stream).await;
    Ok(())
}

async fn reconcile(csr: Arc<CertificateSigningRequest>, ctx: Arc<Context>) -> Result<Action> {
    if csr_util::has_certificate(&csr) || csr_util::has_condition(&csr, "Approved") || csr_util::has_condition(&csr, "Denied") {
        return Ok(Action::await_change());
    }
    if csr.spec.signer_name != KUBELET_CLIENT_SIGNER {
        return Ok(Action::await_change());
    }
    let request = match csr_util::parse(&csr) {
        Ok(r) => r,
        Err(e) => {
            // The request never changes; the signer reports it.
            tracing::info!(csr = %csr.name_any(), error = %e, "unable to parse csr");
            return Ok(Action::await_change());
        }
    };
    if csr_util::validate_kubelet_client(&request, &csr.spec.usages).is_err() {
        return Ok(Action::await_change());
    }
    let mut tried = Vec::new();
    for r in &RECOGNIZERS {
        if r.self_only && csr.spec.username.as_deref() != Some(request.common_name.as_str()) {
            continue;
        }
        tried.push(r.subresource);
        if !allowed(&ctx, &csr, r.subresource).await? {
            continue;
        }
        let mut approved = (*csr).clone();
        let now = Time(Timestamp::now());
        approved.status.get_or_insert_with(Default::default).conditions.get_or_insert_with(Vec::new).push(CertificateSigningRequestCondition {
            type_: "Approved".into(),
            status: "True".into(),
            reason: Some("AutoApproved".into()),
            message: Some(r.message.into()),
            last_update_time: Some(now.clone()),
            last_transition_time: Some(now),
        });
        let api = Api::<CertificateSigningRequest>::all(ctx.client.clone());
        api.replace_subresource("approval", &csr.name_any(), &PostParams::default(), &approved).await?;
        tracing::info!(csr = %csr.name_any(), subresource = r.subresource, "approved kubelet client certificate request");
        return Ok(Action::await_change());
    }
    tracing::debug!(csr = %csr.name_any(), ?tried, "recognized csr but subject access review was not approved");
    Ok(Action::requeue(RECHECK))
}

/// Whether the requester may `create` `certificatesigningrequests/<subresource>`.
async fn allowed(ctx: &Context, csr: &CertificateSigningRequest, subresource: &str) -> Result<bool> {
    let spec = &csr.spec;
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: spec.username.clone(),
            uid: spec.uid.clone(),
            groups: spec.groups.clone(),
            extra: spec.extra.clone(),
            resource_attributes: Some(ResourceAttributes {
                group: Some("certificates.k8s.io".into()),
                resource: Some("certificatesigningrequests".into()),
                verb: Some("create".into()),
                subresource: Some(subresource.into()),
                version: Some("*".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = Api::<SubjectAccessReview>::all(ctx.client.clone()).create(&PostParams::default(), &review).await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}
