//! `Begin`: decide by policy, and for a step-up open a session and send its
//! first step. Every attempt gets an id here ([`Who::begin`]) that all its
//! events carry, and ends with one `attempt_ended`.

use super::ending::Ending;
use super::*;

impl Engine {
    /// `caller.process` is the calling process (for the sudo plugin: its
    /// PAM step-up answers the plugin's check; see `sudo_link`).
    pub fn begin(&self, caller: Caller<'_>, mut ctx: AttemptContext) -> Result<Step, DaemonError> {
        let process = caller.process;
        if let Some(command) = ctx.command.as_mut() {
            command.shell |= crate::shells::listed(&command.path);
        }
        let config = self.config();
        let origin = self.origin_of(&config, &ctx);
        let subject = subject_of(&config, &ctx).to_owned();
        let attempt = Attempt {
            context: &ctx,
            subject: &subject,
            origin: &origin,
            now: Timestamp::now(),
        };
        let mut who = Who::begin(&ctx, &subject, &origin.rhost);
        let (rule, grace) = match self.evaluate(&config, &attempt, &mut who) {
            Ok(decided) => decided,
            Err(e) => {
                self.end(&who, Outcome::Unavailable, &Ending::default());
                return Err(e);
            }
        };
        let grace_scope = match grace {
            _ if rule.action != Action::StepUp => None,
            Some(_) => Some(rule.grace_scope.as_str()),
            None if self.stepped_up_in_this_sudo(process, &attempt) => Some("same_sudo"),
            None => None,
        };
        let grace = grace_scope.is_some();
        audit_decision(&who, rule, grace);
        let ending = Ending {
            rule: &rule.name,
            verdict: rule.action.as_str(),
            grace,
            ..Ending::default()
        };
        let step = self.act(
            &config,
            caller,
            &attempt,
            &who,
            rule,
            (&ending, grace_scope),
        );
        if step.is_err() {
            // Nothing final was sent and no session is left open: the
            // attempt's story ends here.
            self.end(&who, Outcome::Unavailable, &ending);
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
        let prompt = prompt_for(methods);
        Ok(Step {
            session: id.to_owned(),
            kind: StepKind::PromptSecret,
            text: match note {
                Some(note) => format!("{note}\n{prompt}"),
                None => prompt.to_owned(),
            },
        })
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
