//! Messages and field paths as upstream's apiextensions-apiserver reports them.

use serde_json::{Value, json};

use super::*;

fn messages(errs: &[rkube_apimachinery::FieldError]) -> Vec<String> {
    errs.iter()
        .map(rkube_apimachinery::FieldError::message)
        .collect()
}

fn es_schema() -> Value {
    json!({
        "type": "object",
        "required": ["spec"],
        "properties": {
            "spec": {
                "type": "object",
                "required": ["backendType"],
                "properties": {
                    "backendType": {"type": "string", "enum": ["secretsManager", "systemManager"]},
                    "refreshInterval": {"type": "integer", "format": "int32", "minimum": 10, "default": 60},
                    "maxAge": {"type": "number", "maximum": 5, "exclusiveMaximum": true},
                    "when": {"type": "string", "format": "date-time"},
                    "day": {"type": "string", "format": "date"},
                    "port": {"x-kubernetes-int-or-string": true},
                    "note": {"type": "string", "nullable": true, "maxLength": 3},
                    "data": {
                        "type": "array",
                        "maxItems": 2,
                        "items": {
                            "type": "object",
                            "required": ["key", "name"],
                            "properties": {
                                "key": {"type": "string", "minLength": 1},
                                "name": {"type": "string", "pattern": "^[a-z]+$"},
                                "tags": {"type": "array", "uniqueItems": true, "minItems": 1, "items": {"type": "string"}},
                            },
                        },
                    },
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "template": {"type": "object", "x-kubernetes-embedded-resource": true, "properties": {"spec": {"type": "object"}}},
                },
            },
            "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
        },
    })
}

fn check(spec: Value) -> Vec<String> {
    let obj = json!({"apiVersion": "kubernetes-client.io/v1", "kind": "ExternalSecret", "metadata": {"name": "a"}, "spec": spec});
    messages(&schema::validate(&es_schema(), &obj))
}

#[test]
fn enum_required_and_item_paths() {
    let got = check(json!({"backendType": "keepass", "data": [{"name": "x"}]}));
    assert_eq!(
        got,
        vec![
            "spec.backendType: Unsupported value: \"keepass\": supported values: \"secretsManager\", \"systemManager\"",
            "spec.data[0].key: Required value",
        ]
    );
    let obj = json!({"apiVersion": "v", "kind": "K", "metadata": {"name": "a"}});
    assert_eq!(
        messages(&schema::validate(&es_schema(), &obj)),
        vec!["spec: Required value"]
    );
}

#[test]
fn type_errors_name_the_json_type() {
    let got =
        check(json!({"backendType": "secretsManager", "refreshInterval": "often", "data": {}}));
    assert_eq!(
        got,
        vec![
            "spec.refreshInterval: Invalid value: \"string\": spec.refreshInterval in body must be of type integer: \"string\"",
            "spec.data: Invalid value: \"object\": spec.data in body must be of type array: \"object\"",
        ]
    );
    // 3.0 is an integer as far as kube-openapi is concerned; 3.5 is not.
    assert!(check(json!({"backendType": "secretsManager", "refreshInterval": 30.0})).is_empty());
    assert_eq!(
        check(json!({"backendType": "secretsManager", "refreshInterval": 30.5})),
        vec![
            "spec.refreshInterval: Invalid value: \"number\": spec.refreshInterval in body must be of type integer: \"number\""
        ]
    );
}

#[test]
fn numeric_bounds_and_formats() {
    let got = check(
        json!({"backendType": "secretsManager", "refreshInterval": 5, "maxAge": 5, "when": "yesterday", "day": "2024-02-30"}),
    );
    assert_eq!(
        got,
        vec![
            "spec.refreshInterval: Invalid value: 5: spec.refreshInterval in body should be greater than or equal to 10",
            "spec.maxAge: Invalid value: 5: spec.maxAge in body should be less than 5",
            "spec.when: Invalid value: \"yesterday\": spec.when in body must be of type date-time: \"yesterday\"",
            "spec.day: Invalid value: \"2024-02-30\": spec.day in body must be of type date: \"2024-02-30\"",
        ]
    );
    assert!(check(json!({"backendType": "secretsManager", "when": "2024-01-02T03:04:05Z", "day": "2024-02-29"})).is_empty());
    let big = check(json!({"backendType": "secretsManager", "refreshInterval": 3_000_000_000_i64}));
    assert_eq!(big.len(), 1, "{big:?}");
    assert!(big[0].contains("must be of type int32"), "{big:?}");
}

#[test]
fn string_and_array_constraints() {
    let got = check(json!({
        "backendType": "secretsManager",
        "note": "long",
        "data": [{"key": "", "name": "UP", "tags": ["a", "a"]}, {"key": "k", "name": "n", "tags": []}, {"key": "k", "name": "n"}],
    }));
    assert_eq!(
        got,
        vec![
            "spec.note: Too long: may not be more than 3 bytes",
            "spec.data: Too many: 3: must have at most 2 items",
            "spec.data[0].key: Invalid value: \"\": spec.data[0].key in body should be at least 1 chars long",
            "spec.data[0].name: Invalid value: \"UP\": spec.data[0].name in body should match '^[a-z]+$'",
            "spec.data[0].tags: Invalid value: [\"a\",\"a\"]: spec.data[0].tags in body shouldn't contain duplicates",
            "spec.data[1].tags: Invalid value: []: spec.data[1].tags in body should have at least 1 items",
        ]
    );
}

#[test]
fn nullable_int_or_string_and_additional_properties() {
    assert!(check(json!({"backendType": "secretsManager", "note": null, "port": 80})).is_empty());
    assert!(check(json!({"backendType": "secretsManager", "port": "http"})).is_empty());
    assert_eq!(
        check(json!({"backendType": "secretsManager", "port": true, "labels": {"a": 1}})),
        vec![
            "spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer,string: \"boolean\"",
            "spec.labels.a: Invalid value: \"integer\": spec.labels.a in body must be of type string: \"integer\"",
        ]
    );
    assert_eq!(
        check(json!({"backendType": "secretsManager", "template": {"spec": {}}})),
        vec![
            "spec.template.apiVersion: Required value: must not be empty",
            "spec.template.kind: Required value: must not be empty"
        ]
    );
}

#[test]
fn pruning_reports_unknown_fields_and_keeps_preserved_ones() {
    let mut obj = json!({
        "apiVersion": "kubernetes-client.io/v1", "kind": "ExternalSecret", "metadata": {"name": "a"},
        "spec": {"backendType": "vault", "foo": 1, "data": [{"key": "k", "name": "n", "bar": 2}], "extra": {"anything": {"x": 1}},
                 "labels": {"free": "form"}, "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}, "junk": 1}},
        "top": true,
    });
    let dropped = structural::prune(&es_schema(), &mut obj);
    assert_eq!(
        dropped,
        vec!["spec.data[0].bar", "spec.foo", "spec.template.junk", "top"]
    );
    assert_eq!(obj["spec"]["extra"], json!({"anything": {"x": 1}}));
    assert_eq!(obj["spec"]["labels"], json!({"free": "form"}));
    assert_eq!(obj["spec"]["template"]["metadata"], json!({"name": "p"}));
    assert_eq!(obj["metadata"], json!({"name": "a"}));
}

#[test]
fn defaulting_fills_absent_and_non_nullable_nulls() {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "default": {}, "properties": {
        "interval": {"type": "integer", "default": 60},
        "mode": {"type": "string"},
        "note": {"type": "string", "nullable": true, "default": "n"},
        "items": {"type": "array", "items": {"type": "object", "properties": {"weight": {"type": "integer", "default": 1}}}},
    }}}});
    let mut obj = json!({"metadata": {"name": "a"}});
    structural::default(&schema, &mut obj);
    assert_eq!(obj["spec"], json!({"interval": 60, "note": "n"}));
    let mut obj = json!({"spec": {"interval": null, "mode": null, "note": null, "items": [{}, {"weight": 5}]}});
    structural::default(&schema, &mut obj);
    assert_eq!(
        obj["spec"],
        json!({"interval": 60, "note": null, "items": [{"weight": 1}, {"weight": 5}]})
    );
}

fn crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "externalsecrets.kubernetes-client.io"},
        "spec": {
            "group": "kubernetes-client.io", "scope": "Namespaced",
            "names": {"plural": "externalsecrets", "kind": "ExternalSecret", "shortNames": ["es"]},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": es_schema()}}],
        },
    })
}

#[test]
fn crd_defaults_singular_list_kind_and_conversion() {
    let mut c = crd();
    definition::apply_defaults(&mut c);
    assert_eq!(c["spec"]["names"]["singular"], "externalsecret");
    assert_eq!(c["spec"]["names"]["listKind"], "ExternalSecretList");
    assert_eq!(c["spec"]["conversion"], json!({"strategy": "None"}));
    assert!(
        messages(&definition::validate_create(&c)).is_empty(),
        "{:?}",
        definition::validate_create(&c)
    );
}

#[test]
fn crd_validation_messages() {
    let mut c = crd();
    definition::apply_defaults(&mut c);
    c["metadata"]["name"] = json!("wrong.kubernetes-client.io");
    c["spec"]["scope"] = json!("Global");
    c["spec"]["versions"] = json!([
        {"name": "v1", "served": true, "storage": false, "schema": {"openAPIV3Schema": {"type": "string"}}},
        {"name": "V2", "served": true, "storage": false},
    ]);
    let got = messages(&definition::validate_create(&c));
    let want = [
        "metadata.name: Invalid value: \"wrong.kubernetes-client.io\": must be spec.names.plural+\".\"+spec.group",
        "spec.scope: Unsupported value: \"Global\": supported values: \"Cluster\", \"Namespaced\"",
        "spec.versions[0].schema.openAPIV3Schema.type: Invalid value: \"string\": must be object at the root",
        "spec.versions[1].schema.openAPIV3Schema: Required value: schemas are required",
        "spec.versions: Invalid value: [\"v1\",\"V2\"]: must have exactly one version marked as storage version",
    ];
    for w in want {
        assert!(got.iter().any(|g| g == w), "missing {w:?} in {got:#?}");
    }
    assert!(
        got.iter().any(
            |g| g.starts_with("spec.versions[1].name: Invalid value: \"V2\": a DNS-1035 label")
        ),
        "{got:#?}"
    );

    let mut c = crd();
    definition::apply_defaults(&mut c);
    c["spec"]["group"] = json!("example");
    c["metadata"]["name"] = json!("externalsecrets.example");
    c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["untyped"] =
        json!({});
    let got = messages(&definition::validate_create(&c));
    assert!(
        got.contains(
            &"spec.group: Invalid value: \"example\": should be a domain with at least one dot"
                .to_string()
        ),
        "{got:#?}"
    );
    assert!(
        got.contains(&"spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[untyped].type: Required value: must not be empty for specified object fields".to_string()),
        "{got:#?}"
    );
}

#[test]
fn served_versions_become_resource_rows_with_accepted_names() {
    let mut c = crd();
    c["spec"]["versions"][0]["subresources"] = json!({"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}});
    if let Some(v) = c["spec"]["versions"].as_array_mut() {
        v.push(json!({"name": "v1beta1", "served": false, "storage": false, "schema": {"openAPIV3Schema": {"type": "object"}}}))
    }
    assert!(
        CustomResource::from_crd(&c).is_none(),
        "no accepted names yet"
    );
    c["status"] = json!({"acceptedNames": {"plural": "externalsecrets", "singular": "externalsecret", "kind": "ExternalSecret", "shortNames": ["es"]}});
    let cr = CustomResource::from_crd(&c).unwrap();
    let rows = cr.resource_infos();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].api_version(), "kubernetes-client.io/v1");
    assert_eq!(rows[0].short_names, vec!["es"]);
    let subs: Vec<&str> = rows[0]
        .subresources
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(subs, vec!["scale", "status"]);
    assert_eq!(
        rows[0].verbs,
        vec![
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "create",
            "update",
            "watch"
        ]
    );
}

#[test]
fn jsonpath_subset() {
    let obj = json!({"status": {"conditions": [{"type": "A", "status": "False"}, {"type": "Ready", "status": "True"}]}, "spec": {"l": [1, 2]}});
    assert_eq!(
        jsonpath::find_first(&obj, ".status.conditions[?(@.type==\"Ready\")].status"),
        Some(&json!("True"))
    );
    assert_eq!(jsonpath::find_first(&obj, ".spec.l[1]"), Some(&json!(2)));
    assert_eq!(jsonpath::find_first(&obj, ".spec['l'][0]"), Some(&json!(1)));
    assert_eq!(jsonpath::find_first(&obj, ".spec.none"), None);
    let mut o = json!({});
    jsonpath::set(&mut o, ".spec.replicas", json!(3)).unwrap();
    assert_eq!(o, json!({"spec": {"replicas": 3}}));
}
