//! `Begin`: decide by policy, and for a step-up open a session and send its
//! first step. Every attempt gets an id here ([`Who::begin`]) that all its
//! events carry, and ends with one `attempt_ended`.
//!
//! A decision that needs nothing but the context and the policy is made on
//! the task that serves the bus ([`Engine::begin_without_blocking`]); any
//! other on the blocking pool ([`Engine::begin_prepared`]).

use super::ending::Ending;
use super::*;

/// An attempt read, its subject and origin known (utmp read), not yet
/// decided. Made once: a decision tried on the bus task and handed to the
/// blocking pool does not read utmp (or report it unusable) twice.
pub struct Prepared {
    ctx: AttemptContext,
    config: Arc<Config>,
    origin: Origin,
    subject: String,
    now: Timestamp,
}

impl Prepared {
    fn attempt(&self) -> Attempt<'_> {
        Attempt {
            context: &self.ctx,
            subject: &self.subject,
            origin: &self.origin,
            now: self.now,
        }
    }
}

impl Engine {
    /// `caller.process` is the calling process (for the sudo plugin: its
    /// PAM step-up answers the plugin's check; see `sudo_link`).
    pub fn begin(&self, caller: Caller<'_>, ctx: AttemptContext) -> Result<Step, DaemonError> {
        self.begin_prepared(caller, self.prepare(ctx))
    }

    /// Read what the attempt needs besides the policy: the tty's utmp
    /// session, whether the command is a shell. Local files only.
    pub fn prepare(&self, mut ctx: AttemptContext) -> Box<Prepared> {
        if let Some(command) = ctx.command.as_mut() {
            command.shell |= crate::shells::listed(&command.path);
        }
        let config = self.config();
        let origin = self.origin_of(&config, &ctx);
        let subject = subject_of(&config, &ctx).to_owned();
        Box::new(Prepared {
            ctx,
            config,
            origin,
            subject,
            now: Timestamp::now(),
        })
    }

    /// [`Self::begin`] for a prepared attempt; may wait on the store and NSS.
    pub fn begin_prepared(
        &self,
        caller: Caller<'_>,
        prepared: Box<Prepared>,
    ) -> Result<Step, DaemonError> {
        let (who, decided) = self.decide(&prepared, &mut self.lookups());
        self.act_on(caller, &prepared, &who, decided)
    }

    /// `Begin` without waiting on anything: for the task that serves the
    /// bus, so an allow or deny decided from the context alone (the common
    /// local `sudo`) costs no trip to the blocking pool. Hands the attempt
    /// back, before anything about it is recorded, when the decision needs
    /// the store or NSS, when the verdict steps up or is report-only, or
    /// when letting in would write (a source address, a login key): then
    /// [`Self::begin_prepared`] decides on the blocking pool.
    pub fn begin_without_blocking(
        &self,
        caller: Caller<'_>,
        prepared: Box<Prepared>,
    ) -> Result<Result<Step, DaemonError>, Box<Prepared>> {
        let mut lookups = self.lookups().without_blocking();
        let (who, decided) = self.decide(&prepared, &mut lookups);
        let from_memory = !lookups.would_have_blocked()
            && decided
                .as_ref()
                .is_ok_and(|(rule, _)| answers_from_memory(rule, &who));
        if !from_memory {
            return Err(prepared);
        }
        Ok(self.act_on(caller, &prepared, &who, decided))
    }

    /// The policy's verdict on a prepared attempt, with the attempt's
    /// identity for its events. Records nothing.
    fn decide<'p>(
        &self,
        prepared: &'p Prepared,
        lookups: &mut StoreLookups<'_>,
    ) -> (Who, Result<(&'p Rule, Option<u64>), DaemonError>) {
        let mut who = Who::begin(&prepared.ctx, &prepared.subject, &prepared.origin.rhost);
        let decided = self.evaluate(&prepared.config, &prepared.attempt(), &mut who, lookups);
        (who, decided)
    }

    /// Carry out a verdict; a decision that failed ends the attempt as
    /// unavailable.
    fn act_on(
        &self,
        caller: Caller<'_>,
        prepared: &Prepared,
        who: &Who,
        decided: Result<(&Rule, Option<u64>), DaemonError>,
    ) -> Result<Step, DaemonError> {
        match decided {
            Ok(verdict) => {
                self.carry_out(&prepared.config, caller, &prepared.attempt(), who, verdict)
            }
            Err(e) => {
                self.end(who, Outcome::Unavailable, &Ending::default());
                Err(e)
            }
        }
    }

    /// Audit the decision and act on it (see [`Self::act`]); an error ends
    /// the attempt as unavailable.
    fn carry_out(
        &self,
        config: &Config,
        caller: Caller<'_>,
        attempt: &Attempt<'_>,
        who: &Who,
        (rule, grace): (&Rule, Option<u64>),
    ) -> Result<Step, DaemonError> {
        let grace_scope = match grace {
            _ if rule.action != Action::StepUp => None,
            Some(_) => Some(rule.grace_scope.as_str()),
            None if self.stepped_up_in_this_sudo(caller.process, attempt) => Some("same_sudo"),
            None => None,
        };
        let grace = grace_scope.is_some();
        audit_decision(who, rule, grace);
        let ending = Ending {
            rule: &rule.name,
            verdict: rule.action.as_str(),
            grace,
            ..Ending::default()
        };
        let step = self.act(config, caller, attempt, who, rule, (&ending, grace_scope));
        if step.is_err() {
            // Nothing final was sent and no session is left open: the
            // attempt's story ends here.
            self.end(who, Outcome::Unavailable, &ending);
        }
        step
    }

    /// Carry out the deciding rule. On error nothing has ended the attempt
    /// and no session is left open (the caller ends it).
    fn act(
        &self,
        config: &Config,
        caller: Caller<'_>,
        attempt: &Attempt<'_>,
        who: &Who,
        rule: &Rule,
        (ending, grace_scope): (&Ending<'_>, Option<&str>),
    ) -> Result<Step, DaemonError> {
        if rule.report_only {
            return self.report_only(config, rule, (attempt, caller), who, ending);
        }
        match rule.action {
            Action::Deny => {
                self.end(who, Outcome::Denied, ending);
                Ok(Step::done(StepKind::Deny, rule.message.clone()))
            }
            Action::StepUp if !ending.grace => {
                self.challenge(config, caller, rule, attempt, who.clone(), ending)
            }
            Action::Allow | Action::StepUp => {
                if let Some(scope) = grace_scope {
                    who.event("grace_used", &[("rule", &rule.name), ("scope", scope)]);
                }
                self.let_in(who)?;
                self.end(who, Outcome::Allowed, ending);
                Ok(Step::done(StepKind::Allow, ""))
            }
        }
    }

    /// A verdict only reported: allowed, and for a step-up the report says
    /// whether the person could have answered (a usable factor enrolled).
    fn report_only(
        &self,
        config: &Config,
        rule: &Rule,
        (attempt, caller): (&Attempt<'_>, Caller<'_>),
        who: &Who,
        ending: &Ending<'_>,
    ) -> Result<Step, DaemonError> {
        // Report-only locks nobody out: with the shared store unreachable
        // the report says nothing about enrollment, and the attempt passes.
        let enrolled = if rule.action == Action::StepUp && !ending.grace {
            let place = (attempt.origin.remote, caller.protocol >= 2);
            match self.offered_methods(config, rule, attempt.subject, place) {
                Ok((methods, _)) => Some(!methods.is_empty()),
                Err(DaemonError::Unavailable(_)) => None,
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        self.let_in(who)?;
        self.end(
            who,
            Outcome::ReportOnly,
            &Ending {
                enrolled,
                ..ending.clone()
            },
        );
        Ok(Step::done(StepKind::Allow, ""))
    }

    /// A step-up: refuse a locked or unenrolled person, else open a session
    /// and send its first step (the reason, or the first method's prompt).
    fn challenge(
        &self,
        config: &Config,
        caller: Caller<'_>,
        rule: &Rule,
        attempt: &Attempt<'_>,
        who: Who,
        ending: &Ending<'_>,
    ) -> Result<Step, DaemonError> {
        let (subject, owner) = (attempt.subject, caller.name);
        if let Some(message) = self.locked_message(subject, unix_now())? {
            self.record(&who, "totp", "locked")?;
            who.event("factor_failed", &[("reason", "locked")]);
            self.end(&who, Outcome::Locked, ending);
            return Ok(Step::done(StepKind::Deny, message));
        }
        let place = (attempt.origin.remote, caller.protocol >= 2);
        let (methods, note) = self.offered_methods(config, rule, subject, place)?;
        if methods.is_empty() {
            self.record(&who, "totp", "not_enrolled")?;
            who.event("factor_failed", &[("reason", "not_enrolled")]);
            self.end(&who, Outcome::NotEnrolled, ending);
            return Ok(Step::done(
                StepKind::Deny,
                format!(
                    "A second factor is required, but none is enrolled for {subject}. Ask an administrator to run: stepupctl enroll totp {subject}"
                ),
            ));
        }
        let mut lookups = self.lookups();
        let reason =
            policy::reason(config, rule, attempt, &mut lookups).map_err(|e| lookups.error(e))?;
        let id = self.open_session(config, owner, rule, who, &methods, note, reason.is_some())?;
        match reason {
            Some(reason) => Ok(Step {
                session: id,
                kind: StepKind::Info,
                text: reason,
            }),
            None => self
                .first_prompt(config, owner, &id, &methods, note)
                .inspect_err(|_| {
                    // The caller ends the attempt; the session must not linger.
                    let _ = lock(&self.sessions).remove(&id, owner);
                }),
        }
    }

    /// Put the attempt in the session table and say so (`challenge`).
    #[allow(clippy::too_many_arguments)] // the session's parts, named at the one call site
    fn open_session(
        &self,
        config: &Config,
        owner: &str,
        rule: &Rule,
        who: Who,
        methods: &[Method],
        note: Option<&'static str>,
        reason_first: bool,
    ) -> Result<String, DaemonError> {
        let challenge = who.clone();
        let session = Session {
            owner: owner.to_owned(),
            deadline: Instant::now() + config.daemon.session_timeout.0,
            who,
            rule: rule.name.clone(),
            methods: methods.to_vec(),
            max_tries: rule.max_tries,
            stage: if reason_first {
                Stage::ShowedReason
            } else {
                Stage::AwaitingCode
            },
            failures: 0,
            touch: None,
            agent: None,
            require_uv: rule.require_uv,
            note,
            tried: None,
            ended: false,
        };
        let opened = lock(&self.sessions).insert_capped(
            session,
            config.daemon.max_sessions,
            config.daemon.max_sessions_per_caller,
        );
        let id = match opened {
            Ok(id) => id,
            Err(e) => {
                // Refused before it began: the attempt ends here.
                challenge.event("factor_failed", &[("reason", "session_table_full")]);
                return Err(DaemonError::Failed(e.to_string()));
            }
        };
        challenge.event(
            "challenge",
            &[
                ("rule", &rule.name),
                ("method", methods[0].as_str()),
                ("session", &id),
            ],
        );
        Ok(id)
    }

    /// The first method's step: a security key's PIN or touch request, or
    /// the code prompt (after a note when a key was passed over).
    pub(super) fn first_prompt(
        &self,
        config: &Config,
        owner: &str,
        id: &str,
        methods: &[Method],
        note: Option<&'static str>,
    ) -> Result<Step, DaemonError> {
        match methods.first() {
            Some(Method::Fido2) => return self.start_key_step(config, owner, id, None),
            Some(Method::SshAgentKey) => return self.start_agent_step(owner, id),
            _ => {}
        }
        Ok(Step {
            session: id.to_owned(),
            kind: StepKind::PromptSecret,
            text: code_prompt(methods, note),
        })
    }
}

/// The prompt for a code, after the attempt's note if it has one.
pub(super) fn code_prompt(methods: &[Method], note: Option<&'static str>) -> String {
    let prompt = prompt_for(methods);
    match note {
        Some(note) => format!("{note}\n{prompt}"),
        None => prompt.to_owned(),
    }
}

/// The `decision` event: what the policy said about this attempt.
fn audit_decision(who: &Who, rule: &Rule, grace: bool) {
    let bool_text = |b: bool| if b { "true" } else { "false" };
    who.event(
        "decision",
        &[
            ("rule", &rule.name),
            ("verdict", rule.action.as_str()),
            ("grace", bool_text(grace)),
            ("report_only", bool_text(rule.report_only)),
        ],
    );
}

/// A verdict carried out without the store: a plain allow or deny that
/// writes nothing (no source address to remember, no login key to mark).
/// A step-up (enrollment, lockout, a session) and report-only (enrollment)
/// need the store.
fn answers_from_memory(rule: &Rule, who: &Who) -> bool {
    !rule.report_only
        && match rule.action {
            Action::Deny => true,
            Action::Allow => !let_in_writes(who),
            Action::StepUp => false,
        }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use stepup_common::PROTOCOL_VERSION;

    use super::*;
    use crate::store::sqlite::SqliteStore;

    /// Rules in order: what each needs decides where it may be decided.
    const POLICY: &str = r#"
[defaults]
action = "step_up"
methods = ["totp"]

[[rule]]
name = "no-mallory"
user = ["mallory"]
action = "deny"

[[rule]]
name = "fast-local"
user = ["fast"]
remote = false
action = "allow"

[[rule]]
name = "fast-remote"
user = ["fast"]
action = "allow"

[[rule]]
name = "cool-down"
user = ["slow"]
recent_failures = { at_least = 5, within = "15m" }
action = "deny"

[[rule]]
name = "slow"
user = ["slow"]
action = "allow"

[[rule]]
name = "by-group"
group = ["nobody-has-this-group"]
action = "allow"
"#;

    fn engine(dir: &Path) -> Engine {
        let config = Config::from_str_named(Path::new("stepup.toml"), POLICY).expect("policy");
        let store = SqliteStore::open(dir).expect("store");
        Engine::new(config, Box::new(store), dir.to_owned())
    }

    fn attempt(user: &str, rhost: &str) -> AttemptContext {
        AttemptContext {
            service: "sudo".into(),
            user: user.into(),
            rhost: rhost.into(),
            ..AttemptContext::default()
        }
    }

    fn caller() -> Caller<'static> {
        Caller {
            name: ":1.7",
            process: None,
            protocol: PROTOCOL_VERSION,
        }
    }

    #[test]
    fn only_verdicts_from_the_context_alone_are_given_without_blocking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let private = std::os::unix::fs::PermissionsExt::from_mode(0o700);
        std::fs::set_permissions(dir.path(), private).expect("chmod");
        let engine = engine(dir.path());
        let fast = |user: &str, rhost: &str| {
            engine.begin_without_blocking(caller(), engine.prepare(attempt(user, rhost)))
        };
        // Decided from the context: a local allow, a deny.
        let step = fast("fast", "").ok().expect("decided").expect("allowed");
        assert_eq!(step.kind, StepKind::Allow);
        let step = fast("mallory", "").ok().expect("decided").expect("denied");
        assert_eq!(step.kind, StepKind::Deny);
        // Handed back: an allow that remembers its source address, a rule
        // that reads the history, one that asks NSS for groups, a step-up.
        for (user, rhost) in [
            ("fast", "192.0.2.7"),
            ("slow", ""),
            ("alice", ""),
            ("bob", ""),
        ] {
            assert!(
                fast(user, rhost).is_err(),
                "{user} {rhost:?} needs the blocking pool"
            );
        }
        // A handed-back attempt recorded nothing: no source, no session.
        let store = || engine.store();
        assert_eq!(
            store()
                .source_last_seen("fast", "192.0.2.7")
                .expect("store"),
            None
        );
        assert_eq!(engine.session_count(), 0);
        // Where blocking is allowed the same attempts are decided in full.
        let prepared = match fast("fast", "192.0.2.7") {
            Err(prepared) => prepared,
            Ok(_) => panic!("decided without blocking"),
        };
        let step = engine.begin_prepared(caller(), prepared).expect("allowed");
        assert_eq!(step.kind, StepKind::Allow);
        assert!(
            store()
                .source_last_seen("fast", "192.0.2.7")
                .expect("store")
                .is_some()
        );
        let step = engine
            .begin(caller(), attempt("slow", ""))
            .expect("allowed");
        assert_eq!(step.kind, StepKind::Allow);
    }
}
