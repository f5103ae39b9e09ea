//! Signing PKCS#10 certificate requests with the cluster CA, for the CertificateSigningRequest
//! signers (kube-controller-manager's `pkg/controller/certificates/signer` and
//! `authority/authority.go`): the subject and SANs come from the request, usages, validity and
//! the CA's identity from the signer.

use std::time::Duration;

use rcgen::{CertificateSigningRequestParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SerialNumber};
use time::OffsetDateTime;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use crate::PkiError;

/// How far back a signed certificate's validity starts, for clocks that lag (upstream's
/// `backdate`).
const BACKDATE: Duration = Duration::from_secs(5 * 60);
/// Lifetimes below this are short: their end is not moved back by [`BACKDATE`] (upstream's
/// signer: "5 minutes of backdating is roughly 1% of 8 hours").
const SHORT: Duration = Duration::from_secs(8 * 3600);

/// What a request asks to be certified.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateRequest {
    /// Subject common name.
    pub common_name: String,
    /// Subject organizations, in order.
    pub organizations: Vec<String>,
    /// DNS subjectAltNames.
    pub dns_names: Vec<String>,
    /// IP subjectAltNames.
    pub ip_addresses: Vec<String>,
    /// Email subjectAltNames.
    pub emails: Vec<String>,
    /// URI subjectAltNames.
    pub uris: Vec<String>,
    der: Vec<u8>,
}

/// Parses a PEM `CERTIFICATE REQUEST` and checks its self-signature (upstream `ParseCSR`).
pub fn parse_certificate_request(pem: &[u8]) -> Result<CertificateRequest, PkiError> {
    let not_a_request = || PkiError::Parse("PEM block type must be CERTIFICATE REQUEST".into());
    let (_, block) = x509_parser::pem::parse_x509_pem(pem).map_err(|_| not_a_request())?;
    if block.label != "CERTIFICATE REQUEST" {
        return Err(not_a_request());
    }
    let der = block.contents;
    let (_, csr) = X509CertificationRequest::from_der(&der).map_err(|e| PkiError::Parse(format!("x509: malformed certificate request: {e}")))?;
    csr.verify_signature().map_err(|_| PkiError::Parse("x509: ECDSA verification failure".into()))?;
    let subject = &csr.certification_request_info.subject;
    let text = |a: &x509_parser::x509::AttributeTypeAndValue<'_>| a.as_str().unwrap_or_default().to_string();
    let mut req = CertificateRequest {
        common_name: subject.iter_common_name().next().map(text).unwrap_or_default(),
        organizations: subject.iter_organization().map(text).collect(),
        der: der.clone(),
        ..Default::default()
    };
    for ext in csr.requested_extensions().into_iter().flatten() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext {
            for name in &san.general_names {
                match name {
                    GeneralName::DNSName(d) => req.dns_names.push(d.to_string()),
                    GeneralName::RFC822Name(e) => req.emails.push(e.to_string()),
                    GeneralName::URI(u) => req.uris.push(u.to_string()),
                    GeneralName::IPAddress(ip) => req.ip_addresses.push(format!("{ip:?}")),
                    _ => {}
                }
            }
        }
    }
    Ok(req)
}

/// When the first certificate of a PEM bundle expires (Unix seconds); `None` when unreadable.
pub fn certificate_not_after(pem: &[u8]) -> Option<i64> {
    certificate_validity(pem).map(|(_, not_after)| not_after)
}

/// `notBefore` and `notAfter` of the first certificate of a PEM bundle (Unix seconds); `None`
/// when unreadable.
pub fn certificate_validity(pem: &[u8]) -> Option<(i64, i64)> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem).ok()?;
    let cert = block.parse_x509().ok()?;
    Some((cert.validity().not_before.timestamp(), cert.validity().not_after.timestamp()))
}

/// Signs requests with a CA.
pub struct Signer {
    issuer: Issuer<'static, KeyPair>,
    ca_not_after: Option<OffsetDateTime>,
}

impl Signer {
    /// A signer with the CA certificate and key (PEM).
    pub fn new(ca_cert_pem: &str, ca_key_pem: &str) -> Result<Self, PkiError> {
        let key = KeyPair::from_pem(ca_key_pem)?;
        let ca_not_after = certificate_not_after(ca_cert_pem.as_bytes()).and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok());
        Ok(Self { issuer: Issuer::from_ca_cert_pem(ca_cert_pem, key)?, ca_not_after })
    }

    /// Issues a certificate (PEM) for `request` with the CSR API's `usages`, valid from
    /// [`BACKDATE`] ago until `ttl` from now, minus the backdate unless `ttl` is [`SHORT`]
    /// (upstream's `PermissiveSigningPolicy`), and never beyond the CA's own expiry.
    pub fn sign(&self, request: &CertificateRequest, usages: &[String], ttl: Duration) -> Result<String, PkiError> {
        let mut params = CertificateSigningRequestParams::from_der(&request.der.clone().into())?;
        let now = OffsetDateTime::now_utc();
        let backdate = time::Duration::try_from(BACKDATE).map_err(|e| PkiError::Parse(e.to_string()))?;
        let lifetime = time::Duration::try_from(ttl).map_err(|e| PkiError::Parse(e.to_string()))?;
        let cert = &mut params.params;
        cert.not_before = now - backdate;
        cert.not_after = if ttl < SHORT { now + lifetime } else { now + lifetime - backdate };
        if let Some(ca_not_after) = self.ca_not_after.filter(|end| *end < cert.not_after) {
            cert.not_after = ca_not_after;
        }
        if cert.not_after <= now {
            return Err(PkiError::Parse("the signer has expired".into()));
        }
        cert.is_ca = IsCa::ExplicitNoCa;
        cert.serial_number = Some(SerialNumber::from_slice(&rand_serial()));
        cert.use_authority_key_identifier_extension = true;
        cert.key_usages = usages.iter().filter_map(|u| key_usage(u)).collect();
        cert.extended_key_usages = usages.iter().filter_map(|u| extended_key_usage(u)).collect();
        Ok(params.signed_by(&self.issuer)?.pem())
    }
}

fn rand_serial() -> [u8; 16] {
    let mut serial: [u8; 16] = rand::random();
    // A positive DER integer.
    serial[0] &= 0x7f;
    serial
}

/// The x509 key usage of a CSR API usage (upstream `keyUsagesFromStrings`).
fn key_usage(usage: &str) -> Option<KeyUsagePurpose> {
    Some(match usage {
        "signing" | "digital signature" => KeyUsagePurpose::DigitalSignature,
        "content commitment" => KeyUsagePurpose::ContentCommitment,
        "key encipherment" => KeyUsagePurpose::KeyEncipherment,
        "key agreement" => KeyUsagePurpose::KeyAgreement,
        "data encipherment" => KeyUsagePurpose::DataEncipherment,
        "cert sign" => KeyUsagePurpose::KeyCertSign,
        "crl sign" => KeyUsagePurpose::CrlSign,
        "encipher only" => KeyUsagePurpose::EncipherOnly,
        "decipher only" => KeyUsagePurpose::DecipherOnly,
        _ => return None,
    })
}

fn extended_key_usage(usage: &str) -> Option<ExtendedKeyUsagePurpose> {
    Some(match usage {
        "any" => ExtendedKeyUsagePurpose::Any,
        "server auth" => ExtendedKeyUsagePurpose::ServerAuth,
        "client auth" => ExtendedKeyUsagePurpose::ClientAuth,
        "code signing" => ExtendedKeyUsagePurpose::CodeSigning,
        "email protection" => ExtendedKeyUsagePurpose::EmailProtection,
        "timestamping" => ExtendedKeyUsagePurpose::TimeStamping,
        "ocsp signing" => ExtendedKeyUsagePurpose::OcspSigning,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType};

    #[test]
    fn a_request_is_read_and_signed_with_the_requested_usages_and_lifetime() {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec!["n3.example".to_string()]).expect("params");
        params.distinguished_name.push(DnType::CommonName, "system:node:n3");
        params.distinguished_name.push(DnType::OrganizationName, "system:nodes");
        let csr = params.serialize_request(&key).expect("csr").pem().expect("pem");
        let req = parse_certificate_request(csr.as_bytes()).expect("parse");
        assert_eq!(req.common_name, "system:node:n3");
        assert_eq!(req.organizations, ["system:nodes"]);
        assert_eq!(req.dns_names, ["n3.example"]);
        assert!(parse_certificate_request(b"-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n").is_err());

        let ca_key = KeyPair::generate().expect("ca key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "test-ca");
        let ca_cert = ca.self_signed(&ca_key).expect("ca");
        let signer = Signer::new(&ca_cert.pem(), &ca_key.serialize_pem()).expect("signer");
        let pem = signer.sign(&req, &["digital signature".into(), "client auth".into()], Duration::from_secs(3600)).expect("sign");
        let der = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("pem").1.contents;
        let (_, cert) = x509_parser::certificate::X509Certificate::from_der(&der).expect("cert");
        assert_eq!(cert.subject().iter_common_name().next().and_then(|c| c.as_str().ok()), Some("system:node:n3"));
        // A short lifetime counts from now; the start is backdated five minutes.
        let life = cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp();
        assert_eq!(life, 3600 + 300);
        assert_eq!(certificate_not_after(pem.as_bytes()), Some(cert.validity().not_after.timestamp()));
        let eku = cert.extended_key_usage().expect("eku").expect("present");
        assert!(eku.value.client_auth && !eku.value.server_auth);

        // A long lifetime ends `ttl` after the backdated start.
        let day = signer.sign(&req, &["client auth".into()], Duration::from_secs(86_400)).expect("sign");
        let (not_before, not_after) = certificate_validity(day.as_bytes()).expect("validity");
        assert_eq!(not_after - not_before, 86_400);
    }
}
