//! Label selectors: parsing, `metav1.LabelSelector` conversion and matching
//! (apimachinery `pkg/labels/selector.go`, `pkg/apis/meta/v1/helpers.go`).

use std::fmt;

use serde_json::{Map, Value};

use super::SelectorError;
use super::label_parser::Parser;
use super::validation::{
    aggregate, go_quote, go_string_slice, invalid, is_qualified_name, is_valid_label_value,
};

/// How a [`Requirement`] relates a label key to its values (upstream `selection.Operator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `key in (a,b)`: the key exists and its value is one of the values.
    In,
    /// `key notin (a,b)`: the key is absent or its value is none of the values.
    NotIn,
    /// `key=a`
    Equals,
    /// `key==a` (same meaning as `=`; kept apart so the selector prints back as written).
    DoubleEquals,
    /// `key!=a`: the key is absent or has another value.
    NotEquals,
    /// `key`: the key exists.
    Exists,
    /// `!key`: the key does not exist.
    DoesNotExist,
    /// `key>1`: the key exists and its value, as an integer, is greater.
    GreaterThan,
    /// `key<1`: the key exists and its value, as an integer, is smaller.
    LessThan,
}

impl Operator {
    /// Upstream's `selection.Operator` string (`in`, `notin`, `=`, `==`, `!=`, `exists`, `!`,
    /// `gt`, `lt`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::In => "in",
            Self::NotIn => "notin",
            Self::Equals => "=",
            Self::DoubleEquals => "==",
            Self::NotEquals => "!=",
            Self::Exists => "exists",
            Self::DoesNotExist => "!",
            Self::GreaterThan => "gt",
            Self::LessThan => "lt",
        }
    }
}

/// One clause of a label selector: a key, an operator and its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// Builds a validated requirement, as upstream `labels.NewRequirement(key, op, values)`:
    /// the key must be a qualified name; `In`/`NotIn` need at least one value; `=`, `==`, `!=`,
    /// `gt`, `lt` exactly one (an integer for `gt`/`lt`); `Exists`/`DoesNotExist` none; every
    /// value must be a valid label value. The error text is upstream's (`key: Invalid value: …`).
    pub fn new(
        key: impl Into<String>,
        operator: Operator,
        values: Vec<String>,
    ) -> Result<Self, SelectorError> {
        Self::build(key.into(), operator, values).map_err(SelectorError::Requirement)
    }

    /// `NewRequirement` with upstream's field paths rooted at nil (`key`, `values`,
    /// `values[i][key]`), which is also what the string parser passes.
    pub(super) fn build(
        key: String,
        operator: Operator,
        values: Vec<String>,
    ) -> Result<Self, String> {
        let mut errs = Vec::new();
        let key_errs = is_qualified_name(&key);
        if !key_errs.is_empty() {
            errs.push(invalid("key", &go_quote(&key), &key_errs.join("; ")));
        }
        let rendered = || go_string_slice(&values);
        match operator {
            Operator::In | Operator::NotIn => {
                if values.is_empty() {
                    errs.push(invalid(
                        "values",
                        &rendered(),
                        "for 'in', 'notin' operators, values set can't be empty",
                    ));
                }
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
                if values.len() != 1 {
                    errs.push(invalid(
                        "values",
                        &rendered(),
                        "exact-match compatibility requires one single value",
                    ));
                }
            }
            Operator::Exists | Operator::DoesNotExist => {
                if !values.is_empty() {
                    errs.push(invalid(
                        "values",
                        &rendered(),
                        "values set must be empty for exists and does not exist",
                    ));
                }
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(invalid(
                        "values",
                        &rendered(),
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(invalid(
                            &format!("values[{i}]"),
                            &go_quote(v),
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
        }
        for (i, v) in values.iter().enumerate() {
            let value_errs = is_valid_label_value(v);
            if !value_errs.is_empty() {
                errs.push(invalid(
                    &format!("values[{i}][{key}]"),
                    &go_quote(v),
                    &value_errs.join("; "),
                ));
            }
        }
        match aggregate(errs) {
            Some(message) => Err(message),
            None => Ok(Requirement {
                key,
                operator,
                values,
            }),
        }
    }

    /// The label key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values as given (the string parser sorts and deduplicates them, as upstream does).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether the labels satisfy this requirement (upstream `Requirement.Matches`). A label whose
    /// JSON value is not a string counts as absent.
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        let value = labels.get(&self.key).and_then(Value::as_str);
        let has_value = |v: &str| self.values.iter().any(|x| x == v);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                value.is_some_and(has_value)
            }
            Operator::NotIn | Operator::NotEquals => !value.is_some_and(has_value),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                // Upstream quietly fails to match on anything that is not an int64.
                let (Some(actual), [wanted]) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    self.values.as_slice(),
                ) else {
                    return false;
                };
                let Ok(wanted) = wanted.parse::<i64>() else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    actual > wanted
                } else {
                    actual < wanted
                }
            }
        }
    }
}

/// Upstream `Requirement.String()`: `!key`, `key`, `key=v`, `key in (a,b)` (values sorted).
impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let (op, parens) = match self.operator {
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
            Operator::Equals => ("=", false),
            Operator::DoubleEquals => ("==", false),
            Operator::NotEquals => ("!=", false),
            Operator::In => (" in ", true),
            Operator::NotIn => (" notin ", true),
            Operator::GreaterThan => (">", false),
            Operator::LessThan => ("<", false),
        };
        f.write_str(op)?;
        if parens {
            f.write_str("(")?;
        }
        let mut sorted: Vec<&str> = self.values.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        f.write_str(&sorted.join(","))?;
        if parens {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A parsed label selector: the AND of its requirements, kept sorted by key as upstream does.
///
/// The default value selects everything. [`LabelSelector::nothing`] (what a JSON `null`
/// selector converts to) selects nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

impl LabelSelector {
    /// A selector that matches every object (upstream `labels.Everything()`).
    pub fn everything() -> Self {
        Self::default()
    }

    /// A selector that matches no object (upstream `labels.Nothing()`).
    pub fn nothing() -> Self {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Parses the `labelSelector` query syntax (upstream `labels.Parse`). The empty string
    /// selects everything. Errors carry upstream's text, e.g.
    /// `unable to parse requirement: <nil>: Invalid value: "a b": …` or
    /// `found 'c', expected: ',' or 'end of string'`.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut requirements = Parser::new(s).parse().map_err(SelectorError::Label)?;
        // Upstream sorts by key "to grant deterministic parsing"; a stable sort keeps the
        // written order among clauses on the same key.
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// Converts a `metav1.LabelSelector` JSON value (upstream `metav1.LabelSelectorAsSelector`):
    /// `null` selects nothing; an object without `matchLabels`/`matchExpressions` selects
    /// everything; otherwise every `matchLabels` entry becomes `key=value` and every expression
    /// (`In`, `NotIn`, `Exists`, `DoesNotExist`) its requirement.
    pub fn from_label_selector_json(v: &Value) -> Result<Self, SelectorError> {
        let obj = match v {
            Value::Null => return Ok(Self::nothing()),
            Value::Object(obj) => obj,
            other => return Err(json_type_error(other, "Go value of type v1.LabelSelector")),
        };
        let mut requirements = Vec::new();
        match obj.get("matchLabels") {
            None | Some(Value::Null) => {}
            Some(Value::Object(labels)) => {
                for (k, v) in labels {
                    let Value::String(v) = v else {
                        return Err(json_type_error(
                            v,
                            "Go struct field LabelSelector.matchLabels of type string",
                        ));
                    };
                    requirements.push(Requirement::new(
                        k.clone(),
                        Operator::Equals,
                        vec![v.clone()],
                    )?);
                }
            }
            Some(other) => {
                return Err(json_type_error(
                    other,
                    "Go struct field LabelSelector.matchLabels of type map[string]string",
                ));
            }
        }
        match obj.get("matchExpressions") {
            None | Some(Value::Null) => {}
            Some(Value::Array(exprs)) => {
                for expr in exprs {
                    requirements.push(expression_requirement(expr)?);
                }
            }
            Some(other) => {
                return Err(json_type_error(
                    other,
                    "Go struct field LabelSelector.matchExpressions of type []v1.LabelSelectorRequirement",
                ));
            }
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// A selector requiring exactly these labels (upstream `labels.ValidatedSelectorFromSet`),
    /// e.g. a Service's `spec.selector`. An empty map selects everything.
    pub fn from_set(labels: &Map<String, Value>) -> Result<Self, SelectorError> {
        let mut requirements = Vec::with_capacity(labels.len());
        for (k, v) in labels {
            let Value::String(v) = v else {
                return Err(json_type_error(v, "Go value of type string"));
            };
            requirements.push(Requirement::new(
                k.clone(),
                Operator::Equals,
                vec![v.clone()],
            )?);
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// Adds a requirement, keeping the list sorted by key (upstream `Selector.Add`). Adding to
    /// [`LabelSelector::nothing`] leaves it matching nothing.
    pub fn add(&mut self, requirement: Requirement) {
        if self.nothing {
            return;
        }
        let at = self
            .requirements
            .partition_point(|r| r.key <= requirement.key);
        self.requirements.insert(at, requirement);
    }

    /// Whether the labels (an object's `metadata.labels`) satisfy every requirement.
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether an object satisfies the selector, reading its `metadata.labels` (missing or not an
    /// object counts as no labels).
    pub fn matches_object(&self, object: &Value) -> bool {
        match object
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
        {
            Some(labels) => self.matches(labels),
            None => self.matches(&Map::new()),
        }
    }

    /// Whether the selector does not restrict anything (upstream `Selector.Empty()`): true for
    /// everything, false for [`LabelSelector::nothing`].
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// Whether this is [`LabelSelector::nothing`] (upstream `labels.MatchesNothing`).
    pub fn matches_nothing(&self) -> bool {
        self.nothing
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// The single value the selector requires for `key`, if the first requirement on that key is
    /// `=`, `==` or a one-value `in` (upstream `RequiresExactMatch`); used to narrow lists.
    pub fn requires_exact_match(&self, key: &str) -> Option<&str> {
        let r = self.requirements.iter().find(|r| r.key == key)?;
        match (r.operator, r.values.as_slice()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [v]) => Some(v),
            _ => None,
        }
    }
}

/// Upstream `Selector.String()`: the requirements joined by `,` (empty for everything and
/// nothing).
impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// One `matchExpressions` entry to a requirement, as `LabelSelectorAsSelector` does.
fn expression_requirement(expr: &Value) -> Result<Requirement, SelectorError> {
    const FIELD: &str = "Go struct field LabelSelector.matchExpressions";
    let Value::Object(expr) = expr else {
        return Err(json_type_error(
            expr,
            &format!("{FIELD} of type v1.LabelSelectorRequirement"),
        ));
    };
    let string_field = |name: &str| -> Result<String, SelectorError> {
        match expr.get(name) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(json_type_error(
                other,
                &format!("{FIELD}.{name} of type string"),
            )),
        }
    };
    let key = string_field("key")?;
    let operator = string_field("operator")?;
    let operator = match operator.as_str() {
        "In" => Operator::In,
        "NotIn" => Operator::NotIn,
        "Exists" => Operator::Exists,
        "DoesNotExist" => Operator::DoesNotExist,
        other => {
            return Err(SelectorError::Requirement(format!(
                "{} is not a valid label selector operator",
                go_quote(other)
            )));
        }
    };
    let mut values = Vec::new();
    match expr.get("values") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                match item {
                    Value::String(s) => values.push(s.clone()),
                    other => {
                        return Err(json_type_error(
                            other,
                            &format!("{FIELD}.values of type string"),
                        ));
                    }
                }
            }
        }
        Some(other) => {
            return Err(json_type_error(
                other,
                &format!("{FIELD}.values of type []string"),
            ));
        }
    }
    Requirement::new(key, operator, values)
}

/// What Go's `encoding/json` says when a JSON value has the wrong type for the Go field, so a
/// malformed selector reads like the decoding error upstream would have produced.
fn json_type_error(v: &Value, target: &str) -> SelectorError {
    let found = match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    SelectorError::Requirement(format!("json: cannot unmarshal {found} into {target}"))
}

#[cfg(test)]
#[path = "labels_tests.rs"]
mod tests;
