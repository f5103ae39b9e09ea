//! Reads the prost-generated k8s-pb sources with `syn`: every `#[derive(::prost::Message)]` struct
//! with its `#[prost(..)]` field attributes, and every `impl crate::Resource for X` (GVK constants).

use std::path::{Path, PathBuf};

use quote::ToTokens;
use syn::punctuated::Punctuated;
use syn::{Expr, Lit, Meta, Token};

/// A proto scalar type as prost spells it in `#[prost(<type>, ..)]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalar {
    Int32,
    Int64,
    Bool,
    Double,
    Float,
    String,
    Bytes,
}

impl Scalar {
    fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "int32" => Scalar::Int32,
            "int64" => Scalar::Int64,
            "bool" => Scalar::Bool,
            "double" => Scalar::Double,
            "float" => Scalar::Float,
            "string" => Scalar::String,
            "bytes" => Scalar::Bytes,
            _ => return None,
        })
    }
}

/// A reference to another generated struct: its module path (from the crate root) and Rust name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TypeRef {
    pub module: Vec<String>,
    pub name: String,
}

/// The value type of one field.
#[derive(Clone, Debug)]
pub enum PbType {
    Scalar(Scalar),
    Message(TypeRef),
    /// `map<string, V>`; k8s only uses string keys (checked while parsing).
    Map(MapValue),
}

/// The value type of a map field.
#[derive(Clone, Debug)]
pub enum MapValue {
    Scalar(Scalar),
    Message(TypeRef),
}

/// One `#[prost(..)]` field.
#[derive(Clone, Debug)]
pub struct PbField {
    /// The Rust field name without a raw-identifier prefix (`type`, not `r#type`).
    pub rust_name: String,
    pub tag: u32,
    pub repeated: bool,
    pub ty: PbType,
}

/// One prost message struct.
#[derive(Clone, Debug)]
pub struct PbStruct {
    pub module: Vec<String>,
    pub rust_name: String,
    pub fields: Vec<PbField>,
    /// Whether the doc comment carries go-to-protobuf's marker for a named slice type
    /// (`type Verbs []string` becomes `message Verbs { repeated string items = 1; }`).
    pub slice_wrapper: bool,
}

/// One `impl crate::Resource for X`.
#[derive(Clone, Debug)]
pub struct PbResource {
    pub module: Vec<String>,
    pub rust_name: String,
    pub api_version: String,
    pub kind: String,
}

/// Everything read from the k8s-pb sources.
#[derive(Debug, Default)]
pub struct PbCrate {
    pub structs: Vec<PbStruct>,
    pub resources: Vec<PbResource>,
}

const SLICE_WRAPPER_MARKER: &str = "items, if empty, will result in an empty slice";

/// Parses every `.rs` file under `src_root` (the k8s-pb `src` directory), in sorted order.
pub fn parse_crate(src_root: &Path) -> Result<PbCrate, String> {
    let mut files = Vec::new();
    collect_rs_files(src_root, &mut files)?;
    files.sort();
    let mut out = PbCrate::default();
    for file in files {
        let module = module_path(src_root, &file)?;
        let text = std::fs::read_to_string(&file)
            .map_err(|e| format!("reading {}: {e}", file.display()))?;
        let ast = syn::parse_file(&text).map_err(|e| format!("parsing {}: {e}", file.display()))?;
        for item in &ast.items {
            match item {
                syn::Item::Struct(s) if is_prost_message(&s.attrs) => {
                    out.structs.push(
                        parse_struct(&module, s)
                            .map_err(|e| format!("{}::{}: {e}", module.join("::"), s.ident))?,
                    );
                }
                syn::Item::Impl(i) => {
                    if let Some(r) = parse_resource_impl(&module, i) {
                        out.resources.push(r);
                    }
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

fn collect_rs_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_dir() {
            collect_rs_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// `api/core/v1/mod.rs` → `[api, core, v1]`; `lib.rs` → `[]`.
fn module_path(root: &Path, file: &Path) -> Result<Vec<String>, String> {
    let rel = file.strip_prefix(root).map_err(|e| e.to_string())?;
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    if last != "mod.rs" && last != "lib.rs" {
        parts.push(last.trim_end_matches(".rs").to_owned());
    }
    Ok(parts)
}

fn is_prost_message(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("derive") && a.meta.to_token_stream().to_string().contains("Message")
    })
}

fn doc_text(attrs: &[syn::Attribute]) -> String {
    let mut doc = String::new();
    for attr in attrs {
        if let Meta::NameValue(nv) = &attr.meta
            && nv.path.is_ident("doc")
            && let Expr::Lit(l) = &nv.value
            && let Lit::Str(s) = &l.lit
        {
            doc.push_str(s.value().trim());
            doc.push('\n');
        }
    }
    doc
}

fn parse_struct(module: &[String], s: &syn::ItemStruct) -> Result<PbStruct, String> {
    let mut fields = Vec::new();
    for field in &s.fields {
        let Some(attr) = field.attrs.iter().find(|a| a.path().is_ident("prost")) else {
            continue;
        };
        let ident = field.ident.as_ref().ok_or("tuple struct")?.to_string();
        let rust_name = ident.trim_start_matches("r#").to_owned();
        let metas = attr
            .parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)
            .map_err(|e| format!("field {rust_name}: {e}"))?;
        fields.push(
            parse_field(module, rust_name.clone(), &metas, &field.ty)
                .map_err(|e| format!("field {rust_name}: {e}"))?,
        );
    }
    Ok(PbStruct {
        module: module.to_vec(),
        rust_name: s.ident.to_string(),
        fields,
        slice_wrapper: doc_text(&s.attrs).contains(SLICE_WRAPPER_MARKER),
    })
}

fn parse_field(
    module: &[String],
    rust_name: String,
    metas: &Punctuated<Meta, Token![,]>,
    ty: &syn::Type,
) -> Result<PbField, String> {
    let mut scalar = None;
    let mut message = false;
    let mut repeated = false;
    let mut tag = None;
    let mut map = None;
    for meta in metas {
        match meta {
            Meta::Path(p) => {
                let word = p.get_ident().map(|i| i.to_string()).unwrap_or_default();
                match word.as_str() {
                    "optional" | "boxed" => {}
                    "repeated" => repeated = true,
                    "message" => message = true,
                    w => scalar = Some(Scalar::parse(w).ok_or(format!("unknown prost word {w}"))?),
                }
            }
            Meta::NameValue(nv) => {
                let key = nv
                    .path
                    .get_ident()
                    .map(|i| i.to_string())
                    .unwrap_or_default();
                let Expr::Lit(l) = &nv.value else {
                    return Err(format!("{key}: not a literal"));
                };
                let Lit::Str(v) = &l.lit else {
                    return Err(format!("{key}: not a string"));
                };
                let v = v.value();
                match key.as_str() {
                    "tag" => tag = Some(v.parse::<u32>().map_err(|e| format!("tag {v}: {e}"))?),
                    "bytes" => scalar = Some(Scalar::Bytes),
                    "packed" => {}
                    "map" | "btree_map" => map = Some(v),
                    other => return Err(format!("unknown prost attribute {other}")),
                }
            }
            Meta::List(_) => return Err("unexpected nested prost attribute".into()),
        }
    }
    let tag = tag.ok_or("missing tag")?;
    let ty = if let Some(spec) = map {
        let (k, v) = spec.split_once(',').ok_or(format!("bad map spec {spec}"))?;
        if k.trim() != "string" {
            return Err(format!("map key {k} is not string"));
        }
        let value = match v.trim() {
            "message" => MapValue::Message(message_ref(module, ty)?),
            other => MapValue::Scalar(Scalar::parse(other).ok_or(format!("map value {other}"))?),
        };
        PbType::Map(value)
    } else if message {
        PbType::Message(message_ref(module, ty)?)
    } else {
        PbType::Scalar(scalar.ok_or("no scalar type")?)
    };
    Ok(PbField {
        rust_name,
        tag,
        repeated,
        ty,
    })
}

/// Finds the message type inside `Option<..>`, `Vec<..>`, `Box<..>` or a map's value position and
/// resolves it against the current module.
fn message_ref(module: &[String], ty: &syn::Type) -> Result<TypeRef, String> {
    let path = innermost_path(ty).ok_or("no message type path")?;
    resolve(module, path)
}

fn innermost_path(ty: &syn::Type) -> Option<&syn::Path> {
    let syn::Type::Path(tp) = ty else { return None };
    let last = tp.path.segments.last()?;
    let args: Vec<&syn::Type> = match &last.arguments {
        syn::PathArguments::AngleBracketed(a) => a
            .args
            .iter()
            .filter_map(|g| {
                if let syn::GenericArgument::Type(t) = g {
                    Some(t)
                } else {
                    None
                }
            })
            .collect(),
        _ => Vec::new(),
    };
    match last.ident.to_string().as_str() {
        "Option" | "Vec" | "Box" => innermost_path(args.first()?),
        "BTreeMap" | "HashMap" => innermost_path(args.get(1)?),
        _ => Some(&tp.path),
    }
}

fn resolve(module: &[String], path: &syn::Path) -> Result<TypeRef, String> {
    let segs: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    let (name, prefix) = segs.split_last().ok_or("empty path")?;
    let mut base: Vec<String> = if prefix.first().is_some_and(|s| s == "crate") {
        Vec::new()
    } else {
        module.to_vec()
    };
    for seg in prefix {
        match seg.as_str() {
            "crate" => {}
            "super" => {
                base.pop().ok_or("super above crate root")?;
            }
            other => base.push(other.to_owned()),
        }
    }
    Ok(TypeRef {
        module: base,
        name: name.clone(),
    })
}

fn parse_resource_impl(module: &[String], i: &syn::ItemImpl) -> Option<PbResource> {
    let (_, trait_path, _) = i.trait_.as_ref()?;
    if trait_path.segments.last()?.ident != "Resource" {
        return None;
    }
    let syn::Type::Path(self_ty) = i.self_ty.as_ref() else {
        return None;
    };
    let rust_name = self_ty.path.segments.last()?.ident.to_string();
    let mut api_version = None;
    let mut kind = None;
    for item in &i.items {
        if let syn::ImplItem::Const(c) = item
            && let Expr::Lit(l) = &c.expr
            && let Lit::Str(s) = &l.lit
        {
            match c.ident.to_string().as_str() {
                "API_VERSION" => api_version = Some(s.value()),
                "KIND" => kind = Some(s.value()),
                _ => {}
            }
        }
    }
    Some(PbResource {
        module: module.to_vec(),
        rust_name,
        api_version: api_version?,
        kind: kind?,
    })
}
