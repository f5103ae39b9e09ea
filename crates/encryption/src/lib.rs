//! Encryption of stored objects at rest, configured like upstream's `--encryption-provider-config`
//! (`apiserver.config.k8s.io/v1` `EncryptionConfiguration`).
//!
//! Each resource entry lists providers in order: the first encrypts every write, all of them are
//! tried on reads (by the prefix each one writes), so keys rotate by putting a new key first,
//! restarting, and rewriting the objects. Stored formats are upstream's:
//! `k8s:enc:aescbc:v1:<key>:` + IV + AES-CBC(PKCS#7), `k8s:enc:aesgcm:v1:<key>:` + nonce +
//! AES-GCM (the storage key as associated data), `k8s:enc:secretbox:v1:<key>:` + nonce +
//! XSalsa20-Poly1305; `identity` stores plaintext. KMS providers are not supported.

mod store;
pub use store::EncryptedStore;

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use base64::Engine;
use serde::Deserialize;

/// Why a configuration could not be used or a value could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EncryptionError {
    /// The configuration file is malformed or invalid.
    #[error("encryption provider configuration: {0}")]
    Config(String),
    /// A stored value could not be decrypted.
    #[error("{0}")]
    Decrypt(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ConfigFile {
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    resources: Vec<ResourceEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceEntry {
    resources: Vec<String>,
    providers: Vec<ProviderEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderEntry {
    aescbc: Option<KeysEntry>,
    aesgcm: Option<KeysEntry>,
    secretbox: Option<KeysEntry>,
    identity: Option<serde_yaml_ng::Value>,
    kms: Option<serde_yaml_ng::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysEntry {
    keys: Vec<KeyEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    name: String,
    secret: String,
}

#[derive(Clone)]
enum Cipher {
    AesCbc(Vec<u8>),
    AesGcm(Vec<u8>),
    SecretBox([u8; 32]),
}

#[derive(Clone)]
struct Key {
    prefix: Vec<u8>,
    cipher: Cipher,
}

#[derive(Clone)]
enum Provider {
    Keys(Vec<Key>),
    Identity,
}

/// The providers of one resource entry.
#[derive(Clone)]
pub struct ProviderChain {
    providers: Vec<Provider>,
}

/// A parsed `EncryptionConfiguration`.
#[derive(Clone)]
pub struct EncryptionConfig {
    entries: Vec<(Vec<String>, ProviderChain)>,
}

impl std::fmt::Debug for EncryptionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let resources: Vec<&Vec<String>> = self.entries.iter().map(|(r, _)| r).collect();
        f.debug_struct("EncryptionConfig").field("resources", &resources).finish_non_exhaustive()
    }
}

impl EncryptionConfig {
    /// Reads and validates a configuration file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, EncryptionError> {
        let text = std::fs::read_to_string(path).map_err(|e| EncryptionError::Config(format!("reading {}: {e}", path.display())))?;
        Self::parse(&text)
    }

    /// Parses and validates a configuration.
    pub fn parse(text: &str) -> Result<Self, EncryptionError> {
        let file: ConfigFile = serde_yaml_ng::from_str(text).map_err(|e| EncryptionError::Config(e.to_string()))?;
        if file.kind.as_deref() != Some("EncryptionConfiguration") || file.api_version.as_deref() != Some("apiserver.config.k8s.io/v1") {
            return Err(EncryptionError::Config("expected apiVersion apiserver.config.k8s.io/v1, kind EncryptionConfiguration".into()));
        }
        let mut entries = Vec::new();
        for (i, r) in file.resources.iter().enumerate() {
            if r.resources.is_empty() {
                return Err(EncryptionError::Config(format!("resources[{i}].resources: Required value: resources is required")));
            }
            if r.providers.is_empty() {
                return Err(EncryptionError::Config(format!("resources[{i}].providers: Required value: providers is required")));
            }
            let mut providers = Vec::new();
            for (j, p) in r.providers.iter().enumerate() {
                let field = format!("resources[{i}].providers[{j}]");
                providers.push(provider(p, &field)?);
            }
            entries.push((r.resources.clone(), ProviderChain { providers }));
        }
        Ok(Self { entries })
    }

    /// The providers for a resource (`plural` in `group`, `""` for core), if the configuration
    /// covers it. The first matching entry wins, as upstream.
    pub fn for_resource(&self, group: &str, plural: &str) -> Option<&ProviderChain> {
        let full = if group.is_empty() { plural.to_string() } else { format!("{plural}.{group}") };
        self.entries.iter().find(|(names, _)| names.iter().any(|n| resource_matches(n, group, &full))).map(|(_, c)| c)
    }
}

fn resource_matches(pattern: &str, group: &str, full: &str) -> bool {
    match pattern {
        "*.*" => true,
        "*." => group.is_empty(),
        p => match p.strip_prefix("*.") {
            Some(g) => g == group,
            None => p == full,
        },
    }
}

fn provider(p: &ProviderEntry, field: &str) -> Result<Provider, EncryptionError> {
    let set = [p.aescbc.is_some(), p.aesgcm.is_some(), p.secretbox.is_some(), p.identity.is_some(), p.kms.is_some()].iter().filter(|b| **b).count();
    if set != 1 {
        return Err(EncryptionError::Config(format!("{field}: Invalid value: \"\": provider does not contain any of the expected providers: KMS, AESGCM, AESCBC, Secretbox, Identity")));
    }
    if p.identity.is_some() {
        return Ok(Provider::Identity);
    }
    if p.kms.is_some() {
        return Err(EncryptionError::Config(format!("{field}.kms: Forbidden: KMS providers are not supported by rkube")));
    }
    let (name, keys, lengths): (&str, &KeysEntry, &[usize]) = match (&p.aescbc, &p.aesgcm, &p.secretbox) {
        (Some(k), _, _) => ("aescbc", k, &[16, 24, 32]),
        (_, Some(k), _) => ("aesgcm", k, &[16, 24, 32]),
        (_, _, Some(k)) => ("secretbox", k, &[32]),
        _ => return Err(EncryptionError::Config(format!("{field}: no provider"))),
    };
    if keys.keys.is_empty() {
        return Err(EncryptionError::Config(format!("{field}.{name}.keys: Required value: keys is required")));
    }
    let mut out = Vec::new();
    for (k, key) in keys.keys.iter().enumerate() {
        let kf = format!("{field}.{name}.keys[{k}]");
        if key.name.is_empty() || key.name.contains(':') {
            return Err(EncryptionError::Config(format!("{kf}.name: Invalid value: {:?}: key name must be non-empty and must not contain ':'", key.name)));
        }
        let secret = base64::engine::general_purpose::STANDARD
            .decode(key.secret.trim())
            .map_err(|_| EncryptionError::Config(format!("{kf}.secret: Invalid value: \"REDACTED\": secret is not a valid base64 string")))?;
        if !lengths.contains(&secret.len()) {
            return Err(EncryptionError::Config(format!(
                "{kf}.secret: Invalid value: \"REDACTED\": secret is not of the expected length, got {}, expected one of {lengths:?}",
                secret.len()
            )));
        }
        let cipher = match name {
            "aescbc" => Cipher::AesCbc(secret),
            "aesgcm" => Cipher::AesGcm(secret),
            _ => {
                let mut k32 = [0u8; 32];
                k32.copy_from_slice(&secret);
                Cipher::SecretBox(k32)
            }
        };
        out.push(Key { prefix: format!("k8s:enc:{name}:v1:{}:", key.name).into_bytes(), cipher });
    }
    Ok(Provider::Keys(out))
}

type Aes128CbcEnc = cbc::Encryptor<aes::Aes128>;
type Aes192CbcEnc = cbc::Encryptor<aes::Aes192>;
type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes128CbcDec = cbc::Decryptor<aes::Aes128>;
type Aes192CbcDec = cbc::Decryptor<aes::Aes192>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

fn cbc_encrypt(key: &[u8], iv: &[u8; 16], data: &[u8]) -> Result<Vec<u8>, String> {
    use cbc::cipher::block_padding::Pkcs7;
    let bad = |_| "invalid AES key".to_string();
    Ok(match key.len() {
        16 => Aes128CbcEnc::new_from_slices(key, iv).map_err(bad)?.encrypt_padded_vec_mut::<Pkcs7>(data),
        24 => Aes192CbcEnc::new_from_slices(key, iv).map_err(bad)?.encrypt_padded_vec_mut::<Pkcs7>(data),
        _ => Aes256CbcEnc::new_from_slices(key, iv).map_err(bad)?.encrypt_padded_vec_mut::<Pkcs7>(data),
    })
}

fn cbc_decrypt(key: &[u8], iv: &[u8], data: &[u8]) -> Result<Vec<u8>, String> {
    use cbc::cipher::block_padding::Pkcs7;
    let bad = |_| "invalid AES key".to_string();
    let unpad = |_| "invalid padding on input".to_string();
    match key.len() {
        16 => Aes128CbcDec::new_from_slices(key, iv).map_err(bad)?.decrypt_padded_vec_mut::<Pkcs7>(data).map_err(unpad),
        24 => Aes192CbcDec::new_from_slices(key, iv).map_err(bad)?.decrypt_padded_vec_mut::<Pkcs7>(data).map_err(unpad),
        _ => Aes256CbcDec::new_from_slices(key, iv).map_err(bad)?.decrypt_padded_vec_mut::<Pkcs7>(data).map_err(unpad),
    }
}

fn gcm_seal(key: &[u8], nonce: &[u8; 12], data: &[u8], aad: &[u8]) -> Result<Vec<u8>, String> {
    let payload = Payload { msg: data, aad };
    let n = aes_gcm::Nonce::from_slice(nonce);
    let r = match key.len() {
        16 => aes_gcm::Aes128Gcm::new_from_slice(key).map_err(|e| e.to_string())?.encrypt(n, payload),
        24 => aes_gcm::AesGcm::<aes::Aes192, aes_gcm::aead::consts::U12>::new_from_slice(key).map_err(|e| e.to_string())?.encrypt(n, payload),
        _ => aes_gcm::Aes256Gcm::new_from_slice(key).map_err(|e| e.to_string())?.encrypt(n, payload),
    };
    r.map_err(|_| "AES-GCM encryption failed".to_string())
}

fn gcm_open(key: &[u8], nonce: &[u8], data: &[u8], aad: &[u8]) -> Result<Vec<u8>, String> {
    let payload = Payload { msg: data, aad };
    let n = aes_gcm::Nonce::from_slice(nonce);
    let r = match key.len() {
        16 => aes_gcm::Aes128Gcm::new_from_slice(key).map_err(|e| e.to_string())?.decrypt(n, payload),
        24 => aes_gcm::AesGcm::<aes::Aes192, aes_gcm::aead::consts::U12>::new_from_slice(key).map_err(|e| e.to_string())?.decrypt(n, payload),
        _ => aes_gcm::Aes256Gcm::new_from_slice(key).map_err(|e| e.to_string())?.decrypt(n, payload),
    };
    r.map_err(|_| "cipher: message authentication failed".to_string())
}

impl ProviderChain {
    /// Encrypts a value for storage under `storage_key` with the first provider.
    pub fn encrypt(&self, data: &[u8], storage_key: &str) -> Result<Vec<u8>, EncryptionError> {
        let Some(first) = self.providers.first() else { return Ok(data.to_vec()) };
        let Provider::Keys(keys) = first else { return Ok(data.to_vec()) };
        let Some(key) = keys.first() else { return Ok(data.to_vec()) };
        let mut out = key.prefix.clone();
        match &key.cipher {
            Cipher::AesCbc(k) => {
                let iv: [u8; 16] = rand::random();
                out.extend_from_slice(&iv);
                out.extend(cbc_encrypt(k, &iv, data).map_err(EncryptionError::Decrypt)?);
            }
            Cipher::AesGcm(k) => {
                let nonce: [u8; 12] = rand::random();
                out.extend_from_slice(&nonce);
                out.extend(gcm_seal(k, &nonce, data, storage_key.as_bytes()).map_err(EncryptionError::Decrypt)?);
            }
            Cipher::SecretBox(k) => {
                use crypto_secretbox::aead::Aead as _;
                use crypto_secretbox::{KeyInit as _, XSalsa20Poly1305};
                let nonce: [u8; 24] = rand::random();
                let sealed = XSalsa20Poly1305::new(k.into())
                    .encrypt(crypto_secretbox::Nonce::from_slice(&nonce), data)
                    .map_err(|_| EncryptionError::Decrypt("secretbox encryption failed".into()))?;
                out.extend_from_slice(&nonce);
                out.extend(sealed);
            }
        }
        Ok(out)
    }

    /// Decrypts a stored value with whichever provider wrote it.
    pub fn decrypt(&self, stored: &[u8], storage_key: &str) -> Result<Vec<u8>, EncryptionError> {
        self.decrypt_checked(stored, storage_key).map(|(v, _)| v)
    }

    /// Decrypts, and says whether the value is stale: written by a provider or key other than
    /// the one writes use now.
    pub fn decrypt_checked(&self, stored: &[u8], storage_key: &str) -> Result<(Vec<u8>, bool), EncryptionError> {
        let current_prefix = match self.providers.first() {
            Some(Provider::Keys(keys)) => keys.first().map(|k| k.prefix.as_slice()),
            _ => None,
        };
        let stale = match current_prefix {
            Some(prefix) => !stored.starts_with(prefix),
            None => stored.starts_with(b"k8s:enc:"),
        };
        self.decrypt_any(stored, storage_key).map(|v| (v, stale))
    }

    fn decrypt_any(&self, stored: &[u8], storage_key: &str) -> Result<Vec<u8>, EncryptionError> {
        for p in &self.providers {
            let Provider::Keys(keys) = p else { continue };
            for key in keys {
                let Some(body) = stored.strip_prefix(key.prefix.as_slice()) else { continue };
                let r = match &key.cipher {
                    Cipher::AesCbc(k) => {
                        if body.len() < 16 {
                            return Err(EncryptionError::Decrypt("the stored data was shorter than the required size".into()));
                        }
                        cbc_decrypt(k, &body[..16], &body[16..])
                    }
                    Cipher::AesGcm(k) => {
                        if body.len() < 12 {
                            return Err(EncryptionError::Decrypt("the stored data was shorter than the required size".into()));
                        }
                        gcm_open(k, &body[..12], &body[12..], storage_key.as_bytes())
                    }
                    Cipher::SecretBox(k) => {
                        use crypto_secretbox::aead::Aead as _;
                        use crypto_secretbox::{KeyInit as _, XSalsa20Poly1305};
                        if body.len() < 24 {
                            return Err(EncryptionError::Decrypt("the stored data was shorter than the required size".into()));
                        }
                        XSalsa20Poly1305::new(k.into())
                            .decrypt(crypto_secretbox::Nonce::from_slice(&body[..24]), &body[24..])
                            .map_err(|_| "output array was not large enough for encryption".to_string())
                    }
                };
                return r.map_err(EncryptionError::Decrypt);
            }
        }
        if self.providers.iter().any(|p| matches!(p, Provider::Identity)) {
            return Ok(stored.to_vec());
        }
        Err(EncryptionError::Decrypt("no matching prefix found".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K32: &str = "c2VjcmV0IGlzIHNlY3VyZSwgb3IgaXMgaXQ/IDMyYno="; // 32 bytes
    const K32B: &str = "YW5vdGhlciBzZWNyZXQga2V5LCAzMiBieXRlcyEhISE="; // 32 bytes

    fn config(providers: &str) -> EncryptionConfig {
        EncryptionConfig::parse(&format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets, \"*.apps\"]\n  providers:\n{providers}"
        ))
        .unwrap()
    }

    #[test]
    fn every_provider_round_trips_and_hides_the_plaintext() {
        for (name, key) in [("aescbc", K32), ("aesgcm", K32), ("secretbox", K32)] {
            let c = config(&format!("  - {name}:\n      keys:\n      - name: k1\n        secret: {key}\n"));
            let chain = c.for_resource("", "secrets").unwrap();
            let plain = br#"{"kind":"Secret","data":{"password":"aHVudGVyMg=="}}"#;
            let stored = chain.encrypt(plain, "/registry/core/secrets/default/s").unwrap();
            assert!(stored.starts_with(format!("k8s:enc:{name}:v1:k1:").as_bytes()), "{name}");
            assert!(!stored.windows(8).any(|w| w == b"password"), "{name}: plaintext visible");
            assert_eq!(chain.decrypt(&stored, "/registry/core/secrets/default/s").unwrap(), plain);
        }
    }

    #[test]
    fn gcm_binds_the_storage_key() {
        let c = config(&format!("  - aesgcm:\n      keys:\n      - name: k1\n        secret: {K32}\n"));
        let chain = c.for_resource("", "secrets").unwrap();
        let stored = chain.encrypt(b"x", "/registry/core/secrets/a/b").unwrap();
        assert!(chain.decrypt(&stored, "/registry/core/secrets/a/other").is_err());
    }

    #[test]
    fn rotation_reads_old_keys_and_writes_with_the_first() {
        let old = config(&format!("  - aescbc:\n      keys:\n      - name: old\n        secret: {K32}\n"));
        let stored_old = old.for_resource("", "secrets").unwrap().encrypt(b"v", "k").unwrap();
        let rotated = config(&format!("  - secretbox:\n      keys:\n      - name: new\n        secret: {K32B}\n  - aescbc:\n      keys:\n      - name: old\n        secret: {K32}\n"));
        let chain = rotated.for_resource("", "secrets").unwrap();
        assert_eq!(chain.decrypt_checked(&stored_old, "k").unwrap(), (b"v".to_vec(), true), "old key: stale");
        let fresh = chain.encrypt(b"v", "k").unwrap();
        assert_eq!(chain.decrypt_checked(&fresh, "k").unwrap(), (b"v".to_vec(), false));
        assert!(chain.encrypt(b"v", "k").unwrap().starts_with(b"k8s:enc:secretbox:v1:new:"));
        // Plaintext written before encryption is readable only while identity is listed.
        assert!(chain.decrypt(b"{}", "k").is_err());
        let with_identity = config(&format!("  - aescbc:\n      keys:\n      - name: old\n        secret: {K32}\n  - identity: {{}}\n"));
        assert_eq!(with_identity.for_resource("", "secrets").unwrap().decrypt(b"{}", "k").unwrap(), b"{}");
    }

    #[test]
    fn resources_match_like_upstream() {
        let c = config("  - identity: {}\n");
        assert!(c.for_resource("", "secrets").is_some());
        assert!(c.for_resource("apps", "deployments").is_some());
        assert!(c.for_resource("", "configmaps").is_none());
        assert!(c.for_resource("batch", "jobs").is_none());
    }

    #[test]
    fn invalid_configurations_are_refused_with_the_field() {
        let bad_len = EncryptionConfig::parse("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n      - name: k\n        secret: c2hvcnQ=\n")
            .unwrap_err()
            .to_string();
        assert!(bad_len.contains("resources[0].providers[0].aescbc.keys[0].secret: Invalid value: \"REDACTED\": secret is not of the expected length, got 5"), "{bad_len}");
        let kms = EncryptionConfig::parse("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - kms:\n      name: x\n").unwrap_err().to_string();
        assert!(kms.contains("KMS providers are not supported"), "{kms}");
        assert!(EncryptionConfig::parse("kind: Other\n").is_err());
    }
}
