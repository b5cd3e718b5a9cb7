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
use crate::caller::{Caller, ProcessId};
use crate::context::AttemptContext;
use crate::factors::fido2::touch::{TouchWait, authenticator_for};
use crate::factors::recovery;
use crate::factors::totp::{self, Verdict as TotpVerdict};
use crate::geo::{self, Geo};
use crate::policy::{self, Attempt, Lookups, Origin, RuleTrace};
use crate::sessions::{Session, SessionTable, Stage};
use crate::store::{HistoryColumn, HistoryEntry, LockoutRow, Store, StoreError, TotpCredential};
use crate::utmp;
use crate::who::GeoTags;
pub use crate::who::Who;
pub use begin::Prepared;
use stepup_config::attempt::{GeoFacts, Place, Travel};

mod admin;
mod agent;
mod begin;
mod ending;
mod explain;
mod keys;
mod lockout;
mod lookups;
mod respond;
mod sudo_link;

pub use ending::Outcome;
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
/// Whether letting `who` in writes to the store: its source address and
/// its login key are remembered (`Engine::let_in`).
fn let_in_writes(who: &Who) -> bool {
    !who.rhost.is_empty() || who.login_key.is_some()
}

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
    store: Mutex<Box<dyn Store>>,
    sessions: Mutex<SessionTable>,
    /// Step-ups proved in a sudo process's PAM step, for that process's
    /// approval check (see `sudo_link`).
    sudo_steps: Mutex<sudo_link::SudoSteps>,
    pub config_dir: PathBuf,
    pub started: Instant,
    /// The location databases in force (`[geoip]`), replaced with the
    /// configuration.
    geo: RwLock<Option<Arc<Geo>>>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A store error as the module will see it: an unreachable shared store
/// is "unavailable" (failmode decides, as for a daemon that is down; its
/// outage is reported once, by `store_unreachable`); any other error is a
/// failure (the attempt fails whatever failmode says).
fn failed(e: StoreError) -> DaemonError {
    if e.is_unreachable() {
        return DaemonError::Unavailable(e.to_string());
    }
    audit::event("store_error", &[("error", &e.to_string())]);
    DaemonError::Failed(format!("state store: {e}"))
}

// A poisoned lock means a panic mid-update; carrying on with the data is
// safer than refusing every later attempt (the store itself is transactional).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Engine {
    pub fn new(config: Config, store: Box<dyn Store>, config_dir: PathBuf) -> Self {
        Self {
            config: RwLock::new((Arc::new(config), Timestamp::now())),
            store: Mutex::new(store),
            sessions: Mutex::new(SessionTable::default()),
            sudo_steps: Mutex::new(sudo_link::SudoSteps::default()),
            config_dir,
            started: Instant::now(),
            geo: RwLock::new(None),
        }
    }

    /// Puts these location databases in force (start; `geo::open_for`).
    pub fn with_geo(self, geo: Option<Geo>) -> Self {
        *self
            .geo
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = geo.map(Arc::new);
        self
    }

    /// The location databases in force, if any.
    pub fn geo(&self) -> Option<Arc<Geo>> {
        self.geo
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// What policy evaluation asks of NSS, the store and the databases.
    fn lookups(&self) -> StoreLookups<'_> {
        StoreLookups::new(&self.store, self.geo())
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
    /// (with its location databases, when a rule needs them) replaces the
    /// one in force; otherwise it stays and the reason is logged.
    pub fn reload(&self) -> Result<Arc<Config>, stepup_config::ConfigError> {
        let loaded = Config::load_dir(&self.config_dir)
            .and_then(|config| self.geo_for(&config).map(|geo| (config, geo)));
        match loaded {
            Ok((config, geo)) => {
                let rules = config.rules.len().to_string();
                let hash = config.hash.clone();
                // Databases go in before a policy that may need them and out
                // only after one that needs none, so a policy read after
                // the swap has its databases. (An attempt that read the old
                // policy just before [geoip] was removed may find them gone:
                // it fails closed, `place` answering an error.)
                let set_geo = |geo| {
                    *self
                        .geo
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = geo;
                };
                if geo.is_some() {
                    set_geo(geo);
                    self.replace_config(config);
                } else {
                    self.replace_config(config);
                    set_geo(None);
                }
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

    /// The location databases for a configuration being reloaded: the ones
    /// in force, looked at again, if it names the same files; else opened
    /// anew (`geo::open_for`).
    fn geo_for(&self, config: &Config) -> Result<Option<Arc<Geo>>, stepup_config::ConfigError> {
        match (&config.geoip, self.geo()) {
            (Some(settings), Some(geo)) if geo.same_files(settings) => {
                geo.reload();
                geo.check_asn(config)?;
                Ok(Some(geo))
            }
            _ => Ok(geo::open_for(config)?.map(Arc::new)),
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

    /// Remember what an allowed attempt makes known: its source address
    /// (for `new_rhost`) with where the location databases put it (for
    /// `new_country` and `impossible_travel`), and its login key (for
    /// `new_login_key`). An unreachable shared store does not hold up an
    /// allow that needed no state: they are then not remembered, so
    /// `new_rhost`, `new_country` and `new_login_key` will call them new
    /// once more (the stricter side).
    /// The location is the one the decision looked up (`Who::geo`).
    fn let_in(&self, who: &Who) -> Result<(), DaemonError> {
        if !let_in_writes(who) {
            // Nothing to remember (and the store's lock is not taken: this
            // runs on the bus task for decisions made from memory).
            return Ok(());
        }
        let mut store = lock(&self.store);
        let tolerate = |result: Result<(), StoreError>| match result {
            Err(e) if e.is_unreachable() => Ok(()),
            other => other.map_err(failed),
        };
        if !who.rhost.is_empty() {
            let located = who.geo.located.as_ref();
            tolerate(store.mark_source_seen(&who.subject, &who.rhost, unix_now(), located))?;
        }
        if let Some(fingerprint) = &who.login_key {
            tolerate(store.mark_login_key_seen(&who.subject, fingerprint, unix_now()))?;
        }
        Ok(())
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

    /// The rule's methods, in its order, that `subject` can use here: a
    /// security key only in a local session with a key connected. Also a
    /// note for the person when a key was passed over.
    /// `agent`: the client can hand over an ssh-agent (protocol 2).
    fn offered_methods(
        &self,
        config: &Config,
        rule: &Rule,
        subject: &str,
        (remote, agent): (bool, bool),
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
                // The person's key is on the computer they connected from.
                Method::SshAgentKey => {
                    remote && agent && !store.ssh_keys(subject).map_err(failed)?.is_empty()
                }
            };
            if usable {
                offered.push(*method);
            }
        }
        Ok((offered, note))
    }

    /// Evaluate the policy for an attempt: (rule, when grace was earned if
    /// it applies). Tags `who` with where its source is.
    fn evaluate<'c>(
        &self,
        config: &'c Config,
        attempt: &Attempt<'_>,
        who: &mut Who,
        lookups: &mut StoreLookups<'_>,
    ) -> Result<(&'c Rule, Option<u64>), DaemonError> {
        let rule = policy::decide(config, attempt, lookups).map_err(|e| lookups.error(e))?;
        let grace = grace_earned(rule, attempt, lookups).map_err(|e| lookups.error(e))?;
        *who.geo = lookups.tags(&attempt.origin.rhost);
        Ok((rule, grace))
    }

    pub fn session_count(&self) -> usize {
        lock(&self.sessions).len()
    }

    pub fn store(&self) -> MutexGuard<'_, Box<dyn Store>> {
        lock(&self.store)
    }

    /// Check on the store (the daemon calls this every second, off the
    /// async tasks): a shared store that is down is tried again, so its
    /// recovery is noticed (and reported) without waiting for an attempt.
    pub fn probe_store(&self) {
        lock(&self.store).keep_alive();
    }
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
