//! The `kube-system/aws-auth` ConfigMap: which IAM identities are which Kubernetes users (as
//! aws-iam-authenticator's ConfigMap mapper and its username/group templates).

use std::collections::BTreeMap;

use rkube_auth::UserInfo;
use serde::Deserialize;

/// Who STS says signed a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The ARN GetCallerIdentity returned.
    pub arn: String,
    /// The ARN mappings match: assumed-role sessions as their role.
    pub canonical_arn: String,
    /// Account id.
    pub account_id: String,
    /// The principal's unique id (before `:` in GetCallerIdentity's UserId).
    pub user_id: String,
    /// The role session name (after `:` in UserId), for assumed roles.
    pub session_name: String,
    /// The signer's access key id.
    pub access_key_id: String,
}

/// One `mapRoles` or `mapUsers` entry.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub struct ArnMapping {
    /// `rolearn` of a mapRoles entry.
    #[serde(default)]
    pub rolearn: Option<String>,
    /// `userarn` of a mapUsers entry.
    #[serde(default)]
    pub userarn: Option<String>,
    /// User name template.
    #[serde(default)]
    pub username: String,
    /// Group templates.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// The parsed `aws-auth` data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsAuth {
    /// `mapRoles`.
    pub roles: Vec<ArnMapping>,
    /// `mapUsers`.
    pub users: Vec<ArnMapping>,
    /// `mapAccounts`: every identity of these accounts is a user named by its ARN.
    pub accounts: Vec<String>,
}

impl AwsAuth {
    /// Parses the ConfigMap's `data`; an error names the key that is malformed.
    pub fn from_data(data: &BTreeMap<String, String>) -> Result<Self, String> {
        let mut auth = AwsAuth::default();
        if let Some(text) = data.get("mapRoles") {
            auth.roles = parse_list(text).map_err(|e| format!("mapRoles: {e}"))?;
            if let Some(m) = auth.roles.iter().find(|m| m.rolearn.as_deref().unwrap_or("").is_empty()) {
                return Err(format!("mapRoles: entry {m:?} has no rolearn"));
            }
        }
        if let Some(text) = data.get("mapUsers") {
            auth.users = parse_list(text).map_err(|e| format!("mapUsers: {e}"))?;
            if let Some(m) = auth.users.iter().find(|m| m.userarn.as_deref().unwrap_or("").is_empty()) {
                return Err(format!("mapUsers: entry {m:?} has no userarn"));
            }
        }
        if let Some(text) = data.get("mapAccounts") {
            auth.accounts = parse_list(text).map_err(|e| format!("mapAccounts: {e}"))?;
        }
        Ok(auth)
    }

    /// The Kubernetes user of `id`, `Ok(None)` when nothing maps it.
    pub fn map(&self, id: &Identity) -> Result<Option<UserInfo>, String> {
        let canonical = id.canonical_arn.to_ascii_lowercase();
        let matches = |arn: &Option<String>| arn.as_deref().is_some_and(|a| a.trim().to_ascii_lowercase() == canonical);
        let entry = self.roles.iter().find(|m| matches(&m.rolearn)).or_else(|| self.users.iter().find(|m| matches(&m.userarn)));
        let (name, groups) = match entry {
            Some(m) => {
                let name = if m.username.is_empty() { id.canonical_arn.clone() } else { render(&m.username, id)? };
                let groups = m.groups.iter().map(|g| render(g, id)).collect::<Result<Vec<_>, _>>()?;
                (name, groups)
            }
            None if self.accounts.iter().any(|a| a.trim() == id.account_id) => (id.canonical_arn.clone(), Vec::new()),
            None => return Ok(None),
        };
        let mut user = UserInfo::new(name, groups);
        user.uid = format!("aws-iam-authenticator:{}:{}", id.account_id, id.user_id);
        let mut extra = BTreeMap::new();
        extra.insert("arn".to_string(), vec![id.arn.clone()]);
        extra.insert("canonicalArn".to_string(), vec![id.canonical_arn.clone()]);
        extra.insert("sessionName".to_string(), vec![id.session_name.clone()]);
        extra.insert("accessKeyId".to_string(), vec![id.access_key_id.clone()]);
        extra.insert("principalId".to_string(), vec![id.user_id.clone()]);
        user.extra = extra;
        Ok(Some(user))
    }
}

fn parse_list<T: for<'de> Deserialize<'de>>(text: &str) -> Result<Vec<T>, String> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    serde_yaml_ng::from_str::<Option<Vec<T>>>(text).map(Option::unwrap_or_default).map_err(|e| e.to_string())
}

/// Fills `{{AccountID}}`, `{{SessionName}}` (with `@` as `-`, which user names may not hold in
/// some tools), `{{SessionNameRaw}}` and `{{AccessKeyID}}`; `{{EC2PrivateDNSName}}` needs EC2
/// lookups rkube does not make.
fn render(template: &str, id: &Identity) -> Result<String, String> {
    if template.contains("{{EC2PrivateDNSName}}") {
        return Err("username template {{EC2PrivateDNSName}} is not supported by rkube".into());
    }
    let needs_session = template.contains("{{SessionName}}") || template.contains("{{SessionNameRaw}}");
    if needs_session && id.session_name.is_empty() {
        return Err(format!("{template:?} uses the session name, but {} is not a role session", id.arn));
    }
    let out = template
        .replace("{{AccountID}}", &id.account_id)
        .replace("{{SessionNameRaw}}", &id.session_name)
        .replace("{{SessionName}}", &id.session_name.replace('@', "-"))
        .replace("{{AccessKeyID}}", &id.access_key_id);
    if let Some(start) = out.find("{{") {
        return Err(format!("unknown template {:?} in {template:?}", &out[start..]));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> AwsAuth {
        let mut data = BTreeMap::new();
        data.insert(
            "mapRoles".to_string(),
            "- rolearn: arn:aws:iam::111122223333:role/ops\n  username: ops:{{SessionName}}\n  groups:\n    - system:masters\n\
             - rolearn: arn:aws:iam::111122223333:role/lead-devs\n  username: lead:{{SessionNameRaw}}\n  groups: [readwrite]\n\
             - rolearn: arn:aws:iam::111122223333:role/devs\n  username: dev-{{AccountID}}\n  groups: [readonly, debugmode]\n"
                .to_string(),
        );
        data.insert("mapUsers".to_string(), "- userarn: arn:aws:iam::111122223333:user/bob\n  username: bob\n".to_string());
        data.insert("mapAccounts".to_string(), "- \"444455556666\"\n".to_string());
        AwsAuth::from_data(&data).unwrap()
    }

    fn session(role: &str, session: &str) -> Identity {
        Identity {
            arn: format!("arn:aws:sts::111122223333:assumed-role/{role}/{session}"),
            canonical_arn: format!("arn:aws:iam::111122223333:role/{role}"),
            account_id: "111122223333".into(),
            user_id: "AROAEXAMPLE".into(),
            session_name: session.into(),
            access_key_id: "ASIAEXAMPLE".into(),
        }
    }

    #[test]
    fn roles_map_to_templated_names_and_groups() {
        let auth = seed();
        let ops = auth.map(&session("ops", "alice@example.com")).unwrap().unwrap();
        assert_eq!((ops.name.as_str(), ops.groups.clone()), ("ops:alice-example.com", vec!["system:masters".to_string()]));
        assert_eq!(ops.uid, "aws-iam-authenticator:111122223333:AROAEXAMPLE");
        assert_eq!(ops.extra["arn"], vec!["arn:aws:sts::111122223333:assumed-role/ops/alice@example.com".to_string()]);
        assert_eq!(auth.map(&session("lead-devs", "a@b")).unwrap().unwrap().name, "lead:a@b");
        let dev = auth.map(&session("devs", "x")).unwrap().unwrap();
        assert_eq!((dev.name.as_str(), dev.groups), ("dev-111122223333", vec!["readonly".to_string(), "debugmode".to_string()]));
    }

    #[test]
    fn users_accounts_and_unmapped_identities() {
        let auth = seed();
        let mut bob = session("x", "");
        bob.arn = "arn:aws:iam::111122223333:user/bob".into();
        bob.canonical_arn = bob.arn.clone();
        assert_eq!(auth.map(&bob).unwrap().unwrap().name, "bob");
        let mut other = session("anything", "s");
        other.account_id = "444455556666".into();
        other.canonical_arn = "arn:aws:iam::444455556666:role/anything".into();
        let user = auth.map(&other).unwrap().unwrap();
        assert_eq!((user.name.as_str(), user.groups.len()), ("arn:aws:iam::444455556666:role/anything", 0));
        assert_eq!(auth.map(&session("strangers", "s")).unwrap(), None);
    }

    #[test]
    fn malformed_data_and_unsupported_templates_are_errors() {
        let mut data = BTreeMap::new();
        data.insert("mapRoles".to_string(), "- rolearn: [unclosed".to_string());
        assert!(AwsAuth::from_data(&data).unwrap_err().starts_with("mapRoles: "));
        data.insert("mapRoles".to_string(), "- rolearn: arn:aws:iam::1:role/n\n  username: system:node:{{EC2PrivateDNSName}}\n".to_string());
        let auth = AwsAuth::from_data(&data).unwrap();
        let mut id = session("n", "i-1");
        id.account_id = "1".into();
        id.canonical_arn = "arn:aws:iam::1:role/n".into();
        assert_eq!(auth.map(&id).unwrap_err(), "username template {{EC2PrivateDNSName}} is not supported by rkube");
    }
}
