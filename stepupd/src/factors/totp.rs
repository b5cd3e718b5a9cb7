//! TOTP (RFC 6238) through totp-rs: SHA1/SHA256/SHA512, 6 or 8 digits.
//!
//! Every step of the window is computed and compared in constant time, so
//! the time taken does not tell which step (or how many digits) matched.

use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Secret, Totp};
use zeroize::Zeroizing;

use crate::store::TotpCredential;

/// Smallest secret accepted at enrollment (RFC 4226 asks for 128 bits).
pub const MIN_SECRET_BYTES: usize = 16;
/// Size of a generated secret (160 bits, the HMAC-SHA1 block the RFC suggests).
pub const GENERATED_SECRET_BYTES: usize = 20;
pub const DEFAULT_PERIOD: u64 = 30;
pub const DEFAULT_DIGITS: u32 = 6;

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The code matched this time step, newer than any accepted before.
    Accepted { step: u64 },
    /// The code matched a step that was already used (or an older one).
    Replayed,
    /// No match in the window.
    Wrong,
}

#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    #[error("secret is not valid base32")]
    BadBase32,
    #[error("secret is {0} bytes; at least {MIN_SECRET_BYTES} are required")]
    TooShort(usize),
    #[error("unsupported algorithm {0:?} (SHA1, SHA256 or SHA512)")]
    Algorithm(String),
    #[error("unsupported digit count {0} (6 or 8)")]
    Digits(u32),
}

pub fn parse_algorithm(name: &str) -> Result<Algorithm, TotpError> {
    match name.to_ascii_uppercase().as_str() {
        "SHA1" => Ok(Algorithm::SHA1),
        "SHA256" => Ok(Algorithm::SHA256),
        "SHA512" => Ok(Algorithm::SHA512),
        _ => Err(TotpError::Algorithm(name.to_owned())),
    }
}

/// Decode a base32 secret as people paste it: case-insensitive, spaces and
/// padding ignored.
pub fn decode_secret(base32: &str) -> Result<Zeroizing<Vec<u8>>, TotpError> {
    let cleaned: Zeroizing<String> = Zeroizing::new(
        base32
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '=' && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect(),
    );
    let bytes = data_encoding::BASE32_NOPAD
        .decode(cleaned.as_bytes())
        .map_err(|_| TotpError::BadBase32)?;
    let bytes = Zeroizing::new(bytes);
    if bytes.len() < MIN_SECRET_BYTES {
        return Err(TotpError::TooShort(bytes.len()));
    }
    Ok(bytes)
}

pub fn encode_secret(secret: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(data_encoding::BASE32_NOPAD.encode(secret))
}

pub fn generate_secret() -> Zeroizing<Vec<u8>> {
    let mut secret = Zeroizing::new(vec![0u8; GENERATED_SECRET_BYTES]);
    rand::fill(secret.as_mut_slice());
    secret
}

fn totp_for(cred: &TotpCredential) -> Result<Totp, TotpError> {
    let algorithm = parse_algorithm(&cred.algorithm)?;
    let digits = u8::try_from(cred.digits)
        .ok()
        .filter(|d| *d == 6 || *d == 8)
        .ok_or(TotpError::Digits(cred.digits))?;
    // build_noncompliant: length and digits were checked at enrollment;
    // skew is applied by `verify`, not by totp-rs.
    Ok(totp_rs::Builder::new()
        .with_algorithm(algorithm)
        .with_digits(digits)
        .with_step_duration(cred.period)
        .with_secret(Secret::from(cred.secret.to_vec()))
        .build_noncompliant())
}

/// (algorithm, digits, period) for a credential, after the admin's pins in
/// `[totp]` (which override whatever was enrolled or imported).
pub fn pinned(
    settings: &stepup_config::TotpSettings,
    algorithm: &str,
    digits: u32,
    period: u64,
) -> (String, u32, u64) {
    (
        settings
            .algorithm
            .map_or_else(|| algorithm.to_owned(), |a| a.as_str().to_owned()),
        settings.digits.unwrap_or(digits),
        settings.period.unwrap_or(period),
    )
}

/// Check `code` at time `now` (unix seconds) within ±`window` steps.
pub fn verify(
    cred: &TotpCredential,
    code: &str,
    now: u64,
    window: u8,
) -> Result<Verdict, TotpError> {
    let totp = totp_for(cred)?;
    let period = cred.period.max(1);
    let current = now / period;
    let mut matched: Option<u64> = None;
    let code = code.trim().as_bytes();
    for step in current.saturating_sub(u64::from(window))..=current + u64::from(window) {
        let expected = Zeroizing::new(totp.generate(step * period).to_string());
        // Lengths differ only for malformed input; ct_eq is false then.
        let equal: bool = expected.as_bytes().ct_eq(code).into();
        if equal && matched.is_none() {
            matched = Some(step);
        }
    }
    Ok(match matched {
        None => Verdict::Wrong,
        Some(step) if cred.last_step.is_some_and(|last| step <= last) => Verdict::Replayed,
        Some(step) => Verdict::Accepted { step },
    })
}

/// The `otpauth://` URI authenticator apps scan.
pub fn otpauth_uri(issuer: &str, user: &str, cred: &TotpCredential) -> Zeroizing<String> {
    let secret = encode_secret(&cred.secret);
    Zeroizing::new(format!(
        "otpauth://totp/{issuer_enc}:{user_enc}?secret={secret}&issuer={issuer_enc}&algorithm={alg}&digits={digits}&period={period}",
        issuer_enc = percent_encode(issuer),
        user_enc = percent_encode(user),
        secret = secret.as_str(),
        alg = cred.algorithm.to_ascii_uppercase(),
        digits = cred.digits,
        period = cred.period,
    ))
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B secret for SHA1.
    const RFC_SHA1: &[u8] = b"12345678901234567890";

    fn cred(secret: &[u8], algorithm: &str, digits: u32) -> TotpCredential {
        TotpCredential {
            id: "c".into(),
            user: "u".into(),
            label: String::new(),
            secret: Zeroizing::new(secret.to_vec()),
            algorithm: algorithm.into(),
            digits,
            period: 30,
            last_step: None,
            created: 0,
        }
    }

    #[test]
    fn rfc6238_vectors() {
        // RFC 6238 appendix B, T = 59 and 1111111109.
        let sha1 = cred(RFC_SHA1, "SHA1", 8);
        assert_eq!(
            verify(&sha1, "94287082", 59, 0).unwrap(),
            Verdict::Accepted { step: 1 }
        );
        assert_eq!(
            verify(&sha1, "07081804", 1_111_111_109, 0).unwrap(),
            Verdict::Accepted { step: 37_037_036 }
        );
        let sha256 = cred(b"12345678901234567890123456789012", "SHA256", 8);
        assert_eq!(
            verify(&sha256, "46119246", 59, 0).unwrap(),
            Verdict::Accepted { step: 1 }
        );
        let sha512 = cred(
            b"1234567890123456789012345678901234567890123456789012345678901234",
            "SHA512",
            8,
        );
        assert_eq!(
            verify(&sha512, "90693936", 59, 0).unwrap(),
            Verdict::Accepted { step: 1 }
        );
    }

    #[test]
    fn window_and_replay() {
        let mut c = cred(RFC_SHA1, "SHA1", 8);
        // The code for step 1 is still accepted one step later with window 1, not with 0.
        assert_eq!(
            verify(&c, "94287082", 89, 1).unwrap(),
            Verdict::Accepted { step: 1 }
        );
        assert_eq!(verify(&c, "94287082", 89, 0).unwrap(), Verdict::Wrong);
        c.last_step = Some(1);
        assert_eq!(verify(&c, "94287082", 59, 1).unwrap(), Verdict::Replayed);
    }

    #[test]
    fn malformed_codes_are_wrong_not_errors() {
        let c = cred(RFC_SHA1, "SHA1", 6);
        for code in ["", "1", "abcdef", "2870820", "287082 extra", "\0\0\0\0\0\0"] {
            assert_eq!(verify(&c, code, 59, 1).unwrap(), Verdict::Wrong, "{code:?}");
        }
        assert_eq!(
            verify(&c, "287082", 59, 0).unwrap(),
            Verdict::Accepted { step: 1 }
        );
    }

    #[test]
    fn secrets_decode_leniently_and_short_ones_are_refused() {
        let s = decode_secret("gezd gnbv gy3t qojq gezd gnbv gy3t qojq").unwrap();
        assert_eq!(s.as_slice(), RFC_SHA1);
        assert!(matches!(
            decode_secret("GEZDGNBV"),
            Err(TotpError::TooShort(5))
        ));
        assert!(matches!(
            decode_secret("not base32!"),
            Err(TotpError::BadBase32)
        ));
    }

    #[test]
    fn uri_carries_parameters() {
        let c = cred(RFC_SHA1, "SHA1", 6);
        let uri = otpauth_uri("stepup", "al ice", &c);
        assert!(uri.starts_with(
            "otpauth://totp/stepup:al%20ice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&"
        ));
        assert!(uri.ends_with("&algorithm=SHA1&digits=6&period=30"));
    }
}
