//! sshd's `AuthenticationMethods`, for the login-key conditions
//! (`login_key_type`, `login_key`, `new_login_key`): sshd tells PAM which
//! key a login used (`SSH_AUTH_INFO_0`) only when keyboard-interactive
//! (which runs the PAM auth stack) follows publickey in the same login, as
//! `AuthenticationMethods publickey,keyboard-interactive` requires.

use crate::Finding;

/// The first `AuthenticationMethods` outside a `Match` block (sshd takes
/// the first value of a keyword), as its method lists.
pub fn authentication_methods(text: &str) -> Option<(usize, Vec<Vec<String>>)> {
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        let mut words = line.split_whitespace();
        let Some(keyword) = words.next() else {
            continue;
        };
        if keyword.eq_ignore_ascii_case("match") {
            return None;
        }
        if keyword.eq_ignore_ascii_case("authenticationmethods") {
            let lists = words
                .map(|list| list.split(',').map(str::to_ascii_lowercase).collect())
                .collect();
            return Some((n + 1, lists));
        }
    }
    None
}

/// Does this method list show PAM the key: publickey, then later
/// keyboard-interactive?
fn shows_key(list: &[String]) -> bool {
    let publickey = list.iter().position(|m| m == "publickey");
    let kbd = list
        .iter()
        .rposition(|m| m == "keyboard-interactive" || m.starts_with("keyboard-interactive:"));
    matches!((publickey, kbd), (Some(p), Some(k)) if p < k)
}

/// When the policy has login-key rules: warn if sshd lets a login through
/// without showing PAM the key.
pub fn check_sshd_config(path: &str, text: &str, login_key_rules: bool) -> Vec<Finding> {
    if !login_key_rules {
        return Vec::new();
    }
    match authentication_methods(text) {
        None => vec![Finding::warning(
            path,
            "the policy has login-key rules, but sshd_config sets no AuthenticationMethods: a login may pass PAM without a key first, and then PAM never sees one; set `AuthenticationMethods publickey,keyboard-interactive`",
        )],
        Some((line, lists)) => lists
            .iter()
            .filter(|list| !shows_key(list))
            .map(|list| {
                Finding::warning(
                    format!("{path}:{line}"),
                    format!(
                        "AuthenticationMethods `{}`: PAM never sees the login key with it (publickey must come before keyboard-interactive), so login-key rules never hold for such logins",
                        list.join(",")
                    ),
                )
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_publickey_then_keyboard_interactive_shows_the_key() {
        let ok = "Port 22\nAuthenticationMethods publickey,keyboard-interactive\n";
        assert!(check_sshd_config("c", ok, true).is_empty());
        let ok_pam = "AuthenticationMethods publickey,keyboard-interactive:pam\n";
        assert!(check_sshd_config("c", ok_pam, true).is_empty());
        let key_only = "AuthenticationMethods publickey\n";
        assert_eq!(check_sshd_config("c", key_only, true).len(), 1);
        let either = "AuthenticationMethods publickey,keyboard-interactive password\n";
        let found = check_sshd_config("c", either, true);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].location, "c:1");
        let unset = "PasswordAuthentication no\n";
        assert_eq!(check_sshd_config("c", unset, true).len(), 1);
        assert!(check_sshd_config("c", unset, false).is_empty());
        // A Match block's value is not the default.
        let matched = "Match User x\n  AuthenticationMethods publickey,keyboard-interactive\n";
        assert_eq!(check_sshd_config("c", matched, true).len(), 1);
    }
}
