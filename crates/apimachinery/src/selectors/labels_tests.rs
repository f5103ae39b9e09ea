//! Tests for label selectors; expected messages are upstream's text (see `selector_test.go` and
//! captured kube-apiserver responses).

use super::*;
use serde_json::json;

fn labels(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("labels must be an object"),
    }
}

fn sel(s: &str) -> LabelSelector {
    match LabelSelector::parse(s) {
        Ok(sel) => sel,
        Err(e) => panic!("{s:?} should parse: {e}"),
    }
}

fn err(s: &str) -> String {
    match LabelSelector::parse(s) {
        Ok(sel) => panic!("{s:?} should not parse, got {sel}"),
        Err(e) => e.to_string(),
    }
}

const NAME_PART_REGEX: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_REGEX: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

#[test]
fn empty_selects_everything() {
    for s in ["", "   ", "\t\n"] {
        let sel = sel(s);
        assert!(sel.is_empty());
        assert!(!sel.matches_nothing());
        assert!(sel.matches(&Map::new()));
        assert!(sel.matches(&labels(json!({"a": "b"}))));
        assert_eq!(sel.to_string(), "");
    }
    assert_eq!(LabelSelector::everything(), sel(""));
}

#[test]
fn equality_operators() {
    let ab = labels(json!({"a": "b"}));
    let ac = labels(json!({"a": "c"}));
    let none = Map::new();
    for s in ["a=b", "a==b", "a in (b)"] {
        let sel = sel(s);
        assert!(sel.matches(&ab), "{s}");
        assert!(!sel.matches(&ac), "{s}");
        assert!(!sel.matches(&none), "{s}");
        assert_eq!(sel.requires_exact_match("a"), Some("b"), "{s}");
    }
    for s in ["a!=b", "a notin (b)"] {
        let sel = sel(s);
        assert!(!sel.matches(&ab), "{s}");
        assert!(sel.matches(&ac), "{s}");
        assert!(sel.matches(&none), "{s}: absent key satisfies != and notin");
        assert_eq!(sel.requires_exact_match("a"), None);
    }
    assert_eq!(sel("a=b").requirements()[0].operator(), Operator::Equals);
    assert_eq!(
        sel("a==b").requirements()[0].operator(),
        Operator::DoubleEquals
    );
    assert_eq!(
        sel("a!=b").requirements()[0].operator(),
        Operator::NotEquals
    );
    // `a=` requires the empty value.
    let empty = sel("a=");
    assert!(empty.matches(&labels(json!({"a": ""}))));
    assert!(!empty.matches(&none));
}

#[test]
fn set_operators() {
    let sel_in = sel("env in (prod, staging)");
    assert_eq!(sel_in.requirements()[0].values(), ["prod", "staging"]);
    assert!(sel_in.matches(&labels(json!({"env": "prod"}))));
    assert!(sel_in.matches(&labels(json!({"env": "staging"}))));
    assert!(!sel_in.matches(&labels(json!({"env": "dev"}))));
    assert!(!sel_in.matches(&Map::new()));
    let sel_notin = sel("env notin (prod,staging)");
    assert!(!sel_notin.matches(&labels(json!({"env": "prod"}))));
    assert!(sel_notin.matches(&labels(json!({"env": "dev"}))));
    assert!(sel_notin.matches(&Map::new()));
    // Values are deduplicated and sorted, as upstream's sets.String does.
    assert_eq!(sel("a in (c,b,c)").requirements()[0].values(), ["b", "c"]);
    // `()` and empty list items are the empty value.
    assert_eq!(sel("a in ()").requirements()[0].values(), [""]);
    assert_eq!(sel("a in (,b)").requirements()[0].values(), ["", "b"]);
    assert_eq!(sel("a in (b,)").requirements()[0].values(), ["", "b"]);
    assert_eq!(
        sel("a in (b,,c)").requirements()[0].values(),
        ["", "b", "c"]
    );
    // `in`/`notin` are only keywords in operator position.
    let odd = sel("in in (in,notin)");
    assert_eq!(odd.requirements()[0].key(), "in");
    assert_eq!(odd.requirements()[0].values(), ["in", "notin"]);
}

#[test]
fn existence_operators() {
    let exists = sel("a");
    assert_eq!(exists.requirements()[0].operator(), Operator::Exists);
    assert!(exists.matches(&labels(json!({"a": ""}))));
    assert!(!exists.matches(&labels(json!({"b": "a"}))));
    let absent = sel("!a");
    assert_eq!(absent.requirements()[0].operator(), Operator::DoesNotExist);
    assert!(!absent.matches(&labels(json!({"a": "x"}))));
    assert!(absent.matches(&labels(json!({"b": "x"}))));
    assert!(sel(" ! a ").matches(&Map::new()));
}

#[test]
fn numeric_operators() {
    let gt = sel("replicas>2");
    assert_eq!(gt.requirements()[0].operator(), Operator::GreaterThan);
    assert!(gt.matches(&labels(json!({"replicas": "3"}))));
    assert!(!gt.matches(&labels(json!({"replicas": "2"}))));
    assert!(
        !gt.matches(&labels(json!({"replicas": "x"}))),
        "non-integers never match"
    );
    assert!(!gt.matches(&Map::new()));
    let lt = sel("replicas<10");
    assert!(lt.matches(&labels(json!({"replicas": "-5"}))));
    assert!(!lt.matches(&labels(json!({"replicas": "10"}))));
}

#[test]
fn conjunction_sorted_by_key() {
    let s = sel(" z notin (), x in (foo,,baz) ,y ");
    let keys: Vec<&str> = s.requirements().iter().map(Requirement::key).collect();
    assert_eq!(keys, ["x", "y", "z"]);
    assert_eq!(s.requirements()[0].values(), ["", "baz", "foo"]);
    assert!(s.matches(&labels(json!({"x": "foo", "y": "1"}))));
    assert!(!s.matches(&labels(json!({"x": "foo"}))));
    assert!(!s.matches(&labels(json!({"x": "foo", "y": "1", "z": ""}))));
    assert_eq!(s.to_string(), "x in (,baz,foo),y,z notin ()");
    assert_eq!(
        sel("b in (y,x),a,!c,d>1,e<2,f==g,h!=i").to_string(),
        "a,b in (x,y),!c,d>1,e<2,f==g,h!=i"
    );
    // Prefixed keys.
    assert!(
        sel("app.kubernetes.io/name=web")
            .matches(&labels(json!({"app.kubernetes.io/name": "web"})))
    );
}

#[test]
fn non_string_label_values_count_as_absent() {
    let l = labels(json!({"a": 1}));
    assert!(!sel("a").matches(&l));
    assert!(sel("!a").matches(&l));
}

#[test]
fn matches_object_reads_metadata_labels() {
    let s = sel("app=web");
    assert!(s.matches_object(&json!({"metadata": {"labels": {"app": "web"}}})));
    assert!(!s.matches_object(&json!({"metadata": {}})));
    assert!(sel("!app").matches_object(&json!({"metadata": {"name": "x"}})));
}

#[test]
fn key_errors() {
    assert_eq!(
        err("app:monolith"),
        format!(
            "unable to parse requirement: <nil>: Invalid value: \"app:monolith\": {NAME_PART_REGEX}"
        )
    );
    assert_eq!(
        err("a/b/c ?=? def"),
        "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
    );
    let long = "k".repeat(64);
    assert_eq!(
        err(&format!("{long}=v")),
        format!(
            "unable to parse requirement: <nil>: Invalid value: \"{long}\": name part must be no more than 63 characters"
        )
    );
    assert_eq!(
        err("app.kubernetes_io/name=x"),
        "unable to parse requirement: <nil>: Invalid value: \"app.kubernetes_io/name\": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    );
    assert_eq!(
        err("/a"),
        "unable to parse requirement: <nil>: Invalid value: \"/a\": prefix part must be non-empty"
    );
}

#[test]
fn syntax_errors() {
    assert_eq!(
        err("a b"),
        "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
    );
    assert_eq!(err("a=b c"), "found 'c', expected: ',' or 'end of string'");
    assert_eq!(err("a=b=c"), "found '=', expected: ',' or 'end of string'");
    assert_eq!(err("a=b,"), "found '', expected: identifier after ','");
    assert_eq!(err("a,,b"), "found ',', expected: identifier after ','");
    assert_eq!(
        err(",a"),
        "found ',', expected: !, identifier, or 'end of string'"
    );
    assert_eq!(
        err("=a"),
        "found '=', expected: !, identifier, or 'end of string'"
    );
    assert_eq!(
        err("!"),
        "unable to parse requirement: found '', expected: identifier"
    );
    assert_eq!(
        err("!=a"),
        "found '!=', expected: !, identifier, or 'end of string'"
    );
    assert_eq!(err("!a=b"), "found '=', expected: ',' or 'end of string'");
    assert_eq!(
        err("a in b"),
        "unable to parse requirement: found 'b' expected: '('"
    );
    assert_eq!(
        err("a in"),
        "unable to parse requirement: found '' expected: '('"
    );
    assert_eq!(
        err("a in (b"),
        "unable to parse requirement: found '', expected: ',' or ')'"
    );
    assert_eq!(
        err("a in (b c)"),
        "unable to parse requirement: found 'c', expected: ',' or ')'"
    );
    assert_eq!(
        err("a in (="),
        "unable to parse requirement: found '=', expected: ',', ')' or identifier"
    );
    assert_eq!(
        err("a in (b,=)"),
        "unable to parse requirement: found '=', expected: ',', or identifier"
    );
    assert_eq!(
        err("a=("),
        "unable to parse requirement: found '(', expected: identifier"
    );
    assert_eq!(
        err("a notin"),
        "unable to parse requirement: found '' expected: '('"
    );
}

#[test]
fn value_errors() {
    assert_eq!(
        err("a=-b"),
        format!(
            "unable to parse requirement: values[0][a]: Invalid value: \"-b\": {LABEL_VALUE_REGEX}"
        )
    );
    // Sorted first, so "-c" is values[0].
    assert_eq!(
        err("a in (b,-c)"),
        format!(
            "unable to parse requirement: values[0][a]: Invalid value: \"-c\": {LABEL_VALUE_REGEX}"
        )
    );
    let long = "v".repeat(64);
    assert_eq!(
        err(&format!("a={long}")),
        format!(
            "unable to parse requirement: values[0][a]: Invalid value: \"{long}\": must be no more than 63 characters"
        )
    );
    assert_eq!(
        err("a>b"),
        "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', 'Lt' operators, the value must be an integer"
    );
    assert_eq!(
        err("a<"),
        "unable to parse requirement: values[0]: Invalid value: \"\": for 'Gt', 'Lt' operators, the value must be an integer"
    );
    // A negative bound is an integer but not a valid label value.
    assert_eq!(
        err("a>-1"),
        format!(
            "unable to parse requirement: values[0][a]: Invalid value: \"-1\": {LABEL_VALUE_REGEX}"
        )
    );
    // Several field errors aggregate as "[a, b]".
    assert_eq!(
        err("a>x_"),
        format!(
            "unable to parse requirement: [values[0]: Invalid value: \"x_\": for 'Gt', 'Lt' operators, the value must be an integer, values[0][a]: Invalid value: \"x_\": {LABEL_VALUE_REGEX}]"
        )
    );
}

#[test]
fn requirement_new_validates() {
    assert!(Requirement::new("a", Operator::In, vec!["b".into()]).is_ok());
    let e = |r: Result<Requirement, SelectorError>| match r {
        Ok(r) => panic!("{r} should be invalid"),
        Err(e) => e.to_string(),
    };
    assert_eq!(
        e(Requirement::new("a", Operator::In, vec![])),
        "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty"
    );
    assert_eq!(
        e(Requirement::new(
            "a",
            Operator::Equals,
            vec!["b".into(), "c".into()]
        )),
        "values: Invalid value: []string{\"b\", \"c\"}: exact-match compatibility requires one single value"
    );
    assert_eq!(
        e(Requirement::new("a", Operator::Exists, vec!["b".into()])),
        "values: Invalid value: []string{\"b\"}: values set must be empty for exists and does not exist"
    );
    assert_eq!(
        e(Requirement::new("a", Operator::GreaterThan, vec![])),
        "values: Invalid value: []string(nil): for 'Gt', 'Lt' operators, exactly one value is required"
    );
    assert_eq!(
        e(Requirement::new("a b", Operator::Exists, vec![])),
        format!("key: Invalid value: \"a b\": {NAME_PART_REGEX}")
    );
}

#[test]
fn label_selector_json() {
    let null = LabelSelector::from_label_selector_json(&Value::Null).unwrap();
    assert!(null.matches_nothing());
    assert!(!null.is_empty());
    assert!(!null.matches(&Map::new()));
    let empty = LabelSelector::from_label_selector_json(&json!({})).unwrap();
    assert!(empty.is_empty());
    assert!(empty.matches(&labels(json!({"x": "y"}))));
    let empty_lists = LabelSelector::from_label_selector_json(
        &json!({"matchLabels": {}, "matchExpressions": []}),
    )
    .unwrap();
    assert!(empty_lists.is_empty());

    let s = LabelSelector::from_label_selector_json(&json!({
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["fe", "be"]},
            {"key": "env", "operator": "NotIn", "values": ["dev"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "owner", "operator": "Exists", "values": []}
        ]
    }))
    .unwrap();
    assert_eq!(
        s.to_string(),
        "app=web,!canary,env notin (dev),owner,tier in (be,fe)"
    );
    assert!(s.matches(&labels(json!({"app": "web", "tier": "fe", "owner": "x"}))));
    assert!(!s.matches(&labels(
        json!({"app": "web", "tier": "fe", "owner": "x", "canary": "1"})
    )));
    assert!(!s.matches(&labels(
        json!({"app": "web", "tier": "fe", "owner": "x", "env": "dev"})
    )));
    assert!(!s.matches(&labels(json!({"app": "web", "tier": "db", "owner": "x"}))));
    // Values keep their given order (no set) on this path, as upstream.
    assert_eq!(
        s.requirements().last().map(|r| r.values().to_vec()),
        Some(vec!["fe".to_owned(), "be".to_owned()])
    );
}

#[test]
fn label_selector_json_errors() {
    let e = |v: Value| match LabelSelector::from_label_selector_json(&v) {
        Ok(s) => panic!("{v} should be rejected, got {s}"),
        Err(e) => e.to_string(),
    };
    assert_eq!(
        e(json!({"matchExpressions": [{"key": "a", "operator": "Foo"}]})),
        "\"Foo\" is not a valid label selector operator"
    );
    assert_eq!(
        e(json!({"matchExpressions": [{"key": "a"}]})),
        "\"\" is not a valid label selector operator"
    );
    assert_eq!(
        e(json!({"matchExpressions": [{"key": "a", "operator": "In"}]})),
        "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty"
    );
    assert_eq!(
        e(json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]})),
        "values: Invalid value: []string{\"x\"}: values set must be empty for exists and does not exist"
    );
    assert_eq!(
        e(json!({"matchLabels": {"a b": "c"}})),
        format!("key: Invalid value: \"a b\": {NAME_PART_REGEX}")
    );
    assert_eq!(
        e(json!({"matchLabels": {"a": "-c"}})),
        format!("values[0][a]: Invalid value: \"-c\": {LABEL_VALUE_REGEX}")
    );
    assert_eq!(
        e(json!({"matchLabels": {"a": 1}})),
        "json: cannot unmarshal number into Go struct field LabelSelector.matchLabels of type string"
    );
    assert_eq!(
        e(json!("a=b")),
        "json: cannot unmarshal string into Go value of type v1.LabelSelector"
    );
}

#[test]
fn from_set_and_add() {
    let mut s = LabelSelector::from_set(&labels(json!({"b": "2", "a": "1"}))).unwrap();
    assert_eq!(s.to_string(), "a=1,b=2");
    s.add(Requirement::new("ab", Operator::Exists, vec![]).unwrap());
    assert_eq!(s.to_string(), "a=1,ab,b=2");
    assert!(LabelSelector::from_set(&Map::new()).unwrap().is_empty());
    assert!(LabelSelector::from_set(&labels(json!({"a": "-"}))).is_err());
    let mut nothing = LabelSelector::nothing();
    nothing.add(Requirement::new("a", Operator::Exists, vec![]).unwrap());
    assert!(nothing.matches_nothing() && nothing.requirements().is_empty());
}

#[test]
fn lexer_edge_cases() {
    // Operators need no surrounding space, and whitespace includes tabs and newlines.
    assert_eq!(sel("a\t=\nb").to_string(), "a=b");
    assert_eq!(sel("a!=b,c==d").to_string(), "a!=b,c==d");
    // Non-ASCII bytes are identifier characters, then rejected by key validation.
    assert!(
        err("ä=b")
            .starts_with("unable to parse requirement: <nil>: Invalid value: \"ä\": name part")
    );
}
