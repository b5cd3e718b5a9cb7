//! USB security keys (CTAP2 over USB HID) through the `ctap-hid-fido2` crate.
//!
//! # How the crate is used
//!
//! * Discovery: [`ctap_hid_fido2::get_fidokey_devices`] lists HID devices on
//!   the FIDO usage page (0xF1D0) via hidapi/hidraw. [`Authenticator::present`]
//!   is "at least one listed". Exactly one key must be connected for a
//!   request (several → [`AuthenticatorError::Device`]; none →
//!   [`AuthenticatorError::NoDevice`]). The device is opened afresh for every
//!   request (keys get unplugged), with the crate's keep-alive "touch the
//!   sensor" message switched off (it would go to the daemon's stdout).
//! * Before every request `authenticatorGetInfo` tells whether a PIN is set
//!   (option `clientPin`) and whether the key verifies users itself (option
//!   `uv`, e.g. a fingerprint). [`Authenticator::has_pin`] is the former.
//! * `make_credential_with_args`: ES256 only, non-resident, rp id, user
//!   entity (user id, name, name as display name); `get_assertion_with_args`:
//!   rp id and the allow list. User verification, see [`plan_uv`]: a PIN
//!   given for a key that has one is always used (pinUvAuthParam); otherwise,
//!   when UV is required, built-in UV is requested if the key has it, or the
//!   call fails with `PinRequired` (PIN set) / `UvFailed` (key cannot verify
//!   users); when UV is not required only user presence is requested.
//! * Results: the key's public key comes back as a COSE key that the crate
//!   turns into "der", which for ES256 is really the raw SEC1 point
//!   0x04 ‖ X ‖ Y; it is validated and re-encoded as the 65-byte uncompressed
//!   point. Assertion signatures are whatever the key sent: CTAP2 mandates
//!   DER for ES256; they are validated and re-encoded as DER (a raw 64-byte
//!   r ‖ s is converted). The authenticator data is passed on byte for byte.
//! * Errors: the crate reports everything as `anyhow` text containing the
//!   CTAP status name; [`map_ctap_error`] maps that onto
//!   [`AuthenticatorError`]. The crate also `unwrap`s/`expect`s internally
//!   (hidapi initialisation, malformed responses), so every call into it runs
//!   under `catch_unwind` and a panic becomes `Device(..)`.
//! * Timeout: the crate has none (it polls for up to 500 keep-alives, and the
//!   key itself gives up after its own user-presence timeout, ~30 s on most
//!   keys). Each request therefore runs on its own thread; when `timeout`
//!   runs out the caller gets [`AuthenticatorError::Timeout`] at once, a
//!   CTAPHID_CANCEL is sent to the key (from another thread, so a wedged
//!   device cannot block the caller), and the worker thread ends when the
//!   key answers the pending request with KEEPALIVE_CANCEL (or at the key's
//!   own timeout). The call blocks for at most `timeout` plus ~0.5 s.
//!
//! # clientDataHash
//!
//! ctap-hid-fido2 takes a "challenge" and hashes it itself (clientDataHash =
//! SHA-256(challenge)), so this module passes the request's `client_data`
//! bytes — the clientDataJSON the daemon built — and the key signs
//! authenticatorData ‖ SHA-256(client_data), which is the request's
//! `client_data_hash`: the same message the software key signs and the
//! verifier checks.
//!
//! # Untested here
//!
//! There is no USB key (and no /dev/hidraw) on the build machine, so nothing
//! that talks to a device has run: discovery with a key present, getInfo,
//! makeCredential, getAssertion, PIN handling, cancellation on timeout. The
//! unit tests cover the pure parts (key and signature conversions, error
//! mapping, the UV decision, getInfo option parsing) and that with no key
//! connected `present()` is false and requests fail with `NoDevice`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use ctap_hid_fido2::fidokey::{
    CredentialSupportedKeyType, GetAssertionArgsBuilder, MakeCredentialArgsBuilder,
};
use ctap_hid_fido2::public_key::PublicKeyType;
use ctap_hid_fido2::public_key_credential_user_entity::PublicKeyCredentialUserEntity;
use ctap_hid_fido2::{FidoKeyHid, HidInfo, LibCfg};
use p256::ecdsa::{DerSignature, Signature, VerifyingKey};
use zeroize::Zeroizing;

use super::{
    Algorithm, Assertion, AssertionRequest, Authenticator, AuthenticatorError,
    MakeCredentialRequest, NewCredential,
};

/// Deadline for requests that need no touch (getInfo).
const INFO_TIMEOUT: Duration = Duration::from_secs(5);
/// After sending CTAPHID_CANCEL, how long to wait for the worker to let go
/// of the device before returning `Timeout` anyway.
const CANCEL_GRACE: Duration = Duration::from_millis(500);

/// USB HID security keys (YubiKey, SoloKey, Nitrokey, …).
#[derive(Debug, Clone, Default)]
pub struct HardwareAuthenticator {
    _private: (),
}

impl HardwareAuthenticator {
    /// Cheap: nothing is opened until a request.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Run `f`, turning a panic inside ctap-hid-fido2/hidapi into an error.
fn guarded<T>(f: impl FnOnce() -> Result<T, AuthenticatorError>) -> Result<T, AuthenticatorError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let text = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        Err(AuthenticatorError::Device(format!(
            "ctap-hid-fido2 failed: {text}"
        )))
    })
}

fn list_devices() -> Result<Vec<HidInfo>, AuthenticatorError> {
    guarded(|| Ok(ctap_hid_fido2::get_fidokey_devices()))
}

fn open_device() -> Result<Arc<FidoKeyHid>, AuthenticatorError> {
    let mut devices = list_devices()?;
    let device = match devices.len() {
        0 => return Err(AuthenticatorError::NoDevice),
        1 => devices.remove(0),
        n => {
            return Err(AuthenticatorError::Device(format!(
                "{n} security keys are connected; leave only one plugged in"
            )));
        }
    };
    let mut cfg = LibCfg::init();
    cfg.enable_log = false;
    cfg.enable_keep_alive_msg = false;
    cfg.keep_alive_msg = String::new();
    cfg.keep_alive_msg_to_stderr = true;
    guarded(|| {
        FidoKeyHid::new(std::slice::from_ref(&device.param), &cfg)
            .map(Arc::new)
            .map_err(|e| match map_ctap_error(&format!("{e:#}")) {
                AuthenticatorError::Device(text) => AuthenticatorError::Device(format!(
                    "cannot open {} ({text}); check the permissions of /dev/hidraw*",
                    device_name(&device)
                )),
                other => other,
            })
    })
}

fn device_name(device: &HidInfo) -> String {
    if device.product_string.trim().is_empty() {
        format!("security key {:04x}:{:04x}", device.vid, device.pid)
    } else {
        format!(
            "{} ({:04x}:{:04x})",
            device.product_string.trim(),
            device.vid,
            device.pid
        )
    }
}

/// Run `op` against the device on a worker thread, for at most `timeout`.
fn run_with_deadline<T: Send + 'static>(
    device: Arc<FidoKeyHid>,
    timeout: Duration,
    op: impl FnOnce(&FidoKeyHid) -> Result<T, AuthenticatorError> + Send + 'static,
) -> Result<T, AuthenticatorError> {
    let (tx, rx) = mpsc::sync_channel(1);
    let worker_device = Arc::clone(&device);
    std::thread::Builder::new()
        .name("stepup-fido2".to_owned())
        .spawn(move || {
            let _ = tx.send(guarded(|| op(&worker_device)));
        })
        .map_err(|e| AuthenticatorError::Device(format!("cannot start the key thread: {e}")))?;

    match rx.recv_timeout(timeout) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(AuthenticatorError::Device(
            "the security key thread ended without an answer".to_owned(),
        )),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            // Tell the key to drop the pending request. The crate's write
            // waits for the device lock, which the worker holds while reading;
            // do it from yet another thread so the caller never blocks on it.
            let _ = std::thread::Builder::new()
                .name("stepup-fido2-cancel".to_owned())
                .spawn(move || {
                    let _ = guarded(|| {
                        device
                            .cancel_selection()
                            .map_err(|e| AuthenticatorError::Device(e.to_string()))
                    });
                });
            // Let the worker release the device if the key answers quickly;
            // the outcome is a timeout either way.
            let _ = rx.recv_timeout(CANCEL_GRACE);
            Err(AuthenticatorError::Timeout)
        }
    }
}

/// What getInfo says about user verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Capabilities {
    /// Option `clientPin` is present and true: a PIN is set.
    pin_set: bool,
    /// Option `uv` is present and true: built-in UV is configured.
    builtin_uv: bool,
}

impl Capabilities {
    fn from_options(options: &[(String, bool)]) -> Self {
        let option = |name: &str| options.iter().any(|(k, v)| k == name && *v);
        Self {
            pin_set: option("clientPin"),
            builtin_uv: option("uv"),
        }
    }

    fn query(device: &FidoKeyHid) -> Result<Self, AuthenticatorError> {
        let info = device
            .get_info()
            .map_err(|e| map_ctap_error(&format!("{e:#}")))?;
        Ok(Self::from_options(&info.options))
    }
}

/// How a request asks the key to verify its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UvPlan {
    /// Send the PIN (pinUvAuthParam); the key sets UV.
    Pin,
    /// Ask for built-in user verification (option uv = true).
    BuiltIn,
    /// User presence only (no PIN, no uv option).
    PresenceOnly,
}

fn plan_uv(
    capabilities: Capabilities,
    require_uv: bool,
    pin_given: bool,
) -> Result<UvPlan, AuthenticatorError> {
    if pin_given && capabilities.pin_set {
        Ok(UvPlan::Pin)
    } else if !require_uv {
        Ok(UvPlan::PresenceOnly)
    } else if capabilities.builtin_uv {
        Ok(UvPlan::BuiltIn)
    } else if capabilities.pin_set {
        Err(AuthenticatorError::PinRequired)
    } else {
        Err(AuthenticatorError::UvFailed)
    }
}

/// Map a ctap-hid-fido2 error text onto [`AuthenticatorError`].
///
/// The crate formats CTAP failures as "response_status err = 0x31
/// CTAP2_ERR_PIN_INVALID PIN Invalid." and device failures as plain text.
fn map_ctap_error(message: &str) -> AuthenticatorError {
    const NO_DEVICE: &[&str] = &["FIDO device not found"];
    const PIN_REQUIRED: &[&str] = &["CTAP2_ERR_PIN_REQUIRED", "CTAP2_ERR_PIN_NOT_SET"];
    const PIN_INVALID: &[&str] = &["CTAP2_ERR_PIN_INVALID", "CTAP2_ERR_PIN_AUTH_INVALID"];
    const UV_FAILED: &[&str] = &[
        "CTAP2_ERR_UV_INVALID",
        "CTAP2_ERR_UV_BLOCKED",
        "CTAP2_ERR_UNAUTHORIZED_PERMISSION",
    ];
    const TIMEOUT: &[&str] = &[
        "CTAP2_ERR_USER_ACTION_TIMEOUT",
        "CTAP2_ERR_ACTION_TIMEOUT",
        "CTAP2_ERR_KEEPALIVE_CANCEL",
        "CTAP1_ERR_TIMEOUT",
    ];
    const NO_CREDENTIAL: &[&str] = &["CTAP2_ERR_NO_CREDENTIALS", "CTAP2_ERR_INVALID_CREDENTIAL"];

    let has = |names: &[&str]| names.iter().any(|name| message.contains(name));
    if has(NO_DEVICE) {
        AuthenticatorError::NoDevice
    } else if has(PIN_REQUIRED) {
        AuthenticatorError::PinRequired
    } else if has(PIN_INVALID) {
        AuthenticatorError::PinInvalid
    } else if has(UV_FAILED) {
        AuthenticatorError::UvFailed
    } else if has(TIMEOUT) {
        AuthenticatorError::Timeout
    } else if has(NO_CREDENTIAL) {
        AuthenticatorError::NoCredential
    } else if message.contains("CTAP2_ERR_PIN_BLOCKED")
        || message.contains("CTAP2_ERR_PIN_AUTH_BLOCKED")
    {
        AuthenticatorError::Device(format!(
            "the PIN is blocked (too many wrong PINs; CTAP: {message})"
        ))
    } else {
        AuthenticatorError::Device(message.to_owned())
    }
}

fn bad_key_data(what: &str) -> AuthenticatorError {
    AuthenticatorError::Device(format!("the security key returned {what}"))
}

/// The crate's credential public key ("der": raw SEC1 point for ES256, the
/// 32-byte key for Ed25519) → (algorithm, public key as the trait stores it).
fn convert_public_key(
    key_type: &PublicKeyType,
    bytes: &[u8],
) -> Result<(Algorithm, Vec<u8>), AuthenticatorError> {
    match key_type {
        PublicKeyType::Ecdsa256 => Ok((Algorithm::Es256, es256_public_key_to_sec1(bytes)?)),
        PublicKeyType::Ed25519 => {
            let raw: &[u8; 32] = bytes
                .try_into()
                .map_err(|_| bad_key_data("an Ed25519 public key that is not 32 bytes"))?;
            ed25519_dalek::VerifyingKey::from_bytes(raw)
                .map_err(|_| bad_key_data("an invalid Ed25519 public key"))?;
            Ok((Algorithm::EdDsa, raw.to_vec()))
        }
        PublicKeyType::Unknown => Err(bad_key_data("a public key of an unsupported type")),
    }
}

/// A P-256 point in SEC1 form (uncompressed 0x04 ‖ X ‖ Y or compressed) →
/// the validated 65-byte uncompressed form.
fn es256_public_key_to_sec1(bytes: &[u8]) -> Result<Vec<u8>, AuthenticatorError> {
    let key = VerifyingKey::from_sec1_bytes(bytes)
        .map_err(|_| bad_key_data("an invalid P-256 public key"))?;
    Ok(key.to_sec1_point(false).as_bytes().to_vec())
}

/// An ES256 signature as the key sent it (DER per CTAP2, or raw r ‖ s) →
/// validated DER.
fn es256_signature_to_der(bytes: &[u8]) -> Result<Vec<u8>, AuthenticatorError> {
    let signature = Signature::from_der(bytes)
        .or_else(|_| Signature::from_slice(bytes))
        .map_err(|_| bad_key_data("a malformed ES256 signature"))?;
    let der: DerSignature = signature.to_der();
    Ok(der.as_bytes().to_vec())
}

impl Authenticator for HardwareAuthenticator {
    fn describe(&self) -> String {
        match list_devices() {
            Ok(devices) if devices.is_empty() => "USB security key (none connected)".to_owned(),
            Ok(devices) => devices
                .iter()
                .map(device_name)
                .collect::<Vec<_>>()
                .join(", "),
            Err(e) => format!("USB security key ({e})"),
        }
    }

    fn present(&self) -> bool {
        list_devices().is_ok_and(|devices| !devices.is_empty())
    }

    fn has_pin(&self) -> Result<bool, AuthenticatorError> {
        let device = open_device()?;
        run_with_deadline(device, INFO_TIMEOUT, |device| {
            Ok(Capabilities::query(device)?.pin_set)
        })
    }

    fn make_credential(
        &self,
        request: &MakeCredentialRequest,
        timeout: Duration,
    ) -> Result<NewCredential, AuthenticatorError> {
        let device = open_device()?;
        let rp_id = request.rp_id.clone();
        let user_name = request.user_name.clone();
        let user_id = request.user_id.clone();
        let client_data = request.client_data.clone();
        let require_uv = request.require_uv;
        let pin = request.pin.clone();

        run_with_deadline(device, timeout, move |device| {
            let capabilities = Capabilities::query(device)?;
            let plan = plan_uv(capabilities, require_uv, pin.is_some())?;
            let user = PublicKeyCredentialUserEntity::new(
                Some(&user_id),
                Some(&user_name),
                Some(&user_name),
            );
            // The crate hashes this "challenge" into the clientDataHash.
            let mut builder = MakeCredentialArgsBuilder::new(&rp_id, &client_data)
                .key_type(CredentialSupportedKeyType::Ecdsa256)
                .user_entity(&user);
            builder = match (plan, pin.as_ref()) {
                (UvPlan::Pin, Some(pin)) => builder.pin(pin.as_str()),
                (UvPlan::BuiltIn, _) => builder,
                _ => builder.without_pin_and_uv(),
            };
            let attestation = device
                .make_credential_with_args(&builder.build())
                .map_err(|e| map_ctap_error(&format!("{e:#}")))?;

            if require_uv && !attestation.flags.user_verified_result {
                return Err(AuthenticatorError::UvFailed);
            }
            let credential_id = attestation.credential_descriptor.id.clone();
            if credential_id.is_empty() {
                return Err(bad_key_data("no credential id"));
            }
            let (algorithm, public_key) = convert_public_key(
                &attestation.credential_publickey.key_type,
                &attestation.credential_publickey.der,
            )?;
            Ok(NewCredential {
                credential_id,
                public_key,
                algorithm,
                sign_count: attestation.sign_count,
                supports_uv: capabilities.pin_set || capabilities.builtin_uv,
            })
        })
    }

    fn get_assertion(
        &self,
        request: &AssertionRequest,
        timeout: Duration,
    ) -> Result<Assertion, AuthenticatorError> {
        if request.allow_list.is_empty() {
            return Err(AuthenticatorError::NoCredential);
        }
        let device = open_device()?;
        let rp_id = request.rp_id.clone();
        let allow_list = request.allow_list.clone();
        let client_data = request.client_data.clone();
        let require_uv = request.require_uv;
        let pin: Option<Zeroizing<String>> = request.pin.clone();

        run_with_deadline(device, timeout, move |device| {
            let capabilities = Capabilities::query(device)?;
            let plan = plan_uv(capabilities, require_uv, pin.is_some())?;
            // The crate hashes this "challenge" into the clientDataHash.
            let mut builder = GetAssertionArgsBuilder::new(&rp_id, &client_data);
            for id in &allow_list {
                builder = builder.add_credential_id(id);
            }
            builder = match (plan, pin.as_ref()) {
                (UvPlan::Pin, Some(pin)) => builder.pin(pin.as_str()),
                (UvPlan::BuiltIn, _) => builder,
                _ => builder.without_pin_and_uv(),
            };
            let mut assertions = device
                .get_assertion_with_args(&builder.build())
                .map_err(|e| map_ctap_error(&format!("{e:#}")))?;
            if assertions.is_empty() {
                return Err(AuthenticatorError::NoCredential);
            }
            let assertion = assertions.swap_remove(0);

            if require_uv && !assertion.flags.user_verified_result {
                return Err(AuthenticatorError::UvFailed);
            }
            // CTAP2 lets the key omit the credential when the allow list had
            // exactly one entry.
            let credential_id = match (assertion.credential_id.is_empty(), allow_list.as_slice()) {
                (false, _) => assertion.credential_id,
                (true, [only]) => only.clone(),
                (true, _) => return Err(bad_key_data("an assertion without a credential id")),
            };
            if !allow_list.contains(&credential_id) {
                return Err(bad_key_data(
                    "an assertion for a credential that was not asked for",
                ));
            }
            Ok(Assertion {
                credential_id,
                authenticator_data: assertion.auth_data,
                signature: es256_signature_to_der(&assertion.signature)?,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::{Signer, Verifier};

    fn p256_key() -> SigningKey {
        SigningKey::from_slice(&[0x11; 32]).unwrap()
    }

    #[test]
    fn es256_public_key_keeps_uncompressed_and_expands_compressed() {
        let key = p256_key();
        let uncompressed = key.verifying_key().to_sec1_point(false).as_bytes().to_vec();
        let compressed = key.verifying_key().to_sec1_point(true).as_bytes().to_vec();
        assert_eq!(uncompressed.len(), 65);
        assert_eq!(compressed.len(), 33);

        let (alg, out) = convert_public_key(&PublicKeyType::Ecdsa256, &uncompressed).unwrap();
        assert_eq!(alg, Algorithm::Es256);
        assert_eq!(out, uncompressed);
        assert_eq!(es256_public_key_to_sec1(&compressed).unwrap(), uncompressed);
    }

    #[test]
    fn es256_public_key_rejects_garbage() {
        let key = p256_key();
        let mut point = key.verifying_key().to_sec1_point(false).as_bytes().to_vec();
        // What the crate produces when a coordinate is missing.
        assert!(convert_public_key(&PublicKeyType::Ecdsa256, &point[..33]).is_err());
        // Not on the curve.
        point[64] ^= 1;
        assert!(matches!(
            convert_public_key(&PublicKeyType::Ecdsa256, &point),
            Err(AuthenticatorError::Device(_))
        ));
        assert!(convert_public_key(&PublicKeyType::Ecdsa256, &[]).is_err());
        assert!(convert_public_key(&PublicKeyType::Unknown, &[0x04; 65]).is_err());
    }

    #[test]
    fn ed25519_public_key_passes_through_when_valid() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[0x22; 32]);
        let public = key.verifying_key().to_bytes();
        let (alg, out) = convert_public_key(&PublicKeyType::Ed25519, &public).unwrap();
        assert_eq!(alg, Algorithm::EdDsa);
        assert_eq!(out, public);
        assert!(convert_public_key(&PublicKeyType::Ed25519, &public[..31]).is_err());
    }

    #[test]
    fn es256_signature_der_passes_through_and_raw_becomes_der() {
        let key = p256_key();
        let message = b"authenticatorData || clientDataHash";
        let der: DerSignature = key.sign(message);
        let fixed: Signature = key.sign(message);

        let out = es256_signature_to_der(der.as_bytes()).unwrap();
        assert_eq!(out, der.as_bytes());

        let raw = fixed.to_bytes();
        assert_eq!(raw.len(), 64);
        let out = es256_signature_to_der(&raw).unwrap();
        assert_eq!(out[0], 0x30);
        let parsed = DerSignature::from_bytes(&out).unwrap();
        key.verifying_key().verify(message, &parsed).unwrap();

        assert!(es256_signature_to_der(&[]).is_err());
        assert!(es256_signature_to_der(&[0x30, 0x02, 0x01]).is_err());
        assert!(es256_signature_to_der(&[0u8; 64]).is_err());
    }

    #[test]
    fn ctap_errors_map_onto_authenticator_errors() {
        let status = |text: &str| map_ctap_error(&format!("response_status err = {text}"));
        assert_eq!(
            map_ctap_error("FIDO device not found."),
            AuthenticatorError::NoDevice
        );
        assert_eq!(
            status("0x36 CTAP2_ERR_PIN_REQUIRED  PIN is required for the selected operation."),
            AuthenticatorError::PinRequired
        );
        assert_eq!(
            status("0x35 CTAP2_ERR_PIN_NOT_SET No PIN has been set."),
            AuthenticatorError::PinRequired
        );
        assert_eq!(
            status("0x31 CTAP2_ERR_PIN_INVALID   PIN Invalid."),
            AuthenticatorError::PinInvalid
        );
        assert_eq!(
            status(
                "0x33 CTAP2_ERR_PIN_AUTH_INVALID PIN authentication, pinAuth, verification failed."
            ),
            AuthenticatorError::PinInvalid
        );
        assert_eq!(
            status("0x3F CTAP2_ERR_UV_INVALID built-in user verification unsuccessful."),
            AuthenticatorError::UvFailed
        );
        assert_eq!(
            status("0x2F CTAP2_ERR_USER_ACTION_TIMEOUT   Timeout waiting for user interaction."),
            AuthenticatorError::Timeout
        );
        assert_eq!(
            status("0x2D CTAP2_ERR_KEEPALIVE_CANCEL  Pending keep alive was cancelled."),
            AuthenticatorError::Timeout
        );
        assert_eq!(
            status("0x3A CTAP2_ERR_ACTION_TIMEOUT The current operation has timed out."),
            AuthenticatorError::Timeout
        );
        assert_eq!(
            status("0x2E CTAP2_ERR_NO_CREDENTIALS    No valid credentials provided."),
            AuthenticatorError::NoCredential
        );
        assert!(matches!(
            status("0x32 CTAP2_ERR_PIN_BLOCKED PIN Blocked."),
            AuthenticatorError::Device(text) if text.contains("blocked")
        ));
        assert_eq!(
            map_ctap_error("read err = 0xFE"),
            AuthenticatorError::Device("read err = 0xFE".to_owned())
        );
        assert!(matches!(
            status("0x27 CTAP2_ERR_OPERATION_DENIED  Not authorized for requested operation."),
            AuthenticatorError::Device(_)
        ));
    }

    #[test]
    fn get_info_options_give_capabilities() {
        let opts = |list: &[(&str, bool)]| {
            Capabilities::from_options(
                &list
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), *v))
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(opts(&[]), Capabilities::default());
        assert_eq!(
            opts(&[("rk", true), ("up", true), ("clientPin", false)]),
            Capabilities {
                pin_set: false,
                builtin_uv: false
            }
        );
        assert_eq!(
            opts(&[("clientPin", true), ("uv", false)]),
            Capabilities {
                pin_set: true,
                builtin_uv: false
            }
        );
        assert_eq!(
            opts(&[("clientPin", true), ("uv", true)]),
            Capabilities {
                pin_set: true,
                builtin_uv: true
            }
        );
    }

    #[test]
    fn uv_plan_follows_pin_and_builtin_uv() {
        let caps = |pin_set, builtin_uv| Capabilities {
            pin_set,
            builtin_uv,
        };
        // A PIN given for a key with a PIN is always used.
        assert_eq!(plan_uv(caps(true, false), false, true), Ok(UvPlan::Pin));
        assert_eq!(plan_uv(caps(true, true), true, true), Ok(UvPlan::Pin));
        // No UV needed: presence only (a PIN for a PIN-less key is ignored).
        assert_eq!(
            plan_uv(caps(true, false), false, false),
            Ok(UvPlan::PresenceOnly)
        );
        assert_eq!(
            plan_uv(caps(false, false), false, true),
            Ok(UvPlan::PresenceOnly)
        );
        // UV needed.
        assert_eq!(plan_uv(caps(false, true), true, false), Ok(UvPlan::BuiltIn));
        assert_eq!(plan_uv(caps(true, true), true, false), Ok(UvPlan::BuiltIn));
        assert_eq!(
            plan_uv(caps(true, false), true, false),
            Err(AuthenticatorError::PinRequired)
        );
        assert_eq!(
            plan_uv(caps(false, false), true, true),
            Err(AuthenticatorError::UvFailed)
        );
        assert_eq!(
            plan_uv(caps(false, false), true, false),
            Err(AuthenticatorError::UvFailed)
        );
    }

    #[test]
    fn panics_inside_the_crate_become_device_errors() {
        let got: Result<(), _> = guarded(|| panic!("Failed to create HidApi instance"));
        assert!(matches!(got, Err(AuthenticatorError::Device(text)) if text.contains("HidApi")));
    }

    #[test]
    fn without_a_connected_key_requests_fail_with_no_device() {
        let key = HardwareAuthenticator::new();
        if key.present() {
            // A developer machine with a key plugged in: nothing to check
            // without touching it.
            return;
        }
        assert!(key.describe().contains("none connected") || key.describe().contains("error"));
        assert_eq!(key.has_pin(), Err(AuthenticatorError::NoDevice));
        let request = AssertionRequest {
            rp_id: "pam://stepup".to_owned(),
            client_data: Vec::new(),
            client_data_hash: [0; 32],
            allow_list: vec![vec![1; 32]],
            require_uv: false,
            pin: None,
        };
        assert!(matches!(
            key.get_assertion(&request, Duration::from_millis(100)),
            Err(AuthenticatorError::NoDevice)
        ));
        let request = MakeCredentialRequest {
            rp_id: "pam://stepup".to_owned(),
            user_name: "alice".to_owned(),
            user_id: vec![7; 16],
            client_data: Vec::new(),
            client_data_hash: [0; 32],
            require_uv: false,
            pin: None,
        };
        assert!(matches!(
            key.make_credential(&request, Duration::from_millis(100)),
            Err(AuthenticatorError::NoDevice)
        ));
    }
}
