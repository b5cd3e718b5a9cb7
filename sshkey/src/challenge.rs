//! The challenge the daemon asks the key to sign: fresh random bytes, in an
//! SSHSIG envelope whose namespace names this host.

use ssh_key::{HashAlg, SshSig};

/// The namespace prefix: signatures are made for `stepup@<host>`.
pub const NAMESPACE_PREFIX: &str = "stepup@";

/// Longest host name accepted in a namespace (a DNS name's limit).
const MAX_HOST_LEN: usize = 253;

/// Why a challenge could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    #[error(
        "{host:?} cannot name a signature namespace: use 1 to 253 printable \
         ASCII characters without blanks"
    )]
    BadHost { host: String },
}

/// One step-up challenge: 32 random bytes and the namespace
/// `stepup@<host>`. A signature over it is useless anywhere else: SSHSIG
/// binds the namespace, and `ssh`'s own authentication signatures can never
/// be confused with an SSHSIG blob (it starts with the `SSHSIG` magic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    namespace: String,
    nonce: [u8; Challenge::NONCE_LEN],
    signed_data: Vec<u8>,
}

impl Challenge {
    pub const NONCE_LEN: usize = 32;
    /// The SSHSIG hash algorithm (what `ssh-keygen -Y sign` uses too).
    pub const HASH: HashAlg = HashAlg::Sha512;

    /// A fresh challenge for `host` (the daemon's host name).
    pub fn new(host: &str) -> Result<Challenge, ChallengeError> {
        let mut nonce = [0u8; Self::NONCE_LEN];
        rand::fill(&mut nonce);
        Challenge::with_nonce(host, nonce)
    }

    /// A challenge with a given nonce (tests; the daemon uses [`Challenge::new`]).
    pub fn with_nonce(host: &str, nonce: [u8; 32]) -> Result<Challenge, ChallengeError> {
        let ok = !host.is_empty()
            && host.len() <= MAX_HOST_LEN
            && host.bytes().all(|b| b.is_ascii_graphic());
        if !ok {
            return Err(ChallengeError::BadHost {
                host: host.to_owned(),
            });
        }
        let namespace = format!("{NAMESPACE_PREFIX}{host}");
        // Fails only for an empty namespace, which this is not.
        let signed_data = SshSig::signed_data(&namespace, Self::HASH, &nonce).map_err(|_| {
            ChallengeError::BadHost {
                host: host.to_owned(),
            }
        })?;
        Ok(Challenge {
            namespace,
            nonce,
            signed_data,
        })
    }

    /// `stepup@<host>`.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The message signed (inside the SSHSIG envelope).
    pub fn nonce(&self) -> &[u8; 32] {
        &self.nonce
    }

    /// The SSHSIG "to be signed" blob: `SSHSIG` ‖ namespace ‖ reserved ‖
    /// `sha512` ‖ SHA-512(nonce). This is what the agent is asked to sign.
    pub fn signed_data(&self) -> &[u8] {
        &self.signed_data
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ssh_key::sha2::{Digest, Sha512};

    #[test]
    fn fresh_nonces_and_the_sshsig_layout() {
        let a = Challenge::new("db1.example").unwrap();
        let b = Challenge::new("db1.example").unwrap();
        assert_ne!(a.nonce(), b.nonce());
        assert_eq!(a.namespace(), "stepup@db1.example");

        let data = a.signed_data();
        let mut expected = b"SSHSIG".to_vec();
        for field in [
            b"stepup@db1.example".as_slice(),
            b"",
            b"sha512",
            Sha512::digest(a.nonce()).as_slice(),
        ] {
            expected.extend_from_slice(&u32::try_from(field.len()).unwrap().to_be_bytes());
            expected.extend_from_slice(field);
        }
        assert_eq!(data, expected);
    }

    #[test]
    fn hosts_that_cannot_name_a_namespace_are_refused() {
        for host in ["", "a b", "tab\there", "new\nline", "é", &"h".repeat(254)] {
            assert!(
                matches!(Challenge::new(host), Err(ChallengeError::BadHost { .. })),
                "{host:?}"
            );
        }
        assert!(Challenge::new(&"h".repeat(253)).is_ok());
    }
}
