//! Verifying a security key's SSHSIG over a challenge.
//!
//! Pure: no I/O, no state. The checks, in order:
//!
//! 1. the signature names the enrolled key (same key material *and* the same
//!    application);
//! 2. its namespace is the challenge's;
//! 3. its hash is SHA-512 and its signature type is the key's;
//! 4. the signature verifies over the challenge's SSHSIG blob, with the
//!    key's application, flags and counter inside it (as OpenSSH verifies:
//!    SHA-256(application) ‖ flags ‖ counter ‖ SHA-256(blob));
//! 5. the user-presence flag is set, and user verification when required;
//! 6. the counter is above the last one stored for the key.
//!
//! The signature is checked before the counter, so a forged signature can
//! never produce a [`VerifyError::CounterRegression`] (which disables the
//! key). Storing the new counter, auditing and disabling are the caller's.

use ssh_key::{HashAlg, SshSig};

use crate::challenge::Challenge;
use crate::key::{EnrolledSkKey, application_of, material_of};

/// User present: the key was touched.
pub const FLAG_UP: u8 = 0x01;
/// User verified: PIN or built-in biometrics.
pub const FLAG_UV: u8 = 0x04;

/// flags (1) ‖ counter (4) at the end of every sk signature.
const SK_TRAILER_LEN: usize = 5;

/// A good signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// Store this as the key's new counter.
    pub counter: u32,
    /// The signature's flags byte.
    pub flags: u8,
}

impl Verified {
    pub fn user_verified(&self) -> bool {
        self.flags & FLAG_UV != 0
    }
}

/// Why a signature was refused. Only [`VerifyError::CounterRegression`]
/// comes from a genuine signature by the enrolled key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the signature was made by another key")]
    WrongKey,
    #[error(
        "the signature was made by the enrolled key for application {got:?}, \
         not {expected:?}"
    )]
    WrongApplication { expected: String, got: String },
    #[error("the signature is for namespace {got:?}, not {expected:?}")]
    WrongNamespace { expected: String, got: String },
    #[error("the signature uses hash {got}, not sha512")]
    WrongHashAlgorithm { got: String },
    #[error("the signature is of type {got}, not {expected}")]
    WrongSignatureType { expected: String, got: String },
    #[error("the signature does not verify over this challenge")]
    BadSignature,
    #[error("the security key did not report user presence (no touch)")]
    UserNotPresent,
    #[error("the security key did not verify the user (PIN or biometrics required)")]
    UserNotVerified,
    #[error(
        "signature counter did not increase (stored {stored}, received {got}): \
         the key may have been cloned, or the signature replayed"
    )]
    CounterRegression { stored: u32, got: u32 },
}

/// Check `signature` over `challenge` against the `enrolled` key.
/// `last_counter` is the counter stored for the key (0 before its first
/// use); the new one must be strictly greater, so a key that always reports
/// 0 cannot be used.
pub fn verify(
    enrolled: &EnrolledSkKey,
    challenge: &Challenge,
    signature: &SshSig,
    require_uv: bool,
    last_counter: u32,
) -> Result<Verified, VerifyError> {
    check_key(enrolled, signature)?;
    if signature.namespace() != challenge.namespace() {
        return Err(VerifyError::WrongNamespace {
            expected: challenge.namespace().to_owned(),
            got: signature.namespace().to_owned(),
        });
    }
    if signature.hash_alg() != HashAlg::Sha512 {
        return Err(VerifyError::WrongHashAlgorithm {
            got: signature.hash_alg().as_str().to_owned(),
        });
    }
    let expected_type = enrolled.key_data().algorithm();
    if signature.algorithm() != expected_type {
        return Err(VerifyError::WrongSignatureType {
            expected: expected_type.as_str().to_owned(),
            got: signature.algorithm().as_str().to_owned(),
        });
    }
    // Checks key and namespace again, then the signature over the SSHSIG
    // blob with the signature's own flags and counter.
    enrolled
        .public_key()
        .verify(challenge.namespace(), challenge.nonce(), signature)
        .map_err(|_| VerifyError::BadSignature)?;

    let (flags, counter) = flags_and_counter(signature)?;
    if flags & FLAG_UP == 0 {
        return Err(VerifyError::UserNotPresent);
    }
    if require_uv && flags & FLAG_UV == 0 {
        return Err(VerifyError::UserNotVerified);
    }
    if counter <= last_counter {
        return Err(VerifyError::CounterRegression {
            stored: last_counter,
            got: counter,
        });
    }
    Ok(Verified { counter, flags })
}

/// Same key, or same key material for another application, or another key.
fn check_key(enrolled: &EnrolledSkKey, signature: &SshSig) -> Result<(), VerifyError> {
    let (ours, theirs) = (enrolled.key_data(), signature.public_key());
    if ours == theirs {
        return Ok(());
    }
    if material_of(ours).is_some() && material_of(ours) == material_of(theirs) {
        return Err(VerifyError::WrongApplication {
            expected: enrolled.application().to_owned(),
            got: application_of(theirs).unwrap_or("").to_owned(),
        });
    }
    Err(VerifyError::WrongKey)
}

/// The flags and counter at the end of an sk signature.
fn flags_and_counter(signature: &SshSig) -> Result<(u8, u32), VerifyError> {
    let bytes = signature.signature_bytes();
    let trailer = bytes
        .len()
        .checked_sub(SK_TRAILER_LEN)
        .map(|at| &bytes[at..])
        .ok_or(VerifyError::BadSignature)?;
    let counter = u32::from_be_bytes([trailer[1], trailer[2], trailer[3], trailer[4]]);
    Ok((trailer[0], counter))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::test_keys::{SoftSk, ecdsa_line, ed25519_line};

    fn both() -> [SoftSk; 2] {
        [ed25519_line("ssh:", "").1, ecdsa_line("ssh:", "").1]
    }

    fn challenge() -> Challenge {
        Challenge::new("host.example").unwrap()
    }

    fn sign(sk: &SoftSk, c: &Challenge, flags: u8, counter: u32) -> SshSig {
        sk.sshsig(c.namespace(), HashAlg::Sha512, c.nonce(), flags, counter)
    }

    #[test]
    fn a_good_signature_verifies_with_its_counter_and_flags() {
        for sk in both() {
            let c = challenge();
            let sig = sign(&sk, &c, FLAG_UP, 8);
            let ok = verify(&sk.enrolled(), &c, &sig, false, 7).unwrap();
            assert_eq!(
                ok,
                Verified {
                    counter: 8,
                    flags: FLAG_UP
                }
            );
            assert!(!ok.user_verified());
            let sig = sign(&sk, &c, FLAG_UP | FLAG_UV, 9);
            assert!(
                verify(&sk.enrolled(), &c, &sig, true, 8)
                    .unwrap()
                    .user_verified()
            );
        }
    }

    #[test]
    fn another_key_is_wrong_key() {
        for sk in both() {
            let other = ed25519_line("ssh:", "").1;
            let c = challenge();
            let sig = sign(&other, &c, FLAG_UP, 1);
            assert_eq!(
                verify(&sk.enrolled(), &c, &sig, false, 0),
                Err(VerifyError::WrongKey)
            );
        }
    }

    #[test]
    fn the_same_key_for_another_application_is_wrong_application() {
        let (_, sk) = ed25519_line("ssh:", "");
        let (_, mut other_app) = ed25519_line("ssh:stepup", "");
        // The same private key enrolled under another application.
        let crate::test_keys::Secret::Ed25519(secret) = &sk.secret else {
            panic!()
        };
        other_app.secret = crate::test_keys::Secret::Ed25519(secret.clone());
        let data: ssh_key::public::KeyData = ssh_key::public::SkEd25519::new(
            *sk.public.key_data().sk_ed25519().unwrap().public_key(),
            "ssh:stepup",
        )
        .into();
        other_app.public = ssh_key::PublicKey::new(data, "");
        let c = challenge();
        let sig = sign(&other_app, &c, FLAG_UP, 1);
        assert_eq!(
            verify(&sk.enrolled(), &c, &sig, false, 0),
            Err(VerifyError::WrongApplication {
                expected: "ssh:".into(),
                got: "ssh:stepup".into()
            })
        );
    }

    #[test]
    fn signed_for_another_application_under_the_right_key_blob_is_bad_signature() {
        // An authenticator asked for another rp id: the apphash differs.
        for sk in both() {
            let c = challenge();
            let signature = sk.sign_as("ssh:elsewhere", c.signed_data(), FLAG_UP, 1);
            let sig = SshSig::new(
                sk.public.key_data().clone(),
                c.namespace(),
                HashAlg::Sha512,
                signature,
            )
            .unwrap();
            assert_eq!(
                verify(&sk.enrolled(), &c, &sig, false, 0),
                Err(VerifyError::BadSignature)
            );
        }
    }

    #[test]
    fn an_altered_message_is_bad_signature() {
        for sk in both() {
            let c = challenge();
            let sig = sign(&sk, &c, FLAG_UP, 1);
            let other = Challenge::with_nonce("host.example", [7; 32]).unwrap();
            assert_eq!(
                verify(&sk.enrolled(), &other, &sig, false, 0),
                Err(VerifyError::BadSignature)
            );
        }
    }

    #[test]
    fn altered_flags_or_counter_are_bad_signature() {
        for sk in both() {
            let c = challenge();
            let sig = sign(&sk, &c, 0, 1);
            let mut bytes = sig.signature_bytes().to_vec();
            let n = bytes.len();
            bytes[n - 5] |= FLAG_UP; // claim a touch that did not happen
            let forged = ssh_key::Signature::new(sig.algorithm(), bytes.clone()).unwrap();
            let forged = SshSig::new(
                sig.public_key().clone(),
                c.namespace(),
                HashAlg::Sha512,
                forged,
            )
            .unwrap();
            assert_eq!(
                verify(&sk.enrolled(), &c, &forged, false, 0),
                Err(VerifyError::BadSignature)
            );

            let sig = sign(&sk, &c, FLAG_UP, 1);
            let mut bytes = sig.signature_bytes().to_vec();
            // (ECDSA signatures vary in length: index from this one's end.)
            let last = bytes.len() - 1;
            bytes[last] = 99; // a higher counter than was signed
            let forged = ssh_key::Signature::new(sig.algorithm(), bytes).unwrap();
            let forged = SshSig::new(
                sig.public_key().clone(),
                c.namespace(),
                HashAlg::Sha512,
                forged,
            )
            .unwrap();
            // Even with a stored counter above it: a forgery never condemns the key.
            assert_eq!(
                verify(&sk.enrolled(), &c, &forged, false, 50),
                Err(VerifyError::BadSignature)
            );
        }
    }

    #[test]
    fn a_wrong_namespace_is_refused_as_such() {
        for sk in both() {
            let c = challenge();
            let sig = sk.sshsig(
                "stepup@other.example",
                HashAlg::Sha512,
                c.nonce(),
                FLAG_UP,
                1,
            );
            assert_eq!(
                verify(&sk.enrolled(), &c, &sig, false, 0),
                Err(VerifyError::WrongNamespace {
                    expected: "stepup@host.example".into(),
                    got: "stepup@other.example".into()
                })
            );
        }
    }

    #[test]
    fn sha256_sshsig_is_refused() {
        let (_, sk) = ed25519_line("ssh:", "");
        let c = challenge();
        let sig = sk.sshsig(c.namespace(), HashAlg::Sha256, c.nonce(), FLAG_UP, 1);
        assert_eq!(
            verify(&sk.enrolled(), &c, &sig, false, 0),
            Err(VerifyError::WrongHashAlgorithm {
                got: "sha256".into()
            })
        );
    }

    #[test]
    fn a_signature_of_another_type_is_refused() {
        let (_, sk) = ed25519_line("ssh:", "");
        let c = challenge();
        // A plain ssh-ed25519 signature presented with the sk key's blob.
        let plain = ssh_key::Signature::new(ssh_key::Algorithm::Ed25519, vec![0u8; 64]).unwrap();
        let sig = SshSig::new(
            sk.public.key_data().clone(),
            c.namespace(),
            HashAlg::Sha512,
            plain,
        )
        .unwrap();
        assert!(matches!(
            verify(&sk.enrolled(), &c, &sig, false, 0),
            Err(VerifyError::WrongSignatureType { .. })
        ));
    }

    #[test]
    fn no_touch_and_no_verification_are_refused() {
        for sk in both() {
            let c = challenge();
            let sig = sign(&sk, &c, 0, 1);
            assert_eq!(
                verify(&sk.enrolled(), &c, &sig, false, 0),
                Err(VerifyError::UserNotPresent)
            );
            let sig = sign(&sk, &c, FLAG_UV, 1);
            assert_eq!(
                verify(&sk.enrolled(), &c, &sig, true, 0),
                Err(VerifyError::UserNotPresent)
            );
            let sig = sign(&sk, &c, FLAG_UP, 1);
            assert_eq!(
                verify(&sk.enrolled(), &c, &sig, true, 0),
                Err(VerifyError::UserNotVerified)
            );
        }
    }

    #[test]
    fn counters_must_grow_and_a_replay_is_a_regression() {
        for sk in both() {
            let c = challenge();
            let first = sign(&sk, &c, FLAG_UP, 5);
            assert_eq!(
                verify(&sk.enrolled(), &c, &first, false, 4)
                    .unwrap()
                    .counter,
                5
            );
            // The same signature again: its counter is no longer above the stored one.
            assert_eq!(
                verify(&sk.enrolled(), &c, &first, false, 5),
                Err(VerifyError::CounterRegression { stored: 5, got: 5 })
            );
            // A clone lagging behind.
            let lagging = sign(&sk, &c, FLAG_UP, 3);
            assert_eq!(
                verify(&sk.enrolled(), &c, &lagging, false, 5),
                Err(VerifyError::CounterRegression { stored: 5, got: 3 })
            );
            // A key that never counts cannot be used.
            let zero = sign(&sk, &c, FLAG_UP, 0);
            assert_eq!(
                verify(&sk.enrolled(), &c, &zero, false, 0),
                Err(VerifyError::CounterRegression { stored: 0, got: 0 })
            );
        }
    }
}
