//! A [`KvStore`] that encrypts the values of configured resources on their way into the inner
//! store and decrypts them on the way out, as upstream's storage value transformers sit between
//! the API server's storage layer and etcd. Everything above it (watch cache, registry) sees
//! plaintext; the datastore file never does.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use rkube_storage::{Event, KeyValue, KvStore, RangeResult, Result, Revision, StorageError, WatchStream};

use crate::{EncryptionConfig, ProviderChain};

/// The inner store with encryption at rest.
pub struct EncryptedStore {
    inner: Arc<dyn KvStore>,
    config: Arc<EncryptionConfig>,
    /// Values read that were written with an older key or provider, by key and revision.
    stale: Arc<parking_lot::Mutex<std::collections::HashSet<(String, Revision)>>>,
}

impl EncryptedStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn KvStore>, config: EncryptionConfig) -> Self {
        Self { inner, config: Arc::new(config), stale: Arc::default() }
    }
}

/// The providers for a storage key `/registry/<group or core>/<plural>/...`; other keys count as
/// core resources named by their first segment (only `*.*` configurations reach them).
fn chain_for<'c>(config: &'c EncryptionConfig, key: &str) -> Option<&'c ProviderChain> {
    match key.strip_prefix("/registry/") {
        Some(rest) => {
            let mut parts = rest.split('/');
            let group = parts.next()?;
            let plural = parts.next()?;
            config.for_resource(if group == "core" { "" } else { group }, plural)
        }
        None => config.for_resource("", key.trim_start_matches('/').split('/').next()?),
    }
}

fn open(config: &EncryptionConfig, kv: KeyValue) -> Result<KeyValue> {
    open_noting_stale(config, kv, None)
}

type StaleSet = parking_lot::Mutex<std::collections::HashSet<(String, Revision)>>;

fn open_noting_stale(config: &EncryptionConfig, mut kv: KeyValue, stale: Option<&StaleSet>) -> Result<KeyValue> {
    if let Some(chain) = chain_for(config, &kv.key) {
        let (plain, is_stale) = chain.decrypt_checked(&kv.value, &kv.key).map_err(|e| StorageError::Backend(format!("decrypting {}: {e}", kv.key)))?;
        kv.value = plain;
        if let (true, Some(set)) = (is_stale, stale) {
            set.lock().insert((kv.key.clone(), kv.mod_revision));
        }
    }
    Ok(kv)
}

fn seal(config: &EncryptionConfig, key: &str, value: Vec<u8>) -> Result<Vec<u8>> {
    match chain_for(config, key) {
        Some(chain) => chain.encrypt(&value, key).map_err(|e| StorageError::Backend(format!("encrypting {key}: {e}"))),
        None => Ok(value),
    }
}

fn open_err(config: &EncryptionConfig, e: StorageError) -> StorageError {
    match e {
        StorageError::Conflict { key, expected, current } => match open(config, *current) {
            Ok(current) => StorageError::Conflict { key, expected, current: Box::new(current) },
            Err(e) => e,
        },
        other => other,
    }
}

#[async_trait]
impl KvStore for EncryptedStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        self.inner.get(key).await?.map(|kv| open_noting_stale(&self.config, kv, Some(&self.stale))).transpose()
    }

    async fn range(&self, prefix: &str, start_after: Option<&str>, limit: usize, revision: Option<Revision>) -> Result<RangeResult> {
        let mut r = self.inner.range(prefix, start_after, limit, revision).await?;
        r.kvs = r.kvs.into_iter().map(|kv| open(&self.config, kv)).collect::<Result<_>>()?;
        Ok(r)
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue> {
        let sealed = seal(&self.config, key, value.clone())?;
        let mut kv = self.inner.create(key, sealed).await?;
        kv.value = value;
        Ok(kv)
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected_revision: Revision) -> Result<KeyValue> {
        let sealed = seal(&self.config, key, value.clone())?;
        let mut kv = self.inner.update(key, sealed, expected_revision).await.map_err(|e| open_err(&self.config, e))?;
        self.stale.lock().remove(&(key.to_string(), expected_revision));
        kv.value = value;
        Ok(kv)
    }

    async fn delete(&self, key: &str, expected_revision: Option<Revision>) -> Result<(KeyValue, Revision)> {
        let (kv, rev) = self.inner.delete(key, expected_revision).await.map_err(|e| open_err(&self.config, e))?;
        Ok((open(&self.config, kv)?, rev))
    }

    async fn watch(&self, prefix: &str, after_revision: Revision) -> Result<WatchStream> {
        let config = self.config.clone();
        let inner = self.inner.watch(prefix, after_revision).await?;
        Ok(inner
            .map(move |ev| {
                ev.and_then(|ev| match ev {
                    Event::Put { kv, prev } => Ok(Event::Put { kv: open(&config, kv)?, prev: prev.map(|p| open(&config, p)).transpose()? }),
                    Event::Delete { prev, revision } => Ok(Event::Delete { prev: open(&config, prev)?, revision }),
                })
            })
            .boxed())
    }

    async fn current_revision(&self) -> Result<Revision> {
        self.inner.current_revision().await
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        self.inner.compacted_revision().await
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.inner.compact(revision).await
    }

    fn needs_rewrite(&self, kv: &KeyValue) -> bool {
        self.stale.lock().contains(&(kv.key.clone(), kv.mod_revision))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rkube_storage::memory::MemoryStore;

    const CONFIG: &str = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n      - name: k1\n        secret: c2VjcmV0IGlzIHNlY3VyZSwgb3IgaXMgaXQ/IDMyYno=\n  - identity: {}\n";

    #[tokio::test]
    async fn secrets_are_sealed_in_the_inner_store_and_plain_above_it() {
        let inner: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
        let store = EncryptedStore::new(inner.clone(), EncryptionConfig::parse(CONFIG).unwrap());
        let mut watch = store.watch("/registry/", 0).await.unwrap();
        let created = store.create("/registry/core/secrets/default/s", b"{\"data\":\"top\"}".to_vec()).await.unwrap();
        assert_eq!(created.value, b"{\"data\":\"top\"}");
        store.create("/registry/core/configmaps/default/c", b"{}".to_vec()).await.unwrap();
        let raw = inner.get("/registry/core/secrets/default/s").await.unwrap().unwrap();
        assert!(raw.value.starts_with(b"k8s:enc:aescbc:v1:k1:"));
        assert_eq!(inner.get("/registry/core/configmaps/default/c").await.unwrap().unwrap().value, b"{}");
        assert_eq!(store.get("/registry/core/secrets/default/s").await.unwrap().unwrap().value, b"{\"data\":\"top\"}");
        let listed = store.range("/registry/core/secrets/", None, 0, None).await.unwrap();
        assert_eq!(listed.kvs[0].value, b"{\"data\":\"top\"}");
        match watch.next().await.unwrap().unwrap() {
            Event::Put { kv, .. } => assert_eq!(kv.value, b"{\"data\":\"top\"}"),
            other => panic!("unexpected {other:?}"),
        }
        let err = store.update("/registry/core/secrets/default/s", b"{}".to_vec(), 999).await.unwrap_err();
        match err {
            StorageError::Conflict { current, .. } => assert_eq!(current.value, b"{\"data\":\"top\"}"),
            other => panic!("unexpected {other:?}"),
        }
    }
}
