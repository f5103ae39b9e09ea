//! Role bindings and cluster role bindings (roles have no upstream printer).

use serde_json::{Value, json};

use crate::format::{list, text};
use crate::{
    AGE, CellType::String as Str, Ctx, NAME, Printer, Row, col, descriptions as d, printer, wide,
};

pub(crate) static ROLE_BINDING: Printer = printer(
    &[
        NAME,
        col("Role", Str, d::ROLE_BINDING_ROLE_REF),
        AGE,
        wide("Users", Str, "Users in the roleBinding"),
        wide("Groups", Str, "Groups in the roleBinding"),
        wide("ServiceAccounts", Str, "ServiceAccounts in the roleBinding"),
    ],
    print_binding,
);

pub(crate) static CLUSTER_ROLE_BINDING: Printer = printer(
    &[
        NAME,
        col("Role", Str, d::CLUSTER_ROLE_BINDING_ROLE_REF),
        AGE,
        wide("Users", Str, "Users in the clusterRoleBinding"),
        wide("Groups", Str, "Groups in the clusterRoleBinding"),
        wide(
            "ServiceAccounts",
            Str,
            "ServiceAccounts in the clusterRoleBinding",
        ),
    ],
    print_binding,
);

/// `rbac.SubjectsStrings`: users, groups and `namespace/name` service accounts.
fn subjects(binding: &Value) -> (Vec<&str>, Vec<&str>, Vec<String>) {
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for s in list(binding, "/subjects") {
        match text(s, "/kind") {
            "ServiceAccount" => sas.push(format!("{}/{}", text(s, "/namespace"), text(s, "/name"))),
            "User" => users.push(text(s, "/name")),
            "Group" => groups.push(text(s, "/name")),
            _ => {}
        }
    }
    (users, groups, sas)
}

fn print_binding(c: &Ctx<'_>) -> Row {
    let role = format!(
        "{}/{}",
        text(c.obj, "/roleRef/kind"),
        text(c.obj, "/roleRef/name")
    );
    let (users, groups, sas) = subjects(c.obj);
    vec![
        c.name(),
        json!(role),
        c.age(),
        json!(users.join(", ")),
        json!(groups.join(", ")),
        json!(sas.join(", ")),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use crate::testing::texts;
    use serde_json::json;

    #[test]
    fn binding_cells() {
        let rb = json!({"metadata": {"name": "read"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "alice"}, {"kind": "User", "name": "bob"}, {"kind": "Group", "name": "devs"},
                         {"kind": "ServiceAccount", "namespace": "ci", "name": "runner"}]});
        assert_eq!(
            texts("rbac.authorization.k8s.io", "RoleBinding", &rb),
            [
                "read",
                "ClusterRole/view",
                "<unknown>",
                "alice, bob",
                "devs",
                "ci/runner"
            ]
        );
        let crb = json!({"metadata": {"name": "admin"}, "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"}});
        assert_eq!(
            texts("rbac.authorization.k8s.io", "ClusterRoleBinding", &crb)[3..],
            ["", "", ""]
        );
    }
}
