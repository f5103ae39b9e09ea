//! `--admission-control-config-file`: an `apiserver.config.k8s.io/v1` AdmissionConfiguration
//! whose `plugins[].configuration` (inline) or `plugins[].path` (relative to the file) configures
//! a plugin (upstream `staging/src/k8s.io/apiserver/pkg/admission/config.go`). Only PodSecurity
//! reads a configuration here (`pod-security.admission.config.k8s.io/v1`
//! PodSecurityConfiguration: defaults and exemptions).

use std::path::Path;

use serde_json::Value;

/// Per-plugin configurations, by plugin name.
#[derive(Debug, Clone, Default)]
pub struct AdmissionConfig {
    plugins: Vec<(String, Value)>,
}

impl AdmissionConfig {
    /// Reads the file (YAML or JSON).
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let doc = parse(&text, path)?;
        if doc["kind"] != "AdmissionConfiguration" {
            return Err(format!("{}: expected kind AdmissionConfiguration of apiserver.config.k8s.io/v1", path.display()));
        }
        let mut plugins = Vec::new();
        for p in doc["plugins"].as_array().into_iter().flatten() {
            let name = p["name"].as_str().unwrap_or("").to_string();
            let configuration = match (&p["configuration"], p["path"].as_str()) {
                (c, _) if c.is_object() => c.clone(),
                (_, Some(rel)) => {
                    let file = path.parent().unwrap_or(Path::new(".")).join(rel);
                    let text = std::fs::read_to_string(&file).map_err(|e| format!("reading {}: {e}", file.display()))?;
                    parse(&text, &file)?
                }
                _ => continue,
            };
            plugins.push((name, configuration));
        }
        Ok(Self { plugins })
    }

    /// The configuration of one plugin, if given.
    pub fn plugin(&self, name: &str) -> Option<&Value> {
        self.plugins.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }
}

fn parse(text: &str, path: &Path) -> Result<Value, String> {
    serde_yaml_ng::from_str(text).map_err(|e| format!("parsing {}: {e}", path.display()))
}
