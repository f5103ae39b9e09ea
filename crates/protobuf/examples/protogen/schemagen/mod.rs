//! The descriptor generator, shared by `examples/protogen` (which writes the files) and the
//! freshness test in `tests/descriptor_fresh.rs` (which regenerates and compares).
//!
//! Inputs are two crates.io sources in the local cargo registry: k8s-pb (prost structs for every
//! Kubernetes protobuf message: field numbers, scalar types, message references, GVKs) and
//! k8s-openapi (JSON field names and which fields are required). Outputs are a
//! `google.protobuf.FileDescriptorSet` with upstream message names and JSON names, and a small
//! hints file with what a descriptor cannot say (kinds, inline fields, zero values to keep).

pub mod build;
pub mod locate;
pub mod openapi_source;
pub mod pb_source;
pub mod pointers;

use std::path::Path;

/// The k8s-pb version the committed descriptor is generated from (Kubernetes 1.35 protos, a
/// superset of the 1.33 API rkube serves).
pub const K8S_PB_DIR: &str = "k8s-pb-0.9.0";
/// The k8s-openapi version the JSON names come from.
pub const K8S_OPENAPI_DIR: &str = "k8s-openapi-0.29.0";
/// Definitions are looked up in these k8s-openapi modules, first match wins: 1.35 matches the
/// k8s-pb schema, older ones fill in types 1.35 dropped.
pub const OPENAPI_VERSIONS: &[&str] = &["v1_35", "v1_34", "v1_33"];
/// Paths relative to the rkube-protobuf crate root.
pub const DESCRIPTOR_FILE: &str = "descriptors/k8s-1.35.binpb";
/// See [`DESCRIPTOR_FILE`].
pub const HINTS_FILE: &str = "descriptors/k8s-1.35.hints";

/// What one generator run produces.
pub struct Generated {
    /// Encoded `FileDescriptorSet`.
    pub descriptor: Vec<u8>,
    /// The hints text file.
    pub hints: String,
    /// Human-readable notes (counts, fallbacks) printed by the example; not written anywhere.
    pub report: String,
}

/// Generates the descriptor set and hints from the two source trees (`.../k8s-pb-0.9.0` and
/// `.../k8s-openapi-0.29.0`, each containing `src/`).
pub fn generate(k8s_pb: &Path, k8s_openapi: &Path) -> Result<Generated, String> {
    let pb = pb_source::parse_crate(&k8s_pb.join("src"))?;
    let oa = openapi_source::parse_versions(&k8s_openapi.join("src"), OPENAPI_VERSIONS)?;
    build::build(&pb, &oa)
}
