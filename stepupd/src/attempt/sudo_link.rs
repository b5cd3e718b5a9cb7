//! One sudo never asks twice. sudo authenticates (PAM: pam_stepup.so may
//! step up) and then, in the same process, asks its approval plugins
//! (stepup_sudo.so). When the PAM step of that very process has just proved
//! a factor, the plugin's step-up is answered from it. The link is the
//! calling process as the bus vouches for it (pid and start time: a reused
//! pid is another process); nothing the caller says is trusted for it.

use std::collections::HashMap;

use super::*;

/// How long a PAM step-up answers its sudo's approval check: sudo asks the
/// plugin right after PAM, well within this.
pub const LINK_WINDOW: Duration = Duration::from_secs(300);

/// Whose step-up a process proved, and when.
#[derive(Default)]
pub struct SudoSteps(HashMap<ProcessId, (String, Instant)>);

impl SudoSteps {
    /// Remember that `process` proved `subject`'s factor now (old entries go).
    pub fn proved(&mut self, process: ProcessId, subject: &str) {
        self.0.retain(|_, (_, at)| at.elapsed() < LINK_WINDOW);
        self.0.insert(process, (subject.to_owned(), Instant::now()));
    }

    /// Did `process` prove `subject`'s factor within the window? Used once:
    /// one sudo runs one command.
    pub fn take(&mut self, process: ProcessId, subject: &str) -> bool {
        match self.0.remove(&process) {
            Some((who, at)) => who == subject && at.elapsed() < LINK_WINDOW,
            None => false,
        }
    }
}

impl Engine {
    /// A step-up succeeded for `subject` in the calling process.
    pub(super) fn remember_step_up(&self, process: Option<ProcessId>, subject: &str) {
        if let Some(process) = process {
            lock(&self.sudo_steps).proved(process, subject);
        }
    }

    /// The sudo plugin's attempt, from a process whose PAM step has just
    /// stepped up the same person.
    pub(super) fn stepped_up_in_this_sudo(
        &self,
        process: Option<ProcessId>,
        attempt: &Attempt<'_>,
    ) -> bool {
        match (process, &attempt.context.command) {
            (Some(process), Some(_)) => lock(&self.sudo_steps).take(process, attempt.subject),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_up_answers_its_own_process_once_and_no_other() {
        let mut steps = SudoSteps::default();
        let sudo = ProcessId {
            pid: 4242,
            start: 7,
        };
        let reused = ProcessId {
            pid: 4242,
            start: 9,
        };
        steps.proved(sudo, "alice");
        assert!(!steps.take(reused, "alice"), "same pid, another process");
        assert!(!steps.take(sudo, "bob"), "another person");
        steps.proved(sudo, "alice");
        assert!(steps.take(sudo, "alice"));
        assert!(!steps.take(sudo, "alice"), "used once");
    }
}
