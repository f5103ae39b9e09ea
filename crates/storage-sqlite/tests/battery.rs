//! The shared behaviour battery against SQLite files in temporary directories.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rkube_storage::battery::WithGuard;
use rkube_storage_sqlite::SqliteStore;

rkube_storage::storage_battery!(|| async {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("state.db")).unwrap();
    WithGuard { store, guard: dir }
});
