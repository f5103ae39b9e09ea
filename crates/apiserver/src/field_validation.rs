//! Server-side field validation (`fieldValidation=Strict|Warn|Ignore`) for built-in kinds, as
//! upstream's strict decoding (apiserver `pkg/endpoints/handlers/{create,update,patch}.go`,
//! `sigs.k8s.io/json` strict mode): fields the type does not declare and keys given twice in a
//! JSON body are reported as `unknown field "spec.foo"` / `duplicate field "spec.replicas"`.
//! Strict rejects the request (400), Warn answers with one `Warning` header per problem, Ignore
//! says nothing. Unknown fields are always dropped, because upstream decodes into typed structs.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use axum::response::Response;
use http::HeaderValue;
use rkube_apimachinery::{ApiError, ResourceInfo};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::state::AppState;
use crate::write_options::FieldValidation;

/// Where each key path of a JSON document first appears, and the keys given twice.
#[derive(Default)]
struct KeyScan {
    next: usize,
    first_seen: HashMap<String, usize>,
    duplicates: Vec<(usize, String)>,
}

struct Walk<'s> {
    path: String,
    scan: &'s RefCell<KeyScan>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut here = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() { key.clone() } else { format!("{}.{key}", self.path) };
            {
                let mut scan = self.scan.borrow_mut();
                let seq = scan.next;
                scan.next += 1;
                if here.insert(key) {
                    scan.first_seen.entry(path.clone()).or_insert(seq);
                } else {
                    scan.duplicates.push((seq, path.clone()));
                }
            }
            map.next_value_seed(Walk { path, scan: self.scan })?;
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while seq.next_element_seed(Walk { path: format!("{}[{i}]", self.path), scan: self.scan })?.is_some() {
            i += 1;
        }
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

fn scan_json(bytes: &[u8]) -> KeyScan {
    let scan = RefCell::new(KeyScan::default());
    let mut de = serde_json::Deserializer::from_slice(bytes);
    // A body that is not valid JSON was already rejected by the decoder.
    let _ = Walk { path: String::new(), scan: &scan }.deserialize(&mut de);
    scan.into_inner()
}

/// What a checked body said, in upstream's words and order.
pub struct Findings(Vec<String>);

impl Findings {
    /// Applies the directive: an error for Strict when anything was found, else the warnings to
    /// send (none for Ignore).
    fn resolve(self, res: &ResourceInfo, mode: FieldValidation) -> Result<Vec<String>, ApiError> {
        match mode {
            FieldValidation::Ignore => Ok(Vec::new()),
            FieldValidation::Warn => Ok(self.0),
            FieldValidation::Strict if self.0.is_empty() => Ok(Vec::new()),
            FieldValidation::Strict => Err(ApiError::bad_request(format!(
                "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
                self.0.join(", "),
                kind = res.kind,
                version = res.version,
            ))),
        }
    }
}

/// Checks a create/update body: duplicates (JSON bodies) and unknown fields, in document order.
/// Unknown fields are removed from `obj`.
pub fn check_body(state: &AppState, res: &ResourceInfo, obj: &mut Value, json_body: Option<&[u8]>, mode: FieldValidation) -> Result<Vec<String>, ApiError> {
    let scan = json_body.map(scan_json).unwrap_or_default();
    let unknown = state.proto.prune_unknown_fields(obj).unwrap_or_default();
    let mut found: Vec<(usize, String)> = scan.duplicates.iter().map(|(seq, p)| (*seq, format!("duplicate field {p:?}"))).collect();
    for p in unknown {
        let seq = scan.first_seen.get(&p).copied().unwrap_or(usize::MAX);
        found.push((seq, format!("unknown field {p:?}")));
    }
    found.sort_by_key(|(seq, _)| *seq);
    Findings(found.into_iter().map(|(_, m)| m).collect()).resolve(res, mode)
}

/// The body when it is JSON (the only form whose duplicate keys are reported; YAML bodies with
/// duplicates fail to parse, protobuf cannot have them).
pub fn json_body<'b>(headers: &http::HeaderMap, body: &'b [u8]) -> Option<&'b [u8]> {
    let ct = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    matches!(crate::negotiate::input_format(ct), Some(crate::negotiate::Input::Json)).then_some(body)
}

/// Duplicate keys of a JSON patch body, as upstream lists them before the patched object's
/// unknown fields.
pub fn patch_duplicates(body: &[u8], json_patch: bool) -> Vec<String> {
    let prefix = if json_patch { "json patch " } else { "" };
    scan_json(body).duplicates.into_iter().map(|(_, p)| format!("{prefix}duplicate field {p:?}")).collect()
}

/// Checks a patched object: the patch's duplicates first, then the unknown fields of the result in
/// sorted order (upstream re-decodes the patched map, whose keys come out sorted). Unknown fields
/// are removed from `obj`.
pub fn check_patched(state: &AppState, res: &ResourceInfo, obj: &mut Value, duplicates: &[String], mode: FieldValidation) -> Result<Vec<String>, ApiError> {
    let mut unknown = state.proto.prune_unknown_fields(obj).unwrap_or_default();
    unknown.sort();
    let mut found = duplicates.to_vec();
    found.extend(unknown.into_iter().map(|p| format!("unknown field {p:?}")));
    Findings(found).resolve(res, mode)
}

/// Adds one `Warning: 299 - "<text>"` header per warning (RFC 7234 warn-code 299, agent `-`).
pub fn with_warnings(mut resp: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let text = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{text}\"")) {
            resp.headers_mut().append(http::header::WARNING, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_found_with_their_paths_in_document_order() {
        let body = br#"{"metadata":{"name":"a","name":"b"},"spec":{"paused":true,"x":[{"p":1,"p":2}],"paused":false}}"#;
        let scan = scan_json(body);
        let dups: Vec<&str> = scan.duplicates.iter().map(|(_, p)| p.as_str()).collect();
        assert_eq!(dups, ["metadata.name", "spec.x[0].p", "spec.paused"]);
        assert!(scan.first_seen["spec.x"] < scan.first_seen["spec.x[0].p"]);
    }
}
