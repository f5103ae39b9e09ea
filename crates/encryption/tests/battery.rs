//! The encrypting store keeps every storage guarantee of the store it wraps, with every value
//! encrypted (`*.*`).

use std::sync::Arc;

use rkube_encryption::{EncryptedStore, EncryptionConfig};
use rkube_storage::KvStore;
use rkube_storage::memory::MemoryStore;

const CONFIG: &str = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [\"*.*\"]\n  providers:\n  - secretbox:\n      keys:\n      - name: k1\n        secret: c2VjcmV0IGlzIHNlY3VyZSwgb3IgaXMgaXQ/IDMyYno=\n  - identity: {}\n";

rkube_storage::storage_battery!(|| async {
    let inner: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    EncryptedStore::new(inner, EncryptionConfig::parse(CONFIG).unwrap())
});
