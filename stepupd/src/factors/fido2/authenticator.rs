//! The device side: something that makes credentials and signs assertions.
//!
//! Two implementations sit behind [`Authenticator`]: [`hardware`] (USB keys
//! through ctap-hid-fido2) and [`software`] (an ES256 key in a state file,
//! for tests and demos; selectable only by an explicit config value that
//! `stepupctl check` flags). The calls block (a person has to touch the key);
//! the daemon runs them off its event loop with a deadline.

use std::time::Duration;

use zeroize::Zeroizing;

pub mod hardware;
pub mod software;

/// COSE algorithms stepup accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// ECDSA P-256 with SHA-256 (COSE -7).
    Es256,
    /// Ed25519 (COSE -8).
    EdDsa,
}

impl Algorithm {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "es256",
            Self::EdDsa => "eddsa",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "es256" => Some(Self::Es256),
            "eddsa" => Some(Self::EdDsa),
            _ => None,
        }
    }
}

pub struct MakeCredentialRequest {
    pub rp_id: String,
    /// The account name shown by some keys.
    pub user_name: String,
    /// Opaque user handle (random per enrollment).
    pub user_id: Vec<u8>,
    /// The client data (WebAuthn's clientDataJSON, or a random challenge);
    /// `client_data_hash` is its SHA-256. USB keys get the bytes (their
    /// library hashes them), the software key the hash.
    pub client_data: Vec<u8>,
    pub client_data_hash: [u8; 32],
    pub require_uv: bool,
    pub pin: Option<Zeroizing<String>>,
}

#[derive(Debug, Clone)]
pub struct NewCredential {
    pub credential_id: Vec<u8>,
    /// ES256: the 65-byte uncompressed SEC1 point (0x04 ‖ X ‖ Y); EdDSA: 32 bytes.
    pub public_key: Vec<u8>,
    pub algorithm: Algorithm,
    pub sign_count: u32,
    /// The key can verify its user (PIN or biometrics).
    pub supports_uv: bool,
}

pub struct AssertionRequest {
    pub rp_id: String,
    /// As for [`MakeCredentialRequest::client_data`].
    pub client_data: Vec<u8>,
    pub client_data_hash: [u8; 32],
    /// Credential ids the key may use (this user's keys for this rpId).
    pub allow_list: Vec<Vec<u8>>,
    pub require_uv: bool,
    pub pin: Option<Zeroizing<String>>,
}

#[derive(Debug, Clone)]
pub struct Assertion {
    pub credential_id: Vec<u8>,
    pub authenticator_data: Vec<u8>,
    /// ES256: DER-encoded ECDSA signature; EdDSA: 64 bytes.
    pub signature: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthenticatorError {
    #[error("no security key is connected")]
    NoDevice,
    #[error("the security key was not touched in time")]
    Timeout,
    #[error("the security key needs its PIN")]
    PinRequired,
    #[error("wrong PIN")]
    PinInvalid,
    #[error("the security key could not verify the user")]
    UvFailed,
    #[error("this security key holds none of the allowed credentials")]
    NoCredential,
    #[error("security key error: {0}")]
    Device(String),
}

pub trait Authenticator: Send + Sync {
    /// For messages and `stepupctl status` ("software key …", "YubiKey 5 …").
    fn describe(&self) -> String;
    /// Is a key there to ask at all? (No device → the next method.)
    fn present(&self) -> bool;
    /// Does the key have a PIN set?
    fn has_pin(&self) -> Result<bool, AuthenticatorError>;
    fn make_credential(
        &self,
        request: &MakeCredentialRequest,
        timeout: Duration,
    ) -> Result<NewCredential, AuthenticatorError>;
    fn get_assertion(
        &self,
        request: &AssertionRequest,
        timeout: Duration,
    ) -> Result<Assertion, AuthenticatorError>;
}
