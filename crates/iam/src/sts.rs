//! Calling a presigned GetCallerIdentity URL and reading who signed it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

use crate::arn;
use crate::mapping::Identity;
use crate::token::{CLUSTER_ID_HEADER, PresignedRequest};

/// How long STS may take to answer.
const STS_TIMEOUT: Duration = Duration::from_secs(10);

/// HTTPS client for STS.
#[derive(Clone)]
pub struct StsClient {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl StsClient {
    /// Trusts the system's roots plus, when given, the PEM certificates of `extra_ca_pem`
    /// (`--iam-sts-ca-file`, for an STS endpoint with a private CA).
    pub fn new(extra_ca_pem: Option<&[u8]>) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        if let Some(pem) = extra_ca_pem {
            for cert in rustls_pemfile::certs(&mut &pem[..]) {
                let cert = cert.map_err(|e| format!("reading the STS CA file: {e}"))?;
                roots.add(cert).map_err(|e| format!("STS CA certificate: {e}"))?;
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_only().enable_http1().build();
        Ok(Self { client: Client::builder(TokioExecutor::new()).build(connector) })
    }

    /// GETs the presigned URL with this cluster's id header, as aws-iam-authenticator does (no
    /// redirects followed), and reads the caller's identity.
    pub async fn get_caller_identity(&self, req: &PresignedRequest, cluster_id: &str) -> Result<Identity, String> {
        let request = http::Request::get(&req.url)
            .header(CLUSTER_ID_HEADER, cluster_id)
            .header(http::header::ACCEPT, "application/json")
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("error during GET: {e}"))?;
        let response = tokio::time::timeout(STS_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| "error during GET: timed out".to_string())?
            .map_err(|e| format!("error during GET: {e}"))?;
        let status = response.status();
        let body = tokio::time::timeout(STS_TIMEOUT, response.into_body().collect())
            .await
            .map_err(|_| "error reading HTTP result: timed out".to_string())?
            .map_err(|e| format!("error reading HTTP result: {e}"))?
            .to_bytes();
        let body = String::from_utf8_lossy(&body);
        if status != http::StatusCode::OK {
            return Err(format!("error from AWS (expected 200, got {}). Body: {body}", status.as_u16()));
        }
        identity_from_response(&body, &req.access_key_id)
    }
}

#[derive(Deserialize)]
struct JsonResponse {
    #[serde(rename = "GetCallerIdentityResponse")]
    response: JsonResult,
}

#[derive(Deserialize)]
struct JsonResult {
    #[serde(rename = "GetCallerIdentityResult")]
    result: CallerIdentity,
}

#[derive(Deserialize)]
struct CallerIdentity {
    #[serde(rename = "Account", default)]
    account: String,
    #[serde(rename = "Arn", default)]
    arn: String,
    #[serde(rename = "UserId", default)]
    user_id: String,
}

/// Reads GetCallerIdentity's answer: JSON when STS honours `Accept: application/json`, else
/// the XML it sends by default.
pub fn identity_from_response(body: &str, access_key_id: &str) -> Result<Identity, String> {
    let caller = match serde_json::from_str::<JsonResponse>(body) {
        Ok(json) => json.response.result,
        Err(_) if body.trim_start().starts_with('<') => CallerIdentity {
            account: xml_text(body, "Account").unwrap_or_default(),
            arn: xml_text(body, "Arn").ok_or_else(|| "GetCallerIdentity response has no Arn".to_string())?,
            user_id: xml_text(body, "UserId").unwrap_or_default(),
        },
        Err(json_error) => return Err(json_error.to_string()),
    };
    let canonical_arn = arn::canonicalize(&caller.arn)?;
    let (user_id, session_name) = match caller.user_id.split(':').collect::<Vec<_>>().as_slice() {
        [id] => (id.to_string(), String::new()),
        [id, session] => (id.to_string(), session.to_string()),
        _ => return Err(format!("malformed UserID {:?}", caller.user_id)),
    };
    let account_id = if caller.account.is_empty() { arn::account_of(&caller.arn).unwrap_or_default().to_string() } else { caller.account };
    Ok(Identity { arn: caller.arn, canonical_arn, account_id, user_id, session_name, access_key_id: access_key_id.to_string() })
}

/// The text of the first `<tag>…</tag>` (STS's XML has no attributes or entities in these).
fn xml_text(body: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{tag}>"))? + start;
    Some(body[start..end].trim().replace("&amp;", "&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_xml_answers_give_the_same_identity() {
        let json = r#"{"GetCallerIdentityResponse":{"GetCallerIdentityResult":{"Account":"111122223333","Arn":"arn:aws:sts::111122223333:assumed-role/devs/jane","UserId":"AROAEXAMPLE:jane"},"ResponseMetadata":{"RequestId":"r"}}}"#;
        let xml = r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>arn:aws:sts::111122223333:assumed-role/devs/jane</Arn><UserId>AROAEXAMPLE:jane</UserId><Account>111122223333</Account></GetCallerIdentityResult></GetCallerIdentityResponse>"#;
        let a = identity_from_response(json, "ASIA1").unwrap();
        assert_eq!(a, identity_from_response(xml, "ASIA1").unwrap());
        assert_eq!(a.canonical_arn, "arn:aws:iam::111122223333:role/devs");
        assert_eq!((a.user_id.as_str(), a.session_name.as_str()), ("AROAEXAMPLE", "jane"));
    }

    #[test]
    fn unreadable_answers_are_errors() {
        assert!(identity_from_response("nonsense", "A").is_err());
        let bad = r#"{"GetCallerIdentityResponse":{"GetCallerIdentityResult":{"Account":"1","Arn":"arn:aws:iam::1:user/u","UserId":"a:b:c"}}}"#;
        assert_eq!(identity_from_response(bad, "A").unwrap_err(), "malformed UserID \"a:b:c\"");
    }
}
