//! The attempt state machine: `begin` decides by policy and opens a session
//! when a factor is needed; `respond` checks answers, persists what must
//! survive a crash, and says what the module shows next.
//!
//! Synchronous and free of D-Bus so it can be tested directly; `service`
//! wraps it after checking who is calling.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jiff::Timestamp;
use serde::Serialize;
use stepup_common::{DaemonError, StepKind};
use stepup_config::{Action, Config, Method, Rule, Scope, SubjectItem};
use zeroize::Zeroizing;

use crate::audit;
use crate::context::AttemptContext;
use crate::factors::fido2::touch::{TouchWait, authenticator_for};
use crate::factors::recovery;
use crate::factors::totp::{self, Verdict as TotpVerdict};
use crate::policy::{self, Attempt, Lookups, Origin, RuleTrace};
use crate::sessions::{Session, SessionTable, Stage};
use crate::store::{HistoryColumn, HistoryEntry, LockoutRow, Store, StoreError, TotpCredential};
use crate::utmp;
pub use crate::who::Who;

mod admin;
mod explain;
mod keys;
mod lockout;
mod lookups;

pub use explain::{EnrolledFactor, Explanation};
use lookups::{StoreLookups, grace_earned};

/// One step for the module: an empty session id goes with a final kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub session: String,
    pub kind: StepKind,
    pub text: String,
}

impl Step {
    fn done(kind: StepKind, text: impl Into<String>) -> Self {
        Self {
            session: String::new(),
            kind,
            text: text.into(),
        }
    }
}

pub const CODE_PROMPT: &str = "Verification code: ";
pub const CODE_OR_RECOVERY_PROMPT: &str = "Verification code (or a recovery code): ";
pub const RECOVERY_PROMPT: &str = "Recovery code: ";

/// The prompt for the methods on offer.
fn prompt_for(methods: &[Method]) -> &'static str {
    match (
        methods.contains(&Method::Totp),
        methods.contains(&Method::Recovery),
    ) {
        (true, true) => CODE_OR_RECOVERY_PROMPT,
        (false, true) => RECOVERY_PROMPT,
        _ => CODE_PROMPT,
    }
}

pub struct Engine {
    config: RwLock<(Arc<Config>, Timestamp)>,
    store: Mutex<Store>,
    sessions: Mutex<SessionTable>,
    pub config_dir: PathBuf,
    pub started: Instant,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn failed(e: StoreError) -> DaemonError {
    audit::event("store_error", &[("error", &e.to_string())]);
    DaemonError::Failed(format!("state store: {e}"))
}

// A poisoned lock means a panic mid-update; carrying on with the data is
// safer than refusing every later attempt (the store itself is transactional).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Engine {
    pub fn new(config: Config, store: Store, config_dir: PathBuf) -> Self {
        Self {
            config: RwLock::new((Arc::new(config), Timestamp::now())),
            store: Mutex::new(store),
            sessions: Mutex::new(SessionTable::default()),
            config_dir,
            started: Instant::now(),
        }
    }

    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
            .clone()
    }

    /// When the policy in force was loaded.
    pub fn config_loaded_at(&self) -> Timestamp {
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .1
    }

    /// Re-read the config directory. Only a fully valid configuration
    /// replaces the one in force; otherwise it stays and the reason is logged.
    pub fn reload(&self) -> Result<Arc<Config>, stepup_config::ConfigError> {
        match Config::load_dir(&self.config_dir) {
            Ok(config) => {
                let rules = config.rules.len().to_string();
                let hash = config.hash.clone();
                self.replace_config(config);
                audit::event("config_loaded", &[("rules", &rules), ("hash", &hash)]);
                Ok(self.config())
            }
            Err(e) => {
                audit::event(
                    "config_rejected",
                    &[("error", &e.to_string()), ("kept", &self.config().hash)],
                );
                Err(e)
            }
        }
    }

    /// Swap in a new, fully validated configuration.
    pub fn replace_config(&self, config: Config) {
        *self
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            (Arc::new(config), Timestamp::now());
    }

    fn record(&self, who: &Who, method: &str, outcome: &str) -> Result<(), DaemonError> {
        lock(&self.store)
            .record(&who.history_entry(method, outcome))
            .map_err(failed)
    }

    /// Remember that `who` was let in from their source (for `new_rhost`).
    fn let_in(&self, who: &Who) -> Result<(), DaemonError> {
        if who.rhost.is_empty() {
            return Ok(());
        }
        lock(&self.store)
            .mark_source_seen(&who.subject, &who.rhost, unix_now())
            .map_err(failed)
    }

    /// Where the attempt came from: PAM_RHOST, else the tty's login session in utmp.
    fn origin_of(&self, config: &Config, ctx: &AttemptContext) -> Origin {
        let session = if ctx.tty.is_empty() || ctx.tty == "ssh" {
            Ok(None)
        } else {
            utmp::session_for_tty(&config.daemon.utmp, &ctx.tty)
        };
        let session = session.unwrap_or_else(|e| {
            audit::event("utmp_unusable", &[("error", &e.to_string())]);
            None
        });
        let (rhost, rhost_source) = if !ctx.rhost.is_empty() {
            (ctx.rhost.clone(), "PAM_RHOST".to_owned())
        } else {
            match &session {
                Some(s) if utmp::is_remote_host(&s.host) => (
                    s.host.clone(),
                    format!("utmp: {} logged in on {} from {}", s.user, ctx.tty, s.host),
                ),
                _ => (
                    String::new(),
                    "none: no PAM_RHOST and no remote login on this tty".to_owned(),
                ),
            }
        };
        Origin {
            remote: !rhost.is_empty() || ctx.tty == "ssh",
            rhost,
            rhost_source,
            session_started: session.as_ref().map(|s| s.started),
            session_source: match &session {
                Some(s) => format!("utmp: {} on {}", s.user, ctx.tty),
                None => "unknown".to_owned(),
            },
        }
    }

    /// The rule's methods, in its order, that `subject` has enrolled.
    /// The rule's methods, in its order, that `subject` can use here: a
    /// security key only in a local session with a key connected. Also a
    /// note for the person when a key was passed over.
    fn offered_methods(
        &self,
        config: &Config,
        rule: &Rule,
        subject: &str,
        remote: bool,
    ) -> Result<(Vec<Method>, Option<&'static str>), DaemonError> {
        let store = lock(&self.store);
        let mut offered = Vec::new();
        let mut note = None;
        for method in &rule.methods {
            let usable = match method {
                Method::Totp => !store.totp_credentials(subject).map_err(failed)?.is_empty(),
                Method::Recovery => !store
                    .unused_recovery_codes(subject)
                    .map_err(failed)?
                    .is_empty(),
                Method::Fido2 => {
                    let enrolled = !store.fido2_credentials(subject).map_err(failed)?.is_empty();
                    if !enrolled || remote {
                        false
                    } else if authenticator_for(config).is_some_and(|a| a.present()) {
                        true
                    } else {
                        note = Some("No security key found; using another method.");
                        false
                    }
                }
            };
            if usable {
                offered.push(*method);
            }
        }
        Ok((offered, note))
    }

    /// Evaluate the policy for an attempt: (rule, when grace was earned if it applies).
    fn evaluate<'c>(
        &self,
        config: &'c Config,
        attempt: &Attempt<'_>,
    ) -> Result<(&'c Rule, Option<u64>), DaemonError> {
        let mut lookups = StoreLookups::new(&self.store);
        let rule = policy::decide(config, attempt, &mut lookups).map_err(DaemonError::Failed)?;
        let grace = grace_earned(rule, attempt, &mut lookups).map_err(DaemonError::Failed)?;
        Ok((rule, grace))
    }

    pub fn begin(&self, owner: &str, ctx: AttemptContext) -> Result<Step, DaemonError> {
        let config = self.config();
        let origin = self.origin_of(&config, &ctx);
        let subject = subject_of(&config, &ctx).to_owned();
        let attempt = Attempt {
            context: &ctx,
            subject: &subject,
            origin: &origin,
            now: Timestamp::now(),
        };
        let (rule, grace) = self.evaluate(&config, &attempt)?;
        let who = Who {
            subject: subject.clone(),
            service: ctx.service.clone(),
            tty: ctx.tty.clone(),
            rhost: origin.rhost.clone(),
        };
        audit_decision(&attempt, rule, grace.is_some());
        if rule.report_only {
            self.let_in(&who)?;
            return Ok(Step::done(StepKind::Allow, ""));
        }
        match rule.action {
            Action::Allow => {
                self.let_in(&who)?;
                Ok(Step::done(StepKind::Allow, ""))
            }
            Action::Deny => Ok(Step::done(StepKind::Deny, rule.message.clone())),
            Action::StepUp if grace.is_some() => {
                audit::event(
                    "grace_used",
                    &[
                        ("subject", &subject),
                        ("rule", &rule.name),
                        ("scope", rule.grace_scope.as_str()),
                    ],
                );
                self.let_in(&who)?;
                Ok(Step::done(StepKind::Allow, ""))
            }
            Action::StepUp => self.challenge(&config, owner, rule, &attempt, who),
        }
    }

    /// A step-up: refuse a locked or unenrolled person, else open a session
    /// and send its first step (the reason, or the first method's prompt).
    fn challenge(
        &self,
        config: &Config,
        owner: &str,
        rule: &Rule,
        attempt: &Attempt<'_>,
        who: Who,
    ) -> Result<Step, DaemonError> {
        let subject = attempt.subject;
        if let Some(message) = self.locked_message(subject, unix_now())? {
            self.record(&who, "totp", "locked")?;
            audit::event(
                "factor_failed",
                &[("subject", subject), ("reason", "locked")],
            );
            return Ok(Step::done(StepKind::Deny, message));
        }
        let (methods, note) = self.offered_methods(config, rule, subject, attempt.origin.remote)?;
        if methods.is_empty() {
            self.record(&who, "totp", "not_enrolled")?;
            audit::event(
                "factor_failed",
                &[("subject", subject), ("reason", "not_enrolled")],
            );
            return Ok(Step::done(
                StepKind::Deny,
                format!(
                    "A second factor is required, but none is enrolled for {subject}. Ask an administrator to run: stepupctl enroll totp {subject}"
                ),
            ));
        }
        let reason = policy::reason(config, rule, attempt, &mut StoreLookups::new(&self.store))
            .map_err(DaemonError::Failed)?;
        let session = Session {
            owner: owner.to_owned(),
            deadline: Instant::now() + config.daemon.session_timeout.0,
            who,
            rule: rule.name.clone(),
            methods: methods.clone(),
            max_tries: rule.max_tries,
            stage: if reason.is_some() {
                Stage::ShowedReason
            } else {
                Stage::AwaitingCode
            },
            failures: 0,
            touch: None,
            require_uv: rule.require_uv,
            note,
        };
        let id = lock(&self.sessions)
            .insert_capped(
                session,
                config.daemon.max_sessions,
                config.daemon.max_sessions_per_caller,
            )
            .map_err(|e| DaemonError::Failed(e.to_string()))?;
        audit::event(
            "challenge",
            &[
                ("subject", subject),
                ("method", methods[0].as_str()),
                ("session", &id),
            ],
        );
        match reason {
            Some(reason) => Ok(Step {
                session: id,
                kind: StepKind::Info,
                text: reason,
            }),
            None => self.first_prompt(config, owner, &id, &methods, note),
        }
    }

    /// The first method's step: a security key's PIN or touch request, or
    /// the code prompt (after a note when a key was passed over).
    fn first_prompt(
        &self,
        config: &Config,
        owner: &str,
        id: &str,
        methods: &[Method],
        note: Option<&'static str>,
    ) -> Result<Step, DaemonError> {
        if methods.first() == Some(&Method::Fido2) {
            return self.start_key_step(config, owner, id, None);
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

    pub fn respond(
        &self,
        owner: &str,
        id: &str,
        answer: Zeroizing<String>,
    ) -> Result<Step, DaemonError> {
        let config = self.config();
        // Copy what the check needs, so no session lock is held while hashing.
        let (who, methods) = {
            let mut sessions = lock(&self.sessions);
            let session = sessions
                .get_mut(id, owner)
                .map_err(|e| DaemonError::NoSuchSession(e.to_string()))?;
            if session.deadline <= Instant::now() {
                let session = sessions
                    .remove(id, owner)
                    .map_err(|e| DaemonError::NoSuchSession(e.to_string()))?;
                drop(sessions);
                self.abandon(&session, "timeout")?;
                return Ok(Step::done(StepKind::Deny, "The step-up timed out."));
            }
            match session.stage {
                Stage::ShowedReason => {
                    session.stage = Stage::AwaitingCode;
                    let (methods, note) = (session.methods.clone(), session.note);
                    drop(sessions);
                    return self.first_prompt(&config, owner, id, &methods, note);
                }
                Stage::ShowedError => {
                    session.stage = Stage::AwaitingCode;
                    return Ok(Step {
                        session: id.to_owned(),
                        kind: StepKind::PromptSecret,
                        text: prompt_for(&session.methods).to_owned(),
                    });
                }
                Stage::AwaitingPin => {
                    drop(sessions);
                    return self.start_key_step(&config, owner, id, Some(answer));
                }
                Stage::AwaitingTouch => {
                    let touch = session.touch.clone();
                    drop(sessions);
                    return self.await_touch(&config, owner, id, touch);
                }
                Stage::AwaitingCode => {}
            }
            (session.who.clone(), session.methods.clone())
        };
        let subject = who.subject.clone();
        let (outcome, message, method) = self.check_answer(&config, &who, &methods, &answer)?;
        drop(answer);

        let mut sessions = lock(&self.sessions);
        if outcome == "success" {
            let session = sessions
                .remove(id, owner)
                .map_err(|e| DaemonError::NoSuchSession(e.to_string()))?;
            drop(sessions);
            // The used code and the success row went to disk together, before
            // `allow` leaves the daemon (check_answer).
            self.let_in(&who)?;
            audit::event(
                "factor_succeeded",
                &[
                    ("subject", &subject),
                    ("method", method),
                    ("rule", &session.rule),
                    ("session", id),
                ],
            );
            return Ok(Step::done(StepKind::Allow, ""));
        }

        let session = sessions
            .get_mut(id, owner)
            .map_err(|e| DaemonError::NoSuchSession(e.to_string()))?;
        session.failures += 1;
        let exhausted = session.failures >= session.max_tries;
        if exhausted {
            let _ = sessions.remove(id, owner);
        } else {
            session.stage = Stage::ShowedError;
        }
        drop(sessions);
        self.record(&who, method, outcome)?;
        audit::event(
            "factor_failed",
            &[
                ("subject", &subject),
                ("method", method),
                ("reason", outcome),
            ],
        );
        if let Some(lock_message) = self.count_failure(&config, &subject)? {
            // The lock ends this attempt too.
            let _ = lock(&self.sessions).remove(id, owner);
            return Ok(Step::done(
                StepKind::Deny,
                format!("{message} {lock_message}"),
            ));
        }
        if exhausted {
            self.record(&who, method, "too_many_tries")?;
            audit::event(
                "factor_failed",
                &[("subject", &subject), ("reason", "too_many_tries")],
            );
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

    /// Check one answer against the offered methods: (outcome, message, method).
    fn check_answer(
        &self,
        config: &Config,
        who: &Who,
        methods: &[Method],
        answer: &str,
    ) -> Result<(&'static str, &'static str, &'static str), DaemonError> {
        let subject = who.subject.as_str();
        let success = |method: &str| who.history_entry(method, "success");
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
            let (outcome, message) =
                check_code(&mut store, config, &totp_creds, trimmed, &success("totp"))
                    .map_err(failed)?;
            return Ok((outcome, message, "totp"));
        }
        for (row, stored) in store.unused_recovery_codes(subject).map_err(failed)? {
            if recovery::verify(answer, &stored) {
                // Compare-and-set: a code two attempts race for is used once.
                if store
                    .accept_recovery_code(row, &success("recovery"))
                    .map_err(failed)?
                {
                    audit::event("recovery_code_used", &[("subject", subject)]);
                    return Ok(("success", "", "recovery"));
                }
                return Ok(("replay", "That recovery code was already used.", "recovery"));
            }
        }
        Ok(("wrong_code", "Wrong code.", "recovery"))
    }

    pub fn cancel(&self, owner: &str, id: &str) -> Result<(), DaemonError> {
        let session = lock(&self.sessions)
            .remove(id, owner)
            .map_err(|e| DaemonError::NoSuchSession(e.to_string()))?;
        self.abandon(&session, "cancelled")
    }

    fn abandon(&self, session: &Session, reason: &str) -> Result<(), DaemonError> {
        self.record(&session.who, "totp", reason)?;
        audit::event(
            "factor_failed",
            &[("subject", &session.who.subject), ("reason", reason)],
        );
        Ok(())
    }

    /// End sessions past their deadline (called periodically).
    pub fn expire(&self) {
        let expired = lock(&self.sessions).take_expired(Instant::now());
        for session in expired {
            let _ = self.abandon(&session, "timeout");
        }
    }

    /// End the sessions of a connection that left the bus.
    pub fn connection_closed(&self, owner: &str) {
        let gone = lock(&self.sessions).take_owned_by(owner);
        for session in gone {
            let _ = self.abandon(&session, "cancelled");
        }
    }

    pub fn session_count(&self) -> usize {
        lock(&self.sessions).len()
    }

    pub fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }
}

/// The `decision` event: what the policy said about this attempt.
fn audit_decision(attempt: &Attempt<'_>, rule: &Rule, grace: bool) {
    let ctx = attempt.context;
    audit::event(
        "decision",
        &[
            ("user", &ctx.user),
            ("ruser", &ctx.ruser),
            ("subject", attempt.subject),
            ("service", &ctx.service),
            ("tty", &ctx.tty),
            ("rhost", &attempt.origin.rhost),
            ("rule", &rule.name),
            ("verdict", rule.action.as_str()),
            ("grace", if grace { "true" } else { "false" }),
            (
                "report_only",
                if rule.report_only { "true" } else { "false" },
            ),
        ],
    );
}

/// Digits a credential's codes have, after `[totp] digits` if the admin pinned it.
fn effective_digits(config: &Config, cred: &TotpCredential) -> u32 {
    config.totp.digits.unwrap_or(cred.digits)
}

/// Try the code against each credential; returns (outcome, message for the user).
/// `[totp] digits / algorithm / period`, when set, override every credential.
fn check_code(
    store: &mut Store,
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
        let cred = &pinned;
        match totp::verify(cred, code, now, config.totp.window) {
            Ok(TotpVerdict::Accepted { step }) => {
                // Compare-and-set: of two racing attempts with one code, one wins.
                if store.accept_totp(&cred.id, step, success)? {
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

/// A user name as it may appear in /etc/passwd: no control characters, no
/// slash, no colon, not empty, not absurdly long.
pub fn validate_user_name(user: &str) -> Result<(), DaemonError> {
    let ok = !user.is_empty()
        && user.len() <= 256
        && !user.starts_with('-')
        && !user
            .chars()
            .any(|c| c.is_control() || c == '/' || c == ':' || c.is_whitespace());
    if ok {
        Ok(())
    } else {
        Err(DaemonError::InvalidArgument(format!(
            "invalid user name {user:?}"
        )))
    }
}

/// The account whose factor must be proved: PAM_RUSER for services
/// configured so (`su`, `su-l` by default), PAM_USER otherwise.
pub fn subject_of<'a>(config: &Config, ctx: &'a AttemptContext) -> &'a str {
    match config.subject_item(&ctx.service) {
        SubjectItem::Ruser if !ctx.ruser.is_empty() => &ctx.ruser,
        _ => &ctx.user,
    }
}
