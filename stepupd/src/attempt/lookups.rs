//! What policy evaluation asks of NSS and the store, and grace.

use super::*;

/// When grace was earned, if the deciding rule steps up and a success in
/// its scope is recent enough.
pub(super) fn grace_earned(
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
pub(super) struct StoreLookups<'e> {
    store: &'e Mutex<Box<dyn Store>>,
    groups: Option<(String, Option<Vec<String>>)>,
    /// A lookup found the shared store unreachable (the policy's error
    /// messages are text; this keeps what kind of failure it was).
    unreachable: bool,
}

impl<'e> StoreLookups<'e> {
    pub(super) fn new(store: &'e Mutex<Box<dyn Store>>) -> Self {
        Self {
            store,
            groups: None,
            unreachable: false,
        }
    }

    /// The daemon's error for a policy evaluation that failed with
    /// `message`: "unavailable" if the store could not be asked.
    pub(super) fn error(&self, message: String) -> DaemonError {
        if self.unreachable {
            DaemonError::Unavailable(message)
        } else {
            DaemonError::Failed(message)
        }
    }

    fn note(&mut self, e: StoreError) -> String {
        self.unreachable |= e.is_unreachable();
        e.to_string()
    }
}

impl Lookups for StoreLookups<'_> {
    fn login_key_last_seen(
        &mut self,
        subject: &str,
        fingerprint: &str,
    ) -> Result<Option<u64>, String> {
        lock(self.store)
            .login_key_last_seen(subject, fingerprint)
            .map_err(|e| e.to_string())
    }

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
        let seen = lock(self.store).source_last_seen(subject, rhost);
        seen.map_err(|e| self.note(e))
    }

    fn failures_since(&mut self, subject: &str, since: u64) -> Result<u64, String> {
        let failures = lock(self.store).failures_since(subject, since);
        failures.map_err(|e| self.note(e))
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
        let last = lock(self.store).last_success(subject, since, same);
        let last = last.map_err(|e| self.note(e))?;
        // A success later than now means the clock went back: its age is
        // negative, not "within" anything. It grants no grace and does not
        // make `stepped_up_within` hold until the clock has caught up, so a
        // clock jump never extends a grace window.
        let now = u64::try_from(attempt.now.as_second()).unwrap_or(0);
        Ok(last.filter(|&t| t <= now))
    }
}

/// The user's groups (primary and supplementary) from NSS; `None` if unknown.
pub(super) fn nss_groups(user: &str) -> Result<Option<Vec<String>>, String> {
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
