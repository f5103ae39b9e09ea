//! Media types: what the client sent and what it accepts
//! (apiserver `pkg/endpoints/handlers/negotiation`).

/// A representation the server can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// `application/json`
    Json,
    /// `application/yaml`
    Yaml,
    /// `application/vnd.kubernetes.protobuf`
    Protobuf,
    /// `application/json;as=Table;v=v1;g=meta.k8s.io`
    Table,
    /// `application/json;as=PartialObjectMetadata(List);v=v1;g=meta.k8s.io`
    PartialMetadata,
}

/// A request body's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// JSON
    Json,
    /// YAML
    Yaml,
    /// Kubernetes protobuf envelope
    Protobuf,
}

/// JSON and YAML media type names.
pub const JSON: &str = "application/json";
/// The protobuf media type.
pub const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
/// YAML.
pub const YAML: &str = "application/yaml";

struct MediaRange<'a> {
    essence: &'a str,
    params: Vec<(&'a str, &'a str)>,
}

fn parse_accept(accept: &str) -> Vec<MediaRange<'_>> {
    accept
        .split(',')
        .filter_map(|part| {
            let mut it = part.split(';').map(str::trim);
            let essence = it.next()?.trim();
            if essence.is_empty() {
                return None;
            }
            let params = it.filter_map(|p| p.split_once('=')).map(|(k, v)| (k.trim(), v.trim())).collect();
            Some(MediaRange { essence, params })
        })
        .collect()
}

impl MediaRange<'_> {
    fn param(&self, k: &str) -> Option<&str> {
        self.params.iter().find(|(pk, _)| *pk == k).map(|(_, v)| *v)
    }
}

/// Picks the response representation from `Accept`, in the client's order. `table_ok` says
/// whether Table/PartialObjectMetadata conversions apply (GET/LIST/WATCH of resources).
/// None means nothing acceptable (406).
pub fn choose_output(accept: Option<&str>, protobuf_ok: bool, table_ok: bool) -> Option<Output> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else { return Some(Output::Json) };
    for r in parse_accept(accept) {
        match r.essence {
            "application/json" => match (r.param("as"), r.param("g"), r.param("v")) {
                (None, _, _) => return Some(Output::Json),
                (Some("Table"), Some("meta.k8s.io"), Some("v1" | "v1beta1")) if table_ok => return Some(Output::Table),
                (Some("PartialObjectMetadata" | "PartialObjectMetadataList"), Some("meta.k8s.io"), Some("v1" | "v1beta1")) if table_ok => {
                    return Some(Output::PartialMetadata);
                }
                _ => continue,
            },
            "application/yaml" => return Some(Output::Yaml),
            "application/vnd.kubernetes.protobuf" if protobuf_ok && r.param("as").is_none() => return Some(Output::Protobuf),
            "*/*" | "application/*" => return Some(Output::Json),
            _ => continue,
        }
    }
    None
}

/// The format of a request body from `Content-Type`. None → 415.
pub fn input_format(content_type: Option<&str>) -> Option<Input> {
    let ct = content_type.unwrap_or(JSON);
    let essence = ct.split(';').next().unwrap_or("").trim();
    match essence {
        "" | "application/json" => Some(Input::Json),
        "application/yaml" | "application/x-yaml" | "text/yaml" => Some(Input::Yaml),
        "application/vnd.kubernetes.protobuf" => Some(Input::Protobuf),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_table_accept() {
        let a = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(choose_output(Some(a), true, true), Some(Output::Table));
        assert_eq!(choose_output(Some(a), true, false), Some(Output::Json));
    }

    #[test]
    fn protobuf_preferred_when_first() {
        let a = "application/vnd.kubernetes.protobuf,application/json";
        assert_eq!(choose_output(Some(a), true, true), Some(Output::Protobuf));
        assert_eq!(choose_output(Some(a), false, true), Some(Output::Json));
        assert_eq!(choose_output(Some("application/json, */*"), true, true), Some(Output::Json));
        assert_eq!(choose_output(Some("text/html"), true, true), None);
    }

    #[test]
    fn content_types() {
        assert_eq!(input_format(Some("application/json; charset=utf-8")), Some(Input::Json));
        assert_eq!(input_format(Some("application/vnd.kubernetes.protobuf")), Some(Input::Protobuf));
        assert_eq!(input_format(Some("text/plain")), None);
    }
}
