//! Assertion verification: the daemon checks every FIDO2 assertion itself.
//!
//! This module is pure (no I/O, no clock, no state): given the stored
//! credential, the assertion the key returned and what the daemon expected,
//! it says yes (with the new counter and flags) or why not. Persisting the
//! new counter, auditing, and marking a credential suspect after a
//! [`VerifyError::CounterRegression`] are the caller's job.
//!
//! The checks, in order (WebAuthn §7.2 for the parts that apply here):
//!
//! 1. the assertion names the stored credential (constant-time compare);
//! 2. the stored credential belongs to the expected user;
//! 3. authenticatorData parses (at least 37 bytes);
//! 4. rpIdHash = SHA-256(rp id) (constant-time compare);
//! 5. the UP flag is set, and UV too when required;
//! 6. the signature over authenticatorData ‖ clientDataHash verifies;
//! 7. the signature counter moved forward (or both counters are 0).
//!
//! The signature is checked before the counter so that a forged assertion
//! can never produce a `CounterRegression` (which would mark a real
//! credential suspect).

use p256::ecdsa::signature::MultipartVerifier;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::authenticator::{Algorithm, Assertion};

/// User present: the person touched the key.
pub const FLAG_UP: u8 = 0x01;
/// User verified: PIN or biometrics.
pub const FLAG_UV: u8 = 0x04;
/// Backup eligible: the credential may be synced (a passkey).
pub const FLAG_BE: u8 = 0x08;
/// Backed up: the credential is currently synced.
pub const FLAG_BS: u8 = 0x10;
/// Attested credential data follows the counter (registration only).
pub const FLAG_AT: u8 = 0x40;
/// Extension data follows.
pub const FLAG_ED: u8 = 0x80;

/// Length of the fixed part of authenticatorData.
const AUTH_DATA_MIN_LEN: usize = 32 + 1 + 4;

/// A credential as the store keeps it.
#[derive(Debug, Clone, Copy)]
pub struct StoredKey<'a> {
    pub credential_id: &'a [u8],
    /// The account the credential was enrolled for.
    pub user: &'a str,
    pub algorithm: Algorithm,
    /// ES256: the 65-byte SEC1 uncompressed point 0x04 ‖ X ‖ Y (a 64-byte
    /// raw X ‖ Y is accepted too); EdDSA: the 32-byte Ed25519 key.
    pub public_key: &'a [u8],
    /// The rp id the credential was made for ("pam://stepup", …).
    pub rp_id: &'a str,
    /// The last counter value seen (0 for a key without a counter).
    pub sign_count: u32,
}

/// What the daemon expects of this particular attempt.
#[derive(Debug, Clone, Copy)]
pub struct Expectation<'a> {
    /// The user being authenticated.
    pub user: &'a str,
    /// SHA-256 of the clientDataJSON the daemon built for this attempt
    /// (see [`client_data_hash`]).
    pub client_data_hash: &'a [u8; 32],
    /// Policy demands user verification (PIN / biometrics).
    pub require_uv: bool,
}

/// A successful verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// The counter from the assertion: store it as the credential's new count.
    pub sign_count: u32,
    pub user_verified: bool,
    /// BE flag: the credential may be synced between devices.
    pub backup_eligible: bool,
    /// BS flag: the credential is currently backed up / synced.
    pub backed_up: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the assertion is for a different credential")]
    WrongCredential,
    #[error("the credential belongs to a different user")]
    WrongUser,
    #[error("authenticator data is too short")]
    ShortAuthenticatorData,
    #[error("the assertion was made for a different relying party id")]
    RpIdMismatch,
    #[error("the security key did not report user presence")]
    UserNotPresent,
    #[error("the security key did not verify the user (PIN or biometrics required)")]
    UserNotVerified,
    #[error("the assertion signature is invalid")]
    BadSignature,
    #[error("the stored public key is invalid")]
    BadPublicKey,
    #[error(
        "signature counter did not increase (stored {stored}, received {received}): \
         the credential may have been cloned"
    )]
    CounterRegression { stored: u32, received: u32 },
}

/// The fixed part of authenticatorData:
/// rpIdHash (32) | flags (1) | signCount (4, big-endian) | [extensions…]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthData {
    pub rp_id_hash: [u8; 32],
    pub flags: u8,
    pub sign_count: u32,
}

impl AuthData {
    pub const fn has(&self, flag: u8) -> bool {
        self.flags & flag == flag
    }
}

/// Parse authenticatorData: rpIdHash (32) | flags (1) | signCount (4,
/// big-endian) | [extensions…]
///
/// Anything after the first 37 bytes (attested credential data, extension
/// outputs) is ignored here; it is still covered by the signature.
pub fn parse_authenticator_data(data: &[u8]) -> Result<AuthData, VerifyError> {
    let fixed: &[u8; AUTH_DATA_MIN_LEN] = data
        .first_chunk()
        .ok_or(VerifyError::ShortAuthenticatorData)?;
    let mut rp_id_hash = [0u8; 32];
    rp_id_hash.copy_from_slice(&fixed[..32]);
    let sign_count = u32::from_be_bytes([fixed[33], fixed[34], fixed[35], fixed[36]]);
    Ok(AuthData {
        rp_id_hash,
        flags: fixed[32],
        sign_count,
    })
}

/// clientDataHash for a WebAuthn-style clientDataJSON (the daemon builds one
/// per attempt): SHA-256 of the exact bytes.
pub fn client_data_hash(client_data_json: &[u8]) -> [u8; 32] {
    Sha256::digest(client_data_json).into()
}

/// Verify `assertion` against the stored credential `key` and this attempt's
/// expectation. On success, the caller stores [`Verified::sign_count`].
///
/// On [`VerifyError::CounterRegression`] the signature was valid (the key
/// really signed it), so the caller should audit it and mark the credential
/// suspect; every other error is a plain rejection.
pub fn verify_assertion(
    key: &StoredKey<'_>,
    assertion: &Assertion,
    expect: &Expectation<'_>,
) -> Result<Verified, VerifyError> {
    // Lengths are not secret; `ct_eq` on slices of different length is false.
    if !bool::from(assertion.credential_id.as_slice().ct_eq(key.credential_id)) {
        return Err(VerifyError::WrongCredential);
    }
    if key.user != expect.user {
        return Err(VerifyError::WrongUser);
    }

    let auth = parse_authenticator_data(&assertion.authenticator_data)?;

    let expected_rp_hash: [u8; 32] = Sha256::digest(key.rp_id.as_bytes()).into();
    if !bool::from(auth.rp_id_hash.ct_eq(&expected_rp_hash)) {
        return Err(VerifyError::RpIdMismatch);
    }
    if !auth.has(FLAG_UP) {
        return Err(VerifyError::UserNotPresent);
    }
    let user_verified = auth.has(FLAG_UV);
    if expect.require_uv && !user_verified {
        return Err(VerifyError::UserNotVerified);
    }

    verify_signature(
        key.algorithm,
        key.public_key,
        &assertion.authenticator_data,
        expect.client_data_hash,
        &assertion.signature,
    )?;

    // Only now, with a genuine signature, may the counter condemn the key.
    let (stored, received) = (key.sign_count, auth.sign_count);
    let no_counter = stored == 0 && received == 0;
    if !no_counter && received <= stored {
        return Err(VerifyError::CounterRegression { stored, received });
    }

    Ok(Verified {
        sign_count: received,
        user_verified,
        backup_eligible: auth.has(FLAG_BE),
        backed_up: auth.has(FLAG_BS),
    })
}

/// Check `signature` over `authenticator_data ‖ client_data_hash`.
fn verify_signature(
    algorithm: Algorithm,
    public_key: &[u8],
    authenticator_data: &[u8],
    client_data_hash: &[u8; 32],
    signature: &[u8],
) -> Result<(), VerifyError> {
    match algorithm {
        Algorithm::Es256 => {
            let key = es256_key(public_key)?;
            let message: [&[u8]; 2] = [authenticator_data, client_data_hash];
            // Authenticators send DER; a 64-byte raw r ‖ s is accepted too.
            // A 64-byte string could in principle parse both ways; either
            // reading that verifies is a genuine signature by this key.
            let der = p256::ecdsa::DerSignature::from_bytes(signature)
                .and_then(p256::ecdsa::Signature::try_from)
                .ok();
            let raw = if signature.len() == 64 {
                p256::ecdsa::Signature::from_slice(signature).ok()
            } else {
                None
            };
            let ok = [der, raw]
                .into_iter()
                .flatten()
                .any(|sig| key.multipart_verify(&message, &sig).is_ok());
            if ok {
                Ok(())
            } else {
                Err(VerifyError::BadSignature)
            }
        }
        Algorithm::EdDsa => {
            let key = eddsa_key(public_key)?;
            let sig = ed25519_dalek::Signature::from_slice(signature)
                .map_err(|_| VerifyError::BadSignature)?;
            let mut message = Vec::with_capacity(authenticator_data.len() + client_data_hash.len());
            message.extend_from_slice(authenticator_data);
            message.extend_from_slice(client_data_hash);
            key.verify_strict(&message, &sig)
                .map_err(|_| VerifyError::BadSignature)
        }
    }
}

fn es256_key(public_key: &[u8]) -> Result<p256::ecdsa::VerifyingKey, VerifyError> {
    let parsed = match public_key.len() {
        65 if public_key.first() == Some(&0x04) => {
            p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key)
        }
        64 => {
            let mut sec1 = [0u8; 65];
            sec1[0] = 0x04;
            sec1[1..].copy_from_slice(public_key);
            p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
        }
        _ => return Err(VerifyError::BadPublicKey),
    };
    parsed.map_err(|_| VerifyError::BadPublicKey)
}

fn eddsa_key(public_key: &[u8]) -> Result<ed25519_dalek::VerifyingKey, VerifyError> {
    let bytes: &[u8; 32] = public_key
        .try_into()
        .map_err(|_| VerifyError::BadPublicKey)?;
    let key =
        ed25519_dalek::VerifyingKey::from_bytes(bytes).map_err(|_| VerifyError::BadPublicKey)?;
    // A small-order key admits forgeries; no real authenticator makes one.
    if key.is_weak() {
        return Err(VerifyError::BadPublicKey);
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::Signer as _;

    use super::*;

    const RP: &str = "pam://stepup";
    const USER: &str = "alice";
    const CRED: &[u8] = b"credential-0001";
    const CDH: [u8; 32] = [0x5a; 32];

    fn es_key() -> p256::ecdsa::SigningKey {
        p256::ecdsa::SigningKey::from_slice(&[0x11; 32]).unwrap()
    }

    fn ed_key() -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&[0x22; 32])
    }

    fn es_public() -> Vec<u8> {
        es_key()
            .verifying_key()
            .to_sec1_point(false)
            .as_bytes()
            .to_vec()
    }

    fn ed_public() -> Vec<u8> {
        ed_key().verifying_key().to_bytes().to_vec()
    }

    fn auth_data(rp_id: &str, flags: u8, count: u32) -> Vec<u8> {
        let mut data = Sha256::digest(rp_id.as_bytes()).to_vec();
        data.push(flags);
        data.extend_from_slice(&count.to_be_bytes());
        data
    }

    fn message(auth: &[u8], cdh: &[u8; 32]) -> Vec<u8> {
        [auth, cdh.as_slice()].concat()
    }

    fn sign_es_der(auth: &[u8]) -> Vec<u8> {
        let sig: p256::ecdsa::DerSignature = es_key().sign(&message(auth, &CDH));
        sig.as_bytes().to_vec()
    }

    fn sign_es_raw(auth: &[u8]) -> Vec<u8> {
        let sig: p256::ecdsa::Signature = es_key().sign(&message(auth, &CDH));
        sig.to_bytes().to_vec()
    }

    fn sign_ed(auth: &[u8]) -> Vec<u8> {
        ed_key().sign(&message(auth, &CDH)).to_bytes().to_vec()
    }

    fn assertion(auth: Vec<u8>, signature: Vec<u8>) -> Assertion {
        Assertion {
            credential_id: CRED.to_vec(),
            authenticator_data: auth,
            signature,
        }
    }

    fn es_assertion(flags: u8, count: u32) -> Assertion {
        let auth = auth_data(RP, flags, count);
        let sig = sign_es_der(&auth);
        assertion(auth, sig)
    }

    fn ed_assertion(flags: u8, count: u32) -> Assertion {
        let auth = auth_data(RP, flags, count);
        let sig = sign_ed(&auth);
        assertion(auth, sig)
    }

    fn stored<'a>(algorithm: Algorithm, public_key: &'a [u8], sign_count: u32) -> StoredKey<'a> {
        StoredKey {
            credential_id: CRED,
            user: USER,
            algorithm,
            public_key,
            rp_id: RP,
            sign_count,
        }
    }

    /// `assertion` checked against the ES256 test key, stored with counter 4.
    fn verify_es(assertion: &Assertion, expect: &Expectation<'_>) -> Result<Verified, VerifyError> {
        verify_assertion(
            &stored(Algorithm::Es256, &es_public(), 4),
            assertion,
            expect,
        )
    }

    fn expect(require_uv: bool) -> Expectation<'static> {
        Expectation {
            user: USER,
            client_data_hash: &CDH,
            require_uv,
        }
    }

    #[test]
    fn valid_es256() {
        let public = es_public();
        assert_eq!(public.len(), 65);
        let got = verify_es(&es_assertion(FLAG_UP, 5), &expect(false));
        assert_eq!(
            got,
            Ok(Verified {
                sign_count: 5,
                user_verified: false,
                backup_eligible: false,
                backed_up: false
            })
        );
    }

    #[test]
    fn valid_es256_raw_signature() {
        let public = es_public();
        let auth = auth_data(RP, FLAG_UP, 9);
        let sig = sign_es_raw(&auth);
        assert_eq!(sig.len(), 64);
        let got = verify_assertion(
            &stored(Algorithm::Es256, &public, 8),
            &assertion(auth, sig),
            &expect(false),
        );
        assert_eq!(got.map(|v| v.sign_count), Ok(9));
    }

    #[test]
    fn valid_es256_raw_public_key() {
        let public = es_public();
        let raw = &public[1..];
        assert_eq!(raw.len(), 64);
        let got = verify_assertion(
            &stored(Algorithm::Es256, raw, 1),
            &es_assertion(FLAG_UP | FLAG_UV, 2),
            &expect(true),
        );
        assert_eq!(got.map(|v| (v.sign_count, v.user_verified)), Ok((2, true)));
    }

    #[test]
    fn valid_eddsa() {
        let public = ed_public();
        let got = verify_assertion(
            &stored(Algorithm::EdDsa, &public, 0),
            &ed_assertion(FLAG_UP | FLAG_UV, 1),
            &expect(true),
        );
        assert_eq!(
            got,
            Ok(Verified {
                sign_count: 1,
                user_verified: true,
                backup_eligible: false,
                backed_up: false
            })
        );
    }

    #[test]
    fn extension_data_is_tolerated() {
        let public = es_public();
        let mut auth = auth_data(RP, FLAG_UP | FLAG_ED, 3);
        // CBOR {"credProtect": 2}; ignored but signed over.
        auth.extend_from_slice(&[0xa1, 0x6b]);
        auth.extend_from_slice(b"credProtect");
        auth.push(0x02);
        let sig = sign_es_der(&auth);
        let got = verify_assertion(
            &stored(Algorithm::Es256, &public, 2),
            &assertion(auth, sig),
            &expect(false),
        );
        assert_eq!(got.map(|v| v.sign_count), Ok(3));
    }

    #[test]
    fn backup_flags_are_reported() {
        let public = ed_public();
        let got = verify_assertion(
            &stored(Algorithm::EdDsa, &public, 0),
            &ed_assertion(FLAG_UP | FLAG_BE | FLAG_BS, 0),
            &expect(false),
        );
        assert_eq!(
            got,
            Ok(Verified {
                sign_count: 0,
                user_verified: false,
                backup_eligible: true,
                backed_up: true
            })
        );
        let got = verify_assertion(
            &stored(Algorithm::EdDsa, &public, 0),
            &ed_assertion(FLAG_UP | FLAG_BE, 0),
            &expect(false),
        );
        assert_eq!(
            got.map(|v| (v.backup_eligible, v.backed_up)),
            Ok((true, false))
        );
    }

    #[test]
    fn tampered_signature() {
        let mut a = es_assertion(FLAG_UP, 5);
        let last = a.signature.len() - 1;
        a.signature[last] ^= 0x01;
        assert_eq!(
            verify_es(&a, &expect(false)),
            Err(VerifyError::BadSignature)
        );

        let public = ed_public();
        let mut a = ed_assertion(FLAG_UP, 5);
        a.signature[10] ^= 0x80;
        assert_eq!(
            verify_assertion(&stored(Algorithm::EdDsa, &public, 4), &a, &expect(false)),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn garbage_signatures() {
        for sig in [
            Vec::new(),
            vec![0u8; 64],
            vec![0x30; 70],
            vec![0xff; 64],
            vec![1u8; 200],
        ] {
            let a = assertion(auth_data(RP, FLAG_UP, 5), sig);
            assert_eq!(
                verify_es(&a, &expect(false)),
                Err(VerifyError::BadSignature)
            );
        }
        let public = ed_public();
        for sig in [Vec::new(), vec![0u8; 64], vec![1u8; 63], vec![1u8; 65]] {
            let a = assertion(auth_data(RP, FLAG_UP, 5), sig);
            assert_eq!(
                verify_assertion(&stored(Algorithm::EdDsa, &public, 4), &a, &expect(false)),
                Err(VerifyError::BadSignature)
            );
        }
    }

    #[test]
    fn tampered_authenticator_data() {
        // Flip a counter bit after signing: still higher than stored, but unsigned.
        let mut a = es_assertion(FLAG_UP, 5);
        a.authenticator_data[36] ^= 0x02; // 5 → 7
        assert_eq!(
            verify_es(&a, &expect(false)),
            Err(VerifyError::BadSignature)
        );

        // Set UV after signing (claiming a PIN that was never entered).
        let mut a = es_assertion(FLAG_UP, 5);
        a.authenticator_data[32] |= FLAG_UV;
        assert_eq!(verify_es(&a, &expect(true)), Err(VerifyError::BadSignature));

        // Appended bytes are signed over too.
        let mut a = ed_assertion(FLAG_UP, 5);
        a.authenticator_data.push(0);
        let public = ed_public();
        assert_eq!(
            verify_assertion(&stored(Algorithm::EdDsa, &public, 4), &a, &expect(false)),
            Err(VerifyError::BadSignature)
        );

        // Touching the rpIdHash is caught before the signature.
        let mut a = ed_assertion(FLAG_UP, 5);
        a.authenticator_data[0] ^= 0x01;
        assert_eq!(
            verify_assertion(&stored(Algorithm::EdDsa, &public, 4), &a, &expect(false)),
            Err(VerifyError::RpIdMismatch)
        );
    }

    #[test]
    fn wrong_client_data_hash() {
        let other = [0xa5; 32];
        let e = Expectation {
            user: USER,
            client_data_hash: &other,
            require_uv: false,
        };
        assert_eq!(
            verify_es(&es_assertion(FLAG_UP, 5), &e),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn other_credential_id() {
        let mut a = es_assertion(FLAG_UP, 5);
        a.credential_id = b"credential-0002".to_vec();
        assert_eq!(
            verify_es(&a, &expect(false)),
            Err(VerifyError::WrongCredential)
        );
        // A prefix is not the credential either.
        a.credential_id = CRED[..CRED.len() - 1].to_vec();
        assert_eq!(
            verify_es(&a, &expect(false)),
            Err(VerifyError::WrongCredential)
        );
        a.credential_id = Vec::new();
        assert_eq!(
            verify_es(&a, &expect(false)),
            Err(VerifyError::WrongCredential)
        );
    }

    #[test]
    fn other_user() {
        let e = Expectation {
            user: "mallory",
            client_data_hash: &CDH,
            require_uv: false,
        };
        assert_eq!(
            verify_es(&es_assertion(FLAG_UP, 5), &e),
            Err(VerifyError::WrongUser)
        );
    }

    #[test]
    fn wrong_rp_id() {
        let public = es_public();
        // Signed correctly, but for another relying party.
        let auth = auth_data("example.org", FLAG_UP, 5);
        let sig = sign_es_der(&auth);
        assert_eq!(
            verify_es(&assertion(auth, sig), &expect(false)),
            Err(VerifyError::RpIdMismatch)
        );
        // Or the stored credential is for another relying party.
        let mut key = stored(Algorithm::Es256, &public, 4);
        key.rp_id = "pam://other";
        assert_eq!(
            verify_assertion(&key, &es_assertion(FLAG_UP, 5), &expect(false)),
            Err(VerifyError::RpIdMismatch)
        );
    }

    #[test]
    fn user_not_present() {
        assert_eq!(
            verify_es(&es_assertion(FLAG_UV, 5), &expect(false)),
            Err(VerifyError::UserNotPresent)
        );
        assert_eq!(
            verify_es(&es_assertion(0, 5), &expect(false)),
            Err(VerifyError::UserNotPresent)
        );
    }

    #[test]
    fn user_verification() {
        let public = ed_public();
        let key = stored(Algorithm::EdDsa, &public, 4);
        assert_eq!(
            verify_assertion(&key, &ed_assertion(FLAG_UP, 5), &expect(true)),
            Err(VerifyError::UserNotVerified)
        );
        assert_eq!(
            verify_assertion(&key, &ed_assertion(FLAG_UP, 5), &expect(false))
                .map(|v| v.user_verified),
            Ok(false)
        );
        assert_eq!(
            verify_assertion(&key, &ed_assertion(FLAG_UP | FLAG_UV, 5), &expect(true))
                .map(|v| v.user_verified),
            Ok(true)
        );
    }

    #[test]
    fn counter_regression() {
        let public = es_public();
        assert_eq!(
            verify_assertion(
                &stored(Algorithm::Es256, &public, 10),
                &es_assertion(FLAG_UP, 9),
                &expect(false)
            ),
            Err(VerifyError::CounterRegression {
                stored: 10,
                received: 9
            })
        );
        // A key that used to count and now says 0 regressed too.
        assert_eq!(
            verify_assertion(
                &stored(Algorithm::Es256, &public, 10),
                &es_assertion(FLAG_UP, 0),
                &expect(false)
            ),
            Err(VerifyError::CounterRegression {
                stored: 10,
                received: 0
            })
        );
    }

    #[test]
    fn counter_equal() {
        let public = es_public();
        assert_eq!(
            verify_assertion(
                &stored(Algorithm::Es256, &public, 7),
                &es_assertion(FLAG_UP, 7),
                &expect(false)
            ),
            Err(VerifyError::CounterRegression {
                stored: 7,
                received: 7
            })
        );
    }

    #[test]
    fn counter_both_zero_accepted() {
        let public = es_public();
        assert_eq!(
            verify_assertion(
                &stored(Algorithm::Es256, &public, 0),
                &es_assertion(FLAG_UP, 0),
                &expect(false)
            )
            .map(|v| v.sign_count),
            Ok(0)
        );
        // And a first use from 0 with a counting key.
        assert_eq!(
            verify_assertion(
                &stored(Algorithm::Es256, &public, 0),
                &es_assertion(FLAG_UP, 1),
                &expect(false)
            )
            .map(|v| v.sign_count),
            Ok(1)
        );
    }

    #[test]
    fn forged_assertion_never_reports_counter_regression() {
        let public = es_public();
        let mut a = es_assertion(FLAG_UP, 3);
        a.signature[8] ^= 0x40;
        assert_eq!(
            verify_assertion(&stored(Algorithm::Es256, &public, 10), &a, &expect(false)),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn wrong_key_type() {
        let es = es_public();
        let ed = ed_public();
        // An EdDSA signature checked as ES256 (64 bytes, read as raw r ‖ s).
        assert_eq!(
            verify_assertion(
                &stored(Algorithm::Es256, &es, 4),
                &ed_assertion(FLAG_UP, 5),
                &expect(false)
            ),
            Err(VerifyError::BadSignature)
        );
        // An ES256 signature checked as EdDSA (DER, not 64 bytes; and raw).
        assert_eq!(
            verify_assertion(
                &stored(Algorithm::EdDsa, &ed, 4),
                &es_assertion(FLAG_UP, 5),
                &expect(false)
            ),
            Err(VerifyError::BadSignature)
        );
        let auth = auth_data(RP, FLAG_UP, 5);
        let raw = sign_es_raw(&auth);
        assert_eq!(
            verify_assertion(
                &stored(Algorithm::EdDsa, &ed, 4),
                &assertion(auth, raw),
                &expect(false)
            ),
            Err(VerifyError::BadSignature)
        );
        // An ES256 key stored as eddsa, and an EdDSA key stored as es256.
        assert_eq!(
            verify_assertion(
                &stored(Algorithm::EdDsa, &es, 4),
                &es_assertion(FLAG_UP, 5),
                &expect(false)
            ),
            Err(VerifyError::BadPublicKey)
        );
        assert_eq!(
            verify_assertion(
                &stored(Algorithm::Es256, &ed, 4),
                &ed_assertion(FLAG_UP, 5),
                &expect(false)
            ),
            Err(VerifyError::BadPublicKey)
        );
    }

    #[test]
    fn bad_public_keys() {
        let mut not_on_curve = es_public();
        not_on_curve[64] ^= 0x01;
        let mut compressed_tag = es_public();
        compressed_tag[0] = 0x02;
        let weak_ed = {
            // The identity point (y = 1): small order.
            let mut k = [0u8; 32];
            k[0] = 1;
            k
        };
        let cases: [(Algorithm, &[u8]); 7] = [
            (Algorithm::Es256, &not_on_curve),
            (Algorithm::Es256, &not_on_curve[1..]),
            (Algorithm::Es256, &compressed_tag),
            (Algorithm::Es256, &[]),
            (Algorithm::Es256, &[0x04; 33]),
            (Algorithm::EdDsa, &weak_ed),
            (Algorithm::EdDsa, &[0u8; 31]),
        ];
        for (algorithm, public) in cases {
            let a = match algorithm {
                Algorithm::Es256 => es_assertion(FLAG_UP, 5),
                Algorithm::EdDsa => ed_assertion(FLAG_UP, 5),
            };
            assert_eq!(
                verify_assertion(&stored(algorithm, public, 4), &a, &expect(false)),
                Err(VerifyError::BadPublicKey),
                "{algorithm:?} {public:02x?}"
            );
        }
    }

    #[test]
    fn short_authenticator_data() {
        for len in [0, 1, 32, 33, 36] {
            let auth = auth_data(RP, FLAG_UP, 5)[..len].to_vec();
            let sig = sign_es_der(&auth);
            assert_eq!(
                verify_es(&assertion(auth, sig), &expect(false)),
                Err(VerifyError::ShortAuthenticatorData)
            );
        }
    }

    #[test]
    fn parse_fields() {
        let mut data = auth_data(RP, FLAG_UP | FLAG_UV | FLAG_ED, 0x0102_0304);
        assert_eq!(
            parse_authenticator_data(&data).map(|a| a.sign_count),
            Ok(0x0102_0304)
        );
        data.extend_from_slice(&[0xa0]);
        let parsed = parse_authenticator_data(&data).unwrap();
        assert_eq!(
            parsed.rp_id_hash,
            <[u8; 32]>::from(Sha256::digest(RP.as_bytes()))
        );
        assert_eq!(parsed.flags, FLAG_UP | FLAG_UV | FLAG_ED);
        assert!(parsed.has(FLAG_UV) && !parsed.has(FLAG_BE));
        assert_eq!(
            parse_authenticator_data(&data[..36]),
            Err(VerifyError::ShortAuthenticatorData)
        );
    }

    #[test]
    fn client_data_hash_is_sha256() {
        // SHA-256("abc"), FIPS 180-2 test vector.
        let expected = data_encoding::HEXLOWER
            .decode(b"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
            .unwrap();
        assert_eq!(client_data_hash(b"abc").as_slice(), expected.as_slice());
    }
}
