//! Reads the JSON field names of every API type from the k8s-openapi sources: each generated file
//! starts with `// Generated from definition io.k8s.api.core.v1.PodSpec`, declares the struct's
//! fields (`pub host_ipc: Option<bool>,`) and maps JSON keys to them in its `Deserialize` impl
//! (`"hostIPC" => Field::Key_host_ipc,`). A field whose Rust type is not `Option<..>` is one the
//! OpenAPI schema lists as required, i.e. a Go field without `omitempty`.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// One JSON key of an OpenAPI type.
#[derive(Clone, Debug)]
pub struct OaKey {
    pub json: String,
    pub required: bool,
}

/// One OpenAPI definition with its JSON keys in declaration order.
#[derive(Clone, Debug)]
pub struct OaType {
    /// `io.k8s.api.core.v1.PodIP`.
    pub definition: String,
    pub keys: Vec<OaKey>,
}

impl OaType {
    /// The Go type name (`PodIP`).
    pub fn name(&self) -> &str {
        self.definition.rsplit('.').next().unwrap_or_default()
    }

    /// The normalized package (`apicorev1`), comparable with a k8s-pb module path.
    pub fn norm_package(&self) -> String {
        let rest = self
            .definition
            .strip_prefix("io.k8s.")
            .unwrap_or(&self.definition);
        let pkg = rest.rsplit_once('.').map(|(p, _)| p).unwrap_or_default();
        norm(pkg)
    }
}

/// Lowercase alphanumerics only: `hostIPC`, `host_ipc` and `$ref`/`ref` compare equal.
pub fn norm(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Parses the definitions under `src/<version>/` for each version in order; the first version
/// that defines a type wins.
pub fn parse_versions(src_root: &Path, versions: &[&str]) -> Result<Vec<OaType>, String> {
    let mut by_def: BTreeMap<String, OaType> = BTreeMap::new();
    for version in versions {
        let dir = src_root.join(version);
        if !dir.is_dir() {
            return Err(format!("{} is missing", dir.display()));
        }
        let mut files = Vec::new();
        collect(&dir, &mut files)?;
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("reading {}: {e}", file.display()))?;
            if let Some(t) = parse_file(&text) {
                by_def.entry(t.definition.clone()).or_insert(t);
            }
        }
    }
    Ok(by_def.into_values().collect())
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

fn parse_file(text: &str) -> Option<OaType> {
    let definition = text
        .lines()
        .next()?
        .strip_prefix("// Generated from definition ")?
        .trim()
        .to_owned();
    // Struct fields: from `pub struct X {` to the closing `}` in column 0.
    let mut fields: BTreeMap<String, bool> = BTreeMap::new();
    let mut in_struct = false;
    for line in text.lines() {
        if line.starts_with("pub struct ") && line.ends_with('{') {
            in_struct = true;
            continue;
        }
        if in_struct {
            if line == "}" {
                break;
            }
            if let Some(rest) = line.strip_prefix("    pub ")
                && let Some((name, ty)) = rest.split_once(": ")
            {
                fields.insert(name.to_owned(), !ty.starts_with("Option<"));
            }
        }
    }
    let mut keys = Vec::new();
    let mut seen = HashSet::new();
    for line in text.lines() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix('"') else {
            continue;
        };
        let Some((json, tail)) = rest.split_once("\" => Field::Key_") else {
            continue;
        };
        let rust = tail.trim_end_matches(',');
        // `apiVersion`/`kind` of top-level kinds are keys without a struct field.
        let Some(required) = fields.get(rust) else {
            continue;
        };
        if seen.insert(json.to_owned()) {
            keys.push(OaKey {
                json: json.to_owned(),
                required: *required,
            });
        }
    }
    Some(OaType { definition, keys })
}
