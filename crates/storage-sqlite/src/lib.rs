//! Embedded SQLite backend for [`rkube_storage::KvStore`].
