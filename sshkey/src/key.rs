//! Enrolled security keys: OpenSSH public key lines and `authorized_keys`.

use std::fmt;

use ssh_key::public::KeyData;
use ssh_key::{Algorithm, HashAlg, PublicKey};

/// `sk-ssh-ed25519@openssh.com`.
pub const SK_ED25519: &str = "sk-ssh-ed25519@openssh.com";
/// `sk-ecdsa-sha2-nistp256@openssh.com`.
pub const SK_ECDSA_P256: &str = "sk-ecdsa-sha2-nistp256@openssh.com";

/// The two security-key types that sign with a touch and a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkKeyType {
    Ed25519,
    EcdsaP256,
}

impl SkKeyType {
    /// The OpenSSH name (`sk-ssh-ed25519@openssh.com`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            SkKeyType::Ed25519 => SK_ED25519,
            SkKeyType::EcdsaP256 => SK_ECDSA_P256,
        }
    }

    fn from_name(name: &str) -> Option<SkKeyType> {
        match name {
            SK_ED25519 => Some(SkKeyType::Ed25519),
            SK_ECDSA_P256 => Some(SkKeyType::EcdsaP256),
            _ => None,
        }
    }
}

impl fmt::Display for SkKeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a key line was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("empty key line")]
    Empty,
    #[error(
        "{key_type} keys cannot be enrolled: only security keys \
         ({SK_ED25519}, {SK_ECDSA_P256}) sign with a touch and a counter"
    )]
    NotSecurityKey { key_type: String },
    #[error("not a valid {key_type} public key: {detail}")]
    Malformed { key_type: String, detail: String },
    #[error("the {key_type} key has an empty application")]
    NoApplication { key_type: SkKeyType },
}

/// A security key enrolled for a person: its public key, the application it
/// was made for (`ssh:` unless chosen otherwise with `ssh-keygen -O
/// application=`) and the comment it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolledSkKey {
    public: PublicKey,
    key_type: SkKeyType,
}

impl EnrolledSkKey {
    /// Parse one OpenSSH public key line (`TYPE BASE64 [COMMENT]`), as in an
    /// `id_ed25519_sk.pub` file. Only [`SK_ED25519`] and [`SK_ECDSA_P256`]
    /// keys are accepted; the public key must be a valid curve point.
    pub fn from_openssh_line(line: &str) -> Result<EnrolledSkKey, KeyError> {
        let mut fields = line.split_whitespace();
        let type_name = fields.next().ok_or(KeyError::Empty)?;
        let key_type = SkKeyType::from_name(type_name).ok_or_else(|| KeyError::NotSecurityKey {
            key_type: type_name.to_owned(),
        })?;
        let malformed = |detail: String| KeyError::Malformed {
            key_type: type_name.to_owned(),
            detail,
        };
        let base64 = fields
            .next()
            .ok_or_else(|| malformed("the base64 key is missing".into()))?;
        let comment = fields.collect::<Vec<_>>().join(" ");
        let public = PublicKey::from_openssh(&format!("{type_name} {base64} {comment}"))
            .map_err(|e| malformed(e.to_string()))?;
        // from_openssh checks that the blob's type is the line's type.
        check_point(public.key_data()).map_err(malformed)?;
        let key = EnrolledSkKey { public, key_type };
        if key.application().is_empty() {
            return Err(KeyError::NoApplication { key_type });
        }
        Ok(key)
    }

    pub fn key_type(&self) -> SkKeyType {
        self.key_type
    }

    /// The FIDO application (relying party id) the key was made for.
    pub fn application(&self) -> &str {
        application_of(self.public.key_data()).unwrap_or("")
    }

    /// The comment after the key, if any ("" when none).
    pub fn comment(&self) -> &str {
        self.public.comment().as_str_lossy()
    }

    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        self.public.fingerprint(HashAlg::Sha256).to_string()
    }

    /// The key line again (`TYPE BASE64 COMMENT`), for storage.
    pub fn to_openssh_line(&self) -> String {
        // Encoding a key that was just decoded cannot fail; fall back to the
        // comment-less form rather than panic.
        self.public
            .to_openssh()
            .unwrap_or_else(|_| format!("{} <unencodable>", self.key_type))
    }

    /// The parsed key, for callers that need `ssh-key` types.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The key's wire encoding: what an agent lists and what a sign request
    /// names.
    pub(crate) fn key_data(&self) -> &KeyData {
        self.public.key_data()
    }
}

/// The application of an sk key (None for other keys).
pub(crate) fn application_of(key: &KeyData) -> Option<&str> {
    match key {
        KeyData::SkEd25519(k) => Some(k.application()),
        KeyData::SkEcdsaSha2NistP256(k) => Some(k.application()),
        _ => None,
    }
}

/// The key material without the application: two sk keys with the same
/// material and different applications are "the same key, wrong app".
pub(crate) fn material_of(key: &KeyData) -> Option<(Algorithm, &[u8])> {
    match key {
        KeyData::SkEd25519(k) => Some((key.algorithm(), k.public_key().as_ref())),
        KeyData::SkEcdsaSha2NistP256(k) => Some((key.algorithm(), k.ec_point().as_bytes())),
        _ => None,
    }
}

/// Refuse a public key that is not a point of its curve.
fn check_point(key: &KeyData) -> Result<(), String> {
    match key {
        KeyData::SkEd25519(k) => {
            let bytes: &[u8; 32] = k.public_key().as_ref();
            ed25519_dalek::VerifyingKey::from_bytes(bytes)
                .map(drop)
                .map_err(|_| "the Ed25519 key is not a valid point".into())
        }
        KeyData::SkEcdsaSha2NistP256(k) => {
            p256::ecdsa::VerifyingKey::from_sec1_bytes(k.ec_point().as_bytes())
                .map(drop)
                .map_err(|_| "the P-256 key is not a valid point".into())
        }
        other => Err(format!("unexpected key data {}", other.algorithm())),
    }
}

/// What [`parse_authorized_keys`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthorizedKeys {
    /// The security keys to enroll, with their 1-based line numbers.
    pub keys: Vec<(usize, EnrolledSkKey)>,
    /// Keys left out, with their line numbers and why (for the report).
    pub skipped: Vec<(usize, Skipped)>,
}

/// Why an `authorized_keys` entry was left out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Skipped {
    #[error("{key_type} is not a security key")]
    NotSecurityKey { key_type: String },
    #[error("{key_type} key with `no-touch-required`: it may sign without a touch")]
    NoTouchRequired { key_type: SkKeyType },
    #[error("{key_type} key with `cert-authority`: a CA key, not the person's own")]
    CertAuthority { key_type: String },
}

/// A line of `authorized_keys` that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {error}")]
pub struct AuthorizedKeysError {
    /// 1-based.
    pub line: usize,
    pub error: KeyError,
}

/// Read a user's `authorized_keys` (for `stepupctl import authorized-keys`).
///
/// Blank lines and `#` comments are ignored; options before the key type
/// (`restrict`, `command="…"`, …) are allowed, quotes included. Security
/// keys are returned; other keys, sk keys marked `no-touch-required` (sshd
/// accepts their signatures without a touch, and a touch is the point of
/// this factor: enroll such a key explicitly if it does require one) and
/// `cert-authority` lines are listed in [`AuthorizedKeys::skipped`]. A line
/// that is not a valid key (bad syntax, bad base64, an invalid point) is an
/// error naming the line. All or nothing is the caller's: the result either
/// lists every line's fate or names the first bad line.
pub fn parse_authorized_keys(text: &str) -> Result<AuthorizedKeys, AuthorizedKeysError> {
    let mut found = AuthorizedKeys::default();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let at = |error| AuthorizedKeysError { line, error };
        let (options, key_part) = split_options(trimmed).map_err(at)?;
        let type_name = key_part.split_whitespace().next().unwrap_or("");
        let has = |name: &str| options.iter().any(|o| o.eq_ignore_ascii_case(name));
        if has("cert-authority") {
            found.skipped.push((
                line,
                Skipped::CertAuthority {
                    key_type: type_name.to_owned(),
                },
            ));
            continue;
        }
        match EnrolledSkKey::from_openssh_line(key_part) {
            Ok(key) if has("no-touch-required") => found.skipped.push((
                line,
                Skipped::NoTouchRequired {
                    key_type: key.key_type(),
                },
            )),
            Ok(key) => found.keys.push((line, key)),
            Err(KeyError::NotSecurityKey { key_type }) => {
                // Still a key line: check it parses, so a typo is reported.
                PublicKey::from_openssh(key_part).map_err(|e| {
                    at(KeyError::Malformed {
                        key_type: key_type.clone(),
                        detail: e.to_string(),
                    })
                })?;
                found
                    .skipped
                    .push((line, Skipped::NotSecurityKey { key_type }));
            }
            Err(error) => return Err(at(error)),
        }
    }
    Ok(found)
}

/// Does `word` name a key type (rather than start an options list)?
fn is_key_type(word: &str) -> bool {
    ["ssh-", "ecdsa-", "sk-"]
        .iter()
        .any(|prefix| word.starts_with(prefix))
        && !word.contains(['=', ',', '"'])
}

/// Split `[options] key…` the way sshd does: the options run to the first
/// blank outside double quotes.
fn split_options(line: &str) -> Result<(Vec<&str>, &str), KeyError> {
    let first = line.split_whitespace().next().unwrap_or("");
    if is_key_type(first) {
        return Ok((Vec::new(), line));
    }
    let bad = |detail: &str| KeyError::Malformed {
        key_type: "options".into(),
        detail: detail.into(),
    };
    let mut quoted = false;
    let mut options = Vec::new();
    let mut start = 0;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                options.push(&line[start..i]);
                start = i + 1;
            }
            ' ' | '\t' if !quoted => {
                options.push(&line[start..i]);
                let rest = line[i..].trim_start();
                if rest.is_empty() {
                    return Err(bad("no key after the options"));
                }
                return Ok((options, rest));
            }
            _ => {}
        }
    }
    Err(bad(if quoted {
        "unterminated quote in the options"
    } else {
        "no key after the options"
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::test_keys::{ecdsa_line, ed25519_line};

    #[test]
    fn ed25519_sk_line_keeps_type_application_comment_and_fingerprint() {
        let (line, _) = ed25519_line("ssh:", "alice@laptop yubikey 5");
        let key = EnrolledSkKey::from_openssh_line(&line).unwrap();
        assert_eq!(key.key_type(), SkKeyType::Ed25519);
        assert_eq!(key.application(), "ssh:");
        assert_eq!(key.comment(), "alice@laptop yubikey 5");
        assert!(key.fingerprint().starts_with("SHA256:"));
        assert_eq!(key.fingerprint().len(), "SHA256:".len() + 43);
        assert_eq!(key.to_openssh_line(), line);
        // The same key with another application is another key.
        let (other_app, _) = ed25519_line("ssh:other", "");
        let other = EnrolledSkKey::from_openssh_line(&other_app).unwrap();
        assert_eq!(other.application(), "ssh:other");
        assert_eq!(other.comment(), "");
    }

    #[test]
    fn ecdsa_sk_line_is_accepted() {
        let (line, _) = ecdsa_line("ssh:", "bob");
        let key = EnrolledSkKey::from_openssh_line(&format!("  {line}\n")).unwrap();
        assert_eq!(key.key_type(), SkKeyType::EcdsaP256);
        assert_eq!(key.key_type().to_string(), SK_ECDSA_P256);
    }

    #[test]
    fn other_key_types_are_refused_naming_the_type() {
        let plain =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti x";
        let err = EnrolledSkKey::from_openssh_line(plain).unwrap_err();
        assert_eq!(
            err,
            KeyError::NotSecurityKey {
                key_type: "ssh-ed25519".into()
            }
        );
        assert!(
            err.to_string()
                .starts_with("ssh-ed25519 keys cannot be enrolled")
        );
        let cert = EnrolledSkKey::from_openssh_line("sk-ssh-ed25519-cert-v01@openssh.com AAAA");
        assert!(matches!(cert, Err(KeyError::NotSecurityKey { .. })));
        assert_eq!(EnrolledSkKey::from_openssh_line("  "), Err(KeyError::Empty));
    }

    #[test]
    fn malformed_sk_lines_are_refused() {
        let (line, _) = ed25519_line("ssh:", "c");
        let base64 = line.split(' ').nth(1).unwrap();
        for bad in [
            SK_ED25519.to_string(),
            format!("{SK_ED25519} not-base64!"),
            format!("{SK_ED25519} {}", &base64[..base64.len() - 8]),
            // An ecdsa-sk blob under the ed25519-sk name.
            format!(
                "{SK_ED25519} {}",
                ecdsa_line("ssh:", "").0.split(' ').nth(1).unwrap()
            ),
        ] {
            assert!(
                matches!(
                    EnrolledSkKey::from_openssh_line(&bad),
                    Err(KeyError::Malformed { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_ecdsa_point_off_the_curve_is_refused() {
        use ssh_key::public::{EcdsaPublicKey, SkEcdsaSha2NistP256};
        let (line, _) = ecdsa_line("ssh:", "");
        let key = PublicKey::from_openssh(&line).unwrap();
        let mut point = key
            .key_data()
            .sk_ecdsa_p256()
            .unwrap()
            .ec_point()
            .as_bytes()
            .to_vec();
        point[64] ^= 1; // y no longer matches x
        let bad_point = EcdsaPublicKey::from_sec1_bytes(&point).unwrap();
        let EcdsaPublicKey::NistP256(bad_point) = bad_point else {
            panic!("not P-256")
        };
        let bad = PublicKey::new(SkEcdsaSha2NistP256::new(bad_point, "ssh:").into(), "");
        let err = EnrolledSkKey::from_openssh_line(&bad.to_openssh().unwrap()).unwrap_err();
        assert!(err.to_string().contains("not a valid point"), "{err}");
    }

    #[test]
    fn authorized_keys_with_options_comments_and_other_keys() {
        let (sk1, _) = ed25519_line("ssh:", "one");
        let (sk2, _) = ecdsa_line("ssh:", "two");
        let (sk3, _) = ed25519_line("ssh:", "three");
        let (ca, _) = ed25519_line("ssh:", "ca");
        let plain = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti plain";
        let text = format!(
            "# keys\n\n{sk1}\nrestrict,command=\"echo a, b\" {sk2}\n{plain}\n\
             No-Touch-Required {sk3}\ncert-authority {ca}\n"
        );
        let found = parse_authorized_keys(&text).unwrap();
        let keys: Vec<_> = found.keys.iter().map(|(l, k)| (*l, k.comment())).collect();
        assert_eq!(keys, [(3, "one"), (4, "two")]);
        assert_eq!(
            found.skipped,
            [
                (
                    5,
                    Skipped::NotSecurityKey {
                        key_type: "ssh-ed25519".into()
                    }
                ),
                (
                    6,
                    Skipped::NoTouchRequired {
                        key_type: SkKeyType::Ed25519
                    }
                ),
                (
                    7,
                    Skipped::CertAuthority {
                        key_type: SK_ED25519.into()
                    }
                ),
            ]
        );
    }

    #[test]
    fn authorized_keys_errors_name_the_line() {
        let (sk, _) = ed25519_line("ssh:", "ok");
        let cases = [
            format!("{sk}\n\nsk-ssh-ed25519@openssh.com AAAAbroken\n"),
            format!("{sk}\n\nssh-ed25519 AAAAbroken\n"),
            format!("{sk}\n\ncommand=\"unterminated {sk}\n"),
            format!("{sk}\n\nrestrict\n"),
        ];
        for text in cases {
            let err = parse_authorized_keys(&text).unwrap_err();
            assert_eq!(err.line, 3, "{text}: {err}");
            assert!(err.to_string().starts_with("line 3: "), "{err}");
        }
    }
}
