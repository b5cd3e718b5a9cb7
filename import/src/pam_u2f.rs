//! pam-u2f authfiles (`~/.config/Yubico/u2f_keys`, a central
//! `/etc/u2f_mappings`), as written by `pamu2fcfg` and read by
//! `parse_native_format` / `parse_native_credential` / `parse_pk` in pam-u2f's
//! `util.c`:
//!
//! ```text
//! user:KeyHandle,UserKey,CoseType,Options[:KeyHandle,UserKey,CoseType,Options...]
//! user:KeyHandle,UserKeyHex                      (legacy, pre-FIDO2 pam-u2f)
//! ```
//!
//! * `pamu2fcfg` prints `KeyHandle` (or `*` for a resident credential) and
//!   `UserKey` as standard, padded base64; `CoseType` as `es256`, `eddsa` or
//!   `rs256`; `Options` as `+presence`, `+verification`, `+pin` concatenated in
//!   that order (empty with `-P`, giving a trailing comma).
//! * For es256 the `UserKey` is libfido2's `es256_pk_t`, the 64 raw bytes
//!   X‖Y without the 0x04 prefix; libfido2 also accepts 65 bytes 0x04‖X‖Y.
//!   The parser returns 0x04‖X‖Y in both cases. eddsa keys are 32 bytes.
//! * A credential with only two fields is the legacy format: `KeyHandle` is
//!   web-safe base64 without padding (pam-u2f converts `-_` to `+/` and pads),
//!   `UserKey` is the hex of the 65-byte uncompressed P-256 point, and pam-u2f
//!   assumes es256 and `+presence`. Legacy credentials were registered with the
//!   U2F `appid`, not the FIDO2 `origin`.
//!
//! pam-u2f has no comment syntax; a line starting with `#` just names a user
//! that never logs in, so the parser skips it as a comment. pam-u2f keeps only
//! the last line for a user, so a user on two lines is refused rather than
//! silently dropping (or reviving) credentials.

use std::collections::HashMap;

use data_encoding::{BASE64_NOPAD, HEXLOWER_PERMISSIVE};

use crate::ImportError;
use crate::text::{check_user, numbered_lines, reject_bom};

/// The COSE algorithm of a credential's public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoseAlgorithm {
    /// ECDSA with P-256 and SHA-256 (COSE -7).
    Es256,
    /// Ed25519 (COSE -8).
    EdDsa,
}

/// One credential from a pam-u2f authfile. Holds no secrets (key handles and
/// public keys are not secret), so `Debug` is derived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct U2fCredential {
    /// The login name the line is for.
    pub user: String,
    /// The 1-based line the credential is on.
    pub line: usize,
    /// The decoded credential ID; empty when `resident`.
    pub key_handle: Vec<u8>,
    /// A resident (discoverable) credential, written as `*`: the
    /// authenticator finds it by RP ID, there is no key handle to send.
    pub resident: bool,
    /// The public key as stepup verifies with it: ES256 = the 65-byte
    /// uncompressed SEC1 point 0x04‖X‖Y; EdDSA = the 32-byte Ed25519 key.
    pub public_key: Vec<u8>,
    pub algorithm: CoseAlgorithm,
    /// `+presence`: a touch is required.
    pub presence: bool,
    /// `+pin`: the authenticator PIN is required.
    pub pin: bool,
    /// `+verification`: built-in user verification (e.g. fingerprint) is
    /// required.
    pub verification: bool,
    /// Registered by pre-FIDO2 pam-u2f (two-field format): a U2F credential
    /// bound to pam-u2f's `appid`, not its `origin`.
    pub legacy: bool,
}

const OPENSSH_SK_HEADER: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";

/// Parses a pam-u2f authfile into its credentials, in file order.
///
/// # Errors
///
/// [`ImportError::Line`] for the first malformed line: a missing or invalid
/// user name, no credentials, a field that does not decode, an unsupported
/// COSE type (rs256 included), a key of the wrong size, an unknown option
/// flag, or a user already seen on an earlier line. [`ImportError::Format`]
/// for an OpenSSH-format (`sshformat`) credential file.
pub fn parse_pam_u2f(text: &str) -> Result<Vec<U2fCredential>, ImportError> {
    reject_bom(text, "pam-u2f authfile")?;
    if text.trim_start().starts_with(OPENSSH_SK_HEADER) {
        return Err(ImportError::Format(
            "this is an OpenSSH security-key file (pam-u2f 'sshformat'), not an authfile; \
             it is not supported"
                .into(),
        ));
    }
    let mut credentials = Vec::new();
    let mut first_line_of: HashMap<&str, usize> = HashMap::new();
    for (no, line) in numbered_lines(text) {
        let content = line.trim_start_matches([' ', '\t']);
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if line.starts_with(':') {
            return Err(ImportError::at(
                no,
                "the line starts with ':', so it has no user name; output of 'pamu2fcfg -n' \
                 must be appended to the end of its user's line, not put on a line of its own",
            ));
        }
        if content.len() != line.len() {
            return Err(ImportError::at(
                no,
                "whitespace before the user name (pam-u2f would never match this user)",
            ));
        }
        let mut segments = line.split(':');
        let user = segments.next().unwrap_or_default();
        check_user(user).map_err(|reason| ImportError::at(no, reason))?;
        if let Some(first) = first_line_of.insert(user, no) {
            return Err(ImportError::at(
                no,
                format!(
                    "this user already has a line (line {first}); pam-u2f uses only the last \
                     line for a user, so merge the credentials you want onto one line"
                ),
            ));
        }
        let before = credentials.len();
        // pam-u2f splits with strtok, so empty segments ('::', trailing ':')
        // are skipped; only the count of real credentials is kept for errors.
        for (index, segment) in segments.filter(|s| !s.is_empty()).enumerate() {
            let credential = parse_credential(user, no, segment).map_err(|reason| {
                ImportError::at(no, format!("credential {}: {reason}", index + 1))
            })?;
            credentials.push(credential);
        }
        if credentials.len() == before {
            return Err(ImportError::at(
                no,
                "expected 'user:KeyHandle,UserKey,CoseType,Options' with at least one \
                 credential after the user name",
            ));
        }
    }
    Ok(credentials)
}

fn parse_credential(user: &str, line: usize, segment: &str) -> Result<U2fCredential, String> {
    let fields: Vec<&str> = segment.split(',').collect();
    let names = ["KeyHandle", "UserKey", "CoseType"];
    for (field, name) in fields.iter().zip(names) {
        if field.is_empty() {
            return Err(format!("{name} is empty"));
        }
    }
    let key = match fields.as_slice() {
        [key_handle, user_key] => legacy_key(key_handle, user_key)?,
        [key_handle, user_key, cose_type, rest @ ..] if rest.len() <= 1 => current_key(
            key_handle,
            user_key,
            cose_type,
            rest.first().copied().unwrap_or(""),
        )?,
        [_] => {
            return Err(
                "expected KeyHandle,UserKey,CoseType,Options (or the legacy \
                    KeyHandle,UserKey), found a single field"
                    .into(),
            );
        }
        _ => {
            return Err(format!(
                "expected 4 comma-separated fields KeyHandle,UserKey,CoseType,Options, found {}",
                fields.len()
            ));
        }
    };
    Ok(U2fCredential {
        user: user.to_owned(),
        line,
        key_handle: key.key_handle,
        resident: key.resident,
        public_key: key.public_key,
        algorithm: key.algorithm,
        presence: key.flags.presence,
        pin: key.flags.pin,
        verification: key.flags.verification,
        legacy: key.legacy,
    })
}

/// What one credential's fields say about its key.
struct KeyFields {
    key_handle: Vec<u8>,
    resident: bool,
    public_key: Vec<u8>,
    algorithm: CoseAlgorithm,
    flags: Flags,
    legacy: bool,
}

/// The legacy `KeyHandle,UserKeyHex`: es256 and `+presence`, as pam-u2f
/// assumes.
fn legacy_key(key_handle: &str, user_key: &str) -> Result<KeyFields, String> {
    if key_handle == "*" {
        return Err("a resident credential ('*') needs the current format \
                    KeyHandle,UserKey,CoseType,Options"
            .into());
    }
    Ok(KeyFields {
        key_handle: decode_legacy_key_handle(key_handle)?,
        resident: false,
        public_key: decode_legacy_user_key(user_key)?,
        algorithm: CoseAlgorithm::Es256,
        flags: Flags {
            presence: true,
            ..Flags::default()
        },
        legacy: true,
    })
}

/// The current `KeyHandle,UserKey,CoseType,Options`.
fn current_key(
    key_handle: &str,
    user_key: &str,
    cose_type: &str,
    options: &str,
) -> Result<KeyFields, String> {
    let algorithm = cose_algorithm(cose_type)?;
    let (key_handle, resident) = if key_handle == "*" {
        (Vec::new(), true)
    } else {
        let decoded = decode_base64(key_handle).ok_or("KeyHandle is not valid base64")?;
        if decoded.is_empty() {
            return Err("KeyHandle decodes to nothing".into());
        }
        (decoded, false)
    };
    let raw = decode_base64(user_key).ok_or("UserKey is not valid base64")?;
    let public_key = match algorithm {
        CoseAlgorithm::Es256 => es256_point(raw)?,
        CoseAlgorithm::EdDsa if raw.len() == 32 => raw,
        CoseAlgorithm::EdDsa => {
            return Err(format!(
                "an eddsa UserKey must be 32 bytes; this one is {}",
                raw.len()
            ));
        }
    };
    Ok(KeyFields {
        key_handle,
        resident,
        public_key,
        algorithm,
        flags: parse_options(options)?,
        legacy: false,
    })
}

fn cose_algorithm(name: &str) -> Result<CoseAlgorithm, String> {
    // pam-u2f compares with strcasecmp.
    if name.eq_ignore_ascii_case("es256") {
        Ok(CoseAlgorithm::Es256)
    } else if name.eq_ignore_ascii_case("eddsa") {
        Ok(CoseAlgorithm::EdDsa)
    } else if name.eq_ignore_ascii_case("rs256") {
        Err(
            "CoseType rs256 (RSA) is not supported by stepup; re-enroll this authenticator \
             with es256 or eddsa"
                .into(),
        )
    } else {
        Err("unknown CoseType; expected es256 or eddsa".into())
    }
}

/// pam-u2f accepts an es256 key as libfido2's raw X‖Y (64 bytes, what
/// pamu2fcfg writes) or as 0x04‖X‖Y (65 bytes); stepup takes the latter.
fn es256_point(raw: Vec<u8>) -> Result<Vec<u8>, String> {
    match raw.len() {
        64 => {
            let mut point = Vec::with_capacity(65);
            point.push(0x04);
            point.extend_from_slice(&raw);
            Ok(point)
        }
        65 if raw[0] == 0x04 => Ok(raw),
        n => Err(format!(
            "an es256 UserKey must be 64 bytes X||Y (as pamu2fcfg writes) or 65 bytes \
             0x04||X||Y; this one is {n} bytes"
        )),
    }
}

/// Standard base64 as pamu2fcfg writes it; the `=` padding may be missing.
fn decode_base64(field: &str) -> Option<Vec<u8>> {
    let unpadded = field
        .strip_suffix("==")
        .or_else(|| field.strip_suffix('='))
        .unwrap_or(field);
    BASE64_NOPAD.decode(unpadded.as_bytes()).ok()
}

/// Legacy key handles are web-safe base64 without padding; pam-u2f maps
/// `-_` to `+/` (so either alphabet works) and pads before decoding.
fn decode_legacy_key_handle(field: &str) -> Result<Vec<u8>, String> {
    let normal: String = field
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            other => other,
        })
        .collect();
    match decode_base64(&normal) {
        Some(decoded) if !decoded.is_empty() => Ok(decoded),
        _ => Err("KeyHandle is not valid (web-safe) base64".into()),
    }
}

/// Legacy user keys are the hex of the uncompressed P-256 point.
fn decode_legacy_user_key(field: &str) -> Result<Vec<u8>, String> {
    let raw = HEXLOWER_PERMISSIVE
        .decode(field.as_bytes())
        .map_err(|_| "the legacy UserKey is not a hex string".to_owned())?;
    match raw.as_slice() {
        [0x04, ..] if raw.len() == 65 => Ok(raw),
        [0x02 | 0x03, ..] if raw.len() == 33 => Err(
            "the legacy UserKey is a compressed P-256 point, which stepup cannot use; \
             re-enroll this authenticator"
                .into(),
        ),
        _ if raw.len() == 65 => Err("the legacy UserKey must start with 04 (an uncompressed \
                                     P-256 point)"
            .into()),
        _ => Err(format!(
            "the legacy UserKey must be 130 hex digits (an uncompressed P-256 point \
             starting 04); found {} hex digits",
            field.len()
        )),
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Flags {
    presence: bool,
    pin: bool,
    verification: bool,
}

/// `Options`: `+presence`, `+verification`, `+pin` concatenated, any order.
/// pam-u2f looks them up with strstr; anything else in the field (a typo such
/// as `+presense` silently disables the check in pam-u2f) is refused.
fn parse_options(mut rest: &str) -> Result<Flags, String> {
    let mut flags = Flags::default();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("+presence") {
            flags.presence = true;
            rest = after;
        } else if let Some(after) = rest.strip_prefix("+verification") {
            flags.verification = true;
            rest = after;
        } else if let Some(after) = rest.strip_prefix("+pin") {
            flags.pin = true;
            rest = after;
        } else {
            return Err("Options must be made of +presence, +verification and +pin \
                        (or be empty); found something else"
                .into());
        }
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use data_encoding::{BASE64, HEXLOWER};

    use super::*;

    fn kh(seed: u8) -> Vec<u8> {
        (0..64)
            .map(|i| seed.wrapping_mul(31).wrapping_add(i))
            .collect()
    }

    fn xy(seed: u8) -> Vec<u8> {
        (0..64).map(|i| seed.wrapping_add(i * 3)).collect()
    }

    fn es256(seed: u8, options: &str) -> String {
        format!(
            "{},{},es256,{options}",
            BASE64.encode(&kh(seed)),
            BASE64.encode(&xy(seed))
        )
    }

    fn uncompressed(seed: u8) -> Vec<u8> {
        let mut p = vec![4];
        p.extend(xy(seed));
        p
    }

    fn parse(text: &str) -> Vec<U2fCredential> {
        parse_pam_u2f(text).unwrap()
    }

    fn err_line(text: &str) -> (usize, String) {
        match parse_pam_u2f(text).unwrap_err() {
            ImportError::Line { line, reason } => (line, reason),
            other => panic!("expected a line error, got {other:?}"),
        }
    }

    #[test]
    fn current_format_es256() {
        let creds = parse(&format!("alice:{}\n", es256(1, "+presence")));
        assert_eq!(creds.len(), 1);
        let c = &creds[0];
        assert_eq!(c.user, "alice");
        assert_eq!(c.line, 1);
        assert_eq!(c.key_handle, kh(1));
        assert!(!c.resident);
        assert_eq!(c.public_key, uncompressed(1));
        assert_eq!(c.public_key.len(), 65);
        assert_eq!(c.algorithm, CoseAlgorithm::Es256);
        assert!(c.presence && !c.pin && !c.verification && !c.legacy);
    }

    #[test]
    fn es256_key_already_prefixed_is_kept() {
        let line = format!(
            "alice:{},{},ES256,+presence",
            BASE64.encode(&kh(1)),
            BASE64.encode(&uncompressed(1))
        );
        assert_eq!(parse(&line)[0].public_key, uncompressed(1));
    }

    #[test]
    fn eddsa_and_multiple_credentials() {
        let ed: Vec<u8> = (100..132).collect();
        let text = format!(
            "alice:{}:{},{},eddsa,+presence+verification+pin\n",
            es256(1, "+presence"),
            BASE64.encode(&kh(2)),
            BASE64.encode(&ed)
        );
        let creds = parse(&text);
        assert_eq!(creds.len(), 2);
        assert_eq!(creds[1].algorithm, CoseAlgorithm::EdDsa);
        assert_eq!(creds[1].public_key, ed);
        assert_eq!(creds[1].key_handle, kh(2));
        assert!(creds[1].presence && creds[1].pin && creds[1].verification);
        let mixed = format!(
            "bob:{},{},EdDSA,",
            BASE64.encode(&kh(2)),
            BASE64.encode(&ed)
        );
        assert_eq!(parse(&mixed)[0].algorithm, CoseAlgorithm::EdDsa);
    }

    #[test]
    fn resident_credential() {
        let text = format!(
            "bob:*,{},es256,+presence+verification",
            BASE64.encode(&xy(3))
        );
        let c = &parse(&text)[0];
        assert!(c.resident);
        assert!(c.key_handle.is_empty());
        assert!(c.presence && c.verification && !c.pin);
    }

    #[test]
    fn options_every_combination() {
        for (options, p, v, n) in [
            ("", false, false, false),
            ("+presence", true, false, false),
            ("+verification", false, true, false),
            ("+pin", false, false, true),
            ("+presence+verification", true, true, false),
            ("+presence+pin", true, false, true),
            ("+verification+pin", false, true, true),
            ("+presence+verification+pin", true, true, true),
            ("+pin+presence", true, false, true),
        ] {
            let c = &parse(&format!("u:{}", es256(1, options)))[0];
            assert_eq!(
                (c.presence, c.verification, c.pin),
                (p, v, n),
                "{options:?}"
            );
        }
        // Three fields: pam-u2f reads empty options.
        let three = format!(
            "u:{},{},es256",
            BASE64.encode(&kh(1)),
            BASE64.encode(&xy(1))
        );
        let c = &parse(&three)[0];
        assert!(!c.presence && !c.verification && !c.pin);
    }

    #[test]
    fn unpadded_base64_is_accepted() {
        let line = format!(
            "u:{},{},es256,+presence",
            BASE64_NOPAD.encode(&kh(1)[..62]),
            BASE64_NOPAD.encode(&xy(1))
        );
        assert_eq!(parse(&line)[0].key_handle, kh(1)[..62].to_vec());
    }

    #[test]
    fn legacy_format() {
        let handle = data_encoding::BASE64URL_NOPAD.encode(&[0xfb; 64]);
        assert!(handle.contains('-') || handle.contains('_'));
        let text = format!("dave:{handle},{}\n", HEXLOWER.encode(&uncompressed(4)));
        let c = &parse(&text)[0];
        assert!(c.legacy);
        assert_eq!(c.key_handle, vec![0xfb; 64]);
        assert_eq!(c.public_key, uncompressed(4));
        assert_eq!(c.algorithm, CoseAlgorithm::Es256);
        assert!(c.presence && !c.pin && !c.verification && !c.resident);
        // Upper-case hex and standard alphabet work too.
        let text = format!(
            "dave:{},{}",
            BASE64.encode(&kh(4)),
            HEXLOWER.encode(&uncompressed(4)).to_uppercase()
        );
        assert_eq!(parse(&text)[0].public_key, uncompressed(4));
    }

    #[test]
    fn comments_blank_lines_and_line_numbers() {
        let text = format!(
            "# central mapping\n\n   \n  # indented comment\nalice:{}\r\n\nbob:{}\n",
            es256(1, "+presence"),
            es256(2, "")
        );
        let creds = parse(&text);
        assert_eq!(
            creds
                .iter()
                .map(|c| (c.user.as_str(), c.line))
                .collect::<Vec<_>>(),
            vec![("alice", 5), ("bob", 7)]
        );
    }

    #[test]
    fn empty_segments_are_skipped_like_strtok() {
        let text = format!("alice:{}::{}:", es256(1, "+presence"), es256(2, "+pin"));
        assert_eq!(parse(&text).len(), 2);
    }

    #[test]
    fn empty_file() {
        assert!(parse("").is_empty());
        assert!(parse("# nothing\n\n").is_empty());
    }

    #[test]
    fn line_errors() {
        let good = es256(1, "+presence");
        let b64kh = BASE64.encode(&kh(1));
        let b64pk = BASE64.encode(&xy(1));
        let cases: Vec<(String, &str)> = vec![
            (format!(":{good}"), "no user name"),
            (format!(" alice:{good}"), "whitespace before"),
            ("alice".into(), "at least one credential"),
            ("alice:".into(), "at least one credential"),
            ("alice:::".into(), "at least one credential"),
            (format!("al ice:{good}"), "whitespace"),
            (format!("al\u{1}ice:{good}"), "control"),
            ("alice:abc".into(), "single field"),
            (
                format!("alice:{b64kh},{b64pk},es256,+presence,extra"),
                "found 5",
            ),
            (
                format!("alice:,{b64pk},es256,+presence"),
                "KeyHandle is empty",
            ),
            (
                format!("alice:{b64kh},,es256,+presence"),
                "UserKey is empty",
            ),
            (
                format!("alice:{b64kh},{b64pk},,+presence"),
                "CoseType is empty",
            ),
            (
                format!("alice:{b64kh}!,{b64pk},es256,+presence"),
                "KeyHandle is not valid base64",
            ),
            (format!("alice:=,{b64pk},es256,+presence"), "KeyHandle"),
            (
                format!("alice:{b64kh},{b64pk}%,es256,+presence"),
                "UserKey is not valid base64",
            ),
            (
                format!("alice:{b64kh},{},es256,+presence", BASE64.encode(&[4; 63])),
                "63 bytes",
            ),
            (
                format!("alice:{b64kh},{},es256,+presence", BASE64.encode(&[5; 65])),
                "65 bytes",
            ),
            (format!("alice:{b64kh},{b64pk},eddsa,+presence"), "64"),
            (format!("alice:{b64kh},{b64pk},rs256,+presence"), "rs256"),
            (
                format!("alice:{b64kh},{b64pk},es384,+presence"),
                "unknown CoseType",
            ),
            (format!("alice:{b64kh},{b64pk},es256,+presense"), "Options"),
            (format!("alice:{b64kh},{b64pk},es256,+presence "), "Options"),
            (format!("alice:{b64kh},{b64pk},es256,presence"), "Options"),
            (
                format!("alice:*,{}", HEXLOWER.encode(&uncompressed(1))),
                "resident",
            ),
            (
                format!(
                    "alice:{b64kh},{}",
                    HEXLOWER.encode(&uncompressed(1))[..128].to_owned()
                ),
                "128 hex digits",
            ),
            (
                format!(
                    "alice:{b64kh},zz{}",
                    &HEXLOWER.encode(&uncompressed(1))[2..]
                ),
                "not a hex string",
            ),
            (
                format!(
                    "alice:{b64kh},05{}",
                    &HEXLOWER.encode(&uncompressed(1))[2..]
                ),
                "start with 04",
            ),
            (
                format!("alice:{b64kh},02{}", &HEXLOWER.encode(&xy(1))[..64]),
                "compressed",
            ),
            (
                format!("alice:{b64kh}!,{}", HEXLOWER.encode(&uncompressed(1))),
                "web-safe",
            ),
        ];
        for (bad, expect) in cases {
            let text = format!("# header\nbob:{good}\n{bad}\ncarol:{good}\n");
            let (line, reason) = err_line(&text);
            assert_eq!(line, 3, "{bad}");
            assert!(reason.contains(expect), "{bad}: {reason}");
            assert!(
                !reason.contains(&b64kh) && !reason.contains(&b64pk),
                "{reason}"
            );
        }
    }

    #[test]
    fn error_names_the_credential() {
        let text = format!("alice:{}:{}", es256(1, "+presence"), es256(2, "+bogus"));
        let (line, reason) = err_line(&text);
        assert_eq!(line, 1);
        assert!(reason.starts_with("credential 2:"), "{reason}");
    }

    #[test]
    fn duplicate_user_is_refused() {
        let text = format!(
            "alice:{}\nbob:{}\nalice:{}\n",
            es256(1, ""),
            es256(2, ""),
            es256(3, "")
        );
        let (line, reason) = err_line(&text);
        assert_eq!(line, 3);
        assert!(reason.contains("line 1"), "{reason}");
    }

    #[test]
    fn whole_file_errors() {
        assert!(matches!(
            parse_pam_u2f(
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA\n-----END OPENSSH PRIVATE KEY-----\n"
            ),
            Err(ImportError::Format(_))
        ));
        assert!(matches!(
            parse_pam_u2f(&format!("\u{feff}alice:{}", es256(1, ""))),
            Err(ImportError::Format(_))
        ));
    }
}
