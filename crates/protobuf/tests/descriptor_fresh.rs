//! The committed descriptor and hints are exactly what `examples/protogen` generates from the
//! k8s-pb and k8s-openapi sources. Skipped (with a note) when those sources are not unpacked in
//! the local cargo registry.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test code

#[path = "../examples/protogen/schemagen/mod.rs"]
#[allow(dead_code)]
mod schemagen;

use std::path::Path;

#[test]
fn committed_descriptor_is_fresh() {
    let (Some(pb), Some(oa)) = (
        schemagen::locate::crate_source(schemagen::K8S_PB_DIR, "K8S_PB_SRC"),
        schemagen::locate::crate_source(schemagen::K8S_OPENAPI_DIR, "K8S_OPENAPI_SRC"),
    ) else {
        eprintln!(
            "skipped: {} or {} sources not found",
            schemagen::K8S_PB_DIR,
            schemagen::K8S_OPENAPI_DIR
        );
        return;
    };
    let out = schemagen::generate(&pb, &oa).expect("generate");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let descriptor = std::fs::read(root.join(schemagen::DESCRIPTOR_FILE)).expect("descriptor");
    let hints = std::fs::read_to_string(root.join(schemagen::HINTS_FILE)).expect("hints");
    assert!(
        descriptor == out.descriptor,
        "descriptor is stale: run `cargo run -p rkube-protobuf --example protogen`"
    );
    assert!(
        hints == out.hints,
        "hints are stale: run `cargo run -p rkube-protobuf --example protogen`"
    );
}
