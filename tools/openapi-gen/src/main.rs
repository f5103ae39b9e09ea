//! Generates `crates/openapi/data/definitions.json`: the Swagger 2.0 definitions of every
//! Kubernetes 1.33 type, named as upstream (`io.k8s.api.apps.v1.Deployment`), from three offline
//! sources, each used for what it carries reliably:
//!
//! 1. k8s-openapi's `schemars` impls (generated from upstream's OpenAPI spec): descriptions,
//!    types, formats, required fields and `$ref`s.
//! 2. k8s-openapi's source text: the `DeepMerge` impls encode upstream's `+listType`,
//!    `+listMapKey` and `+mapType` markers per field; the `Resource` impls carry group, version
//!    and kind; the `Deserialize` impls map Rust field names to JSON names.
//! 3. The Go struct tags compiled into kubectl (`patchStrategy:"merge" patchMergeKey:"name"
//!    protobuf:"bytes,2,rep,name=containers"`), matched to a type through the protobuf field
//!    number and name in rkube's protobuf descriptor: upstream's strategic merge metadata.
//!
//! Usage: `rkube-openapi-gen <k8s-openapi src/v1_33 dir> <descriptor.binpb> <kubectl binary> <out.json>`

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use anyhow::{Context, Result, bail};
use prost::Message;
use regex::Regex;
use serde_json::{Map, Value, json};

#[macro_use]
#[rustfmt::skip]
mod types;

const DEFS: &str = "#/definitions/";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, src, descriptor, kubectl, out] = args.as_slice() else {
        bail!("usage: rkube-openapi-gen <k8s-openapi src/v1_33> <descriptor.binpb> <kubectl> <out.json>");
    };
    let mut defs = schemars_definitions();
    defs.values_mut().for_each(unwrap_single_all_of);
    let scanned = scan_sources(Path::new(src))?;
    apply_merge_markers(&mut defs, &scanned);
    let tags = kubectl_patch_tags(Path::new(kubectl))?;
    let messages = descriptor_fields(Path::new(descriptor))?;
    apply_patch_tags(&mut defs, &tags, &messages);
    add_kinds_and_lists(&mut defs, &scanned);
    special_cases(&mut defs);
    write_definitions(&defs, Path::new(out))?;
    eprintln!("{} definitions written to {out}", defs.len());
    Ok(())
}

fn schemars_definitions() -> BTreeMap<String, Value> {
    let settings = schemars::generate::SchemaSettings::draft07();
    let mut generator = settings.into_generator();
    macro_rules! visit {
        ($($t:ty),* $(,)?) => { $( let _ = generator.subschema_for::<$t>(); )* };
    }
    for_each_type!(visit);
    generator.take_definitions(true).into_iter().collect()
}

/// What the source text of one k8s-openapi type tells.
#[derive(Default, Debug)]
struct ScannedType {
    /// Rust field name → JSON name.
    json_names: HashMap<String, String>,
    /// (Rust field, merge marker), in source order.
    markers: Vec<(String, Marker)>,
    /// (group, version, kind) from `impl Resource`.
    gvk: Option<(String, String, String)>,
    /// `ListableResource::LIST_KIND`.
    list_kind: Option<String>,
}

#[derive(Debug, Clone)]
enum Marker {
    ListMap(Vec<String>),
    ListSet,
    ListAtomic,
    MapAtomic,
    MapGranular,
}

fn scan_sources(dir: &Path) -> Result<BTreeMap<String, ScannedType>> {
    let name_re = Regex::new(r#"fn schema_name\(\)[^"]*"([^"]+)""#)?;
    let field_re = Regex::new(r#""([^"]+)" => Field::Key_(\w+),"#)?;
    let resource_re = Regex::new(
        r#"impl(?:<T>)? crate::Resource for \w+ \{\s*const API_VERSION: &'static str = "[^"]*";\s*const GROUP: &'static str = "([^"]*)";\s*const KIND: &'static str = "([^"]*)";\s*const VERSION: &'static str = "([^"]*)";"#,
    )?;
    let list_kind_re = Regex::new(r#"const LIST_KIND: &'static str = "(\w+)""#)?;
    let list_map_re = Regex::new(r"merge_strategies::list::map\(\s*&mut self\.(\w+),\s*other\.\w+,\s*&\[([^\]]*)\]")?;
    let key_re = Regex::new(r"lhs\.(\w+)")?;
    let simple_re = Regex::new(r"merge_strategies::(list::set|list::atomic|map::atomic|map::granular)\(&mut self\.(\w+)")?;
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path).with_context(|| format!("reading {}", path.display()))? {
            let entry = entry?;
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let text = std::fs::read_to_string(&p)?;
            let Some(name) = name_re.captures(&text).map(|c| c[1].to_string()) else { continue };
            let mut t = ScannedType::default();
            for c in field_re.captures_iter(&text) {
                t.json_names.insert(c[2].to_string(), c[1].to_string());
            }
            if let Some(c) = resource_re.captures(&text) {
                t.gvk = Some((c[1].to_string(), c[3].to_string(), c[2].to_string()));
            }
            t.list_kind = list_kind_re.captures(&text).map(|c| c[1].to_string());
            let mut found: Vec<(usize, String, Marker)> = Vec::new();
            for c in list_map_re.captures_iter(&text) {
                let keys = key_re.captures_iter(&c[2]).map(|k| k[1].to_string()).collect();
                found.push((c.get(0).map_or(0, |m| m.start()), c[1].to_string(), Marker::ListMap(keys)));
            }
            for c in simple_re.captures_iter(&text) {
                let marker = match &c[1] {
                    "list::set" => Marker::ListSet,
                    "list::atomic" => Marker::ListAtomic,
                    "map::atomic" => Marker::MapAtomic,
                    _ => Marker::MapGranular,
                };
                found.push((c.get(0).map_or(0, |m| m.start()), c[2].to_string(), marker));
            }
            found.sort_by_key(|f| f.0);
            t.markers = found.into_iter().map(|(_, f, m)| (f, m)).collect();
            out.insert(name, t);
        }
    }
    Ok(out)
}

fn ref_target(schema: &Value) -> Option<&str> {
    schema.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix(DEFS))
}

/// Upstream `+listMapKey` markers with more keys than the patch merge key: k8s-openapi's
/// generator keys a list by its patch merge key alone when it has one, so these are restored
/// from k8s.io/api `core/v1/types.go`.
const LIST_MAP_KEYS: &[(&str, &str, &[&str])] = &[
    ("io.k8s.api.core.v1.Container", "ports", &["containerPort", "protocol"]),
    ("io.k8s.api.core.v1.EphemeralContainer", "ports", &["containerPort", "protocol"]),
    ("io.k8s.api.core.v1.ServiceSpec", "ports", &["port", "protocol"]),
    ("io.k8s.api.core.v1.PodSpec", "topologySpreadConstraints", &["topologyKey", "whenUnsatisfiable"]),
];

fn apply_merge_markers(defs: &mut BTreeMap<String, Value>, scanned: &BTreeMap<String, ScannedType>) {
    apply_scanned_markers(defs, scanned);
    for (name, field, keys) in LIST_MAP_KEYS {
        if let Some(obj) = defs.get_mut(*name).and_then(|d| d.pointer_mut(&format!("/properties/{field}"))).and_then(Value::as_object_mut) {
            obj.insert("x-kubernetes-list-map-keys".into(), json!(keys));
        }
    }
}

fn apply_scanned_markers(defs: &mut BTreeMap<String, Value>, scanned: &BTreeMap<String, ScannedType>) {
    for (name, t) in scanned {
        for (field, marker) in &t.markers {
            let Some(json_name) = t.json_names.get(field) else {
                eprintln!("warning: {name}.{field}: no JSON name");
                continue;
            };
            let item_type = defs
                .get(name)
                .and_then(|d| d.pointer(&format!("/properties/{}/items", json_name.replace('~', "~0").replace('/', "~1"))))
                .and_then(ref_target)
                .map(str::to_string);
            let Some(prop) = defs.get_mut(name).and_then(|d| d.get_mut("properties")).and_then(|p| p.get_mut(json_name)) else {
                eprintln!("warning: {name}.{json_name}: not in the schema");
                continue;
            };
            let Some(obj) = prop.as_object_mut() else { continue };
            match marker {
                // k8s-openapi's own merge override (`metadata.name`), not an upstream marker.
                Marker::ListMap(keys) if keys.iter().any(|k| k.contains('.')) => {
                    obj.insert("x-kubernetes-list-type".into(), json!("atomic"));
                }
                Marker::ListMap(keys) => {
                    let item_names = item_type.as_ref().and_then(|i| scanned.get(i));
                    let keys: Vec<Value> = keys
                        .iter()
                        .map(|k| Value::String(item_names.and_then(|i| i.json_names.get(k)).cloned().unwrap_or_else(|| k.clone())))
                        .collect();
                    obj.insert("x-kubernetes-list-map-keys".into(), Value::Array(keys));
                    obj.insert("x-kubernetes-list-type".into(), json!("map"));
                }
                Marker::ListSet => {
                    obj.insert("x-kubernetes-list-type".into(), json!("set"));
                }
                Marker::ListAtomic => {
                    obj.insert("x-kubernetes-list-type".into(), json!("atomic"));
                }
                Marker::MapAtomic => {
                    obj.insert("x-kubernetes-map-type".into(), json!("atomic"));
                }
                // Granular is the default for maps; upstream writes no marker for it.
                Marker::MapGranular => {}
            }
        }
    }
}

/// One Go struct tag with a patch strategy.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct PatchTag {
    json: String,
    proto_number: i32,
    proto_name: String,
    strategy: String,
    merge_key: Option<String>,
}

fn kubectl_patch_tags(kubectl: &Path) -> Result<BTreeSet<PatchTag>> {
    let bytes = std::fs::read(kubectl).with_context(|| format!("reading {}", kubectl.display()))?;
    let json_re = Regex::new(r#"json:"([^",]*)[^"]*""#)?;
    let strategy_re = Regex::new(r#"patchStrategy:"([^"]*)""#)?;
    let key_re = Regex::new(r#"patchMergeKey:"([^"]*)""#)?;
    let proto_re = Regex::new(r#"protobuf:"[a-z0-9]+,(\d+),[^"]*name=(\w+)"#)?;
    let needle = b"patchStrategy:\"";
    let mut tags = BTreeSet::new();
    let mut i = 0;
    while let Some(pos) = bytes[i..].windows(needle.len()).position(|w| w == needle) {
        let at = i + pos;
        let printable = |b: &u8| (0x20..0x7f).contains(b);
        let start = bytes[..at].iter().rposition(|b| !printable(b)).map_or(0, |p| p + 1);
        let end = bytes[at..].iter().position(|b| !printable(b)).map_or(bytes.len(), |p| at + p);
        let run = String::from_utf8_lossy(&bytes[start..end]).to_string();
        i = end;
        // The run starts with the Go field name and a length byte that may be printable.
        let Some(json_at) = run.find("json:\"") else { continue };
        let tag = &run[json_at..];
        let (Some(j), Some(s), Some(p)) = (json_re.captures(tag), strategy_re.captures(tag), proto_re.captures(tag)) else {
            continue;
        };
        tags.insert(PatchTag {
            json: j[1].to_string(),
            proto_number: p[1].parse()?,
            proto_name: p[2].to_string(),
            strategy: s[1].to_string(),
            merge_key: key_re.captures(tag).map(|k| k[1].to_string()),
        });
    }
    eprintln!("{} distinct patch tags in {}", tags.len(), kubectl.display());
    Ok(tags)
}

/// Protobuf message full name (without the leading dot) → (field name, number).
fn descriptor_fields(path: &Path) -> Result<HashMap<String, Vec<(String, i32)>>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let set = prost_types::FileDescriptorSet::decode(bytes.as_slice())?;
    let mut out = HashMap::new();
    fn walk(prefix: &str, msgs: &[prost_types::DescriptorProto], out: &mut HashMap<String, Vec<(String, i32)>>) {
        for m in msgs {
            let name = format!("{prefix}.{}", m.name());
            let fields = m.field.iter().map(|f| (f.name().to_string(), f.number())).collect();
            walk(&name, &m.nested_type, out);
            out.insert(name, fields);
        }
    }
    for file in &set.file {
        walk(file.package(), &file.message_type, &mut out);
    }
    Ok(out)
}

/// `io.k8s.api.core.v1.PodSpec` → `k8s.io.api.core.v1.PodSpec`. EphemeralContainer's fields
/// live in the embedded EphemeralContainerCommon message.
fn proto_message_name(definition: &str) -> Option<String> {
    if definition == "io.k8s.api.core.v1.EphemeralContainer" {
        return Some("k8s.io.api.core.v1.EphemeralContainerCommon".into());
    }
    let rest = definition.strip_prefix("io.k8s.")?;
    let (module, tail) = rest.split_once('.')?;
    Some(format!("k8s.io.{}.{tail}", module.replace('-', "_")))
}

/// Fields whose JSON name and protobuf number equal those of a tagged field elsewhere but that
/// carry no patch strategy upstream (checked against k8s.io/api `types.go`).
const LOOK_ALIKES: &[(&str, &str)] = &[
    ("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionStatus", "conditions"),
    ("io.k8s.api.certificates.v1.CertificateSigningRequestStatus", "conditions"),
    ("io.k8s.api.networking.v1.NetworkPolicyIngressRule", "ports"),
    ("io.k8s.api.networking.v1.NetworkPolicyEgressRule", "ports"),
    ("io.k8s.api.resource.v1beta1.AllocatedDeviceStatus", "conditions"),
    ("io.k8s.api.resource.v1beta2.AllocatedDeviceStatus", "conditions"),
];

fn apply_patch_tags(defs: &mut BTreeMap<String, Value>, tags: &BTreeSet<PatchTag>, messages: &HashMap<String, Vec<(String, i32)>>) {
    // `replace` appears only on types kubectl links from outside k8s.io/api.
    let tags: Vec<&PatchTag> = tags.iter().filter(|t| t.strategy != "replace").collect();
    let mut uses: BTreeMap<&PatchTag, Vec<String>> = BTreeMap::new();
    let names: Vec<String> = defs.keys().cloned().collect();
    for name in names {
        let Some(fields) = proto_message_name(&name).and_then(|m| messages.get(&m)) else { continue };
        for &tag in &tags {
            if LOOK_ALIKES.contains(&(name.as_str(), tag.json.as_str())) {
                continue;
            }
            let matches_field = fields.iter().any(|(f, n)| *n == tag.proto_number && f.eq_ignore_ascii_case(&tag.proto_name));
            if !matches_field {
                continue;
            }
            let Some(prop) = defs.get(&name).and_then(|d| d.pointer(&format!("/properties/{}", tag.json))) else { continue };
            // A merge key must name a field of the list items; this rules out look-alike fields
            // (same JSON name and protobuf number) of types that carry no patch strategy.
            if let Some(key) = &tag.merge_key {
                let item_has_key = prop
                    .pointer("/items")
                    .and_then(ref_target)
                    .and_then(|t| defs.get(t))
                    .and_then(|d| d.pointer(&format!("/properties/{key}")))
                    .is_some();
                if !item_has_key {
                    continue;
                }
            }
            let Some(obj) =
                defs.get_mut(&name).and_then(|d| d.pointer_mut(&format!("/properties/{}", tag.json))).and_then(Value::as_object_mut)
            else {
                continue;
            };
            if let Some(key) = &tag.merge_key {
                obj.insert("x-kubernetes-patch-merge-key".into(), json!(key));
            }
            obj.insert("x-kubernetes-patch-strategy".into(), json!(tag.strategy));
            uses.entry(tag).or_default().push(name.clone());
        }
    }
    for (tag, used) in &uses {
        eprintln!("{}:{} {} {:?} → {}", tag.json, tag.proto_number, tag.strategy, tag.merge_key, used.join(" "));
    }
    for tag in tags.iter().filter(|t| !uses.contains_key(*t)) {
        eprintln!("warning: unused patch tag {tag:?}");
    }
}

fn gvk_value(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "kind": kind, "version": version})
}

fn add_kinds_and_lists(defs: &mut BTreeMap<String, Value>, scanned: &BTreeMap<String, ScannedType>) {
    let mut group_versions = BTreeSet::new();
    for (name, t) in scanned {
        let Some((group, version, kind)) = &t.gvk else { continue };
        if !name.starts_with("io.k8s.apimachinery.pkg.apis.meta.") {
            group_versions.insert((group.clone(), version.clone()));
        }
        if let Some(obj) = defs.get_mut(name).and_then(Value::as_object_mut) {
            obj.insert("x-kubernetes-group-version-kind".into(), json!([gvk_value(group, version, kind)]));
        }
        let Some(list_kind) = &t.list_kind else { continue };
        let Some((prefix, _)) = name.rsplit_once('.') else { continue };
        let api_version = defs.get(name).and_then(|d| d.pointer("/properties/apiVersion")).cloned().unwrap_or(json!({"type": "string"}));
        let kind_prop = defs.get(name).and_then(|d| d.pointer("/properties/kind")).cloned().unwrap_or(json!({"type": "string"}));
        let list = json!({
            "description": format!("{list_kind} is a list of {kind} objects."),
            "type": "object",
            "properties": {
                "apiVersion": api_version,
                "items": {
                    "description": format!("Items is the list of {kind} objects."),
                    "type": "array",
                    "items": {"$ref": format!("{DEFS}{name}")},
                },
                "kind": kind_prop,
                "metadata": {
                    "$ref": format!("{DEFS}io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"),
                    "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
                },
            },
            "required": ["items"],
            "x-kubernetes-group-version-kind": [gvk_value(group, version, list_kind)],
        });
        defs.insert(format!("{prefix}.{list_kind}"), list);
    }
    // Upstream lists every served group-version on the kinds that travel in all of them.
    group_versions.insert((String::new(), "v1".to_string()));
    for kind in ["DeleteOptions", "WatchEvent"] {
        let gvks: Vec<Value> = group_versions.iter().map(|(g, v)| gvk_value(g, v, kind)).collect();
        if let Some(obj) = defs.get_mut(&format!("io.k8s.apimachinery.pkg.apis.meta.v1.{kind}")).and_then(Value::as_object_mut) {
            obj.insert("x-kubernetes-group-version-kind".into(), Value::Array(gvks));
        }
    }
}

/// Where upstream's Swagger form differs from what schemars produces.
fn special_cases(defs: &mut BTreeMap<String, Value>) {
    let set = |defs: &mut BTreeMap<String, Value>, name: &str, key: &str, value: Value| {
        if let Some(obj) = defs.get_mut(name).and_then(Value::as_object_mut) {
            obj.insert(key.into(), value);
        }
    };
    // Swagger 2.0 has no oneOf: upstream writes these as formatted strings
    // (apimachinery `intstr.IntOrString.OpenAPISchemaType`, `resource.Quantity.OpenAPISchemaType`).
    let int_or_string = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
    set(defs, int_or_string, "type", json!("string"));
    set(defs, int_or_string, "format", json!("int-or-string"));
    let quantity = "io.k8s.apimachinery.pkg.api.resource.Quantity";
    set(defs, quantity, "type", json!("string"));
    if let Some(obj) = defs.get_mut(quantity).and_then(Value::as_object_mut) {
        obj.shift_remove("x-kubernetes-int-or-string");
    }
    // k8s-openapi makes `metadata` a required Rust field for convenience; upstream never
    // requires it (an object may be created with `generateName` alone, in a List or template).
    for schema in defs.values_mut() {
        let Some(obj) = schema.as_object_mut() else { continue };
        if let Some(required) = obj.get_mut("required").and_then(Value::as_array_mut) {
            required.retain(|r| r != "metadata");
            if required.is_empty() {
                obj.shift_remove("required");
            }
        }
    }
    // `+structType=atomic` markers (k8s.io/api `core/v1/types.go`, apimachinery `meta/v1/types.go`):
    // DeepMerge merges structs field by field, so these are not visible in k8s-openapi.
    for name in [
        "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
        "io.k8s.api.core.v1.LocalObjectReference",
        "io.k8s.api.core.v1.ObjectReference",
        "io.k8s.api.core.v1.TypedLocalObjectReference",
        "io.k8s.api.core.v1.NodeSelector",
        "io.k8s.api.core.v1.NodeSelectorTerm",
        "io.k8s.api.core.v1.TopologySelectorTerm",
        "io.k8s.api.core.v1.ObjectFieldSelector",
        "io.k8s.api.core.v1.ResourceFieldSelector",
        "io.k8s.api.core.v1.ConfigMapKeySelector",
        "io.k8s.api.core.v1.SecretKeySelector",
    ] {
        set(defs, name, "x-kubernetes-map-type", json!("atomic"));
    }
    // `+union` markers (flowcontrol `types.go`): a discriminator and the member it selects.
    let flowcontrol = ["v1", "v1beta3"];
    for v in flowcontrol {
        set(
            defs,
            &format!("io.k8s.api.flowcontrol.{v}.LimitResponse"),
            "x-kubernetes-unions",
            json!([{"discriminator": "type", "fields-to-discriminateBy": {"queuing": "Queuing"}}]),
        );
        set(
            defs,
            &format!("io.k8s.api.flowcontrol.{v}.PriorityLevelConfigurationSpec"),
            "x-kubernetes-unions",
            json!([{"discriminator": "type", "fields-to-discriminateBy": {"exempt": "Exempt", "limited": "Limited"}}]),
        );
    }
}

/// schemars writes a `$ref` with siblings (a field's description) as `allOf: [{$ref}]`, as JSON
/// Schema draft 7 requires; Swagger 2.0 as upstream serves it puts the siblings beside `$ref`.
fn unwrap_single_all_of(v: &mut Value) {
    match v {
        Value::Object(m) => {
            let single_ref = match m.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
                Some([only]) => only.get("$ref").cloned(),
                _ => None,
            };
            if let Some(reference) = single_ref {
                m.shift_remove("allOf");
                m.insert("$ref".into(), reference);
            }
            m.values_mut().for_each(unwrap_single_all_of);
        }
        Value::Array(a) => a.iter_mut().for_each(unwrap_single_all_of),
        _ => {}
    }
}

fn sort_keys(v: &mut Value) {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = std::mem::take(m).into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            for (k, mut val) in entries {
                sort_keys(&mut val);
                m.insert(k, val);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(sort_keys),
        _ => {}
    }
}

/// One definition per line, sorted, so a regeneration shows as a readable diff.
fn write_definitions(defs: &BTreeMap<String, Value>, out: &Path) -> Result<()> {
    let mut text = String::from("{\n");
    for (i, (name, schema)) in defs.iter().enumerate() {
        let mut schema = schema.clone();
        sort_keys(&mut schema);
        let sep = if i + 1 == defs.len() { "" } else { "," };
        text.push_str(&format!("{}: {}{sep}\n", serde_json::to_string(name)?, serde_json::to_string(&schema)?));
    }
    text.push_str("}\n");
    let _: Map<String, Value> = serde_json::from_str(&text)?;
    std::fs::write(out, text)?;
    Ok(())
}
