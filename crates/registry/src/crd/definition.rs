//! Defaulting and validation of CustomResourceDefinition objects (apiextensions-apiserver
//! `pkg/apis/apiextensions/v1/defaults.go` and `pkg/apis/apiextensions/validation/validation.go`),
//! covering the rules users meet: the name, group, scope, names, versions (exactly one storage
//! version, unique DNS-1035 names), schemas (required, object at the root, structural: every
//! specified field has a type, arrays have items, patterns compile), printer columns, scale paths
//! and conversion strategy.

use rkube_apimachinery::FieldError;
use rkube_validation::NameRule;
use rkube_validation::names::{is_dns1035_label, is_dns1123_subdomain};
use serde_json::{Value, json};

use super::jsonpath;

/// `SetDefaults_CustomResourceDefinition(Spec)`: singular from kind, listKind `<Kind>List`,
/// conversion strategy `None`, webhook service port 443.
pub fn apply_defaults(crd: &mut Value) {
    let Some(spec) = crd.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(names) = spec.get_mut("names").and_then(Value::as_object_mut) {
        let kind = names
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if names
            .get("singular")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            names.insert("singular".into(), Value::String(kind.to_lowercase()));
        }
        if names
            .get("listKind")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
            && !kind.is_empty()
        {
            names.insert("listKind".into(), Value::String(format!("{kind}List")));
        }
    }
    let conversion = spec
        .entry("conversion")
        .or_insert_with(|| json!({"strategy": "None"}));
    if let Some(service) = conversion
        .pointer_mut("/webhook/clientConfig/service")
        .and_then(Value::as_object_mut)
    {
        service.entry("port").or_insert(json!(443));
    }
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// Validates a CRD being created.
pub fn validate_create(crd: &Value) -> Vec<FieldError> {
    let mut errs =
        rkube_validation::meta::validate_object_meta_with(crd, NameRule::DnsSubdomain, false);
    let spec = &crd["spec"];
    let name = crd["metadata"]["name"].as_str().unwrap_or("");
    let required = format!("{}.{}", s(&spec["names"], "plural"), s(spec, "group"));
    if !name.is_empty() && name != required {
        errs.push(FieldError::invalid(
            "metadata.name",
            name,
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    validate_protected_group(crd, &mut errs);
    validate_spec(spec, &mut errs);
    errs
}

/// Validates an update: the create rules plus immutable group and scope... upstream allows
/// changing the scope only while no objects are stored; rkube keeps both immutable.
pub fn validate_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = rkube_validation::meta::validate_object_meta_update_with(new, old, false);
    for e in validate_create(new) {
        if !errs
            .iter()
            .any(|x| x.field == e.field && x.detail == e.detail)
        {
            errs.push(e);
        }
    }
    for key in ["group", "scope"] {
        if new["spec"][key] != old["spec"][key] {
            errs.push(FieldError::invalid(
                format!("spec.{key}"),
                new["spec"][key].clone(),
                "field is immutable",
            ));
        }
    }
    errs
}

/// Groups under `k8s.io` / `kubernetes.io` need the `api-approved.kubernetes.io` annotation.
fn validate_protected_group(crd: &Value, errs: &mut Vec<FieldError>) {
    let group = s(&crd["spec"], "group");
    let protected = ["k8s.io", "kubernetes.io"]
        .iter()
        .any(|d| group == *d || group.ends_with(&format!(".{d}")));
    if protected
        && crd["metadata"]["annotations"]
            .get("api-approved.kubernetes.io")
            .is_none()
    {
        errs.push(FieldError::required(
            "metadata.annotations[api-approved.kubernetes.io]",
            "protected groups must have approval annotation \"api-approved.kubernetes.io\", see https://github.com/kubernetes/enhancements/pull/1111",
        ));
    }
}

fn validate_spec(spec: &Value, errs: &mut Vec<FieldError>) {
    let group = s(spec, "group");
    if group.is_empty() {
        errs.push(FieldError::required("spec.group", ""));
    } else {
        let msgs = is_dns1123_subdomain(group);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid("spec.group", group, msgs.join(",")));
        }
        if group.split('.').count() < 2 {
            errs.push(FieldError::invalid(
                "spec.group",
                group,
                "should be a domain with at least one dot",
            ));
        }
    }
    match s(spec, "scope") {
        "" => errs.push(FieldError::required("spec.scope", "")),
        "Cluster" | "Namespaced" => {}
        other => errs.push(FieldError::not_supported(
            "spec.scope",
            other,
            &["Cluster", "Namespaced"],
        )),
    }
    validate_names(&spec["names"], "spec.names", errs);
    validate_versions(spec, errs);
    match s(&spec["conversion"], "strategy") {
        "" | "None" | "Webhook" => {}
        other => errs.push(FieldError::not_supported(
            "spec.conversion.strategy",
            other,
            &["None", "Webhook"],
        )),
    }
}

fn validate_names(names: &Value, path: &str, errs: &mut Vec<FieldError>) {
    for key in ["plural", "singular"] {
        let v = s(names, key);
        if v.is_empty() {
            errs.push(FieldError::required(format!("{path}.{key}"), ""));
            continue;
        }
        let msgs = is_dns1035_label(v);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(
                format!("{path}.{key}"),
                v,
                msgs.join(","),
            ));
        }
    }
    for key in ["kind", "listKind"] {
        let v = s(names, key);
        if v.is_empty() {
            errs.push(FieldError::required(format!("{path}.{key}"), ""));
            continue;
        }
        let msgs = is_dns1035_label(&v.to_lowercase());
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(
                format!("{path}.{key}"),
                v,
                format!(
                    "may have mixed case, but should otherwise match: {}",
                    msgs.join(",")
                ),
            ));
        }
    }
    if !s(names, "kind").is_empty() && s(names, "kind") == s(names, "listKind") {
        errs.push(FieldError::invalid(
            format!("{path}.listKind"),
            s(names, "listKind"),
            "kind and listKind may not be the same",
        ));
    }
    for (i, short) in names["shortNames"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let v = short.as_str().unwrap_or("");
        let msgs = is_dns1035_label(v);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(
                format!("{path}.shortNames[{i}]"),
                v,
                msgs.join(","),
            ));
        }
    }
    for (i, cat) in names["categories"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let v = cat.as_str().unwrap_or("");
        let msgs = is_dns1035_label(v);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(
                format!("{path}.categories[{i}]"),
                v,
                msgs.join(","),
            ));
        }
    }
}

fn validate_versions(spec: &Value, errs: &mut Vec<FieldError>) {
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        errs.push(FieldError::required(
            "spec.versions",
            "must have exactly one version marked as storage version",
        ));
        return;
    }
    let mut seen = std::collections::HashSet::new();
    let mut unique = true;
    let mut storage = 0;
    let mut served = 0;
    for (i, v) in versions.iter().enumerate() {
        let path = format!("spec.versions[{i}]");
        let name = s(v, "name");
        if !seen.insert(name.to_string()) {
            unique = false;
        }
        if v["storage"].as_bool() == Some(true) {
            storage += 1;
        }
        if v["served"].as_bool() == Some(true) {
            served += 1;
        }
        let msgs = is_dns1035_label(name);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(
                format!("{path}.name"),
                name,
                msgs.join(","),
            ));
        }
        match v["schema"].get("openAPIV3Schema") {
            None | Some(Value::Null) => {
                errs.push(FieldError::required(
                    format!("{path}.schema.openAPIV3Schema"),
                    "schemas are required",
                ));
            }
            Some(schema) => {
                validate_root_schema(schema, &format!("{path}.schema.openAPIV3Schema"), errs)
            }
        }
        validate_subresources(&v["subresources"], &format!("{path}.subresources"), errs);
        for (j, col) in v["additionalPrinterColumns"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            validate_column(col, &format!("{path}.additionalPrinterColumns[{j}]"), errs);
        }
    }
    let listed = Value::Array(
        versions
            .iter()
            .map(|v| Value::String(s(v, "name").to_string()))
            .collect(),
    );
    if !unique {
        errs.push(FieldError::invalid(
            "spec.versions",
            listed.clone(),
            "must contain unique version names",
        ));
    }
    if storage != 1 {
        errs.push(FieldError::invalid(
            "spec.versions",
            listed.clone(),
            "must have exactly one version marked as storage version",
        ));
    }
    if served == 0 {
        errs.push(FieldError::invalid(
            "spec.versions",
            listed,
            "must have at least one version marked as served",
        ));
    }
}

fn validate_subresources(sub: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Some(scale) = sub.get("scale").filter(|x| x.is_object()) else {
        return;
    };
    for (key, prefix) in [
        ("specReplicasPath", ".spec."),
        ("statusReplicasPath", ".status."),
    ] {
        let p = s(scale, key);
        if p.is_empty() {
            errs.push(FieldError::required(format!("{path}.scale.{key}"), ""));
        } else if !p.starts_with(prefix) || jsonpath::check(p).is_err() {
            let what = prefix.trim_matches('.');
            errs.push(FieldError::invalid(
                format!("{path}.scale.{key}"),
                p,
                format!("should be a json path under .{what}"),
            ));
        }
    }
}

const COLUMN_TYPES: &[&str] = &["integer", "number", "string", "boolean", "date"];
const COLUMN_FORMATS: &[&str] = &[
    "int32",
    "int64",
    "float",
    "double",
    "byte",
    "date",
    "date-time",
    "password",
];

fn validate_column(col: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if s(col, "name").is_empty() {
        errs.push(FieldError::required(format!("{path}.name"), ""));
    }
    match s(col, "type") {
        "" => errs.push(FieldError::required(format!("{path}.type"), "")),
        t if !COLUMN_TYPES.contains(&t) => errs.push(FieldError::not_supported(
            format!("{path}.type"),
            t,
            COLUMN_TYPES,
        )),
        _ => {}
    }
    let format = s(col, "format");
    if !format.is_empty() && !COLUMN_FORMATS.contains(&format) {
        errs.push(FieldError::not_supported(
            format!("{path}.format"),
            format,
            COLUMN_FORMATS,
        ));
    }
    let jp = s(col, "jsonPath");
    if jp.is_empty() {
        errs.push(FieldError::required(format!("{path}.jsonPath"), ""));
    } else if !jp.starts_with('.') {
        errs.push(FieldError::invalid(
            format!("{path}.jsonPath"),
            jp,
            "must be a simple json path starting with .",
        ));
    } else if let Err(e) = jsonpath::check(jp) {
        errs.push(FieldError::invalid(
            format!("{path}.jsonPath"),
            jp,
            format!("must be a simple json path: {}", e.0),
        ));
    }
}

fn validate_root_schema(schema: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let t = s(schema, "type");
    if t.is_empty()
        && schema
            .get("x-kubernetes-preserve-unknown-fields")
            .and_then(Value::as_bool)
            != Some(true)
    {
        errs.push(FieldError::required(
            format!("{path}.type"),
            "must not be empty at the root",
        ));
    } else if !t.is_empty() && t != "object" {
        errs.push(FieldError::invalid(
            format!("{path}.type"),
            t,
            "must be object at the root",
        ));
    }
    if let Some(meta) = schema["properties"].get("metadata") {
        let allowed = meta["properties"]
            .as_object()
            .is_none_or(|p| p.keys().all(|k| k == "name" || k == "generateName"));
        if !allowed {
            errs.push(FieldError::forbidden(
                format!("{path}.properties[metadata]"),
                "must not specify anything other than name and generateName, but metadata is implicitly specified",
            ));
        }
    }
    validate_schema_node(schema, path, errs);
}

/// Structural rules for one schema node and its children (apiextensions
/// `pkg/apiserver/schema/validation.go` validateStructuralInvariants / completeness).
fn validate_schema_node(schema: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Some(node) = schema.as_object() else {
        return;
    };
    let t = s(schema, "type");
    const TYPES: &[&str] = &["array", "boolean", "integer", "number", "object", "string"];
    if !t.is_empty() && !TYPES.contains(&t) {
        errs.push(FieldError::not_supported(format!("{path}.type"), t, TYPES));
    }
    if t == "array" && node.get("items").is_none() {
        errs.push(FieldError::required(
            format!("{path}.items"),
            "must be specified",
        ));
    }
    if let Some(p) = node.get("pattern").and_then(Value::as_str)
        && let Err(e) = regex::Regex::new(p)
    {
        errs.push(FieldError::invalid(
            format!("{path}.pattern"),
            p,
            format!("must be a valid regular expression, but isn't: {e}"),
        ));
    }
    if node
        .get("additionalProperties")
        .filter(|a| a.is_object())
        .is_some()
        && node.get("properties").is_some()
    {
        errs.push(FieldError::forbidden(
            format!("{path}.additionalProperties"),
            "additionalProperties and properties are mutual exclusive",
        ));
    }
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (k, child) in props {
            let cp = format!("{path}.properties[{k}]");
            let typed = !s(child, "type").is_empty()
                || child
                    .get("x-kubernetes-int-or-string")
                    .and_then(Value::as_bool)
                    == Some(true)
                || child
                    .get("x-kubernetes-preserve-unknown-fields")
                    .and_then(Value::as_bool)
                    == Some(true);
            if !typed {
                errs.push(FieldError::required(
                    format!("{cp}.type"),
                    "must not be empty for specified object fields",
                ));
            }
            validate_schema_node(child, &cp, errs);
        }
    }
    if let Some(items) = node.get("items").filter(|i| i.is_object()) {
        let ip = format!("{path}.items");
        let typed = !s(items, "type").is_empty()
            || items
                .get("x-kubernetes-int-or-string")
                .and_then(Value::as_bool)
                == Some(true)
            || items
                .get("x-kubernetes-preserve-unknown-fields")
                .and_then(Value::as_bool)
                == Some(true);
        if !typed {
            errs.push(FieldError::required(
                format!("{ip}.type"),
                "must not be empty for specified array items",
            ));
        }
        validate_schema_node(items, &ip, errs);
    }
    if let Some(add) = node.get("additionalProperties").filter(|a| a.is_object()) {
        validate_schema_node(add, &format!("{path}.additionalProperties"), errs);
    }
}
