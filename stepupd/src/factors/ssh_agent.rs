//! The person's own security key through their ssh-agent (`ssh_agent_key`):
//! the module hands over the agent socket it connected with the person's
//! rights; we check who runs its listening end (`SO_PEERCRED`: the person,
//! or we send nothing), then ask the agent, on a thread of its own (the key
//! waits for a touch), to sign a fresh challenge in namespace
//! `stepup@<host>` with one of the person's enrolled keys. `Respond`
//! collects the result in short waits, as for FIDO2 keys.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use stepup_sshkey::{AgentError, Challenge, EnrolledSkKey, Limits, SshSig, peer_uid};

use crate::store::SshKeyCredential;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A signature from the agent, the enrolled key that made it and that
/// key's stored counter.
pub type Signed = (SshSig, SshKeyCredential, u32);

/// What the agent answered.
pub type AgentOutcome = Result<Signed, AgentError>;

/// Why an agent request was not even started. Nothing was sent.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("the socket is not an agent we may use: {0}")]
    NotASocket(String),
    #[error(
        "the socket's other end runs as uid {found}, not as {user} (uid {expected}): not their agent"
    )]
    NotTheirs {
        user: String,
        expected: u32,
        found: u32,
    },
    #[error("no usable enrolled key: {0}")]
    NoKey(String),
    #[error("cannot make a challenge: {0}")]
    Challenge(String),
}

/// An agent request running on its own thread, and its result once there.
pub struct AgentWait {
    result: Mutex<Option<AgentOutcome>>,
    done: Condvar,
    pub challenge: Challenge,
    pub require_uv: bool,
}

impl std::fmt::Debug for AgentWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentWait")
            .field("namespace", &self.challenge.namespace())
            .finish_non_exhaustive()
    }
}

/// The namespace signatures are made for: this host, so a signature made
/// here is useless anywhere else.
pub fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

impl AgentWait {
    /// Check the socket belongs to `user` (uid `uid`), then start asking.
    pub fn start(
        socket: OwnedFd,
        (user, uid): (&str, u32),
        keys: Vec<(SshKeyCredential, u32)>,
        require_uv: bool,
        sign_timeout: Duration,
    ) -> Result<Arc<Self>, Refused> {
        let found = peer_uid(&socket).map_err(|e| Refused::NotASocket(e.to_string()))?;
        if found != uid {
            return Err(Refused::NotTheirs {
                user: user.to_owned(),
                expected: uid,
                found,
            });
        }
        let enrolled = keys
            .iter()
            .map(|(k, _)| EnrolledSkKey::from_openssh_line(&k.public_key))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Refused::NoKey(e.to_string()))?;
        let challenge =
            Challenge::new(&host_name()).map_err(|e| Refused::Challenge(e.to_string()))?;
        let wait = Arc::new(Self {
            result: Mutex::new(None),
            done: Condvar::new(),
            challenge,
            require_uv,
        });
        let shared = wait.clone();
        let limits = Limits {
            sign_timeout,
            ..Limits::default()
        };
        let mut stream = UnixStream::from(socket);
        std::thread::spawn(move || {
            let outcome = stepup_sshkey::request_signature(
                &mut stream,
                &enrolled,
                &shared.challenge,
                &limits,
            )
            .and_then(|signed| match keys.get(signed.key_index) {
                Some((key, counter)) => Ok((signed.signature, key.clone(), *counter)),
                None => Err(AgentError::Malformed {
                    stage: stepup_sshkey::Stage::Signing,
                    detail: "the signing key is not one we asked for".into(),
                }),
            });
            drop(stream);
            *lock(&shared.result) = Some(outcome);
            shared.done.notify_all();
        });
        Ok(wait)
    }

    /// The result, if it arrives within `limit`.
    pub fn wait(&self, limit: Duration) -> Option<AgentOutcome> {
        let guard = lock(&self.result);
        let (mut guard, _) = self
            .done
            .wait_timeout_while(guard, limit, |r| r.is_none())
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.take()
    }
}
