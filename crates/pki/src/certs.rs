//! Issuing and inspecting certificates: the cluster CA, the API server's serving certificate and
//! client certificates. Key algorithm is ECDSA P-256 throughout (what k3s uses too); leaf lifetimes
//! follow kubeadm/k3s (one year, renewed on start when close to expiry).

use std::collections::BTreeSet;
use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::PkiError;

/// Lifetime of the cluster CA (10 years, as kubeadm's CA).
pub(crate) const CA_VALIDITY: Duration = Duration::days(3650);
/// Lifetime of serving and client certificates (1 year, as kubeadm/k3s leaf certificates).
pub(crate) const LEAF_VALIDITY: Duration = Duration::days(365);
/// A leaf certificate closer than this to expiry is re-issued on start (k3s renews at 90 days).
pub(crate) const RENEW_BEFORE: Duration = Duration::days(90);
/// Backdating of `notBefore`, so that a slightly skewed clock on a client still accepts the cert.
const BACKDATE: Duration = Duration::hours(1);

/// A PEM certificate with its PEM (PKCS#8) private key.
#[derive(Clone)]
pub(crate) struct CertAndKey {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Decodes the first `CERTIFICATE` block of a PEM string to DER.
pub(crate) fn pem_to_der(pem: &str) -> Result<Vec<u8>, PkiError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map(|c| c.as_ref().to_vec())
        .map_err(|e| PkiError::Parse(format!("no certificate in PEM: {e}")))
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, PkiError> {
    X509Certificate::from_der(der)
        .map(|(_, c)| c)
        .map_err(|e| PkiError::Parse(format!("invalid certificate: {e}")))
}

fn validity(lifetime: Duration) -> (OffsetDateTime, OffsetDateTime) {
    let now = OffsetDateTime::now_utc();
    (now - BACKDATE, now + lifetime)
}

/// Creates a self-signed CA named `rkube-ca@<unix seconds>` (the shape of client-go's
/// `certutil.NewSelfSignedCACert` names used by kube-apiserver/k3s, e.g. `k3s-server-ca@...`).
pub(crate) fn new_ca() -> Result<CertAndKey, PkiError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    let now = OffsetDateTime::now_utc().unix_timestamp();
    params.distinguished_name.push(DnType::CommonName, format!("rkube-ca@{now}"));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    (params.not_before, params.not_after) = validity(CA_VALIDITY);
    let cert = params.self_signed(&key)?;
    Ok(CertAndKey { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
}

/// Builds an issuer from the CA's PEM certificate and key.
pub(crate) fn issuer(ca: &CertAndKey) -> Result<Issuer<'static, KeyPair>, PkiError> {
    let key = KeyPair::from_pem(&ca.key_pem)?;
    Ok(Issuer::from_ca_cert_pem(&ca.cert_pem, key)?)
}

/// The SANs a serving certificate is issued with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SanSet {
    pub dns: BTreeSet<String>,
    pub ips: BTreeSet<IpAddr>,
}

impl SanSet {
    /// True when every name and address of `wanted` is in `self`.
    pub fn covers(&self, wanted: &SanSet) -> bool {
        wanted.dns.is_subset(&self.dns) && wanted.ips.is_subset(&self.ips)
    }
}

/// Issues the API server's serving certificate (CN `kube-apiserver`, server auth).
pub(crate) fn new_serving(issuer: &Issuer<'_, KeyPair>, sans: &SanSet) -> Result<CertAndKey, PkiError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, "kube-apiserver");
    for ip in &sans.ips {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    for name in &sans.dns {
        let ia5 = name.clone().try_into().map_err(|e| PkiError::Parse(format!("invalid DNS SAN {name:?}: {e}")))?;
        params.subject_alt_names.push(SanType::DnsName(ia5));
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    (params.not_before, params.not_after) = validity(LEAF_VALIDITY);
    let cert = params.signed_by(&key, issuer)?;
    Ok(CertAndKey { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
}

/// Issues a client certificate: subject CN is the user name, O values are the groups, as
/// kube-apiserver's x509 authenticator reads them (`pkg/authentication/request/x509`).
pub(crate) fn new_client(issuer: &Issuer<'_, KeyPair>, cn: &str, orgs: &[&str]) -> Result<CertAndKey, PkiError> {
    if orgs.len() > MAX_ORGS {
        return Err(PkiError::Parse(format!("at most {MAX_ORGS} organizations (groups) per client certificate")));
    }
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    // rcgen keeps one value per attribute type, but groups are repeated O attributes. The
    // second and later ones are written under placeholder types and patched afterwards.
    for (i, o) in orgs.iter().enumerate() {
        let ty = if i == 0 { DnType::OrganizationName } else { DnType::CustomDnType(placeholder_oid(i)) };
        params.distinguished_name.push(ty, *o);
    }
    params.distinguished_name.push(DnType::CommonName, cn);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    (params.not_before, params.not_after) = validity(LEAF_VALIDITY);
    let cert = params.signed_by(&key, issuer)?;
    let der = if orgs.len() > 1 {
        patch_placeholder_orgs(cert.der().as_ref(), orgs.len(), issuer.key())?
    } else {
        cert.der().as_ref().to_vec()
    };
    Ok(CertAndKey { cert_pem: der_to_pem(&der), key_pem: key.serialize_pem() })
}

/// The most groups a client certificate can carry (placeholder OIDs 2.5.4.100..=2.5.4.127).
const MAX_ORGS: usize = 28;
/// The DER content of the `organizationName` OID 2.5.4.10.
const OID_O: [u8; 3] = [0x55, 0x04, 0x0a];

/// A stand-in attribute type 2.5.4.(99+i) whose DER encoding has the same length as 2.5.4.10.
fn placeholder_oid(i: usize) -> Vec<u64> {
    vec![2, 5, 4, 99 + i as u64]
}

fn der_to_pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Total length of the DER TLV at the start of `b`.
fn tlv_len(b: &[u8]) -> Option<usize> {
    let first = *b.get(1)?;
    if first < 0x80 {
        return Some(2 + first as usize);
    }
    let n = (first & 0x7f) as usize;
    if n == 0 || n > 4 {
        return None;
    }
    let mut len = 0usize;
    for k in 0..n {
        len = (len << 8) | *b.get(2 + k)? as usize;
    }
    Some(2 + n + len)
}

/// A DER header for `tag` with content length `len`.
fn der_header(tag: u8, len: usize) -> Vec<u8> {
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().iter().copied().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out
}

/// Rewrites the placeholder attribute types of the subject to `organizationName` and signs the
/// changed TBSCertificate again with the CA key. Lengths do not change (same-size OIDs).
fn patch_placeholder_orgs(der: &[u8], count: usize, signer: &KeyPair) -> Result<Vec<u8>, PkiError> {
    use rcgen::SigningKey;
    let bad = || PkiError::Parse("unexpected certificate encoding while setting groups".to_string());
    let cert = parse(der)?;
    let base = der.as_ptr() as usize;
    let tbs = cert.tbs_certificate.as_ref();
    let tbs_start = (tbs.as_ptr() as usize).checked_sub(base).ok_or_else(bad)?;
    let tbs_end = tbs_start + tbs.len();
    let subject = cert.subject().as_raw();
    let subj_start = (subject.as_ptr() as usize).checked_sub(base + tbs_start).ok_or_else(bad)?;
    let subj_end = subj_start + subject.len();

    let mut new_tbs = tbs.to_vec();
    for i in 1..count {
        let marker = [0x06, 0x03, 0x55, 0x04, (99 + i) as u8];
        let region = new_tbs.get(subj_start..subj_end).ok_or_else(bad)?;
        let pos = region.windows(marker.len()).position(|w| w == marker).ok_or_else(bad)?;
        let at = subj_start + pos + 2;
        new_tbs.get_mut(at..at + 3).ok_or_else(bad)?.copy_from_slice(&OID_O);
    }
    let rest = der.get(tbs_end..).ok_or_else(bad)?;
    let alg_len = tlv_len(rest).ok_or_else(bad)?;
    let alg = rest.get(..alg_len).ok_or_else(bad)?;
    let sig = signer.sign(&new_tbs)?;

    let mut bitstring = der_header(0x03, sig.len() + 1);
    bitstring.push(0);
    bitstring.extend(sig);
    let body_len = new_tbs.len() + alg.len() + bitstring.len();
    let mut out = der_header(0x30, body_len);
    out.extend(new_tbs);
    out.extend_from_slice(alg);
    out.extend(bitstring);
    Ok(out)
}

/// Checks that `key_pem` is the private key of `cert_pem`.
pub(crate) fn key_matches(cert_pem: &str, key_pem: &str) -> Result<bool, PkiError> {
    use rcgen::PublicKeyData;
    let der = pem_to_der(cert_pem)?;
    let cert = parse(&der)?;
    let key = KeyPair::from_pem(key_pem)?;
    Ok(cert.public_key().raw == key.subject_public_key_info().as_slice())
}

/// True when `cert_pem` was signed by the CA `ca_pem`, is valid now, and is not within
/// [`RENEW_BEFORE`] of expiry.
pub(crate) fn still_good(cert_pem: &str, ca_pem: &str) -> Result<bool, PkiError> {
    let der = pem_to_der(cert_pem)?;
    let cert = parse(&der)?;
    let ca_der = pem_to_der(ca_pem)?;
    let ca = parse(&ca_der)?;
    if cert.verify_signature(Some(ca.public_key())).is_err() {
        return Ok(false);
    }
    Ok(cert.validity().time_to_expiration().is_some_and(|left| left > RENEW_BEFORE))
}

/// The DNS and IP SANs of a PEM certificate.
pub(crate) fn sans_of(cert_pem: &str) -> Result<SanSet, PkiError> {
    let der = pem_to_der(cert_pem)?;
    let cert = parse(&der)?;
    let mut out = SanSet::default();
    let ext = cert.subject_alternative_name().map_err(|e| PkiError::Parse(format!("bad SAN extension: {e}")))?;
    if let Some(ext) = ext {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => {
                    out.dns.insert((*d).to_string());
                }
                GeneralName::IPAddress(bytes) => {
                    if let Ok(b) = <[u8; 4]>::try_from(*bytes) {
                        out.ips.insert(IpAddr::from(b));
                    } else if let Ok(b) = <[u8; 16]>::try_from(*bytes) {
                        out.ips.insert(IpAddr::from(b));
                    }
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

/// Subject CN and O values of a DER certificate.
pub(crate) fn subject_identity(der: &[u8]) -> Result<(String, Vec<String>), PkiError> {
    let cert = parse(der)?;
    let subject = cert.subject();
    let text = |a: &x509_parser::x509::AttributeTypeAndValue<'_>| {
        a.as_str().map(str::to_string).map_err(|e| PkiError::Parse(format!("subject attribute is not a string: {e}")))
    };
    let cn = match subject.iter_common_name().next() {
        Some(a) => text(a)?,
        None => String::new(),
    };
    let orgs = subject.iter_organization().map(text).collect::<Result<Vec<_>, _>>()?;
    Ok((cn, orgs))
}
