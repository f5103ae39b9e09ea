//! The query options every write shares: `dryRun` and `fieldValidation`, checked as upstream's
//! `ValidateCreateOptions`/`ValidateUpdateOptions`/`ValidatePatchOptions`/`ValidateDeleteOptions`
//! (apimachinery `pkg/apis/meta/v1/validation/validation.go`): an unsupported value is a 422 on
//! the options kind, e.g. `CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value:
//! []string{"foo"}: supported values: "All"`.

use rkube_apimachinery::error::FieldErrorType;
use rkube_apimachinery::{ApiError, FieldError};

use crate::handler::Query;

/// What to do with fields the type does not know (`metav1.FieldValidation*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    /// Drop them silently.
    Ignore,
    /// Drop them and answer with a `Warning` header per field.
    Warn,
    /// Reject the request (400).
    Strict,
}

/// `dryRun` and `fieldValidation` of one write.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    /// `dryRun=All`: run everything, persist nothing.
    pub dry_run: bool,
    /// How unknown and duplicate fields are treated.
    pub field_validation: FieldValidation,
}

/// Go's `%#v` of a `[]string`, which upstream prints for an unsupported dryRun.
fn go_string_slice(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

fn unsupported(field: &str, rendered_value: String, supported: &[&str]) -> FieldError {
    let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
    FieldError {
        kind: FieldErrorType::NotSupported,
        field: field.into(),
        value: None,
        detail: format!("{rendered_value}: supported values: {}", list.join(", ")),
    }
}

/// Parses and validates the options of a write; `options_kind` is `CreateOptions`,
/// `UpdateOptions`, `PatchOptions` or `DeleteOptions`.
pub fn parse(q: &Query, options_kind: &str) -> Result<WriteOptions, ApiError> {
    let mut errs = Vec::new();
    let dry_values = q.all("dryRun");
    if !dry_values.iter().all(|v| *v == "All") {
        errs.push(unsupported("dryRun", go_string_slice(&dry_values), &["All"]));
    }
    // Without the parameter the server warns (upstream's default since 1.27); kubectl sends
    // Strict unless told otherwise.
    let field_validation = match q.get("fieldValidation").unwrap_or("") {
        "Strict" => FieldValidation::Strict,
        "" | "Warn" => FieldValidation::Warn,
        "Ignore" => FieldValidation::Ignore,
        other => {
            // DeleteOptions has no fieldValidation; upstream ignores the parameter there.
            if options_kind != "DeleteOptions" {
                errs.push(unsupported("fieldValidation", format!("{other:?}"), &["", "Ignore", "Strict", "Warn"]));
            }
            FieldValidation::Strict
        }
    };
    if !errs.is_empty() {
        return Err(ApiError::invalid("meta.k8s.io", options_kind, "", &errs));
    }
    Ok(WriteOptions { dry_run: !dry_values.is_empty(), field_validation })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_dry_run_is_invalid_options_like_upstream() {
        let e = parse(&Query::parse(Some("dryRun=foo")), "CreateOptions").unwrap_err();
        assert_eq!(e.code, 422);
        assert_eq!(
            e.message,
            "CreateOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: []string{\"foo\"}: supported values: \"All\""
        );
    }

    #[test]
    fn field_validation_values() {
        let o = parse(&Query::parse(Some("dryRun=All&fieldValidation=Warn")), "PatchOptions").unwrap();
        assert!(o.dry_run);
        assert_eq!(o.field_validation, FieldValidation::Warn);
        assert_eq!(parse(&Query::parse(None), "UpdateOptions").unwrap().field_validation, FieldValidation::Warn);
        let e = parse(&Query::parse(Some("fieldValidation=Loose")), "UpdateOptions").unwrap_err();
        assert_eq!(
            e.message,
            "UpdateOptions.meta.k8s.io \"\" is invalid: fieldValidation: Unsupported value: \"Loose\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""
        );
    }
}
