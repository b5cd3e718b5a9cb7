//! A security-key request in flight: it runs on its own thread from the
//! moment "Touch your security key" is sent (the device blocks until
//! touched), and `Respond` collects the result in short waits.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use stepup_config::Config;
use zeroize::Zeroizing;

use super::authenticator::{Assertion, AssertionRequest, Authenticator, AuthenticatorError};
use crate::store::Fido2Credential;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The configured authenticator (`[fido2] authenticator`).
pub fn authenticator_for(config: &Config) -> Option<Arc<dyn Authenticator>> {
    use crate::factors::fido2::authenticator::{
        hardware::HardwareAuthenticator, software::SoftwareAuthenticator,
    };
    match config.fido2.authenticator.strip_prefix("software:") {
        Some(path) => SoftwareAuthenticator::open(std::path::Path::new(path))
            .ok()
            .map(|a| Arc::new(a) as Arc<dyn Authenticator>),
        None => Some(Arc::new(HardwareAuthenticator::new()) as Arc<dyn Authenticator>),
    }
}

pub type TouchOutcome = Result<(Assertion, Fido2Credential, u32), AuthenticatorError>;

/// A security-key request running on its own thread (the device blocks
/// until touched), and its result once there.
pub struct TouchWait {
    result: Mutex<Option<TouchOutcome>>,
    done: std::sync::Condvar,
    pub client_data_hash: [u8; 32],
    pub require_uv: bool,
}

impl std::fmt::Debug for TouchWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TouchWait")
            .field("require_uv", &self.require_uv)
            .finish_non_exhaustive()
    }
}

impl TouchWait {
    pub fn start(
        authenticator: Arc<dyn Authenticator>,
        keys: Vec<(Fido2Credential, u32)>,
        require_uv: bool,
        pin: Option<Zeroizing<String>>,
        timeout: Duration,
    ) -> Arc<Self> {
        // A fresh random challenge per attempt, in WebAuthn's client data form.
        let mut challenge = [0u8; 32];
        rand::fill(&mut challenge);
        let rp_ids: std::collections::BTreeSet<String> =
            keys.iter().map(|(k, _)| k.rp_id.clone()).collect();
        let client_data = format!(
            r#"{{"type":"webauthn.get","challenge":"{}","origin":"{}","crossOrigin":false}}"#,
            data_encoding::BASE64URL_NOPAD.encode(&challenge),
            rp_ids.iter().next().cloned().unwrap_or_default()
        );
        let client_data_hash =
            crate::factors::fido2::verify::client_data_hash(client_data.as_bytes());
        let wait = Arc::new(Self {
            result: Mutex::new(None),
            done: std::sync::Condvar::new(),
            client_data_hash,
            require_uv,
        });
        let mut request = AssertionRequest {
            rp_id: String::new(),
            client_data: client_data.into_bytes(),
            client_data_hash,
            allow_list: Vec::new(),
            require_uv,
            pin,
        };
        let shared = wait.clone();
        std::thread::spawn(move || {
            let outcome = first_assertion(
                authenticator.as_ref(),
                &keys,
                &rp_ids,
                &mut request,
                timeout,
            );
            *lock(&shared.result) = Some(outcome);
            shared.done.notify_all();
        });
        wait
    }

    /// The result, if it arrives within `limit`.
    pub fn wait(&self, limit: Duration) -> Option<TouchOutcome> {
        let guard = lock(&self.result);
        let (mut guard, _) = self
            .done
            .wait_timeout_while(guard, limit, |r| r.is_none())
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.take()
    }
}

/// Asks the authenticator once per relying party the user's keys belong to
/// (pam_u2f imports keep their original origin) until a key answers;
/// `request` holds what every ask shares (challenge, UV, PIN).
fn first_assertion(
    authenticator: &dyn Authenticator,
    keys: &[(Fido2Credential, u32)],
    rp_ids: &std::collections::BTreeSet<String>,
    request: &mut AssertionRequest,
    timeout: Duration,
) -> TouchOutcome {
    for rp_id in rp_ids {
        request.rp_id = rp_id.clone();
        request.allow_list = keys
            .iter()
            .filter(|(k, _)| &k.rp_id == rp_id && !k.resident)
            .map(|(k, _)| k.key_handle.clone())
            .collect();
        match authenticator.get_assertion(request, timeout) {
            Ok(assertion) => {
                return match keys
                    .iter()
                    .find(|(k, _)| k.key_handle == assertion.credential_id && &k.rp_id == rp_id)
                {
                    Some((key, count)) => Ok((assertion, key.clone(), *count)),
                    None => Err(AuthenticatorError::NoCredential),
                };
            }
            Err(AuthenticatorError::NoCredential) => {}
            Err(e) => return Err(e),
        }
    }
    Err(AuthenticatorError::NoCredential)
}
