//! What field management needs to know about a type: how each node merges. Built-in kinds get
//! it from the OpenAPI schema (list types, map keys, atomic structs); values without a schema
//! are "deduced" as upstream does (maps granular, lists atomic).

/// How a list merges (`x-kubernetes-list-type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListType {
    /// Replaced as a whole.
    Atomic,
    /// Items are scalars, identified by value.
    Set,
    /// Items are objects identified by these key fields (`x-kubernetes-list-map-keys`).
    Map(Vec<String>),
}

/// The shape of a schema node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// A leaf.
    Scalar,
    /// An object with declared fields; `atomic` (`x-kubernetes-map-type: atomic`) makes it a leaf.
    Struct { atomic: bool },
    /// An object with arbitrary keys (`additionalProperties`).
    Map { atomic: bool },
    /// An array.
    List(ListType),
    /// Anything (`x-kubernetes-preserve-unknown-fields`, RawExtension): deduced from the value.
    Untyped,
}

/// A node of a type's schema. `None` from `field`/`element` means "no schema": the value below is
/// deduced.
pub trait SchemaNode: Sized + Clone {
    /// The node's shape.
    fn shape(&self) -> Shape;
    /// The schema of a declared field of a struct.
    fn field(&self, name: &str) -> Option<Self>;
    /// The schema of map values or list items.
    fn element(&self) -> Option<Self>;
    /// The default of a key field of associative-list items, when the item omits it (upstream
    /// fills `protocol: TCP` for ports this way).
    fn key_default(&self, _key: &str) -> Option<serde_json::Value> {
        None
    }
}

/// The schema of values nothing is known about.
#[derive(Debug, Clone, Copy, Default)]
pub struct Deduced;

impl SchemaNode for Deduced {
    fn shape(&self) -> Shape {
        Shape::Untyped
    }
    fn field(&self, _name: &str) -> Option<Self> {
        None
    }
    fn element(&self) -> Option<Self> {
        None
    }
}

/// A schema node behind a trait object, so schema providers (OpenAPI for built-in kinds, CRD
/// schemas) can be plugged in where generic code cannot name their types.
pub trait DynSchemaNode: Send + Sync {
    /// The node's shape.
    fn shape(&self) -> Shape;
    /// The schema of a declared field of a struct.
    fn field(&self, name: &str) -> Option<DynSchema>;
    /// The schema of map values or list items.
    fn element(&self) -> Option<DynSchema>;
    /// The default of a key field of associative-list items.
    fn key_default(&self, _key: &str) -> Option<serde_json::Value> {
        None
    }
}

/// A shared, type-erased schema node.
#[derive(Clone)]
pub struct DynSchema(pub std::sync::Arc<dyn DynSchemaNode>);

impl std::fmt::Debug for DynSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DynSchema({:?})", self.0.shape())
    }
}

impl SchemaNode for DynSchema {
    fn shape(&self) -> Shape {
        self.0.shape()
    }
    fn field(&self, name: &str) -> Option<Self> {
        self.0.field(name)
    }
    fn element(&self) -> Option<Self> {
        self.0.element()
    }
    fn key_default(&self, key: &str) -> Option<serde_json::Value> {
        self.0.key_default(key)
    }
}
