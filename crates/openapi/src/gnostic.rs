//! `/openapi/v2` in protobuf (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`):
//! the `openapi.v2.Document` message of google/gnostic's `openapiv2/OpenAPIv2.proto`, which
//! kubectl ≤1.27 downloads for apply, diff and explain (and newer kubectl for `kind: List`
//! manifests). Only the messages and fields a Kubernetes document uses are declared; field
//! numbers are those of the .proto. Values of `default`, `enum`, `example` and vendor extensions
//! are `Any { yaml }`, where YAML text is expected; JSON text is valid YAML, so it is used as is.

use prost::Message;
use serde_json::{Map, Value};

/// `openapi.v2.Document`.
#[derive(Clone, PartialEq, Message)]
pub struct Document {
    /// `swagger`, "2.0".
    #[prost(string, tag = "1")]
    pub swagger: String,
    /// `info`.
    #[prost(message, optional, tag = "2")]
    pub info: Option<Info>,
    /// `paths`.
    #[prost(message, optional, tag = "8")]
    pub paths: Option<Paths>,
    /// `definitions`.
    #[prost(message, optional, tag = "9")]
    pub definitions: Option<Definitions>,
    /// Vendor extensions of the document.
    #[prost(message, repeated, tag = "16")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.Info`.
#[derive(Clone, PartialEq, Message)]
pub struct Info {
    /// `title`.
    #[prost(string, tag = "1")]
    pub title: String,
    /// `version`.
    #[prost(string, tag = "2")]
    pub version: String,
}

/// `openapi.v2.Any`: a value as YAML text.
#[derive(Clone, PartialEq, Message)]
pub struct Any {
    /// `yaml`.
    #[prost(string, tag = "2")]
    pub yaml: String,
}

/// `openapi.v2.NamedAny`.
#[derive(Clone, PartialEq, Message)]
pub struct NamedAny {
    /// Key.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Value.
    #[prost(message, optional, tag = "2")]
    pub value: Option<Any>,
}

/// `openapi.v2.Definitions`.
#[derive(Clone, PartialEq, Message)]
pub struct Definitions {
    /// Named schemas.
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedSchema>,
}

/// `openapi.v2.NamedSchema`.
#[derive(Clone, PartialEq, Message)]
pub struct NamedSchema {
    /// Key.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Value.
    #[prost(message, optional, tag = "2")]
    pub value: Option<Schema>,
}

/// `openapi.v2.Properties`.
#[derive(Clone, PartialEq, Message)]
pub struct Properties {
    /// Named schemas.
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedSchema>,
}

/// `openapi.v2.TypeItem`.
#[derive(Clone, PartialEq, Message)]
pub struct TypeItem {
    /// Type names.
    #[prost(string, repeated, tag = "1")]
    pub value: Vec<String>,
}

/// `openapi.v2.ItemsItem`.
#[derive(Clone, PartialEq, Message)]
pub struct ItemsItem {
    /// Item schemas.
    #[prost(message, repeated, tag = "1")]
    pub schema: Vec<Schema>,
}

/// `openapi.v2.AdditionalPropertiesItem`.
#[derive(Clone, PartialEq, Message)]
pub struct AdditionalPropertiesItem {
    /// `oneof oneof`.
    #[prost(oneof = "AdditionalProperties", tags = "1, 2")]
    pub oneof: Option<AdditionalProperties>,
}

/// The `oneof` of [`AdditionalPropertiesItem`].
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum AdditionalProperties {
    /// A schema for the values.
    #[prost(message, tag = "1")]
    Schema(Box<Schema>),
    /// `true` / `false`.
    #[prost(bool, tag = "2")]
    Boolean(bool),
}

/// `openapi.v2.Schema`.
#[derive(Clone, PartialEq, Message)]
pub struct Schema {
    /// `$ref`.
    #[prost(string, tag = "1")]
    pub xref: String,
    /// `format`.
    #[prost(string, tag = "2")]
    pub format: String,
    /// `title`.
    #[prost(string, tag = "3")]
    pub title: String,
    /// `description`.
    #[prost(string, tag = "4")]
    pub description: String,
    /// `default`.
    #[prost(message, optional, tag = "5")]
    pub default: Option<Any>,
    /// `maximum`.
    #[prost(double, tag = "7")]
    pub maximum: f64,
    /// `minimum`.
    #[prost(double, tag = "9")]
    pub minimum: f64,
    /// `maxLength`.
    #[prost(int64, tag = "11")]
    pub max_length: i64,
    /// `minLength`.
    #[prost(int64, tag = "12")]
    pub min_length: i64,
    /// `pattern`.
    #[prost(string, tag = "13")]
    pub pattern: String,
    /// `maxItems`.
    #[prost(int64, tag = "14")]
    pub max_items: i64,
    /// `minItems`.
    #[prost(int64, tag = "15")]
    pub min_items: i64,
    /// `uniqueItems`.
    #[prost(bool, tag = "16")]
    pub unique_items: bool,
    /// `required`.
    #[prost(string, repeated, tag = "19")]
    pub required: Vec<String>,
    /// `enum`.
    #[prost(message, repeated, tag = "20")]
    pub r#enum: Vec<Any>,
    /// `additionalProperties`.
    #[prost(message, optional, boxed, tag = "21")]
    pub additional_properties: Option<Box<AdditionalPropertiesItem>>,
    /// `type`.
    #[prost(message, optional, tag = "22")]
    pub r#type: Option<TypeItem>,
    /// `items`.
    #[prost(message, optional, tag = "23")]
    pub items: Option<ItemsItem>,
    /// `allOf`.
    #[prost(message, repeated, tag = "24")]
    pub all_of: Vec<Schema>,
    /// `properties`.
    #[prost(message, optional, tag = "25")]
    pub properties: Option<Properties>,
    /// `readOnly`.
    #[prost(bool, tag = "27")]
    pub read_only: bool,
    /// `example`.
    #[prost(message, optional, tag = "30")]
    pub example: Option<Any>,
    /// `x-…` extensions.
    #[prost(message, repeated, tag = "31")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.Paths`.
#[derive(Clone, PartialEq, Message)]
pub struct Paths {
    /// Named path items.
    #[prost(message, repeated, tag = "2")]
    pub path: Vec<NamedPathItem>,
}

/// `openapi.v2.NamedPathItem`.
#[derive(Clone, PartialEq, Message)]
pub struct NamedPathItem {
    /// The path.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Its operations.
    #[prost(message, optional, tag = "2")]
    pub value: Option<PathItem>,
}

/// `openapi.v2.PathItem`.
#[derive(Clone, PartialEq, Message)]
pub struct PathItem {
    /// GET.
    #[prost(message, optional, tag = "2")]
    pub get: Option<Operation>,
    /// PUT.
    #[prost(message, optional, tag = "3")]
    pub put: Option<Operation>,
    /// POST.
    #[prost(message, optional, tag = "4")]
    pub post: Option<Operation>,
    /// DELETE.
    #[prost(message, optional, tag = "5")]
    pub delete: Option<Operation>,
    /// PATCH.
    #[prost(message, optional, tag = "8")]
    pub patch: Option<Operation>,
    /// Parameters shared by the operations.
    #[prost(message, repeated, tag = "9")]
    pub parameters: Vec<ParametersItem>,
}

/// `openapi.v2.Operation`.
#[derive(Clone, PartialEq, Message)]
pub struct Operation {
    /// `tags`.
    #[prost(string, repeated, tag = "1")]
    pub tags: Vec<String>,
    /// `description`.
    #[prost(string, tag = "3")]
    pub description: String,
    /// `operationId`.
    #[prost(string, tag = "5")]
    pub operation_id: String,
    /// `produces`.
    #[prost(string, repeated, tag = "6")]
    pub produces: Vec<String>,
    /// `consumes`.
    #[prost(string, repeated, tag = "7")]
    pub consumes: Vec<String>,
    /// `parameters`.
    #[prost(message, repeated, tag = "8")]
    pub parameters: Vec<ParametersItem>,
    /// `responses`.
    #[prost(message, optional, tag = "9")]
    pub responses: Option<Responses>,
    /// `schemes`.
    #[prost(string, repeated, tag = "10")]
    pub schemes: Vec<String>,
    /// `x-…` extensions.
    #[prost(message, repeated, tag = "13")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.ParametersItem` (only the `parameter` arm; rkube inlines parameters).
#[derive(Clone, PartialEq, Message)]
pub struct ParametersItem {
    /// `oneof oneof { Parameter parameter = 1; }`.
    #[prost(message, optional, tag = "1")]
    pub parameter: Option<Parameter>,
}

/// `openapi.v2.Parameter`.
#[derive(Clone, PartialEq, Message)]
pub struct Parameter {
    /// `oneof oneof`.
    #[prost(oneof = "ParameterKind", tags = "1, 2")]
    pub oneof: Option<ParameterKind>,
}

/// The `oneof` of [`Parameter`].
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum ParameterKind {
    /// `in: body`.
    #[prost(message, tag = "1")]
    Body(Box<BodyParameter>),
    /// Query or path parameters.
    #[prost(message, tag = "2")]
    NonBody(NonBodyParameter),
}

/// `openapi.v2.BodyParameter`.
#[derive(Clone, PartialEq, Message)]
pub struct BodyParameter {
    /// `description`.
    #[prost(string, tag = "1")]
    pub description: String,
    /// `name`.
    #[prost(string, tag = "2")]
    pub name: String,
    /// `in`.
    #[prost(string, tag = "3")]
    pub r#in: String,
    /// `required`.
    #[prost(bool, tag = "4")]
    pub required: bool,
    /// `schema`.
    #[prost(message, optional, tag = "5")]
    pub schema: Option<Schema>,
}

/// `openapi.v2.NonBodyParameter`.
#[derive(Clone, PartialEq, Message)]
pub struct NonBodyParameter {
    /// `oneof oneof`.
    #[prost(oneof = "NonBodyKind", tags = "3, 4")]
    pub oneof: Option<NonBodyKind>,
}

/// The `oneof` of [`NonBodyParameter`] (header and form-data parameters are not used).
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum NonBodyKind {
    /// `query_parameter_sub_schema`.
    #[prost(message, tag = "3")]
    Query(QueryParameterSubSchema),
    /// `path_parameter_sub_schema`.
    #[prost(message, tag = "4")]
    Path(PathParameterSubSchema),
}

/// `openapi.v2.QueryParameterSubSchema`.
#[derive(Clone, PartialEq, Message)]
pub struct QueryParameterSubSchema {
    /// `required`.
    #[prost(bool, tag = "1")]
    pub required: bool,
    /// `in`.
    #[prost(string, tag = "2")]
    pub r#in: String,
    /// `description`.
    #[prost(string, tag = "3")]
    pub description: String,
    /// `name`.
    #[prost(string, tag = "4")]
    pub name: String,
    /// `type`.
    #[prost(string, tag = "6")]
    pub r#type: String,
    /// `uniqueItems`.
    #[prost(bool, tag = "20")]
    pub unique_items: bool,
}

/// `openapi.v2.PathParameterSubSchema`.
#[derive(Clone, PartialEq, Message)]
pub struct PathParameterSubSchema {
    /// `required`.
    #[prost(bool, tag = "1")]
    pub required: bool,
    /// `in`.
    #[prost(string, tag = "2")]
    pub r#in: String,
    /// `description`.
    #[prost(string, tag = "3")]
    pub description: String,
    /// `name`.
    #[prost(string, tag = "4")]
    pub name: String,
    /// `type`.
    #[prost(string, tag = "5")]
    pub r#type: String,
    /// `uniqueItems`.
    #[prost(bool, tag = "19")]
    pub unique_items: bool,
}

/// `openapi.v2.Responses`.
#[derive(Clone, PartialEq, Message)]
pub struct Responses {
    /// Responses by status code.
    #[prost(message, repeated, tag = "1")]
    pub response_code: Vec<NamedResponseValue>,
}

/// `openapi.v2.NamedResponseValue`.
#[derive(Clone, PartialEq, Message)]
pub struct NamedResponseValue {
    /// Status code.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The response.
    #[prost(message, optional, tag = "2")]
    pub value: Option<ResponseValue>,
}

/// `openapi.v2.ResponseValue` (only the `response` arm).
#[derive(Clone, PartialEq, Message)]
pub struct ResponseValue {
    /// `oneof oneof { Response response = 1; }`.
    #[prost(message, optional, tag = "1")]
    pub response: Option<Response>,
}

/// `openapi.v2.Response`.
#[derive(Clone, PartialEq, Message)]
pub struct Response {
    /// `description`.
    #[prost(string, tag = "1")]
    pub description: String,
    /// `schema`.
    #[prost(message, optional, tag = "2")]
    pub schema: Option<SchemaItem>,
}

/// `openapi.v2.SchemaItem` (only the `schema` arm).
#[derive(Clone, PartialEq, Message)]
pub struct SchemaItem {
    /// `oneof oneof { Schema schema = 1; }`.
    #[prost(message, optional, tag = "1")]
    pub schema: Option<Schema>,
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect()
}

fn any(v: &Value) -> Any {
    Any { yaml: v.to_string() }
}

fn extensions(v: &Value) -> Vec<NamedAny> {
    v.as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.starts_with("x-"))
        .map(|(k, v)| NamedAny { name: k.clone(), value: Some(any(v)) })
        .collect()
}

fn named_schemas(m: &Map<String, Value>) -> Vec<NamedSchema> {
    m.iter().map(|(name, s)| NamedSchema { name: name.clone(), value: Some(schema(s)) }).collect()
}

/// Converts one Swagger 2.0 schema.
pub fn schema(v: &Value) -> Schema {
    let int = |k: &str| v.get(k).and_then(Value::as_i64).unwrap_or_default();
    let float = |k: &str| v.get(k).and_then(Value::as_f64).unwrap_or_default();
    let additional_properties = match v.get("additionalProperties") {
        Some(Value::Bool(b)) => Some(Box::new(AdditionalPropertiesItem { oneof: Some(AdditionalProperties::Boolean(*b)) })),
        Some(s @ Value::Object(_)) => {
            Some(Box::new(AdditionalPropertiesItem { oneof: Some(AdditionalProperties::Schema(Box::new(schema(s)))) }))
        }
        _ => None,
    };
    let items = match v.get("items") {
        Some(Value::Array(a)) => Some(ItemsItem { schema: a.iter().map(schema).collect() }),
        Some(s @ Value::Object(_)) => Some(ItemsItem { schema: vec![schema(s)] }),
        _ => None,
    };
    let r#type = match v.get("type") {
        Some(Value::String(t)) => Some(TypeItem { value: vec![t.clone()] }),
        Some(Value::Array(_)) => Some(TypeItem { value: strings(v, "type") }),
        _ => None,
    };
    Schema {
        xref: text(v, "$ref"),
        format: text(v, "format"),
        title: text(v, "title"),
        description: text(v, "description"),
        default: v.get("default").map(any),
        maximum: float("maximum"),
        minimum: float("minimum"),
        max_length: int("maxLength"),
        min_length: int("minLength"),
        pattern: text(v, "pattern"),
        max_items: int("maxItems"),
        min_items: int("minItems"),
        unique_items: v.get("uniqueItems").and_then(Value::as_bool).unwrap_or_default(),
        required: strings(v, "required"),
        r#enum: v.get("enum").and_then(Value::as_array).into_iter().flatten().map(any).collect(),
        additional_properties,
        r#type,
        items,
        all_of: v.get("allOf").and_then(Value::as_array).into_iter().flatten().map(schema).collect(),
        properties: v.get("properties").and_then(Value::as_object).map(|m| Properties { additional_properties: named_schemas(m) }),
        read_only: v.get("readOnly").and_then(Value::as_bool).unwrap_or_default(),
        example: v.get("example").map(any),
        vendor_extension: extensions(v),
    }
}

fn parameter(p: &Value) -> ParametersItem {
    let location = text(p, "in");
    let kind = match location.as_str() {
        "body" => ParameterKind::Body(Box::new(BodyParameter {
            description: text(p, "description"),
            name: text(p, "name"),
            r#in: location,
            required: p.get("required").and_then(Value::as_bool).unwrap_or_default(),
            schema: p.get("schema").map(schema),
        })),
        "path" => ParameterKind::NonBody(NonBodyParameter {
            oneof: Some(NonBodyKind::Path(PathParameterSubSchema {
                required: true,
                r#in: location,
                description: text(p, "description"),
                name: text(p, "name"),
                r#type: text(p, "type"),
                unique_items: p.get("uniqueItems").and_then(Value::as_bool).unwrap_or_default(),
            })),
        }),
        _ => ParameterKind::NonBody(NonBodyParameter {
            oneof: Some(NonBodyKind::Query(QueryParameterSubSchema {
                required: p.get("required").and_then(Value::as_bool).unwrap_or_default(),
                r#in: location,
                description: text(p, "description"),
                name: text(p, "name"),
                r#type: text(p, "type"),
                unique_items: p.get("uniqueItems").and_then(Value::as_bool).unwrap_or_default(),
            })),
        }),
    };
    ParametersItem { parameter: Some(Parameter { oneof: Some(kind) }) }
}

fn parameters(v: &Value) -> Vec<ParametersItem> {
    v.get("parameters").and_then(Value::as_array).into_iter().flatten().map(parameter).collect()
}

fn operation(v: &Value) -> Operation {
    let responses = v.get("responses").and_then(Value::as_object).map(|m| Responses {
        response_code: m
            .iter()
            .map(|(code, r)| NamedResponseValue {
                name: code.clone(),
                value: Some(ResponseValue {
                    response: Some(Response {
                        description: text(r, "description"),
                        schema: r.get("schema").map(|s| SchemaItem { schema: Some(schema(s)) }),
                    }),
                }),
            })
            .collect(),
    });
    Operation {
        tags: strings(v, "tags"),
        description: text(v, "description"),
        operation_id: text(v, "operationId"),
        produces: strings(v, "produces"),
        consumes: strings(v, "consumes"),
        parameters: parameters(v),
        responses,
        schemes: strings(v, "schemes"),
        vendor_extension: extensions(v),
    }
}

/// Converts a Swagger 2.0 document (as rkube builds it) to gnostic's message.
pub fn document(v: &Value) -> Document {
    let paths = v.get("paths").and_then(Value::as_object).map(|m| Paths {
        path: m
            .iter()
            .map(|(name, item)| {
                let op = |method: &str| item.get(method).map(operation);
                NamedPathItem {
                    name: name.clone(),
                    value: Some(PathItem {
                        get: op("get"),
                        put: op("put"),
                        post: op("post"),
                        delete: op("delete"),
                        patch: op("patch"),
                        parameters: parameters(item),
                    }),
                }
            })
            .collect(),
    });
    let info = v.get("info").map(|i| Info { title: text(i, "title"), version: text(i, "version") });
    Document {
        swagger: text(v, "swagger"),
        info,
        paths,
        definitions: v.get("definitions").and_then(Value::as_object).map(|m| Definitions { additional_properties: named_schemas(m) }),
        vendor_extension: extensions(v),
    }
}

/// Encodes a Swagger 2.0 document as gnostic protobuf.
pub fn encode(v: &Value) -> Vec<u8> {
    document(v).encode_to_vec()
}
