//! Swagger 2.0 → OpenAPI 3.0 for the per group-version documents, as kube-openapi's v3 builder
//! shapes them (`pkg/builder3`): references under `#/components/schemas/`, a reference with a
//! description as `allOf: [{$ref}]` (3.0 ignores siblings of `$ref`), `oneOf` for IntOrString
//! and Quantity, request bodies and response content instead of body parameters and `schema`.

use serde_json::{Map, Value, json};

use crate::catalog::DEFINITIONS_REF;

const COMPONENTS_REF: &str = "#/components/schemas/";

/// Converts one definition.
pub(crate) fn definition(name: &str, schema: &Value) -> Value {
    let mut out = schema_v3(schema);
    if let Some(obj) = out.as_object_mut() {
        match name {
            // apimachinery `intstr.IntOrString.OpenAPIV3OneOfTypes`.
            "io.k8s.apimachinery.pkg.util.intstr.IntOrString" => {
                obj.shift_remove("type");
                obj.insert("oneOf".into(), json!([{"type": "integer"}, {"type": "string"}]));
            }
            // apimachinery `resource.Quantity.OpenAPIV3OneOfTypes`.
            "io.k8s.apimachinery.pkg.api.resource.Quantity" => {
                obj.shift_remove("type");
                obj.insert("oneOf".into(), json!([{"type": "string"}, {"type": "number"}]));
            }
            _ => {}
        }
    }
    out
}

fn schema_v3(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            let mut reference = None;
            for (k, val) in m {
                if k == "$ref" {
                    let r = val.as_str().unwrap_or_default();
                    let r = r.strip_prefix(DEFINITIONS_REF).map_or_else(|| r.to_string(), |n| format!("{COMPONENTS_REF}{n}"));
                    reference = Some(r);
                } else if k == "properties" || k == "patternProperties" {
                    // Property names are not schema keywords: convert their values only.
                    let props = val.as_object().map(|p| p.iter().map(|(n, s)| (n.clone(), schema_v3(s))).collect::<Map<_, _>>());
                    out.insert(k.clone(), props.map_or_else(|| val.clone(), Value::Object));
                } else if k.starts_with("x-") {
                    out.insert(k.clone(), val.clone());
                } else {
                    out.insert(k.clone(), schema_v3(val));
                }
            }
            if let Some(r) = reference {
                if out.is_empty() {
                    out.insert("$ref".into(), Value::String(r));
                } else {
                    out.insert("allOf".into(), json!([{"$ref": r}]));
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(schema_v3).collect()),
        other => other.clone(),
    }
}

const RESPONSE_TYPES: [&str; 3] = ["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"];

fn parameter(p: &Value) -> Value {
    let mut out = Map::new();
    for key in ["description", "in", "name", "required"] {
        if let Some(v) = p.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    let mut schema = Map::new();
    for key in ["type", "uniqueItems"] {
        if let Some(v) = p.get(key) {
            schema.insert(key.into(), v.clone());
        }
    }
    out.insert("schema".into(), Value::Object(schema));
    Value::Object(out)
}

fn operation(op: &Value) -> Value {
    let mut out = Map::new();
    for (k, v) in op.as_object().into_iter().flatten() {
        match k.as_str() {
            "consumes" | "produces" | "schemes" => {}
            "parameters" => {
                let params = v.as_array().into_iter().flatten();
                let mut converted = Vec::new();
                for p in params {
                    if p.get("in").and_then(Value::as_str) == Some("body") {
                        let schema = p.get("schema").map(schema_v3).unwrap_or_else(|| json!({}));
                        out.insert("requestBody".into(), json!({"content": {"*/*": {"schema": schema}}, "required": true}));
                    } else {
                        converted.push(parameter(p));
                    }
                }
                out.insert("parameters".into(), Value::Array(converted));
            }
            "responses" => {
                let mut responses = Map::new();
                for (code, r) in v.as_object().into_iter().flatten() {
                    let mut response = Map::new();
                    response.insert("description".into(), r.get("description").cloned().unwrap_or_else(|| json!("")));
                    if let Some(schema) = r.get("schema") {
                        let schema = schema_v3(schema);
                        let content: Map<String, Value> =
                            RESPONSE_TYPES.iter().map(|t| ((*t).to_string(), json!({"schema": schema}))).collect();
                        response.insert("content".into(), Value::Object(content));
                    }
                    responses.insert(code.clone(), Value::Object(response));
                }
                out.insert("responses".into(), Value::Object(responses));
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// Converts the path items of one group-version.
pub(crate) fn paths(v2: &Map<String, Value>) -> Map<String, Value> {
    v2.iter()
        .map(|(path, item)| {
            let mut converted = Map::new();
            for (k, v) in item.as_object().into_iter().flatten() {
                let value = if k == "parameters" {
                    Value::Array(v.as_array().into_iter().flatten().map(parameter).collect())
                } else {
                    operation(v)
                };
                converted.insert(k.clone(), value);
            }
            (path.clone(), Value::Object(converted))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_with_siblings_become_all_of() {
        let v2 = json!({"properties": {
            "metadata": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "description": "Standard object's metadata."},
            "items": {"type": "array", "items": {"$ref": "#/definitions/io.k8s.api.core.v1.Pod"}},
        }});
        let v3 = definition("x", &v2);
        assert_eq!(
            v3["properties"]["metadata"],
            json!({"allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}], "description": "Standard object's metadata."})
        );
        assert_eq!(v3["properties"]["items"]["items"], json!({"$ref": "#/components/schemas/io.k8s.api.core.v1.Pod"}));
    }

    #[test]
    fn body_parameters_become_request_bodies() {
        let item = json!({"/api/v1/namespaces/{namespace}/pods": {
            "post": {"consumes": ["*/*"], "parameters": [
                {"in": "body", "name": "body", "required": true, "schema": {"$ref": "#/definitions/io.k8s.api.core.v1.Pod"}},
                {"in": "query", "name": "fieldValidation", "type": "string", "uniqueItems": true},
            ], "responses": {"201": {"description": "Created", "schema": {"$ref": "#/definitions/io.k8s.api.core.v1.Pod"}}}},
        }});
        let v3 = paths(item.as_object().unwrap());
        let post = &v3["/api/v1/namespaces/{namespace}/pods"]["post"];
        assert_eq!(post["requestBody"]["content"]["*/*"]["schema"]["$ref"], "#/components/schemas/io.k8s.api.core.v1.Pod");
        assert_eq!(
            post["parameters"],
            json!([{"in": "query", "name": "fieldValidation", "schema": {"type": "string", "uniqueItems": true}}])
        );
        assert_eq!(
            post["responses"]["201"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/io.k8s.api.core.v1.Pod"
        );
        assert!(post.get("consumes").is_none());
    }
}
