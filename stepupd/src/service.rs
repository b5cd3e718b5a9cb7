//! The `org.stepup.Daemon1` D-Bus interface: identifies the caller, checks
//! it is root, and hands the request to the [`Engine`].

use std::collections::HashMap;
use std::sync::Arc;

use stepup_common::{CredentialRow, DaemonError, OLDEST_PROTOCOL, PROTOCOL_VERSION};
use zbus::interface;
use zbus::message::Header;
use zeroize::Zeroizing;

use crate::attempt::{Engine, validate_user_name};
use crate::audit;
use crate::caller::{Caller, Callers, sender_name};
use crate::context::{AttemptContext, FromWire};
use crate::departures::Departures;

pub struct Daemon1 {
    pub engine: Arc<Engine>,
    /// The bus's word on who calls (uid, pid), kept per connection.
    pub callers: Arc<Callers>,
    /// Connections leaving the bus, watched while sessions are open.
    pub departures: Arc<Departures>,
    /// Where blocking work (a security key waiting for a touch, argon2,
    /// fsync) runs, so the bus keeps being served meanwhile.
    pub runtime: tokio::runtime::Handle,
}

impl Daemon1 {
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Engine) -> Result<T, DaemonError> + Send + 'static,
    ) -> Result<T, DaemonError> {
        let engine = self.engine.clone();
        self.runtime
            .spawn_blocking(move || work(&engine))
            .await
            .map_err(|e| DaemonError::Failed(format!("internal task failed: {e}")))?
    }
}

#[interface(name = "org.stepup.Daemon1")]
impl Daemon1 {
    async fn begin(
        &self,
        #[zbus(header)] header: Header<'_>,
        protocol: u32,
        context: HashMap<String, String>,
    ) -> Result<(String, String, String), DaemonError> {
        let begun = std::time::Instant::now();
        let known = self.callers.require_root(&header).await?;
        if !(OLDEST_PROTOCOL..=PROTOCOL_VERSION).contains(&protocol) {
            audit::event(
                "protocol_mismatch",
                &[
                    ("client", &protocol.to_string()),
                    ("daemon", &PROTOCOL_VERSION.to_string()),
                ],
            );
            return Err(DaemonError::ProtocolMismatch(format!(
                "stepupd speaks protocols {OLDEST_PROTOCOL} to {PROTOCOL_VERSION}, the client sent {protocol}: install matching versions of pam_stepup.so and stepupd"
            )));
        }
        let context = AttemptContext::from_wire(context)
            .map_err(|e| DaemonError::InvalidArgument(e.to_string()))?;
        check_account_name("user", &context.user)?;
        if !context.ruser.is_empty() {
            check_account_name("ruser", &context.ruser)?;
        }
        let owner = sender_name(&header)?;
        // Only the sudo plugin's attempts are linked to their process.
        let process = match context.command {
            Some(_) => known.process(),
            None => None,
        };
        let caller = Caller {
            name: &owner,
            process,
            protocol,
        };
        // Decided here when the context and the policy suffice; a decision
        // that reads the store or NSS (history, lockout, groups) goes off
        // the task that serves the bus, so it never holds up other callers.
        let prepared = self.engine.prepare(context);
        let step = match self.engine.begin_without_blocking(caller, prepared) {
            Ok(step) => step?,
            Err(prepared) => {
                let name = owner.clone();
                self.blocking(move |engine| {
                    let caller = Caller {
                        name: &name,
                        process,
                        protocol,
                    };
                    engine.begin_prepared(caller, prepared)
                })
                .await?
            }
        };
        if !step.session.is_empty() {
            self.departures.session_opened(&owner, begun);
        }
        Ok((step.session, step.kind.as_str().to_owned(), step.text))
    }

    async fn respond(
        &self,
        #[zbus(header)] header: Header<'_>,
        session: String,
        answer: String,
    ) -> Result<(String, String), DaemonError> {
        let answer = Zeroizing::new(answer);
        let known = self.callers.require_root(&header).await?;
        let owner = sender_name(&header)?;
        if answer.len() > MAX_ANSWER_LEN {
            // No code, recovery code or PIN is this long: end the attempt
            // without checking (or hashing) it; it is not a wrong guess.
            let len = answer.len();
            drop(answer);
            let _ = self
                .blocking(move |engine| engine.cancel(&owner, &session))
                .await;
            return Err(DaemonError::InvalidArgument(format!(
                "answer is {len} bytes (at most {MAX_ANSWER_LEN}); the attempt is over"
            )));
        }
        // The prompt after a reason or a wrong code is known from memory.
        if let Some(step) = self.engine.respond_without_blocking(&owner, &session) {
            return Ok((step.kind.as_str().to_owned(), step.text));
        }
        // A step-up proved here may answer this process's sudo approval check.
        let process = known.process();
        let step = self
            .blocking(move |engine| engine.respond(&owner, process, &session, answer))
            .await?;
        Ok((step.kind.as_str().to_owned(), step.text))
    }

    /// Protocol 2: the ssh-agent for an `agent` step (the module connected
    /// it with the person's rights; the daemon checks whose it is).
    async fn attach_agent(
        &self,
        #[zbus(header)] header: Header<'_>,
        session: String,
        agent: zbus::OwnedFd,
    ) -> Result<(String, String), DaemonError> {
        let known = self.callers.require_root(&header).await?;
        let owner = sender_name(&header)?;
        let process = known.process();
        let agent = std::os::fd::OwnedFd::from(agent);
        let step = self
            .blocking(move |engine| engine.attach_agent(&owner, process, &session, agent))
            .await?;
        Ok((step.kind.as_str().to_owned(), step.text))
    }

    async fn cancel(
        &self,
        #[zbus(header)] header: Header<'_>,
        session: String,
    ) -> Result<(), DaemonError> {
        self.callers.require_root(&header).await?;
        let owner = sender_name(&header)?;
        self.blocking(move |engine| engine.cancel(&owner, &session))
            .await
    }

    async fn enroll_totp(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: String,
        secret_base32: String,
        label: String,
    ) -> Result<(String, String), DaemonError> {
        let secret = Zeroizing::new(secret_base32);
        self.callers.require_root(&header).await?;
        let (id, uri) = self
            .blocking(move |engine| engine.enroll_totp(&user, secret, &label))
            .await?;
        Ok((id, uri.as_str().to_owned()))
    }

    async fn list(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: String,
    ) -> Result<Vec<CredentialRow>, DaemonError> {
        self.callers.require_root(&header).await?;
        validate_user_name(&user)?;
        let rows = self
            .blocking(move |engine| engine.store().list(&user).map_err(store_failed))
            .await?;
        Ok(rows
            .into_iter()
            .map(|c| (c.id, c.method, c.label, c.created))
            .collect())
    }

    async fn remove(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: String,
        id: String,
    ) -> Result<(), DaemonError> {
        self.callers.require_root(&header).await?;
        validate_user_name(&user)?;
        let (who, what) = (user.clone(), id.clone());
        let removed = self
            .blocking(move |engine| engine.store().remove(&who, &what).map_err(store_failed))
            .await?;
        if !removed {
            return Err(DaemonError::NotFound(format!(
                "{user} has no credential {id}"
            )));
        }
        audit::event("removed", &[("user", &user), ("credential", &id)]);
        Ok(())
    }

    /// A dry run of the policy for a context (plus an optional `at`, RFC 3339
    /// or a civil time in the default zone): JSON, changes nothing.
    async fn explain(
        &self,
        #[zbus(header)] header: Header<'_>,
        mut context: HashMap<String, String>,
    ) -> Result<String, DaemonError> {
        self.callers.require_root(&header).await?;
        let at = match context.remove("at").filter(|a| !a.is_empty()) {
            None => None,
            Some(text) => Some(parse_time(
                &text,
                &self.engine.config().defaults.time_zone.tz,
            )?),
        };
        let context = AttemptContext::from_wire(context)
            .map_err(|e| DaemonError::InvalidArgument(e.to_string()))?;
        let explanation = self
            .blocking(move |engine| engine.explain(context, at))
            .await?;
        serde_json::to_string(&explanation).map_err(|e| DaemonError::Failed(e.to_string()))
    }

    /// Enroll an OpenSSH security-key public key (`ssh_agent_key`).
    async fn enroll_ssh_key(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: String,
        public_key: String,
        label: String,
    ) -> Result<String, DaemonError> {
        self.callers.require_root(&header).await?;
        self.blocking(move |engine| engine.enroll_ssh_key(&user, &public_key, &label))
            .await
    }

    /// Enroll a security key (the key must be touched). Returns the credential id.
    async fn enroll_key(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: String,
        label: String,
    ) -> Result<String, DaemonError> {
        self.callers.require_root(&header).await?;
        self.blocking(move |engine| engine.enroll_key(&user, &label))
            .await
    }

    /// Lift a lockout and forget earlier failures; true if the user was locked.
    async fn unlock(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: String,
    ) -> Result<bool, DaemonError> {
        self.callers.require_root(&header).await?;
        self.blocking(move |engine| engine.unlock(&user)).await
    }

    /// Issue a new set of recovery codes (the old set stops working).
    async fn recovery_codes(
        &self,
        #[zbus(header)] header: Header<'_>,
        user: String,
    ) -> Result<Vec<String>, DaemonError> {
        self.callers.require_root(&header).await?;
        let codes = self
            .blocking(move |engine| engine.new_recovery_codes(&user))
            .await?;
        Ok(codes.iter().map(|c| c.as_str().to_owned()).collect())
    }

    /// Import another module's credential file (`google-authenticator` for
    /// `user`, `pam-u2f` with `origin`, `users-oath`): all or nothing; a report.
    async fn import(
        &self,
        #[zbus(header)] header: Header<'_>,
        format: String,
        user: String,
        text: String,
        origin: String,
    ) -> Result<String, DaemonError> {
        let text = Zeroizing::new(text);
        self.callers.require_root(&header).await?;
        self.blocking(move |engine| engine.import(&format, &user, &text, &origin))
            .await
    }

    /// Re-read the configuration; on error the old policy stays in force.
    async fn reload(&self, #[zbus(header)] header: Header<'_>) -> Result<String, DaemonError> {
        self.callers.require_root(&header).await?;
        match self.engine.reload() {
            Ok(config) => Ok(format!(
                "loaded {} rule(s) from {} file(s), policy {}",
                config.rules.len(),
                config.files.len(),
                &config.hash[..16]
            )),
            Err(e) => Err(DaemonError::InvalidArgument(format!(
                "{e}; the previous policy ({}) stays in force",
                &self.engine.config().hash[..16]
            ))),
        }
    }

    async fn status(
        &self,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<HashMap<String, String>, DaemonError> {
        self.callers.require_root(&header).await?;
        let config = self.engine.config();
        let (store, reachable, credentials) = self
            .blocking(|engine| {
                let mut store = engine.store();
                let reachable = store.ping();
                let count = store.credential_count();
                Ok((store.describe(), reachable, count))
            })
            .await?;
        let credentials = match credentials {
            Ok(count) => count.to_string(),
            Err(e) => format!("unknown ({e})"),
        };
        let store_state = match reachable {
            Ok(()) => "answers".to_owned(),
            Err(e) => format!("does not answer: {e}"),
        };
        let files: Vec<String> = config
            .files
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        Ok(HashMap::from([
            ("version".to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
            ("protocol".to_owned(), PROTOCOL_VERSION.to_string()),
            ("config_files".to_owned(), files.join(",")),
            ("rules".to_owned(), config.rules.len().to_string()),
            ("policy_hash".to_owned(), config.hash.clone()),
            (
                "policy_loaded_at".to_owned(),
                self.engine.config_loaded_at().to_string(),
            ),
            (
                "report_only".to_owned(),
                config.defaults.report_only.to_string(),
            ),
            ("credentials".to_owned(), credentials),
            ("store".to_owned(), store),
            ("store_state".to_owned(), store_state),
            ("host_name".to_owned(), crate::who::host_name().to_owned()),
            (
                "sessions".to_owned(),
                self.engine.session_count().to_string(),
            ),
            (
                "uptime_seconds".to_owned(),
                self.engine.started.elapsed().as_secs().to_string(),
            ),
            (
                "geoip".to_owned(),
                self.engine
                    .geo()
                    .map_or_else(|| "none".to_owned(), |geo| geo.summary()),
            ),
        ]))
    }
}

/// A store error for an admin call: "unavailable" when the shared store
/// does not answer, else a failure.
fn store_failed(e: crate::store::StoreError) -> DaemonError {
    if e.is_unreachable() {
        DaemonError::Unavailable(e.to_string())
    } else {
        DaemonError::Failed(e.to_string())
    }
}

/// The longest answer checked: TOTP codes are 6–8 digits, recovery codes 11
/// characters, a security key PIN at most 63 bytes (CTAP2).
pub const MAX_ANSWER_LEN: usize = 1024;

/// The longest user name looked at (glibc's LOGIN_NAME_MAX).
pub const MAX_ACCOUNT_NAME_LEN: usize = 256;

/// A name that cannot be an account (no passwd entry can hold it) is refused
/// before the policy sees it, so nothing is recorded for it. Control
/// characters and over-long values were already refused by the context;
/// whitespace and backslashes stay allowed (directory users such as
/// `DOMAIN\first last`).
fn check_account_name(key: &str, name: &str) -> Result<(), DaemonError> {
    let ok = name.len() <= MAX_ACCOUNT_NAME_LEN
        && !name.starts_with('-')
        && name != "."
        && name != ".."
        && !name.contains(['/', ':']);
    if ok {
        Ok(())
    } else {
        Err(DaemonError::InvalidArgument(format!(
            "{key} is not a possible account name ({} bytes)",
            name.len()
        )))
    }
}

/// `--at` for explain: an RFC 3339 instant, or a civil date-time in `tz`.
fn parse_time(text: &str, tz: &jiff::tz::TimeZone) -> Result<jiff::Timestamp, DaemonError> {
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return Ok(ts);
    }
    text.parse::<jiff::civil::DateTime>()
        .and_then(|dt| dt.to_zoned(tz.clone()))
        .map(|z| z.timestamp())
        .map_err(|e| {
            DaemonError::InvalidArgument(format!(
                "--at {text:?}: {e} (expected e.g. 2026-11-23T03:00:00Z or \"2026-11-23 03:00\")"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impossible_account_names_are_refused() {
        for bad in [
            "../etc",
            "a/b",
            "root:x",
            "-rf",
            ".",
            "..",
            &"x".repeat(257),
        ] {
            assert!(check_account_name("user", bad).is_err(), "{bad:?}");
        }
        for good in ["alice", "DOMAIN\\first last", "a.b-c_d$", &"x".repeat(256)] {
            assert!(check_account_name("user", good).is_ok(), "{good:?}");
        }
    }
}
