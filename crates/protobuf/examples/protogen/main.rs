//! Regenerates the committed protobuf schema of rkube-protobuf:
//! `descriptors/k8s-1.34.binpb` (a `FileDescriptorSet`) and `descriptors/k8s-1.34.hints`.
//!
//! ```text
//! cargo run -p rkube-protobuf --example protogen            # write the files
//! cargo run -p rkube-protobuf --example protogen -- --check # fail if they are stale
//! ```
//!
//! The sources are the k8s-pb and k8s-openapi crates as unpacked by cargo in the local registry
//! (both are dependencies in this workspace); `K8S_PB_SRC` / `K8S_OPENAPI_SRC` point elsewhere.

mod schemagen;

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("protogen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let check = std::env::args().any(|a| a == "--check");
    let pb = schemagen::locate::crate_source(schemagen::K8S_PB_DIR, "K8S_PB_SRC").ok_or(
        format!("{} not found in the cargo registry", schemagen::K8S_PB_DIR),
    )?;
    let oa = schemagen::locate::crate_source(schemagen::K8S_OPENAPI_DIR, "K8S_OPENAPI_SRC").ok_or(
        format!(
            "{} not found in the cargo registry",
            schemagen::K8S_OPENAPI_DIR
        ),
    )?;
    let out = schemagen::generate(&pb, &oa)?;
    eprint!("{}", out.report);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (rel, bytes) in [
        (schemagen::DESCRIPTOR_FILE, out.descriptor.as_slice()),
        (schemagen::HINTS_FILE, out.hints.as_bytes()),
    ] {
        let path = root.join(rel);
        if check {
            let current = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            if current != bytes {
                return Err(format!(
                    "{} is stale; rerun without --check",
                    path.display()
                ));
            }
        } else {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
            eprintln!("wrote {} ({} bytes)", path.display(), bytes.len());
        }
    }
    Ok(())
}
