//! A software FIDO2 authenticator for tests and demos (TEST ONLY).
//!
//! It behaves like a CTAP2 key that only speaks ES256 and only makes
//! non-resident credentials. Its whole state lives in one JSON file:
//!
//! ```json
//! {
//!   "credentials": [
//!     { "credential_id": "<hex>", "rp_id": "pam://stepup",
//!       "private_key": "<hex P-256 scalar>", "sign_count": 3 }
//!   ],
//!   "pin": null,
//!   "touch": "auto",
//!   "uv": false
//! }
//! ```
//!
//! * `"touch": "never"` simulates a person who does not touch the key:
//!   `make_credential` / `get_assertion` re-read the file every 50 ms and
//!   give up with [`AuthenticatorError::Timeout`] when the caller's timeout
//!   runs out (flip it to `"auto"` while a call waits to "touch" the key).
//! * `"pin"`: when set, [`Authenticator::has_pin`] is true, a request with
//!   `require_uv` must carry that PIN ([`AuthenticatorError::PinRequired`] /
//!   [`AuthenticatorError::PinInvalid`]), and a PIN given with any request
//!   is checked.
//! * `"uv": true` means the key verifies its user itself (think fingerprint):
//!   `require_uv` is satisfied without a PIN.
//!
//! Missing fields take those defaults, and an empty file is an empty key.
//! Every operation re-reads the file and rewrites it atomically (temporary
//! file in the same directory, then rename; always mode 0600) under a
//! process-wide mutex, so tests may inspect and edit it between calls and
//! several instances over one file in one process stay consistent. Cross-
//! process writers are not locked out: edit the file only while no call is
//! running.
//!
//! The signed message is authenticatorData ‖ clientDataHash exactly as given
//! in the request, with authenticatorData = SHA-256(rp id) ‖ flags (UP 0x01,
//! plus UV 0x04 when the user was verified) ‖ signCount (big-endian u32);
//! the signature is ECDSA P-256 / SHA-256, DER-encoded.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use data_encoding::{HEXLOWER, HEXLOWER_PERMISSIVE};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{DerSignature, SigningKey};
use p256::elliptic_curve::Generate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{
    Algorithm, Assertion, AssertionRequest, Authenticator, AuthenticatorError,
    MakeCredentialRequest, NewCredential,
};

/// How often a waiting call re-reads the state file for `"touch"`.
const TOUCH_POLL: Duration = Duration::from_millis(50);
const CREDENTIAL_ID_LEN: usize = 32;
const FLAG_UP: u8 = 0x01;
const FLAG_UV: u8 = 0x04;

/// Serializes every read-modify-write of every state file in this process.
static STATE_LOCK: Mutex<()> = Mutex::new(());
/// Makes temporary file names unique within this process.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn lock_state() -> MutexGuard<'static, ()> {
    // The guarded data is `()`: a panic elsewhere cannot leave it broken.
    STATE_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Touch {
    /// The person touches the key at once.
    #[default]
    Auto,
    /// The person never touches the key: calls time out.
    Never,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredCredential {
    /// Hex.
    credential_id: String,
    rp_id: String,
    /// Hex P-256 scalar (32 bytes).
    private_key: String,
    sign_count: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    #[serde(default)]
    credentials: Vec<StoredCredential>,
    #[serde(default)]
    pin: Option<String>,
    #[serde(default)]
    touch: Touch,
    #[serde(default)]
    uv: bool,
}

impl State {
    /// Index of the first credential for `rp_id` whose id is in `allow_list`.
    fn find(&self, rp_id: &str, allow_list: &[Vec<u8>]) -> Option<usize> {
        self.credentials.iter().position(|c| {
            c.rp_id == rp_id
                && decode_hex(&c.credential_id).is_ok_and(|id| allow_list.contains(&id))
        })
    }
}

fn device_error(what: &str, path: &Path, detail: impl std::fmt::Display) -> AuthenticatorError {
    AuthenticatorError::Device(format!(
        "software authenticator: {what} {}: {detail}",
        path.display()
    ))
}

fn decode_hex(text: &str) -> Result<Vec<u8>, data_encoding::DecodeError> {
    HEXLOWER_PERMISSIVE.decode(text.as_bytes())
}

fn load(path: &Path) -> Result<State, AuthenticatorError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(AuthenticatorError::NoDevice),
        Err(e) => return Err(device_error("cannot read", path, e)),
    };
    if text.trim().is_empty() {
        return Ok(State::default());
    }
    serde_json::from_str(&text).map_err(|e| device_error("cannot parse", path, e))
}

/// Write the state atomically: a 0600 temporary file next to `path`, synced,
/// then renamed over it.
fn save(path: &Path, state: &State) -> Result<(), AuthenticatorError> {
    let mut text = serde_json::to_string_pretty(state)
        .map_err(|e| device_error("cannot serialize", path, e))?;
    text.push('\n');

    let dir = parent_dir(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".to_owned());
    let tmp = dir.join(format!(
        ".{name}.tmp.{}.{}",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));

    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        // The mode above is filtered by the umask; 0600 is never widened by
        // it, but make sure anyway.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(device_error("cannot write", path, e));
    }
    // Best effort: make the rename itself durable.
    if let Ok(d) = fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Set a credential's signature counter in a state file (tests: simulate a
/// cloned key whose counter went backwards, or one that is about to wrap).
pub fn set_sign_count(
    path: &Path,
    credential_id: &[u8],
    count: u32,
) -> Result<(), AuthenticatorError> {
    let _guard = lock_state();
    let mut state = load(path)?;
    let credential = state
        .credentials
        .iter_mut()
        .find(|c| decode_hex(&c.credential_id).is_ok_and(|id| id == credential_id))
        .ok_or(AuthenticatorError::NoCredential)?;
    credential.sign_count = count;
    save(path, &state)
}

/// Decide whether the user counts as verified, or why the request fails.
fn check_user_verification(
    state: &State,
    require_uv: bool,
    pin: Option<&Zeroizing<String>>,
) -> Result<bool, AuthenticatorError> {
    if let (Some(given), Some(set)) = (pin, state.pin.as_ref()) {
        // A PIN that is sent is always checked, as a real key would.
        return if bool::from(given.as_bytes().ct_eq(set.as_bytes())) {
            Ok(true)
        } else {
            Err(AuthenticatorError::PinInvalid)
        };
    }
    if !require_uv {
        return Ok(false);
    }
    if state.uv {
        return Ok(true);
    }
    if state.pin.is_some() {
        return Err(AuthenticatorError::PinRequired);
    }
    // No PIN set and no built-in verification: the key cannot verify anyone.
    Err(AuthenticatorError::UvFailed)
}

/// The ES256 authenticator whose state is the JSON file at `path`.
#[derive(Debug, Clone)]
pub struct SoftwareAuthenticator {
    path: PathBuf,
}

impl SoftwareAuthenticator {
    /// Use the state file at `path`, creating an empty key (mode 0600) if it
    /// does not exist. An existing file must parse.
    pub fn open(path: &Path) -> Result<Self, AuthenticatorError> {
        let _guard = lock_state();
        match fs::symlink_metadata(path) {
            Ok(_) => {
                load(path)?;
            }
            Err(e) if e.kind() == ErrorKind::NotFound => save(path, &State::default())?,
            Err(e) => return Err(device_error("cannot stat", path, e)),
        }
        Ok(Self {
            path: path.to_path_buf(),
        })
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load_locked(&self) -> Result<State, AuthenticatorError> {
        let _guard = lock_state();
        load(&self.path)
    }

    /// Wait for the simulated touch: return at once for `"touch": "auto"`;
    /// otherwise re-read the file every 50 ms until it says `"auto"` or the
    /// timeout runs out. Never sleeps past `timeout`.
    fn wait_for_touch(&self, timeout: Duration) -> Result<(), AuthenticatorError> {
        let start = Instant::now();
        loop {
            if self.load_locked()?.touch == Touch::Auto {
                return Ok(());
            }
            let elapsed = start.elapsed();
            if elapsed >= timeout {
                return Err(AuthenticatorError::Timeout);
            }
            std::thread::sleep(TOUCH_POLL.min(timeout - elapsed));
        }
    }
}

impl Authenticator for SoftwareAuthenticator {
    fn describe(&self) -> String {
        format!(
            "software authenticator (TEST ONLY) at {}",
            self.path.display()
        )
    }

    fn present(&self) -> bool {
        parent_dir(&self.path).is_dir()
    }

    fn has_pin(&self) -> Result<bool, AuthenticatorError> {
        Ok(self.load_locked()?.pin.is_some())
    }

    fn make_credential(
        &self,
        request: &MakeCredentialRequest,
        timeout: Duration,
    ) -> Result<NewCredential, AuthenticatorError> {
        check_user_verification(
            &self.load_locked()?,
            request.require_uv,
            request.pin.as_ref(),
        )?;
        self.wait_for_touch(timeout)?;

        let _guard = lock_state();
        let mut state = load(&self.path)?;
        let signing_key = SigningKey::generate_from_rng(&mut rand::rng());
        let mut credential_id = vec![0u8; CREDENTIAL_ID_LEN];
        rand::fill(credential_id.as_mut_slice());
        let public_key = signing_key
            .verifying_key()
            .to_sec1_point(false)
            .as_bytes()
            .to_vec();
        let private_key = Zeroizing::new(signing_key.to_bytes());
        state.credentials.push(StoredCredential {
            credential_id: HEXLOWER.encode(&credential_id),
            rp_id: request.rp_id.clone(),
            private_key: HEXLOWER.encode(private_key.as_slice()),
            sign_count: 0,
        });
        save(&self.path, &state)?;

        Ok(NewCredential {
            credential_id,
            public_key,
            algorithm: Algorithm::Es256,
            sign_count: 0,
            supports_uv: state.pin.is_some() || state.uv,
        })
    }

    fn get_assertion(
        &self,
        request: &AssertionRequest,
        timeout: Duration,
    ) -> Result<Assertion, AuthenticatorError> {
        let state = self.load_locked()?;
        let user_verified =
            check_user_verification(&state, request.require_uv, request.pin.as_ref())?;
        if state.find(&request.rp_id, &request.allow_list).is_none() {
            return Err(AuthenticatorError::NoCredential);
        }
        drop(state);
        self.wait_for_touch(timeout)?;

        // Re-read: the file may have changed while we waited.
        let _guard = lock_state();
        let mut state = load(&self.path)?;
        let index = state
            .find(&request.rp_id, &request.allow_list)
            .ok_or(AuthenticatorError::NoCredential)?;
        let credential = &mut state.credentials[index];
        let credential_id = decode_hex(&credential.credential_id)
            .map_err(|e| device_error("bad credential_id in", &self.path, e))?;
        let private_key = Zeroizing::new(
            decode_hex(&credential.private_key)
                .map_err(|e| device_error("bad private_key in", &self.path, e))?,
        );
        let signing_key = SigningKey::from_slice(&private_key)
            .map_err(|e| device_error("bad private_key in", &self.path, e))?;
        credential.sign_count = credential.sign_count.checked_add(1).ok_or_else(|| {
            device_error("signature counter exhausted in", &self.path, "u32 overflow")
        })?;
        let sign_count = credential.sign_count;
        // Persist the new counter before anything leaves the key.
        save(&self.path, &state)?;

        let mut flags = FLAG_UP;
        if user_verified {
            flags |= FLAG_UV;
        }
        let mut authenticator_data = Vec::with_capacity(37);
        authenticator_data.extend_from_slice(&Sha256::digest(request.rp_id.as_bytes()));
        authenticator_data.push(flags);
        authenticator_data.extend_from_slice(&sign_count.to_be_bytes());

        let mut message = Vec::with_capacity(authenticator_data.len() + 32);
        message.extend_from_slice(&authenticator_data);
        message.extend_from_slice(&request.client_data_hash);
        let signature: DerSignature = signing_key.sign(&message);

        Ok(Assertion {
            credential_id,
            authenticator_data,
            signature: signature.as_bytes().to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::VerifyingKey;
    use p256::ecdsa::signature::Verifier;

    const RP: &str = "pam://stepup";
    const TIMEOUT: Duration = Duration::from_secs(5);

    fn temp_key() -> (tempfile::TempDir, PathBuf, SoftwareAuthenticator) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        let key = SoftwareAuthenticator::open(&path).unwrap();
        (dir, path, key)
    }

    fn make_request(require_uv: bool, pin: Option<&str>) -> MakeCredentialRequest {
        MakeCredentialRequest {
            rp_id: RP.to_owned(),
            user_name: "alice".to_owned(),
            user_id: vec![7; 16],
            client_data: Vec::new(),
            client_data_hash: [1; 32],
            require_uv,
            pin: pin.map(|p| Zeroizing::new(p.to_owned())),
        }
    }

    fn assertion_request(id: &[u8], require_uv: bool, pin: Option<&str>) -> AssertionRequest {
        AssertionRequest {
            rp_id: RP.to_owned(),
            client_data: Vec::new(),
            client_data_hash: [0x42; 32],
            allow_list: vec![vec![9; 32], id.to_vec()],
            require_uv,
            pin: pin.map(|p| Zeroizing::new(p.to_owned())),
        }
    }

    fn edit_state(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
        let mut value: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
        edit(&mut value);
        fs::write(path, serde_json::to_string(&value).unwrap()).unwrap();
    }

    fn file_value(path: &Path) -> serde_json::Value {
        serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
    }

    fn verify(public_key: &[u8], request: &AssertionRequest, assertion: &Assertion) {
        let key = VerifyingKey::from_sec1_bytes(public_key).unwrap();
        let signature = DerSignature::from_bytes(&assertion.signature).unwrap();
        let mut message = assertion.authenticator_data.clone();
        message.extend_from_slice(&request.client_data_hash);
        key.verify(&message, &signature).unwrap();
    }

    #[test]
    fn open_creates_a_0600_file_with_an_empty_key() {
        let (_dir, path, key) = temp_key();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            file_value(&path),
            serde_json::json!({ "credentials": [], "pin": null, "touch": "auto", "uv": false })
        );
        assert!(key.present());
        assert!(!key.has_pin().unwrap());
        assert!(key.describe().contains("TEST ONLY"));
        assert!(key.describe().ends_with(&path.display().to_string()));
    }

    #[test]
    fn rewrites_keep_the_file_0600_and_leave_no_temporaries() {
        let (dir, path, key) = temp_key();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        key.make_credential(&make_request(false, None), TIMEOUT)
            .unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("key.json")]);
    }

    #[test]
    fn open_rejects_garbage_and_accepts_an_empty_file() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.json");
        fs::write(&bad, "{ not json").unwrap();
        assert!(matches!(
            SoftwareAuthenticator::open(&bad),
            Err(AuthenticatorError::Device(_))
        ));
        let empty = dir.path().join("empty.json");
        fs::write(&empty, "").unwrap();
        let key = SoftwareAuthenticator::open(&empty).unwrap();
        assert!(!key.has_pin().unwrap());
    }

    #[test]
    fn make_credential_and_assertion_verify_independently() {
        let (_dir, path, key) = temp_key();
        let new = key
            .make_credential(&make_request(false, None), TIMEOUT)
            .unwrap();
        assert_eq!(new.credential_id.len(), 32);
        assert_eq!(new.public_key.len(), 65);
        assert_eq!(new.public_key[0], 0x04);
        assert_eq!(new.algorithm, Algorithm::Es256);
        assert_eq!(new.sign_count, 0);
        assert!(!new.supports_uv);

        let stored = &file_value(&path)["credentials"][0];
        assert_eq!(stored["credential_id"], HEXLOWER.encode(&new.credential_id));
        assert_eq!(stored["rp_id"], RP);
        assert_eq!(stored["sign_count"], 0);

        let request = assertion_request(&new.credential_id, false, None);
        let assertion = key.get_assertion(&request, TIMEOUT).unwrap();
        assert_eq!(assertion.credential_id, new.credential_id);
        let auth = &assertion.authenticator_data;
        assert_eq!(auth.len(), 37);
        assert_eq!(&auth[..32], Sha256::digest(RP.as_bytes()).as_slice());
        assert_eq!(auth[32], FLAG_UP);
        assert_eq!(&auth[33..], &1u32.to_be_bytes());
        verify(&new.public_key, &request, &assertion);

        // A different clientDataHash does not verify with this signature.
        let other = AssertionRequest {
            client_data: Vec::new(),
            client_data_hash: [0x43; 32],
            ..request
        };
        let key_v = VerifyingKey::from_sec1_bytes(&new.public_key).unwrap();
        let signature = DerSignature::from_bytes(&assertion.signature).unwrap();
        let mut message = assertion.authenticator_data.clone();
        message.extend_from_slice(&other.client_data_hash);
        assert!(key_v.verify(&message, &signature).is_err());
    }

    #[test]
    fn counter_increments_and_persists_across_reopen() {
        let (_dir, path, key) = temp_key();
        let new = key
            .make_credential(&make_request(false, None), TIMEOUT)
            .unwrap();
        let request = assertion_request(&new.credential_id, false, None);
        for expected in 1..=3u32 {
            let a = key.get_assertion(&request, TIMEOUT).unwrap();
            assert_eq!(&a.authenticator_data[33..37], &expected.to_be_bytes());
            assert_eq!(file_value(&path)["credentials"][0]["sign_count"], expected);
        }
        drop(key);

        let reopened = SoftwareAuthenticator::open(&path).unwrap();
        let a = reopened.get_assertion(&request, TIMEOUT).unwrap();
        assert_eq!(&a.authenticator_data[33..37], &4u32.to_be_bytes());
        verify(&new.public_key, &request, &a);

        // A cloned key whose counter went backwards.
        set_sign_count(&path, &new.credential_id, 1).unwrap();
        let a = reopened.get_assertion(&request, TIMEOUT).unwrap();
        assert_eq!(&a.authenticator_data[33..37], &2u32.to_be_bytes());
        assert_eq!(
            set_sign_count(&path, &[0; 32], 5),
            Err(AuthenticatorError::NoCredential)
        );
    }

    #[test]
    fn counter_exhaustion_is_an_error_not_a_wrap() {
        let (_dir, path, key) = temp_key();
        let new = key
            .make_credential(&make_request(false, None), TIMEOUT)
            .unwrap();
        set_sign_count(&path, &new.credential_id, u32::MAX).unwrap();
        let request = assertion_request(&new.credential_id, false, None);
        assert!(matches!(
            key.get_assertion(&request, TIMEOUT),
            Err(AuthenticatorError::Device(_))
        ));
        assert_eq!(file_value(&path)["credentials"][0]["sign_count"], u32::MAX);
    }

    #[test]
    fn pin_required_invalid_and_ok() {
        let (_dir, path, key) = temp_key();
        let new = key
            .make_credential(&make_request(false, None), TIMEOUT)
            .unwrap();
        edit_state(&path, |v| v["pin"] = "1234".into());
        assert!(key.has_pin().unwrap());

        let id = &new.credential_id;
        assert_eq!(
            key.get_assertion(&assertion_request(id, true, None), TIMEOUT)
                .unwrap_err(),
            AuthenticatorError::PinRequired
        );
        assert_eq!(
            key.get_assertion(&assertion_request(id, true, Some("4321")), TIMEOUT)
                .unwrap_err(),
            AuthenticatorError::PinInvalid
        );
        // A wrong PIN is rejected even when UV is not required.
        assert_eq!(
            key.get_assertion(&assertion_request(id, false, Some("12345")), TIMEOUT)
                .unwrap_err(),
            AuthenticatorError::PinInvalid
        );
        // Failed attempts do not move the counter.
        assert_eq!(file_value(&path)["credentials"][0]["sign_count"], 0);

        let request = assertion_request(id, true, Some("1234"));
        let a = key.get_assertion(&request, TIMEOUT).unwrap();
        assert_eq!(a.authenticator_data[32], FLAG_UP | FLAG_UV);
        verify(&new.public_key, &request, &a);

        // Without require_uv and without a PIN: presence only.
        let a = key
            .get_assertion(&assertion_request(id, false, None), TIMEOUT)
            .unwrap();
        assert_eq!(a.authenticator_data[32], FLAG_UP);

        // make_credential follows the same rules and reports UV support.
        assert_eq!(
            key.make_credential(&make_request(true, None), TIMEOUT)
                .unwrap_err(),
            AuthenticatorError::PinRequired
        );
        assert_eq!(
            key.make_credential(&make_request(true, Some("0000")), TIMEOUT)
                .unwrap_err(),
            AuthenticatorError::PinInvalid
        );
        let second = key
            .make_credential(&make_request(true, Some("1234")), TIMEOUT)
            .unwrap();
        assert!(second.supports_uv);
    }

    #[test]
    fn builtin_uv_satisfies_require_uv_without_a_pin() {
        let (_dir, path, key) = temp_key();
        let new = key
            .make_credential(&make_request(false, None), TIMEOUT)
            .unwrap();
        // No PIN and no built-in UV: the key cannot verify anyone.
        assert_eq!(
            key.get_assertion(&assertion_request(&new.credential_id, true, None), TIMEOUT)
                .unwrap_err(),
            AuthenticatorError::UvFailed
        );
        edit_state(&path, |v| v["uv"] = true.into());
        assert!(!key.has_pin().unwrap());
        let request = assertion_request(&new.credential_id, true, None);
        let a = key.get_assertion(&request, TIMEOUT).unwrap();
        assert_eq!(a.authenticator_data[32], FLAG_UP | FLAG_UV);
        verify(&new.public_key, &request, &a);
        assert!(
            key.make_credential(&make_request(true, None), TIMEOUT)
                .unwrap()
                .supports_uv
        );
    }

    #[test]
    fn touch_never_times_out_within_the_timeout() {
        let (_dir, path, key) = temp_key();
        let new = key
            .make_credential(&make_request(false, None), TIMEOUT)
            .unwrap();
        edit_state(&path, |v| v["touch"] = "never".into());

        let timeout = Duration::from_millis(200);
        let start = Instant::now();
        let err = key
            .get_assertion(&assertion_request(&new.credential_id, false, None), timeout)
            .unwrap_err();
        let elapsed = start.elapsed();
        assert_eq!(err, AuthenticatorError::Timeout);
        assert!(elapsed >= timeout, "{elapsed:?}");
        assert!(
            elapsed < timeout + Duration::from_millis(500),
            "{elapsed:?}"
        );
        assert_eq!(file_value(&path)["credentials"][0]["sign_count"], 0);

        let start = Instant::now();
        assert_eq!(
            key.make_credential(&make_request(false, None), timeout)
                .unwrap_err(),
            AuthenticatorError::Timeout
        );
        assert!(start.elapsed() < timeout + Duration::from_millis(500));
        assert_eq!(
            file_value(&path)["credentials"].as_array().unwrap().len(),
            1
        );
    }

    #[test]
    fn touching_while_waiting_completes_the_call() {
        let (_dir, path, key) = temp_key();
        let new = key
            .make_credential(&make_request(false, None), TIMEOUT)
            .unwrap();
        edit_state(&path, |v| v["touch"] = "never".into());
        let request = assertion_request(&new.credential_id, false, None);
        let toucher = {
            let path = path.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(150));
                let _guard = lock_state();
                let mut state = load(&path).unwrap();
                state.touch = Touch::Auto;
                save(&path, &state).unwrap();
            })
        };
        let start = Instant::now();
        let a = key.get_assertion(&request, TIMEOUT).unwrap();
        assert!(start.elapsed() >= Duration::from_millis(150));
        assert!(start.elapsed() < Duration::from_secs(2));
        verify(&new.public_key, &request, &a);
        toucher.join().unwrap();
    }

    #[test]
    fn unknown_credential_or_rp_is_no_credential() {
        let (_dir, _path, key) = temp_key();
        let new = key
            .make_credential(&make_request(false, None), TIMEOUT)
            .unwrap();
        assert_eq!(
            key.get_assertion(&assertion_request(&[0xee; 32], false, None), TIMEOUT)
                .unwrap_err(),
            AuthenticatorError::NoCredential
        );
        let mut request = assertion_request(&new.credential_id, false, None);
        request.rp_id = "pam://elsewhere".to_owned();
        assert_eq!(
            key.get_assertion(&request, TIMEOUT).unwrap_err(),
            AuthenticatorError::NoCredential
        );
        request.rp_id = RP.to_owned();
        request.allow_list.clear();
        assert_eq!(
            key.get_assertion(&request, TIMEOUT).unwrap_err(),
            AuthenticatorError::NoCredential
        );
    }

    #[test]
    fn first_matching_credential_in_file_order_is_used() {
        let (_dir, _path, key) = temp_key();
        let first = key
            .make_credential(&make_request(false, None), TIMEOUT)
            .unwrap();
        let second = key
            .make_credential(&make_request(false, None), TIMEOUT)
            .unwrap();
        let mut request = assertion_request(&second.credential_id, false, None);
        request.allow_list.push(first.credential_id.clone());
        let a = key.get_assertion(&request, TIMEOUT).unwrap();
        assert_eq!(a.credential_id, first.credential_id);
        verify(&first.public_key, &request, &a);
    }

    #[test]
    fn deleted_file_means_no_device_and_missing_dir_means_not_present() {
        let (dir, path, key) = temp_key();
        fs::remove_file(&path).unwrap();
        assert_eq!(key.has_pin().unwrap_err(), AuthenticatorError::NoDevice);
        assert!(key.present());
        drop(dir);
        assert!(!key.present());
    }
}
