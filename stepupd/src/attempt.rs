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
use crate::factors::fido2::authenticator::{Assertion, Authenticator, AuthenticatorError};
use crate::factors::recovery;
use crate::factors::totp::{self, Verdict as TotpVerdict};
use crate::policy::{self, Attempt, Lookups, Origin, RuleTrace};
use crate::sessions::{Session, SessionTable, Stage};
use crate::store::{HistoryColumn, HistoryEntry, LockoutRow, Store, StoreError, TotpCredential};
use crate::utmp;

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
            .record(&HistoryEntry {
                time: unix_now(),
                user: who.subject.clone(),
                service: who.service.clone(),
                tty: who.tty.clone(),
                rhost: who.rhost.clone(),
                method: method.to_owned(),
                outcome: outcome.to_owned(),
            })
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
        audit::event(
            "decision",
            &[
                ("user", &ctx.user),
                ("subject", &subject),
                ("service", &ctx.service),
                ("tty", &ctx.tty),
                ("rhost", &origin.rhost),
                ("rule", &rule.name),
                ("verdict", rule.action.as_str()),
                ("grace", if grace.is_some() { "true" } else { "false" }),
                (
                    "report_only",
                    if rule.report_only { "true" } else { "false" },
                ),
            ],
        );
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
            Action::StepUp => {
                if let Some(message) = self.locked_message(&subject, unix_now())? {
                    self.record(&who, "totp", "locked")?;
                    audit::event(
                        "factor_failed",
                        &[("subject", &subject), ("reason", "locked")],
                    );
                    return Ok(Step::done(StepKind::Deny, message));
                }
                let (methods, note) =
                    self.offered_methods(&config, rule, &subject, origin.remote)?;
                if methods.is_empty() {
                    self.record(&who, "totp", "not_enrolled")?;
                    audit::event(
                        "factor_failed",
                        &[("subject", &subject), ("reason", "not_enrolled")],
                    );
                    return Ok(Step::done(
                        StepKind::Deny,
                        format!(
                            "A second factor is required, but none is enrolled for {subject}. Ask an administrator to run: stepupctl enroll totp {subject}"
                        ),
                    ));
                }
                let session = Session {
                    owner: owner.to_owned(),
                    deadline: Instant::now() + config.daemon.session_timeout.0,
                    who,
                    rule: rule.name.clone(),
                    methods: methods.clone(),
                    max_tries: rule.max_tries,
                    stage: Stage::AwaitingCode,
                    failures: 0,
                    touch: None,
                    require_uv: rule.require_uv,
                };
                let id = lock(&self.sessions)
                    .insert(session, config.daemon.max_sessions)
                    .map_err(|e| DaemonError::Failed(e.to_string()))?;
                audit::event(
                    "challenge",
                    &[
                        ("subject", &subject),
                        ("method", methods[0].as_str()),
                        ("session", &id),
                    ],
                );
                if methods[0] == Method::Fido2 {
                    return self.start_key_step(&config, owner, &id, None);
                }
                let prompt = prompt_for(&methods);
                Ok(Step {
                    session: id,
                    kind: StepKind::PromptSecret,
                    text: match note {
                        Some(note) => format!("{note}\n{prompt}"),
                        None => prompt.to_owned(),
                    },
                })
            }
        }
    }

    /// A dry run of the policy for `ctx` at `at` (default now): every rule
    /// and condition, the verdict, grace, and the factors that would be
    /// offered. Changes nothing.
    pub fn explain(
        &self,
        ctx: AttemptContext,
        at: Option<Timestamp>,
    ) -> Result<Explanation, DaemonError> {
        let config = self.config();
        let origin = self.origin_of(&config, &ctx);
        let subject = subject_of(&config, &ctx).to_owned();
        let attempt = Attempt {
            context: &ctx,
            subject: &subject,
            origin: &origin,
            now: at.unwrap_or_else(Timestamp::now),
        };
        let mut lookups = StoreLookups::new(&self.store);
        let (rule, rules) =
            policy::explain(&config, &attempt, &mut lookups).map_err(DaemonError::Failed)?;
        let grace = grace_earned(rule, &attempt, &mut lookups).map_err(DaemonError::Failed)?;
        let enrolled: Vec<EnrolledFactor> = lock(&self.store)
            .list(&subject)
            .map_err(failed)?
            .into_iter()
            .map(|c| EnrolledFactor {
                offered: rule.action == Action::StepUp
                    && rule.methods.iter().any(|m| m.as_str() == c.method),
                id: c.id,
                method: c.method,
                label: c.label,
            })
            .collect();
        let verdict = if rule.report_only {
            format!("allow (report-only; would {})", rule.action.as_str())
        } else if rule.action == Action::StepUp && grace.is_some() {
            "allow (grace from an earlier step-up)".to_owned()
        } else {
            rule.action.as_str().to_owned()
        };
        Ok(Explanation {
            at: attempt.now.to_string(),
            service: ctx.service.clone(),
            user: ctx.user.clone(),
            ruser: ctx.ruser.clone(),
            tty: ctx.tty.clone(),
            subject: subject.clone(),
            origin: origin.clone(),
            rules,
            decided_by: rule.name.clone(),
            action: rule.action.as_str().to_owned(),
            report_only: rule.report_only,
            verdict,
            message: (rule.action == Action::Deny).then(|| rule.message.clone()),
            methods: rule.methods.iter().map(|m| m.as_str().to_owned()).collect(),
            grace: rule.grace.to_string(),
            grace_scope: rule.grace_scope.as_str().to_owned(),
            grace_applies: grace.is_some(),
            max_tries: rule.max_tries,
            enrolled,
            policy_hash: config.hash.clone(),
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

    /// Ask the key: a PIN prompt first when the rule wants user verification
    /// and the key has a PIN, otherwise start the request and say "touch".
    fn start_key_step(
        &self,
        config: &Config,
        owner: &str,
        id: &str,
        pin: Option<Zeroizing<String>>,
    ) -> Result<Step, DaemonError> {
        let authenticator = authenticator_for(config)
            .ok_or_else(|| DaemonError::Failed("no security key support configured".into()))?;
        let mut sessions = lock(&self.sessions);
        let session = sessions
            .get_mut(id, owner)
            .map_err(|e| DaemonError::NoSuchSession(e.to_string()))?;
        if session.require_uv && pin.is_none() && authenticator.has_pin().unwrap_or(false) {
            session.stage = Stage::AwaitingPin;
            return Ok(Step {
                session: id.to_owned(),
                kind: StepKind::PromptSecret,
                text: "Security key PIN: ".to_owned(),
            });
        }
        let subject = session.who.subject.clone();
        let keys = lock(&self.store)
            .fido2_credentials(&subject)
            .map_err(failed)?;
        let label = keys
            .first()
            .map(|(k, _)| k.label.clone())
            .unwrap_or_default();
        let wait = TouchWait::start(
            authenticator,
            keys,
            session.require_uv,
            pin,
            config.fido2.touch_timeout.0,
        );
        session.touch = Some(wait);
        session.stage = Stage::AwaitingTouch;
        Ok(Step {
            session: id.to_owned(),
            kind: StepKind::Info,
            text: format!("Touch your security key ({label})…"),
        })
    }

    /// Wait a little for the key; "still waiting" is an empty info step, so
    /// no single call outlasts the module's timeout.
    fn await_touch(
        &self,
        config: &Config,
        owner: &str,
        id: &str,
        touch: Option<Arc<TouchWait>>,
    ) -> Result<Step, DaemonError> {
        let Some(touch) = touch else {
            return Err(DaemonError::NoSuchSession(
                "no key request in flight".into(),
            ));
        };
        let Some(outcome) = touch.wait(Duration::from_secs(2)) else {
            return Ok(Step {
                session: id.to_owned(),
                kind: StepKind::Info,
                text: String::new(),
            });
        };
        let (who, methods) = {
            let sessions = lock(&self.sessions);
            let session = sessions
                .peek(id, owner)
                .map_err(|e| DaemonError::NoSuchSession(e.to_string()))?;
            (session.who.clone(), session.methods.clone())
        };
        let (result, message) = match outcome {
            Ok((assertion, key, stored_count)) => {
                self.check_assertion(&who, &assertion, &key, stored_count, &touch)?
            }
            Err(e) => ("key_error", e.to_string()),
        };
        if result == "success" {
            let _ = lock(&self.sessions).remove(id, owner);
            self.let_in(&who)?;
            audit::event(
                "factor_succeeded",
                &[
                    ("subject", &who.subject),
                    ("method", "fido2"),
                    ("session", id),
                ],
            );
            return Ok(Step::done(StepKind::Allow, ""));
        }
        self.record(&who, "fido2", result)?;
        audit::event(
            "factor_failed",
            &[
                ("subject", &who.subject),
                ("method", "fido2"),
                ("reason", result),
            ],
        );
        if result == "bad_signature"
            && let Some(lock_message) = self.count_failure(config, &who.subject)?
        {
            let _ = lock(&self.sessions).remove(id, owner);
            return Ok(Step::done(
                StepKind::Deny,
                format!("{message} {lock_message}"),
            ));
        }
        // Another method on offer: fall back to it within the same attempt.
        let rest: Vec<Method> = methods
            .into_iter()
            .filter(|m| *m != Method::Fido2)
            .collect();
        let mut sessions = lock(&self.sessions);
        if rest.is_empty() || result == "counter_regression" {
            let _ = sessions.remove(id, owner);
            return Ok(Step::done(StepKind::Deny, message));
        }
        let session = sessions
            .get_mut(id, owner)
            .map_err(|e| DaemonError::NoSuchSession(e.to_string()))?;
        session.methods = rest;
        session.touch = None;
        session.stage = Stage::ShowedError;
        Ok(Step {
            session: id.to_owned(),
            kind: StepKind::Error,
            text: message,
        })
    }

    /// Verify a key's assertion and, on success, store the new counter and
    /// the success together. A counter that went backwards marks the key suspect.
    fn check_assertion(
        &self,
        who: &Who,
        assertion: &crate::factors::fido2::authenticator::Assertion,
        key: &crate::store::Fido2Credential,
        stored_count: u32,
        touch: &TouchWait,
    ) -> Result<(&'static str, String), DaemonError> {
        use crate::factors::fido2::verify::{
            Expectation, StoredKey, VerifyError, verify_assertion,
        };
        let Some(algorithm) =
            crate::factors::fido2::authenticator::Algorithm::parse(&key.algorithm)
        else {
            return Ok(("bad_signature", "Unsupported key type.".to_owned()));
        };
        let stored = StoredKey {
            credential_id: &key.key_handle,
            user: &key.user,
            algorithm,
            public_key: &key.public_key,
            rp_id: &key.rp_id,
            sign_count: stored_count,
        };
        let expect = Expectation {
            user: &who.subject,
            client_data_hash: &touch.client_data_hash,
            require_uv: touch.require_uv,
        };
        match verify_assertion(&stored, assertion, &expect) {
            Ok(verified) => {
                let success = HistoryEntry {
                    time: unix_now(),
                    user: who.subject.clone(),
                    service: who.service.clone(),
                    tty: who.tty.clone(),
                    rhost: who.rhost.clone(),
                    method: "fido2".to_owned(),
                    outcome: "success".to_owned(),
                };
                if lock(&self.store)
                    .accept_fido2(&key.id, verified.sign_count, &success)
                    .map_err(failed)?
                {
                    Ok(("success", String::new()))
                } else {
                    self.key_cloned(who, key, stored_count, verified.sign_count)
                }
            }
            Err(VerifyError::CounterRegression { stored, received }) => {
                self.key_cloned(who, key, stored, received)
            }
            Err(VerifyError::UserNotVerified) => Ok((
                "uv_missing",
                "The security key did not verify you (PIN or biometrics).".to_owned(),
            )),
            Err(VerifyError::UserNotPresent) => {
                Ok(("up_missing", "The security key was not touched.".to_owned()))
            }
            Err(e) => Ok((
                "bad_signature",
                format!("The security key's answer did not verify ({e:?})."),
            )),
        }
    }

    fn key_cloned(
        &self,
        who: &Who,
        key: &crate::store::Fido2Credential,
        stored: u32,
        received: u32,
    ) -> Result<(&'static str, String), DaemonError> {
        lock(&self.store).mark_suspect(&key.id).map_err(failed)?;
        audit::event(
            "key_counter_regression",
            &[
                ("subject", &who.subject),
                ("credential", &key.id),
                ("stored", &stored.to_string()),
                ("received", &received.to_string()),
            ],
        );
        Ok((
            "counter_regression",
            format!(
                "This security key's signature counter went backwards (it may have been cloned); it is disabled until an administrator re-enrolls it (credential {}).",
                key.id
            ),
        ))
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
        let success = |method: &str| HistoryEntry {
            time: unix_now(),
            user: who.subject.clone(),
            service: who.service.clone(),
            tty: who.tty.clone(),
            rhost: who.rhost.clone(),
            method: method.to_owned(),
            outcome: "success".to_owned(),
        };
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

    /// Is `subject` locked out now? The message to show if so.
    fn locked_message(&self, subject: &str, now: u64) -> Result<Option<String>, DaemonError> {
        let row = lock(&self.store).lockout(subject).map_err(failed)?;
        Ok(match row {
            Some(LockoutRow {
                locked_at: Some(_),
                locked_until: None,
                ..
            }) => Some(format!(
                "{subject} is locked after too many failed step-ups. Ask an administrator to run: stepupctl unlock {subject}"
            )),
            Some(LockoutRow {
                locked_at: Some(_),
                locked_until: Some(until),
                ..
            }) if now < until => {
                let minutes = (until - now).div_ceil(60);
                Some(format!(
                    "{subject} is locked after too many failed step-ups for {minutes} more minute(s), or until an administrator runs: stepupctl unlock {subject}"
                ))
            }
            _ => None,
        })
    }

    /// Count a failure toward the lockout; the lock message if it engaged.
    fn count_failure(&self, config: &Config, subject: &str) -> Result<Option<String>, DaemonError> {
        let settings = &config.lockout;
        if settings.deny == 0 {
            return Ok(None);
        }
        let now = unix_now();
        let mut store = lock(&self.store);
        let row = store.lockout(subject).map_err(failed)?;
        // Failures before an unlock, or before an expired lock ended, no longer count.
        let mut since = now.saturating_sub(settings.fail_interval.0.as_secs());
        let mut after_row = 0;
        if let Some(row) = row {
            after_row = row.reset_at;
            if let (Some(_), Some(until)) = (row.locked_at, row.locked_until) {
                since = since.max(until);
            }
        }
        let failures = store
            .failures_since_after(subject, since, after_row)
            .map_err(failed)?;
        if failures < u64::from(settings.deny) {
            return Ok(None);
        }
        let until =
            (!settings.unlock_time.0.is_zero()).then(|| now + settings.unlock_time.0.as_secs());
        store.lock(subject, now, until).map_err(failed)?;
        drop(store);
        audit::event(
            "locked",
            &[
                ("subject", subject),
                ("failures", &failures.to_string()),
                (
                    "until",
                    &until.map_or("unlock".to_owned(), |u| u.to_string()),
                ),
            ],
        );
        self.locked_message(subject, now)
    }

    /// Import another module's credential file (all or nothing); the report.
    pub fn import(
        &self,
        format: &str,
        user: &str,
        text: &str,
        origin: &str,
    ) -> Result<String, DaemonError> {
        const MAX_FILE: usize = 1 << 20;
        if text.len() > MAX_FILE {
            return Err(DaemonError::InvalidArgument(format!(
                "the file is over {MAX_FILE} bytes"
            )));
        }
        let config = self.config();
        let now = unix_now();
        let origin = if origin.is_empty() {
            // pam_u2f's own default origin.
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            format!("pam://{}", host.trim())
        } else {
            origin.to_owned()
        };
        let plan = match format {
            "google-authenticator" => {
                validate_user_name(user)?;
                crate::import::google_authenticator(&config, user, text, now)
            }
            "pam-u2f" => crate::import::pam_u2f(text, &origin, now),
            "users-oath" => crate::import::users_oath(&config, text, now),
            other => {
                return Err(DaemonError::InvalidArgument(format!(
                    "unknown format {other:?} (expected one of {})",
                    crate::import::FORMATS.join(", ")
                )));
            }
        }
        .map_err(|e| {
            DaemonError::InvalidArgument(format!("{format}: {e}; nothing was imported"))
        })?;
        let users: std::collections::BTreeSet<&str> = plan
            .batch
            .totp
            .iter()
            .map(|c| c.user.as_str())
            .chain(plan.batch.fido2.iter().map(|c| c.user.as_str()))
            .collect();
        for user in &users {
            validate_user_name(user).map_err(|e| {
                DaemonError::InvalidArgument(format!("{format}: {e:?}; nothing was imported"))
            })?;
        }
        lock(&self.store).import(&plan.batch).map_err(failed)?;
        let users: Vec<&str> = users.into_iter().collect();
        audit::event(
            "imported",
            &[
                ("format", format),
                ("users", &users.join(",")),
                ("totp", &plan.batch.totp.len().to_string()),
                ("keys", &plan.batch.fido2.len().to_string()),
                ("recovery_codes", &plan.batch.recovery.len().to_string()),
            ],
        );
        Ok(plan.report)
    }

    /// On a clean stop: fold the write-ahead log into the database file.
    pub fn shutdown(&self) {
        if let Err(e) = lock(&self.store).checkpoint() {
            audit::event("store_error", &[("error", &e.to_string())]);
        }
    }

    /// Drop history older than `[history] retention`.
    pub fn prune_history(&self) {
        let retention = self.config().history.retention.0.as_secs();
        let before = unix_now().saturating_sub(retention);
        match lock(&self.store).prune_history(before) {
            Ok(0) => {}
            Ok(n) => audit::event("history_pruned", &[("rows", &n.to_string())]),
            Err(e) => audit::event("store_error", &[("error", &e.to_string())]),
        }
    }

    /// `stepupctl unlock`: lift the lock and forget earlier failures.
    pub fn unlock(&self, user: &str) -> Result<bool, DaemonError> {
        validate_user_name(user)?;
        let now = unix_now();
        let was_locked = self.locked_message(user, now)?.is_some();
        lock(&self.store).unlock(user).map_err(failed)?;
        audit::event(
            "unlocked",
            &[
                ("user", user),
                ("was_locked", if was_locked { "true" } else { "false" }),
            ],
        );
        Ok(was_locked)
    }

    /// `stepupctl recovery-codes`: a new set, replacing the old one.
    pub fn new_recovery_codes(&self, user: &str) -> Result<Vec<Zeroizing<String>>, DaemonError> {
        validate_user_name(user)?;
        let count = self.config().recovery.count;
        let codes: Vec<Zeroizing<String>> = (0..count).map(|_| recovery::generate()).collect();
        let hashes = codes
            .iter()
            .map(|c| recovery::hash(c))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| DaemonError::Failed(e.to_string()))?;
        lock(&self.store)
            .replace_recovery_codes(user, &hashes, unix_now())
            .map_err(failed)?;
        audit::event(
            "recovery_codes_issued",
            &[("user", user), ("count", &count.to_string())],
        );
        Ok(codes)
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

    /// Enroll a security key for `user` at the configured rpId (blocks
    /// until the key is touched or `touch_timeout` passes).
    pub fn enroll_key(&self, user: &str, label: &str) -> Result<String, DaemonError> {
        use crate::factors::fido2::authenticator::MakeCredentialRequest;
        validate_user_name(user)?;
        if label.len() > 64 || label.chars().any(char::is_control) {
            return Err(DaemonError::InvalidArgument(
                "label must be at most 64 printable characters".into(),
            ));
        }
        let config = self.config();
        let authenticator = authenticator_for(&config)
            .filter(|a| a.present())
            .ok_or_else(|| DaemonError::Failed("no security key is connected".into()))?;
        let mut user_id = vec![0u8; 16];
        rand::fill(user_id.as_mut_slice());
        let mut challenge = [0u8; 32];
        rand::fill(&mut challenge);
        let request = MakeCredentialRequest {
            rp_id: config.fido2.rp_id.clone(),
            user_name: user.to_owned(),
            user_id,
            client_data: challenge.to_vec(),
            client_data_hash: crate::factors::fido2::verify::client_data_hash(&challenge),
            require_uv: false,
            pin: None,
        };
        let made = authenticator
            .make_credential(&request, config.fido2.touch_timeout.0)
            .map_err(|e| DaemonError::Failed(format!("enrolling the key: {e}")))?;
        let mut raw = [0u8; 6];
        rand::fill(&mut raw);
        let id = format!(
            "key-{}",
            raw.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let key = crate::store::Fido2Credential {
            id: id.clone(),
            user: user.to_owned(),
            key_handle: made.credential_id,
            resident: false,
            public_key: made.public_key,
            algorithm: made.algorithm.as_str().to_owned(),
            rp_id: config.fido2.rp_id.clone(),
            presence: true,
            pin: false,
            verification: made.supports_uv,
            label: if label.is_empty() {
                "security key".to_owned()
            } else {
                label.to_owned()
            },
            created: unix_now(),
        };
        lock(&self.store).add_fido2(&key).map_err(failed)?;
        audit::event(
            "enrolled",
            &[("user", user), ("method", "fido2"), ("credential", &id)],
        );
        Ok(id)
    }

    /// Enroll a TOTP credential; returns (id, otpauth URI).
    pub fn enroll_totp(
        &self,
        user: &str,
        secret_base32: Zeroizing<String>,
        label: &str,
    ) -> Result<(String, Zeroizing<String>), DaemonError> {
        validate_user_name(user)?;
        let config = self.config();
        if label.len() > 64 || label.chars().any(char::is_control) {
            return Err(DaemonError::InvalidArgument(
                "label must be at most 64 printable characters".into(),
            ));
        }
        let secret = if secret_base32.is_empty() {
            totp::generate_secret()
        } else {
            totp::decode_secret(&secret_base32)
                .map_err(|e| DaemonError::InvalidArgument(format!("--secret: {e}")))?
        };
        let (algorithm, digits, period) = totp::pinned(
            &config.totp,
            "SHA1",
            totp::DEFAULT_DIGITS,
            totp::DEFAULT_PERIOD,
        );
        let mut raw = [0u8; 6];
        rand::fill(&mut raw);
        let id = format!(
            "totp-{}",
            raw.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let cred = TotpCredential {
            id: id.clone(),
            user: user.to_owned(),
            label: if label.is_empty() {
                "authenticator".to_owned()
            } else {
                label.to_owned()
            },
            secret,
            algorithm,
            digits,
            period,
            last_step: None,
            created: unix_now(),
        };
        lock(&self.store).add_totp(&cred).map_err(failed)?;
        audit::event(
            "enrolled",
            &[("user", user), ("method", "totp"), ("credential", &id)],
        );
        let uri = totp::otpauth_uri(&config.totp.issuer, user, &cred);
        Ok((id, uri))
    }
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

/// Who an attempt is about, as history records it (rhost is the effective
/// one: PAM_RHOST or the tty's login session).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Who {
    pub subject: String,
    pub service: String,
    pub tty: String,
    pub rhost: String,
}

/// The account whose factor must be proved: PAM_RUSER for services
/// configured so (`su`, `su-l` by default), PAM_USER otherwise.
pub fn subject_of<'a>(config: &Config, ctx: &'a AttemptContext) -> &'a str {
    match config.subject_item(&ctx.service) {
        SubjectItem::Ruser if !ctx.ruser.is_empty() => &ctx.ruser,
        _ => &ctx.user,
    }
}

/// When grace was earned, if the deciding rule steps up and a success in
/// its scope is recent enough.
fn grace_earned(
    rule: &Rule,
    attempt: &Attempt<'_>,
    lookups: &mut dyn Lookups,
) -> Result<Option<u64>, String> {
    if rule.action != Action::StepUp || rule.grace.0.is_zero() {
        return Ok(None);
    }
    let since = u64::try_from(attempt.now.as_second())
        .unwrap_or(0)
        .saturating_sub(rule.grace.0.as_secs());
    lookups.last_success(attempt.subject, since, rule.grace_scope, attempt)
}

/// NSS and the store, for policy evaluation; groups are looked up once per attempt.
struct StoreLookups<'e> {
    store: &'e Mutex<Store>,
    groups: Option<(String, Option<Vec<String>>)>,
}

impl<'e> StoreLookups<'e> {
    fn new(store: &'e Mutex<Store>) -> Self {
        Self {
            store,
            groups: None,
        }
    }
}

impl Lookups for StoreLookups<'_> {
    fn groups(&mut self, user: &str) -> Result<Option<Vec<String>>, String> {
        if let Some((cached_user, groups)) = &self.groups
            && cached_user == user
        {
            return Ok(groups.clone());
        }
        let groups = nss_groups(user)?;
        self.groups = Some((user.to_owned(), groups.clone()));
        Ok(groups)
    }

    fn source_last_seen(&mut self, subject: &str, rhost: &str) -> Result<Option<u64>, String> {
        lock(self.store)
            .source_last_seen(subject, rhost)
            .map_err(|e| e.to_string())
    }

    fn failures_since(&mut self, subject: &str, since: u64) -> Result<u64, String> {
        lock(self.store)
            .failures_since(subject, since)
            .map_err(|e| e.to_string())
    }

    fn last_success(
        &mut self,
        subject: &str,
        since: u64,
        scope: Scope,
        attempt: &Attempt<'_>,
    ) -> Result<Option<u64>, String> {
        let same = match scope {
            Scope::User => None,
            // A grace bound to a terminal needs a terminal.
            Scope::Tty if attempt.context.tty.is_empty() => return Ok(None),
            Scope::Tty => Some((HistoryColumn::Tty, attempt.context.tty.as_str())),
            Scope::Rhost => Some((HistoryColumn::Rhost, attempt.origin.rhost.as_str())),
        };
        lock(self.store)
            .last_success(subject, since, same)
            .map_err(|e| e.to_string())
    }
}

/// The user's groups (primary and supplementary) from NSS; `None` if unknown.
fn nss_groups(user: &str) -> Result<Option<Vec<String>>, String> {
    use nix::unistd::{Group, User, getgrouplist};
    let Some(account) =
        User::from_name(user).map_err(|e| format!("NSS lookup of {user:?}: {e}"))?
    else {
        return Ok(None);
    };
    let name =
        std::ffi::CString::new(user).map_err(|_| format!("user name {user:?} contains NUL"))?;
    let gids = getgrouplist(&name, account.gid).map_err(|e| format!("groups of {user:?}: {e}"))?;
    let mut names = Vec::with_capacity(gids.len());
    for gid in gids {
        if let Ok(Some(group)) = Group::from_gid(gid) {
            names.push(group.name);
        }
    }
    Ok(Some(names))
}

#[derive(Debug, Clone, Serialize)]
pub struct EnrolledFactor {
    pub id: String,
    pub method: String,
    pub label: String,
    /// Would the deciding rule offer this factor?
    pub offered: bool,
}

/// What `stepupctl explain` shows (serialized as JSON over the bus).
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub at: String,
    pub service: String,
    pub user: String,
    pub ruser: String,
    pub tty: String,
    pub subject: String,
    pub origin: Origin,
    pub rules: Vec<RuleTrace>,
    pub decided_by: String,
    pub action: String,
    pub report_only: bool,
    /// What the module would actually get.
    pub verdict: String,
    pub message: Option<String>,
    pub methods: Vec<String>,
    pub grace: String,
    pub grace_scope: String,
    pub grace_applies: bool,
    pub max_tries: u32,
    pub enrolled: Vec<EnrolledFactor>,
    pub policy_hash: String,
}

/// The configured authenticator (`[fido2] authenticator`).
pub fn authenticator_for(config: &Config) -> Option<Arc<dyn Authenticator>> {
    use crate::factors::fido2::authenticator::{
        hardware::HardwareAuthenticator, software::SoftwareAuthenticator,
    };
    match config.fido2.authenticator.strip_prefix("software:") {
        Some(path) => SoftwareAuthenticator::open(std::path::Path::new(path))
            .ok()
            .map(|a| Arc::new(a) as Arc<dyn Authenticator>),
        None => Some(Arc::new(HardwareAuthenticator::new()) as Arc<dyn Authenticator>),
    }
}

type TouchOutcome = Result<(Assertion, crate::store::Fido2Credential, u32), AuthenticatorError>;

/// A security-key request running on its own thread (the device blocks
/// until touched), and its result once there.
pub struct TouchWait {
    result: Mutex<Option<TouchOutcome>>,
    done: std::sync::Condvar,
    pub client_data_hash: [u8; 32],
    pub require_uv: bool,
}

impl std::fmt::Debug for TouchWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TouchWait")
            .field("require_uv", &self.require_uv)
            .finish_non_exhaustive()
    }
}

impl TouchWait {
    fn start(
        authenticator: Arc<dyn Authenticator>,
        keys: Vec<(crate::store::Fido2Credential, u32)>,
        require_uv: bool,
        pin: Option<Zeroizing<String>>,
        timeout: Duration,
    ) -> Arc<Self> {
        use crate::factors::fido2::authenticator::AssertionRequest;
        // A fresh random challenge per attempt, in WebAuthn's client data form.
        let mut challenge = [0u8; 32];
        rand::fill(&mut challenge);
        let rp_ids: std::collections::BTreeSet<String> =
            keys.iter().map(|(k, _)| k.rp_id.clone()).collect();
        let client_data = format!(
            r#"{{"type":"webauthn.get","challenge":"{}","origin":"{}","crossOrigin":false}}"#,
            data_encoding::BASE64URL_NOPAD.encode(&challenge),
            rp_ids.iter().next().cloned().unwrap_or_default()
        );
        let client_data_hash =
            crate::factors::fido2::verify::client_data_hash(client_data.as_bytes());
        let wait = Arc::new(Self {
            result: Mutex::new(None),
            done: std::sync::Condvar::new(),
            client_data_hash,
            require_uv,
        });
        let shared = wait.clone();
        std::thread::spawn(move || {
            let mut outcome: TouchOutcome = Err(AuthenticatorError::NoCredential);
            // One request per relying party the user's keys belong to
            // (pam_u2f imports keep their original origin).
            for rp_id in &rp_ids {
                let allow: Vec<Vec<u8>> = keys
                    .iter()
                    .filter(|(k, _)| &k.rp_id == rp_id && !k.resident)
                    .map(|(k, _)| k.key_handle.clone())
                    .collect();
                let request = AssertionRequest {
                    rp_id: rp_id.clone(),
                    client_data: client_data.as_bytes().to_vec(),
                    client_data_hash,
                    allow_list: allow,
                    require_uv,
                    pin: pin.clone(),
                };
                match authenticator.get_assertion(&request, timeout) {
                    Ok(assertion) => {
                        outcome = match keys.iter().find(|(k, _)| {
                            k.key_handle == assertion.credential_id && &k.rp_id == rp_id
                        }) {
                            Some((key, count)) => Ok((assertion, key.clone(), *count)),
                            None => Err(AuthenticatorError::NoCredential),
                        };
                        break;
                    }
                    Err(AuthenticatorError::NoCredential) => continue,
                    Err(e) => {
                        outcome = Err(e);
                        break;
                    }
                }
            }
            *lock(&shared.result) = Some(outcome);
            shared.done.notify_all();
        });
        wait
    }

    /// The result, if it arrives within `limit`.
    fn wait(&self, limit: Duration) -> Option<TouchOutcome> {
        let guard = lock(&self.result);
        let (mut guard, _) = self
            .done
            .wait_timeout_while(guard, limit, |r| r.is_none())
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.take()
    }
}
