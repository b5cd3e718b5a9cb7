//! Secrets at rest in the shared store: sealed with XChaCha20-Poly1305
//! (RustCrypto's `chacha20poly1305`) under the fleet key, bound to the row
//! they belong to.
//!
//! A sealed value is `1 ‖ key id (8) ‖ nonce (24) ‖ ciphertext ‖ tag (16)`.
//! The nonce is random per encryption (XChaCha's 192 bits make random
//! nonces safe for any number of messages under one key). The associated
//! data names the row (kind, credential id, user, and the parameters that
//! decide how the secret is used), so a ciphertext copied into another row,
//! another user or another kind of secret does not open. The key id (a
//! hash of the key, which reveals nothing about it) tells which key sealed
//! a value, so a host can say "sealed under another key" instead of
//! "damaged", and a key roll can keep an old key for reading.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const VERSION: u8 = 1;
const KEY_ID_LEN: usize = 8;
const NONCE_LEN: usize = 24;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;
/// Bytes in a fleet key.
pub const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptError {
    #[error("fleet key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },
    #[error(
        "a secret in the shared store was sealed under fleet key {found}, and this host has {known}: install the fleet key the database uses (key_file, or previous_key_file during a key roll; see docs/deploy.md)"
    )]
    UnknownKey { found: String, known: String },
    #[error(
        "a secret in the shared store does not open under fleet key {key}: the row was altered or moved to another credential or user"
    )]
    Tampered { key: String },
    #[error("a secret in the shared store is not in the sealed format")]
    Malformed,
}

/// One fleet key. Never printed: `Debug` shows only its id.
pub struct FleetKey {
    cipher: XChaCha20Poly1305,
    id: [u8; KEY_ID_LEN],
}

impl std::fmt::Debug for FleetKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FleetKey({})", self.id_hex())
    }
}

impl FleetKey {
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"stepup fleet key id v1\0")
            .chain_update(bytes)
            .finalize();
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        let key = Zeroizing::new(Key::from(*bytes));
        Self {
            cipher: XChaCha20Poly1305::new(&key),
            id,
        }
    }

    /// Read a key file: owned by root (the daemon's user), readable by it
    /// alone, holding 64 hexadecimal digits (a trailing newline is fine).
    /// Errors never quote the file's content.
    pub fn from_file(path: &Path) -> Result<Self, CryptError> {
        let refuse = |reason: String| CryptError::KeyFile {
            path: path.to_owned(),
            reason,
        };
        let meta = fs::metadata(path).map_err(|e| refuse(e.to_string()))?;
        if !meta.is_file() {
            return Err(refuse("not a regular file".into()));
        }
        let euid = nix::unistd::geteuid().as_raw();
        if meta.uid() != euid {
            return Err(refuse(format!(
                "owned by uid {}, expected {euid} (root)",
                meta.uid()
            )));
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(refuse(format!(
                "mode {mode:04o} lets group or others read it (chmod 0600 it)"
            )));
        }
        let text = Zeroizing::new(fs::read(path).map_err(|e| refuse(e.to_string()))?);
        let hex = text.strip_suffix(b"\n").unwrap_or(&text);
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        let decoded = hex.len() == 2 * KEY_LEN
            && data_encoding::HEXLOWER_PERMISSIVE
                .decode_mut(hex, &mut bytes[..])
                .is_ok();
        if !decoded {
            return Err(refuse(format!(
                "expected {} hexadecimal digits ({KEY_LEN} bytes; make one with `openssl rand -hex {KEY_LEN}`), found {} bytes of something else",
                2 * KEY_LEN,
                text.len()
            )));
        }
        Ok(Self::from_bytes(&bytes))
    }

    /// The key's public name: 16 hex digits of a hash of it.
    pub fn id_hex(&self) -> String {
        data_encoding::HEXLOWER.encode(&self.id)
    }

    fn seal(&self, plaintext: &[u8], binding: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: binding,
                },
            )
            // Only inputs over 256 GiB fail; secrets are a few dozen bytes.
            .unwrap_or_default();
        let mut out = Vec::with_capacity(HEADER_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }
}

/// The keys a host holds: the current one (seals and opens) and, during a
/// key roll, the previous one (opens only).
#[derive(Debug)]
pub struct Keyring {
    pub current: FleetKey,
    pub previous: Option<FleetKey>,
}

impl Keyring {
    pub fn new(current: FleetKey, previous: Option<FleetKey>) -> Self {
        Self { current, previous }
    }

    /// `key_file` and, if set, `previous_key_file`.
    pub fn from_files(current: &Path, previous: Option<&Path>) -> Result<Self, CryptError> {
        Ok(Self {
            current: FleetKey::from_file(current)?,
            previous: previous.map(FleetKey::from_file).transpose()?,
        })
    }

    /// Seal `plaintext` under the current key, bound to `binding`.
    pub fn seal(&self, plaintext: &[u8], binding: &Binding) -> Vec<u8> {
        self.current.seal(plaintext, &binding.0)
    }

    /// Open a sealed value bound to `binding`, with whichever of the keys
    /// sealed it.
    pub fn open(&self, sealed: &[u8], binding: &Binding) -> Result<Zeroizing<Vec<u8>>, CryptError> {
        if sealed.len() < HEADER_LEN + 16 || sealed[0] != VERSION {
            return Err(CryptError::Malformed);
        }
        let (id, rest) = sealed[1..].split_at(KEY_ID_LEN);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let key = std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .find(|k| k.id[..] == *id)
            .ok_or_else(|| CryptError::UnknownKey {
                found: data_encoding::HEXLOWER.encode(id),
                known: self.ids(),
            })?;
        let mut nonce_bytes = [0u8; NONCE_LEN];
        nonce_bytes.copy_from_slice(nonce);
        key.cipher
            .decrypt(
                &XNonce::from(nonce_bytes),
                Payload {
                    msg: ciphertext,
                    aad: &binding.0,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptError::Tampered { key: key.id_hex() })
    }

    /// The ids of the keys held, for messages.
    pub fn ids(&self) -> String {
        match &self.previous {
            Some(previous) => format!(
                "{} (and previous {})",
                self.current.id_hex(),
                previous.id_hex()
            ),
            None => self.current.id_hex(),
        }
    }
}

/// What a sealed value is bound to: the row's identity, as associated data.
pub struct Binding(Vec<u8>);

impl Binding {
    /// Fields joined with NUL, after a kind tag; NUL cannot occur in them
    /// (user names, ids and parameters are text without control characters).
    pub fn new(kind: &str, fields: &[&str]) -> Self {
        let mut data = format!("stepup {kind} v1").into_bytes();
        for field in fields {
            data.push(0);
            data.extend_from_slice(field.as_bytes());
        }
        Self(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn key(byte: u8) -> FleetKey {
        FleetKey::from_bytes(&[byte; KEY_LEN])
    }

    #[test]
    fn sealed_values_open_only_in_their_row_and_under_their_key() {
        let ring = Keyring::new(key(1), None);
        let alice = Binding::new("totp", &["totp-1", "alice"]);
        let sealed = ring.seal(b"12345678901234567890", &alice);
        assert_eq!(
            ring.open(&sealed, &alice).expect("opens").as_slice(),
            b"12345678901234567890"
        );
        // Random nonces: the same secret seals differently each time.
        assert_ne!(sealed, ring.seal(b"12345678901234567890", &alice));
        let bob = Binding::new("totp", &["totp-1", "bob"]);
        assert!(matches!(
            ring.open(&sealed, &bob),
            Err(CryptError::Tampered { .. })
        ));
        let mut flipped = sealed.clone();
        *flipped.last_mut().expect("tag") ^= 1;
        assert!(ring.open(&flipped, &alice).is_err());
        let other = Keyring::new(key(2), None);
        let err = other.open(&sealed, &alice).unwrap_err();
        assert!(matches!(err, CryptError::UnknownKey { .. }), "{err}");
        assert!(err.to_string().contains(&key(1).id_hex()), "{err}");
        // During a roll the previous key still opens what it sealed.
        let rolling = Keyring::new(key(2), Some(key(1)));
        assert!(rolling.open(&sealed, &alice).is_ok());
        assert!(matches!(
            rolling.open(b"short", &alice),
            Err(CryptError::Malformed)
        ));
    }

    #[test]
    fn key_files_must_be_private_and_hex_and_are_never_quoted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("fleet.key");
        let hex = "ab".repeat(KEY_LEN);
        fs::write(&path, format!("{hex}\n")).expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        let k = FleetKey::from_file(&path).expect("valid key");
        assert_eq!(k.id_hex(), FleetKey::from_bytes(&[0xab; KEY_LEN]).id_hex());
        assert!(!format!("{k:?}").contains("abab"));

        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).expect("chmod");
        let err = FleetKey::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("0640"), "{err}");

        let marker = "zq7marker".repeat(8);
        fs::write(&path, &marker).expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        let err = FleetKey::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("64 hexadecimal digits"), "{err}");
        assert!(!err.contains("zq7marker"), "{err}");
        fs::write(&path, &hex[..62]).expect("write");
        assert!(FleetKey::from_file(&path).is_err());
    }
}
