//! Admission configuration: webhook configurations and admission policies with their bindings.

use serde_json::{Value, json};

use crate::format::{at, count, label_selector_struct, opt_text, text};
use crate::{
    AGE,
    CellType::{Integer as Int, String as Str},
    Column, Ctx, NAME, Printer, Row, col, printer,
};

const WEBHOOK_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Webhooks",
        Int,
        "Webhooks indicates the number of webhooks registered in this configuration",
    ),
    AGE,
];

pub(crate) static MUTATING_WEBHOOK_CONFIGURATION: Printer =
    printer(WEBHOOK_COLUMNS, print_webhook_configuration);
pub(crate) static VALIDATING_WEBHOOK_CONFIGURATION: Printer =
    printer(WEBHOOK_COLUMNS, print_webhook_configuration);

const PARAM_KIND: Column = col(
    "ParamKind",
    Str,
    "ParamKind specifies the kind of resources used to parameterize this policy",
);

pub(crate) static VALIDATING_ADMISSION_POLICY: Printer = printer(
    &[
        NAME,
        col(
            "Validations",
            Int,
            "Validations indicates the number of validation rules defined in this configuration",
        ),
        PARAM_KIND,
        AGE,
    ],
    print_validating_policy,
);

pub(crate) static MUTATING_ADMISSION_POLICY: Printer = printer(
    &[
        NAME,
        col(
            "Mutations",
            Int,
            "Mutation indicates the number of mutations rules defined in this configuration",
        ),
        PARAM_KIND,
        AGE,
    ],
    print_mutating_policy,
);

const BINDING_COLUMNS: &[Column] = &[
    NAME,
    col(
        "PolicyName",
        Str,
        "PolicyName indicates the policy definition which the policy binding binded to",
    ),
    col(
        "ParamRef",
        Str,
        "ParamRef indicates the param resource which sets the configration param",
    ),
    AGE,
];

pub(crate) static VALIDATING_ADMISSION_POLICY_BINDING: Printer =
    printer(BINDING_COLUMNS, print_policy_binding);
pub(crate) static MUTATING_ADMISSION_POLICY_BINDING: Printer =
    printer(BINDING_COLUMNS, print_policy_binding);

fn print_webhook_configuration(c: &Ctx<'_>) -> Row {
    vec![c.name(), json!(count(c.obj, "/webhooks")), c.age()].into()
}

fn param_kind(o: &Value) -> String {
    match at(o, "/spec/paramKind") {
        Some(k) => format!("{}/{}", text(k, "/apiVersion"), text(k, "/kind")),
        None => "<unset>".into(),
    }
}

fn print_validating_policy(c: &Ctx<'_>) -> Row {
    vec![
        c.name(),
        json!(count(c.obj, "/spec/validations")),
        json!(param_kind(c.obj)),
        c.age(),
    ]
    .into()
}

fn print_mutating_policy(c: &Ctx<'_>) -> Row {
    vec![
        c.name(),
        json!(count(c.obj, "/spec/mutations")),
        json!(param_kind(c.obj)),
        c.age(),
    ]
    .into()
}

/// `namespace/name`, `*/name` when the namespace is unset, or the selector's struct string.
fn param_ref(o: &Value) -> String {
    let Some(r) = at(o, "/spec/paramRef") else {
        return "<unset>".into();
    };
    match (text(r, "/name"), opt_text(r, "/namespace").unwrap_or("")) {
        ("", _) => at(r, "/selector")
            .map(label_selector_struct)
            .unwrap_or_else(|| "<unset>".into()),
        (name, "") => format!("*/{name}"),
        (name, ns) => format!("{ns}/{name}"),
    }
}

fn print_policy_binding(c: &Ctx<'_>) -> Row {
    vec![
        c.name(),
        json!(text(c.obj, "/spec/policyName")),
        json!(param_ref(c.obj)),
        c.age(),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use crate::testing::texts;
    use serde_json::json;

    const G: &str = "admissionregistration.k8s.io";

    #[test]
    fn webhooks_and_policies() {
        let w = json!({"metadata": {"name": "w"}, "webhooks": [{"name": "a.example.com"}, {"name": "b.example.com"}]});
        assert_eq!(texts(G, "ValidatingWebhookConfiguration", &w)[1], "2");
        assert_eq!(
            texts(
                G,
                "MutatingWebhookConfiguration",
                &json!({"metadata": {"name": "m"}})
            )[1],
            "0"
        );
        let vap = json!({"metadata": {"name": "p"}, "spec": {"validations": [{"expression": "true"}],
            "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"}}});
        assert_eq!(
            texts(G, "ValidatingAdmissionPolicy", &vap)[1..3],
            ["1", "v1/ConfigMap"]
        );
        let map = json!({"metadata": {"name": "m"}, "spec": {"mutations": []}});
        assert_eq!(
            texts(G, "MutatingAdmissionPolicy", &map)[1..3],
            ["0", "<unset>"]
        );
    }

    #[test]
    fn binding_param_refs() {
        let b = |param: serde_json::Value| json!({"metadata": {"name": "b"}, "spec": {"policyName": "p", "paramRef": param}});
        assert_eq!(
            texts(
                G,
                "ValidatingAdmissionPolicyBinding",
                &b(json!({"name": "cfg", "namespace": "ns"}))
            )[1..3],
            ["p", "ns/cfg"]
        );
        assert_eq!(
            texts(
                G,
                "ValidatingAdmissionPolicyBinding",
                &b(json!({"name": "cfg"}))
            )[2],
            "*/cfg"
        );
        assert_eq!(
            texts(
                G,
                "MutatingAdmissionPolicyBinding",
                &b(json!({"selector": {"matchLabels": {"a": "b"}}}))
            )[2],
            "&LabelSelector{MatchLabels:map[string]string{a: b,},MatchExpressions:[]LabelSelectorRequirement{},}"
        );
        let unbound = json!({"metadata": {"name": "b"}, "spec": {"policyName": "p"}});
        assert_eq!(
            texts(G, "ValidatingAdmissionPolicyBinding", &unbound)[2],
            "<unset>"
        );
    }
}
