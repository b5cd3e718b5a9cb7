//! One-time recovery codes: shown once, stored only as salted argon2id
//! hashes (PHC strings), each accepted once.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use zeroize::Zeroizing;

/// Characters of a code: base32 without the ones people confuse (0/O, 1/I/L).
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
const CODE_CHARS: usize = 10;

#[derive(Debug, thiserror::Error)]
#[error("recovery code hashing failed: {0}")]
pub struct RecoveryError(String);

/// A fresh code, shown to the admin as `abcde-fghjk` (about 49 bits).
pub fn generate() -> Zeroizing<String> {
    let mut raw = [0u8; CODE_CHARS];
    let mut code = Zeroizing::new(String::with_capacity(CODE_CHARS + 1));
    for (i, byte) in raw.iter_mut().enumerate() {
        // Rejection sampling keeps the choice uniform over the alphabet.
        let index = loop {
            let mut b = [0u8; 1];
            rand::fill(&mut b);
            if usize::from(b[0]) < 256 - 256 % ALPHABET.len() {
                break usize::from(b[0]) % ALPHABET.len();
            }
        };
        *byte = ALPHABET[index];
        if i == CODE_CHARS / 2 {
            code.push('-');
        }
        code.push(char::from(*byte));
    }
    raw.fill(0);
    code
}

/// How a typed code is compared: case, spaces and dashes do not matter.
pub fn normalize(answer: &str) -> Zeroizing<String> {
    Zeroizing::new(
        answer
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect(),
    )
}

/// The PHC string (argon2id, random salt) stored for a code.
pub fn hash(code: &str) -> Result<String, RecoveryError> {
    Argon2::default()
        .hash_password(normalize(code).as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| RecoveryError(e.to_string()))
}

/// Does `answer` match the stored hash?
pub fn verify(answer: &str, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    Argon2::default()
        .verify_password(normalize(answer).as_bytes(), &parsed)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_formatted_random_and_verify_only_themselves() {
        let a = generate();
        let b = generate();
        assert_ne!(a.as_str(), b.as_str());
        assert_eq!(a.len(), 11);
        assert_eq!(a.as_bytes()[5], b'-');
        let stored = hash(&a).unwrap();
        // A PHC string and nothing else: `$argon2id$v=19$m=..,t=..,p=..$SALT$HASH`
        // with a 128-bit salt and a 256-bit hash (unpadded base64).
        let fields: Vec<&str> = stored.split('$').collect();
        assert_eq!(fields[..3], ["", "argon2id", "v=19"], "{stored}");
        assert_eq!(fields.len(), 6, "{stored}");
        assert_eq!((fields[4].len(), fields[5].len()), (22, 43), "{stored}");
        // The whole code, as shown or as typed, is not in it (a shorter piece
        // could turn up in the random base64 by chance).
        for form in [a.as_str(), normalize(&a).as_str()] {
            assert!(!stored.contains(form), "the code must not be in its hash");
        }
        assert!(verify(&a, &stored));
        assert!(verify(&a.to_uppercase().replace('-', " "), &stored));
        assert!(!verify(&b, &stored));
        assert!(!verify(&a, "not a phc string"));
        // Imported numeric scratch codes hash and verify the same way.
        let scratch = hash("12345678").unwrap();
        assert!(verify("12345678", &scratch) && !verify("12345679", &scratch));
    }
}
