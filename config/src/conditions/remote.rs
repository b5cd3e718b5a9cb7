//! `remote`: the attempt has a source address (PAM_RHOST, or the tty's
//! login session in utmp) or its tty is `ssh` — or, `false`, neither.

use super::{Condition, ConditionSpec, Eval, Facts, RuleEnv, Want, covers_if_equal};
use crate::attempt::{Attempt, Lookups};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub wanted: bool,
}

fn local_or_remote(remote: bool) -> &'static str {
    if remote { "remote" } else { "local" }
}

impl ConditionSpec for Remote {
    const KEYS: &'static [&'static str] = &["remote"];
    const EXAMPLES: &'static [&'static str] = &["true", "false"];
    type Value = bool;

    fn build(_: &'static str, wanted: bool, _: &RuleEnv) -> Result<Self, String> {
        Ok(Self { wanted })
    }
}

impl Condition for Remote {
    fn key(&self) -> &'static str {
        "remote"
    }

    fn evaluate(
        &self,
        attempt: &Attempt<'_>,
        _: &Facts<'_>,
        _: &mut dyn Lookups,
        want: Want,
    ) -> Result<Eval, String> {
        let origin = attempt.origin;
        let detail = || {
            format!(
                "attempt is {} (rhost {:?} from {}, tty {:?}); rule wants {}",
                local_or_remote(origin.remote),
                origin.rhost,
                origin.rhost_source,
                attempt.context.tty,
                local_or_remote(self.wanted)
            )
        };
        // The address itself is the business of `rhost_in` / `new_rhost`.
        let phrase = || Some(format!("from a {} session", local_or_remote(origin.remote)));
        Ok(Eval::new(
            origin.remote == self.wanted,
            want,
            detail,
            phrase,
        ))
    }

    fn covers(&self, later: &dyn Condition) -> bool {
        covers_if_equal(self, later)
    }
}
