//! Webhook `matchConditions`: CEL expressions over the request that decide whether a webhook is
//! called (upstream `pkg/admission/plugin/webhook/matchconditions`). Conditions are checked when
//! a configuration is written (at most 64, unique qualified names, expressions that compile) and
//! evaluated per request with the variables `object`, `oldObject`, `request` and
//! `namespaceObject`: a condition that is false skips the webhook; evaluation errors (with no
//! false condition) follow the webhook's failurePolicy.
//!
//! Not yet: the `authorizer` variable (declared, so expressions using it are accepted, but
//! evaluating it is an error), and compile-time type checking (a non-boolean result is reported
//! when evaluated, not when written).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use cel::{Context as CelContext, Program};
use rkube_apimachinery::{FieldError, FieldErrorType};
use serde_json::Value;

/// The variables expressions may use (upstream's webhook matchConditions environment).
const VARIABLES: [&str; 5] = ["object", "oldObject", "request", "namespaceObject", "authorizer"];

/// Upstream's limit on conditions per webhook.
const MAX_CONDITIONS: usize = 64;

/// Compiled expressions, by text (configurations are read on every request).
fn compiled(expression: &str) -> Result<Arc<Program>, String> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Program>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(p) = cache.lock().ok().and_then(|c| c.get(expression).cloned()) {
        return Ok(p);
    }
    let program = Arc::new(Program::compile(expression).map_err(|e| e.to_string())?);
    if let Some(e) = undeclared_reference(&program, expression) {
        return Err(e);
    }
    if let Ok(mut c) = cache.lock() {
        // Bounded: configurations are few; a flood of distinct expressions starts over.
        if c.len() > 1024 {
            c.clear();
        }
        c.insert(expression.to_string(), program.clone());
    }
    Ok(program)
}

/// cel-go's check for variables outside the environment: `undeclared reference to 'x'`, with
/// the position of its first use. Names bound by macros (`all(c, …)`) are the macro's own.
fn undeclared_reference(program: &Program, expression: &str) -> Option<String> {
    let bound = macro_bound_names(expression);
    let references = program.references();
    let mut unknown: Vec<&str> = references.variables().into_iter().filter(|v| !VARIABLES.contains(v) && !bound.iter().any(|b| b == v)).collect();
    unknown.sort();
    let name = unknown.first()?;
    let (line_no, column, line) = first_use(expression, name);
    Some(format!("ERROR: <input>:{line_no}:{column}: undeclared reference to '{name}' (in container '')\n| {line}\n| {:.>column$}", "^"))
}

/// Identifiers bound as iteration variables of comprehension macros (`x.all(v, …)`).
fn macro_bound_names(expression: &str) -> Vec<String> {
    let mut names = Vec::new();
    for m in ["all(", "exists(", "exists_one(", "map(", "filter("] {
        for (i, _) in expression.match_indices(m) {
            let rest = &expression[i + m.len()..];
            if let Some((var, _)) = rest.split_once(',') {
                let var = var.trim();
                if !var.is_empty() && var.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    names.push(var.to_string());
                }
            }
        }
    }
    names
}

/// The 1-based line and column of the first whole-word use of `name`, and that line.
fn first_use<'a>(expression: &'a str, name: &str) -> (usize, usize, &'a str) {
    for (n, line) in expression.lines().enumerate() {
        for (i, _) in line.match_indices(name) {
            let before = line[..i].chars().last();
            let after = line[i + name.len()..].chars().next();
            let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.');
            if !word(before) && !after.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                return (n + 1, i + 1, line);
            }
        }
    }
    (1, 1, expression.lines().next().unwrap_or(""))
}

/// A qualified name (`[prefix/]name`), as `validation.IsQualifiedName`.
fn qualified_name_error(name: &str) -> Option<String> {
    let part = name.rsplit_once('/').map_or(name, |(prefix, part)| if prefix.is_empty() { "" } else { part });
    let ok = !part.is_empty()
        && part.len() <= 63
        && part.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && part.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && part.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric());
    (!ok).then(|| {
        "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character \
         (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
            .to_string()
    })
}

/// The field errors of every webhook's `matchConditions` in a configuration.
pub fn validate(config: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (i, hook) in config["webhooks"].as_array().into_iter().flatten().enumerate() {
        let Some(conditions) = hook["matchConditions"].as_array() else { continue };
        let path = format!("webhooks[{i}].matchConditions");
        if conditions.len() > MAX_CONDITIONS {
            errors.push(FieldError {
                kind: FieldErrorType::TooMany,
                field: path.clone(),
                value: Some(conditions.len().into()),
                detail: format!("must have at most {MAX_CONDITIONS} items"),
            });
        }
        let mut seen = BTreeSet::new();
        for (j, c) in conditions.iter().enumerate() {
            let name = c["name"].as_str().unwrap_or("");
            let name_path = format!("{path}[{j}].name");
            if name.is_empty() {
                errors.push(FieldError::required(name_path, ""));
            } else if let Some(why) = qualified_name_error(name) {
                errors.push(FieldError::invalid(name_path, name, why));
            } else if !seen.insert(name) {
                errors.push(FieldError::duplicate(name_path, name));
            }
            let expression = c["expression"].as_str().unwrap_or("");
            let expr_path = format!("{path}[{j}].expression");
            if expression.trim().is_empty() {
                errors.push(FieldError::required(expr_path, ""));
            } else if let Err(e) = compiled(expression) {
                errors.push(FieldError::invalid(expr_path, expression, format!("compilation failed: {e}")));
            }
        }
    }
    errors
}

/// What the conditions decided for one request.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every condition held (or there were none): call the webhook.
    Call,
    /// A condition was false: skip the webhook.
    Skip,
    /// Some conditions failed to evaluate and none was false.
    Failed(String),
}

/// The variables of one request.
pub struct Variables<'a> {
    /// The object as it will be stored (null for deletes).
    pub object: &'a Value,
    /// The stored object (null for creates).
    pub old_object: &'a Value,
    /// The AdmissionReview request.
    pub request: &'a Value,
    /// The namespace of a namespaced request (null otherwise).
    pub namespace_object: &'a Value,
}

/// Evaluates a webhook's conditions in order (upstream `Matcher.Match`).
pub fn evaluate(hook: &Value, vars: &Variables<'_>) -> Outcome {
    let Some(conditions) = hook["matchConditions"].as_array().filter(|c| !c.is_empty()) else { return Outcome::Call };
    let mut ctx = CelContext::default();
    for (name, value) in [("object", vars.object), ("oldObject", vars.old_object), ("request", vars.request), ("namespaceObject", vars.namespace_object)] {
        if let Err(e) = ctx.add_variable(name, value.clone()) {
            return Outcome::Failed(format!("binding {name}: {e}"));
        }
    }
    let mut errors = Vec::new();
    for c in conditions {
        let expression = c["expression"].as_str().unwrap_or("");
        let result = compiled(expression).and_then(|p| p.execute(&ctx).map_err(|e| e.to_string()));
        match result {
            Ok(cel::Value::Bool(true)) => {}
            Ok(cel::Value::Bool(false)) => return Outcome::Skip,
            Ok(other) => errors.push(format!("expression '{expression}' resulted in error: expected a bool result, got {:?}", other.type_of())),
            Err(e) => errors.push(format!("expression '{expression}' resulted in error: {e}")),
        }
    }
    match errors.len() {
        0 => Outcome::Call,
        1 => Outcome::Failed(errors.remove(0)),
        _ => Outcome::Failed(format!("[{}]", errors.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(expression: &str, object: Value) -> Outcome {
        let hook = json!({"matchConditions": [{"name": "c", "expression": expression}]});
        let request = json!({"operation": "CREATE", "userInfo": {"username": "alice"}});
        evaluate(&hook, &Variables { object: &object, old_object: &Value::Null, request: &request, namespace_object: &Value::Null })
    }

    #[test]
    fn conditions_decide_with_the_request_variables() {
        let labelled = json!({"metadata": {"name": "a", "labels": {"skip": "true"}}});
        let skip = "!has(object.metadata.labels) || !('skip' in object.metadata.labels)";
        assert_eq!(run(skip, labelled), Outcome::Skip);
        assert_eq!(run(skip, json!({"metadata": {"name": "b"}})), Outcome::Call);
        assert_eq!(run("request.userInfo.username == 'alice'", json!({})), Outcome::Call);
        assert_eq!(run("oldObject == null", json!({})), Outcome::Call);
        assert!(matches!(run("object.metadata.missing == 'x'", json!({"metadata": {}})), Outcome::Failed(_)));
        assert!(matches!(run("'not a bool'", json!({})), Outcome::Failed(_)));
    }

    #[test]
    fn configurations_are_checked_when_written() {
        let too_many: Vec<Value> = (0..65).map(|i| json!({"name": format!("c{i}"), "expression": "true"})).collect();
        let config = json!({"webhooks": [
            {"matchConditions": [{"name": "a", "expression": "object.x =="}, {"name": "a", "expression": "true"}, {"name": "bad name", "expression": ""}]},
            {"matchConditions": too_many},
        ]});
        let errors: Vec<String> = validate(&config).iter().map(|e| e.message()).collect();
        assert_eq!(errors.len(), 5, "{errors:#?}");
        assert!(errors[0].starts_with("webhooks[0].matchConditions[0].expression: Invalid value: \"object.x ==\": compilation failed: ERROR: <input>:1:"), "{}", errors[0]);
        assert_eq!(errors[1], "webhooks[0].matchConditions[1].name: Duplicate value: \"a\"");
        assert!(errors[2].starts_with("webhooks[0].matchConditions[2].name: Invalid value: \"bad name\": name part must consist"), "{}", errors[2]);
        assert_eq!(errors[3], "webhooks[0].matchConditions[2].expression: Required value");
        assert_eq!(errors[4], "webhooks[1].matchConditions: Too many: 65: must have at most 64 items");
    }

    #[test]
    fn unknown_variables_are_refused_but_macro_variables_are_not() {
        let config = |e: &str| json!({"webhooks": [{"matchConditions": [{"name": "c", "expression": e}]}]});
        let errors = validate(&config("params.x == 1 && object.metadata.name != ''"));
        assert_eq!(errors.len(), 1);
        assert!(errors[0].detail.starts_with("compilation failed: ERROR: <input>:1:1: undeclared reference to 'params' (in container '')"), "{}", errors[0].detail);
        assert!(validate(&config("object.spec.containers.all(c, c.image != '') && request.name.startsWith('a')")).is_empty());
    }
}
