//! The `k8s-aws-v1.` bearer token: a base64url-encoded presigned STS GetCallerIdentity URL. The
//! checks and their messages are aws-iam-authenticator's (`pkg/token/token.go`), so a token is
//! refused here for the same reasons as on EKS before anything is sent to STS.

use base64::Engine;
use chrono::{DateTime, NaiveDateTime, Utc};

/// Prefix of IAM tokens.
pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// The signed header that binds a token to one cluster.
pub const CLUSTER_ID_HEADER: &str = "x-k8s-aws-id";
/// Tokens are good for 15 minutes after their X-Amz-Date, whatever X-Amz-Expires says.
pub const PRESIGNED_URL_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::minutes(15);
/// Longer tokens are refused unread (upstream's `maxTokenLenBytes`).
const MAX_TOKEN_BYTES: usize = 4 * 1024;
/// `X-Amz-Date` layout.
const AMZ_DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";
/// The only query parameters a GetCallerIdentity presigned URL may carry (lower case).
const ALLOWED_PARAMETERS: &[&str] = &[
    "action",
    "version",
    "x-amz-algorithm",
    "x-amz-credential",
    "x-amz-date",
    "x-amz-expires",
    "x-amz-security-token",
    "x-amz-signature",
    "x-amz-signedheaders",
];

/// A token that passed the format checks: the URL to call, and what it tells before the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedRequest {
    /// The presigned GetCallerIdentity URL.
    pub url: String,
    /// The access key id of the signer (first part of X-Amz-Credential).
    pub access_key_id: String,
    /// When the token stops being accepted.
    pub expires_at: DateTime<Utc>,
}

/// Which STS hosts a token may name.
#[derive(Debug, Clone, Default)]
pub struct StsHosts {
    /// `host[:port]` of `--iam-sts-endpoint`, accepted besides AWS's own STS hosts.
    pub extra: Option<String>,
}

impl StsHosts {
    /// AWS's global and regional STS endpoints in every partition (`sts.amazonaws.com`,
    /// `sts.<region>.amazonaws.com`, `sts-fips.<region>.amazonaws.com`, China's `.com.cn`), or
    /// the configured endpoint.
    pub fn allows(&self, host: &str) -> bool {
        if self.extra.as_deref() == Some(host) {
            return true;
        }
        if host == "sts.amazonaws.com" {
            return true;
        }
        let regional = |region: &str| is_region(region);
        if let Some(rest) = host.strip_prefix("sts.").or_else(|| host.strip_prefix("sts-fips.")) {
            if let Some(region) = rest.strip_suffix(".amazonaws.com.cn") {
                return region.starts_with("cn-") && regional(region);
            }
            if let Some(region) = rest.strip_suffix(".amazonaws.com") {
                return regional(region);
            }
        }
        false
    }
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`, …
fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
        && parts.last().is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
}

/// Checks a bearer token. `Ok(None)`: not an IAM token; `Err`: an IAM token refused with
/// upstream's message.
pub fn check_token(token: &str, hosts: &StsHosts, now: DateTime<Utc>) -> Result<Option<PresignedRequest>, String> {
    if !token.starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err("token is too large".into());
    }
    let encoded = &token[TOKEN_PREFIX.len()..];
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded).map_err(|e| format!("illegal base64 data: {e}"))?;
    let url = String::from_utf8(bytes).map_err(|_| "pre-signed URL is not UTF-8".to_string())?;
    check_url(&url, hosts, now).map(Some)
}

/// The URL checks of upstream's `Verify`, in its order.
pub fn check_url(url: &str, hosts: &StsHosts, now: DateTime<Utc>) -> Result<PresignedRequest, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("parse {url:?}: {e}"))?;
    let scheme = uri.scheme_str().unwrap_or("");
    if scheme != "https" {
        return Err(format!("unexpected scheme {scheme:?} in pre-signed URL"));
    }
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
    if authority.contains('@') || !hosts.allows(authority) {
        return Err(format!("unexpected hostname {authority:?} in pre-signed URL"));
    }
    if uri.path() != "/" {
        return Err("unexpected path in pre-signed URL".into());
    }
    let mut params: Vec<(String, String)> = Vec::new();
    for (key, value) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        let lower = key.to_ascii_lowercase();
        if !ALLOWED_PARAMETERS.contains(&lower.as_str()) {
            return Err(format!("non-whitelisted query parameter {:?}", key.as_ref()));
        }
        if params.iter().any(|(k, _)| *k == lower) {
            return Err("query parameter with multiple values not supported".into());
        }
        params.push((lower, value.into_owned()));
    }
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("");
    if param("action") != "GetCallerIdentity" {
        return Err("unexpected action parameter in pre-signed URL".into());
    }
    if param("version") != "2011-06-15" {
        return Err("unexpected version parameter in pre-signed URL".into());
    }
    if !param("x-amz-signedheaders").split(';').any(|h| h.eq_ignore_ascii_case(CLUSTER_ID_HEADER)) {
        return Err(format!("client did not sign the {CLUSTER_ID_HEADER} header in the pre-signed URL"));
    }
    match param("x-amz-expires").parse::<i64>() {
        Ok(expires) if (0..=900).contains(&expires) => {}
        Ok(expires) => return Err(format!("invalid X-Amz-Expires parameter in pre-signed URL: {expires}")),
        Err(_) => return Err("invalid X-Amz-Expires parameter in pre-signed URL: 0".into()),
    }
    let date = param("x-amz-date");
    if date.is_empty() {
        return Err("X-Amz-Date parameter must be present in pre-signed URL".into());
    }
    let signed_at = NaiveDateTime::parse_from_str(date, AMZ_DATE_FORMAT)
        .map_err(|e| format!("error parsing X-Amz-Date parameter {date} into format 20060102T150405Z: {e}"))?
        .and_utc();
    let expires_at = signed_at + PRESIGNED_URL_LIFETIME;
    if now > expires_at {
        return Err(format!("X-Amz-Date parameter is expired (15 minute expiration) {}", signed_at.format("%Y-%m-%d %H:%M:%S +0000 UTC")));
    }
    let access_key_id = param("x-amz-credential").split('/').next().unwrap_or("").to_string();
    Ok(PresignedRequest { url: url.to_string(), access_key_id, expires_at })
}

/// The bearer token for a presigned URL.
pub fn encode_token(url: &str) -> String {
    format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20260101%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Date=20260101T120000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id&X-Amz-Signature=abc";

    fn at(s: &str) -> DateTime<Utc> {
        NaiveDateTime::parse_from_str(s, AMZ_DATE_FORMAT).unwrap().and_utc()
    }

    fn check(url: &str) -> Result<PresignedRequest, String> {
        check_url(url, &StsHosts { extra: Some("127.0.0.1:8443".into()) }, at("20260101T120500Z"))
    }

    #[test]
    fn a_good_token_round_trips_and_names_its_signer_and_expiry() {
        let req = check_token(&encode_token(GOOD), &StsHosts::default(), at("20260101T120500Z")).unwrap().unwrap();
        assert_eq!(req.access_key_id, "AKIDEXAMPLE");
        assert_eq!(req.expires_at, at("20260101T121500Z"));
        assert_eq!(check_token("some-other-token", &StsHosts::default(), Utc::now()), Ok(None));
    }

    #[test]
    fn hosts_are_aws_sts_or_the_configured_endpoint() {
        let hosts = StsHosts { extra: Some("127.0.0.1:8443".into()) };
        for ok in
            ["sts.amazonaws.com", "sts.eu-west-1.amazonaws.com", "sts-fips.us-gov-west-1.amazonaws.com", "sts.cn-north-1.amazonaws.com.cn", "127.0.0.1:8443"]
        {
            assert!(hosts.allows(ok), "{ok}");
        }
        for bad in ["evil.com", "sts.amazonaws.com.evil.com", "sts.evil.amazonaws.com", "127.0.0.1:9999", "sts.eu-west-1.amazonaws.com:444"] {
            assert!(!hosts.allows(bad), "{bad}");
        }
        assert_eq!(check(&GOOD.replace("sts.us-east-1.amazonaws.com", "evil.com")).unwrap_err(), "unexpected hostname \"evil.com\" in pre-signed URL");
    }

    #[test]
    fn each_check_refuses_with_upstreams_message() {
        let cases = [
            (GOOD.replace("https://", "http://"), "unexpected scheme \"http\" in pre-signed URL"),
            (GOOD.replace(".com/?", ".com/x?"), "unexpected path in pre-signed URL"),
            (format!("{GOOD}&Foo=1"), "non-whitelisted query parameter \"Foo\""),
            (format!("{GOOD}&Action=GetCallerIdentity"), "query parameter with multiple values not supported"),
            (GOOD.replace("Action=GetCallerIdentity", "Action=AssumeRole"), "unexpected action parameter in pre-signed URL"),
            (GOOD.replace("Version=2011-06-15", "Version=2099-01-01"), "unexpected version parameter in pre-signed URL"),
            (GOOD.replace("host%3Bx-k8s-aws-id", "host"), "client did not sign the x-k8s-aws-id header in the pre-signed URL"),
            (GOOD.replace("X-Amz-Expires=60", "X-Amz-Expires=901"), "invalid X-Amz-Expires parameter in pre-signed URL: 901"),
            (GOOD.replace("X-Amz-Date=20260101T120000Z&", ""), "X-Amz-Date parameter must be present in pre-signed URL"),
            (GOOD.replace("20260101T120000Z", "20260101T114000Z"), "X-Amz-Date parameter is expired (15 minute expiration) 2026-01-01 11:40:00 +0000 UTC"),
        ];
        for (url, message) in cases {
            assert_eq!(check(&url).unwrap_err(), message, "{url}");
        }
        assert_eq!(check_token(&format!("{TOKEN_PREFIX}{}", "a".repeat(5000)), &StsHosts::default(), Utc::now()).unwrap_err(), "token is too large");
        assert!(check_token("k8s-aws-v1.!!!", &StsHosts::default(), Utc::now()).unwrap_err().starts_with("illegal base64 data"));
    }
}
