//! The attempt state machine: `begin` decides by policy and opens a session
//! when a factor is needed; `respond` checks answers, persists what must
//! survive a crash, and says what the module shows next.
//!
//! Synchronous and free of D-Bus so it can be tested directly; `service`
//! wraps it after checking who is calling.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use stepup_common::{DaemonError, StepKind};
use stepup_config::{Config, Method};
use zeroize::Zeroizing;

use crate::audit;
use crate::context::AttemptContext;
use crate::factors::totp::{self, Verdict as TotpVerdict};
use crate::policy::{self, Verdict};
use crate::sessions::{Session, SessionTable, Stage};
use crate::store::{HistoryEntry, Store, StoreError, TotpCredential};

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

pub struct Engine {
    config: RwLock<Arc<Config>>,
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
            config: RwLock::new(Arc::new(config)),
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
            .clone()
    }

    /// Swap in a new, fully validated configuration.
    pub fn replace_config(&self, config: Config) {
        *self
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(config);
    }

    fn record(&self, ctx: &AttemptContext, method: &str, outcome: &str) -> Result<(), DaemonError> {
        lock(&self.store)
            .record(&HistoryEntry {
                time: unix_now(),
                user: ctx.subject().to_owned(),
                service: ctx.service.clone(),
                tty: ctx.tty.clone(),
                rhost: ctx.rhost.clone(),
                method: method.to_owned(),
                outcome: outcome.to_owned(),
            })
            .map_err(failed)
    }

    pub fn begin(&self, owner: &str, ctx: AttemptContext) -> Result<Step, DaemonError> {
        let config = self.config();
        let decision = policy::evaluate(&config, &ctx);
        let verdict_name = match &decision.verdict {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
            Verdict::StepUp { .. } => "step_up",
        };
        audit::event(
            "decision",
            &[
                ("user", &ctx.user),
                ("subject", ctx.subject()),
                ("service", &ctx.service),
                ("tty", &ctx.tty),
                ("rhost", &ctx.rhost),
                ("rule", decision.rule_name()),
                ("verdict", verdict_name),
                (
                    "report_only",
                    if decision.report_only {
                        "true"
                    } else {
                        "false"
                    },
                ),
            ],
        );
        if decision.report_only {
            return Ok(Step::done(StepKind::Allow, ""));
        }
        match &decision.verdict {
            Verdict::Allow => Ok(Step::done(StepKind::Allow, "")),
            Verdict::Deny => Ok(Step::done(StepKind::Deny, "Access denied by policy.")),
            Verdict::StepUp { methods } => {
                // Only TOTP exists so far; the method list is kept for when more do.
                debug_assert!(methods.contains(&Method::Totp));
                let subject = ctx.subject().to_owned();
                let enrolled = !lock(&self.store)
                    .totp_credentials(&subject)
                    .map_err(failed)?
                    .is_empty();
                if !enrolled {
                    self.record(&ctx, "totp", "not_enrolled")?;
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
                    deadline: Instant::now() + Duration::from_secs(config.daemon.session_timeout),
                    context: ctx,
                    rule: decision.rule_name().to_owned(),
                    stage: Stage::AwaitingCode,
                    failures: 0,
                };
                let id = lock(&self.sessions)
                    .insert(session, config.daemon.max_sessions)
                    .map_err(|e| DaemonError::Failed(e.to_string()))?;
                audit::event(
                    "challenge",
                    &[("subject", &subject), ("method", "totp"), ("session", &id)],
                );
                Ok(Step {
                    session: id,
                    kind: StepKind::PromptSecret,
                    text: CODE_PROMPT.to_owned(),
                })
            }
        }
    }

    pub fn respond(
        &self,
        owner: &str,
        id: &str,
        answer: Zeroizing<String>,
    ) -> Result<Step, DaemonError> {
        let config = self.config();
        let mut sessions = lock(&self.sessions);
        let session = sessions
            .get_mut(id, owner)
            .map_err(|e| DaemonError::NoSuchSession(e.to_string()))?;
        if session.deadline <= Instant::now() {
            let session = sessions
                .remove(id, owner)
                .map_err(|e| DaemonError::NoSuchSession(e.to_string()))?;
            drop(sessions);
            self.record(&session.context, "totp", "timeout")?;
            audit::event(
                "factor_failed",
                &[
                    ("subject", session.context.subject()),
                    ("reason", "timeout"),
                ],
            );
            return Ok(Step::done(StepKind::Deny, "The step-up timed out."));
        }
        if session.stage == Stage::ShowedError {
            session.stage = Stage::AwaitingCode;
            return Ok(Step {
                session: id.to_owned(),
                kind: StepKind::PromptSecret,
                text: CODE_PROMPT.to_owned(),
            });
        }

        let subject = session.context.subject().to_owned();
        let (outcome, message) = {
            let mut store = lock(&self.store);
            let creds = store.totp_credentials(&subject).map_err(failed)?;
            check_code(&mut store, &creds, &answer, config.totp.window).map_err(failed)?
        };
        drop(answer);

        if outcome == "success" {
            let session = sessions
                .remove(id, owner)
                .map_err(|e| DaemonError::NoSuchSession(e.to_string()))?;
            drop(sessions);
            // On disk before `allow` leaves the daemon.
            self.record(&session.context, "totp", "success")?;
            audit::event(
                "factor_succeeded",
                &[
                    ("subject", &subject),
                    ("method", "totp"),
                    ("rule", &session.rule),
                    ("session", id),
                ],
            );
            return Ok(Step::done(StepKind::Allow, ""));
        }

        session.failures += 1;
        let context = session.context.clone();
        let exhausted = session.failures >= config.totp.max_tries;
        if exhausted {
            let _ = sessions.remove(id, owner);
        } else {
            session.stage = Stage::ShowedError;
        }
        drop(sessions);
        self.record(&context, "totp", outcome)?;
        audit::event(
            "factor_failed",
            &[
                ("subject", &subject),
                ("method", "totp"),
                ("reason", outcome),
            ],
        );
        if exhausted {
            self.record(&context, "totp", "too_many_tries")?;
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

    pub fn cancel(&self, owner: &str, id: &str) -> Result<(), DaemonError> {
        let session = lock(&self.sessions)
            .remove(id, owner)
            .map_err(|e| DaemonError::NoSuchSession(e.to_string()))?;
        self.abandon(&session, "cancelled")
    }

    fn abandon(&self, session: &Session, reason: &str) -> Result<(), DaemonError> {
        self.record(&session.context, "totp", reason)?;
        audit::event(
            "factor_failed",
            &[("subject", session.context.subject()), ("reason", reason)],
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

    /// Enroll a TOTP credential; returns (id, otpauth URI).
    pub fn enroll_totp(
        &self,
        user: &str,
        secret_base32: Zeroizing<String>,
        label: &str,
    ) -> Result<(String, Zeroizing<String>), DaemonError> {
        validate_user_name(user)?;
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
            algorithm: "SHA1".into(),
            digits: totp::DEFAULT_DIGITS,
            period: totp::DEFAULT_PERIOD,
            last_step: None,
            created: unix_now(),
        };
        lock(&self.store).add_totp(&cred).map_err(failed)?;
        audit::event(
            "enrolled",
            &[("user", user), ("method", "totp"), ("credential", &id)],
        );
        let uri = totp::otpauth_uri(&self.config().totp.issuer, user, &cred);
        Ok((id, uri))
    }
}

/// Try the code against each credential; returns (outcome, message for the user).
fn check_code(
    store: &mut Store,
    creds: &[TotpCredential],
    code: &str,
    window: u8,
) -> Result<(&'static str, &'static str), StoreError> {
    let now = unix_now();
    let mut replayed = false;
    for cred in creds {
        match totp::verify(cred, code, now, window) {
            Ok(TotpVerdict::Accepted { step }) => {
                // Compare-and-set: of two racing attempts with one code, one wins.
                if store.advance_totp_step(&cred.id, step)? {
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
