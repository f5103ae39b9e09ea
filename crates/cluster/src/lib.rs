//! rkube crate.
