//! `--token-auth-file`: a CSV of `token,user,uid,"group1,group2"` read once at start
//! (upstream `pkg/authentication/token/tokenfile`).

use std::collections::HashMap;
use std::path::Path;

use async_trait::async_trait;

use super::{AuthnError, TokenAuthenticator};
use crate::UserInfo;

/// The users of a static token file.
#[derive(Debug, Default)]
pub struct StaticTokens {
    users: HashMap<String, UserInfo>,
}

impl StaticTokens {
    /// Reads `path`; a line with fewer than three columns is an error, as upstream.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("reading --token-auth-file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("--token-auth-file {}: {e}", path.display()))
    }

    /// Parses the CSV text of a token file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut users = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let line_number = index + 1;
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let columns = csv_columns(line).map_err(|e| format!("line {line_number}: {e}"))?;
            if columns.len() < 3 {
                return Err(format!("token file is missing the uid or user columns on line {line_number}"));
            }
            let token = columns[0].trim().to_string();
            if token.is_empty() {
                return Err(format!("empty token on line {line_number}"));
            }
            let groups = columns.get(3).map(|g| g.split(',').map(str::trim).filter(|g| !g.is_empty()).map(str::to_string).collect()).unwrap_or_default();
            let user = UserInfo { name: columns[1].clone(), uid: columns[2].clone(), groups, ..Default::default() };
            if users.insert(token, user).is_some() {
                tracing::warn!(line = line_number, "duplicate token in the token file, the last one wins");
            }
        }
        Ok(Self { users })
    }
}

/// The fields of one CSV line (RFC 4180 quoting: `"a,b"` and `""` inside quotes).
fn csv_columns(line: &str) -> Result<Vec<String>, String> {
    let mut columns = Vec::new();
    let mut current = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if current.is_empty() => quoted = true,
            (',', false) => columns.push(std::mem::take(&mut current)),
            (c, _) => current.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    columns.push(current);
    Ok(columns)
}

#[async_trait]
impl TokenAuthenticator for StaticTokens {
    async fn authenticate(&self, token: &str) -> Result<Option<UserInfo>, AuthnError> {
        Ok(self.users.get(token).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn users_with_quoted_groups_and_without_groups() {
        let tokens = StaticTokens::parse("abc123,alice,1001,\"dev,ops\"\n\nxyz,bob,1002\n").unwrap();
        let alice = tokens.authenticate("abc123").await.unwrap().unwrap();
        assert_eq!((alice.name.as_str(), alice.uid.as_str()), ("alice", "1001"));
        assert_eq!(alice.groups, vec!["dev", "ops"]);
        assert!(tokens.authenticate("xyz").await.unwrap().unwrap().groups.is_empty());
        assert_eq!(tokens.authenticate("nope").await.unwrap(), None);
    }

    #[test]
    fn a_line_without_uid_is_refused() {
        assert!(StaticTokens::parse("tok,alice\n").unwrap_err().contains("line 1"));
    }
}
