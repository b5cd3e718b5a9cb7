//! stepup-sshkey: what the daemon needs to use a person's security key
//! through their forwarded ssh-agent, and to read what sshd says about the
//! login key.
//!
//! * [`EnrolledSkKey`] and [`parse_authorized_keys`]: enrollment of
//!   `sk-ssh-ed25519@openssh.com` / `sk-ecdsa-sha2-nistp256@openssh.com`
//!   keys (other types are refused by name).
//! * [`Challenge`]: 32 fresh random bytes in an SSHSIG envelope with
//!   namespace `stepup@<host>` and hash sha512.
//! * [`request_signature`]: a blocking, deadline- and size-bounded agent
//!   client over a connected socket; [`peer_uid`] tells who runs the agent.
//! * [`verify`]: the signature, namespace, application, flags and counter.
//! * [`parse_ssh_auth_info`]: sshd's `SSH_AUTH_INFO_0`.
//!
//! Key parsing, SSHSIG and signature verification are `ssh-key`'s
//! (0.7, the line built on the workspace's ed25519-dalek 3 / p256 0.14); the
//! agent protocol is hand-written (see `agent.rs` for why).
#![forbid(unsafe_code)]

mod agent;
mod auth_info;
mod challenge;
mod key;
mod peer;
#[cfg(test)]
mod test_keys;
mod verify;

pub use agent::{AgentError, AgentSignature, Limits, Stage, request_signature};
pub use auth_info::{AuthInfoError, AuthMethod, LoginKey, parse_ssh_auth_info};
pub use challenge::{Challenge, ChallengeError, NAMESPACE_PREFIX};
pub use key::{
    AuthorizedKeys, AuthorizedKeysError, EnrolledSkKey, KeyError, SK_ECDSA_P256, SK_ED25519,
    SkKeyType, Skipped, parse_authorized_keys,
};
pub use peer::{PeerError, peer_uid};
pub use ssh_key::SshSig;
pub use verify::{FLAG_UP, FLAG_UV, Verified, VerifyError, verify};
