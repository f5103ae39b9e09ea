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

impl IamConfig {
    /// From `--iam-cluster-id`, `--iam-sts-endpoint URL` and `--iam-sts-ca-file FILE`.
    pub fn from_flags(cluster_id: &str, sts_endpoint: Option<&str>, sts_ca_file: Option<&std::path::Path>) -> Result<Self, String> {
        let sts_endpoint_host = match sts_endpoint {
            Some(url) => {
                let uri: http::Uri = url.parse().map_err(|e| format!("--iam-sts-endpoint {url:?}: {e}"))?;
                if uri.scheme_str() != Some("https") {
                    return Err(format!("--iam-sts-endpoint {url:?}: must be an https:// URL (tokens name https URLs only)"));
                }
                Some(uri.authority().map(|a| a.to_string()).ok_or_else(|| format!("--iam-sts-endpoint {url:?}: no host"))?)
            }
            None => None,
        };
        let sts_ca_pem = match sts_ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| format!("--iam-sts-ca-file {}: {e}", path.display()))?),
            None => None,
        };
        Ok(Self { cluster_id: cluster_id.to_string(), sts_endpoint_host, sts_ca_pem })
    }
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
    /// The last aws-auth that parsed: a malformed edit keeps it in force (as aws-iam-authenticator's
    /// ConfigMap backend keeps its mappings when an update cannot be parsed) instead of locking
    /// every IAM user out.
    last_good: Mutex<Option<AwsAuth>>,
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
            last_good: Mutex::new(None),
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

    /// The aws-auth mapping in force: the stored one, or while it is malformed (which is
    /// reported) the last one that parsed. A deleted aws-auth maps nobody.
    async fn aws_auth(&self) -> Option<AwsAuth> {
        let (kv, _) = self.registry.cache().get(AWS_AUTH_KEY);
        let Some(kv) = kv else {
            *self.last_good.lock() = None;
            return None;
        };
        let configmap: Value = match serde_json::from_slice(&kv.value) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable aws-auth ConfigMap ignored");
                return self.last_good.lock().clone();
            }
        };
        let data = configmap.get("data").cloned().unwrap_or(Value::Null);
        let parsed = serde_json::from_value::<Option<BTreeMap<String, String>>>(data)
            .map_err(|e| format!("data: {e}"))
            .and_then(|data| AwsAuth::from_data(&data.unwrap_or_default()));
        match parsed {
            Ok(auth) => {
                *self.last_good.lock() = Some(auth.clone());
                Some(auth)
            }
            Err(problem) => {
                self.report_malformed(&configmap, &problem).await;
                self.last_good.lock().clone()
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
        tracing::warn!(configmap = "kube-system/aws-auth", resource_version = %version, problem, "malformed aws-auth: the last valid mapping stays in force");
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
            "message": format!("aws-auth could not be parsed; the last valid mapping stays in force: {problem}"),
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
        let result = self.authenticate_iam(token).await;
        if let Err(reason) = &result {
            // As aws-iam-authenticator's "access denied" log: the request itself only says 401.
            tracing::warn!(%reason, "IAM token refused");
        }
        result.map_err(AuthnError)
    }
}

impl IamAuthenticator {
    async fn authenticate_iam(&self, token: &str) -> Result<Option<UserInfo>, String> {
        let Some(id) = self.identity(token).await? else {
            return Ok(None);
        };
        let Some(auth) = self.aws_auth().await else {
            return Err(format!("ARN is not mapped: {} (no kube-system/aws-auth ConfigMap)", id.canonical_arn));
        };
        match auth.map(&id)? {
            Some(user) => Ok(Some(user)),
            None => Err(format!("ARN is not mapped: {}", id.canonical_arn)),
        }
    }
}
