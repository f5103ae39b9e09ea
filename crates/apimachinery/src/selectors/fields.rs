//! Field selectors (apimachinery `pkg/fields/selector.go`).
//!
//! Only `=`, `==` and `!=` exist; values may escape `\`, `,` and `=` with a backslash. Which
//! fields a resource supports (`metadata.name`, `spec.nodeName`, …) is the registry's business;
//! this module only parses and matches.

use std::collections::BTreeMap;
use std::fmt;

use super::SelectorError;

/// How a field is compared (upstream `selection.Equals` / `selection.NotEquals`; `==` parses
/// to `Equals`, as upstream's `hasTerm` does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldOperator {
    /// `field=value` or `field==value`
    Equals,
    /// `field!=value`
    NotEquals,
}

/// One term of a field selector, with its value already unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    /// Field path, e.g. `metadata.name`.
    pub field: String,
    /// Comparison.
    pub operator: FieldOperator,
    /// Literal value.
    pub value: String,
}

impl FieldRequirement {
    /// Whether the field's value satisfies the term; a missing field reads as `""`, as upstream's
    /// `fields.Set.Get` does (so `spec.nodeName=` selects unscheduled pods).
    pub fn matches(&self, actual: Option<&str>) -> bool {
        let actual = actual.unwrap_or("");
        match self.operator {
            FieldOperator::Equals => actual == self.value,
            FieldOperator::NotEquals => actual != self.value,
        }
    }
}

/// Upstream `hasTerm.String()` / `notHasTerm.String()`: the value is re-escaped.
impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            FieldOperator::Equals => "=",
            FieldOperator::NotEquals => "!=",
        };
        write!(f, "{}{op}{}", self.field, escape_field_value(&self.value))
    }
}

/// A parsed field selector: the AND of its terms. The default value selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses the `fieldSelector` query syntax (upstream `fields.ParseSelector`). Terms are
    /// sorted as strings first, as upstream does. Errors carry upstream's text, e.g.
    /// `invalid selector: 'a'; can't understand 'a'`.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut terms = split_terms(s);
        terms.sort_unstable();
        let mut requirements = Vec::with_capacity(terms.len());
        for term in terms {
            if term.is_empty() {
                continue;
            }
            let Some((field, operator, raw)) = split_term(term) else {
                return Err(SelectorError::Field(format!(
                    "invalid selector: '{s}'; can't understand '{term}'"
                )));
            };
            let value = unescape_value(raw)?;
            // Upstream's identity transform turns a term with neither field nor value (`=`)
            // into "everything", so it selects nothing away.
            if field.is_empty() && value.is_empty() {
                continue;
            }
            requirements.push(FieldRequirement {
                field: field.to_owned(),
                operator,
                value,
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// The terms, in parse order (sorted by their text).
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// Whether no term restricts anything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether an object matches, given a lookup from field path to value (`None` reads as `""`).
    pub fn matches(&self, get: &dyn Fn(&str) -> Option<String>) -> bool {
        self.requirements
            .iter()
            .all(|r| r.matches(get(&r.field).as_deref()))
    }

    /// Whether a precomputed field set (upstream `fields.Set`) matches.
    pub fn matches_set(&self, fields: &BTreeMap<String, String>) -> bool {
        self.requirements
            .iter()
            .all(|r| r.matches(fields.get(&r.field).map(String::as_str)))
    }

    /// The value the selector requires `field` to equal, if any (upstream `RequiresExactMatch`);
    /// lets a list by `metadata.name` or `spec.nodeName` be narrowed before matching.
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && r.operator == FieldOperator::Equals)
            .map(|r| r.value.as_str())
    }

    /// Rewrites every term's field and value (upstream `Transform`, used to map legacy field
    /// names or reject unsupported ones); a term rewritten to an empty field and value is dropped.
    pub fn transform<E>(
        &self,
        f: impl Fn(&str, &str) -> Result<(String, String), E>,
    ) -> Result<Self, E> {
        let mut requirements = Vec::with_capacity(self.requirements.len());
        for r in &self.requirements {
            let (field, value) = f(&r.field, &r.value)?;
            if field.is_empty() && value.is_empty() {
                continue;
            }
            requirements.push(FieldRequirement {
                field,
                operator: r.operator,
                value,
            });
        }
        Ok(FieldSelector { requirements })
    }
}

/// Upstream `String()`: the terms joined by `,`, values escaped.
impl fmt::Display for FieldSelector {
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

/// Escapes a literal for use as a field selector value (upstream `fields.EscapeValue`):
/// `\` → `\\`, `,` → `\,`, `=` → `\=`.
pub fn escape_field_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Splits on commas not preceded by a backslash, keeping escapes for `unescape_value`
/// (upstream `splitTerms`).
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// Splits at the first operator, trying `!=`, then `==`, then `=` at each position, so the
/// field itself can contain none of them (upstream `splitTerm`).
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, operator) in [
            ("!=", FieldOperator::NotEquals),
            ("==", FieldOperator::Equals),
            ("=", FieldOperator::Equals),
        ] {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((&term[..i], operator, value));
            }
        }
    }
    None
}

/// Upstream `UnescapeValue`. Note upstream prints an unescaped rune as its integer code point
/// (`%v` of a Go rune), e.g. `unescaped character in value: 61` for `=`.
fn unescape_value(s: &str) -> Result<String, SelectorError> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(SelectorError::Field(format!(
                    "invalid field selector: invalid escape sequence: \\{c}"
                )));
            }
            out.push(c);
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => {
                return Err(SelectorError::Field(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                )));
            }
            c => out.push(c),
        }
    }
    if in_slash {
        return Err(SelectorError::Field(
            "invalid field selector: invalid escape sequence: \\".to_owned(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> FieldSelector {
        match FieldSelector::parse(s) {
            Ok(f) => f,
            Err(e) => panic!("{s:?} should parse: {e}"),
        }
    }

    fn err(s: &str) -> String {
        match FieldSelector::parse(s) {
            Ok(f) => panic!("{s:?} should not parse, got {f}"),
            Err(e) => e.to_string(),
        }
    }

    fn getter<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(f, _)| *f == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn operators() {
        let obj = [("metadata.name", "web"), ("spec.nodeName", "n1")];
        let get = getter(&obj);
        for s in ["metadata.name=web", "metadata.name==web"] {
            let f = parse(s);
            assert_eq!(f.requirements()[0].operator, FieldOperator::Equals);
            assert!(f.matches(&get), "{s}");
            assert_eq!(f.requires_exact_match("metadata.name"), Some("web"));
        }
        let ne = parse("metadata.name!=web");
        assert_eq!(ne.requirements()[0].operator, FieldOperator::NotEquals);
        assert!(!ne.matches(&get));
        assert_eq!(ne.requires_exact_match("metadata.name"), None);
        assert!(parse("metadata.name!=db").matches(&get));
        assert!(!parse("metadata.name=db").matches(&get));
    }

    #[test]
    fn missing_field_reads_empty() {
        let unscheduled = [("metadata.name", "p")];
        assert!(parse("spec.nodeName=").matches(&getter(&unscheduled)));
        assert!(!parse("spec.nodeName!=").matches(&getter(&unscheduled)));
        assert!(parse("spec.nodeName!=").matches(&getter(&[("spec.nodeName", "n1")])));
    }

    #[test]
    fn conjunction_and_sorting() {
        let f = parse("spec.nodeName=n1,metadata.namespace!=kube-system");
        // Terms are sorted as strings before parsing.
        assert_eq!(f.requirements()[0].field, "metadata.namespace");
        assert_eq!(
            f.to_string(),
            "metadata.namespace!=kube-system,spec.nodeName=n1"
        );
        let mut set = BTreeMap::new();
        set.insert("spec.nodeName".to_owned(), "n1".to_owned());
        set.insert("metadata.namespace".to_owned(), "default".to_owned());
        assert!(f.matches_set(&set));
        set.insert("metadata.namespace".to_owned(), "kube-system".to_owned());
        assert!(!f.matches_set(&set));
    }

    #[test]
    fn empty_selectors() {
        for s in ["", ",", ",,", "="] {
            let f = parse(s);
            assert!(f.is_empty(), "{s:?}");
            assert!(f.matches(&|_: &str| None));
        }
        assert_eq!(FieldSelector::default(), parse(""));
    }

    #[test]
    fn escaping() {
        let f = parse(r"metadata.name=a\,b\=c\\d,spec.x=y");
        assert_eq!(f.requirements()[0].value, r"a,b=c\d");
        assert_eq!(f.requirements().len(), 2);
        assert_eq!(f.to_string(), r"metadata.name=a\,b\=c\\d,spec.x=y");
        assert_eq!(escape_field_value(r"a,b=c\d"), r"a\,b\=c\\d");
        // `!` needs no escape; the first operator wins, so the value may contain `!`.
        assert_eq!(parse("a=b!c").requirements()[0].value, "b!c");
        assert_eq!(parse("a!=!b").requirements()[0].value, "!b");
        // `==` is matched before `=`, so `a===b` is `a == "=b"`, which fails unescaping.
        assert_eq!(
            err("a===b"),
            "invalid field selector: unescaped character in value: 61"
        );
        assert_eq!(parse(r"a==\=b").requirements()[0].value, "=b");
    }

    #[test]
    fn errors() {
        assert_eq!(err("a"), "invalid selector: 'a'; can't understand 'a'");
        assert_eq!(
            err("b=c,a"),
            "invalid selector: 'b=c,a'; can't understand 'a'"
        );
        assert_eq!(
            err("a=b=c"),
            "invalid field selector: unescaped character in value: 61"
        );
        assert_eq!(
            err(r"a=b\n"),
            r"invalid field selector: invalid escape sequence: \n"
        );
        assert_eq!(
            err(r"a=b\"),
            r"invalid field selector: invalid escape sequence: \"
        );
        // An escaped comma keeps the term together; a bare one would split it.
        assert_eq!(parse(r"a=b\,c").requirements()[0].value, "b,c");
    }

    #[test]
    fn transform() {
        let f = parse("spec.host=n1,metadata.name=x");
        let t = f
            .transform(|field, value| -> Result<(String, String), String> {
                match field {
                    "spec.host" => Ok(("spec.nodeName".to_owned(), value.to_owned())),
                    "metadata.name" => Ok((String::new(), String::new())),
                    other => Err(format!("field label not supported: {other}")),
                }
            })
            .unwrap();
        assert_eq!(t.to_string(), "spec.nodeName=n1");
        let rejected = parse("status.phase=Running").transform(
            |field, _| -> Result<(String, String), String> {
                Err(format!("field label not supported: {field}"))
            },
        );
        assert_eq!(
            rejected,
            Err("field label not supported: status.phase".to_owned())
        );
    }
}
