//! The simple JSONPath subset CRDs use: printer columns (`.status.conditions[?(@.type=="Ready")].status`)
//! and scale paths (`.spec.replicas`). Upstream evaluates these with client-go's `util/jsonpath`
//! and takes the first result (apiextensions-apiserver `pkg/registry/customresource/tableconvertor`).
//! Supported: `.field`, `['field']`, `["field"]`, `[N]`, `[*]`, and `[?(@.a.b=="x")]` /
//! `[?(@.a!="x")]` filters.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    All,
    Filter {
        path: Vec<String>,
        equal: bool,
        value: Value,
    },
}

/// Why a path is not in the supported subset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError(pub String);

fn parse(path: &str) -> Result<Vec<Step>, PathError> {
    let p = path.trim();
    let p = p
        .strip_prefix('{')
        .and_then(|x| x.strip_suffix('}'))
        .unwrap_or(p);
    let p = p.strip_prefix('$').unwrap_or(p);
    let bytes: Vec<char> = p.chars().collect();
    let mut i = 0;
    let mut steps = Vec::new();
    while i < bytes.len() {
        match bytes[i] {
            '.' => {
                i += 1;
                let start = i;
                while i < bytes.len() && bytes[i] != '.' && bytes[i] != '[' {
                    if bytes[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                let name: String = bytes[start..i.min(bytes.len())]
                    .iter()
                    .collect::<String>()
                    .replace("\\.", ".");
                if name.is_empty() {
                    return Err(PathError(format!("empty field name in {path:?}")));
                }
                steps.push(Step::Field(name));
            }
            '[' => {
                let end = find_close(&bytes, i)
                    .ok_or_else(|| PathError(format!("unterminated [ in {path:?}")))?;
                let inner: String = bytes[i + 1..end].iter().collect();
                steps.push(parse_bracket(inner.trim(), path)?);
                i = end + 1;
            }
            _ => return Err(PathError(format!("unexpected {:?} in {path:?}", bytes[i]))),
        }
    }
    Ok(steps)
}

fn find_close(chars: &[char], open: usize) -> Option<usize> {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    for (j, c) in chars.iter().enumerate().skip(open) {
        match (quote, *c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(*c),
            (None, '[') => depth += 1,
            (None, ']') => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
    }
    None
}

fn unquote(s: &str) -> Option<String> {
    let s = s.trim();
    for q in ['\'', '"'] {
        if let Some(inner) = s.strip_prefix(q).and_then(|x| x.strip_suffix(q)) {
            return Some(inner.to_string());
        }
    }
    None
}

fn parse_bracket(inner: &str, path: &str) -> Result<Step, PathError> {
    if inner == "*" {
        return Ok(Step::All);
    }
    if let Some(name) = unquote(inner) {
        return Ok(Step::Field(name));
    }
    if let Ok(n) = inner.parse::<i64>() {
        return Ok(Step::Index(n));
    }
    if let Some(cond) = inner.strip_prefix("?(").and_then(|x| x.strip_suffix(')')) {
        let (lhs, rhs, equal) = if let Some((l, r)) = cond.split_once("==") {
            (l, r, true)
        } else if let Some((l, r)) = cond.split_once("!=") {
            (l, r, false)
        } else {
            return Err(PathError(format!("unsupported filter in {path:?}")));
        };
        let lhs = lhs
            .trim()
            .strip_prefix('@')
            .ok_or_else(|| PathError(format!("filter must start with @ in {path:?}")))?;
        let field_path: Vec<String> = lhs
            .split('.')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let value = match unquote(rhs) {
            Some(s) => Value::String(s),
            None => serde_json::from_str(rhs.trim())
                .map_err(|_| PathError(format!("bad filter value in {path:?}")))?,
        };
        return Ok(Step::Filter {
            path: field_path,
            equal,
            value,
        });
    }
    Err(PathError(format!("unsupported [{inner}] in {path:?}")))
}

/// Checks that a path is in the supported subset.
pub fn check(path: &str) -> Result<(), PathError> {
    parse(path).map(|_| ())
}

/// Every value the path selects.
pub fn find_all<'a>(obj: &'a Value, path: &str) -> Result<Vec<&'a Value>, PathError> {
    let steps = parse(path)?;
    let mut cur: Vec<&Value> = vec![obj];
    for step in &steps {
        let mut next = Vec::new();
        for v in cur {
            match step {
                Step::Field(f) => {
                    if let Some(x) = v.get(f.as_str()) {
                        next.push(x);
                    }
                }
                Step::Index(n) => {
                    if let Some(a) = v.as_array() {
                        let idx = if *n < 0 { a.len() as i64 + n } else { *n };
                        if let Some(x) = usize::try_from(idx).ok().and_then(|i| a.get(i)) {
                            next.push(x);
                        }
                    }
                }
                Step::All => match v {
                    Value::Array(a) => next.extend(a.iter()),
                    Value::Object(m) => next.extend(m.values()),
                    _ => {}
                },
                Step::Filter { path, equal, value } => {
                    for item in v.as_array().into_iter().flatten() {
                        let mut field = Some(item);
                        for p in path {
                            field = field.and_then(|f| f.get(p.as_str()));
                        }
                        let matches = field.is_some_and(|f| f == value);
                        if matches == *equal && field.is_some() {
                            next.push(item);
                        }
                    }
                }
            }
        }
        cur = next;
    }
    Ok(cur)
}

/// The first value the path selects.
pub fn find_first<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    find_all(obj, path).ok().and_then(|v| v.into_iter().next())
}

/// Sets the value at a path of plain fields (`.spec.replicas`), creating objects on the way.
pub fn set(obj: &mut Value, path: &str, value: Value) -> Result<(), PathError> {
    let steps = parse(path)?;
    let mut cur = obj;
    for (i, step) in steps.iter().enumerate() {
        let Step::Field(f) = step else {
            return Err(PathError(format!("only field paths can be set: {path:?}")));
        };
        if !cur.is_object() {
            *cur = Value::Object(serde_json::Map::new());
        }
        let Some(m) = cur.as_object_mut() else {
            return Err(PathError(path.to_string()));
        };
        if i + 1 == steps.len() {
            m.insert(f.clone(), value);
            return Ok(());
        }
        cur = m
            .entry(f.clone())
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
    }
    Err(PathError(format!("empty path {path:?}")))
}
