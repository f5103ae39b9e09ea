//! `rkube token`: a presigned GetCallerIdentity URL signed with the standard AWS credential chain
//! (environment, profile, web identity, container and instance roles), wrapped as an
//! ExecCredential for kubeconfig `exec` plugins (as `aws-iam-authenticator token`).

use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign};
use aws_sigv4::sign::v4;
use chrono::Utc;
use serde_json::json;

use crate::token::{CLUSTER_ID_HEADER, encode_token};

/// The presigned URL's own lifetime (servers accept the token for 15 minutes regardless).
const URL_EXPIRES: Duration = Duration::from_secs(60);
/// Clients are told to refresh a minute before the server stops accepting the token.
const CREDENTIAL_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::minutes(14);

/// An exec plugin must answer promptly; a dead resolver falls back to `--cluster-id`.
const TXT_TIMEOUT: Duration = Duration::from_secs(5);

/// What `rkube token` was asked for.
#[derive(Debug, Clone, Default)]
pub struct TokenOptions {
    /// Cluster id (fallback when the TXT record has none).
    pub cluster_id: String,
    /// Role to assume first.
    pub role_arn: Option<String>,
    /// Signing region (else the chain's, else us-east-1 with the global endpoint).
    pub region: Option<String>,
    /// STS endpoint URL (else `https://sts.<region>.amazonaws.com`).
    pub sts_endpoint: Option<String>,
    /// DNS name whose TXT record holds the cluster id.
    pub cluster_id_from_txt: Option<String>,
}

/// The ExecCredential JSON `rkube token` prints.
pub async fn exec_credential(opts: &TokenOptions) -> Result<String, String> {
    let cluster_id = match &opts.cluster_id_from_txt {
        Some(name) => match tokio::time::timeout(TXT_TIMEOUT, cluster_id_from_txt(name)).await.unwrap_or_else(|_| Err("DNS lookup timed out".into())) {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(name, error = %e, "no cluster id in TXT record; using --cluster-id");
                opts.cluster_id.clone()
            }
        },
        None => opts.cluster_id.clone(),
    };
    if cluster_id.is_empty() {
        return Err("a cluster id is required (--cluster-id, or --cluster-id-from-txt with a TXT record)".into());
    }
    // rustls with ring, the one crypto provider of the workspace: aws-config's own `rustls`
    // feature would add aws-lc-rs, and two providers leave rustls without a process default.
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http_client);
    if let Some(region) = &opts.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(endpoint) = &opts.sts_endpoint {
        loader = loader.endpoint_url(endpoint.clone());
    }
    let config = loader.load().await;
    let region = config.region().map(|r| r.to_string());
    let credentials = match &opts.role_arn {
        Some(role_arn) => assume_role(&config, role_arn).await?,
        None => config
            .credentials_provider()
            .ok_or("no AWS credentials provider is configured")?
            .provide_credentials()
            .await
            .map_err(|e| format!("loading AWS credentials: {e}"))?,
    };
    let (signing_region, endpoint) = match (&opts.sts_endpoint, region) {
        (Some(endpoint), region) => (region.unwrap_or_else(|| "us-east-1".into()), endpoint.trim_end_matches('/').to_string()),
        (None, Some(region)) => (region.clone(), format!("https://sts.{region}.amazonaws.com")),
        (None, None) => ("us-east-1".to_string(), "https://sts.amazonaws.com".to_string()),
    };
    let url = presign(&credentials, &signing_region, &endpoint, &cluster_id, SystemTime::now())?;
    let expiration = (Utc::now() + CREDENTIAL_LIFETIME).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let credential = json!({
        "kind": "ExecCredential",
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "spec": {},
        "status": {"expirationTimestamp": expiration, "token": encode_token(&url)},
    });
    Ok(credential.to_string())
}

async fn assume_role(config: &aws_config::SdkConfig, role_arn: &str) -> Result<Credentials, String> {
    let session_name = format!("rkube-{}", Utc::now().timestamp_millis());
    let answer = aws_sdk_sts::Client::new(config)
        .assume_role()
        .role_arn(role_arn)
        .role_session_name(session_name)
        .send()
        .await
        .map_err(|e| format!("assuming role {role_arn}: {}", aws_sdk_sts::error::DisplayErrorContext(e)))?;
    let c = answer.credentials().ok_or_else(|| format!("assuming role {role_arn}: STS returned no credentials"))?;
    let expiry = SystemTime::try_from(*c.expiration()).ok();
    Ok(Credentials::new(c.access_key_id(), c.secret_access_key(), Some(c.session_token().to_string()), expiry, "AssumeRole"))
}

/// Signs `GET <endpoint>/?Action=GetCallerIdentity&Version=2011-06-15` in the query string with
/// the `x-k8s-aws-id` header signed.
pub fn presign(credentials: &Credentials, region: &str, endpoint: &str, cluster_id: &str, at: SystemTime) -> Result<String, String> {
    let url = format!("{endpoint}/?Action=GetCallerIdentity&Version=2011-06-15");
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(URL_EXPIRES);
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(at)
        .settings(settings)
        .build()
        .map_err(|e| format!("signing: {e}"))?
        .into();
    let headers = [(CLUSTER_ID_HEADER, cluster_id)];
    let signable = SignableRequest::new("GET", &url, headers.into_iter(), SignableBody::Bytes(&[])).map_err(|e| format!("signing: {e}"))?;
    let (instructions, _signature) = sign(signable, &params).map_err(|e| format!("signing: {e}"))?.into_parts();
    let mut request = http::Request::get(&url).body(()).map_err(|e| format!("signing: {e}"))?;
    instructions.apply_to_request_http1x(&mut request);
    Ok(request.uri().to_string())
}

/// The cluster id in `name`'s TXT record (the first non-empty one).
async fn cluster_id_from_txt(name: &str) -> Result<String, String> {
    let resolver = hickory_resolver::TokioResolver::builder_tokio().map_err(|e| e.to_string())?.build().map_err(|e| e.to_string())?;
    let lookup = resolver.lookup(name, hickory_resolver::proto::rr::RecordType::TXT).await.map_err(|e| e.to_string())?;
    lookup
        .answers()
        .iter()
        .filter_map(|record| match &record.data {
            hickory_resolver::proto::rr::RData::TXT(txt) => Some(txt.to_string().trim().to_string()),
            _ => None,
        })
        .find(|id| !id.is_empty())
        .ok_or_else(|| format!("no TXT record for {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{StsHosts, check_token};

    #[test]
    fn presigned_urls_pass_the_servers_checks_and_sign_the_cluster_header() {
        let creds = Credentials::new("AKIDEXAMPLE", "secret", Some("session-token".into()), None, "test");
        let url = presign(&creds, "eu-west-1", "https://sts.eu-west-1.amazonaws.com", "blue", SystemTime::now()).unwrap();
        assert!(url.contains("X-Amz-SignedHeaders=host%3Bx-k8s-aws-id"), "{url}");
        assert!(url.contains("X-Amz-Expires=60") && url.contains("X-Amz-Security-Token=session-token"), "{url}");
        let req = check_token(&encode_token(&url), &StsHosts::default(), Utc::now()).unwrap().unwrap();
        assert_eq!(req.access_key_id, "AKIDEXAMPLE");
    }
}
