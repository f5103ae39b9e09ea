//! Label and field selectors (apimachinery `pkg/labels/selector.go`, `pkg/fields/selector.go`).
//!
//! - [`LabelSelector`]: the `labelSelector` query syntax (`a=b`, `a!=b`, `a in (x,y)`,
//!   `a notin (x)`, `a`, `!a`, `a>1`, `a<1`, comma = AND), and `metav1.LabelSelector` objects
//!   (`matchLabels` + `matchExpressions`) converted into the same type.
//! - [`FieldSelector`]: the `fieldSelector` query syntax (`a=b`, `a==b`, `a!=b`, comma = AND,
//!   `\` escapes `\`, `,` and `=` in values).
//!
//! Parse failures carry upstream's exact message text, so the API server can return it verbatim
//! in a 400 `BadRequest` Status, as kube-apiserver does.

mod fields;
mod label_parser;
mod labels;
mod validation;

pub use fields::{FieldOperator, FieldRequirement, FieldSelector, escape_field_value};
pub use labels::{LabelSelector, Operator, Requirement};
pub use validation::{is_dns1123_subdomain, is_qualified_name, is_valid_label_value};

/// A selector that could not be parsed or converted. `Display` is upstream's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// A `labelSelector` string did not parse (upstream `labels.Parse`), e.g.
    /// `unable to parse requirement: <nil>: Invalid value: "a b": …`.
    #[error("{0}")]
    Label(String),
    /// A requirement built from parts was invalid (upstream `labels.NewRequirement`), or a
    /// `metav1.LabelSelector` could not be converted (`metav1.LabelSelectorAsSelector`).
    #[error("{0}")]
    Requirement(String),
    /// A `fieldSelector` string did not parse (upstream `fields.ParseSelector`).
    #[error("{0}")]
    Field(String),
}

impl SelectorError {
    /// The message text, identical to `to_string()`.
    pub fn message(&self) -> &str {
        match self {
            Self::Label(m) | Self::Requirement(m) | Self::Field(m) => m,
        }
    }
}
