//! The software "device": enrollment and signing, in safe Rust. The FFI
//! layer (`ffi.rs`) turns C arguments into these calls and the results back
//! into OpenSSH's structs.

use std::path::Path;

use ed25519_dalek::Signer as _;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::state::{self, State};

/// `SSH_SK_ECDSA`: ECDSA over P-256 with SHA-256.
pub const ALG_ECDSA: u32 = 0x00;
/// `SSH_SK_ED25519`.
pub const ALG_ED25519: u32 = 0x01;

/// `SSH_SK_USER_PRESENCE_REQD`: the key must be touched; also the UP flag of
/// a signature.
pub const FLAG_UP: u8 = 0x01;
/// `SSH_SK_USER_VERIFICATION_REQD`: PIN or biometrics; also the UV flag.
pub const FLAG_UV: u8 = 0x04;
/// `SSH_SK_RESIDENT_KEY`.
pub const FLAG_RESIDENT: u8 = 0x20;

/// Starts every key handle this provider makes.
const HANDLE_MAGIC: &[u8; 8] = b"SKSOFT01";
/// magic ‖ alg ‖ SHA-256(application) ‖ private key (32 bytes).
const HANDLE_LEN: usize = 8 + 1 + 32 + 32;

/// The errors of `sk-api.h`, with a reason for stderr (never key material).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkError {
    /// `SSH_SK_ERR_GENERAL` (-1): also what a real key gives when nobody
    /// touches it (FIDO_ERR_ACTION_TIMEOUT in `sk-usbhid`).
    General(String),
    /// `SSH_SK_ERR_UNSUPPORTED` (-2).
    Unsupported(String),
    /// `SSH_SK_ERR_PIN_REQUIRED` (-3): OpenSSH asks for a PIN and retries.
    PinRequired(String),
    /// `SSH_SK_ERR_DEVICE_NOT_FOUND` (-4).
    DeviceNotFound(String),
}

impl SkError {
    pub fn general(reason: String) -> Self {
        SkError::General(reason)
    }

    /// The `sk-api.h` return code.
    pub fn code(&self) -> i32 {
        match self {
            SkError::General(_) => -1,
            SkError::Unsupported(_) => -2,
            SkError::PinRequired(_) => -3,
            SkError::DeviceNotFound(_) => -4,
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            SkError::General(r)
            | SkError::Unsupported(r)
            | SkError::PinRequired(r)
            | SkError::DeviceNotFound(r) => r,
        }
    }
}

/// One `sk_option` OpenSSH passed (`device`, `user`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkOption {
    pub name: String,
    pub required: bool,
}

/// What `sk_enroll` returns.
pub struct Enrolled {
    /// Ed25519: the 32-byte key; ECDSA: the 65-byte uncompressed SEC1 point.
    pub public_key: Vec<u8>,
    /// TEST ONLY: carries the private key in clear (see the crate docs).
    pub key_handle: Zeroizing<Vec<u8>>,
    /// The key's flags, as OpenSSH asked.
    pub flags: u8,
}

/// What `sk_sign` returns.
pub struct Signed {
    pub flags: u8,
    pub counter: u32,
    /// Ed25519: the 64-byte signature; ECDSA: r (big-endian).
    pub sig_r: Vec<u8>,
    /// ECDSA: s (big-endian); Ed25519: none.
    pub sig_s: Option<Vec<u8>>,
}

/// The two algorithms of `sk-api.h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alg {
    Ecdsa,
    Ed25519,
}

impl Alg {
    fn from_api(alg: u32) -> Result<Alg, SkError> {
        match alg {
            ALG_ECDSA => Ok(Alg::Ecdsa),
            ALG_ED25519 => Ok(Alg::Ed25519),
            other => Err(SkError::Unsupported(format!("algorithm {other}"))),
        }
    }

    fn api(self) -> u8 {
        match self {
            Alg::Ecdsa => 0,
            Alg::Ed25519 => 1,
        }
    }
}

/// Refuse options we do not know when OpenSSH marks them required.
fn check_options(options: &[SkOption]) -> Result<(), SkError> {
    match options
        .iter()
        .find(|o| o.required && !matches!(o.name.as_str(), "device" | "user"))
    {
        Some(o) => Err(SkError::Unsupported(format!(
            "required option {:?} is not supported",
            o.name
        ))),
        None => Ok(()),
    }
}

/// PIN / built-in verification: `Ok(true)` when the user is verified.
fn check_user_verification(state: &State, flags: u8, pin: Option<&str>) -> Result<bool, SkError> {
    if let Some(pin) = pin {
        return match &state.pin {
            Some(expected) if expected == pin => Ok(true),
            Some(_) => Err(SkError::PinRequired("wrong PIN".into())),
            None => Err(SkError::general("a PIN was given but none is set".into())),
        };
    }
    if flags & FLAG_UV != 0 && !state.uv {
        return Err(SkError::PinRequired(
            "the key requires user verification".into(),
        ));
    }
    Ok(state.uv)
}

/// A fresh private key (32 random bytes that are a valid key for `alg`) and
/// its public key.
fn generate(alg: Alg) -> Result<(Zeroizing<[u8; 32]>, Vec<u8>), SkError> {
    // A P-256 scalar must be below the group order; 32 random bytes almost
    // always are (the chance of a retry is about 2^-32).
    for _ in 0..8 {
        let mut secret = Zeroizing::new([0u8; 32]);
        rand::fill(secret.as_mut_slice());
        if let Ok(public) = public_key(alg, &secret) {
            return Ok((secret, public));
        }
    }
    Err(SkError::general("could not generate a key".into()))
}

fn public_key(alg: Alg, secret: &[u8; 32]) -> Result<Vec<u8>, SkError> {
    match alg {
        Alg::Ed25519 => Ok(ed25519_dalek::SigningKey::from_bytes(secret)
            .verifying_key()
            .to_bytes()
            .to_vec()),
        Alg::Ecdsa => {
            let key = p256::ecdsa::SigningKey::from_slice(secret)
                .map_err(|_| SkError::general("invalid P-256 scalar".into()))?;
            Ok(key.verifying_key().to_sec1_point(false).as_bytes().to_vec())
        }
    }
}

/// `sk_enroll`: make a key for `application`.
pub fn enroll(
    alg: u32,
    application: &str,
    flags: u8,
    pin: Option<&str>,
    options: &[SkOption],
) -> Result<Enrolled, SkError> {
    let alg = Alg::from_api(alg)?;
    check_options(options)?;
    if flags & FLAG_RESIDENT != 0 {
        return Err(SkError::Unsupported("resident keys".into()));
    }
    let path = state::path_from_env()?;
    check_user_verification(&state::load(&path)?, flags, pin)?;
    // Making a credential needs a touch on real keys too.
    state::wait_for_touch(&path)?;

    let (secret, public_key) = generate(alg)?;
    let mut key_handle = Zeroizing::new(Vec::with_capacity(HANDLE_LEN));
    key_handle.extend_from_slice(HANDLE_MAGIC);
    key_handle.push(alg.api());
    key_handle.extend_from_slice(&Sha256::digest(application.as_bytes()));
    key_handle.extend_from_slice(secret.as_slice());
    Ok(Enrolled {
        public_key,
        key_handle,
        flags,
    })
}

/// The private key in `key_handle`, if the handle is ours, for this
/// algorithm and this application (a real key refuses a credential made for
/// another application: it does not find it).
fn open_handle(
    alg: Alg,
    application: &str,
    key_handle: &[u8],
) -> Result<Zeroizing<[u8; 32]>, SkError> {
    let not_ours = || SkError::general("the key handle is not one of this key's".into());
    if key_handle.len() != HANDLE_LEN || !key_handle.starts_with(HANDLE_MAGIC) {
        return Err(not_ours());
    }
    let (header, secret) = key_handle.split_at(HANDLE_LEN - 32);
    if header[8] != alg.api() || header[9..] != Sha256::digest(application.as_bytes())[..] {
        return Err(not_ours());
    }
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(secret);
    Ok(out)
}

/// The bytes a FIDO authenticator signs for OpenSSH:
/// SHA-256(application) ‖ flags ‖ counter (BE) ‖ SHA-256(data).
fn signed_bytes(application: &str, flags: u8, counter: u32, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + 1 + 4 + 32);
    out.extend_from_slice(&Sha256::digest(application.as_bytes()));
    out.push(flags);
    out.extend_from_slice(&counter.to_be_bytes());
    out.extend_from_slice(&Sha256::digest(data));
    out
}

/// `sk_sign`: sign `data` with the key in `key_handle`.
pub fn sign(
    alg: u32,
    data: &[u8],
    application: &str,
    key_handle: &[u8],
    flags: u8,
    pin: Option<&str>,
    options: &[SkOption],
) -> Result<Signed, SkError> {
    let alg = Alg::from_api(alg)?;
    check_options(options)?;
    let secret = open_handle(alg, application, key_handle)?;
    let path = state::path_from_env()?;
    sign_with(&path, alg, &secret, data, application, flags, pin)
}

fn sign_with(
    path: &Path,
    alg: Alg,
    secret: &[u8; 32],
    data: &[u8],
    application: &str,
    flags: u8,
    pin: Option<&str>,
) -> Result<Signed, SkError> {
    let verified = check_user_verification(&state::load(path)?, flags, pin)?;
    let mut sig_flags = 0;
    if flags & FLAG_UP != 0 {
        state::wait_for_touch(path)?;
        sig_flags |= FLAG_UP;
    }
    if verified {
        sig_flags |= FLAG_UV;
    }
    // Stored before the signature exists, as a real key does.
    let counter = state::next_counter(path)?;
    let message = signed_bytes(application, sig_flags, counter, data);
    let (sig_r, sig_s) = match alg {
        Alg::Ed25519 => {
            let key = ed25519_dalek::SigningKey::from_bytes(secret);
            (key.sign(&message).to_bytes().to_vec(), None)
        }
        Alg::Ecdsa => {
            let key = p256::ecdsa::SigningKey::from_slice(secret)
                .map_err(|_| SkError::general("invalid P-256 scalar in the key handle".into()))?;
            let signature: p256::ecdsa::Signature = key.sign(&message);
            let (r, s) = signature.split_bytes();
            (r.to_vec(), Some(s.to_vec()))
        }
    };
    Ok(Signed {
        flags: sig_flags,
        counter,
        sig_r,
        sig_s,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::state::{Touch, save};
    use ed25519_dalek::Verifier as _;

    fn device(state: &State) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        save(&path, state).unwrap();
        (dir, path)
    }

    fn key(alg: Alg, app: &str) -> (Zeroizing<[u8; 32]>, Vec<u8>, Vec<u8>) {
        let (secret, public) = generate(alg).unwrap();
        let mut handle = HANDLE_MAGIC.to_vec();
        handle.push(alg.api());
        handle.extend_from_slice(&Sha256::digest(app.as_bytes()));
        handle.extend_from_slice(secret.as_slice());
        (secret, public, handle)
    }

    #[test]
    fn ed25519_signature_covers_app_flags_counter_and_data_hash() {
        let (_dir, path) = device(&State::default());
        let (secret, public, _) = key(Alg::Ed25519, "ssh:");
        let signed =
            sign_with(&path, Alg::Ed25519, &secret, b"data", "ssh:", FLAG_UP, None).unwrap();
        assert_eq!((signed.flags, signed.counter), (FLAG_UP, 1));
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&public.try_into().unwrap()).unwrap();
        let sig = ed25519_dalek::Signature::from_slice(&signed.sig_r).unwrap();
        vk.verify(&signed_bytes("ssh:", FLAG_UP, 1, b"data"), &sig)
            .unwrap();
        assert!(
            vk.verify(&signed_bytes("ssh:", FLAG_UP, 2, b"data"), &sig)
                .is_err()
        );
        assert!(signed.sig_s.is_none());
    }

    #[test]
    fn ecdsa_signature_is_p256_sha256_over_the_same_bytes() {
        let (_dir, path) = device(&State {
            counter: 41,
            uv: true,
            ..State::default()
        });
        let (secret, public, _) = key(Alg::Ecdsa, "ssh:x");
        let signed = sign_with(&path, Alg::Ecdsa, &secret, b"m", "ssh:x", FLAG_UP, None).unwrap();
        assert_eq!((signed.flags, signed.counter), (FLAG_UP | FLAG_UV, 42));
        let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(&public).unwrap();
        let mut rs = signed.sig_r.clone();
        rs.extend_from_slice(signed.sig_s.as_ref().unwrap());
        let sig = p256::ecdsa::Signature::from_slice(&rs).unwrap();
        vk.verify(&signed_bytes("ssh:x", FLAG_UP | FLAG_UV, 42, b"m"), &sig)
            .unwrap();
    }

    #[test]
    fn not_touched_fails_general_and_keeps_the_counter() {
        let (_dir, path) = device(&State {
            counter: 5,
            touch: Touch::Never,
            touch_timeout_ms: 50,
            ..State::default()
        });
        let (secret, _, _) = key(Alg::Ed25519, "ssh:");
        let err = sign_with(&path, Alg::Ed25519, &secret, b"d", "ssh:", FLAG_UP, None)
            .err()
            .unwrap();
        assert_eq!(err.code(), -1);
        assert_eq!(state::load(&path).unwrap().counter, 5);
        // A no-touch-required key signs anyway, without the UP flag.
        let signed = sign_with(&path, Alg::Ed25519, &secret, b"d", "ssh:", 0, None).unwrap();
        assert_eq!((signed.flags, signed.counter), (0, 6));
    }

    #[test]
    fn pin_and_verify_required() {
        let (_dir, path) = device(&State {
            pin: Some("1234-marker".into()),
            ..State::default()
        });
        let (secret, _, _) = key(Alg::Ed25519, "ssh:");
        let sign = |flags, pin| sign_with(&path, Alg::Ed25519, &secret, b"d", "ssh:", flags, pin);
        assert_eq!(sign(FLAG_UP | FLAG_UV, None).err().unwrap().code(), -3);
        assert_eq!(sign(FLAG_UP, Some("wrong")).err().unwrap().code(), -3);
        let ok = sign(FLAG_UP | FLAG_UV, Some("1234-marker")).unwrap();
        assert_eq!(ok.flags, FLAG_UP | FLAG_UV);
        assert_eq!(sign(FLAG_UP, None).unwrap().flags, FLAG_UP);
    }

    #[test]
    fn handles_are_bound_to_algorithm_and_application() {
        let (_, _, handle) = key(Alg::Ed25519, "ssh:");
        assert!(open_handle(Alg::Ed25519, "ssh:", &handle).is_ok());
        assert_eq!(
            open_handle(Alg::Ed25519, "ssh:other", &handle)
                .err()
                .unwrap()
                .code(),
            -1
        );
        assert_eq!(
            open_handle(Alg::Ecdsa, "ssh:", &handle)
                .err()
                .unwrap()
                .code(),
            -1
        );
        assert!(open_handle(Alg::Ed25519, "ssh:", &handle[1..]).is_err());
        let mut foreign = handle.clone();
        foreign[0] ^= 1;
        assert!(open_handle(Alg::Ed25519, "ssh:", &foreign).is_err());
    }

    #[test]
    fn unknown_algorithms_resident_keys_and_required_options_are_unsupported() {
        assert_eq!(Alg::from_api(7).err().unwrap().code(), -2);
        let required = [SkOption {
            name: "frobnicate".into(),
            required: true,
        }];
        assert_eq!(check_options(&required).err().unwrap().code(), -2);
        let known = [SkOption {
            name: "device".into(),
            required: true,
        }];
        assert!(check_options(&known).is_ok());
        assert_eq!(
            enroll(ALG_ED25519, "ssh:", FLAG_UP | FLAG_RESIDENT, None, &[])
                .err()
                .unwrap()
                .code(),
            -2
        );
    }
}
