//! Finds the unpacked crate sources in the local cargo registry
//! (`$CARGO_HOME/registry/src/<index>/<name>-<version>`). `K8S_PB_SRC` / `K8S_OPENAPI_SRC`
//! override the lookup.

use std::path::PathBuf;

/// The directory of an unpacked crate such as `k8s-pb-0.9.0`, if present.
pub fn crate_source(dir_name: &str, override_var: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(override_var) {
        let p = PathBuf::from(p);
        return p.join("src").is_dir().then_some(p);
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let registry = cargo_home.join("registry").join("src");
    let mut indexes: Vec<PathBuf> = std::fs::read_dir(&registry)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    indexes.sort();
    indexes
        .into_iter()
        .map(|i| i.join(dir_name))
        .find(|p| p.join("src").is_dir())
}
