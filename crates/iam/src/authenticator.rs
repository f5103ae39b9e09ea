//! The IAM token authenticator: checks a `k8s-aws-v1.` token, asks STS who signed it (answers
//! are cached per token until the token expires), and maps that identity through
//! `kube-system/aws-auth` as it is in the watch cache at that moment, so edits apply at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use rkube_auth::UserInfo;
use rkube_auth::authn::{AuthnError, TokenAuthenticator};
use rkube_registry::Registry;
use serde_json::{Value, json};

use crate::mapping::{AwsAuth, Identity};
use crate::sts::StsClient;
use crate::token::{StsHosts, check_token};

/// Where `aws-auth` is stored.
const AWS_AUTH_KEY: &str = "/registry/core/configmaps/kube-system/aws-auth";
/// Verified tokens kept at most (older entries are dropped first when full).
const MAX_CACHED_TOKENS: usize = 10_000;

/// `--iam-*` settings.
#[derive(Debug, Clone)]
pub struct IamConfig {
    /// The cluster id tokens must be signed for (`x-k8s-aws-id`).
    pub cluster_id: String,
    /// `host[:port]` of a non-AWS STS endpoint to accept.
    pub sts_endpoint_host: Option<String>,
    /// PEM CA certificates for that endpoint.
    pub sts_ca_pem: Option<Vec<u8>>,
}

/// Authenticates IAM tokens.
pub struct IamAuthenticator {
    cluster_id: String,
    hosts: StsHosts,
    sts: StsClient,
    registry: Arc<Registry>,
    verified: Mutex<HashMap<String, (Identity, DateTime<Utc>)>>,
    /// resourceVersion of the malformed aws-auth last reported, so each bad version is reported once.
    reported: Mutex<Option<String>>,
}

impl IamAuthenticator {
    /// An authenticator for `cfg`, reading aws-auth from `registry`.
    pub fn new(cfg: IamConfig, registry: Arc<Registry>) -> Result<Self, String> {
        if cfg.cluster_id.is_empty() {
            return Err("--iam-cluster-id must not be empty".into());
        }
        Ok(Self {
            cluster_id: cfg.cluster_id,
            hosts: StsHosts { extra: cfg.sts_endpoint_host },
            sts: StsClient::new(cfg.sts_ca_pem.as_deref())?,
            registry,
            verified: Mutex::new(HashMap::new()),
            reported: Mutex::new(None),
        })
    }

    async fn identity(&self, token: &str) -> Result<Option<Identity>, String> {
        let now = Utc::now();
        let Some(request) = check_token(token, &self.hosts, now)? else {
            return Ok(None);
        };
        if let Some((id, expires_at)) = self.verified.lock().get(token).cloned()
            && now <= expires_at
        {
            return Ok(Some(id));
        }
        let id = self.sts.get_caller_identity(&request, &self.cluster_id).await?;
        let mut verified = self.verified.lock();
        verified.retain(|_, (_, expires_at)| *expires_at >= now);
        if verified.len() < MAX_CACHED_TOKENS {
            verified.insert(token.to_string(), (id.clone(), request.expires_at));
        }
        Ok(Some(id))
    }

    /// The current aws-auth mapping; a malformed one maps nobody and is reported.
    async fn aws_auth(&self) -> Option<AwsAuth> {
        let (kv, _) = self.registry.cache().get(AWS_AUTH_KEY);
        let configmap: Value = serde_json::from_slice(&kv?.value).ok()?;
        let data: BTreeMap<String, String> = serde_json::from_value(configmap.get("data").cloned().unwrap_or(Value::Null)).unwrap_or_default();
        match AwsAuth::from_data(&data) {
            Ok(auth) => Some(auth),
            Err(problem) => {
                self.report_malformed(&configmap, &problem).await;
                None
            }
        }
    }

    async fn report_malformed(&self, configmap: &Value, problem: &str) {
        let version = configmap.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("").to_string();
        {
            let mut reported = self.reported.lock();
            if reported.as_deref() == Some(version.as_str()) {
                return;
            }
            *reported = Some(version.clone());
        }
        tracing::warn!(configmap = "kube-system/aws-auth", resource_version = %version, problem, "malformed aws-auth: IAM identities are not mapped");
        let Some(events) = self.registry.lookup("", "v1", "events") else { return };
        let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": format!("aws-auth.{:x}", Utc::now().timestamp_nanos_opt().unwrap_or_default()), "namespace": "kube-system"},
            "involvedObject": {
                "apiVersion": "v1", "kind": "ConfigMap", "namespace": "kube-system", "name": "aws-auth",
                "uid": configmap.pointer("/metadata/uid").cloned().unwrap_or(Value::Null),
                "resourceVersion": version,
            },
            "reason": "MalformedAwsAuth",
            "message": format!("aws-auth could not be read, IAM identities are not mapped: {problem}"),
            "type": "Warning",
            "source": {"component": "rkube-iam-authenticator"},
            "reportingComponent": "rkube-iam-authenticator",
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        });
        if let Err(e) = self.registry.create(&events, Some("kube-system"), event, false).await {
            tracing::warn!(error = %e.message, "recording the aws-auth warning event");
        }
    }
}

#[async_trait]
impl TokenAuthenticator for IamAuthenticator {
    async fn authenticate(&self, token: &str) -> Result<Option<UserInfo>, AuthnError> {
        let Some(id) = self.identity(token).await.map_err(AuthnError)? else {
            return Ok(None);
        };
        let Some(auth) = self.aws_auth().await else {
            return Err(AuthnError(format!("ARN is not mapped: {} (aws-auth is missing or malformed)", id.canonical_arn)));
        };
        match auth.map(&id).map_err(AuthnError)? {
            Some(user) => Ok(Some(user)),
            None => Err(AuthnError(format!("ARN is not mapped: {}", id.canonical_arn))),
        }
    }
}
