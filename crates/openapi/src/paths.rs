//! The `paths` of the documents: one path item per collection, object and writable subresource,
//! with the operations the resource's verbs allow, in Swagger 2.0 form (the v3 documents
//! convert). Shapes follow what kube-apiserver publishes (apiserver `pkg/endpoints/installer.go`):
//! operation ids like `patchAppsV1NamespacedDeployment`, `x-kubernetes-action`,
//! `x-kubernetes-group-version-kind` on each operation, the write parameters kubectl looks for
//! (`fieldValidation` on PATCH tells it the server validates fields, cli-runtime
//! `resource/query_param_verifier.go`).

use std::collections::BTreeMap;

use rkube_apimachinery::ResourceInfo;
use serde_json::{Map, Value, json};

use crate::catalog::{Catalog, DEFINITIONS_REF, Gvk};

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";

/// The document key of a group-version: `api/v1`, `apis/apps/v1`.
pub(crate) fn group_version_key(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

fn query(name: &str, ty: &str, description: &str) -> Value {
    json!({"description": description, "in": "query", "name": name, "type": ty, "uniqueItems": true})
}

fn path_param(name: &str, description: &str) -> Value {
    json!({"description": description, "in": "path", "name": name, "required": true, "type": "string", "uniqueItems": true})
}

fn body(definition: &str) -> Value {
    json!({"in": "body", "name": "body", "required": true, "schema": {"$ref": format!("{DEFINITIONS_REF}{definition}")}})
}

fn pretty() -> Value {
    query(
        "pretty",
        "string",
        "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).",
    )
}

fn dry_run() -> Value {
    query(
        "dryRun",
        "string",
        "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed",
    )
}

fn field_manager() -> Value {
    query(
        "fieldManager",
        "string",
        "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.",
    )
}

fn field_validation() -> Value {
    query(
        "fieldValidation",
        "string",
        "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.",
    )
}

fn write_params(definition: &str) -> Vec<Value> {
    vec![body(definition), dry_run(), field_manager(), field_validation()]
}

fn list_params() -> Vec<Value> {
    vec![
        query(
            "allowWatchBookmarks",
            "boolean",
            "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server's discretion. Clients should not assume bookmarks are returned at any specific interval, nor may they assume the server will send any BOOKMARK event during a session. If this is not a watch, this field is ignored.",
        ),
        query(
            "continue",
            "string",
            "The continue option should be set when retrieving more results from the server. Since this value is server defined, clients may only use the continue value from a previous query result with identical query parameters (except for the value of continue) and the server may reject a continue value it does not recognize.",
        ),
        query("fieldSelector", "string", "A selector to restrict the list of returned objects by their fields. Defaults to everything."),
        query("labelSelector", "string", "A selector to restrict the list of returned objects by their labels. Defaults to everything."),
        query(
            "limit",
            "integer",
            "limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results.",
        ),
        query(
            "resourceVersion",
            "string",
            "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset",
        ),
        query(
            "resourceVersionMatch",
            "string",
            "resourceVersionMatch determines how resourceVersion is applied to list calls. It is highly recommended that resourceVersionMatch be set for list calls where resourceVersion is set See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset",
        ),
        query(
            "sendInitialEvents",
            "boolean",
            "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection. Once all such events have been sent, a synthetic \"Bookmark\" event  will be sent.",
        ),
        query(
            "timeoutSeconds",
            "integer",
            "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.",
        ),
        query(
            "watch",
            "boolean",
            "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.",
        ),
    ]
}

fn delete_params() -> Vec<Value> {
    vec![
        body(&format!("{META}.DeleteOptions")),
        dry_run(),
        query(
            "gracePeriodSeconds",
            "integer",
            "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately. If this value is nil, the default grace period for the specified type will be used. Defaults to a per object value if not specified. zero means delete immediately.",
        ),
        query(
            "ignoreStoreReadErrorWithClusterBreakingPotential",
            "boolean",
            "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error. A resource is considered corrupt if it can not be retrieved from the underlying storage successfully because of a) its data can not be transformed e.g. decryption failure, or b) it fails to decode into an object. NOTE: unsafe deletion ignores finalizer constraints, skips precondition checks, and removes the object from the storage. WARNING: This may potentially break the cluster if the workload associated with the resource being unsafe-deleted relies on normal deletion flow. Use only if you REALLY know what you are doing. The default value is false, and the user must opt in to enable it",
        ),
        query(
            "orphanDependents",
            "boolean",
            "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned. If true/false, the \"orphan\" finalizer will be added to/removed from the object's finalizers list. Either this field or PropagationPolicy may be set, but not both.",
        ),
        query(
            "propagationPolicy",
            "string",
            "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. The default policy is decided by the existing finalizer set in the metadata.finalizers and the resource-specific default policy. Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a cascading policy that deletes all dependents in the foreground.",
        ),
    ]
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// `AppsV1`, `RbacAuthorizationV1`, `CoreV1`: the prefix of upstream's operation ids.
fn operation_prefix(group: &str, version: &str) -> String {
    let group = if group.is_empty() { "core" } else { group.trim_end_matches(".k8s.io") };
    group.split(['.', '-']).chain(std::iter::once(version)).map(capitalize).collect()
}

fn responses(codes: &[(&str, &str)], definition: &str) -> Value {
    let mut out = Map::new();
    for (code, description) in codes {
        out.insert((*code).into(), json!({"description": description, "schema": {"$ref": format!("{DEFINITIONS_REF}{definition}")}}));
    }
    out.insert("401".into(), json!({"description": "Unauthorized"}));
    Value::Object(out)
}

struct OperationSpec<'a> {
    action: &'a str,
    id: String,
    description: String,
    params: Vec<Value>,
    responses: Value,
    consumes: &'a [&'a str],
    gvk: &'a Gvk,
}

/// One HTTP method on a path, before the resource's verbs decide whether it is served.
struct Method<'a> {
    method: &'a str,
    verb: &'a str,
    id_verb: &'a str,
    params: Vec<Value>,
    responses: Value,
    consumes: &'a [&'a str],
}

impl<'a> Method<'a> {
    /// `x-kubernetes-action`: the verb, except PUT and POST keep the method's name.
    fn action(&self) -> &'a str {
        match self.method {
            "put" => "put",
            "post" => "post",
            _ => self.verb,
        }
    }
}

fn operation(op: OperationSpec<'_>, tag: &str) -> Value {
    let mut produces = vec!["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"];
    if matches!(op.action, "list") {
        produces.extend(["application/cbor-seq", "application/json;stream=watch", "application/vnd.kubernetes.protobuf;stream=watch"]);
    }
    json!({
        "consumes": op.consumes,
        "description": op.description,
        "operationId": op.id,
        "parameters": op.params,
        "produces": produces,
        "responses": op.responses,
        "schemes": ["https"],
        "tags": [tag],
        "x-kubernetes-action": op.action,
        "x-kubernetes-group-version-kind": {"group": op.gvk.group, "kind": op.gvk.kind, "version": op.gvk.version},
    })
}

/// Swagger 2.0 path items of every resource, grouped by group-version key.
pub(crate) fn paths_by_group_version(resources: &[&ResourceInfo], catalog: &Catalog) -> BTreeMap<String, Map<String, Value>> {
    let mut out: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for r in resources {
        let key = group_version_key(&r.group, &r.version);
        let paths = out.entry(key.clone()).or_default();
        add_resource(paths, r, &key, catalog);
    }
    out
}

fn add_resource(paths: &mut Map<String, Value>, r: &ResourceInfo, key: &str, catalog: &Catalog) {
    let gvk = Gvk::new(&r.group, &r.version, &r.kind);
    let Some(kind_def) = catalog.name_for_gvk(&gvk) else { return };
    let list_def = catalog.name_for_gvk(&Gvk::new(&r.group, &r.version, &format!("{}List", r.kind)));
    let prefix = operation_prefix(&r.group, &r.version);
    let tag = key.trim_start_matches("apis/").trim_start_matches("api/").replace(['/', '.'], "_");
    let scope = if r.namespaced() { "Namespaced" } else { "" };
    let kind = &r.kind;
    let base = if r.namespaced() { format!("/{key}/namespaces/{{namespace}}/{}", r.plural) } else { format!("/{key}/{}", r.plural) };
    let status = format!("{META}.Status");
    let json_only: &[&str] = &["*/*"];
    let patch_types: &[&str] = &[
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml",
        "application/apply-patch+cbor",
    ];
    let mut scope_params = vec![];
    if r.namespaced() {
        scope_params.push(path_param("namespace", "object name and auth scope, such as for teams and projects"));
    }

    let mut collection = Map::new();
    if let (true, Some(list_def)) = (r.allows("list"), &list_def) {
        collection.insert(
            "get".into(),
            operation(
                OperationSpec {
                    action: "list",
                    id: format!("list{prefix}{scope}{kind}"),
                    description: format!("list or watch objects of kind {kind}"),
                    params: list_params(),
                    responses: responses(&[("200", "OK")], list_def),
                    consumes: json_only,
                    gvk: &gvk,
                },
                &tag,
            ),
        );
    }
    if r.allows("create") {
        collection.insert(
            "post".into(),
            operation(
                OperationSpec {
                    action: "post",
                    id: format!("create{prefix}{scope}{kind}"),
                    description: format!("create a {kind}"),
                    params: write_params(&kind_def),
                    responses: responses(&[("200", "OK"), ("201", "Created"), ("202", "Accepted")], &kind_def),
                    consumes: json_only,
                    gvk: &gvk,
                },
                &tag,
            ),
        );
    }
    if r.allows("deletecollection") {
        let mut params = delete_params();
        params.extend(list_params().into_iter().filter(|p| p["name"] != "allowWatchBookmarks" && p["name"] != "watch"));
        collection.insert(
            "delete".into(),
            operation(
                OperationSpec {
                    action: "deletecollection",
                    id: format!("delete{prefix}Collection{scope}{kind}"),
                    description: format!("delete collection of {kind}"),
                    params,
                    responses: responses(&[("200", "OK")], &status),
                    consumes: json_only,
                    gvk: &gvk,
                },
                &tag,
            ),
        );
    }
    if !collection.is_empty() {
        let mut params = scope_params.clone();
        params.push(pretty());
        collection.insert("parameters".into(), Value::Array(params));
        paths.insert(base.clone(), Value::Object(collection));
    }
    if r.namespaced()
        && r.allows("list")
        && let Some(list_def) = &list_def
    {
        {
            let mut all = Map::new();
            let mut op = operation(
                OperationSpec {
                    action: "list",
                    id: format!("list{prefix}{kind}ForAllNamespaces"),
                    description: format!("list or watch objects of kind {kind}"),
                    params: vec![],
                    responses: responses(&[("200", "OK")], list_def),
                    consumes: json_only,
                    gvk: &gvk,
                },
                &tag,
            );
            if let Some(o) = op.as_object_mut() {
                o.shift_remove("parameters");
            }
            all.insert("get".into(), op);
            let mut params = list_params();
            params.push(pretty());
            all.insert("parameters".into(), Value::Array(params));
            paths.insert(format!("/{key}/{}", r.plural), Value::Object(all));
        }
    }

    let item_path = format!("{base}/{{name}}");
    let mut item = Map::new();
    let item_ops = [
        Method {
            method: "get",
            verb: "get",
            id_verb: "read",
            params: vec![],
            responses: responses(&[("200", "OK")], &kind_def),
            consumes: json_only,
        },
        Method {
            method: "put",
            verb: "update",
            id_verb: "replace",
            params: write_params(&kind_def),
            responses: responses(&[("200", "OK"), ("201", "Created")], &kind_def),
            consumes: json_only,
        },
        Method {
            method: "patch",
            verb: "patch",
            id_verb: "patch",
            params: patch_params(),
            responses: responses(&[("200", "OK"), ("201", "Created")], &kind_def),
            consumes: patch_types,
        },
        Method {
            method: "delete",
            verb: "delete",
            id_verb: "delete",
            params: delete_params(),
            responses: responses(&[("200", "OK"), ("202", "Accepted")], &status),
            consumes: json_only,
        },
    ];
    for m in item_ops {
        if !r.allows(m.verb) {
            continue;
        }
        let description = match m.method {
            "get" => format!("read the specified {kind}"),
            "put" => format!("replace the specified {kind}"),
            "patch" => format!("partially update the specified {kind}"),
            _ => format!("delete a {kind}"),
        };
        let spec = OperationSpec {
            action: m.action(),
            id: format!("{}{prefix}{scope}{kind}", m.id_verb),
            description,
            params: m.params,
            responses: m.responses,
            consumes: m.consumes,
            gvk: &gvk,
        };
        item.insert(m.method.into(), operation(spec, &tag));
    }
    if !item.is_empty() {
        item.insert("parameters".into(), Value::Array(item_params(&scope_params, kind)));
        paths.insert(item_path.clone(), Value::Object(item));
    }

    for sub in &r.subresources {
        let group = if sub.group.is_empty() { &r.group } else { &sub.group };
        let version = if sub.version.is_empty() { &r.version } else { &sub.version };
        let sub_gvk = Gvk::new(group, version, &sub.kind);
        let Some(sub_def) = catalog.name_for_gvk(&sub_gvk) else { continue };
        let suffix: String = sub.name.split('-').map(capitalize).collect();
        let mut ops = Map::new();
        let allows = |v: &str| sub.verbs.iter().any(|s| s == v);
        let ok_created = [("200", "OK"), ("201", "Created")];
        let sub_ops = [
            Method {
                method: "get",
                verb: "get",
                id_verb: "read",
                params: vec![],
                responses: responses(&[("200", "OK")], &sub_def),
                consumes: json_only,
            },
            Method {
                method: "put",
                verb: "update",
                id_verb: "replace",
                params: write_params(&sub_def),
                responses: responses(&ok_created, &sub_def),
                consumes: json_only,
            },
            Method {
                method: "patch",
                verb: "patch",
                id_verb: "patch",
                params: patch_params(),
                responses: responses(&ok_created, &sub_def),
                consumes: patch_types,
            },
            Method {
                method: "post",
                verb: "create",
                id_verb: "create",
                params: write_params(&sub_def),
                responses: responses(&[("200", "OK"), ("201", "Created"), ("202", "Accepted")], &sub_def),
                consumes: json_only,
            },
        ];
        for m in sub_ops {
            if !allows(m.verb) {
                continue;
            }
            let spec = OperationSpec {
                action: m.action(),
                id: format!("{}{prefix}{scope}{kind}{suffix}", m.id_verb),
                description: format!("{} {} of the specified {kind}", m.id_verb, sub.name),
                params: m.params,
                responses: m.responses,
                consumes: m.consumes,
                gvk: &sub_gvk,
            };
            ops.insert(m.method.into(), operation(spec, &tag));
        }
        if !ops.is_empty() {
            ops.insert("parameters".into(), Value::Array(item_params(&scope_params, &sub.kind)));
            paths.insert(format!("{item_path}/{}", sub.name), Value::Object(ops));
        }
    }
}

fn patch_params() -> Vec<Value> {
    vec![
        body(&format!("{META}.Patch")),
        dry_run(),
        field_manager(),
        field_validation(),
        query(
            "force",
            "boolean",
            "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.",
        ),
    ]
}

fn item_params(scope_params: &[Value], kind: &str) -> Vec<Value> {
    let mut params = vec![path_param("name", &format!("name of the {kind}"))];
    params.extend(scope_params.iter().cloned());
    params.push(pretty());
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_follow_upstream() {
        assert_eq!(operation_prefix("", "v1"), "CoreV1");
        assert_eq!(operation_prefix("apps", "v1"), "AppsV1");
        assert_eq!(operation_prefix("rbac.authorization.k8s.io", "v1"), "RbacAuthorizationV1");
        assert_eq!(operation_prefix("flowcontrol.apiserver.k8s.io", "v1"), "FlowcontrolApiserverV1");
    }
}
