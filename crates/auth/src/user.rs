//! Who is making a request (apiserver `pkg/authentication/user`, `pkg/authentication/serviceaccount`).

use std::collections::BTreeMap;

/// The group whose members may do anything, checked before RBAC (upstream `SystemPrivilegedGroup`).
pub const SYSTEM_MASTERS: &str = "system:masters";
/// Every authenticated user is in this group.
pub const ALL_AUTHENTICATED: &str = "system:authenticated";
/// Every request without credentials is in this group.
pub const ALL_UNAUTHENTICATED: &str = "system:unauthenticated";
/// The user of a request without credentials.
pub const ANONYMOUS: &str = "system:anonymous";
/// Prefix of ServiceAccount user names: `system:serviceaccount:<namespace>:<name>`.
pub const SERVICE_ACCOUNT_USERNAME_PREFIX: &str = "system:serviceaccount:";
/// Every ServiceAccount is in this group, and in `system:serviceaccounts:<namespace>`.
pub const ALL_SERVICE_ACCOUNTS: &str = "system:serviceaccounts";

/// An authenticated (or anonymous) identity: `user.Info`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    /// User name (certificate CN, token subject, …).
    pub name: String,
    /// Unique id, when the authenticator knows one.
    pub uid: String,
    /// Groups, including `system:authenticated` or `system:unauthenticated`.
    pub groups: Vec<String>,
    /// Extra attributes (scopes, session names, …).
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// A user with a name and groups.
    pub fn new(name: impl Into<String>, groups: Vec<String>) -> Self {
        Self { name: name.into(), groups, ..Default::default() }
    }

    /// The identity of a request without credentials (anonymous authentication enabled, as
    /// kube-apiserver's default).
    pub fn anonymous() -> Self {
        Self::new(ANONYMOUS, vec![ALL_UNAUTHENTICATED.to_string()])
    }

    /// Whether the user is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// `system:serviceaccount:<namespace>:<name>`.
pub fn service_account_username(namespace: &str, name: &str) -> String {
    format!("{SERVICE_ACCOUNT_USERNAME_PREFIX}{namespace}:{name}")
}

/// The groups every ServiceAccount of `namespace` is in.
pub fn service_account_groups(namespace: &str) -> Vec<String> {
    vec![ALL_SERVICE_ACCOUNTS.to_string(), format!("{ALL_SERVICE_ACCOUNTS}:{namespace}")]
}

/// Namespace and name of a ServiceAccount user name (upstream `serviceaccount.SplitUsername`).
pub fn split_service_account_username(username: &str) -> Option<(&str, &str)> {
    let rest = username.strip_prefix(SERVICE_ACCOUNT_USERNAME_PREFIX)?;
    let mut parts = rest.split(':');
    let (namespace, name) = (parts.next()?, parts.next()?);
    if parts.next().is_some() || !is_dns_label_like(namespace) || !is_dns_subdomain_like(name) {
        return None;
    }
    Some((namespace, name))
}

fn is_dns_label_like(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_dns_subdomain_like(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_account_names_round_trip() {
        let u = service_account_username("kube-system", "bootstrap-signer");
        assert_eq!(u, "system:serviceaccount:kube-system:bootstrap-signer");
        assert_eq!(split_service_account_username(&u), Some(("kube-system", "bootstrap-signer")));
        assert_eq!(split_service_account_username("system:serviceaccount:a:b:c"), None);
        assert_eq!(split_service_account_username("alice"), None);
    }
}
