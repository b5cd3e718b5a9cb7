//! Lockout with pam_faillock's semantics (`[lockout]`), and unlock.

use super::*;

impl Engine {
    /// Is `subject` locked out now? The message to show if so.
    pub(super) fn locked_message(
        &self,
        subject: &str,
        now: u64,
    ) -> Result<Option<String>, DaemonError> {
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
    pub(super) fn count_failure(
        &self,
        config: &Config,
        who: &Who,
    ) -> Result<Option<String>, DaemonError> {
        let subject = who.subject.as_str();
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
        who.event(
            "locked",
            &[
                ("failures", &failures.to_string()),
                (
                    "until",
                    &until.map_or("unlock".to_owned(), |u| u.to_string()),
                ),
            ],
        );
        self.locked_message(subject, now)
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
}
