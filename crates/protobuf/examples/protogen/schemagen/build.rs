//! Joins the k8s-pb structs with the k8s-openapi JSON names and emits the descriptor set + hints.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use prost::Message as _;
use prost_reflect::prost_types::{
    DescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet, MessageOptions,
    field_descriptor_proto::{Label, Type},
};

use super::Generated;
use super::openapi_source::{OaType, norm};
use super::pb_source::{MapValue, PbCrate, PbField, PbStruct, PbType, Scalar, TypeRef};
use super::pointers::POINTER_SCALARS;

/// Registered kinds that are not REST resources (no `impl Resource` in k8s-pb): subresource
/// bodies and options types, each in the group-version whose `register.go` adds it.
const EXTRA_KINDS: &[(&str, &str, &str)] = &[
    // (apiVersion, kind, k8s-pb module)
    ("v1", "List", "api/core/v1"),
    ("v1", "RangeAllocation", "api/core/v1"),
    ("v1", "SerializedReference", "api/core/v1"),
    ("v1", "PodStatusResult", "api/core/v1"),
    ("v1", "PodLogOptions", "api/core/v1"),
    ("v1", "PodExecOptions", "api/core/v1"),
    ("v1", "PodAttachOptions", "api/core/v1"),
    ("v1", "PodPortForwardOptions", "api/core/v1"),
    ("v1", "PodProxyOptions", "api/core/v1"),
    ("v1", "NodeProxyOptions", "api/core/v1"),
    ("v1", "ServiceProxyOptions", "api/core/v1"),
    (
        "authentication.k8s.io/v1",
        "TokenRequest",
        "api/authentication/v1",
    ),
    ("autoscaling/v1", "Scale", "api/autoscaling/v1"),
    ("policy/v1", "Eviction", "api/policy/v1"),
    ("admission.k8s.io/v1", "AdmissionReview", "api/admission/v1"),
    (
        "apidiscovery.k8s.io/v2",
        "APIGroupDiscoveryList",
        "api/apidiscovery/v2",
    ),
];

/// meta/v1 kinds that `metav1.AddToGroupVersion` registers in every group-version, plus the
/// unversioned ones (apimachinery pkg/apis/meta/v1/register.go); valid under any apiVersion.
const META_KINDS: &[&str] = &[
    "Status",
    "WatchEvent",
    "DeleteOptions",
    "ListOptions",
    "GetOptions",
    "CreateOptions",
    "UpdateOptions",
    "PatchOptions",
    "TableOptions",
    "APIVersions",
    "APIGroup",
    "APIGroupList",
    "APIResourceList",
    "PartialObjectMetadata",
    "PartialObjectMetadataList",
];
const META_MODULE: &str = "apimachinery/pkg/apis/meta/v1";

/// JSON names of fields no k8s-openapi type carries and whose lowerCamel spelling is wrong
/// (Go initialisms), from the upstream json tags.
const JSON_NAME_OVERRIDES: &[(&str, &str)] = &[
    (
        "insecure_skip_tls_verify_backend",
        "insecureSkipTLSVerifyBackend",
    ),
    ("desired_api_version", "desiredAPIVersion"),
];

struct Field {
    pb: PbField,
    proto_name: String,
    json: String,
    inline: bool,
    keep_zero: bool,
}

struct Msg {
    module: Vec<String>,
    rust_name: String,
    proto_name: String,
    fields: Vec<Field>,
    slice_wrapper: bool,
}

impl Msg {
    fn package(&self) -> String {
        format!("k8s.io.{}", self.module.join("."))
    }
    fn full_name(&self) -> String {
        format!("{}.{}", self.package(), self.proto_name)
    }
}

/// k8s-openapi definitions indexed for lookups by normalized package and name.
struct OaIndex<'a> {
    exact: HashMap<(String, String), &'a OaType>,
    by_name: HashMap<String, Vec<&'a OaType>>,
    /// normalized key → spelling → count, over every definition.
    global: HashMap<String, BTreeMap<String, usize>>,
}

impl<'a> OaIndex<'a> {
    fn new(types: &'a [OaType]) -> Self {
        let mut exact = HashMap::new();
        let mut by_name: HashMap<String, Vec<&OaType>> = HashMap::new();
        let mut global: HashMap<String, BTreeMap<String, usize>> = HashMap::new();
        for t in types {
            exact.insert((t.norm_package(), norm(t.name())), t);
            by_name.entry(norm(t.name())).or_default().push(t);
            for k in &t.keys {
                *global
                    .entry(norm(&k.json))
                    .or_default()
                    .entry(k.json.clone())
                    .or_default() += 1;
            }
        }
        OaIndex {
            exact,
            by_name,
            global,
        }
    }

    /// The exact definition first, then same-named definitions of other packages.
    fn candidates(&self, module: &[String], name: &str) -> (Option<&'a OaType>, Vec<&'a OaType>) {
        let exact = self
            .exact
            .get(&(norm(&module.join("")), norm(name)))
            .copied();
        let others = self
            .by_name
            .get(&norm(name))
            .map(|v| {
                v.iter()
                    .copied()
                    .filter(|t| exact.is_none_or(|e| e.definition != t.definition))
            })
            .into_iter()
            .flatten()
            .collect();
        (exact, others)
    }
}

/// Runs the join and encodes the outputs.
pub fn build(pb: &PbCrate, oa: &[OaType]) -> Result<Generated, String> {
    let index = OaIndex::new(oa);
    let mut report = String::new();

    // 1. Upstream message names (k8s-pb renames e.g. PodIP → PodIp).
    let mut names: BTreeMap<TypeRef, String> = BTreeMap::new();
    let mut taken: BTreeSet<(Vec<String>, String)> = BTreeSet::new();
    for s in &pb.structs {
        let (exact, others) = index.candidates(&s.module, &s.rust_name);
        let name = exact
            .or(others.first().copied())
            .map(|t| t.name().to_owned())
            .unwrap_or_else(|| s.rust_name.clone());
        if !taken.insert((s.module.clone(), name.clone())) {
            return Err(format!(
                "two structs named {name} in {}",
                s.module.join("/")
            ));
        }
        names.insert(
            TypeRef {
                module: s.module.clone(),
                name: s.rust_name.clone(),
            },
            name,
        );
    }
    let by_ref: HashMap<TypeRef, &PbStruct> = pb
        .structs
        .iter()
        .map(|s| {
            (
                TypeRef {
                    module: s.module.clone(),
                    name: s.rust_name.clone(),
                },
                s,
            )
        })
        .collect();

    // 2. Fields: JSON names, inline members, required-ness. Inline members are detected on types
    // with an exact OpenAPI definition and inherited by same-named types of other versions.
    let mut inline_known: BTreeSet<(String, String)> = BTreeSet::new();
    for s in &pb.structs {
        if let (Some(exact), _) = index.candidates(&s.module, &s.rust_name) {
            for f in &s.fields {
                let n = norm(&f.rust_name);
                let own = exact.keys.iter().any(|k| norm(&k.json) == n);
                if !own && is_inline(f, exact, &by_ref) {
                    inline_known.insert((norm(&s.rust_name), f.rust_name.clone()));
                }
            }
        }
    }
    let mut fallback_camel = Vec::new();
    let mut ambiguous = Vec::new();
    let mut msgs = Vec::new();
    for s in &pb.structs {
        let (exact, others) = index.candidates(&s.module, &s.rust_name);
        let cands: Vec<&OaType> = exact.into_iter().chain(others).collect();
        let mut fields = Vec::new();
        for f in &s.fields {
            let n = norm(&f.rust_name);
            let found = cands
                .iter()
                .find_map(|t| t.keys.iter().find(|k| norm(&k.json) == n))
                .map(|k| (k.json.clone(), k.required));
            let mut inline = false;
            let (json, required) = match found {
                Some(j) => j,
                None => {
                    inline = inline_known.contains(&(norm(&s.rust_name), f.rust_name.clone()));
                    let over = JSON_NAME_OVERRIDES.iter().find(|(r, _)| *r == f.rust_name);
                    let json = if inline {
                        lower_camel(&f.rust_name)
                    } else if let Some((_, j)) = over {
                        (*j).to_owned()
                    } else if let Some(spellings) = index.global.get(&n) {
                        // most frequent spelling
                        let camel = lower_camel(&f.rust_name);
                        let mut best: Vec<(&String, &usize)> = spellings.iter().collect();
                        // the plain lowerCamel spelling wins a tie-free pick (`schema`, not
                        // `$schema`), then the most frequent one
                        best.sort_by(|a, b| {
                            (*b.0 == camel)
                                .cmp(&(*a.0 == camel))
                                .then(b.1.cmp(a.1))
                                .then(a.0.cmp(b.0))
                        });
                        if best.len() > 1 && *best[0].0 != camel {
                            ambiguous.push(format!("{}.{} ({:?})", s.rust_name, f.rust_name, best));
                        }
                        best.first().map(|b| b.0.clone()).unwrap_or_default()
                    } else {
                        fallback_camel.push(format!(
                            "{}::{}.{}",
                            s.module.join("/"),
                            s.rust_name,
                            f.rust_name
                        ));
                        lower_camel(&f.rust_name)
                    };
                    (json, false)
                }
            };
            let scalar_single = matches!(f.ty, PbType::Scalar(_)) && !f.repeated;
            fields.push(Field {
                pb: f.clone(),
                proto_name: proto_ident(&json),
                json,
                inline,
                keep_zero: scalar_single && required,
            });
        }
        let proto_name = names
            .get(&TypeRef {
                module: s.module.clone(),
                name: s.rust_name.clone(),
            })
            .cloned()
            .unwrap_or_else(|| s.rust_name.clone());
        msgs.push(Msg {
            module: s.module.clone(),
            rust_name: s.rust_name.clone(),
            proto_name,
            fields,
            slice_wrapper: s.slice_wrapper,
        });
    }
    apply_pointers(&mut msgs)?;
    check_coverage(&msgs, &index, &mut report);
    let _ = writeln!(
        report,
        "{} messages, {} kinds source structs",
        msgs.len(),
        pb.resources.len()
    );
    let _ = writeln!(
        report,
        "ambiguous global spellings: {}",
        ambiguous.join(", ")
    );
    let _ = writeln!(
        report,
        "{} fields named by lowerCamel fallback (no k8s-openapi spelling): {}",
        fallback_camel.len(),
        fallback_camel.join(", ")
    );

    // 3. Kinds.
    let full_of = |module: &[String], rust: &str| -> Option<String> {
        let name = names.get(&TypeRef {
            module: module.to_vec(),
            name: rust.to_owned(),
        })?;
        Some(format!("k8s.io.{}.{}", module.join("."), name))
    };
    let mut kinds: BTreeSet<(String, String, String)> = BTreeSet::new();
    for r in &pb.resources {
        let full = full_of(&r.module, &r.rust_name).ok_or(format!("no struct {}", r.rust_name))?;
        kinds.insert((r.api_version.clone(), r.kind.clone(), full));
        if let Some(list) = full_of(&r.module, &format!("{}List", r.rust_name)) {
            kinds.insert((r.api_version.clone(), format!("{}List", r.kind), list));
        }
    }
    for (api_version, kind, module) in EXTRA_KINDS {
        let module: Vec<String> = module.split('/').map(str::to_owned).collect();
        let msg = msgs
            .iter()
            .find(|m| m.module == module && m.proto_name == *kind)
            .ok_or(format!(
                "extra kind {kind} not found in {}",
                module.join("/")
            ))?;
        kinds.insert((api_version.to_string(), kind.to_string(), msg.full_name()));
    }
    let meta_module: Vec<String> = META_MODULE.split('/').map(str::to_owned).collect();
    let mut meta_kinds = Vec::new();
    for kind in META_KINDS {
        let msg = msgs
            .iter()
            .find(|m| m.module == meta_module && m.proto_name == *kind)
            .ok_or(format!("meta kind {kind} not found"))?;
        meta_kinds.push((kind.to_string(), msg.full_name()));
    }

    // 4. Outputs.
    let descriptor = descriptor_set(&msgs, &names)?.encode_to_vec();
    let hints = hints_text(&msgs, &kinds, &meta_kinds);
    let _ = writeln!(
        report,
        "{} kinds, descriptor {} bytes",
        kinds.len(),
        descriptor.len()
    );
    Ok(Generated {
        descriptor,
        hints,
        report,
    })
}

/// A message field without its own JSON key whose message's fields appear among the parent's
/// JSON keys is a Go struct embedded with `json:",inline"` (Volume.volumeSource, Probe.handler).
fn is_inline(f: &PbField, parent: &OaType, by_ref: &HashMap<TypeRef, &PbStruct>) -> bool {
    let PbType::Message(r) = &f.ty else {
        return false;
    };
    if f.repeated {
        return false;
    }
    let Some(child) = by_ref.get(r) else {
        return false;
    };
    child.fields.iter().any(|cf| {
        parent
            .keys
            .iter()
            .any(|k| norm(&k.json) == norm(&cf.rust_name))
    })
}

fn apply_pointers(msgs: &mut [Msg]) -> Result<(), String> {
    for (selector, fields) in POINTER_SCALARS {
        let (pkg_part, name) = selector.rsplit_once('/').unwrap_or(("", selector));
        let pkg: Vec<&str> = pkg_part.split('/').filter(|p| !p.is_empty()).collect();
        for json in *fields {
            let mut hit = false;
            for m in msgs.iter_mut() {
                let module_ok = pkg.is_empty()
                    || m.module
                        .windows(pkg.len())
                        .any(|w| w.iter().zip(&pkg).all(|(a, b)| a == b));
                if !module_ok || m.proto_name != name {
                    continue;
                }
                for f in m.fields.iter_mut().filter(|f| f.json == *json) {
                    if !matches!(f.pb.ty, PbType::Scalar(_)) || f.pb.repeated {
                        return Err(format!("pointer entry {selector}.{json} is not a scalar"));
                    }
                    f.keep_zero = true;
                    hit = true;
                }
            }
            if !hit {
                return Err(format!("pointer entry {selector}.{json} matches no field"));
            }
        }
    }
    Ok(())
}

/// Reports JSON keys of an exactly matching OpenAPI type that no proto field (direct or inline)
/// carries; such keys would be lost by a protobuf round trip.
fn check_coverage(msgs: &[Msg], index: &OaIndex<'_>, report: &mut String) {
    let by_ref: HashMap<TypeRef, &Msg> = msgs
        .iter()
        .map(|m| {
            (
                TypeRef {
                    module: m.module.clone(),
                    name: m.rust_name.clone(),
                },
                m,
            )
        })
        .collect();
    let mut missing = Vec::new();
    for m in msgs {
        let (Some(t), _) = index.candidates(&m.module, &m.proto_name) else {
            continue;
        };
        let mut keys = BTreeSet::new();
        collect_json_keys(m, &by_ref, &mut keys);
        for k in &t.keys {
            // TypeMeta of non-resource kinds (DeleteOptions) travels in the envelope.
            let type_meta = k.json == "apiVersion" || k.json == "kind";
            if !keys.contains(&k.json) && !type_meta {
                missing.push(format!("{}.{}", t.definition, k.json));
            }
        }
    }
    let _ = writeln!(
        report,
        "{} OpenAPI keys without a proto field: {}",
        missing.len(),
        missing.join(", ")
    );
}

fn collect_json_keys(m: &Msg, by_ref: &HashMap<TypeRef, &Msg>, out: &mut BTreeSet<String>) {
    for f in &m.fields {
        match (&f.pb.ty, f.inline) {
            (PbType::Message(r), true) => {
                if let Some(child) = by_ref.get(r) {
                    collect_json_keys(child, by_ref, out);
                }
            }
            _ => {
                out.insert(f.json.clone());
            }
        }
    }
}

fn lower_camel(snake: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A proto identifier for a JSON key: `$ref` → `ref`, `x-kubernetes-list-type` →
/// `xKubernetesListType` (upstream's proto names for the same fields).
fn proto_ident(json: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in json.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(if upper { c.to_ascii_uppercase() } else { c });
            upper = false;
        } else if !out.is_empty() {
            upper = true;
        }
    }
    out
}

fn scalar_type(s: Scalar) -> Type {
    match s {
        Scalar::Int32 => Type::Int32,
        Scalar::Int64 => Type::Int64,
        Scalar::Bool => Type::Bool,
        Scalar::Double => Type::Double,
        Scalar::Float => Type::Float,
        Scalar::String => Type::String,
        Scalar::Bytes => Type::Bytes,
    }
}

fn type_name(names: &BTreeMap<TypeRef, String>, r: &TypeRef) -> Result<String, String> {
    let name = names.get(r).ok_or(format!(
        "unresolved type {}::{}",
        r.module.join("::"),
        r.name
    ))?;
    Ok(format!(".k8s.io.{}.{}", r.module.join("."), name))
}

fn file_name(module: &[String]) -> String {
    format!("k8s.io/{}/generated.proto", module.join("/"))
}

/// Messages of one proto package and the packages they reference.
type FileParts<'a> = (Vec<&'a Msg>, BTreeSet<Vec<String>>);

fn descriptor_set(
    msgs: &[Msg],
    names: &BTreeMap<TypeRef, String>,
) -> Result<FileDescriptorSet, String> {
    let mut files: BTreeMap<Vec<String>, FileParts<'_>> = BTreeMap::new();
    for m in msgs {
        let entry = files.entry(m.module.clone()).or_default();
        entry.0.push(m);
        for f in &m.fields {
            let r = match &f.pb.ty {
                PbType::Message(r) | PbType::Map(MapValue::Message(r)) => r,
                _ => continue,
            };
            if r.module != m.module {
                entry.1.insert(r.module.clone());
            }
        }
    }
    let mut out = FileDescriptorSet::default();
    for (module, (mut file_msgs, deps)) in files {
        file_msgs.sort_by(|a, b| a.proto_name.cmp(&b.proto_name));
        let mut file = FileDescriptorProto {
            name: Some(file_name(&module)),
            package: Some(format!("k8s.io.{}", module.join("."))),
            dependency: deps.iter().map(|d| file_name(d)).collect(),
            syntax: Some("proto2".into()),
            ..Default::default()
        };
        for m in file_msgs {
            file.message_type.push(message_proto(m, names)?);
        }
        out.file.push(file);
    }
    Ok(out)
}

fn message_proto(m: &Msg, names: &BTreeMap<TypeRef, String>) -> Result<DescriptorProto, String> {
    let mut d = DescriptorProto {
        name: Some(m.proto_name.clone()),
        ..Default::default()
    };
    for f in &m.fields {
        let mut fd = FieldDescriptorProto {
            name: Some(f.proto_name.clone()),
            number: Some(f.pb.tag as i32),
            json_name: Some(f.json.clone()),
            label: Some(if f.pb.repeated {
                Label::Repeated
            } else {
                Label::Optional
            } as i32),
            ..Default::default()
        };
        match &f.pb.ty {
            PbType::Scalar(s) => fd.r#type = Some(scalar_type(*s) as i32),
            PbType::Message(r) => {
                fd.r#type = Some(Type::Message as i32);
                fd.type_name = Some(type_name(names, r)?);
            }
            PbType::Map(v) => {
                let entry_name = format!("{}Entry", upper_first(&f.proto_name));
                let mut value = FieldDescriptorProto {
                    name: Some("value".into()),
                    number: Some(2),
                    json_name: Some("value".into()),
                    label: Some(Label::Optional as i32),
                    ..Default::default()
                };
                match v {
                    MapValue::Scalar(s) => value.r#type = Some(scalar_type(*s) as i32),
                    MapValue::Message(r) => {
                        value.r#type = Some(Type::Message as i32);
                        value.type_name = Some(type_name(names, r)?);
                    }
                }
                d.nested_type.push(DescriptorProto {
                    name: Some(entry_name.clone()),
                    field: vec![
                        FieldDescriptorProto {
                            name: Some("key".into()),
                            number: Some(1),
                            json_name: Some("key".into()),
                            label: Some(Label::Optional as i32),
                            r#type: Some(Type::String as i32),
                            ..Default::default()
                        },
                        value,
                    ],
                    options: Some(MessageOptions {
                        map_entry: Some(true),
                        ..Default::default()
                    }),
                    ..Default::default()
                });
                fd.label = Some(Label::Repeated as i32);
                fd.r#type = Some(Type::Message as i32);
                fd.type_name = Some(format!(".{}.{}", m.full_name(), entry_name));
            }
        }
        d.field.push(fd);
    }
    Ok(d)
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

fn hints_text(
    msgs: &[Msg],
    kinds: &BTreeSet<(String, String, String)>,
    meta_kinds: &[(String, String)],
) -> String {
    let mut out = String::from(
        "# Generated by `cargo run -p rkube-protobuf --example protogen`; do not edit.\n\
         # kind <apiVersion> <kind> <message>: object kinds and their protobuf message\n\
         # meta-kind <kind> <message>: meta/v1 kinds valid under any apiVersion\n\
         # inline <message> <field>: Go struct embedded with json:\",inline\"\n\
         # keep-zero <message> <field>: scalar whose zero value is kept when decoding\n\
         #   (required in OpenAPI, or a Go pointer; see examples/protogen/gen/pointers.rs)\n\
         # slice <message>: Go named slice type wrapped as message { repeated items = 1 }\n",
    );
    for (api_version, kind, msg) in kinds {
        let _ = writeln!(out, "kind\t{api_version}\t{kind}\t{msg}");
    }
    for (kind, msg) in meta_kinds {
        let _ = writeln!(out, "meta-kind\t{kind}\t{msg}");
    }
    let mut sorted: Vec<&Msg> = msgs.iter().collect();
    sorted.sort_by_key(|m| m.full_name());
    for m in &sorted {
        if m.slice_wrapper {
            let _ = writeln!(out, "slice\t{}", m.full_name());
        }
        for f in &m.fields {
            if f.inline {
                let _ = writeln!(out, "inline\t{}\t{}", m.full_name(), f.proto_name);
            }
        }
    }
    for m in &sorted {
        for f in m.fields.iter().filter(|f| f.keep_zero) {
            let _ = writeln!(out, "keep-zero\t{}\t{}", m.full_name(), f.proto_name);
        }
    }
    out
}
