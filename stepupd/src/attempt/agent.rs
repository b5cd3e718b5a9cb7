//! The `ssh_agent_key` steps of an attempt: ask the module for the
//! person's ssh-agent, check it is theirs, collect the signature, verify it
//! (signature, namespace, application, presence, verification, counter),
//! and fall back to the next method when there is no agent, no touch or no
//! enrolled key in it.

use std::os::fd::OwnedFd;

use stepup_sshkey::{EnrolledSkKey, VerifyError};

use super::*;
use crate::factors::ssh_agent::{AgentWait, Signed};

/// What the person sees while their key is asked.
pub const AGENT_PROMPT: &str = "Touch your security key (on the computer you connected from)…";

impl Engine {
    /// Ask the module for the session's ssh-agent.
    pub(super) fn start_agent_step(&self, owner: &str, id: &str) -> Result<Step, DaemonError> {
        let mut sessions = lock(&self.sessions);
        let session = sessions
            .get_mut(id, owner)
            .map_err(|e| DaemonError::NoSuchSession(e.to_string()))?;
        session.stage = Stage::AwaitingAgent;
        session.tried = Some(Method::SshAgentKey);
        Ok(Step {
            session: id.to_owned(),
            kind: StepKind::Agent,
            text: AGENT_PROMPT.to_owned(),
        })
    }

    /// `AttachAgent`: the module handed over the agent it connected with
    /// the person's rights. Checked to be theirs before anything is sent.
    pub fn attach_agent(
        &self,
        owner: &str,
        process: Option<ProcessId>,
        id: &str,
        socket: OwnedFd,
    ) -> Result<Step, DaemonError> {
        let subject = lock(&self.sessions)
            .peek(id, owner)
            .map(|s| s.who.subject.clone());
        let step = self.attach(owner, id, socket);
        if let Err(e) = &step
            && !matches!(
                e,
                DaemonError::NoSuchSession(_) | DaemonError::InvalidArgument(_)
            )
        {
            self.end_on_error(owner, id);
        }
        self.after_step(process, subject.ok(), &step);
        step
    }

    fn attach(&self, owner: &str, id: &str, socket: OwnedFd) -> Result<Step, DaemonError> {
        let config = self.config();
        let (who, require_uv) = {
            let sessions = lock(&self.sessions);
            let session = sessions
                .peek(id, owner)
                .map_err(|e| DaemonError::NoSuchSession(e.to_string()))?;
            if session.stage != Stage::AwaitingAgent {
                return Err(DaemonError::InvalidArgument(
                    "no ssh-agent was asked for in this session".into(),
                ));
            }
            (session.who.clone(), session.require_uv)
        };
        let uid = nix::unistd::User::from_name(&who.subject)
            .map_err(|e| DaemonError::Failed(format!("NSS lookup of {}: {e}", who.subject)))?
            .map(|u| u.uid.as_raw());
        let Some(uid) = uid else {
            return self.no_agent(owner, id, "the person is unknown to NSS");
        };
        if lock(&self.sessions).agent_busy(&who.subject) {
            // Only one request for the person's touch at a time: an
            // attacker's attempt must not take the touch meant for theirs.
            return self.no_agent(
                owner,
                id,
                "another attempt is waiting for this person's key",
            );
        }
        let keys = lock(&self.store).ssh_keys(&who.subject).map_err(failed)?;
        let timeout = config.fido2.touch_timeout.0;
        match AgentWait::start(socket, (&who.subject, uid), keys, require_uv, timeout) {
            Err(refused) => self.no_agent(owner, id, &refused.to_string()),
            Ok(wait) => {
                {
                    let mut sessions = lock(&self.sessions);
                    let session = sessions
                        .get_mut(id, owner)
                        .map_err(|e| DaemonError::NoSuchSession(e.to_string()))?;
                    session.agent = Some(wait.clone());
                    session.stage = Stage::AgentSigning;
                }
                self.await_agent(&config, owner, id, Some(wait))
            }
        }
    }

    /// Wait a little for the agent; "still waiting" is an empty info step.
    pub(super) fn await_agent(
        &self,
        config: &Config,
        owner: &str,
        id: &str,
        wait: Option<Arc<AgentWait>>,
    ) -> Result<Step, DaemonError> {
        let Some(wait) = wait else {
            return Err(DaemonError::NoSuchSession(
                "no agent request in flight".into(),
            ));
        };
        let Some(outcome) = wait.wait(Duration::from_secs(2)) else {
            return Ok(Step {
                session: id.to_owned(),
                kind: StepKind::Info,
                text: String::new(),
            });
        };
        let who = lock(&self.sessions)
            .peek(id, owner)
            .map(|s| s.who.clone())
            .map_err(|e| DaemonError::NoSuchSession(e.to_string()))?;
        match outcome {
            Err(agent) => self.no_agent(owner, id, &agent.to_string()),
            Ok(signed) => self.check_agent_signature(config, owner, id, &who, &wait, signed),
        }
    }

    /// Verify what the agent signed, and store the new counter with the
    /// success (compare-and-set) before `allow` leaves.
    fn check_agent_signature(
        &self,
        config: &Config,
        owner: &str,
        id: &str,
        who: &Who,
        wait: &AgentWait,
        (signature, key, stored): Signed,
    ) -> Result<Step, DaemonError> {
        let enrolled = EnrolledSkKey::from_openssh_line(&key.public_key)
            .map_err(|e| DaemonError::Failed(format!("stored key {}: {e}", key.id)))?;
        let verified = stepup_sshkey::verify(
            &enrolled,
            &wait.challenge,
            &signature,
            wait.require_uv,
            stored,
        );
        let (result, message) = match verified {
            Ok(v) => {
                let success = who.history_entry("ssh_agent_key", "success");
                if lock(&self.store)
                    .accept_ssh_key(&key.id, v.counter, &success)
                    .map_err(failed)?
                {
                    return self.agent_answered(owner, id, who);
                }
                self.ssh_key_cloned(who, &key.id, stored, v.counter)?
            }
            Err(VerifyError::CounterRegression { stored, got }) => {
                self.ssh_key_cloned(who, &key.id, stored, got)?
            }
            Err(VerifyError::UserNotPresent) => {
                ("up_missing", "The security key was not touched.".to_owned())
            }
            Err(VerifyError::UserNotVerified) => (
                "uv_missing",
                "The security key did not verify you (PIN or biometrics).".to_owned(),
            ),
            Err(e) => (
                "bad_signature",
                format!("The agent's signature did not verify ({e})."),
            ),
        };
        self.agent_failed(config, owner, id, who, (result, message))
    }

    /// The agent's signature verified (counter and success stored).
    fn agent_answered(&self, owner: &str, id: &str, who: &Who) -> Result<Step, DaemonError> {
        let mut session = lock(&self.sessions)
            .remove(id, owner)
            .map_err(|e| DaemonError::NoSuchSession(e.to_string()))?;
        session.tried = Some(Method::SshAgentKey);
        let let_in = self.let_in(who);
        who.event(
            "factor_succeeded",
            &[
                ("method", Method::SshAgentKey.as_str()),
                ("rule", &session.rule),
                ("session", id),
            ],
        );
        let outcome = if let_in.is_ok() {
            Outcome::Allowed
        } else {
            Outcome::Unavailable
        };
        self.end_session(&session, outcome);
        let_in.map(|()| Step::done(StepKind::Allow, ""))
    }

    /// A counter that did not grow: a copy of the key's secret is in use.
    fn ssh_key_cloned(
        &self,
        who: &Who,
        id: &str,
        stored: u32,
        received: u32,
    ) -> Result<(&'static str, String), DaemonError> {
        lock(&self.store).mark_ssh_key_suspect(id).map_err(failed)?;
        who.event(
            "key_counter_regression",
            &[
                ("method", Method::SshAgentKey.as_str()),
                ("credential", id),
                ("stored", &stored.to_string()),
                ("received", &received.to_string()),
            ],
        );
        Ok((
            "counter_regression",
            format!(
                "This security key's signature counter went backwards (it may have been cloned); it is disabled until an administrator re-enrolls it (credential {id})."
            ),
        ))
    }

    /// A signature that did not do: a bad one counts toward the lockout, a
    /// clone ends the attempt, otherwise the next method is asked.
    fn agent_failed(
        &self,
        config: &Config,
        owner: &str,
        id: &str,
        who: &Who,
        (result, message): (&'static str, String),
    ) -> Result<Step, DaemonError> {
        self.record(who, Method::SshAgentKey.as_str(), result)?;
        who.event(
            "factor_failed",
            &[("method", Method::SshAgentKey.as_str()), ("reason", result)],
        );
        if result == "bad_signature"
            && let Some(lock_message) = self.count_failure(config, who)?
        {
            self.end_agent_attempt(owner, id, Outcome::Locked);
            return Ok(Step::done(
                StepKind::Deny,
                format!("{message} {lock_message}"),
            ));
        }
        if result == "counter_regression" {
            self.end_agent_attempt(owner, id, Outcome::Denied);
            return Ok(Step::done(StepKind::Deny, message));
        }
        self.next_method(owner, id, message)
    }

    /// No agent, not the person's, no enrolled key in it, no touch: not a
    /// wrong answer. Said in the audit trail, then the next method.
    pub(super) fn no_agent(&self, owner: &str, id: &str, why: &str) -> Result<Step, DaemonError> {
        let who = lock(&self.sessions)
            .peek(id, owner)
            .map(|s| s.who.clone())
            .map_err(|e| DaemonError::NoSuchSession(e.to_string()))?;
        who.event(
            "factor_failed",
            &[
                ("method", Method::SshAgentKey.as_str()),
                ("reason", "no_agent_key"),
                ("error", why),
            ],
        );
        self.next_method(
            owner,
            id,
            "Your security key could not be used through ssh.".to_owned(),
        )
    }

    /// Drop `ssh_agent_key` from the session's methods: the next one is
    /// asked (after `message`), or the attempt ends when none is left.
    fn next_method(&self, owner: &str, id: &str, message: String) -> Result<Step, DaemonError> {
        let mut sessions = lock(&self.sessions);
        let session = sessions
            .get_mut(id, owner)
            .map_err(|e| DaemonError::NoSuchSession(e.to_string()))?;
        session.methods.retain(|m| *m != Method::SshAgentKey);
        session.agent = None;
        if session.methods.is_empty() {
            drop(sessions);
            self.end_agent_attempt(owner, id, Outcome::Denied);
            return Ok(Step::done(StepKind::Deny, message));
        }
        session.stage = Stage::ShowedError;
        Ok(Step {
            session: id.to_owned(),
            kind: StepKind::Error,
            text: message,
        })
    }

    /// Take an agent attempt's session out and end it.
    fn end_agent_attempt(&self, owner: &str, id: &str, outcome: Outcome) {
        if let Ok(mut session) = lock(&self.sessions).remove(id, owner) {
            session.tried = Some(Method::SshAgentKey);
            self.end_session(&session, outcome);
        }
    }
}
