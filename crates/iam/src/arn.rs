//! IAM principal ARNs as STS reports them, and their canonical form for mapping (as
//! aws-iam-authenticator's `arn.Canonicalize`).

/// Partitions whose ARNs are identities.
const PARTITIONS: &[&str] = &["aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc"];

/// The ARN `aws-auth` entries are matched against: assumed-role session ARNs become the role's
/// ARN without a path (`arn:aws:sts::ACCT:assumed-role/ROLE/SESSION` →
/// `arn:aws:iam::ACCT:role/ROLE`); IAM users, roles, root and federated users are kept.
pub fn canonicalize(arn: &str) -> Result<String, String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, _region, account, resource] = parts.as_slice() else {
        return Err(format!("arn '{arn}' is invalid: 'arn: not enough sections'"));
    };
    if *prefix != "arn" {
        return Err(format!("arn '{arn}' is invalid: 'arn: invalid prefix'"));
    }
    if !PARTITIONS.contains(partition) {
        return Err(format!("partition {partition} is not recognized"));
    }
    let resource_parts: Vec<&str> = resource.split('/').collect();
    match *service {
        "sts" => match resource_parts.as_slice() {
            ["assumed-role", role, _session, ..] => Ok(format!("arn:{partition}:iam::{account}:role/{role}")),
            ["federated-user", ..] => Ok(arn.to_string()),
            _ => Err(format!("unrecognized resource {resource} for service sts")),
        },
        "iam" => match resource_parts.first() {
            Some(&"role") | Some(&"user") | Some(&"root") => Ok(arn.to_string()),
            _ => Err(format!("unrecognized resource {resource} for service iam")),
        },
        other => Err(format!("service {other} in arn {arn} is not a valid service for identities")),
    }
}

/// The account id of an ARN (its fifth section).
pub fn account_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assumed_role_sessions_become_path_less_role_arns() {
        assert_eq!(canonicalize("arn:aws:sts::111122223333:assumed-role/ops/alice@example.com").unwrap(), "arn:aws:iam::111122223333:role/ops");
        assert_eq!(canonicalize("arn:aws-cn:sts::111122223333:assumed-role/devs/s1").unwrap(), "arn:aws-cn:iam::111122223333:role/devs");
    }

    #[test]
    fn users_roles_and_federated_users_are_kept() {
        for arn in [
            "arn:aws:iam::111122223333:user/bob",
            "arn:aws:iam::111122223333:role/path/app",
            "arn:aws:iam::111122223333:root",
            "arn:aws:sts::111122223333:federated-user/carol",
        ] {
            assert_eq!(canonicalize(arn).unwrap(), arn);
        }
    }

    #[test]
    fn other_services_and_malformed_arns_are_refused() {
        assert_eq!(canonicalize("arn:aws:s3:::bucket").unwrap_err(), "service s3 in arn arn:aws:s3:::bucket is not a valid service for identities");
        assert_eq!(canonicalize("arn:aws:sts::1:assumed-role/only-role").unwrap_err(), "unrecognized resource assumed-role/only-role for service sts");
        assert!(canonicalize("not-an-arn").is_err());
        assert_eq!(canonicalize("arn:moon:iam::1:user/x").unwrap_err(), "partition moon is not recognized");
        assert_eq!(account_of("arn:aws:iam::111122223333:user/bob"), Some("111122223333"));
    }
}
