//! sshd's `SSH_AUTH_INFO_0`: the authentication methods a login completed.
//!
//! sshd (auth2.c, `auth2_update_session_info`) writes one line per completed
//! method: `METHOD[/SUBMETHOD]`, then for methods that used a key (`publickey`,
//! `hostbased`) the key as in a `.pub` file (`TYPE BASE64`), then optional
//! details (`signature count = 7` for security keys). For example:
//!
//! ```text
//! publickey sk-ssh-ed25519@openssh.com AAAAGnNr… signature count = 7
//! keyboard-interactive/pam
//! ```
//!
//! Only trust this text when it comes from sshd (the PAM module passes it
//! for sshd services only).

use ssh_key::{Certificate, HashAlg, PublicKey};

/// Methods whose line carries the key used.
const KEY_METHODS: [&str; 2] = ["publickey", "hostbased"];

/// One completed method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthMethod {
    /// `publickey`, `keyboard-interactive`, `password`, … (any name is kept).
    pub method: String,
    /// After a `/`: `pam` in `keyboard-interactive/pam`.
    pub submethod: Option<String>,
    /// The key, for `publickey` and `hostbased`.
    pub key: Option<LoginKey>,
}

/// The key a method used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginKey {
    /// As sshd wrote it: `sk-ssh-ed25519@openssh.com`,
    /// `ssh-ed25519-cert-v01@openssh.com`, …
    pub key_type: String,
    /// `SHA256:…` of the key (for a certificate: of the certified key, as
    /// `ssh-keygen -l` prints for the key file).
    pub fingerprint: String,
}

impl LoginKey {
    /// A FIDO security key (`sk-…`), whose login needed a touch unless the
    /// server allowed `no-touch-required`.
    pub fn is_security_key(&self) -> bool {
        self.key_type.starts_with("sk-")
    }
}

/// A key sshd reported that cannot be read: the whole text is suspect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthInfoError {
    #[error("SSH_AUTH_INFO_0 line {line}: {method} without a key")]
    MissingKey { line: usize, method: String },
    #[error("SSH_AUTH_INFO_0 line {line}: not a valid {key_type} key: {detail}")]
    Malformed {
        line: usize,
        key_type: String,
        detail: String,
    },
}

/// Parse `SSH_AUTH_INFO_0`. Blank lines are skipped and methods without a
/// key are kept by name whatever follows them; a `publickey` or `hostbased`
/// line whose key cannot be read fails the whole text (fail closed: a
/// condition on the login key then does not hold).
pub fn parse_ssh_auth_info(text: &str) -> Result<Vec<AuthMethod>, AuthInfoError> {
    let mut methods = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let mut fields = raw.split_whitespace();
        let Some(first) = fields.next() else {
            continue;
        };
        let (method, submethod) = match first.split_once('/') {
            Some((m, s)) => (m, Some(s.to_owned())),
            None => (first, None),
        };
        let key = if KEY_METHODS.contains(&method) {
            let line = index + 1;
            let (Some(key_type), Some(base64)) = (fields.next(), fields.next()) else {
                return Err(AuthInfoError::MissingKey {
                    line,
                    method: method.to_owned(),
                });
            };
            Some(
                login_key(key_type, base64).map_err(|detail| AuthInfoError::Malformed {
                    line,
                    key_type: key_type.to_owned(),
                    detail,
                })?,
            )
        } else {
            None
        };
        methods.push(AuthMethod {
            method: method.to_owned(),
            submethod,
            key,
        });
    }
    Ok(methods)
}

fn login_key(key_type: &str, base64: &str) -> Result<LoginKey, String> {
    let text = format!("{key_type} {base64}");
    let fingerprint = if key_type.ends_with("-cert-v01@openssh.com") {
        let cert = Certificate::from_openssh(&text).map_err(|e| e.to_string())?;
        cert.public_key().fingerprint(HashAlg::Sha256)
    } else {
        PublicKey::from_openssh(&text)
            .map_err(|e| e.to_string())?
            .fingerprint(HashAlg::Sha256)
    };
    Ok(LoginKey {
        key_type: key_type.to_owned(),
        fingerprint: fingerprint.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::test_keys::ed25519_line;

    const PLAIN: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti";

    #[test]
    fn publickey_then_keyboard_interactive() {
        let (sk, soft) = ed25519_line("ssh:", "");
        let text = format!("publickey {sk} signature count = 7\nkeyboard-interactive/pam\n");
        let methods = parse_ssh_auth_info(&text).unwrap();
        assert_eq!(methods.len(), 2);
        let key = methods[0].key.as_ref().unwrap();
        assert_eq!(methods[0].method, "publickey");
        assert_eq!(key.key_type, "sk-ssh-ed25519@openssh.com");
        assert_eq!(key.fingerprint, soft.enrolled().fingerprint());
        assert!(key.is_security_key());
        assert_eq!(
            methods[1],
            AuthMethod {
                method: "keyboard-interactive".into(),
                submethod: Some("pam".into()),
                key: None
            }
        );
    }

    #[test]
    fn several_keys_unknown_methods_and_blank_lines() {
        let (sk, _) = ed25519_line("ssh:", "");
        let text = format!(
            "publickey {PLAIN}\n\ngssapi-with-mic alice@EXAMPLE.ORG\npublickey {sk}\nfuture-method x y z\n"
        );
        let methods = parse_ssh_auth_info(&text).unwrap();
        let names: Vec<_> = methods.iter().map(|m| m.method.as_str()).collect();
        assert_eq!(
            names,
            ["publickey", "gssapi-with-mic", "publickey", "future-method"]
        );
        let plain = methods[0].key.as_ref().unwrap();
        assert_eq!(plain.key_type, "ssh-ed25519");
        assert!(!plain.is_security_key());
        assert_eq!(
            plain.fingerprint,
            PublicKey::from_openssh(PLAIN)
                .unwrap()
                .fingerprint(HashAlg::Sha256)
                .to_string()
        );
        assert!(methods[1].key.is_none() && methods[3].key.is_none());
        assert_eq!(parse_ssh_auth_info("").unwrap(), []);
    }

    #[test]
    fn malformed_or_missing_keys_fail_the_whole_text() {
        let cases = [
            ("keyboard-interactive\npublickey\n", 2),
            ("publickey ssh-ed25519\n", 1),
            ("publickey ssh-ed25519 AAAAnot-a-key\n", 1),
            ("hostbased sk-ssh-ed25519@openssh.com AAAAC3Nz\n", 1),
            ("publickey ssh-ed25519-cert-v01@openssh.com AAAAbroken\n", 1),
        ];
        for (text, line) in cases {
            let err = parse_ssh_auth_info(text).unwrap_err();
            let got = match &err {
                AuthInfoError::MissingKey { line, .. } | AuthInfoError::Malformed { line, .. } => {
                    *line
                }
            };
            assert_eq!(got, line, "{text:?}: {err}");
        }
        // A key whose blob is of another type than the line says.
        let (sk, _) = ed25519_line("ssh:", "");
        let blob = sk.split(' ').nth(1).unwrap();
        assert!(parse_ssh_auth_info(&format!("publickey ssh-ed25519 {blob}")).is_err());
    }
}
