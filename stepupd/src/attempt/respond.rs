//! `Respond` and `Cancel`, and the attempts nobody finishes (deadline,
//! client gone): check answers, persist what must survive a crash, say what
//! the module shows next, and end each attempt exactly once.

use super::*;

/// What the next call of a session is for.
enum Turn {
    /// The step is known without checking an answer.
    Step(Step),
    /// Check this answer (the attempt's identity and methods on offer).
    Check(Box<Who>, Vec<Method>, Zeroizing<String>),
}

/// Whether the next step is a prompt for a code known from memory: after a
/// wrong answer, or after the reason when the first method is a code (a key
/// or agent step starts work that waits).
fn prompts_from_memory(session: &Session) -> bool {
    match session.stage {
        Stage::ShowedError => true,
        Stage::ShowedReason => !matches!(
            session.methods.first(),
            Some(Method::Fido2 | Method::SshAgentKey)
        ),
        _ => false,
    }
}

/// That prompt, moving the session to await the code. The answer that came
/// with the call is not used (the module sends an empty one after showing a
/// message).
fn next_prompt(session: &mut Session, id: &str) -> Step {
    let text = match session.stage {
        Stage::ShowedReason => super::begin::code_prompt(&session.methods, session.note),
        _ => prompt_for(&session.methods).to_owned(),
    };
    session.stage = Stage::AwaitingCode;
    Step {
        session: id.to_owned(),
        kind: StepKind::PromptSecret,
        text,
    }
}

fn no_such(e: crate::sessions::SessionError) -> DaemonError {
    DaemonError::NoSuchSession(e.to_string())
}

impl Engine {
    /// `process` is the calling process: a step-up it proves also answers
    /// its sudo's approval check (see `sudo_link`).
    pub fn respond(
        &self,
        owner: &str,
        process: Option<ProcessId>,
        id: &str,
        answer: Zeroizing<String>,
    ) -> Result<Step, DaemonError> {
        let subject = lock(&self.sessions)
            .peek(id, owner)
            .map(|s| s.who.subject.clone());
        let step = self.respond_to(owner, id, answer);
        self.after_step(process, subject.ok(), &step);
        if let Err(e) = &step
            && !matches!(e, DaemonError::NoSuchSession(_))
        {
            self.end_on_error(owner, id);
        }
        step
    }

    /// The next step of a session when it is a prompt for a code (after the
    /// reason, or after a wrong answer): known from memory, so `Respond`
    /// gives it without leaving the task that serves the bus. `None` when
    /// the call must go the blocking way ([`Engine::respond`]): an answer to
    /// check, a key or agent step, a session past its deadline or unknown.
    pub fn respond_without_blocking(&self, owner: &str, id: &str) -> Option<Step> {
        let mut sessions = lock(&self.sessions);
        let session = sessions.get_mut(id, owner).ok()?;
        if session.deadline <= Instant::now() || !prompts_from_memory(session) {
            return None;
        }
        Some(next_prompt(session, id))
    }

    /// A step-up proved by `process` answers its sudo's approval check.
    pub(super) fn after_step(
        &self,
        process: Option<ProcessId>,
        subject: Option<String>,
        step: &Result<Step, DaemonError>,
    ) {
        if let (Ok(step), Some(subject)) = (step, subject)
            && step.kind == StepKind::Allow
        {
            self.remember_step_up(process, &subject);
        }
    }

    fn respond_to(
        &self,
        owner: &str,
        id: &str,
        answer: Zeroizing<String>,
    ) -> Result<Step, DaemonError> {
        let config = self.config();
        match self.turn(&config, owner, id, answer)? {
            Turn::Step(step) => Ok(step),
            Turn::Check(who, methods, answer) => {
                let (outcome, message, method) =
                    self.check_answer(&config, &who, &methods, &answer)?;
                drop(answer);
                if outcome == "success" {
                    self.answered(owner, id, &who, method)
                } else {
                    self.wrong_answer(&config, owner, id, &who, (outcome, message, method))
                }
            }
        }
    }

    /// Where the session stands decides what this call does. No session lock
    /// is held while an answer is hashed.
    fn turn(
        &self,
        config: &Config,
        owner: &str,
        id: &str,
        answer: Zeroizing<String>,
    ) -> Result<Turn, DaemonError> {
        let mut sessions = lock(&self.sessions);
        let session = sessions.get_mut(id, owner).map_err(no_such)?;
        if session.deadline <= Instant::now() {
            let session = sessions.remove(id, owner).map_err(no_such)?;
            drop(sessions);
            // An expired session was ended when it expired (`ended`).
            if !session.ended {
                let recorded = self.abandon(&session, "timeout");
                self.end_session(&session, Outcome::TimedOut);
                recorded?;
            }
            return Ok(Turn::Step(Step::done(
                StepKind::Deny,
                "The step-up timed out.",
            )));
        }
        if prompts_from_memory(session) {
            return Ok(Turn::Step(next_prompt(session, id)));
        }
        let step = match session.stage {
            Stage::AwaitingCode => {
                let (who, methods) = (Box::new(session.who.clone()), session.methods.clone());
                return Ok(Turn::Check(who, methods, answer));
            }
            // A reason shown before a key or agent step (after an error,
            // `prompts_from_memory` always answers).
            Stage::ShowedReason | Stage::ShowedError => {
                session.stage = Stage::AwaitingCode;
                let (methods, note) = (session.methods.clone(), session.note);
                drop(sessions);
                self.first_prompt(config, owner, id, &methods, note)?
            }
            Stage::AwaitingPin => {
                drop(sessions);
                self.start_key_step(config, owner, id, Some(answer))?
            }
            Stage::AwaitingTouch => {
                let touch = session.touch.clone();
                drop(sessions);
                self.await_touch(config, owner, id, touch)?
            }
            Stage::AwaitingAgent => {
                // An answer here, not `AttachAgent`: the module has no agent.
                drop(sessions);
                self.no_agent(owner, id, "no forwarded ssh-agent in this session")?
            }
            Stage::AgentSigning => {
                let agent = session.agent.clone();
                drop(sessions);
                self.await_agent(config, owner, id, agent)?
            }
        };
        Ok(Turn::Step(step))
    }

    /// A right answer: the used code and the success row went to disk
    /// together, before `allow` leaves the daemon (`check_answer`).
    fn answered(
        &self,
        owner: &str,
        id: &str,
        who: &Who,
        method: Method,
    ) -> Result<Step, DaemonError> {
        let mut session = lock(&self.sessions).remove(id, owner).map_err(no_such)?;
        session.tried = Some(method);
        let let_in = self.let_in(who);
        who.event(
            "factor_succeeded",
            &[
                ("method", method.as_str()),
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

    /// A wrong (or replayed) answer: counted toward the lockout; the attempt
    /// goes on, or ends when its tries are used up or the person is locked.
    fn wrong_answer(
        &self,
        config: &Config,
        owner: &str,
        id: &str,
        who: &Who,
        (outcome, message, method): (&'static str, &'static str, Method),
    ) -> Result<Step, DaemonError> {
        let exhausted = {
            let mut sessions = lock(&self.sessions);
            let session = sessions.get_mut(id, owner).map_err(no_such)?;
            session.failures += 1;
            session.tried = Some(method);
            if session.failures >= session.max_tries {
                sessions.remove(id, owner).ok()
            } else {
                session.stage = Stage::ShowedError;
                None
            }
        };
        let lock_message = match self.count_wrong_answer(config, who, method, outcome) {
            Ok(lock_message) => lock_message,
            Err(e) => {
                // A session still in the table is ended by `respond`.
                if let Some(session) = &exhausted {
                    self.end_session(session, Outcome::Unavailable);
                }
                return Err(e);
            }
        };
        if let Some(lock_message) = lock_message {
            // The lock ends this attempt too.
            let session = exhausted.or_else(|| lock(&self.sessions).remove(id, owner).ok());
            if let Some(session) = &session {
                self.end_session(session, Outcome::Locked);
            }
            return Ok(Step::done(
                StepKind::Deny,
                format!("{message} {lock_message}"),
            ));
        }
        if let Some(session) = exhausted {
            let recorded = self.record(who, method.as_str(), "too_many_tries");
            who.event("factor_failed", &[("reason", "too_many_tries")]);
            self.end_session(&session, Outcome::MaxTries);
            recorded?;
            return Ok(Step::done(
                StepKind::MaxTries,
                format!("{message} Too many wrong codes."),
            ));
        }
        Ok(Step {
            session: id.to_owned(),
            kind: StepKind::Error,
            text: message.to_owned(),
        })
    }

    /// Record a wrong answer and count it toward the lockout: the lock
    /// message if it engaged.
    fn count_wrong_answer(
        &self,
        config: &Config,
        who: &Who,
        method: Method,
        outcome: &'static str,
    ) -> Result<Option<String>, DaemonError> {
        self.record(who, method.as_str(), outcome)?;
        who.event(
            "factor_failed",
            &[("method", method.as_str()), ("reason", outcome)],
        );
        self.count_failure(config, who)
    }

    /// Check one answer against the offered methods: (outcome, message, method).
    fn check_answer(
        &self,
        config: &Config,
        who: &Who,
        methods: &[Method],
        answer: &str,
    ) -> Result<(&'static str, &'static str, Method), DaemonError> {
        let subject = who.subject.as_str();
        let mut store = lock(&self.store);
        let totp_creds = if methods.contains(&Method::Totp) {
            store.totp_credentials(subject).map_err(failed)?
        } else {
            Vec::new()
        };
        let trimmed = answer.trim();
        let looks_like_totp = !trimmed.is_empty()
            && trimmed.bytes().all(|b| b.is_ascii_digit())
            && totp_creds
                .iter()
                .any(|c| effective_digits(config, c) as usize == trimmed.len());
        if looks_like_totp || !methods.contains(&Method::Recovery) {
            let success = who.history_entry("totp", "success");
            let (outcome, message) =
                check_code(&mut **store, config, &totp_creds, trimmed, &success).map_err(failed)?;
            return Ok((outcome, message, Method::Totp));
        }
        for (row, stored) in store.unused_recovery_codes(subject).map_err(failed)? {
            if recovery::verify(answer, &stored) {
                // Compare-and-set: a code two attempts race for is used once.
                let success = who.history_entry("recovery", "success");
                if store.accept_recovery_code(row, &success).map_err(failed)? {
                    who.event("recovery_code_used", &[]);
                    return Ok(("success", "", Method::Recovery));
                }
                return Ok((
                    "replay",
                    "That recovery code was already used.",
                    Method::Recovery,
                ));
            }
        }
        Ok(("wrong_code", "Wrong code.", Method::Recovery))
    }

    pub fn cancel(&self, owner: &str, id: &str) -> Result<(), DaemonError> {
        let session = lock(&self.sessions).remove(id, owner).map_err(no_such)?;
        if session.ended {
            return Ok(());
        }
        let recorded = self.abandon(&session, "cancelled");
        self.end_session(&session, Outcome::Cancelled);
        recorded
    }

    /// History and the event for an attempt nobody finished.
    fn abandon(&self, session: &Session, reason: &str) -> Result<(), DaemonError> {
        session.who.event("factor_failed", &[("reason", reason)]);
        self.record(&session.who, "totp", reason)
    }

    /// End sessions past their deadline (called periodically).
    pub fn expire(&self) {
        let expired = lock(&self.sessions).take_expired(Instant::now());
        for session in expired {
            let _ = self.abandon(&session, "timeout");
            self.end_session(&session, Outcome::TimedOut);
        }
    }

    /// End the sessions of a connection that left the bus.
    pub fn connection_closed(&self, owner: &str) {
        self.end_departed(self.take_sessions_of(owner));
    }

    /// The sessions (open, and expired ones kept for a late answer) of a
    /// connection that left, taken from the table. In memory only: the
    /// caller hands any open ones to [`Self::end_departed`].
    pub fn take_sessions_of(&self, owner: &str) -> Vec<Session> {
        lock(&self.sessions).take_owned_by(owner)
    }

    /// End, as cancelled, sessions whose connection left (writes history).
    pub fn end_departed(&self, gone: Vec<Session>) {
        for session in gone {
            let _ = self.abandon(&session, "cancelled");
            self.end_session(&session, Outcome::Cancelled);
        }
    }
}

/// Digits a credential's codes have, after `[totp] digits` if the admin pinned it.
fn effective_digits(config: &Config, cred: &TotpCredential) -> u32 {
    config.totp.digits.unwrap_or(cred.digits)
}

/// Try the code against each credential; returns (outcome, message for the user).
/// `[totp] digits / algorithm / period`, when set, override every credential.
fn check_code(
    store: &mut dyn Store,
    config: &Config,
    creds: &[TotpCredential],
    code: &str,
    success: &HistoryEntry,
) -> Result<(&'static str, &'static str), StoreError> {
    let now = unix_now();
    let mut replayed = false;
    for stored in creds {
        let (algorithm, digits, period) = totp::pinned(
            &config.totp,
            &stored.algorithm,
            stored.digits,
            stored.period,
        );
        let pinned = TotpCredential {
            id: stored.id.clone(),
            user: stored.user.clone(),
            label: String::new(),
            secret: stored.secret.clone(),
            algorithm,
            digits,
            period,
            last_step: stored.last_step,
            created: stored.created,
        };
        match totp::verify(&pinned, code, now, config.totp.window) {
            Ok(TotpVerdict::Accepted { step }) => {
                // Compare-and-set: of two racing attempts with one code, one wins.
                if store.accept_totp(&pinned.id, step, success)? {
                    return Ok(("success", ""));
                }
                replayed = true;
            }
            Ok(TotpVerdict::Replayed) => replayed = true,
            Ok(TotpVerdict::Wrong) | Err(_) => {}
        }
    }
    Ok(if replayed {
        (
            "replay",
            "That code was already used; wait for the next one.",
        )
    } else {
        ("wrong_code", "Wrong code.")
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use stepup_common::PROTOCOL_VERSION;

    use super::*;
    use crate::store::sqlite::SqliteStore;

    /// Every attempt steps up with TOTP, saying why first (`show_reason`);
    /// sessions last a second, so one can be seen past its deadline.
    const POLICY: &str = r#"
[daemon]
session_timeout = "1s"

[defaults]
action = "step_up"
methods = ["totp"]
"#;

    fn engine(dir: &Path) -> Engine {
        let private = std::os::unix::fs::PermissionsExt::from_mode(0o700);
        std::fs::set_permissions(dir, private).expect("chmod");
        let config = Config::from_str_named(Path::new("stepup.toml"), POLICY).expect("policy");
        let store = SqliteStore::open(dir).expect("store");
        let engine = Engine::new(config, Box::new(store), dir.to_owned());
        let secret = Zeroizing::new("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP".to_owned());
        engine.enroll_totp("alice", secret, "").expect("enroll");
        engine
    }

    /// A step-up begun by `:1.7` for alice: its session id (the reason shown).
    fn begin(engine: &Engine) -> String {
        let ctx = AttemptContext {
            service: "sudo".into(),
            user: "alice".into(),
            ..AttemptContext::default()
        };
        let caller = Caller {
            name: ":1.7",
            process: None,
            protocol: PROTOCOL_VERSION,
        };
        let step = engine
            .begin_prepared(caller, engine.prepare(ctx))
            .expect("begun");
        assert_eq!(step.kind, StepKind::Info, "the reason comes first");
        step.session
    }

    #[test]
    fn only_prompts_known_from_memory_are_given_without_blocking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = engine(dir.path());
        let id = begin(&engine);
        assert!(
            engine.respond_without_blocking(":1.8", &id).is_none(),
            "another connection's session"
        );
        assert!(engine.respond_without_blocking(":1.7", "nope").is_none());
        // After the reason: the code prompt, from memory.
        let prompt = engine
            .respond_without_blocking(":1.7", &id)
            .expect("prompt");
        assert_eq!(prompt.kind, StepKind::PromptSecret);
        assert_eq!(prompt.text, CODE_PROMPT);
        // Now an answer is due: that is checked the blocking way.
        assert!(engine.respond_without_blocking(":1.7", &id).is_none());
        let wrong = Zeroizing::new("000000".to_owned());
        let step = engine.respond(":1.7", None, &id, wrong).expect("checked");
        assert_eq!(step.kind, StepKind::Error, "a wrong code: {}", step.text);
        // After the error: the prompt again, from memory.
        let again = engine
            .respond_without_blocking(":1.7", &id)
            .expect("prompt");
        assert_eq!(
            (again.kind, again.text.as_str()),
            (StepKind::PromptSecret, CODE_PROMPT)
        );
    }

    #[test]
    fn a_session_past_its_deadline_goes_the_blocking_way_and_ends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = engine(dir.path());
        let id = begin(&engine);
        std::thread::sleep(Duration::from_millis(1100));
        assert!(engine.respond_without_blocking(":1.7", &id).is_none());
        let empty = Zeroizing::new(String::new());
        let step = engine.respond(":1.7", None, &id, empty).expect("answered");
        assert_eq!(step.kind, StepKind::Deny, "{}", step.text);
        assert!(
            engine.respond_without_blocking(":1.7", &id).is_none(),
            "ended"
        );
    }
}
